//! Streamed agent sends end to end: `amika sandbox agent-send --stream`,
//! `POST /sandboxes/{id}/agent-send/stream` and `GET .../agent-send-jobs/{job}/events`
//! (server-sent events) against a real server and real bubblewrap sandboxes.
//!
//! The agents are the *stand-in* scripts of `tests/fixtures` (test agents, not the real CLIs):
//! in `stream-json` mode the Claude stand-in prints what `claude -p` prints — an init line, two
//! text deltas, a Bash tool call of `pwd` and its result, the whole message, and the result
//! object; `simulate-slow` waits 3 s after its first delta, `simulate-sleep` never ends.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use amika_testkit::sse::{self, shape, streamed_text};
use common::agents::{api, sandbox, str_of, Credentials};
use common::{exec_sh, fails, http, ok, wait_until, Server};
use serde_json::{json, Value};

const ACCESS: &str = "sk-ant-oat01-STREAMACCESS-0d15ea5e77";
const REFRESH: &str = "sk-ant-ort01-STREAMREFRESH-abad1dea99";
const CREDENTIALS: Credentials = Credentials {
    access: ACCESS,
    refresh: REFRESH,
    claude_key: "sk-ant-api03-STREAMKEY-feedface01",
    codex_key: "sk-proj-STREAMCODEX-c0c0a0b0c0",
};

const AUTH_MESSAGE: &str = "the agent could not authenticate with its provider; credential personal-oauth may have expired or been revoked";

fn stream_api(server: &Server, sandbox: &str, body: Value) -> (u16, String) {
    http(
        server,
        "POST",
        &format!("/api/v0beta1/sandboxes/{sandbox}/agent-send/stream"),
        Some(&server.admin_key),
        Some(&body.to_string()),
    )
}

#[test]
fn a_streamed_send_shows_status_deltas_and_the_answer_in_order() {
    let server = Server::start();
    CREDENTIALS.push(&server);
    let _sb = sandbox(&server, "live", &[]);

    let (status, body) = stream_api(&server, "live", json!({"message": "hello stream"}));
    assert_eq!(status, 200, "{body}");
    let events = sse::events(&body);
    assert_eq!(
        shape(&events),
        [
            "status:pending",
            "status:running",
            "delta:text",
            "delta:text",
            "delta:tool_call",
            "delta:tool_result",
            "done"
        ],
        "{body}"
    );
    let done = events.last().unwrap();
    assert_eq!(
        (&done["is_error"], &done["exit_code"]),
        (&json!(false), &json!(0))
    );
    // The deltas add up to the answer; the tool call and its result are Claude's Bash `pwd`.
    assert_eq!(streamed_text(&events), str_of(done, "response"));
    assert!(str_of(done, "response").starts_with("echo: hello stream\n"));
    assert_eq!(
        (&events[4]["tool"], &events[4]["text"]),
        (&json!("Bash"), &json!("pwd"))
    );
    assert_eq!(
        (&events[5]["tool"], &events[5]["text"]),
        (&json!("Bash"), &json!("/home/amika/workspace"))
    );
    // Every event names the same job and session as the answer, which the transcript keeps.
    for e in &events[..2] {
        assert_eq!(
            (&e["job_id"], &e["session_id"]),
            (&done["job_id"], &done["session_id"])
        );
    }
    let (_, session) = api(
        &server,
        "GET",
        &format!("/sandboxes/live/sessions/{}", str_of(done, "session_id")),
        None,
    );
    assert_eq!(session["transcript"][0]["response"], done["response"]);
    assert_eq!(session["status"], json!("idle"));

    // The CLI: the reply on stdout as it comes, the session line and the tool call on stderr.
    let out = server
        .amika()
        .args(["sandbox", "agent-send", "live", "from the cli", "--stream"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("echo: from the cli\n"), "{stdout}");
    assert!(stdout.ends_with("cwd: /home/amika/workspace\n"), "{stdout}");
    assert!(
        stderr.contains("claude, session ses_") && stderr.contains("→ Bash: pwd"),
        "{stderr}"
    );
    // -o json: every event, one JSON line each.
    let out = ok(server.amika().args([
        "sandbox",
        "agent-send",
        "live",
        "as json",
        "--stream",
        "-o",
        "json",
    ]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {out:?}")))
        .collect();
    assert_eq!(
        shape(&lines).first().map(String::as_str),
        Some("status:pending")
    );
    assert_eq!(shape(&lines).last().map(String::as_str), Some("done"));
    assert!(str_of(lines.last().unwrap(), "response").starts_with("echo: as json\n"));
}

#[test]
fn deltas_arrive_while_the_agent_still_works_and_values_never_appear() {
    let server = Server::start();
    CREDENTIALS.push(&server);
    let _sb = sandbox(&server, "slow", &[]);

    // The stand-in waits 3 s after its first delta: that delta must reach the CLI before.
    let mut child = server
        .amika()
        .args([
            "sandbox",
            "agent-send",
            "slow",
            "simulate-slow echo-credential",
            "--stream",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        seen.push((started.elapsed(), event));
    }
    assert!(child.wait().unwrap().success());
    let first_text = seen
        .iter()
        .find(|(_, e)| e["kind"] == "text")
        .map(|(at, _)| *at)
        .unwrap();
    let done = seen.last().unwrap();
    assert_eq!(done.1["event"], json!("done"));
    assert!(
        done.0 >= first_text + Duration::from_millis(2500),
        "first delta at {first_text:?}, done at {:?}",
        done.0
    );
    // The stand-in printed its raw credential: redacted in the deltas and the answer alike.
    let all: String = seen.iter().map(|(_, e)| e.to_string()).collect();
    assert!(all.contains("[REDACTED:personal-oauth]"), "{all}");
    for value in [ACCESS, REFRESH] {
        assert!(!all.contains(value), "a value in the stream: {all}");
    }
}

#[test]
fn an_agent_that_cannot_authenticate_ends_the_stream_with_the_error_agent_send_answers() {
    let server = Server::start();
    CREDENTIALS.push(&server);
    let _sb = sandbox(&server, "denied", &[]);

    let (status, body) = stream_api(&server, "denied", json!({"message": "simulate-auth"}));
    assert_eq!(status, 200);
    let events = sse::events(&body);
    assert_eq!(
        shape(&events),
        ["status:pending", "status:running", "error"]
    );
    let error = events.last().unwrap();
    assert_eq!(
        (&error["code"], &error["message"]),
        (&json!("agent_auth_failed"), &json!(AUTH_MESSAGE))
    );
    assert_eq!(error["details"][0]["field"], json!("agent"));
    assert!(!str_of(error, "trace_id").is_empty());

    let out = server
        .amika()
        .args([
            "sandbox",
            "agent-send",
            "denied",
            "simulate-auth",
            "--stream",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).ends_with(&format!("error: {AUTH_MESSAGE}\n")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Errors before the agent starts are plain JSON answers, as for agent-send.
    let (status, body) = stream_api(&server, "denied", json!({"message": ""}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"field\":\"message\""), "{body}");
    let (status, body) = stream_api(&server, "nope", json!({"message": "hi"}));
    assert_eq!(status, 404, "{body}");
    let err = fails(server.amika().args([
        "sandbox",
        "agent-send",
        "denied",
        "hi",
        "--stream",
        "--no-wait",
    ]));
    assert!(
        err.contains("--no-wait") && err.contains("--stream"),
        "{err}"
    );
}

/// Start a send that never ends and wait until its agent runs.
fn start_sleeper(server: &Server, sandbox: &str) -> std::process::Child {
    let child = server
        .amika()
        .args([
            "sandbox",
            "agent-send",
            sandbox,
            "simulate-sleep",
            "--stream",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the agent to start", Duration::from_secs(30), || {
        exec_sh(
            server,
            sandbox,
            "cat ~/.fake-claude-runs 2>/dev/null || true",
        )
        .contains("run ")
    });
    child
}

fn agent_runs(server: &Server, sandbox: &str) -> bool {
    exec_sh(
        server,
        sandbox,
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < \"$p/cmdline\" 2>/dev/null; echo; done",
    )
    .contains("sleep 297")
}

/// The sandbox's latest session and its last turn.
fn last_turn(server: &Server, sandbox: &str) -> (Value, Value) {
    let (_, latest) = api(
        server,
        "GET",
        &format!("/sandboxes/{sandbox}/sessions/latest"),
        None,
    );
    let (_, session) = api(
        server,
        "GET",
        &format!("/sandboxes/{sandbox}/sessions/{}", str_of(&latest, "id")),
        None,
    );
    let turn = session["transcript"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    (session, turn)
}

#[test]
fn a_client_that_goes_away_or_a_cancelled_session_stops_the_agent() {
    let server = Server::start();
    CREDENTIALS.push(&server);
    let _sb = sandbox(&server, "stopper", &[]);

    // The streaming client goes away: the agent is stopped, the send recorded as cancelled.
    let mut child = start_sleeper(&server, "stopper");
    assert!(agent_runs(&server, "stopper"));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the agent to be stopped", Duration::from_secs(20), || {
        !agent_runs(&server, "stopper")
    });
    wait_until("the send to be recorded", Duration::from_secs(20), || {
        last_turn(&server, "stopper").1["state"] == "failed"
    });
    let (session, turn) = last_turn(&server, "stopper");
    assert_eq!(turn["error_code"], json!("agent_cancelled"));
    assert_eq!(
        turn["response"],
        json!("the request was cancelled before the agent finished; the agent was stopped")
    );
    assert_eq!(session["status"], json!("idle"));

    // PATCH status cancelled while a send runs: the agent is stopped and the session cancelled.
    let mut child = start_sleeper(&server, "stopper");
    let sid = str_of(&last_turn(&server, "stopper").0, "id").to_string();
    let (status, patched) = api(
        &server,
        "PATCH",
        &format!("/sandboxes/stopper/sessions/{sid}"),
        Some(json!({"status": "cancelled"})),
    );
    assert_eq!(status, 200, "{patched:#}");
    assert_eq!(patched["status"], json!("cancelled"));
    assert!(!agent_runs(&server, "stopper"));
    let (_, turn) = last_turn(&server, "stopper");
    assert_eq!(
        (&turn["state"], &turn["error_code"]),
        (&json!("failed"), &json!("agent_cancelled"))
    );
    assert!(
        str_of(&turn, "response").contains("session was cancelled"),
        "{turn:#}"
    );
    // The streaming CLI saw the end and says so.
    let status = child.wait().unwrap();
    assert!(!status.success());
    // Another status while a send runs is still refused.
    let mut child = start_sleeper(&server, "stopper");
    let (status, busy) = api(
        &server,
        "PATCH",
        &format!("/sandboxes/stopper/sessions/{sid}"),
        Some(json!({"status": "completed"})),
    );
    assert_eq!(
        (status, &busy["code"]),
        (409, &json!("session_busy")),
        "{busy:#}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_job_is_followed_live_and_after_its_end() {
    let server = Server::start();
    CREDENTIALS.push(&server);
    let _sb = sandbox(&server, "jobs", &[]);

    let (status, job) = api(
        &server,
        "POST",
        "/sandboxes/jobs/agent-send-jobs",
        Some(json!({"message": "simulate-slow followed"})),
    );
    assert_eq!(status, 202, "{job:#}");
    let path = format!(
        "/api/v0beta1/sandboxes/jobs/agent-send-jobs/{}/events",
        str_of(&job, "job_id")
    );
    let (status, body) = http(&server, "GET", &path, Some(&server.admin_key), None);
    assert_eq!(status, 200, "{body}");
    let live = sse::events(&body);
    assert_eq!(live.first().unwrap()["event"], json!("status"));
    assert!(
        shape(&live).contains(&"delta:tool_call".to_string()),
        "{body}"
    );
    let done = live.last().unwrap();
    assert_eq!(done["event"], json!("done"));
    assert_eq!(streamed_text(&live), str_of(done, "response"));

    // After its end: its status and its answer.
    let (_, body) = http(&server, "GET", &path, Some(&server.admin_key), None);
    let after = sse::events(&body);
    assert_eq!(shape(&after), ["status:done", "done"]);
    assert_eq!(after[1]["response"], done["response"]);

    // Nobody else's, and no such job.
    let (status, _) = http(
        &server,
        "GET",
        "/api/v0beta1/sandboxes/jobs/agent-send-jobs/job_nope/events",
        Some(&server.admin_key),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = http(&server, "GET", &path, None, None);
    assert_eq!(status, 401);
}
