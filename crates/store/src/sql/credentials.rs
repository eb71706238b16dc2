//! Agent credentials (Claude and Codex OAuth documents and API keys) in both scopes, with the
//! user's default per kind. Values stay sealed; the resolver reads metadata only.

use amika_types::AgentKind;
use chrono::{DateTime, Utc};

use crate::backend::{params, Backend};
use crate::codec::{conflict_or_db, convert_all, expect_rows, parse_enum, Cell};
use crate::{CredentialRow, Result, Sealed, StoreError};

// The column list, so each SELECT and `CredentialRecord` stay in step.
macro_rules! columns {
    () => {
        "id, org_id, user_id, kind, credential_type, name, scope, is_default, version, expires_at, \
         kek_id, wrapped_key, ciphertext, created_at, updated_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO credentials (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
);
// Only if the row is still as it was read ($15, $16): a compare-and-set, so that two concurrent
// updates cannot both store the version they computed from the same old one.
const UPDATE: &str = "UPDATE credentials SET org_id = $2, user_id = $3, kind = $4, \
     credential_type = $5, name = $6, scope = $7, is_default = $8, version = $9, \
     expires_at = $10, kek_id = $11, wrapped_key = $12, ciphertext = $13, \
     updated_at = $14 WHERE id = $1 AND version = $15 AND updated_at = $16";
const GET: &str = concat!("SELECT ", columns!(), " FROM credentials WHERE id = $1");
const LIST_VISIBLE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM credentials WHERE org_id = $1 AND kind = $3 \
     AND (scope = 'org' OR user_id = $2) ORDER BY name, scope"
);
// Matching nothing is fine: there may be no other default to clear.
const CLEAR_DEFAULT: &str = "UPDATE credentials SET is_default = FALSE \
     WHERE user_id = $1 AND kind = $2 AND scope = 'user' AND id <> $3";
const DELETE: &str = "DELETE FROM credentials WHERE id = $1";

#[derive(sqlx::FromRow)]
struct CredentialRecord {
    id: String,
    org_id: String,
    user_id: String,
    kind: String,
    credential_type: String,
    name: String,
    scope: String,
    is_default: bool,
    version: i64,
    expires_at: Option<DateTime<Utc>>,
    #[sqlx(flatten, try_from = "crate::models::SealedColumns")]
    sealed: Sealed,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<CredentialRecord> for CredentialRow {
    type Error = StoreError;
    fn try_from(r: CredentialRecord) -> Result<Self> {
        let at = |column| Cell::new("credentials", &r.id, column);
        Ok(CredentialRow {
            kind: parse_enum(&r.kind, at("kind"))?,
            credential_type: parse_enum(&r.credential_type, at("credential_type"))?,
            scope: parse_enum(&r.scope, at("scope"))?,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            name: r.name,
            is_default: r.is_default,
            version: r.version,
            expires_at: r.expires_at,
            sealed: r.sealed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn conflict(row: &CredentialRow) -> String {
    format!(
        "a {} credential named {} already exists in {} scope",
        row.kind, row.name, row.scope
    )
}

pub(crate) async fn insert_credential(db: &impl Backend, row: &CredentialRow) -> Result<()> {
    let p = params![
        &row.id,
        &row.org_id,
        &row.user_id,
        row.kind.as_str(),
        row.credential_type.as_str(),
        &row.name,
        row.scope.as_str(),
        row.is_default,
        row.version,
        row.expires_at,
        &row.sealed.kek_id,
        &row.sealed.wrapped_key,
        &row.sealed.ciphertext,
        row.created_at,
        row.updated_at,
    ];
    db.execute(INSERT, &p)
        .await
        .map_err(|e| conflict_or_db(e, || conflict(row)))?;
    Ok(())
}

pub(crate) async fn update_credential(
    db: &impl Backend,
    row: &CredentialRow,
    previous: &CredentialRow,
) -> Result<bool> {
    let p = params![
        &row.id,
        &row.org_id,
        &row.user_id,
        row.kind.as_str(),
        row.credential_type.as_str(),
        &row.name,
        row.scope.as_str(),
        row.is_default,
        row.version,
        row.expires_at,
        &row.sealed.kek_id,
        &row.sealed.wrapped_key,
        &row.sealed.ciphertext,
        row.updated_at,
        previous.version,
        previous.updated_at,
    ];
    let done = db
        .execute(UPDATE, &p)
        .await
        .map_err(|e| conflict_or_db(e, || conflict(row)))?;
    Ok(done > 0)
}

pub(crate) async fn get_credential(db: &impl Backend, id: &str) -> Result<CredentialRow> {
    let record: Option<CredentialRecord> = db.fetch_optional(GET, &params![id]).await?;
    record.ok_or(StoreError::NotFound("credential"))?.try_into()
}

pub(crate) async fn list_visible_credentials(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
    kind: AgentKind,
) -> Result<Vec<CredentialRow>> {
    let p = params![org_id, user_id, kind.as_str()];
    let records: Vec<CredentialRecord> = db.fetch_all(LIST_VISIBLE, &p).await?;
    convert_all(records)
}

pub(crate) async fn clear_default_credential(
    db: &impl Backend,
    user_id: &str,
    kind: AgentKind,
    except_id: &str,
) -> Result<()> {
    let p = params![user_id, kind.as_str(), except_id];
    db.execute(CLEAR_DEFAULT, &p).await?;
    Ok(())
}

pub(crate) async fn delete_credential(db: &impl Backend, id: &str) -> Result<()> {
    let done = db.execute(DELETE, &params![id]).await?;
    expect_rows(done, "credential")
}
