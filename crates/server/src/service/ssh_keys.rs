//! Registered SSH public keys (`/secrets/ssh-public-keys`): a user registers a key once and
//! then logs in to any running sandbox of theirs as `ssh -p PORT SANDBOX_NAME@HOST`, the
//! client proving it holds the private key. Public keys are not secrets; the private key never
//! reaches the server. A key's fingerprint is unique across the server, so a key names exactly
//! one user, and the SSH user name names one of that user's sandboxes.

use amika_store::{SshPublicKeyRow, StoreError};
use amika_types::{self as t, ErrorCode};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use serde_json::json;

use super::audit::Subject;
use super::sandboxes::ssh_access::{SshLogin, SshLoginRefused, SshLoginVia};
use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

/// The longest key line accepted (an RSA key of 16384 bits is about 2.8 KB).
pub const MAX_PUBLIC_KEY_BYTES: usize = 8 * 1024;
/// The smallest RSA key accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;

/// A checked public key: its algorithm's name, its OpenSSH form without comment, its
/// fingerprint.
#[derive(Debug, PartialEq, Eq)]
pub struct CheckedKey {
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
}

fn invalid_key(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(ErrorCode::InvalidValue, message).at("public_key")
}

/// Parse one OpenSSH public key line (`TYPE BASE64 [COMMENT]`) and check that it is a kind of
/// key the endpoint accepts. Errors never quote the input: a private key pasted by mistake
/// must not travel back in a message or into a log.
pub fn check_public_key(text: &str) -> Result<CheckedKey> {
    let expected = "expected one OpenSSH public key line, as in ~/.ssh/id_ed25519.pub \
                    (\"ssh-ed25519 AAAA... comment\")";
    let text = text.trim();
    if text.contains("PRIVATE KEY") {
        return Err(invalid_key(format!(
            "this is a private key, which must never leave your machine: {expected}"
        )));
    }
    if text.is_empty() {
        return Err(invalid_key(format!("public_key is empty: {expected}")));
    }
    if text.len() > MAX_PUBLIC_KEY_BYTES {
        return Err(invalid_key(format!(
            "public_key is {} bytes, at most {MAX_PUBLIC_KEY_BYTES} are accepted: {expected}",
            text.len()
        )));
    }
    if text.lines().count() > 1 {
        return Err(invalid_key(format!(
            "public_key has several lines: {expected}"
        )));
    }
    let mut key = PublicKey::from_openssh(text)
        .map_err(|_| invalid_key(format!("public_key is not a public key: {expected}")))?;
    let algorithm = key.algorithm();
    match algorithm {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => {}
        Algorithm::Rsa { .. } => {
            let bits = key.key_data().rsa().map_or(0, |k| k.key_size());
            if bits < MIN_RSA_BITS {
                return Err(invalid_key(format!(
                    "this RSA key has {bits} bits; at least {MIN_RSA_BITS} are accepted \
                     (or use an Ed25519 key: ssh-keygen -t ed25519)"
                )));
            }
        }
        other => {
            return Err(invalid_key(format!(
                "{} keys are not accepted: use Ed25519 (ssh-keygen -t ed25519), ECDSA or RSA \
                 of {MIN_RSA_BITS} bits or more",
                other.as_str()
            )))
        }
    }
    key.set_comment("");
    let public_key = key.to_openssh().map_err(ServiceError::internal)?;
    Ok(CheckedKey {
        key_type: algorithm.as_str().to_owned(),
        public_key: public_key.trim().to_owned(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}

fn to_wire(row: SshPublicKeyRow) -> t::SshPublicKey {
    t::SshPublicKey {
        id: row.id,
        name: row.name,
        key_type: row.key_type,
        fingerprint: row.fingerprint,
        public_key: row.public_key,
        created_at: row.created_at,
    }
}

fn subject(row: &SshPublicKeyRow) -> Subject<'_> {
    Subject {
        object_type: "ssh_public_key",
        object_id: &row.id,
        object_name: &row.name,
        version: None,
    }
}

impl Service {
    /// Register a public key of the caller's.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(user = %caller.user_id))]
    pub async fn create_ssh_public_key(
        &self,
        caller: &Caller,
        req: t::SshPublicKeyRequest,
    ) -> Result<t::SshPublicKey> {
        validate::object_name("SSH public key name", &req.name)?;
        let key = check_public_key(&req.public_key)?;
        let row = SshPublicKeyRow {
            id: new_id("ssk"),
            user_id: caller.user_id.clone(),
            name: req.name,
            key_type: key.key_type,
            public_key: key.public_key,
            fingerprint: key.fingerprint,
            created_at: now(),
        };
        self.store
            .insert_ssh_public_key(&row)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(message) => {
                    let field = if message.contains("named") {
                        "name"
                    } else {
                        "public_key"
                    };
                    ServiceError::conflict(ErrorCode::Conflict, message).at(field)
                }
                other => other.into(),
            })?;
        self.audit(
            caller,
            "ssh_key.created",
            subject(&row),
            None,
            json!({"fingerprint": row.fingerprint, "key_type": row.key_type}),
        )
        .await?;
        Ok(to_wire(row))
    }

    /// The caller's registered public keys, by name.
    pub async fn list_ssh_public_keys(&self, caller: &Caller) -> Result<Vec<t::SshPublicKey>> {
        let rows = self.store.list_ssh_public_keys(&caller.user_id).await?;
        Ok(rows.into_iter().map(to_wire).collect())
    }

    /// Remove a key of the caller's, by id or name; logins with it are refused from now on.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(user = %caller.user_id, key = %id_or_name))]
    pub async fn delete_ssh_public_key(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        let rows = self.store.list_ssh_public_keys(&caller.user_id).await?;
        let row = rows
            .into_iter()
            .find(|r| r.id == id_or_name || r.name == id_or_name)
            .ok_or_else(|| ServiceError::NotFound(format!("SSH public key {id_or_name:?}")))?;
        self.store
            .delete_ssh_public_key(&row.id, &caller.user_id)
            .await?;
        self.audit(
            caller,
            "ssh_key.deleted",
            subject(&row),
            None,
            json!({"fingerprint": row.fingerprint}),
        )
        .await
    }

    /// Check a login with a registered key: `user` is the name of one of the key owner's
    /// sandboxes. Called twice per login: when the client offers the key (so that it signs
    /// only for a key that can succeed) and once its signature is verified.
    pub async fn ssh_key_login(
        &self,
        user: &str,
        key: &PublicKey,
    ) -> Result<SshLogin, SshLoginRefused> {
        let internal = |e: StoreError| SshLoginRefused::Internal(e.to_string());
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let row = match self
            .store
            .get_ssh_public_key_by_fingerprint(&fingerprint)
            .await
        {
            Ok(row) => row,
            Err(StoreError::NotFound(_)) => return Err(SshLoginRefused::UnknownKey),
            Err(e) => return Err(internal(e)),
        };
        let owner = self.store.get_user(&row.user_id).await.map_err(internal)?;
        let sandbox = match self.store.get_sandbox_by_name(&owner.id, user).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => return Err(SshLoginRefused::UnknownSandbox),
            Err(e) => return Err(internal(e)),
        };
        Ok(SshLogin {
            caller: Caller::of_user(owner),
            sandbox_id: sandbox.id,
            sandbox_name: sandbox.name,
            via: SshLoginVia::Key(row.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host";

    fn message(text: &str) -> String {
        check_public_key(text).unwrap_err().to_string()
    }

    #[test]
    fn an_ed25519_key_is_kept_without_its_comment() {
        let key = check_public_key(&format!("  {ED25519}\n")).unwrap();
        assert_eq!(key.key_type, "ssh-ed25519");
        assert_eq!(
            key.public_key,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        );
        assert!(key.fingerprint.starts_with("SHA256:"), "{key:?}");
    }

    #[test]
    fn malformed_keys_are_refused_without_quoting_them() {
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n-----END OPENSSH PRIVATE KEY-----";
        let m = message(private);
        assert!(m.contains("private key"), "{m}");
        assert!(!m.contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"), "{m}");
        for (bad, says) in [
            ("", "empty"),
            ("   \n", "empty"),
            ("ssh-ed25519", "not a public key"),
            ("ssh-ed25519 not-base64!! me", "not a public key"),
            ("hello world", "not a public key"),
            (&format!("{ED25519}\n{ED25519}"), "several lines"),
            (&"A".repeat(MAX_PUBLIC_KEY_BYTES + 1), "at most"),
        ] {
            let m = message(bad);
            assert!(m.contains(says), "{bad:?}: {m}");
            assert!(m.contains("ssh-ed25519 AAAA... comment"), "{m}");
            if bad.len() > 12 {
                assert!(!m.contains(bad.trim()), "{m}");
            }
        }
    }
}
