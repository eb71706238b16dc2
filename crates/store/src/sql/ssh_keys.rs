//! Registered SSH public keys: listed per user, found by fingerprint at login.

use chrono::{DateTime, Utc};

use crate::backend::{params, Backend};
use crate::codec::expect_rows;
use crate::{Result, StoreError};

/// A user's registered SSH public key (not a secret: the private key never reaches the server).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SshPublicKeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The key's algorithm, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// The key in OpenSSH form, without its comment: `ssh-ed25519 AAAA...`.
    pub public_key: String,
    /// `SHA256:...`, as `ssh-keygen -lf` shows it; unique across the server.
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, user_id, name, key_type, public_key, fingerprint, created_at"
    };
}
const INSERT: &str = concat!(
    "INSERT INTO ssh_public_keys (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM ssh_public_keys WHERE user_id = $1 ORDER BY name"
);
const BY_FINGERPRINT: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM ssh_public_keys WHERE fingerprint = $1"
);
const DELETE: &str = "DELETE FROM ssh_public_keys WHERE id = $1 AND user_id = $2";

pub(crate) async fn insert_ssh_public_key(db: &impl Backend, row: &SshPublicKeyRow) -> Result<()> {
    let p = params![
        &row.id,
        &row.user_id,
        &row.name,
        &row.key_type,
        &row.public_key,
        &row.fingerprint,
        row.created_at,
    ];
    match db.execute(INSERT, &p).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            // Both backends name the violated index (or its column) in the message.
            Err(StoreError::Conflict(
                if e.message().contains("fingerprint")
                    || e.constraint().is_some_and(|c| c.contains("fingerprint"))
                {
                    "this public key is already registered (keys are unique across the server)"
                        .into()
                } else {
                    format!("you already have an SSH public key named {:?}", row.name)
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn list_ssh_public_keys(
    db: &impl Backend,
    user_id: &str,
) -> Result<Vec<SshPublicKeyRow>> {
    Ok(db.fetch_all(LIST, &params![user_id]).await?)
}

pub(crate) async fn get_ssh_public_key_by_fingerprint(
    db: &impl Backend,
    fingerprint: &str,
) -> Result<SshPublicKeyRow> {
    let row: Option<SshPublicKeyRow> = db
        .fetch_optional(BY_FINGERPRINT, &params![fingerprint])
        .await?;
    row.ok_or(StoreError::NotFound("ssh public key"))
}

pub(crate) async fn delete_ssh_public_key(
    db: &impl Backend,
    id: &str,
    user_id: &str,
) -> Result<()> {
    let done = db.execute(DELETE, &params![id, user_id]).await?;
    expect_rows(done, "ssh public key")
}
