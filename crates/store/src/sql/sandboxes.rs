//! Sandboxes: one row each, with what was asked for, what was resolved and injected, and the
//! provider options, all decoded into their types here — a column that does not decode is
//! [`StoreError::Corrupt`], never a default (a defaulted network mode could open a `none`
//! sandbox). The state changes only through [`transition_sandbox`]'s (or [`start_sandbox`]'s)
//! compare-and-set, never through [`update_sandbox`].

use amika_types::SandboxState;
use chrono::{DateTime, Utc};

use crate::backend::{params, Backend};
use crate::codec::{
    conflict_or_db, convert_all, decode_json, encode_json, expect_rows, parse_enum, Cell,
};
use crate::{InjectionRecord, Result, SandboxHead, SandboxRow, StoreError};

const TABLE: &str = "sandboxes";

// The column list, so each SELECT and `SandboxRecord` stay in step.
macro_rules! columns {
    () => {
        "id, org_id, user_id, name, provider, state, error_message, secret_env_vars, \
         agent_credentials, resolved_agent_credentials, secret_names, injection, options, \
         workspace, created_at, updated_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO sandboxes (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
);
// Never the state: that changes only through TRANSITION and START, from the state it was read in.
const UPDATE: &str = "UPDATE sandboxes SET org_id = $2, user_id = $3, name = $4, provider = $5, \
     error_message = $6, secret_env_vars = $7, \
     agent_credentials = $8, resolved_agent_credentials = $9, \
     secret_names = $10, injection = $11, options = $12, workspace = $13, updated_at = $14 \
     WHERE id = $1";
const TRANSITION: &str = "UPDATE sandboxes SET state = $3, error_message = $4, updated_at = $5 \
     WHERE id = $1 AND state = $2";
const START: &str = "UPDATE sandboxes SET state = $3, error_message = NULL, injection = $4, \
     updated_at = $5 WHERE id = $1 AND state = $2";
const GET: &str = concat!("SELECT ", columns!(), " FROM sandboxes WHERE id = $1");
const GET_BY_NAME: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sandboxes WHERE user_id = $1 AND name = $2"
);
const LIST_FOR_USER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sandboxes WHERE user_id = $1 ORDER BY name"
);
const LIST_ALL: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sandboxes ORDER BY created_at, id"
);
const DELETE: &str = "DELETE FROM sandboxes WHERE id = $1";
/// A sandbox's identity and state, without the JSON columns (see [`SandboxHead`]).
macro_rules! head_columns {
    () => {
        "id, org_id, user_id, name, state, error_message, updated_at"
    };
}
const HEAD: &str = concat!("SELECT ", head_columns!(), " FROM sandboxes WHERE id = $1");
const HEAD_BY_NAME: &str = concat!(
    "SELECT ",
    head_columns!(),
    " FROM sandboxes WHERE user_id = $1 AND name = $2"
);
const LIST_ALL_HEADS: &str = concat!(
    "SELECT ",
    head_columns!(),
    " FROM sandboxes ORDER BY created_at, id"
);
const SET_ERROR: &str = "UPDATE sandboxes SET error_message = $3, updated_at = $4 \
     WHERE id = $1 AND state = $2";

#[derive(sqlx::FromRow)]
struct SandboxRecord {
    id: String,
    org_id: String,
    user_id: String,
    name: String,
    provider: String,
    state: String,
    error_message: Option<String>,
    secret_env_vars: String,
    agent_credentials: String,
    resolved_agent_credentials: String,
    secret_names: String,
    injection: String,
    options: String,
    workspace: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SandboxRecord> for SandboxRow {
    type Error = StoreError;
    fn try_from(r: SandboxRecord) -> Result<Self> {
        let at = |column| Cell::new(TABLE, &r.id, column);
        Ok(SandboxRow {
            state: parse_enum(&r.state, at("state"))?,
            secret_env_vars: decode_json(&r.secret_env_vars, at("secret_env_vars"))?,
            agent_credentials: decode_json(&r.agent_credentials, at("agent_credentials"))?,
            resolved_agent_credentials: decode_json(
                &r.resolved_agent_credentials,
                at("resolved_agent_credentials"),
            )?,
            secret_names: decode_json(&r.secret_names, at("secret_names"))?,
            injection: decode_json(&r.injection, at("injection"))?,
            options: decode_json(&r.options, at("options"))?,
            workspace: decode_json(&r.workspace, at("workspace"))?,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            name: r.name,
            provider: r.provider,
            error_message: r.error_message,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct HeadRecord {
    id: String,
    org_id: String,
    user_id: String,
    name: String,
    state: String,
    error_message: Option<String>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<HeadRecord> for SandboxHead {
    type Error = StoreError;
    fn try_from(r: HeadRecord) -> Result<Self> {
        Ok(SandboxHead {
            state: parse_enum(&r.state, Cell::new(TABLE, &r.id, "state"))?,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            name: r.name,
            error_message: r.error_message,
            updated_at: r.updated_at,
        })
    }
}

/// The JSON columns as stored, in column order.
struct JsonColumns {
    secret_env_vars: String,
    agent_credentials: String,
    resolved_agent_credentials: String,
    secret_names: String,
    injection: String,
    options: String,
    workspace: String,
}

impl JsonColumns {
    fn encode(row: &SandboxRow) -> Result<Self> {
        Ok(JsonColumns {
            secret_env_vars: encode_json(&row.secret_env_vars, TABLE, "secret_env_vars")?,
            agent_credentials: encode_json(&row.agent_credentials, TABLE, "agent_credentials")?,
            resolved_agent_credentials: encode_json(
                &row.resolved_agent_credentials,
                TABLE,
                "resolved_agent_credentials",
            )?,
            secret_names: encode_json(&row.secret_names, TABLE, "secret_names")?,
            injection: encode_json(&row.injection, TABLE, "injection")?,
            options: encode_json(&row.options, TABLE, "options")?,
            workspace: encode_json(&row.workspace, TABLE, "workspace")?,
        })
    }
}

fn conflict(row: &SandboxRow) -> String {
    format!("a sandbox named {} already exists", row.name)
}

pub(crate) async fn insert_sandbox(db: &impl Backend, row: &SandboxRow) -> Result<()> {
    let json = JsonColumns::encode(row)?;
    let p = params![
        &row.id,
        &row.org_id,
        &row.user_id,
        &row.name,
        &row.provider,
        row.state.as_str(),
        &row.error_message,
        &json.secret_env_vars,
        &json.agent_credentials,
        &json.resolved_agent_credentials,
        &json.secret_names,
        &json.injection,
        &json.options,
        &json.workspace,
        row.created_at,
        row.updated_at,
    ];
    db.execute(INSERT, &p)
        .await
        .map_err(|e| conflict_or_db(e, || conflict(row)))?;
    Ok(())
}

pub(crate) async fn update_sandbox(db: &impl Backend, row: &SandboxRow) -> Result<()> {
    let json = JsonColumns::encode(row)?;
    let p = params![
        &row.id,
        &row.org_id,
        &row.user_id,
        &row.name,
        &row.provider,
        &row.error_message,
        &json.secret_env_vars,
        &json.agent_credentials,
        &json.resolved_agent_credentials,
        &json.secret_names,
        &json.injection,
        &json.options,
        &json.workspace,
        row.updated_at,
    ];
    let done = db
        .execute(UPDATE, &p)
        .await
        .map_err(|e| conflict_or_db(e, || conflict(row)))?;
    expect_rows(done, "sandbox")
}

pub(crate) async fn transition_sandbox(
    db: &impl Backend,
    id: &str,
    from: SandboxState,
    to: SandboxState,
    error_message: Option<&str>,
    updated_at: DateTime<Utc>,
) -> Result<bool> {
    let p = params![id, from.as_str(), to.as_str(), error_message, updated_at];
    Ok(db.execute(TRANSITION, &p).await? == 1)
}

pub(crate) async fn start_sandbox(
    db: &impl Backend,
    id: &str,
    from: SandboxState,
    to: SandboxState,
    injection: &InjectionRecord,
    updated_at: DateTime<Utc>,
) -> Result<bool> {
    let injection = encode_json(injection, TABLE, "injection")?;
    let p = params![id, from.as_str(), to.as_str(), &injection, updated_at];
    Ok(db.execute(START, &p).await? == 1)
}

pub(crate) async fn get_sandbox(db: &impl Backend, id: &str) -> Result<SandboxRow> {
    let record: Option<SandboxRecord> = db.fetch_optional(GET, &params![id]).await?;
    record.ok_or(StoreError::NotFound("sandbox"))?.try_into()
}

pub(crate) async fn get_sandbox_by_name(
    db: &impl Backend,
    user_id: &str,
    name: &str,
) -> Result<SandboxRow> {
    let record: Option<SandboxRecord> = db
        .fetch_optional(GET_BY_NAME, &params![user_id, name])
        .await?;
    record.ok_or(StoreError::NotFound("sandbox"))?.try_into()
}

pub(crate) async fn list_sandboxes(db: &impl Backend, user_id: &str) -> Result<Vec<SandboxRow>> {
    let records: Vec<SandboxRecord> = db.fetch_all(LIST_FOR_USER, &params![user_id]).await?;
    convert_all(records)
}

pub(crate) async fn list_all_sandboxes(db: &impl Backend) -> Result<Vec<SandboxRow>> {
    let records: Vec<SandboxRecord> = db.fetch_all(LIST_ALL, &[]).await?;
    convert_all(records)
}

pub(crate) async fn delete_sandbox(db: &impl Backend, id: &str) -> Result<()> {
    let done = db.execute(DELETE, &params![id]).await?;
    expect_rows(done, "sandbox")
}

pub(crate) async fn list_all_sandbox_heads(
    db: &impl Backend,
) -> Result<Vec<(String, Result<SandboxHead>)>> {
    let records: Vec<HeadRecord> = db.fetch_all(LIST_ALL_HEADS, &[]).await?;
    Ok(records
        .into_iter()
        .map(|r| (r.id.clone(), r.try_into()))
        .collect())
}

pub(crate) async fn get_sandbox_head(db: &impl Backend, id: &str) -> Result<SandboxHead> {
    let record: Option<HeadRecord> = db.fetch_optional(HEAD, &params![id]).await?;
    record.ok_or(StoreError::NotFound("sandbox"))?.try_into()
}

pub(crate) async fn get_sandbox_head_by_name(
    db: &impl Backend,
    user_id: &str,
    name: &str,
) -> Result<SandboxHead> {
    let record: Option<HeadRecord> = db
        .fetch_optional(HEAD_BY_NAME, &params![user_id, name])
        .await?;
    record.ok_or(StoreError::NotFound("sandbox"))?.try_into()
}

pub(crate) async fn set_sandbox_error(
    db: &impl Backend,
    id: &str,
    state: SandboxState,
    error_message: Option<&str>,
    updated_at: DateTime<Utc>,
) -> Result<bool> {
    let p = params![id, state.as_str(), error_message, updated_at];
    Ok(db.execute(SET_ERROR, &p).await? == 1)
}
