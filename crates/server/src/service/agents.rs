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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amika_sandbox::lifecycle::{check_transition, Operation};
use amika_sandbox::{ExecEvent, ExecHandle, ExecSpec, KeyedLock, ProviderError};
use amika_store::{AgentSessionRow, AgentTurnRow, SandboxRow, StoreError};
use amika_types::{
    self as t, AgentJobState, AgentKind, AgentSessionStatus, ErrorCode, ResolutionOutcome,
    SandboxState,
};
use serde_json::{json, Value};

use super::audit::Subject;
use super::redaction::RedactionSet;
use super::{new_id, now, Caller, Result, Service, ServiceError};

/// The server's deadline for a send unless configured otherwise.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(600);
/// The template argument replaced by the message, whole.
pub const MESSAGE_PLACEHOLDER: &str = "{message}";
/// Replaced by the agent's own session id wherever it appears in a resume template's argument.
pub const SESSION_PLACEHOLDER: &str = "{session}";
/// Largest message: Linux refuses a single argument longer than 128 KiB (`MAX_ARG_STRLEN`), and
/// the message is one argument.
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024;
/// Most of an agent's stdout that is kept; the rest is read and dropped.
const MAX_STDOUT_BYTES: usize = 8 * 1024 * 1024;
/// How much of the end of an agent's stderr is kept (error replies quote it).
const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// How much of stderr or unreadable stdout an error reply quotes.
const QUOTED_CHARS: usize = 2000;
/// A send still pending or running this long after its deadline lost its server.
const LOST_GRACE: Duration = Duration::from_secs(60);
/// The provider's own timeout, a backstop behind ours.
const PROVIDER_TIMEOUT_GRACE: Duration = Duration::from_secs(5);

/// Output of a failed agent that means its provider refused the credential (matched without
/// regard to case, only when the agent failed). A bare `401` is not one: a failed run's output
/// may mention the number for any reason (a line number, the agent's own reply).
pub const AUTH_FAILURE_MARKERS: &[&str] = &[
    "authentication_error",
    "api error: 401",
    "status 401",
    "401 unauthorized",
    "invalid api key",
    "incorrect api key",
    "invalid x-api-key",
    "oauth token has expired",
    "invalid bearer token",
    "not logged in",
    "please run /login",
];

/// How one agent is started inside a sandbox: argv templates.
///
/// An argument that is exactly [`MESSAGE_PLACEHOLDER`] is replaced by the message as one
/// argument; [`SESSION_PLACEHOLDER`] inside an argument of `resume` is replaced by the agent's
/// session id. Nothing else is substituted, and the replaced text is never looked at again (a
/// message that contains `{session}` stays as it is).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCommand {
    /// Starts a new conversation.
    pub new_session: Vec<String>,
    /// Continues the conversation the agent knows as `{session}`.
    pub resume: Vec<String>,
}

/// The command of each agent kind.
pub type AgentCommands = BTreeMap<AgentKind, AgentCommand>;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The real agents' command lines.
///
/// - Claude Code: `claude -p --output-format json [--resume SESSION] -- MESSAGE` (print mode,
///   one JSON result object on stdout).
/// - Codex: `codex exec --json --skip-git-repo-check [resume SESSION] -- MESSAGE` (`exec resume`
///   is Codex's non-interactive continuation; `--json` prints event lines;
///   `--skip-git-repo-check` because a sandbox's workspace need not be a git repository, which
///   `codex exec` otherwise refuses).
///
/// The message comes last, after `--`, so a message that starts with `-` is never read as an
/// option by either CLI.
pub fn default_agent_commands() -> AgentCommands {
    BTreeMap::from([
        (
            AgentKind::Claude,
            AgentCommand {
                new_session: argv(&["claude", "-p", "--output-format", "json", "--", "{message}"]),
                resume: argv(&[
                    "claude",
                    "-p",
                    "--output-format",
                    "json",
                    "--resume",
                    "{session}",
                    "--",
                    "{message}",
                ]),
            },
        ),
        (
            AgentKind::Codex,
            AgentCommand {
                new_session: argv(&[
                    "codex",
                    "exec",
                    "--json",
                    "--skip-git-repo-check",
                    "--",
                    "{message}",
                ]),
                resume: argv(&[
                    "codex",
                    "exec",
                    "--json",
                    "--skip-git-repo-check",
                    "resume",
                    "{session}",
                    "--",
                    "{message}",
                ]),
            },
        ),
    ])
}

impl AgentCommand {
    /// Whether both templates can be used: a program first, the message exactly once, the
    /// session only (and at least once) in `resume`.
    pub fn validate(&self, kind: AgentKind) -> std::result::Result<(), String> {
        for (name, template, needs_session) in [
            ("new_session", &self.new_session, false),
            ("resume", &self.resume, true),
        ] {
            let what = format!("the {kind} agent's {name} command template {template:?}");
            let program = template.first().map(String::as_str).unwrap_or("");
            if program.is_empty() || program.contains('{') {
                return Err(format!("{what} must start with the program to run"));
            }
            let messages = template
                .iter()
                .filter(|a| *a == MESSAGE_PLACEHOLDER)
                .count();
            if messages != 1 {
                return Err(format!(
                    "{what} must have exactly one argument {MESSAGE_PLACEHOLDER}"
                ));
            }
            let sessions = template
                .iter()
                .filter(|a| a.contains(SESSION_PLACEHOLDER))
                .count();
            match (needs_session, sessions) {
                (true, 0) => return Err(format!("{what} must contain {SESSION_PLACEHOLDER}")),
                (false, n) if n > 0 => {
                    return Err(format!("{what} must not contain {SESSION_PLACEHOLDER}"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The argv of one send: `resume` with the agent's session id, else `new_session`.
    pub fn argv(&self, message: &str, resume: Option<&str>) -> Vec<String> {
        let template = if resume.is_some() {
            &self.resume
        } else {
            &self.new_session
        };
        template
            .iter()
            .map(|arg| match (arg.as_str(), resume) {
                (MESSAGE_PLACEHOLDER, _) => message.to_string(),
                (_, Some(session)) => arg.replace(SESSION_PLACEHOLDER, session),
                _ => arg.clone(),
            })
            .collect()
    }
}

/// An agent's session id is passed back to it as an argument: only plain ids are kept (a
/// UUID, `ses_…`), never something that could read as an option.
fn plain_session_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// What an agent's stdout said.
#[derive(Debug, Default, Clone, PartialEq)]
struct Parsed {
    text: Option<String>,
    session_id: Option<String>,
    is_error: bool,
    cost_usd: Option<f64>,
}

/// `claude -p --output-format json`: one `{"type":"result", ...}` object (after any other
/// lines a wrapper may have printed).
fn parse_claude(stdout: &str) -> Option<Parsed> {
    let whole = serde_json::from_str::<Value>(stdout.trim()).ok();
    let doc = whole.filter(|v| v.is_object()).or_else(|| {
        stdout
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .find(|v| v["type"] == "result")
    })?;
    let text = match &doc["result"] {
        Value::String(s) => Some(s.clone()),
        _ => doc["error"]
            .as_str()
            .or_else(|| doc["error"]["message"].as_str())
            .map(str::to_string),
    };
    Some(Parsed {
        text,
        session_id: doc["session_id"].as_str().map(str::to_string),
        is_error: doc["is_error"].as_bool().unwrap_or(false)
            || doc["subtype"]
                .as_str()
                .is_some_and(|s| s.starts_with("error")),
        cost_usd: doc["total_cost_usd"]
            .as_f64()
            .or_else(|| doc["cost_usd"].as_f64()),
    })
}

/// `codex exec --json`: event lines. The current format (`thread.started`, `item.completed`
/// with an `agent_message`, `turn.failed`, `error`) and the earlier one (`{"msg": {...}}` with
/// `session_configured`, `agent_message`, `error`). The reply is the last agent message.
fn parse_codex(stdout: &str) -> Option<Parsed> {
    let mut parsed = Parsed::default();
    let mut any = false;
    for line in stdout.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        any = true;
        let msg = &event["msg"];
        match (event["type"].as_str(), msg["type"].as_str()) {
            (Some("thread.started"), _) => {
                parsed.session_id = event["thread_id"].as_str().map(str::to_string)
            }
            (Some("item.completed"), _) if event["item"]["type"] == "agent_message" => {
                parsed.text = event["item"]["text"].as_str().map(str::to_string)
            }
            (Some("turn.failed"), _) => {
                parsed.is_error = true;
                parsed.text = event["error"]["message"].as_str().map(str::to_string);
            }
            (Some("error"), _) => {
                parsed.is_error = true;
                parsed.text = event["message"].as_str().map(str::to_string);
            }
            (_, Some("session_configured")) => {
                parsed.session_id = msg["session_id"].as_str().map(str::to_string)
            }
            (_, Some("agent_message")) => parsed.text = msg["message"].as_str().map(str::to_string),
            (_, Some("error" | "stream_error")) => {
                parsed.is_error = true;
                parsed.text = msg["message"].as_str().map(str::to_string);
            }
            _ => {}
        }
    }
    any.then_some(parsed)
}

/// How an agent process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Exited(i32),
    /// Our deadline passed; its process tree was killed.
    TimedOut,
    /// The event stream ended without an exit status.
    NoStatus,
    /// The sandbox stopped (or was deleted) under it.
    SandboxStopped,
    /// The provider could not start it.
    StartFailed(String),
}

/// The outcome of a send, before redaction.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    text: String,
    is_error: bool,
    error_code: Option<&'static str>,
    exit_code: Option<i32>,
    agent_session_id: Option<String>,
    cost_usd: Option<f64>,
}

/// The message of an authentication failure, naming the credential (never its value).
pub fn auth_failure_message(credential: &str) -> String {
    format!(
        "the agent could not authenticate with its provider; credential {credential} may have expired or been revoked"
    )
}

fn looks_like_auth_failure(stdout: &str, stderr: &str) -> bool {
    let out = stdout.to_lowercase();
    let err = stderr.to_lowercase();
    AUTH_FAILURE_MARKERS
        .iter()
        .any(|m| out.contains(m) || err.contains(m))
}

/// The last `QUOTED_CHARS` characters of a text, trimmed.
fn tail(text: &str) -> String {
    let text = text.trim();
    let n = text.chars().count();
    if n <= QUOTED_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().skip(n - QUOTED_CHARS).collect();
    format!("…{cut}")
}

/// What the agent's output and ending mean for the caller. Pure (`redact` is the sandbox's
/// redaction), so every case is unit-tested.
///
/// Every text that can be shown is redacted before it is parsed or cut to size: a cut inside a
/// value would leave a piece of it that no longer matches. Parsed strings are redacted once
/// more, for values that only appear once JSON escapes are undone.
fn interpret(
    kind: AgentKind,
    program: &str,
    run: &AgentRun,
    ending: &Ending,
    timeout: Duration,
    credential: &str,
    redact: &dyn Fn(&str) -> String,
) -> Reply {
    let (raw_out, raw_err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    let (out, err) = (redact(&raw_out), redact(&raw_err));
    let parsed = match kind {
        AgentKind::Claude => parse_claude(&out),
        AgentKind::Codex => parse_codex(&out),
    }
    .map(|p| Parsed {
        text: p.text.map(|t| redact(&t)),
        session_id: p.session_id.filter(|id| redact(id) == *id),
        ..p
    });
    let p = parsed.clone().unwrap_or_default();
    let failure = |text: String, code: &'static str, exit_code: Option<i32>| Reply {
        text,
        is_error: true,
        error_code: Some(code),
        exit_code,
        agent_session_id: p.session_id.clone().filter(|s| plain_session_id(s)),
        cost_usd: p.cost_usd,
    };
    let code = match ending {
        Ending::TimedOut => {
            return failure(
                format!(
                "the agent did not finish within {}s and was stopped (its processes were killed)",
                timeout.as_secs()
            ),
                "agent_timeout",
                None,
            )
        }
        Ending::SandboxStopped => {
            return failure(
                "the sandbox stopped while the agent was running".into(),
                "sandbox_stopped",
                None,
            )
        }
        Ending::NoStatus => {
            return failure(
                "the agent ended without an exit status".into(),
                "agent_crashed",
                None,
            )
        }
        Ending::StartFailed(why) => {
            return failure(
                // The provider's message is text like any other: redacted before it is shown.
                format!("the agent could not be started: {}", redact(why)),
                "agent_crashed",
                None,
            );
        }
        Ending::Exited(code) => *code,
    };
    if (code != 0 || p.is_error) && looks_like_auth_failure(&raw_out, &raw_err) {
        return failure(
            auth_failure_message(credential),
            "agent_auth_failed",
            Some(code),
        );
    }
    if code == 127 {
        return failure(
            format!("the agent's command {program:?} was not found in the sandbox (exit status 127): install it there, or set its command in the server's agent_commands"),
            "agent_crashed",
            Some(code),
        );
    }
    if code != 0 {
        let detail = p
            .text
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| err.to_string());
        let mut text = format!("the agent exited with status {code}");
        if !detail.trim().is_empty() {
            text.push_str(": ");
            text.push_str(&tail(&detail));
        }
        return failure(text, "agent_crashed", Some(code));
    }
    match parsed {
        Some(Parsed {
            text: Some(text),
            is_error: false,
            ..
        }) => Reply {
            text,
            is_error: false,
            error_code: None,
            exit_code: Some(0),
            agent_session_id: p.session_id.clone().filter(|s| plain_session_id(s)),
            cost_usd: p.cost_usd,
        },
        Some(Parsed { is_error: true, .. }) => failure(
            p.text
                .clone()
                .unwrap_or_else(|| "the agent reported an error without a message".into()),
            "agent_error",
            Some(0),
        ),
        _ => {
            let mut text = format!(
                "the agent's output is not what {program:?} prints in this mode ({})",
                match kind {
                    AgentKind::Claude => "one JSON result object",
                    AgentKind::Codex => "JSON event lines with an agent message",
                }
            );
            if run.stdout_truncated {
                text.push_str(&format!("; it printed more than {MAX_STDOUT_BYTES} bytes"));
            }
            // Stdout cut at its limit may end inside a value, whose piece redaction cannot
            // recognise: such output is never quoted.
            let shown = if out.trim().is_empty() || run.stdout_truncated {
                &err
            } else {
                &out
            };
            if !shown.trim().is_empty() {
                text.push_str(": ");
                text.push_str(&tail(shown));
            }
            failure(text, "agent_bad_output", Some(0))
        }
    }
}

/// What a run collected.
#[derive(Debug, Default)]
struct AgentRun {
    stdout: Vec<u8>,
    stdout_truncated: bool,
    stderr: Vec<u8>,
}

/// Relay an exec's events into `run` until the command exits.
async fn collect(mut handle: ExecHandle, run: &mut AgentRun) -> Ending {
    while let Some(event) = handle.events.recv().await {
        match event {
            ExecEvent::Stdout(bytes) => {
                let room = MAX_STDOUT_BYTES.saturating_sub(run.stdout.len());
                if bytes.len() > room {
                    run.stdout_truncated = true;
                }
                run.stdout
                    .extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            ExecEvent::Stderr(bytes) => {
                run.stderr.extend_from_slice(&bytes);
                if run.stderr.len() > STDERR_TAIL_BYTES {
                    let excess = run.stderr.len() - STDERR_TAIL_BYTES;
                    run.stderr.drain(..excess);
                }
            }
            ExecEvent::Exit(code) => return Ending::Exited(code),
        }
    }
    Ending::NoStatus
}

/// A validated send whose rows are written, ready to run.
struct PreparedSend {
    sandbox: SandboxRow,
    session: AgentSessionRow,
    turn: AgentTurnRow,
    argv: Vec<String>,
    timeout: Duration,
    credential: String,
    redactions: Arc<RedactionSet>,
    /// Armed as soon as the turn is written, so a send dropped even before its agent started
    /// does not leave its session busy until the deadline.
    guard: CancelGuard,
}

/// Records a send as cancelled if its future is dropped before it finished (the synchronous
/// request's client went away). The exec handle, dropped with the same future, kills the agent.
struct CancelGuard {
    svc: Service,
    turn: Option<AgentTurnRow>,
    started: Instant,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        finish_turn(
            &mut turn,
            true,
            Some("agent_cancelled"),
            "the request was cancelled before the agent finished; the agent was stopped".into(),
            None,
            self.started.elapsed(),
        );
        let store = self.svc.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.update_agent_turn(&turn).await {
                    tracing::warn!(job_id = %turn.id, "cannot record a cancelled agent send: {e}");
                }
            });
        }
    }
}

fn finish_turn(
    turn: &mut AgentTurnRow,
    is_error: bool,
    error_code: Option<&str>,
    text: String,
    exit_code: Option<i32>,
    elapsed: Duration,
) {
    let at = now();
    turn.state = if is_error {
        AgentJobState::Failed
    } else {
        AgentJobState::Done
    };
    turn.response = Some(text);
    turn.is_error = is_error;
    turn.error_code = error_code.map(str::to_string);
    turn.exit_code = exit_code;
    turn.duration_ms = Some(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
    turn.updated_at = at;
    turn.finished_at = Some(at);
}

fn in_flight(turn: &AgentTurnRow) -> bool {
    matches!(turn.state, AgentJobState::Pending | AgentJobState::Running)
}

fn turn_response(session: &AgentSessionRow, turn: &AgentTurnRow) -> t::AgentSendResponse {
    t::AgentSendResponse {
        session_id: session.id.clone(),
        agent_session_id: turn.agent_session_id.clone(),
        agent: session.agent,
        job_id: turn.id.clone(),
        response: turn.response.clone().unwrap_or_default(),
        is_error: turn.is_error,
        is_new_session: turn.is_new_session,
        error_code: turn.error_code.clone(),
        exit_code: turn.exit_code,
        cost_usd: turn.cost_usd,
        duration_ms: turn
            .duration_ms
            .and_then(|d| u64::try_from(d).ok())
            .unwrap_or(0),
    }
}

fn job_response(session: &AgentSessionRow, turn: &AgentTurnRow) -> t::AgentSendJobResponse {
    let finished = !in_flight(turn);
    t::AgentSendJobResponse {
        job_id: turn.id.clone(),
        state: turn.state,
        session_id: session.id.clone(),
        agent: session.agent,
        agent_session_id: turn.agent_session_id.clone(),
        is_new_session: turn.is_new_session,
        is_error: turn.is_error,
        result_text: finished.then(|| turn.response.clone().unwrap_or_default()),
        response: finished.then(|| turn_response(session, turn)),
        cost_usd: turn.cost_usd,
        created_at: turn.created_at,
        updated_at: turn.updated_at,
    }
}

fn turn_to_wire(turn: &AgentTurnRow) -> t::AgentTurn {
    t::AgentTurn {
        id: turn.id.clone(),
        state: turn.state,
        message: turn.message.clone(),
        response: turn.response.clone(),
        is_error: turn.is_error,
        error_code: turn.error_code.clone(),
        exit_code: turn.exit_code,
        is_new_session: turn.is_new_session,
        agent_session_id: turn.agent_session_id.clone(),
        cost_usd: turn.cost_usd,
        created_at: turn.created_at,
        finished_at: turn.finished_at,
    }
}

fn session_to_wire(
    session: &AgentSessionRow,
    turns: &[AgentTurnRow],
    with_transcript: bool,
) -> t::AgentSession {
    t::AgentSession {
        id: session.id.clone(),
        sandbox_id: session.sandbox_id.clone(),
        org_id: session.org_id.clone(),
        agent_name: session.agent,
        status: if turns.iter().any(in_flight) {
            AgentSessionStatus::Running
        } else {
            AgentSessionStatus::Idle
        },
        agent_session_id: session.agent_session_id.clone(),
        turn_count: turns.len() as u64,
        started_at: session.created_at,
        ended_at: None,
        metadata: json!({ "credential": session.credential_name }),
        created_at: session.created_at,
        updated_at: session.updated_at,
        transcript: with_transcript.then(|| turns.iter().map(turn_to_wire).collect()),
    }
}

/// The agent a send goes to when the request names none: the first kind resolved for the
/// sandbox, else Claude.
fn default_agent(sandbox: &SandboxRow) -> AgentKind {
    sandbox
        .resolved_agent_credentials
        .iter()
        .find(|r| r.outcome == ResolutionOutcome::Resolved)
        .map_or(AgentKind::Claude, |r| r.kind)
}

/// The entry of a sandbox's resolution (made at create) that an agent of `kind` can send with,
/// or why there is none: `Some(why)` when the kind was skipped, `None` when it was never
/// requested. The one rule for which kinds a sandbox can message; the web UI asks it too.
pub fn usable_credential(
    entries: &[t::ResolvedAgentCredential],
    kind: AgentKind,
) -> std::result::Result<&t::ResolvedAgentCredential, Option<&str>> {
    match entries.iter().find(|r| r.kind == kind) {
        Some(r) if r.outcome == ResolutionOutcome::Resolved => Ok(r),
        Some(r) if r.reason.is_empty() => Err(Some(r.source.as_str())),
        Some(r) => Err(Some(&r.reason)),
        None => Err(None),
    }
}

/// The name of the credential the sandbox holds for `kind`, or why it holds none and how to
/// give it one.
fn credential_for(sandbox: &SandboxRow, kind: AgentKind) -> Result<String> {
    let why = match usable_credential(&sandbox.resolved_agent_credentials, kind) {
        Ok(r) => return Ok(r.name.clone()),
        Err(Some(why)) => format!("it was skipped when the sandbox was created ({why})"),
        Err(None) => "none was requested when the sandbox was created".to_string(),
    };
    Err(ServiceError::unprocessable(
        ErrorCode::AgentCredentialSkipped,
        format!(
            "sandbox {name:?} has no {kind} credential: {why}. Recreate the sandbox with \
             `--agent-credential {kind}=NAME` (push one first with `amika secret {kind} push --name NAME ...` \
             if you have none)",
            name = sandbox.name
        ),
    )
    .at("agent"))
}

fn bad_request(message: impl Into<String>) -> ServiceError {
    ServiceError::bad_request(message)
}

/// The checks of a send that need nothing stored: its message, its choice of session, and its
/// deadline, which it returns (at most `max`, the server's). Each error names its field.
pub(crate) fn check_send_request(req: &t::AgentSendRequest, max: Duration) -> Result<Duration> {
    let message = &req.message;
    if message.trim().is_empty() {
        return Err(
            bad_request("message must not be empty: say what the agent should do").at("message"),
        );
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(bad_request(format!(
            "message is {} bytes, more than the {MAX_MESSAGE_BYTES} an agent can be given",
            message.len()
        ))
        .at("message"));
    }
    if message.contains('\0') {
        return Err(bad_request("message must not contain NUL characters").at("message"));
    }
    if req.new_session && req.session_id.is_some() {
        return Err(bad_request(
            "session_id and new_session exclude each other: continue a session or start a new one",
        )
        .at("new_session"));
    }
    match req.timeout_secs {
        None => Ok(max),
        Some(0) => Err(bad_request("timeout_secs must be at least 1").at("timeout_secs")),
        Some(s) if Duration::from_secs(s) > max => Err(bad_request(format!(
            "timeout_secs {s} is longer than this server's agent deadline of {}s",
            max.as_secs()
        ))
        .at("timeout_secs")),
        Some(s) => Ok(Duration::from_secs(s)),
    }
}

/// Largest page of sessions.
const MAX_SESSIONS_PAGE: u64 = 1000;

impl Service {
    fn agent_session_lock(&self, session_id: &str) -> KeyedLock {
        self.locks.handle(&format!("agent-session:{session_id}"))
    }

    /// A session of this sandbox (an id of another sandbox's session is not found here).
    async fn sandbox_session(&self, sandbox: &SandboxRow, id: &str) -> Result<AgentSessionRow> {
        let not_found = || {
            ServiceError::NotFound(format!(
                "agent session {id:?} in sandbox {:?}",
                sandbox.name
            ))
        };
        match self.store.get_agent_session(id).await {
            Ok(s) if s.sandbox_id == sandbox.id => Ok(s),
            Ok(_) | Err(StoreError::NotFound(_)) => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// A turn as it stands, given up for lost when it is still in flight past its deadline
    /// (its server stopped before it finished).
    async fn refresh_turn(&self, mut turn: AgentTurnRow) -> Result<AgentTurnRow> {
        if in_flight(&turn) && now() > turn.deadline_at {
            let elapsed = (turn.deadline_at - turn.created_at)
                .to_std()
                .unwrap_or_default();
            finish_turn(
                &mut turn,
                true,
                Some("agent_lost"),
                "the server stopped before the agent finished: send the message again".into(),
                None,
                elapsed,
            );
            match self.store.update_agent_turn(&turn).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(turn)
    }

    async fn session_turns(&self, session_id: &str) -> Result<Vec<AgentTurnRow>> {
        let mut turns = Vec::new();
        for turn in self.store.list_agent_turns(session_id).await? {
            turns.push(self.refresh_turn(turn).await?);
        }
        Ok(turns)
    }

    /// Validate a send, pick its agent, session and credential, and write its rows. Nothing
    /// runs yet; every error here leaves no process and no turn behind.
    async fn prepare_send(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::AgentSendRequest,
        state: AgentJobState,
    ) -> Result<PreparedSend> {
        let timeout = check_send_request(&req, self.config.agent_timeout)?;
        let message = req.message;

        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        check_transition(sandbox.state, Operation::Exec).map_err(|_| {
            ServiceError::conflict(
                ErrorCode::InvalidState,
                format!(
                    "sandbox {:?} is {}: agent-send needs it running (`amika sandbox start {}`)",
                    sandbox.name, sandbox.state, sandbox.name
                ),
            )
        })?;
        let asked = match &req.session_id {
            Some(id) => Some(self.sandbox_session(&sandbox, id).await?),
            None => None,
        };
        let kind = match (&asked, req.agent) {
            (Some(s), Some(k)) if s.agent != k => {
                return Err(ServiceError::invalid(
                    ErrorCode::AgentMismatch,
                    format!(
                        "session {} is a {} session: leave out agent, or pass {}",
                        s.id, s.agent, s.agent
                    ),
                )
                .at("agent"))
            }
            (Some(s), _) => s.agent,
            (None, Some(k)) => k,
            (None, None) => default_agent(&sandbox),
        };
        // Before anything else is looked up or written: a kind without a credential starts
        // nothing.
        let credential = credential_for(&sandbox, kind)?;
        let command = self.config.agent_commands.get(&kind).ok_or_else(|| {
            ServiceError::internal(format!("no agent command is configured for {kind}"))
        })?;
        command.validate(kind).map_err(ServiceError::internal)?;

        let existing = match asked {
            Some(s) => Some(s),
            None if req.new_session => None,
            // Neither: continue the sandbox's latest session with this agent.
            None => self
                .store
                .list_agent_sessions(&sandbox.id)
                .await?
                .into_iter()
                .find(|s| s.agent == kind),
        };
        let redactions = self.redactions_for(&sandbox).await?;
        let at = now();
        let (mut session, lock) = match existing {
            Some(s) => {
                let lock = self.agent_session_lock(&s.id);
                (s, Some(lock))
            }
            None => {
                let s = AgentSessionRow {
                    id: new_id("ses"),
                    sandbox_id: sandbox.id.clone(),
                    org_id: sandbox.org_id.clone(),
                    user_id: caller.user_id.clone(),
                    agent: kind,
                    agent_session_id: None,
                    credential_name: credential.clone(),
                    created_at: at,
                    updated_at: at,
                };
                self.store.insert_agent_session(&s).await?;
                (s, None)
            }
        };
        // One send at a time per session: the agent's conversation is a single thread.
        let _guard = match &lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        if let Some(busy) = self
            .session_turns(&session.id)
            .await?
            .into_iter()
            .find(in_flight)
        {
            return Err(ServiceError::conflict(
                ErrorCode::SessionBusy,
                format!(
                    "session {} is still answering an earlier message (job {}): wait for it, or start another session with new_session (`--new-session`)",
                    session.id, busy.id
                ),
            ));
        }
        let resume = session.agent_session_id.clone();
        let argv = command.argv(&message, resume.as_deref());
        let turn = AgentTurnRow {
            id: new_id("job"),
            session_id: session.id.clone(),
            sandbox_id: sandbox.id.clone(),
            state,
            message: redactions.redact_all(&message),
            response: None,
            is_error: false,
            error_code: None,
            exit_code: None,
            is_new_session: resume.is_none(),
            agent_session_id: resume,
            cost_usd: None,
            duration_ms: None,
            deadline_at: at
                + chrono::Duration::from_std(timeout + LOST_GRACE).unwrap_or(chrono::Duration::MAX),
            created_at: at,
            updated_at: at,
            finished_at: None,
        };
        self.store.insert_agent_turn(&turn).await?;
        let guard = CancelGuard {
            svc: self.clone(),
            turn: Some(turn.clone()),
            started: Instant::now(),
        };
        session.credential_name = credential.clone();
        session.updated_at = at;
        self.store.update_agent_session(&session).await?;
        let subject = Subject {
            object_type: "sandbox",
            object_id: &sandbox.id,
            object_name: &sandbox.name,
            version: None,
        };
        self.audit(
            caller,
            "agent.message_sent",
            subject,
            Some(&sandbox.id),
            json!({"agent": kind, "credential": credential, "session_id": session.id, "job_id": turn.id}),
        )
        .await?;
        Ok(PreparedSend {
            sandbox,
            session,
            turn,
            argv,
            timeout,
            credential,
            redactions,
            guard,
        })
    }

    /// Run a prepared send to its end and record it. Dropping the future kills the agent and
    /// records the send as cancelled.
    async fn run_send(&self, prepared: PreparedSend) -> Result<t::AgentSendResponse> {
        let PreparedSend {
            sandbox,
            mut session,
            mut turn,
            argv,
            timeout,
            credential,
            redactions,
            mut guard,
        } = prepared;
        let started = Instant::now();
        if turn.state == AgentJobState::Pending {
            turn.state = AgentJobState::Running;
            turn.updated_at = now();
            self.store.update_agent_turn(&turn).await?;
        }
        let program = argv.first().cloned().unwrap_or_default();
        let mut run = AgentRun::default();
        let spec = ExecSpec {
            argv,
            cwd: None,
            timeout: Some(timeout + PROVIDER_TIMEOUT_GRACE),
        };
        let mut ending = match self.provider.exec(&sandbox.id, spec).await {
            // The future of `collect` owns the handle: when the deadline drops it, the handle
            // kills the agent's process tree.
            Ok(handle) => tokio::time::timeout(timeout, collect(handle, &mut run))
                .await
                .unwrap_or(Ending::TimedOut),
            Err(ProviderError::NotRunning(_)) => Ending::SandboxStopped,
            Err(e) => Ending::StartFailed(e.to_string()),
        };
        if matches!(ending, Ending::Exited(c) if c != 0) || ending == Ending::NoStatus {
            // A stop or delete kills the agent with the sandbox: say so rather than "crashed".
            let state = match self.store.get_sandbox(&sandbox.id).await {
                Ok(row) => Some(row.state),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            if state != Some(SandboxState::Running) {
                ending = Ending::SandboxStopped;
            }
        }
        let kind = session.agent;
        // Redacted inside, before anything is stored or answered.
        let reply = interpret(
            kind,
            &program,
            &run,
            &ending,
            timeout,
            &credential,
            &|text| redactions.redact_all(text),
        );
        let agent_session_id = reply.agent_session_id;
        guard.turn = None;
        finish_turn(
            &mut turn,
            reply.is_error,
            reply.error_code,
            reply.text,
            reply.exit_code,
            started.elapsed(),
        );
        turn.cost_usd = reply.cost_usd;
        if let Some(id) = &agent_session_id {
            turn.agent_session_id = Some(id.clone());
        }
        match self.store.update_agent_turn(&turn).await {
            // Deleted with its sandbox meanwhile: the caller still gets the answer.
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(id) = agent_session_id {
            session.agent_session_id = Some(id);
        }
        session.updated_at = now();
        match self.store.update_agent_session(&session).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(
            sandbox_id = %sandbox.id,
            job_id = %turn.id,
            agent = %kind,
            is_error = turn.is_error,
            error_code = turn.error_code.as_deref().unwrap_or(""),
            ms = started.elapsed().as_millis() as u64,
            "agent send finished"
        );
        Ok(turn_response(&session, &turn))
    }

    /// Send a message to an agent in a sandbox and wait for its reply.
    pub async fn agent_send(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::AgentSendRequest,
    ) -> Result<t::AgentSendResponse> {
        let prepared = self
            .prepare_send(caller, id_or_name, req, AgentJobState::Running)
            .await?;
        self.run_send(prepared).await
    }

    /// Start a send in the background and answer with its job at once.
    pub async fn create_agent_send_job(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::AgentSendRequest,
    ) -> Result<t::AgentSendJobResponse> {
        let prepared = self
            .prepare_send(caller, id_or_name, req, AgentJobState::Pending)
            .await?;
        let job = job_response(&prepared.session, &prepared.turn);
        let svc = self.clone();
        tokio::spawn(async move {
            let job_id = prepared.turn.id.clone();
            if let Err(e) = svc.run_send(prepared).await {
                tracing::error!(%job_id, "agent send job failed: {}", super::error_chain(&e));
            }
        });
        Ok(job)
    }

    pub async fn get_agent_send_job(
        &self,
        caller: &Caller,
        id_or_name: &str,
        job_id: &str,
    ) -> Result<t::AgentSendJobResponse> {
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let turn = match self.store.get_agent_turn(job_id).await {
            Ok(turn) if turn.sandbox_id == sandbox.id => turn,
            Ok(_) | Err(StoreError::NotFound(_)) => {
                return Err(ServiceError::NotFound(format!(
                    "agent-send job {job_id:?} in sandbox {:?}",
                    sandbox.name
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let turn = self.refresh_turn(turn).await?;
        let session = self.store.get_agent_session(&turn.session_id).await?;
        Ok(job_response(&session, &turn))
    }

    /// A sandbox's sessions, most recently used first, optionally only those in `status`.
    pub async fn list_agent_sessions(
        &self,
        caller: &Caller,
        id_or_name: &str,
        status: Option<&str>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<t::AgentSessionsList> {
        let status = status
            .map(|s| {
                s.parse::<AgentSessionStatus>()
                    .map_err(|e| bad_request(e).at("status"))
            })
            .transpose()?;
        let limit = limit.unwrap_or(100);
        if !(1..=MAX_SESSIONS_PAGE).contains(&limit) {
            return Err(bad_request(format!(
                "limit must be between 1 and {MAX_SESSIONS_PAGE}, not {limit}"
            ))
            .at("limit"));
        }
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let rows = self.store.list_agent_sessions(&sandbox.id).await?;
        let offset = usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let limit = limit as usize;
        // A session's status comes from its turns: without a status filter only the page's
        // sessions need theirs read (the web page asks for one session on every poll).
        if status.is_none() {
            let total = rows.len() as u64;
            let mut sessions = Vec::new();
            for row in rows.iter().skip(offset).take(limit) {
                let turns = self.session_turns(&row.id).await?;
                sessions.push(session_to_wire(row, &turns, false));
            }
            return Ok(t::AgentSessionsList { sessions, total });
        }
        let mut sessions = Vec::new();
        for row in rows {
            let turns = self.session_turns(&row.id).await?;
            let session = session_to_wire(&row, &turns, false);
            if status.is_none_or(|s| s == session.status) {
                sessions.push(session);
            }
        }
        let total = sessions.len() as u64;
        let sessions = sessions.into_iter().skip(offset).take(limit).collect();
        Ok(t::AgentSessionsList { sessions, total })
    }

    /// One session with its transcript (every send, oldest first).
    pub async fn get_agent_session(
        &self,
        caller: &Caller,
        id_or_name: &str,
        session_id: &str,
    ) -> Result<t::AgentSession> {
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let row = self.sandbox_session(&sandbox, session_id).await?;
        let turns = self.session_turns(&row.id).await?;
        Ok(session_to_wire(&row, &turns, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-SECRET-0123456789";
    const MESSAGE: &str = "add tests for the parser; $(rm -rf ~) 'quoted' \"dq\" {session}\n-x";

    #[test]
    fn real_templates_give_the_exact_argv_for_claude() {
        let commands = default_agent_commands();
        let claude = &commands[&AgentKind::Claude];
        assert_eq!(
            claude.argv(MESSAGE, None),
            ["claude", "-p", "--output-format", "json", "--", MESSAGE]
        );
        assert_eq!(
            claude.argv(MESSAGE, Some("3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")),
            [
                "claude",
                "-p",
                "--output-format",
                "json",
                "--resume",
                "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
                "--",
                MESSAGE
            ]
        );
    }

    #[test]
    fn real_templates_give_the_exact_argv_for_codex() {
        let commands = default_agent_commands();
        let codex = &commands[&AgentKind::Codex];
        assert_eq!(
            codex.argv(MESSAGE, None),
            [
                "codex",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--",
                MESSAGE
            ]
        );
        assert_eq!(
            codex.argv(MESSAGE, Some("019b341f-04d9-73b3-8263-2c05ca63d690")),
            [
                "codex",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "resume",
                "019b341f-04d9-73b3-8263-2c05ca63d690",
                "--",
                MESSAGE
            ]
        );
    }

    #[test]
    fn every_default_template_is_valid_and_bad_ones_say_why() {
        for (kind, command) in default_agent_commands() {
            command.validate(kind).unwrap();
        }
        let good = &default_agent_commands()[&AgentKind::Claude];
        let no_message = AgentCommand {
            new_session: argv(&["claude", "-p"]),
            ..good.clone()
        };
        let err = no_message.validate(AgentKind::Claude).unwrap_err();
        assert!(
            err.contains("new_session") && err.contains("{message}"),
            "{err}"
        );
        let no_session = AgentCommand {
            resume: argv(&["claude", "-p", "{message}"]),
            ..good.clone()
        };
        let err = no_session.validate(AgentKind::Claude).unwrap_err();
        assert!(err.contains("resume") && err.contains("{session}"), "{err}");
        let message_as_program = AgentCommand {
            new_session: argv(&["{message}"]),
            ..good.clone()
        };
        assert!(message_as_program.validate(AgentKind::Claude).is_err());
        let twice = AgentCommand {
            new_session: argv(&["claude", "{message}", "{message}"]),
            ..good.clone()
        };
        assert!(twice.validate(AgentKind::Claude).is_err());
    }

    #[test]
    fn only_plain_session_ids_are_passed_back() {
        assert!(plain_session_id("3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"));
        assert!(plain_session_id("ses_01.x:y"));
        for bad in ["", "-rf", "--help", "a b", "a;b", "$(x)", &"a".repeat(201)] {
            assert!(!plain_session_id(bad), "{bad:?}");
        }
    }

    fn run(kind: AgentKind, stdout: &str, stderr: &str, ending: Ending) -> Reply {
        let output = AgentRun {
            stdout: stdout.as_bytes().to_vec(),
            stdout_truncated: false,
            stderr: stderr.as_bytes().to_vec(),
        };
        interpret(
            kind,
            "claude",
            &output,
            &ending,
            Duration::from_secs(7),
            "personal-oauth",
            &|text| text.replace(SECRET, "[REDACTED:k]"),
        )
    }

    #[test]
    fn a_claude_result_is_the_reply() {
        let out = r#"{"type":"result","subtype":"success","is_error":false,"result":"Added 3 tests.","session_id":"abc-123","total_cost_usd":0.0123}"#;
        assert_eq!(
            run(AgentKind::Claude, out, "", Ending::Exited(0)),
            Reply {
                text: "Added 3 tests.".into(),
                is_error: false,
                error_code: None,
                exit_code: Some(0),
                agent_session_id: Some("abc-123".into()),
                cost_usd: Some(0.0123),
            }
        );
        // Noise before the result line is skipped.
        let noisy = format!("starting up\n{out}\n");
        assert_eq!(
            run(AgentKind::Claude, &noisy, "", Ending::Exited(0)).text,
            "Added 3 tests."
        );
    }

    #[test]
    fn codex_events_give_the_last_agent_message_and_the_thread() {
        let out = concat!(
            r#"{"type":"thread.started","thread_id":"019b341f-04d9"}"#,
            "\n",
            r#"{"type":"turn.started"}"#,
            "\n",
            r#"{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"thinking"}}"#,
            "\n",
            r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Done."}}"#,
            "\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":1}}"#,
            "\n"
        );
        let reply = run(AgentKind::Codex, out, "", Ending::Exited(0));
        assert_eq!(
            (
                reply.text.as_str(),
                reply.is_error,
                reply.agent_session_id.as_deref()
            ),
            ("Done.", false, Some("019b341f-04d9"))
        );
        let legacy = concat!(
            r#"{"id":"0","msg":{"type":"session_configured","session_id":"s-1"}}"#,
            "\n",
            r#"{"id":"1","msg":{"type":"agent_message","message":"Hi."}}"#
        );
        let reply = run(AgentKind::Codex, legacy, "", Ending::Exited(0));
        assert_eq!(
            (reply.text.as_str(), reply.agent_session_id.as_deref()),
            ("Hi.", Some("s-1"))
        );
    }

    #[test]
    fn authentication_failures_name_the_credential() {
        let expected = "the agent could not authenticate with its provider; credential personal-oauth may have expired or been revoked";
        let claude = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 401 {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"OAuth token has expired.\"}}"}"#;
        let reply = run(AgentKind::Claude, claude, "", Ending::Exited(1));
        assert_eq!(reply.text, expected);
        assert_eq!(
            (reply.is_error, reply.error_code, reply.exit_code),
            (true, Some("agent_auth_failed"), Some(1))
        );
        // Case does not matter; stderr counts.
        let reply = run(
            AgentKind::Codex,
            "",
            "ERROR: Not Logged In",
            Ending::Exited(1),
        );
        assert_eq!(reply.text, expected);
        let codex = r#"{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: Incorrect API key provided"}}"#;
        assert_eq!(
            run(AgentKind::Codex, codex, "", Ending::Exited(1)).text,
            expected
        );
    }

    #[test]
    fn markers_in_a_successful_reply_are_not_an_auth_failure() {
        let out = r#"{"type":"result","is_error":false,"result":"Fixed the 401 handler and the invalid api key message.","session_id":"s"}"#;
        let reply = run(AgentKind::Claude, out, "", Ending::Exited(0));
        assert!(!reply.is_error, "{reply:?}");
    }

    #[test]
    fn a_failure_that_merely_mentions_401_is_not_an_auth_failure() {
        let reply = run(
            AgentKind::Claude,
            "",
            "panic at src/parser.rs:401",
            Ending::Exited(2),
        );
        assert_eq!(reply.error_code, Some("agent_crashed"), "{reply:?}");
    }

    #[test]
    fn a_start_failure_is_redacted() {
        let reply = run(
            AgentKind::Claude,
            "",
            "",
            Ending::StartFailed(format!("cannot run with {SECRET}")),
        );
        assert!(!reply.text.contains(SECRET), "{reply:?}");
    }

    #[test]
    fn a_crash_is_an_error_with_its_exit_status() {
        let reply = run(
            AgentKind::Claude,
            "",
            "Segmentation fault (core dumped)\n",
            Ending::Exited(139),
        );
        assert_eq!(
            reply.text,
            "the agent exited with status 139: Segmentation fault (core dumped)"
        );
        assert_eq!(
            (reply.is_error, reply.error_code, reply.exit_code),
            (true, Some("agent_crashed"), Some(139))
        );
        let reply = run(
            AgentKind::Claude,
            "",
            "sh: 1: claude: not found",
            Ending::Exited(127),
        );
        assert!(reply.text.contains("\"claude\" was not found"), "{reply:?}");
    }

    #[test]
    fn timeouts_stops_and_garbage_are_errors() {
        let reply = run(AgentKind::Claude, "partial", "", Ending::TimedOut);
        assert_eq!(
            reply.text,
            "the agent did not finish within 7s and was stopped (its processes were killed)"
        );
        assert_eq!(
            (reply.error_code, reply.exit_code),
            (Some("agent_timeout"), None)
        );
        let reply = run(AgentKind::Claude, "", "", Ending::SandboxStopped);
        assert_eq!(reply.error_code, Some("sandbox_stopped"));
        let reply = run(AgentKind::Claude, "hello, not json", "", Ending::Exited(0));
        assert_eq!(reply.error_code, Some("agent_bad_output"));
        assert!(reply.text.ends_with(": hello, not json"), "{reply:?}");
        let reply = run(
            AgentKind::Claude,
            r#"{"type":"result","is_error":true,"result":"max turns"}"#,
            "",
            Ending::Exited(0),
        );
        assert_eq!(
            (reply.text.as_str(), reply.error_code),
            ("max turns", Some("agent_error"))
        );
    }

    #[test]
    fn values_are_redacted_before_output_is_parsed_or_cut() {
        // Cut to its last characters, the raw text would start inside the value.
        let stderr = format!(
            "{}{SECRET}{}",
            "a".repeat(100),
            "b".repeat(QUOTED_CHARS - 10)
        );
        let reply = run(AgentKind::Claude, "", &stderr, Ending::Exited(1));
        assert!(!reply.text.contains("0123456789"), "{}", reply.text);
        // A value that only appears once JSON escapes are undone, and a session id that is one.
        let out = format!(
            r#"{{"type":"result","is_error":false,"result":"key: sk-SECRET-\u0030123456789","session_id":"{SECRET}"}}"#
        );
        let reply = run(AgentKind::Claude, &out, "", Ending::Exited(0));
        assert_eq!(reply.text, "key: [REDACTED:k]");
        assert_eq!(reply.agent_session_id, None);
    }

    #[test]
    fn stdout_cut_at_its_limit_is_not_quoted() {
        // The cut fell inside the value: what is left of it is no longer recognised.
        let output = AgentRun {
            stdout: format!("not json {}", &SECRET[..12]).into_bytes(),
            stdout_truncated: true,
            stderr: Vec::new(),
        };
        let reply = interpret(
            AgentKind::Claude,
            "claude",
            &output,
            &Ending::Exited(0),
            Duration::from_secs(7),
            "personal-oauth",
            &|text| text.replace(SECRET, "[REDACTED:k]"),
        );
        assert_eq!(reply.error_code, Some("agent_bad_output"));
        assert!(!reply.text.contains(&SECRET[..12]), "{}", reply.text);
    }

    #[test]
    fn long_error_output_is_cut_to_its_end() {
        let stderr = format!("{}THE END", "x".repeat(10_000));
        let reply = run(AgentKind::Claude, "", &stderr, Ending::Exited(2));
        assert!(reply.text.ends_with("THE END"));
        assert!(reply.text.chars().count() < QUOTED_CHARS + 100);
    }
}
