//! Agents that could not reach their provider: which lines of an agent's output say so, the
//! hosts they name, and the message of such a failure.
//!
//! Recognised before the authentication markers (`interpret`), so that a network failure is
//! never reported as a refused or expired credential. What the pinned CLIs print when they
//! cannot get out of a sandbox with network `none` is in this module's tests, verbatim but
//! shortened; the other markers are the messages the same CLIs have for the other ways a
//! connection fails (Claude Code's per-errno messages; the errors of Codex's HTTP stack).
//!
//! Only lines in which an agent reports on itself are read: its stderr, its stdout's plain
//! lines, and the status and error events of its JSON output (Claude's result object and
//! retry events, Codex's `error` / `turn.failed` events) — never the agent's own words or a
//! tool's output, where "connection refused" may be about the user's program.

use amika_types::NetworkMode;
use serde_json::Value;

/// Text of a failed or killed agent's report that means it could not reach its provider,
/// matched without regard to case. A line that names a connection failure in these words is
/// taken at its word: these are the CLIs' messages, not guesses.
pub const UNREACHABLE_MARKERS: &[&str] = &[
    // Claude Code: its result's `api_error` kind, and its messages per errno.
    "\"api_error\":\"connection_failed\"",
    "can't reach the api server",
    "unable to connect to api",
    "no internet route",
    "a firewall or proxy may be blocking it",
    "couldn't connect through your proxy",
    // Node's errno names, as Claude Code and Node tools quote them.
    "eai_again",
    "enotfound",
    "econnrefused",
    "enetunreach",
    "ehostunreach",
    "enetdown",
    // Codex (reqwest, hyper, its WebSocket transport).
    "failed to lookup address information",
    "error sending request",
    "waiting for network",
    "failed to connect to responses websocket",
    "stream disconnected before completion",
    // Its first words offline, seconds before any of the above (its models list is fetched
    // first): the provider did not answer in time.
    "request timed out",
    // The C library's and the kernel's words.
    "temporary failure in name resolution",
    "name or service not known",
    "network is unreachable",
    "no route to host",
    "connection refused",
];

/// At most this many hosts are named.
const MAX_HOSTS: usize = 3;

/// How much of the last connection error a message quotes.
const QUOTED_ERROR_CHARS: usize = 300;

/// The evidence that an agent could not reach its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unreachable {
    /// Hosts the failing lines name (`api.anthropic.com`, `chatgpt.com`), in order, at most
    /// [`MAX_HOSTS`]; empty when they name none.
    pub(super) hosts: Vec<String>,
    /// The last connection error the agent reported: its own event's message when one says
    /// so, else the last such line of its log, cut to [`QUOTED_ERROR_CHARS`].
    pub(super) last_error: String,
}

/// One line in which the agent reports on itself: the text markers are matched on, the text a
/// message quotes, and whether it is a connection failure whatever its words.
struct Report {
    matched: String,
    quoted: String,
    connection_failed: bool,
}

/// The text of a status or error event of an agent's JSON output; `None` for every other
/// line (the agent's words, a tool's output, bookkeeping). Claude's retry events carry no
/// message: one with no HTTP status is an attempt that got no answer at all.
fn event_report(event: &Value) -> Option<(String, bool)> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let msg = &event["msg"];
    match (event["type"].as_str(), msg["type"].as_str()) {
        (Some("result"), _) => {
            let failed = event["api_error"] == "connection_failed";
            text(&event["result"]).map(|t| (t, failed))
        }
        (Some("system"), _) if event["subtype"] == "api_retry" => {
            let no_answer = event["error_status"].is_null();
            let attempt = (&event["attempt"], &event["max_retries"]);
            Some((
                format!(
                    "API request attempt {} of {} got no answer",
                    attempt.0, attempt.1
                ),
                no_answer,
            ))
        }
        (Some("assistant"), _) if event["is_api_error_message"] == true => {
            let failed = event["api_error"] == "connection_failed";
            let content = &event["message"]["content"][0]["text"];
            text(content).map(|t| (t, failed))
        }
        (Some("error"), _) => text(&event["message"]).map(|t| (t, false)),
        (Some("turn.failed"), _) => text(&event["error"]["message"]).map(|t| (t, false)),
        (Some("item.completed"), _) if event["item"]["type"] == "error" => {
            text(&event["item"]["message"]).map(|t| (t, false))
        }
        (_, Some("error" | "stream_error")) => text(&msg["message"]).map(|t| (t, false)),
        _ => None,
    }
}

/// The lines of an agent's (redacted) output in which it reports on itself: stdout's status
/// and error events and its plain lines, then stderr.
fn reports(stdout: &str, stderr: &str) -> (Vec<Report>, Vec<Report>) {
    let events = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| match serde_json::from_str::<Value>(line.trim()) {
            Ok(event) if event.is_object() => {
                event_report(&event).map(|(quoted, connection_failed)| Report {
                    matched: format!("{line}\n{quoted}"),
                    quoted,
                    connection_failed,
                })
            }
            Ok(_) => None,
            Err(_) => Some(plain(line)),
        })
        .collect();
    let log = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(plain)
        .collect();
    (events, log)
}

fn plain(line: &str) -> Report {
    Report {
        matched: line.to_string(),
        quoted: without_log_prefix(line.trim()).to_string(),
        connection_failed: false,
    }
}

/// A log line without its leading timestamp and level (`2026-12-02T12:52:47.164626Z ERROR `,
/// as Codex's log writes them).
fn without_log_prefix(line: &str) -> &str {
    let mut rest = line;
    if let Some((first, after)) = rest.split_once(' ') {
        if first.starts_with(|c: char| c.is_ascii_digit()) && first.contains('T') {
            rest = after.trim_start();
        }
    }
    for level in ["ERROR ", "WARN ", "INFO ", "DEBUG "] {
        if let Some(after) = rest.strip_prefix(level) {
            return after.trim_start();
        }
    }
    rest
}

fn says_unreachable(report: &Report) -> bool {
    if report.connection_failed {
        return true;
    }
    let text = report.matched.to_lowercase();
    UNREACHABLE_MARKERS.iter().any(|m| text.contains(m))
}

/// The hosts a line names: those of its URLs (`https://chatgpt.com/...`), and the one a
/// failed name lookup names (`getaddrinfo EAI_AGAIN api.anthropic.com`).
fn hosts_in(line: &str, hosts: &mut Vec<String>) {
    let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
    let mut push = |host: &str| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.contains('.') && !hosts.contains(&host) && hosts.len() < MAX_HOSTS {
            hosts.push(host);
        }
    };
    for (i, _) in line.match_indices("://") {
        let after = &line[i + 3..];
        // Never a URL's user part: redaction may have left only its name.
        let after = match after.find(['@', '/']) {
            Some(at) if after.as_bytes()[at] == b'@' => &after[at + 1..],
            _ => after,
        };
        push(&after[..after.find(|c| !host_chars(c)).unwrap_or(after.len())]);
    }
    let lower = line.to_ascii_lowercase();
    for errno in ["getaddrinfo eai_again ", "getaddrinfo enotfound "] {
        if let Some(at) = lower.find(errno) {
            let after = &line[at + errno.len()..];
            push(&after[..after.find(|c| !host_chars(c)).unwrap_or(after.len())]);
        }
    }
}

/// Whether the agent's (redacted) output says it could not reach its provider, and how.
pub(super) fn find(stdout: &str, stderr: &str) -> Option<Unreachable> {
    let (events, log) = reports(stdout, stderr);
    let failing: Vec<&Report> = events
        .iter()
        .chain(log.iter())
        .filter(|r| says_unreachable(r))
        .collect();
    if failing.is_empty() {
        return None;
    }
    let mut hosts = Vec::new();
    for report in &failing {
        hosts_in(&report.matched, &mut hosts);
    }
    // The agent's own event, else its log.
    let last = events
        .iter()
        .rev()
        .find(|r| says_unreachable(r))
        .or_else(|| log.iter().rev().find(|r| says_unreachable(r)))?;
    Some(Unreachable {
        hosts,
        last_error: cut(&last.quoted),
    })
}

fn cut(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= QUOTED_ERROR_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(QUOTED_ERROR_CHARS).collect();
    format!("{head}…")
}

/// What the sandbox's network mode means for an agent that could not get out.
fn network_hint(network: NetworkMode) -> String {
    match network {
        NetworkMode::None => "this sandbox's network mode is none, which lets no connection out of the sandbox: \
             an agent needs a sandbox created with network egress to reach its provider"
            .to_string(),
        mode => format!(
            "check that the sandbox (network mode {mode}) can reach it: the host's DNS, a firewall or a proxy may be in the way"
        ),
    }
}

/// "its provider", with the hosts the output named.
fn provider(found: &Unreachable) -> String {
    if found.hosts.is_empty() {
        "its provider".to_string()
    } else {
        format!("its provider ({})", found.hosts.join(", "))
    }
}

/// The message of an agent that ended (or failed) because it could not reach its provider.
pub(super) fn unreachable_message(found: &Unreachable, network: NetworkMode) -> String {
    format!(
        "the agent could not reach {}: {}. Its last connection error: {}",
        provider(found),
        network_hint(network),
        found.last_error
    )
}

/// The message of an agent the deadline stopped while it could not reach its provider: both.
pub(super) fn unreachable_at_deadline_message(
    timeout_secs: u64,
    found: &Unreachable,
    network: NetworkMode,
) -> String {
    format!(
        "the agent did not finish within {timeout_secs}s and was stopped (its processes were killed); \
         until then it could not reach {}: {}. Its last connection error: {}",
        provider(found),
        network_hint(network),
        found.last_error
    )
}

/// What a timeout message adds in a sandbox with network `none`, where no agent can reach its
/// provider even when its output did not say so before it was stopped.
pub(super) fn timeout_note(network: NetworkMode) -> Option<&'static str> {
    (network == NetworkMode::None).then_some(
        "; this sandbox's network mode is none, which lets no connection out of the sandbox, \
         so the agent could not reach its provider from it",
    )
}

#[cfg(test)]
#[path = "unreachable_tests.rs"]
mod tests;
