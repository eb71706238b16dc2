//! Agent sessions (a conversation with one agent in one sandbox) and their turns (one send and
//! what came back). Every text arrives already redacted by the server; both go with their
//! sandbox.

use chrono::{DateTime, Utc};

use crate::backend::{params, Backend};
use crate::codec::{
    conflict_or_db, convert_all, decode_json, encode_json, expect_rows, parse_enum, Cell,
};
use crate::{AgentSessionRow, AgentTurnRow, Result, StoreError};

// The column lists, so each SELECT and its record stay in step.
macro_rules! session_columns {
    () => {
        "id, sandbox_id, org_id, user_id, agent, agent_session_id, credential_name, created_at, \
         updated_at, status, ended_at, metadata"
    };
}
macro_rules! turn_columns {
    () => {
        "id, session_id, sandbox_id, state, message, response, is_error, error_code, exit_code, \
         is_new_session, agent_session_id, cost_usd, duration_ms, deadline_at, created_at, \
         updated_at, finished_at"
    };
}

const INSERT_SESSION: &str = concat!(
    "INSERT INTO agent_sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
// Which sandbox, org, user and agent a session belongs to never changes.
const UPDATE_SESSION: &str = "UPDATE agent_sessions SET agent_session_id = $2, \
     credential_name = $3, updated_at = $4, status = $5, ended_at = $6, metadata = $7 \
     WHERE id = $1";
const GET_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM agent_sessions WHERE id = $1"
);
const LIST_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM agent_sessions WHERE sandbox_id = $1 ORDER BY updated_at DESC, id DESC"
);

const INSERT_TURN: &str = concat!(
    "INSERT INTO agent_turns (",
    turn_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
);
// The message, session and creation time are fixed when a turn is created.
const UPDATE_TURN: &str = "UPDATE agent_turns SET state = $2, response = $3, is_error = $4, \
     error_code = $5, exit_code = $6, is_new_session = $7, \
     agent_session_id = $8, cost_usd = $9, duration_ms = $10, \
     deadline_at = $11, updated_at = $12, finished_at = $13 WHERE id = $1";
const GET_TURN: &str = concat!(
    "SELECT ",
    turn_columns!(),
    " FROM agent_turns WHERE id = $1"
);
// Ids break ties within a microsecond (UUIDv7, so time-ordered themselves).
const LIST_TURNS: &str = concat!(
    "SELECT ",
    turn_columns!(),
    " FROM agent_turns WHERE session_id = $1 ORDER BY created_at, id"
);

#[derive(sqlx::FromRow)]
struct AgentSessionRecord {
    id: String,
    sandbox_id: String,
    org_id: String,
    user_id: String,
    agent: String,
    agent_session_id: Option<String>,
    credential_name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    status: String,
    ended_at: Option<DateTime<Utc>>,
    metadata: String,
}

impl TryFrom<AgentSessionRecord> for AgentSessionRow {
    type Error = StoreError;
    fn try_from(r: AgentSessionRecord) -> Result<Self> {
        Ok(AgentSessionRow {
            agent: parse_enum(&r.agent, Cell::new("agent_sessions", &r.id, "agent"))?,
            status: parse_enum(&r.status, Cell::new("agent_sessions", &r.id, "status"))?,
            metadata: decode_json(&r.metadata, Cell::new("agent_sessions", &r.id, "metadata"))?,
            ended_at: r.ended_at,
            id: r.id,
            sandbox_id: r.sandbox_id,
            org_id: r.org_id,
            user_id: r.user_id,
            agent_session_id: r.agent_session_id,
            credential_name: r.credential_name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AgentTurnRecord {
    id: String,
    session_id: String,
    sandbox_id: String,
    state: String,
    message: String,
    response: Option<String>,
    is_error: bool,
    error_code: Option<String>,
    exit_code: Option<i32>,
    is_new_session: bool,
    agent_session_id: Option<String>,
    cost_usd: Option<f64>,
    duration_ms: Option<i64>,
    deadline_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<AgentTurnRecord> for AgentTurnRow {
    type Error = StoreError;
    fn try_from(r: AgentTurnRecord) -> Result<Self> {
        Ok(AgentTurnRow {
            state: parse_enum(&r.state, Cell::new("agent_turns", &r.id, "state"))?,
            id: r.id,
            session_id: r.session_id,
            sandbox_id: r.sandbox_id,
            message: r.message,
            response: r.response,
            is_error: r.is_error,
            error_code: r.error_code,
            exit_code: r.exit_code,
            is_new_session: r.is_new_session,
            agent_session_id: r.agent_session_id,
            cost_usd: r.cost_usd,
            duration_ms: r.duration_ms,
            deadline_at: r.deadline_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        })
    }
}

pub(crate) async fn insert_agent_session(db: &impl Backend, row: &AgentSessionRow) -> Result<()> {
    let metadata = encode_json(&row.metadata, "agent_sessions", "metadata")?;
    let p = params![
        &row.id,
        &row.sandbox_id,
        &row.org_id,
        &row.user_id,
        row.agent.as_str(),
        &row.agent_session_id,
        &row.credential_name,
        row.created_at,
        row.updated_at,
        row.status.as_str(),
        row.ended_at,
        &metadata,
    ];
    db.execute(INSERT_SESSION, &p).await.map_err(|e| {
        conflict_or_db(e, || {
            format!("an agent session with id {} already exists", row.id)
        })
    })?;
    Ok(())
}

pub(crate) async fn update_agent_session(db: &impl Backend, row: &AgentSessionRow) -> Result<()> {
    let metadata = encode_json(&row.metadata, "agent_sessions", "metadata")?;
    let p = params![
        &row.id,
        &row.agent_session_id,
        &row.credential_name,
        row.updated_at,
        row.status.as_str(),
        row.ended_at,
        &metadata,
    ];
    let done = db.execute(UPDATE_SESSION, &p).await?;
    expect_rows(done, "agent session")
}

pub(crate) async fn get_agent_session(db: &impl Backend, id: &str) -> Result<AgentSessionRow> {
    let record: Option<AgentSessionRecord> = db.fetch_optional(GET_SESSION, &params![id]).await?;
    record
        .ok_or(StoreError::NotFound("agent session"))?
        .try_into()
}

pub(crate) async fn list_agent_sessions(
    db: &impl Backend,
    sandbox_id: &str,
) -> Result<Vec<AgentSessionRow>> {
    let records: Vec<AgentSessionRecord> =
        db.fetch_all(LIST_SESSIONS, &params![sandbox_id]).await?;
    convert_all(records)
}

pub(crate) async fn insert_agent_turn(db: &impl Backend, row: &AgentTurnRow) -> Result<()> {
    let p = params![
        &row.id,
        &row.session_id,
        &row.sandbox_id,
        row.state.as_str(),
        &row.message,
        &row.response,
        row.is_error,
        &row.error_code,
        row.exit_code,
        row.is_new_session,
        &row.agent_session_id,
        row.cost_usd,
        row.duration_ms,
        row.deadline_at,
        row.created_at,
        row.updated_at,
        row.finished_at,
    ];
    db.execute(INSERT_TURN, &p).await.map_err(|e| {
        conflict_or_db(e, || {
            format!("an agent turn with id {} already exists", row.id)
        })
    })?;
    Ok(())
}

pub(crate) async fn update_agent_turn(db: &impl Backend, row: &AgentTurnRow) -> Result<()> {
    let p = params![
        &row.id,
        row.state.as_str(),
        &row.response,
        row.is_error,
        &row.error_code,
        row.exit_code,
        row.is_new_session,
        &row.agent_session_id,
        row.cost_usd,
        row.duration_ms,
        row.deadline_at,
        row.updated_at,
        row.finished_at,
    ];
    let done = db.execute(UPDATE_TURN, &p).await?;
    expect_rows(done, "agent turn")
}

pub(crate) async fn get_agent_turn(db: &impl Backend, id: &str) -> Result<AgentTurnRow> {
    let record: Option<AgentTurnRecord> = db.fetch_optional(GET_TURN, &params![id]).await?;
    record.ok_or(StoreError::NotFound("agent turn"))?.try_into()
}

pub(crate) async fn list_agent_turns(
    db: &impl Backend,
    session_id: &str,
) -> Result<Vec<AgentTurnRow>> {
    let records: Vec<AgentTurnRecord> = db.fetch_all(LIST_TURNS, &params![session_id]).await?;
    convert_all(records)
}
