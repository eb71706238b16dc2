//! Orgs, users and API keys: who may call the API, and in which org. Every request
//! authenticates, so the key-with-its-user lookup is one indexed query.

use chrono::{DateTime, Utc};

use crate::backend::{params, Backend};
use crate::codec::{conflict_or_db, expect_rows};
use crate::{ApiKeyRow, OrgRow, Result, StoreError, UserRow};

const CREATE_ORG: &str = "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)";
const GET_ORG: &str = "SELECT id, name, created_at FROM orgs WHERE id = $1";
const GET_ORG_BY_NAME: &str = "SELECT id, name, created_at FROM orgs WHERE name = $1";

const COUNT_USERS: &str = "SELECT COUNT(*) AS n FROM users";
const COUNT_USERS_IN_ORG: &str = "SELECT COUNT(*) AS n FROM users WHERE org_id = $1";
const CREATE_USER: &str = "INSERT INTO users (id, org_id, name, is_admin, created_at) \
     VALUES ($1, $2, $3, $4, $5)";
const GET_USER: &str = "SELECT id, org_id, name, is_admin, created_at FROM users WHERE id = $1";

// The column list, so each SELECT and `ApiKeyRow` stay in step.
macro_rules! api_key_columns {
    () => {
        "id, user_id, name, hash, obfuscated, last_used_at, created_at, updated_at"
    };
}
const CREATE_API_KEY: &str = concat!(
    "INSERT INTO api_keys (",
    api_key_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
const GET_API_KEY_BY_HASH: &str = concat!(
    "SELECT ",
    api_key_columns!(),
    " FROM api_keys WHERE hash = $1"
);
const GET_API_KEY_AND_USER_BY_HASH: &str =
    "SELECT k.id, k.user_id, k.name, k.hash, k.obfuscated, k.last_used_at, \
     k.created_at, k.updated_at, u.org_id AS u_org_id, u.name AS u_name, \
     u.is_admin AS u_is_admin, u.created_at AS u_created_at \
     FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hash = $1";
const LIST_API_KEYS: &str = concat!(
    "SELECT ",
    api_key_columns!(),
    " FROM api_keys WHERE user_id = $1 ORDER BY created_at, id"
);
// Matching the owner too: another user's key id is as good as a missing one.
const DELETE_API_KEY: &str = "DELETE FROM api_keys WHERE id = $1 AND user_id = $2";
const TOUCH_API_KEY: &str = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";

#[derive(sqlx::FromRow)]
struct Count {
    n: i64,
}

/// An API key joined with its user (columns of the user prefixed `u_`).
#[derive(sqlx::FromRow)]
struct ApiKeyUserRecord {
    #[sqlx(flatten)]
    key: ApiKeyRow,
    u_org_id: String,
    u_name: String,
    u_is_admin: bool,
    u_created_at: DateTime<Utc>,
}

impl From<ApiKeyUserRecord> for (ApiKeyRow, UserRow) {
    fn from(r: ApiKeyUserRecord) -> Self {
        let user = UserRow {
            id: r.key.user_id.clone(),
            org_id: r.u_org_id,
            name: r.u_name,
            is_admin: r.u_is_admin,
            created_at: r.u_created_at,
        };
        (r.key, user)
    }
}

pub(crate) async fn create_org(db: &impl Backend, org: &OrgRow) -> Result<()> {
    db.execute(CREATE_ORG, &params![&org.id, &org.name, org.created_at])
        .await
        .map_err(|e| conflict_or_db(e, || format!("an org named {} already exists", org.name)))?;
    Ok(())
}

pub(crate) async fn get_org(db: &impl Backend, id: &str) -> Result<OrgRow> {
    let record: Option<OrgRow> = db.fetch_optional(GET_ORG, &params![id]).await?;
    record.ok_or(StoreError::NotFound("org"))
}

pub(crate) async fn get_org_by_name(db: &impl Backend, name: &str) -> Result<OrgRow> {
    let record: Option<OrgRow> = db.fetch_optional(GET_ORG_BY_NAME, &params![name]).await?;
    record.ok_or(StoreError::NotFound("org"))
}

pub(crate) async fn count_users(db: &impl Backend) -> Result<i64> {
    let count: Count = db.fetch_one(COUNT_USERS, &[]).await?;
    Ok(count.n)
}

pub(crate) async fn count_users_in_org(db: &impl Backend, org_id: &str) -> Result<i64> {
    let count: Count = db.fetch_one(COUNT_USERS_IN_ORG, &params![org_id]).await?;
    Ok(count.n)
}

pub(crate) async fn create_user(db: &impl Backend, user: &UserRow) -> Result<()> {
    let p = params![
        &user.id,
        &user.org_id,
        &user.name,
        user.is_admin,
        user.created_at
    ];
    db.execute(CREATE_USER, &p).await.map_err(|e| {
        conflict_or_db(e, || {
            format!("a user named {} already exists in this org", user.name)
        })
    })?;
    Ok(())
}

pub(crate) async fn get_user(db: &impl Backend, id: &str) -> Result<UserRow> {
    let record: Option<UserRow> = db.fetch_optional(GET_USER, &params![id]).await?;
    record.ok_or(StoreError::NotFound("user"))
}

pub(crate) async fn create_api_key(db: &impl Backend, key: &ApiKeyRow) -> Result<()> {
    let p = params![
        &key.id,
        &key.user_id,
        &key.name,
        &key.hash,
        &key.obfuscated,
        key.last_used_at,
        key.created_at,
        key.updated_at,
    ];
    db.execute(CREATE_API_KEY, &p).await.map_err(|e| {
        // Keys are random, so only a reused id or hash can collide.
        conflict_or_db(e, || "this API key already exists".to_string())
    })?;
    Ok(())
}

pub(crate) async fn get_api_key_by_hash(db: &impl Backend, hash: &str) -> Result<ApiKeyRow> {
    let record: Option<ApiKeyRow> = db
        .fetch_optional(GET_API_KEY_BY_HASH, &params![hash])
        .await?;
    record.ok_or(StoreError::NotFound("api key"))
}

pub(crate) async fn get_api_key_and_user_by_hash(
    db: &impl Backend,
    hash: &str,
) -> Result<(ApiKeyRow, UserRow)> {
    let record: Option<ApiKeyUserRecord> = db
        .fetch_optional(GET_API_KEY_AND_USER_BY_HASH, &params![hash])
        .await?;
    record
        .map(Into::into)
        .ok_or(StoreError::NotFound("api key"))
}

pub(crate) async fn list_api_keys(db: &impl Backend, user_id: &str) -> Result<Vec<ApiKeyRow>> {
    Ok(db.fetch_all(LIST_API_KEYS, &params![user_id]).await?)
}

pub(crate) async fn delete_api_key(db: &impl Backend, user_id: &str, id: &str) -> Result<()> {
    let done = db.execute(DELETE_API_KEY, &params![id, user_id]).await?;
    expect_rows(done, "api key")
}

pub(crate) async fn touch_api_key(db: &impl Backend, id: &str, at: DateTime<Utc>) -> Result<()> {
    let done = db.execute(TOUCH_API_KEY, &params![id, at]).await?;
    expect_rows(done, "api key")
}
