//! The server's one door to the vault: sealing and opening secret and credential values, the
//! AAD that binds each ciphertext to its row, the audit HMAC of a value, the master-key check a
//! server makes before it serves, and key rotation.
//!
//! No other module of the server names `amika_vault`: they call the [`Service`] methods below
//! and hold values only as [`SecretString`]. The vault itself sits inside [`Sealing`], whose
//! field only this module can reach, so "who can open a value" is answered by this file alone.
//!
//! An AAD is (org, owner, object id, version, field): a ciphertext copied to another row,
//! version, field or kind fails to open. The field names below are part of every stored
//! ciphertext; changing one makes existing rows unreadable.

use std::path::Path;
use std::sync::Arc;

use amika_store::{CredentialRow, SealedRef, SealedTable, SecretRow, Store, StoreError};
use amika_types::AgentKind;
use amika_vault::{Aad, KeySource, MasterKey};

pub use amika_vault::{OpeningReader, SealingWriter, SecretString, StreamKey, Vault, VaultError};

use super::{Result, Service, ServiceError};
use crate::StartError;

/// AAD field of a secret's value.
const SECRET_FIELD: &str = "secret.value";

/// The canary: a known value sealed with the master key when a database is created, so that a
/// start can tell a wrong key before it serves.
const CANARY_AAD: Aad<'static> = Aad {
    org_id: "",
    owner: "",
    object_id: "canary",
    version: 0,
    field: "vault.canary",
};

/// AAD field of a credential's value: its kind is part of it.
fn credential_field(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::Claude => "credential.claude",
        AgentKind::Codex => "credential.codex",
        AgentKind::Github => "credential.github",
    }
}

fn secret_aad(row: &SecretRow) -> Aad<'_> {
    Aad {
        org_id: &row.org_id,
        owner: &row.user_id,
        object_id: &row.id,
        version: row.version,
        field: SECRET_FIELD,
    }
}

fn credential_aad(row: &CredentialRow) -> Aad<'_> {
    Aad {
        org_id: &row.org_id,
        owner: &row.user_id,
        object_id: &row.id,
        version: row.version,
        field: credential_field(row.kind),
    }
}

/// The AAD a value listed for rotation was sealed for: the same as its table's seal used.
fn sealed_ref_aad(r: &SealedRef) -> std::result::Result<Aad<'_>, StoreError> {
    let field = match (r.table, r.kind) {
        (SealedTable::Canary, _) => return Ok(CANARY_AAD),
        (SealedTable::Snapshot, _) => SNAPSHOT_FIELD,
        (SealedTable::Secret, _) => SECRET_FIELD,
        (SealedTable::Credential, Some(kind)) => credential_field(kind),
        (SealedTable::Credential, None) => {
            return Err(StoreError::Corrupt(format!(
                "credential {} has no kind",
                r.id
            )))
        }
    };
    Ok(Aad {
        org_id: &r.org_id,
        owner: &r.user_id,
        object_id: &r.id,
        version: r.version,
        field,
    })
}

/// The vault as the service holds it. Its field is private to this module: every other module
/// seals and opens through the methods below.
#[derive(Debug, Clone)]
pub(crate) struct Sealing(Arc<Vault>);

impl Sealing {
    pub(crate) fn new(vault: Arc<Vault>) -> Self {
        Sealing(vault)
    }
}

impl From<VaultError> for ServiceError {
    fn from(e: VaultError) -> Self {
        ServiceError::internal(super::Context {
            context: "vault",
            source: Box::new(e),
        })
    }
}

/// A value that did not decrypt: one whose ciphertext fails authentication is named (its
/// stored form was changed outside amika); any other vault failure is internal.
fn unreadable(e: VaultError, what: &str, name: &str) -> ServiceError {
    match e {
        VaultError::Decrypt => ServiceError::Unreadable(format!(
            "the stored value of {what} {name:?} failed its integrity check (its ciphertext was \
             changed outside amika, moved to another row, or sealed under another key): it was \
             not used; push the {what} again to replace it"
        )),
        e => e.into(),
    }
}

/// AAD field of a snapshot archive's data key and chunks.
const SNAPSHOT_FIELD: &str = "snapshot.archive";

/// A snapshot archive's AAD: its org, owner and id (DESIGN §11).
pub(crate) fn snapshot_aad(row: &amika_store::SnapshotRow) -> Aad<'_> {
    Aad {
        org_id: &row.org_id,
        owner: &row.user_id,
        object_id: &row.id,
        version: 0,
        field: SNAPSHOT_FIELD,
    }
}

impl Service {
    /// A fresh data key for snapshot `row`'s archive; its wrapped form goes on the row.
    pub(crate) fn new_snapshot_key(
        &self,
        row: &amika_store::SnapshotRow,
    ) -> Result<(StreamKey, amika_store::Sealed)> {
        Ok(self.sealing.0.new_stream_key(&snapshot_aad(row))?)
    }

    /// The data key of snapshot `row`'s archive.
    pub(crate) fn open_snapshot_key(&self, row: &amika_store::SnapshotRow) -> Result<StreamKey> {
        Ok(self
            .sealing
            .0
            .open_stream_key(&row.sealed, &snapshot_aad(row))?)
    }

    /// Seal `value` as `row`'s value. The row's id, owner and version must be final: they are
    /// the AAD.
    pub(crate) fn seal_secret(&self, row: &mut SecretRow, value: &SecretString) -> Result<()> {
        let sealed = self.sealing.0.seal(value, &secret_aad(row))?;
        row.sealed = sealed;
        Ok(())
    }

    /// Decrypt a stored secret (for injection or the audited reveal). Callers check
    /// visibility first. Borrows the row's ciphertext; nothing is copied but the plaintext.
    pub(crate) fn open_secret(&self, row: &SecretRow) -> Result<SecretString> {
        (self.sealing.0.open(&row.sealed, &secret_aad(row)))
            .map_err(|e| unreadable(e, "secret", &row.name))
    }

    /// Seal `value` as `row`'s value (see [`Service::seal_secret`]); the kind is in the AAD.
    pub(crate) fn seal_credential(
        &self,
        row: &mut CredentialRow,
        value: &SecretString,
    ) -> Result<()> {
        let sealed = self.sealing.0.seal(value, &credential_aad(row))?;
        row.sealed = sealed;
        Ok(())
    }

    /// Decrypt a stored credential (for injection, a type change, or the audited reveal).
    pub(crate) fn open_credential(&self, row: &CredentialRow) -> Result<SecretString> {
        (self.sealing.0.open(&row.sealed, &credential_aad(row)))
            .map_err(|e| unreadable(e, "credential", &row.name))
    }

    /// Id of the master key in force: recorded on every value it seals.
    pub fn kek_id(&self) -> &str {
        self.sealing.0.kek_id()
    }

    /// What an audit event records of object `object_id`'s value: a keyed hash, bound to the
    /// object, that tells "the same value as its version before" without revealing it. Bound
    /// to the object so that it tells nothing across objects: a guess pushed into another
    /// secret hashes differently even when it is right.
    pub(crate) fn value_hmac(&self, object_id: &str, value: &SecretString) -> String {
        self.sealing.0.hmac(object_id.as_bytes(), value)
    }
}

/// The vault for the database in `store`: its master key loaded (created only for a database
/// that holds nothing sealed yet) and checked against what the database holds.
pub(crate) async fn open_vault(store: &dyn Store, data_dir: &Path) -> Result<Vault, StartError> {
    let fresh = store.vault_canary().await?.is_none();
    let (key, source) = amika_vault::load_master_key(data_dir, fresh)?;
    let vault = Vault::new(key);
    check_master_key(store, &vault, &source).await?;
    Ok(vault)
}

/// Check that the master key can open what the database holds; on a fresh database, seal the
/// canary with it. A server never serves with a key that cannot decrypt its data.
async fn check_master_key(
    store: &dyn Store,
    vault: &Vault,
    source: &KeySource,
) -> Result<(), StartError> {
    let from = match source {
        KeySource::Env => "AMIKA_MASTER_KEY".to_string(),
        KeySource::File(p) => p.display().to_string(),
    };
    let foreign: Vec<String> = store
        .kek_ids_in_use()
        .await?
        .into_iter()
        .filter(|id| id != vault.kek_id())
        .collect();
    if !foreign.is_empty() {
        return Err(StartError::KeyMismatch(format!(
            "the master key from {from} ({}) is not the key that encrypted this database ({}): set AMIKA_MASTER_KEY to the right key or restore its key file",
            vault.kek_id(),
            foreign.join(", ")
        )));
    }
    match store.vault_canary().await? {
        Some(sealed) => {
            vault.open(&sealed, &CANARY_AAD).map_err(|_| {
                StartError::KeyMismatch(format!("the master key from {from} cannot decrypt this database's data: set AMIKA_MASTER_KEY to the right key or restore its key file"))
            })?;
        }
        None => {
            let sealed = vault.seal(&SecretString::new("amika".into()), &CANARY_AAD)?;
            store.set_vault_canary(&sealed).await?;
        }
    }
    Ok(())
}

/// Re-wrap every data key of the database in `store` under a new master key without touching
/// values; returns the new key's id. The new key is written to `new_key_file` (or replaces the
/// key file in force).
pub(crate) async fn rotate_key(
    store: &dyn Store,
    data_dir: &Path,
    new_key_file: Option<&Path>,
) -> Result<String, StartError> {
    let (old_key, source) = amika_vault::load_master_key(data_dir, false)?;
    let old = Vault::new(old_key);
    check_master_key(store, &old, &source).await?;
    let new_key = MasterKey::generate();
    let target = match (new_key_file, &source) {
        (Some(p), _) => p.to_path_buf(),
        (None, KeySource::File(p)) => p.clone(),
        (None, KeySource::Env) => {
            return Err(StartError::KeyMismatch("the master key comes from AMIKA_MASTER_KEY: pass --new-key-file PATH to say where the new key goes".into()))
        }
    };
    // Write the new key beside the old first, swap the rows in one transaction, then move the
    // key into place: a crash leaves either the old key with old rows or both files.
    let staged = target.with_extension("new");
    amika_vault::write_key_file(&staged, &new_key)?;
    let new = Vault::new(new_key);
    let mut updates = Vec::new();
    for mut r in store.all_sealed().await? {
        let sealed = old.rewrap(&new, &r.sealed, &sealed_ref_aad(&r)?)?;
        r.sealed = sealed;
        updates.push(r);
    }
    store.replace_sealed(&updates).await?;
    std::fs::rename(&staged, &target).map_err(|source| StartError::Write {
        path: target.display().to_string(),
        source,
    })?;
    Ok(new.kek_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names are inside every stored ciphertext: a rename would lock every row out.
    #[test]
    fn aad_fields_are_the_ones_rows_were_sealed_with() {
        assert_eq!(SECRET_FIELD, "secret.value");
        assert_eq!(credential_field(AgentKind::Claude), "credential.claude");
        assert_eq!(credential_field(AgentKind::Codex), "credential.codex");
        assert_eq!(
            (CANARY_AAD.object_id, CANARY_AAD.field),
            ("canary", "vault.canary")
        );
    }

    #[test]
    fn a_value_opens_only_as_the_row_and_kind_it_was_sealed_for() {
        let vault = Vault::new(MasterKey::generate());
        let at = chrono::Utc::now();
        let mut row = CredentialRow {
            id: "cred_1".into(),
            org_id: "o".into(),
            user_id: "u".into(),
            kind: AgentKind::Claude,
            credential_type: amika_types::CredentialType::ApiKey,
            name: "n".into(),
            scope: amika_types::Scope::User,
            is_default: false,
            version: 1,
            expires_at: None,
            sealed: Default::default(),
            created_at: at,
            updated_at: at,
        };
        row.sealed = vault
            .seal(&SecretString::from("sk-ant-x"), &credential_aad(&row))
            .unwrap();
        let opened = vault.open(&row.sealed, &credential_aad(&row)).unwrap();
        assert_eq!(opened.expose_secret(), "sk-ant-x");
        let as_codex = CredentialRow {
            kind: AgentKind::Codex,
            ..row.clone()
        };
        assert!(vault.open(&row.sealed, &credential_aad(&as_codex)).is_err());
        let next_version = CredentialRow {
            version: 2,
            ..row.clone()
        };
        assert!(vault
            .open(&row.sealed, &credential_aad(&next_version))
            .is_err());
        // Rotation rebuilds the very same AAD from the listing.
        let listed = SealedRef {
            table: SealedTable::Credential,
            kind: Some(row.kind),
            id: row.id.clone(),
            org_id: row.org_id.clone(),
            user_id: row.user_id.clone(),
            version: row.version,
            sealed: row.sealed.clone(),
        };
        assert_eq!(sealed_ref_aad(&listed).unwrap(), credential_aad(&row));
        let no_kind = SealedRef {
            kind: None,
            ..listed
        };
        assert!(matches!(
            sealed_ref_aad(&no_kind),
            Err(StoreError::Corrupt(_))
        ));
    }
}
