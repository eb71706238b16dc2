//! The vault's metadata (the canary sealed under the master key) and the walk over every sealed
//! value that key rotation makes: list them all, then replace them all in one transaction.

use crate::backend::{params, Backend, Statement};
use crate::codec::{parse_enum, Cell};
use crate::{Result, Sealed, SealedRef, SealedTable, StoreError};

const GET_CANARY: &str =
    "SELECT kek_id, wrapped_key, ciphertext FROM vault_meta WHERE id = 'canary'";

const SET_CANARY: &str = "INSERT INTO vault_meta (id, kek_id, wrapped_key, ciphertext) \
     VALUES ('canary', $1, $2, $3) \
     ON CONFLICT (id) DO UPDATE SET kek_id = excluded.kek_id, \
     wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext";

const KEK_IDS: &str = "SELECT kek_id FROM secrets UNION SELECT kek_id FROM credentials \
     UNION SELECT kek_id FROM vault_meta UNION SELECT kek_id FROM snapshots";

const ALL_SEALED_SECRETS: &str = "SELECT CAST(NULL AS TEXT) AS kind, id, org_id, user_id, \
     version, kek_id, wrapped_key, ciphertext FROM secrets ORDER BY id";

const ALL_SEALED_CREDENTIALS: &str = "SELECT kind AS kind, id, org_id, user_id, \
     version, kek_id, wrapped_key, ciphertext FROM credentials ORDER BY id";

// Secrets and credentials also match the version the new material was sealed for: if the row
// moved on since `all_sealed`, writing would pair a new version number with a value (and AAD)
// of the old one.
const RESEAL_SECRET: &str = "UPDATE secrets SET kek_id = $1, wrapped_key = $2, ciphertext = $3 \
     WHERE id = $4 AND version = $5";
const RESEAL_CREDENTIAL: &str = "UPDATE credentials SET kek_id = $1, wrapped_key = $2, \
     ciphertext = $3 WHERE id = $4 AND version = $5";
const ALL_SEALED_SNAPSHOTS: &str =
    "SELECT id, org_id, user_id, kek_id, wrapped_key FROM snapshots ORDER BY id";
const RESEAL_SNAPSHOT: &str = "UPDATE snapshots SET kek_id = $1, wrapped_key = $2 WHERE id = $3";
const RESEAL_CANARY: &str = "UPDATE vault_meta SET kek_id = $1, wrapped_key = $2, \
     ciphertext = $3 WHERE id = $4";

/// A secret's or credential's sealed value with its AAD inputs.
#[derive(sqlx::FromRow)]
struct SealedRefRecord {
    kind: Option<String>,
    id: String,
    org_id: String,
    user_id: String,
    version: i64,
    #[sqlx(flatten, try_from = "crate::models::SealedColumns")]
    sealed: Sealed,
}

/// A snapshot's wrapped data key (its ciphertext is the archive on disk).
#[derive(sqlx::FromRow)]
struct SnapshotKeyRecord {
    id: String,
    org_id: String,
    user_id: String,
    kek_id: String,
    wrapped_key: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct KekId {
    kek_id: String,
}

pub(crate) async fn vault_canary(db: &impl Backend) -> Result<Option<Sealed>> {
    let sealed: Option<crate::models::SealedColumns> = db.fetch_optional(GET_CANARY, &[]).await?;
    Ok(sealed.map(Into::into))
}

pub(crate) async fn set_vault_canary(db: &impl Backend, sealed: &Sealed) -> Result<()> {
    let p = params![&sealed.kek_id, &sealed.wrapped_key, &sealed.ciphertext];
    db.execute(SET_CANARY, &p).await?;
    Ok(())
}

pub(crate) async fn kek_ids_in_use(db: &impl Backend) -> Result<Vec<String>> {
    let rows: Vec<KekId> = db.fetch_all(KEK_IDS, &[]).await?;
    let mut ids: Vec<String> = rows.into_iter().map(|r| r.kek_id).collect();
    // Sorted here rather than in SQL, where the order would depend on the collation.
    ids.sort();
    Ok(ids)
}

pub(crate) async fn all_sealed(db: &impl Backend) -> Result<Vec<SealedRef>> {
    let mut all = Vec::new();
    for (table, sql, name) in [
        (SealedTable::Secret, ALL_SEALED_SECRETS, "secrets"),
        (
            SealedTable::Credential,
            ALL_SEALED_CREDENTIALS,
            "credentials",
        ),
    ] {
        let records: Vec<SealedRefRecord> = db.fetch_all(sql, &[]).await?;
        for r in records {
            let kind = match &r.kind {
                Some(k) => Some(parse_enum(k, Cell::new(name, &r.id, "kind"))?),
                None => None,
            };
            all.push(SealedRef {
                table,
                kind,
                id: r.id,
                org_id: r.org_id,
                user_id: r.user_id,
                version: r.version,
                sealed: r.sealed,
            });
        }
    }
    let snapshots: Vec<SnapshotKeyRecord> = db.fetch_all(ALL_SEALED_SNAPSHOTS, &[]).await?;
    for r in snapshots {
        all.push(SealedRef {
            table: SealedTable::Snapshot,
            kind: None,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            version: 0,
            sealed: Sealed {
                kek_id: r.kek_id,
                wrapped_key: r.wrapped_key,
                ciphertext: Vec::new(),
            },
        });
    }
    if let Some(sealed) = vault_canary(db).await? {
        all.push(SealedRef {
            table: SealedTable::Canary,
            kind: None,
            id: "canary".into(),
            org_id: String::new(),
            user_id: String::new(),
            version: 0,
            sealed,
        });
    }
    Ok(all)
}

pub(crate) async fn replace_sealed(db: &impl Backend, updates: &[SealedRef]) -> Result<()> {
    let statements: Vec<Statement<'_>> = updates
        .iter()
        .map(|u| {
            let s = &u.sealed;
            let (sql, params) = match u.table {
                SealedTable::Secret => (
                    RESEAL_SECRET,
                    params![&s.kek_id, &s.wrapped_key, &s.ciphertext, &u.id, u.version].to_vec(),
                ),
                SealedTable::Credential => (
                    RESEAL_CREDENTIAL,
                    params![&s.kek_id, &s.wrapped_key, &s.ciphertext, &u.id, u.version].to_vec(),
                ),
                SealedTable::Canary => (
                    RESEAL_CANARY,
                    params![&s.kek_id, &s.wrapped_key, &s.ciphertext, &u.id].to_vec(),
                ),
                SealedTable::Snapshot => (
                    RESEAL_SNAPSHOT,
                    params![&s.kek_id, &s.wrapped_key, &u.id].to_vec(),
                ),
            };
            Statement {
                sql: sql.into(),
                params,
            }
        })
        .collect();
    if statements.is_empty() {
        return Ok(());
    }
    match db.execute_all(&statements).await? {
        Ok(()) => Ok(()),
        Err(i) => {
            let u = &updates[i];
            let what = match u.table {
                SealedTable::Secret => "secret",
                SealedTable::Credential => "credential",
                SealedTable::Canary => "vault canary",
                SealedTable::Snapshot => "snapshot",
            };
            Err(StoreError::Conflict(format!(
                "{what} {} (version {}) was changed or deleted during key rotation; \
                 nothing was replaced",
                u.id, u.version
            )))
        }
    }
}
