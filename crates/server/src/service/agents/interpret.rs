//! The agent output parser: what an agent's stdout, stderr and ending mean for the caller.
//! Claude's `--output-format json` result object and Codex's `--json` event lines are parsed
//! here, agents that could not reach their provider ([`unreachable`]) and authentication
//! failures are recognised, in that order, and every text is redacted before it is parsed or
//! cut. Pure apart from [`collect`], which relays an exec's events into an
//! [`AgentRun`], so every case is unit-tested.

use std::time::Duration;

use amika_sandbox::{ExecEvent, ExecHandle};
use amika_types::{AgentErrorCode, AgentKind, NetworkMode};
use serde_json::Value;

use super::unreachable;

/// Most of an agent's stdout that is kept; the rest is read and dropped.
const MAX_STDOUT_BYTES: usize = 8 * 1024 * 1024;

/// How much of the end of an agent's stderr is kept (error replies quote it).
const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// How much of stderr or unreadable stdout an error reply quotes.
const QUOTED_CHARS: usize = 2000;

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

impl Parsed {
    /// The reply with `text`: an error when it has an `error_code`. The agent's session id and
    /// cost go with it either way; the id only when it is plain.
    fn reply(
        &self,
        text: String,
        error_code: Option<AgentErrorCode>,
        exit_code: Option<i32>,
    ) -> Reply {
        Reply {
            text,
            is_error: error_code.is_some(),
            error_code,
            exit_code,
            agent_session_id: self.session_id.clone().filter(|s| plain_session_id(s)),
            cost_usd: self.cost_usd,
        }
    }
}

/// `claude -p --output-format json` (one `{"type":"result", ...}` object) or `stream-json`
/// (event lines, the last of them that object).
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
pub(super) enum Ending {
    Exited(i32),
    /// Our deadline passed; its process tree was killed.
    TimedOut,
    /// The event stream ended without an exit status.
    NoStatus,
    /// The sandbox stopped (or was deleted) under it.
    SandboxStopped,
    /// The provider could not start it.
    StartFailed(String),
    /// Stopped before its end, for this reason (its client went away, its session was
    /// cancelled).
    Cancelled(String),
}

/// What a reply depends on besides the agent's output: the send's deadline, the credential
/// the agent was given (named, never its value) and the sandbox's network mode.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendContext<'a> {
    pub(super) timeout: Duration,
    pub(super) credential: &'a str,
    pub(super) network: NetworkMode,
}

/// The outcome of a send, before redaction.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reply {
    pub(super) text: String,
    pub(super) is_error: bool,
    pub(super) error_code: Option<AgentErrorCode>,
    pub(super) exit_code: Option<i32>,
    pub(super) agent_session_id: Option<String>,
    pub(super) cost_usd: Option<f64>,
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
pub(super) fn interpret(
    kind: AgentKind,
    program: &str,
    run: &AgentRun,
    ending: &Ending,
    send: &SendContext<'_>,
    redact: &dyn Fn(&str) -> String,
) -> Reply {
    let (raw_out, raw_err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    let (out, err) = (redact(&raw_out), redact(&raw_err));
    let parsed = parse(kind, &out, redact);
    let p = parsed.clone().unwrap_or_default();
    let code = match exit_code(ending, send, redact) {
        Ok(code) => code,
        // Stopped at the deadline: why, when its output so far says it could not get out.
        Err((text, AgentErrorCode::AgentTimeout)) => {
            return match unreachable::find(&out, &err) {
                Some(found) => p.reply(
                    unreachable::unreachable_at_deadline_message(
                        send.timeout.as_secs(),
                        &found,
                        send.network,
                    ),
                    Some(AgentErrorCode::AgentUnreachable),
                    None,
                ),
                None => p.reply(text, Some(AgentErrorCode::AgentTimeout), None),
            }
        }
        Err((text, error_code)) => return p.reply(text, Some(error_code), None),
    };
    let failed = code != 0 || p.is_error;
    // Before the credential: an agent that could not get out may also complain about its
    // login, and the network is what the user has to fix.
    if let Some(found) = failed.then(|| unreachable::find(&out, &err)).flatten() {
        return p.reply(
            unreachable::unreachable_message(&found, send.network),
            Some(AgentErrorCode::AgentUnreachable),
            Some(code),
        );
    }
    if failed && looks_like_auth_failure(&raw_out, &raw_err) {
        return p.reply(
            auth_failure_message(send.credential),
            Some(AgentErrorCode::AgentAuthFailed),
            Some(code),
        );
    }
    if code == 127 {
        return p.reply(
            format!("the agent's command {program:?} was not found in the sandbox (exit status 127): install it there, or set its command in the server's agent_commands"),
            Some(AgentErrorCode::AgentCrashed),
            Some(code),
        );
    }
    if code != 0 {
        return p.reply(
            crash_message(code, &p, &err),
            Some(AgentErrorCode::AgentCrashed),
            Some(code),
        );
    }
    match parsed {
        Some(Parsed {
            text: Some(text),
            is_error: false,
            ..
        }) => p.reply(text, None, Some(0)),
        Some(Parsed { is_error: true, .. }) => p.reply(
            p.text
                .clone()
                .unwrap_or_else(|| "the agent reported an error without a message".into()),
            Some(AgentErrorCode::AgentError),
            Some(0),
        ),
        _ => p.reply(
            bad_output_message(kind, program, run, &out, &err),
            Some(AgentErrorCode::AgentBadOutput),
            Some(0),
        ),
    }
}

/// The agent's (redacted) stdout parsed as `kind` prints it, its strings redacted once more;
/// a session id that redaction would change is dropped.
fn parse(kind: AgentKind, out: &str, redact: &dyn Fn(&str) -> String) -> Option<Parsed> {
    match kind {
        AgentKind::Claude => parse_claude(out),
        AgentKind::Codex => parse_codex(out),
        // Not an agent: a send names an agent kind (checked before anything runs).
        AgentKind::Github => None,
    }
    .map(|p| Parsed {
        text: p.text.map(|t| redact(&t)),
        session_id: p.session_id.filter(|id| redact(id) == *id),
        ..p
    })
}

/// The exit status of an agent that exited, else the message and error code of how it ended.
fn exit_code(
    ending: &Ending,
    send: &SendContext<'_>,
    redact: &dyn Fn(&str) -> String,
) -> Result<i32, (String, AgentErrorCode)> {
    match ending {
        Ending::TimedOut => Err((
            format!(
                "the agent did not finish within {}s and was stopped (its processes were killed){}",
                send.timeout.as_secs(),
                unreachable::timeout_note(send.network).unwrap_or("")
            ),
            AgentErrorCode::AgentTimeout,
        )),
        Ending::SandboxStopped => Err((
            "the sandbox stopped while the agent was running".into(),
            AgentErrorCode::SandboxStopped,
        )),
        Ending::NoStatus => Err((
            "the agent ended without an exit status".into(),
            AgentErrorCode::AgentCrashed,
        )),
        // The provider's message is text like any other: redacted before it is shown.
        Ending::StartFailed(why) => Err((
            format!("the agent could not be started: {}", redact(why)),
            AgentErrorCode::AgentCrashed,
        )),
        Ending::Cancelled(why) => Err((why.clone(), AgentErrorCode::AgentCancelled)),
        Ending::Exited(code) => Ok(*code),
    }
}

/// The message of a non-zero exit: the status, with the agent's own error text or else the
/// end of its (redacted) stderr.
fn crash_message(code: i32, p: &Parsed, err: &str) -> String {
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
    text
}

/// The message of a successful exit whose output is not what `program` prints: what was
/// expected, and the end of its (redacted) stdout or, when that is empty or was cut, stderr.
fn bad_output_message(
    kind: AgentKind,
    program: &str,
    run: &AgentRun,
    out: &str,
    err: &str,
) -> String {
    let mut text = format!(
        "the agent's output is not what {program:?} prints in this mode ({})",
        match kind {
            AgentKind::Claude => "JSON lines ending in a result object",
            AgentKind::Codex => "JSON event lines with an agent message",
            AgentKind::Github => "nothing: github is not an agent",
        }
    );
    if run.stdout_truncated {
        text.push_str(&format!("; it printed more than {MAX_STDOUT_BYTES} bytes"));
    }
    // Stdout cut at its limit may end inside a value, whose piece redaction cannot
    // recognise: such output is never quoted.
    let shown = if out.trim().is_empty() || run.stdout_truncated {
        err
    } else {
        out
    };
    if !shown.trim().is_empty() {
        text.push_str(": ");
        text.push_str(&tail(shown));
    }
    text
}

/// What a run collected.
#[derive(Debug, Default)]
pub(super) struct AgentRun {
    stdout: Vec<u8>,
    stdout_truncated: bool,
    stderr: Vec<u8>,
}

/// Relay an exec's events into `run` until the command exits; stdout also goes to `relay`, as
/// it comes.
pub(super) async fn collect(
    mut handle: ExecHandle,
    run: &mut AgentRun,
    relay: &mut (dyn FnMut(&[u8]) + Send),
) -> Ending {
    while let Some(event) = handle.events.recv().await {
        match event {
            ExecEvent::Stdout(bytes) => {
                relay(&bytes);
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-SECRET-0123456789";

    /// A reply's error code as the wire spells it.
    fn code(reply: &Reply) -> Option<&'static str> {
        reply.error_code.map(AgentErrorCode::as_str)
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
            &context(NetworkMode::Egress),
            &|text| text.replace(SECRET, "[REDACTED:k]"),
        )
    }

    /// A 7 s send with credential `personal-oauth` in a sandbox of this network mode.
    fn context(network: NetworkMode) -> SendContext<'static> {
        SendContext {
            timeout: Duration::from_secs(7),
            credential: "personal-oauth",
            network,
        }
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
            (reply.is_error, code(&reply), reply.exit_code),
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

    /// A send of `kind` in a sandbox with network `none` that ended so.
    fn offline(kind: AgentKind, stdout: &str, stderr: &str, ending: Ending) -> Reply {
        let output = AgentRun {
            stdout: stdout.as_bytes().to_vec(),
            stdout_truncated: false,
            stderr: stderr.as_bytes().to_vec(),
        };
        interpret(
            kind,
            "agent",
            &output,
            &ending,
            &context(NetworkMode::None),
            &|text| text.to_string(),
        )
    }

    /// The real `claude -p` of the pinned version, oauth or api key alike, without a network
    /// (issue 20: it was reported as an expired credential).
    #[test]
    fn real_claude_without_a_network_is_unreachable_not_an_expired_credential() {
        let out = include_str!("offline_outputs/claude.stdout");
        let reply = offline(AgentKind::Claude, out, "", Ending::Exited(1));
        assert_eq!(
            (code(&reply), reply.exit_code, reply.is_error),
            (Some("agent_unreachable"), Some(1), true)
        );
        assert_eq!(
            reply.text,
            "the agent could not reach its provider: this sandbox's network mode is none, which lets no \
             connection out of the sandbox: an agent needs a sandbox created with network egress to reach \
             its provider. Its last connection error: API Error: Can't reach the API server — check your \
             internet or DNS (EAI_AGAIN)"
        );
        assert_eq!(
            reply.agent_session_id.as_deref(),
            Some("e08d742e-d245-4e4d-89a0-bf8e113db2c0")
        );
    }

    #[test]
    fn a_network_failure_wins_over_authentication_markers() {
        let out = r#"{"type":"result","is_error":true,"api_error":"connection_failed","result":"API Error: Can't reach the API server (ENOTFOUND). Not logged in · Please run /login"}"#;
        let reply = offline(
            AgentKind::Claude,
            out,
            "OAuth token has expired",
            Ending::Exited(1),
        );
        assert_eq!(code(&reply), Some("agent_unreachable"), "{reply:?}");
        assert!(!reply.text.contains("expired"), "{}", reply.text);
        // Without a network failure, the same markers are still an authentication failure.
        let reply = offline(
            AgentKind::Claude,
            "",
            "OAuth token has expired",
            Ending::Exited(1),
        );
        assert_eq!(code(&reply), Some("agent_auth_failed"));
    }

    /// The real `codex exec` without a network: with ChatGPT it gives up after about three
    /// minutes; with an API key it waits for the network until the deadline kills it.
    #[test]
    fn real_codex_without_a_network_is_unreachable_at_its_end_or_at_the_deadline() {
        let out = include_str!("offline_outputs/codex-chatgpt.stdout");
        let err = include_str!("offline_outputs/codex-chatgpt.stderr");
        let reply = offline(AgentKind::Codex, out, err, Ending::Exited(1));
        assert_eq!(code(&reply), Some("agent_unreachable"), "{reply:?}");
        assert!(
            reply.text.starts_with("the agent could not reach its provider (chatgpt.com): this sandbox's network mode is none"),
            "{}",
            reply.text
        );
        let out = include_str!("offline_outputs/codex-api-key.stdout");
        let err = include_str!("offline_outputs/codex-api-key.stderr");
        let reply = offline(AgentKind::Codex, out, err, Ending::TimedOut);
        assert_eq!(
            (code(&reply), reply.exit_code),
            (Some("agent_unreachable"), None)
        );
        assert_eq!(
            reply.text,
            "the agent did not finish within 7s and was stopped (its processes were killed); until then \
             it could not reach its provider: this sandbox's network mode is none, which lets no \
             connection out of the sandbox: an agent needs a sandbox created with network egress to \
             reach its provider. Its last connection error: Reconnecting... waiting for network \
             (Connection failed: error sending request)"
        );
    }

    #[test]
    fn a_silent_agent_killed_in_a_sandbox_without_a_network_says_so() {
        // `claude -p --output-format json` prints nothing before its result.
        let reply = offline(AgentKind::Claude, "", "", Ending::TimedOut);
        assert_eq!(code(&reply), Some("agent_timeout"));
        assert_eq!(
            reply.text,
            "the agent did not finish within 7s and was stopped (its processes were killed); this \
             sandbox's network mode is none, which lets no connection out of the sandbox, so the agent \
             could not reach its provider from it"
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
        assert_eq!(code(&reply), Some("agent_crashed"), "{reply:?}");
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
            (reply.is_error, code(&reply), reply.exit_code),
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
            (code(&reply), reply.exit_code),
            (Some("agent_timeout"), None)
        );
        let reply = run(AgentKind::Claude, "", "", Ending::SandboxStopped);
        assert_eq!(code(&reply), Some("sandbox_stopped"));
        let reply = run(AgentKind::Claude, "hello, not json", "", Ending::Exited(0));
        assert_eq!(code(&reply), Some("agent_bad_output"));
        assert!(reply.text.ends_with(": hello, not json"), "{reply:?}");
        let reply = run(
            AgentKind::Claude,
            r#"{"type":"result","is_error":true,"result":"max turns"}"#,
            "",
            Ending::Exited(0),
        );
        assert_eq!(
            (reply.text.as_str(), code(&reply)),
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
            &context(NetworkMode::Egress),
            &|text| text.replace(SECRET, "[REDACTED:k]"),
        );
        assert_eq!(code(&reply), Some("agent_bad_output"));
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
