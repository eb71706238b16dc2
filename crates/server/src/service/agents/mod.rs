//! Messages to the coding agents inside sandboxes: `agent-send`, its job form, and sessions.
//!
//! A send runs the agent's own CLI as a process *inside* the sandbox through the provider's
//! exec, so the agent sees exactly what was injected for its kind at create (DESIGN §5) and
//! nothing else. Its command line comes from a template in
//! [`ServerConfig::agent_commands`](crate::ServerConfig): the message becomes one argument
//! (never a shell word), the agent's own session id another.
//!
//! The agent's output is parsed (Claude's `--output-format json` object, Codex's `--json`
//! event lines), and every text — the reply, the message, error details — goes through the
//! sandbox's [`RedactionSet`] before it is stored or answered: an injected value never leaves
//! the server, even when the agent prints it.
//!
//! Sessions: amika's session (`ses_…`) maps to the agent's own conversation id, which is the
//! agent's to change (Claude answers a resumed conversation under a new id); amika keeps the
//! latest one and resumes with it.
//!
//! Lifetimes: a send has a deadline (the server's, 10 minutes by default; a request may ask for
//! less). At the deadline, or when a synchronous request is dropped because its client went
//! away, the exec handle is dropped, which kills the agent's process tree, and the send is
//! recorded as `agent_timeout` or `agent_cancelled`. A send whose server died on the way is
//! given up for lost when it is read after its deadline.
//!
//! One file per part: [`commands`] (the argv templates), [`send`] (a send's rows and run),
//! [`interpret`] (the agent output parser), [`unreachable`] (an agent that could not reach its
//! provider) and [`sessions`] (sessions, their turns, and the
//! reads of both). Here: the checks of a send request that need nothing stored.

mod commands;
mod interpret;
mod live;
mod progress;
mod send;
mod session_api;
mod sessions;
mod unreachable;

use std::time::Duration;

use amika_types as t;

use crate::service::{Result, ServiceError};

pub use commands::{
    default_agent_commands, default_agent_permissions, permission_args, AgentCommand,
    AgentCommandError, AgentCommands, AgentPermissions, TemplateProblem, MESSAGE_PLACEHOLDER,
    PERMISSIONS_PLACEHOLDER, SESSION_PLACEHOLDER,
};
pub use interpret::{auth_failure_message, AUTH_FAILURE_MARKERS};
pub(crate) use live::LiveSends;
pub use live::SendFollow;
pub use send::{send_outcome, usable_credential};

/// The server's deadline for a send unless configured otherwise.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Largest message: Linux refuses a single argument longer than 128 KiB (`MAX_ARG_STRLEN`), and
/// the message is one argument.
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024;

/// The checks of a send that need nothing stored: its message, its choice of session, and its
/// deadline, which it returns (at most `max`, the server's). Each error names its field.
pub(crate) fn check_send_request(req: &t::AgentSendRequest, max: Duration) -> Result<Duration> {
    let message = &req.message;
    if message.trim().is_empty() {
        return Err(ServiceError::bad_request(
            "message must not be empty: say what the agent should do",
        )
        .at("message"));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(ServiceError::bad_request(format!(
            "message is {} bytes, more than the {MAX_MESSAGE_BYTES} an agent can be given",
            message.len()
        ))
        .at("message"));
    }
    if message.contains('\0') {
        return Err(
            ServiceError::bad_request("message must not contain NUL characters").at("message"),
        );
    }
    if req.new_session && req.session_id.is_some() {
        return Err(ServiceError::bad_request(
            "session_id and new_session exclude each other: continue a session or start a new one",
        )
        .at("new_session"));
    }
    match req.timeout_secs {
        None => Ok(max),
        Some(0) => {
            Err(ServiceError::bad_request("timeout_secs must be at least 1").at("timeout_secs"))
        }
        // Over the server's own setting (its config), not a malformed request: 422, as a
        // create over one of the server's limits is.
        Some(s) if Duration::from_secs(s) > max => Err(ServiceError::unprocessable(
            amika_types::ErrorCode::OverLimit,
            format!(
                "timeout_secs {s} is longer than this server's agent deadline of {}s",
                max.as_secs()
            ),
        )
        .at("timeout_secs")),
        Some(s) => Ok(Duration::from_secs(s)),
    }
}
