//! SSH access tokens: looked up by the hash of the token a client presents, never by the token.

use chrono::{DateTime, Utc};

use crate::backend::{params, Backend};
use crate::codec::{conflict_or_db, expect_rows};
use crate::{Result, StoreError};

/// An SSH access token of one user for one sandbox. The token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SshTokenRow {
    pub id: String,
    /// Hex SHA-256 of the token.
    pub hash: String,
    pub user_id: String,
    pub sandbox_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

macro_rules! columns {
    () => {
        "id, hash, user_id, sandbox_id, created_at, expires_at, revoked_at"
    };
}
const INSERT: &str = concat!(
    "INSERT INTO ssh_tokens (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
const GET_BY_HASH: &str = concat!("SELECT ", columns!(), " FROM ssh_tokens WHERE hash = $1");
// Matching the sandbox and its user too: another sandbox's token is as good as a missing one.
const REVOKE: &str = "UPDATE ssh_tokens SET revoked_at = $4 \
     WHERE hash = $1 AND sandbox_id = $2 AND user_id = $3 AND revoked_at IS NULL";

pub(crate) async fn insert_ssh_token(db: &impl Backend, row: &SshTokenRow) -> Result<()> {
    let p = params![
        &row.id,
        &row.hash,
        &row.user_id,
        &row.sandbox_id,
        row.created_at,
        row.expires_at,
        row.revoked_at,
    ];
    db.execute(INSERT, &p)
        .await
        .map_err(|e| conflict_or_db(e, || "this SSH token already exists".to_string()))?;
    Ok(())
}

pub(crate) async fn get_ssh_token_by_hash(db: &impl Backend, hash: &str) -> Result<SshTokenRow> {
    let row: Option<SshTokenRow> = db.fetch_optional(GET_BY_HASH, &params![hash]).await?;
    row.ok_or(StoreError::NotFound("ssh token"))
}

pub(crate) async fn revoke_ssh_token(
    db: &impl Backend,
    hash: &str,
    sandbox_id: &str,
    user_id: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let done = db
        .execute(REVOKE, &params![hash, sandbox_id, user_id, at])
        .await?;
    expect_rows(done, "ssh token")
}
