//! Agent sessions on the public API's wire (issue 14): a conversation with one agent in one
//! sandbox, its status, its transcript, and the requests that create and update one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AgentJobState, AgentKind};

string_enum!(
    /// Where a session is. `idle`: ready for the next send (a new session, or its last send
    /// succeeded). `running`: a send is in flight (set by the server only). `failed`: its last
    /// send failed, or a client marked it so. `completed` and `cancelled`: a client marked it
    /// done or abandoned (`PATCH`), which sets `ended_at`. A send to a session in any status
    /// makes it `running`, then `idle` or `failed`, and clears `ended_at`.
    AgentSessionStatus "agent session status" {
        Cancelled => "cancelled",
        Completed => "completed",
        Failed => "failed",
        Idle => "idle",
        Running => "running",
    } expected "idle, running, completed, failed or cancelled"
);

/// One send of a session's transcript: the message and what came back (redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentTurn {
    /// The send's id (= its job id).
    pub id: String,
    pub state: AgentJobState,
    pub message: String,
    pub response: Option<String>,
    pub is_error: bool,
    pub error_code: Option<String>,
    pub exit_code: Option<i32>,
    pub is_new_session: bool,
    pub agent_session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A conversation with one agent in one sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSession {
    pub id: String,
    pub sandbox_id: String,
    pub org_id: String,
    /// The agent kind, `claude` or `codex`.
    pub agent_name: AgentKind,
    pub status: AgentSessionStatus,
    /// The agent's own id of the conversation, used to resume it.
    pub agent_session_id: Option<String>,
    pub turn_count: u64,
    pub started_at: DateTime<Utc>,
    /// Sessions do not end while their sandbox exists: always null.
    pub ended_at: Option<DateTime<Utc>>,
    /// The client's own metadata: the object given at create and changed by `PATCH`, returned
    /// as it was given (strings holding an injected value come back redacted). The server
    /// never writes into it.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub metadata: serde_json::Value,
    /// What the server records about the session, apart from the client's `metadata`:
    /// `credential`, the name of the credential the agent runs with.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub server_metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every send of the session, oldest first (on `GET .../sessions/{session_id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Vec<AgentTurn>>,
}

/// `POST /sandboxes/{id}/sessions`: a session with no sends yet; the first send to it starts
/// the agent's conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// `claude` or `codex`.
    pub agent_name: AgentKind,
    /// The client's own metadata: a JSON object of at most 16 KiB (serialized). Default `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub metadata: Option<serde_json::Value>,
}

/// `PATCH /sandboxes/{id}/sessions/{session_id}`: what to change; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSessionRequest {
    /// `idle`, `completed`, `failed` or `cancelled` (`running` is the server's to set, while a
    /// send runs). `completed`, `failed` and `cancelled` set `ended_at`; `idle` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentSessionStatus>,
    /// A JSON merge patch (RFC 7386) of the client's metadata: a key given a value sets it, a
    /// key given `null` removes it, nested objects merge the same way. The result must stay
    /// within 16 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub metadata: Option<serde_json::Value>,
}

/// `GET /sandboxes/{id}/sessions`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSessionsList {
    pub sessions: Vec<AgentSession>,
    /// How many sessions match, before `limit`/`offset`.
    pub total: u64,
}
