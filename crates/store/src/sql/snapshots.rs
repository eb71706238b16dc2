//! Snapshots: one row per captured (or capturing, or failed) sandbox archive. The archive is in
//! the data dir; the row holds its wrapped data key and what it was captured from.

use chrono::{DateTime, Utc};

use crate::backend::{params, Backend};
use crate::codec::{
    conflict_or_db, convert_all, decode_json, encode_json, expect_rows, parse_enum, Cell,
};
use crate::{RepoRecord, Result, Sealed, SnapshotRow, SnapshotUsage, StoreError};

macro_rules! columns {
    () => {
        "id, org_id, user_id, name, description, mode, state, error_message, provider, \
         source_sandbox_id, source_sandbox_name, repo, preset, size, size_bytes, kek_id, \
         wrapped_key, created_at, updated_at, scope"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO snapshots (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
);
// Owner, name, mode and origin never change.
const UPDATE: &str = "UPDATE snapshots SET state = $2, error_message = $3, size_bytes = $4, \
     kek_id = $5, wrapped_key = $6, updated_at = $7 WHERE id = $1";
const GET: &str = concat!("SELECT ", columns!(), " FROM snapshots WHERE id = $1");
// The user's own snapshot (either scope) shadows the org's of the same name; one branch per
// unique index, as for secrets.
const FIND_VISIBLE: &str = concat!(
    "SELECT ",
    columns!(),
    ", 0 AS rank FROM snapshots WHERE user_id = $2 AND org_id = $1 AND name = $3 UNION ALL SELECT ",
    columns!(),
    ", 1 AS rank FROM snapshots WHERE scope = 'org' AND org_id = $1 AND name = $3 \
     ORDER BY rank LIMIT 1"
);
const LIST_VISIBLE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM snapshots WHERE org_id = $1 AND (user_id = $2 OR scope = 'org') \
     ORDER BY created_at DESC, id DESC"
);
// Bytes of archives held by the user (any scope) and by the whole org.
const USAGE: &str =
    "SELECT CAST(COALESCE(SUM(CASE WHEN user_id = $2 THEN size_bytes ELSE 0 END), 0) \
     AS BIGINT) AS user_bytes, CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS org_bytes \
     FROM snapshots WHERE org_id = $1";
const LIST_ALL: &str = concat!("SELECT ", columns!(), " FROM snapshots ORDER BY id");
const DELETE: &str = "DELETE FROM snapshots WHERE id = $1";

#[derive(sqlx::FromRow)]
struct SnapshotRecord {
    id: String,
    org_id: String,
    user_id: String,
    name: String,
    description: Option<String>,
    mode: String,
    state: String,
    error_message: Option<String>,
    provider: String,
    source_sandbox_id: Option<String>,
    source_sandbox_name: Option<String>,
    repo: Option<String>,
    preset: Option<String>,
    size: Option<String>,
    size_bytes: Option<i64>,
    kek_id: String,
    wrapped_key: Vec<u8>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    scope: String,
}

impl TryFrom<SnapshotRecord> for SnapshotRow {
    type Error = StoreError;
    fn try_from(r: SnapshotRecord) -> Result<Self> {
        let repo: Option<RepoRecord> = match &r.repo {
            Some(text) => Some(decode_json(text, Cell::new("snapshots", &r.id, "repo"))?),
            None => None,
        };
        Ok(SnapshotRow {
            mode: parse_enum(&r.mode, Cell::new("snapshots", &r.id, "mode"))?,
            state: parse_enum(&r.state, Cell::new("snapshots", &r.id, "state"))?,
            scope: parse_enum(&r.scope, Cell::new("snapshots", &r.id, "scope"))?,
            repo,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            name: r.name,
            description: r.description,
            error_message: r.error_message,
            provider: r.provider,
            source_sandbox_id: r.source_sandbox_id,
            source_sandbox_name: r.source_sandbox_name,
            preset: r.preset,
            size: r.size,
            size_bytes: r.size_bytes,
            sealed: Sealed {
                kek_id: r.kek_id,
                wrapped_key: r.wrapped_key,
                ciphertext: Vec::new(),
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) async fn insert_snapshot(db: &impl Backend, row: &SnapshotRow) -> Result<()> {
    let repo = match &row.repo {
        Some(repo) => Some(encode_json(repo, "snapshots", "repo")?),
        None => None,
    };
    let p = params![
        &row.id,
        &row.org_id,
        &row.user_id,
        &row.name,
        &row.description,
        row.mode.as_str(),
        row.state.as_str(),
        &row.error_message,
        &row.provider,
        &row.source_sandbox_id,
        &row.source_sandbox_name,
        &repo,
        &row.preset,
        &row.size,
        row.size_bytes,
        &row.sealed.kek_id,
        &row.sealed.wrapped_key,
        row.created_at,
        row.updated_at,
        row.scope.as_str(),
    ];
    db.execute(INSERT, &p).await.map_err(|e| {
        conflict_or_db(e, || {
            format!("a snapshot named {:?} already exists", row.name)
        })
    })?;
    Ok(())
}

pub(crate) async fn update_snapshot(db: &impl Backend, row: &SnapshotRow) -> Result<()> {
    let p = params![
        &row.id,
        row.state.as_str(),
        &row.error_message,
        row.size_bytes,
        &row.sealed.kek_id,
        &row.sealed.wrapped_key,
        row.updated_at,
    ];
    let done = db.execute(UPDATE, &p).await?;
    expect_rows(done, "snapshot")
}

pub(crate) async fn get_snapshot(db: &impl Backend, id: &str) -> Result<SnapshotRow> {
    let record: Option<SnapshotRecord> = db.fetch_optional(GET, &params![id]).await?;
    record.ok_or(StoreError::NotFound("snapshot"))?.try_into()
}

#[derive(sqlx::FromRow)]
struct Ranked {
    #[sqlx(flatten)]
    record: SnapshotRecord,
    #[allow(dead_code)] // read only by the query's ORDER BY
    rank: i32,
}

pub(crate) async fn find_visible_snapshot(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
    name: &str,
) -> Result<SnapshotRow> {
    let found: Option<Ranked> = db
        .fetch_optional(FIND_VISIBLE, &params![org_id, user_id, name])
        .await?;
    found
        .ok_or(StoreError::NotFound("snapshot"))?
        .record
        .try_into()
}

pub(crate) async fn list_visible_snapshots(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
) -> Result<Vec<SnapshotRow>> {
    let records: Vec<SnapshotRecord> = db
        .fetch_all(LIST_VISIBLE, &params![org_id, user_id])
        .await?;
    convert_all(records)
}

#[derive(sqlx::FromRow)]
struct Usage {
    user_bytes: i64,
    org_bytes: i64,
}

pub(crate) async fn snapshot_usage(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
) -> Result<SnapshotUsage> {
    let usage: Usage = db.fetch_one(USAGE, &params![org_id, user_id]).await?;
    Ok(SnapshotUsage {
        user_bytes: usage.user_bytes.max(0) as u64,
        org_bytes: usage.org_bytes.max(0) as u64,
    })
}

pub(crate) async fn list_all_snapshots(db: &impl Backend) -> Result<Vec<SnapshotRow>> {
    let records: Vec<SnapshotRecord> = db.fetch_all(LIST_ALL, &params![]).await?;
    convert_all(records)
}

pub(crate) async fn delete_snapshot(db: &impl Backend, id: &str) -> Result<()> {
    let done = db.execute(DELETE, &params![id]).await?;
    expect_rows(done, "snapshot")
}
