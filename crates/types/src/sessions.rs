//! Agents on the public API's wire: a send (`agent-send`, its job form, its stream of events),
//! and sessions — a conversation with one agent in one sandbox, its status, its transcript, and
//! the requests that create and update one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{agent_only, is_false, AgentKind, ErrorBody};

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

string_enum!(
    /// Where an agent send (a job, a turn of a session) is: waiting, running, or finished —
    /// `done` with a reply, `failed` with an error reply (`is_error`).
    AgentJobState "agent job state" {
        Done => "done",
        Failed => "failed",
        Pending => "pending",
        Running => "running",
    } expected "pending, running, done or failed"
);

/// `POST /sandboxes/{id}/agent-send` and `POST /sandboxes/{id}/agent-send-jobs`.
///
/// Without `session_id` or `new_session`, the send continues the sandbox's latest session of
/// that agent (a new one when there is none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSendRequest {
    /// The prompt; passed to the agent as one argument, never through a shell.
    pub message: String,
    /// `claude` or `codex`; default: the session's agent, else the first kind resolved for
    /// the sandbox, else `claude`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "agent_only"
    )]
    pub agent: Option<AgentKind>,
    /// Continue this session (an id from an earlier answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Start a new session even if the sandbox has one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub new_session: bool,
    /// Seconds before the agent is stopped; at most the server's deadline (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// The directory the agent runs in, inside the sandbox: absolute, or relative to the
    /// sandbox's workspace (`/home/amika/workspace/<repo-name>` when it was made from a
    /// repository, else `/home/amika/workspace`). Default: the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// The agent's reply. `is_error` is true when the agent failed (it crashed, could not
/// authenticate, ran out of time, was cancelled); `response` then says what happened.
/// Every value injected into the sandbox is replaced by `[REDACTED:<name>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSendResponse {
    /// amika's session id: pass it as `session_id` to continue the conversation.
    pub session_id: String,
    /// The agent's own session id (what it was resumed with, or will be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_session_id: Option<String>,
    pub agent: AgentKind,
    /// This send's id; also its job id (`GET .../agent-send-jobs/{job_id}`).
    pub job_id: String,
    pub response: String,
    pub is_error: bool,
    /// Whether the agent started a new conversation (was not asked to resume one).
    pub is_new_session: bool,
    /// Why it failed, an `AgentErrorCode`: `agent_auth_failed`, `agent_unreachable`,
    /// `agent_crashed`, `agent_timeout`, `agent_cancelled`, ...; null on success.
    pub error_code: Option<String>,
    /// The agent process's exit status (128 + signal when killed); null when it never ended.
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    pub duration_ms: u64,
}

/// An agent-send job (`POST .../agent-send-jobs` → 202, `GET .../agent-send-jobs/{job_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSendJobResponse {
    pub job_id: String,
    pub state: AgentJobState,
    pub session_id: String,
    pub agent: AgentKind,
    pub agent_session_id: Option<String>,
    pub is_new_session: bool,
    pub is_error: bool,
    /// The reply text once the job is `done` or `failed`.
    pub result_text: Option<String>,
    /// The whole answer once the job is `done` or `failed`, as the synchronous form gives it.
    pub response: Option<AgentSendResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

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

string_enum!(
    /// What a streamed piece of an agent's progress is. `text`: part of its reply (Claude's
    /// text deltas, Codex's messages); `thinking`: its reasoning, when it shows it; `tool_call`:
    /// a tool it started (`tool` names it, `text` sums up its input: a command, a path);
    /// `tool_result`: what the tool gave back (at most 4 KiB of it).
    AgentDeltaKind "agent delta kind" {
        Text => "text",
        Thinking => "thinking",
        ToolCall => "tool_call",
        ToolResult => "tool_result",
    } expected "text, thinking, tool_call or tool_result"
);

/// The `status` event of a streamed send: where its job is (`pending`, then `running`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentStreamStatus {
    pub job_id: String,
    pub session_id: String,
    pub agent: AgentKind,
    pub is_new_session: bool,
    pub state: AgentJobState,
}

/// The `delta` event of a streamed send: a piece of the agent's progress, redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentStreamDelta {
    pub kind: AgentDeltaKind,
    pub text: String,
    /// The tool's name, for `tool_call` and `tool_result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

/// One event of a streamed send (`text/event-stream`; the SSE event name is `event`, the data
/// the rest as JSON). In order: one `status` per state (`pending`, `running`), any number of
/// `delta`s, then exactly one of `done` (the answer as `agent-send` gives it; the agent may
/// still have failed: `is_error`) or `error` (the error envelope, as `agent-send` answers it
/// with an HTTP error: `agent_auth_failed`, or the server could not follow the send).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentStreamEvent {
    Status(AgentStreamStatus),
    Delta(AgentStreamDelta),
    Done(AgentSendResponse),
    Error(ErrorBody),
}

impl AgentStreamEvent {
    /// The SSE event name: `status`, `delta`, `done` or `error`.
    pub fn name(&self) -> &'static str {
        match self {
            AgentStreamEvent::Status(_) => "status",
            AgentStreamEvent::Delta(_) => "delta",
            AgentStreamEvent::Done(_) => "done",
            AgentStreamEvent::Error(_) => "error",
        }
    }

    /// Whether this is the last event of its stream.
    pub fn is_end(&self) -> bool {
        matches!(self, AgentStreamEvent::Done(_) | AgentStreamEvent::Error(_))
    }
}
