//! `amika sandbox agent-send` and the agent-send API end to end: the real `amika` binary, a real
//! server, real bubblewrap sandboxes.
//!
//! The real agent CLIs cannot reach their providers from the test machines, so each test places
//! a *test agent* (`tests/fixtures/fake-claude.sh`, `fake-codex.sh`: shell scripts, named as
//! such) under the agent's command name in the sandbox's `~/.local/bin`, which is first on the
//! sandbox's PATH. The test agent prints a SHA-256 of the credential it finds, echoes the message
//! and the session it was asked to resume, and answers in its real counterpart's JSON format;
//! words in the message make it sleep, crash, fail to authenticate or print its raw credential.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::agents::{api, sandbox, str_of, Credentials};
use common::{contains, exec_sh, fails, files_containing, ok, ok_json, sha256, wait_until, Server};
use serde_json::{json, Value};

const ACCESS: &str = "sk-ant-oat01-AGENTACCESS-5b1f0c77e2";
const REFRESH: &str = "sk-ant-ort01-AGENTREFRESH-9e2d4711aa";
const CLAUDE_KEY: &str = "sk-ant-api03-AGENTKEY-c0ffee1122";
const CODEX_KEY: &str = "sk-proj-AGENTCODEX-7a7a7a3344";
const CREDENTIALS: Credentials = Credentials {
    access: ACCESS,
    refresh: REFRESH,
    claude_key: CLAUDE_KEY,
    codex_key: CODEX_KEY,
};
const DB_URL: &str = "postgres://app:agent-db-pw-51f3@db:5432/app";

const AUTH_MESSAGE: &str = "the agent could not authenticate with its provider; credential personal-oauth may have expired or been revoked";

fn oauth_doc() -> String {
    CREDENTIALS.oauth_doc()
}

fn push_credentials(server: &Server) {
    CREDENTIALS.push(server)
}

/// `amika sandbox agent-send SANDBOX ARGS... -o json`: (exit success, the answer).
fn send(server: &Server, sandbox: &str, args: &[&str]) -> (bool, Value) {
    let out = server
        .amika()
        .args(["sandbox", "agent-send", sandbox])
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "agent-send {args:?}: not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), answer)
}

/// A send that must succeed.
fn reply(server: &Server, sandbox: &str, args: &[&str]) -> Value {
    let (success, answer) = send(server, sandbox, args);
    assert!(
        success && answer["is_error"] == false,
        "agent-send {args:?}: {answer:#}"
    );
    answer
}

/// Every process in the sandbox, one command line per line (`ps` may not be installed).
fn sandbox_processes(server: &Server, sandbox: &str) -> String {
    exec_sh(
        server,
        sandbox,
        r#"for p in /proc/[0-9]*; do tr '\0' ' ' < "$p/cmdline" 2>/dev/null; echo; done"#,
    )
}

#[test]
fn each_agent_answers_with_its_own_credential_and_keeps_its_sessions() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(
        &server,
        "dev-box",
        &[
            "--agent-credential",
            "claude=personal-oauth",
            "--agent-credential",
            "codex=work-key",
        ],
    );

    // No --agent: the first kind resolved for the sandbox, claude. The message reaches the agent
    // as one argument, untouched by any shell.
    let tricky = "add tests for the parser; $(touch /tmp/pwned) 'single' \"double\" {session} ✓";
    let first = reply(&server, "dev-box", &[tricky]);
    let text = str_of(&first, "response");
    assert!(text.starts_with(&format!("echo: {tricky}\n")), "{text}");
    assert!(text.contains("args after --: 1"), "{text}");
    assert!(text.contains("resumed: none"), "{text}");
    // Exactly the resolved credential: the OAuth file, not the other claude credential.
    let oauth_hash = sha256(oauth_doc().as_bytes());
    assert!(
        text.contains(&format!(
            "credential: file .claude/.credentials.json sha256={oauth_hash}"
        )),
        "{text}"
    );
    assert!(!text.contains(&sha256(CLAUDE_KEY.as_bytes())), "{text}");
    assert_eq!(
        (
            &first["agent"],
            &first["is_new_session"],
            &first["exit_code"],
            &first["error_code"]
        ),
        (&json!("claude"), &json!(true), &json!(0), &Value::Null)
    );
    assert_eq!(first["cost_usd"], json!(0.0042));
    let session = str_of(&first, "session_id").to_string();
    assert!(session.starts_with("ses_"), "{session}");
    let agent_first = str_of(&first, "agent_session_id").to_string();
    assert!(
        !exec_sh(&server, "dev-box", "ls /tmp").contains("pwned"),
        "the message was run by a shell"
    );

    // Continuing the session resumes the agent's conversation; Claude answers a resumed
    // conversation under a new id, which the next send resumes.
    let second = reply(&server, "dev-box", &["and now", "--session-id", &session]);
    assert_eq!(str_of(&second, "session_id"), session);
    assert_eq!(second["is_new_session"], json!(false));
    assert!(
        str_of(&second, "response").contains(&format!("resumed: {agent_first}")),
        "{second:#}"
    );
    let agent_second = str_of(&second, "agent_session_id").to_string();
    assert_ne!(agent_second, agent_first);
    // Without --session-id: the sandbox's latest claude session.
    let third = reply(&server, "dev-box", &["once more"]);
    assert_eq!(str_of(&third, "session_id"), session);
    assert!(
        str_of(&third, "response").contains(&format!("resumed: {agent_second}")),
        "{third:#}"
    );
    // --new-session starts over.
    let fresh = reply(&server, "dev-box", &["start over", "--new-session"]);
    assert_ne!(str_of(&fresh, "session_id"), session);
    assert_eq!(fresh["is_new_session"], json!(true));
    assert!(str_of(&fresh, "response").contains("resumed: none"));

    // Text mode, message from stdin: the reply alone on stdout, the session on stderr.
    let mut child = server
        .amika()
        .args(["sandbox", "agent-send", "dev-box"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"read from stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("echo: read from stdin\n"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "claude, session {} (continue with --session-id {})",
            str_of(&fresh, "session_id"),
            str_of(&fresh, "session_id")
        )),
        "{stderr}"
    );

    // Codex gets its own credential (the API key in its environment) and its own session.
    let codex = reply(&server, "dev-box", &["hello codex", "--agent", "codex"]);
    let text = str_of(&codex, "response");
    assert_eq!(codex["agent"], json!("codex"));
    assert!(
        text.contains(&format!(
            "credential: env OPENAI_API_KEY sha256={}",
            sha256(CODEX_KEY.as_bytes())
        )),
        "{text}"
    );
    assert!(text.starts_with("echo: hello codex\n") && text.contains("resumed: none"));
    let thread = str_of(&codex, "agent_session_id").to_string();
    let codex_again = reply(&server, "dev-box", &["and more", "--agent", "codex"]);
    assert_eq!(codex_again["session_id"], codex["session_id"]);
    assert!(str_of(&codex_again, "response").contains(&format!("resumed: {thread}")));

    // A claude session cannot be continued by codex.
    let err = fails(server.amika().args([
        "sandbox",
        "agent-send",
        "dev-box",
        "hi",
        "--session-id",
        &session,
        "--agent",
        "codex",
    ]));
    assert!(
        err.contains("is a claude session") && err.contains("agent_mismatch"),
        "{err}"
    );

    // What the test agents were run with: exactly the templates' argv, nothing else.
    let runs = exec_sh(&server, "dev-box", "cat ~/.fake-claude-runs");
    let expected = format!(
        "run argc=9 resume=none mode=bypassPermissions\nrun argc=11 resume={agent_first} mode=bypassPermissions\nrun argc=11 resume={agent_second} mode=bypassPermissions\nrun argc=9 resume=none mode=bypassPermissions\n"
    );
    assert!(runs.starts_with(&expected), "{runs}");
    let runs = exec_sh(&server, "dev-box", "cat ~/.fake-codex-runs");
    assert_eq!(
        runs,
        format!("run argc=7 resume=none sandbox=danger-full-access\nrun argc=9 resume={thread} sandbox=danger-full-access\n")
    );

    // The sessions, newest first, and one transcript.
    let (status, list) = api(&server, "GET", "/sandboxes/dev-box/sessions", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], json!(3));
    let kinds: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["agent_name"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["codex", "claude", "claude"]);
    assert!(list["sessions"][0].get("transcript").is_none());
    let (status, got) = api(
        &server,
        "GET",
        &format!("/sandboxes/dev-box/sessions/{session}"),
        None,
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        (
            &got["agent_name"],
            &got["status"],
            &got["turn_count"],
            &got["agent_session_id"]
        ),
        (
            &json!("claude"),
            &json!("idle"),
            &json!(3),
            &third["agent_session_id"]
        )
    );
    assert_eq!(got["metadata"], json!({}));
    assert_eq!(
        got["server_metadata"],
        json!({"credential": "personal-oauth"})
    );
    let transcript = got["transcript"].as_array().unwrap();
    let messages: Vec<&str> = transcript
        .iter()
        .map(|t| t["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, [tricky, "and now", "once more"]);
    assert_eq!(transcript[0]["response"], first["response"]);
    assert_eq!(transcript[0]["id"], first["job_id"]);
    assert_eq!(transcript[1]["state"], json!("done"));

    // Audited with the credential's name, never a value.
    let audit = ok_json(
        server
            .amika()
            .args(["audit", "-o", "json", "--limit", "100"]),
    );
    let sent: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "agent.message_sent")
        .collect();
    assert_eq!(sent.len(), 7);
    assert!(sent
        .iter()
        .any(|e| e["detail"]["credential"] == "personal-oauth"));
    assert!(!audit.to_string().contains(ACCESS));
}

/// The values a sandbox was given never come back: not in a reply (synchronous or job), not in
/// the stored transcript or the sessions API, not in the database or the server's log.
fn redaction_story(server: &Server) {
    push_credentials(server);
    ok(server
        .amika()
        .args(["secret", "push", &format!("DATABASE_URL={DB_URL}"), "--yes"]));
    let _key_box = sandbox(
        server,
        "leaky",
        &[
            "--agent-credential",
            "claude=backup-key",
            "--secret",
            "env:DATABASE_URL",
        ],
    );
    let _oauth_box = sandbox(server, "leaky-oauth", &[]);
    let raw = [CLAUDE_KEY, ACCESS, REFRESH, DB_URL];

    // The agent prints its raw API key; the message itself carries a secret value.
    let message = format!("echo-credential, then connect to {DB_URL}");
    let answer = reply(server, "leaky", &[&message]);
    let text = str_of(&answer, "response");
    assert!(
        text.contains(&format!(
            "credential: env ANTHROPIC_API_KEY sha256={}",
            sha256(CLAUDE_KEY.as_bytes())
        )),
        "{text}"
    );
    assert!(
        text.contains("raw credential: [REDACTED:backup-key]"),
        "{text}"
    );
    assert!(
        text.contains("connect to [REDACTED:DATABASE_URL]"),
        "{text}"
    );

    // The OAuth document, printed whole: its tokens are redacted too.
    let answer = reply(server, "leaky-oauth", &["echo-credential"]);
    let text = str_of(&answer, "response");
    assert!(text.contains("[REDACTED:personal-oauth]"), "{text}");

    // The job form.
    let (status, job) = api(
        server,
        "POST",
        "/sandboxes/leaky/agent-send-jobs",
        Some(json!({"message": "echo-credential from a job"})),
    );
    assert_eq!(status, 202, "{job}");
    let job_id = str_of(&job, "job_id").to_string();
    let mut done = Value::Null;
    wait_until("the job", Duration::from_secs(30), || {
        done = api(
            server,
            "GET",
            &format!("/sandboxes/leaky/agent-send-jobs/{job_id}"),
            None,
        )
        .1;
        done["state"] == "done"
    });
    assert!(str_of(&done, "result_text").contains("raw credential: [REDACTED:backup-key]"));

    // Sessions and transcripts.
    let mut seen = String::new();
    for sb in ["leaky", "leaky-oauth"] {
        let (_, list) = api(server, "GET", &format!("/sandboxes/{sb}/sessions"), None);
        seen.push_str(&list.to_string());
        for s in list["sessions"].as_array().unwrap() {
            let id = str_of(s, "id");
            let (_, got) = api(
                server,
                "GET",
                &format!("/sandboxes/{sb}/sessions/{id}"),
                None,
            );
            seen.push_str(&got.to_string());
        }
    }
    assert!(
        seen.contains("echo-credential, then connect to [REDACTED:DATABASE_URL]"),
        "{seen}"
    );
    assert!(seen.contains("raw credential: [REDACTED:backup-key]"));
    for value in raw {
        assert!(!seen.contains(value), "{value} in the sessions API");
        assert!(
            files_containing(&server.data_dir, value.as_bytes()).is_empty(),
            "{value} in {:?}",
            files_containing(&server.data_dir, value.as_bytes())
        );
        assert!(
            !contains(server.log_text().as_bytes(), value.as_bytes()),
            "{value} in the server log"
        );
    }
    if let Some(url) = &server.database_url {
        let dump = amika_testkit::postgres::pg_dump(url);
        assert!(
            contains(&dump, b"[REDACTED:backup-key]"),
            "the dump holds the transcript"
        );
        for value in raw {
            assert!(!contains(&dump, value.as_bytes()), "{value} in PostgreSQL");
        }
    }
}

#[test]
fn injected_values_never_leave_the_server_sqlite() {
    redaction_story(&Server::start());
}

#[test]
fn injected_values_never_leave_the_server_postgres() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("amika_e2e") else {
        return;
    };
    let url = db.url().to_string();
    redaction_story(&Server::start_with(Some(url), &[]));
}

#[test]
fn a_skipped_agent_kind_fails_at_once_and_starts_nothing() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(&server, "no-codex", &["--no-agent-credential", "codex"]);

    let err = fails(server.amika().args([
        "sandbox",
        "agent-send",
        "no-codex",
        "hello",
        "--agent",
        "codex",
    ]));
    assert!(
        err.contains(r#"sandbox "no-codex" has no codex credential: it was skipped when the sandbox was created (no-agent-credential flag)"#)
            && err.contains("--agent-credential codex=NAME")
            && err.contains("(agent_credential_skipped)"),
        "{err}"
    );
    let (status, body) = api(
        &server,
        "POST",
        "/sandboxes/no-codex/agent-send-jobs",
        Some(json!({"message": "hello", "agent": "codex"})),
    );
    assert_eq!(
        (status, &body["code"]),
        (422, &json!("agent_credential_skipped"))
    );
    // No process ran, no session was started.
    assert_eq!(
        exec_sh(
            &server,
            "no-codex",
            "test -e ~/.fake-codex-runs && echo ran || echo never"
        ),
        "never\n"
    );
    let (_, list) = api(&server, "GET", "/sandboxes/no-codex/sessions", None);
    assert_eq!(list["total"], json!(0));

    // A sandbox with no credential at all: the default agent (claude) has none either.
    let _bare = sandbox(
        &server,
        "bare",
        &[
            "--no-agent-credential",
            "claude",
            "--no-agent-credential",
            "codex",
        ],
    );
    let err = fails(server.amika().args(["sandbox", "agent-send", "bare", "hi"]));
    assert!(
        err.contains(r#"sandbox "bare" has no claude credential"#),
        "{err}"
    );
    assert_eq!(
        exec_sh(
            &server,
            "bare",
            "test -e ~/.fake-claude-runs && echo ran || echo never"
        ),
        "never\n"
    );
}

#[test]
fn auth_failures_crashes_and_deadlines_are_errors_that_say_what_happened() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(
        &server,
        "flaky",
        &["--agent-credential", "claude=personal-oauth"],
    );

    // An agent that could not authenticate is an HTTP error, as clients of the public Amika API
    // expect: 422 `agent_auth_failed`, its `details` carrying the agent's message.
    let (status, auth) = api(
        &server,
        "POST",
        "/sandboxes/flaky/agent-send",
        Some(json!({"message": "simulate-auth"})),
    );
    assert_eq!(status, 422, "{auth:#}");
    assert_eq!(
        (&auth["code"], &auth["message"]),
        (&json!("agent_auth_failed"), &json!(AUTH_MESSAGE))
    );
    assert_eq!(
        auth["details"],
        json!([{"field": "agent", "code": "agent_auth_failed", "message": AUTH_MESSAGE}])
    );
    // The CLI says it as it says every agent failure, in both output modes; nothing on stdout.
    for json_mode in [false, true] {
        let mut cmd = server.amika();
        cmd.args(["sandbox", "agent-send", "flaky", "simulate-auth"]);
        if json_mode {
            cmd.args(["-o", "json"]);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("error: {AUTH_MESSAGE}\n")
        );
    }
    // The job form and the transcript keep it as the agent's error, with its exit status.
    let (status, job) = api(
        &server,
        "POST",
        "/sandboxes/flaky/agent-send-jobs",
        Some(json!({"message": "simulate-auth"})),
    );
    assert_eq!(status, 202, "{job:#}");
    let path = format!(
        "/sandboxes/flaky/agent-send-jobs/{}",
        str_of(&job, "job_id")
    );
    let mut done = Value::Null;
    wait_until("the auth job to end", Duration::from_secs(30), || {
        done = api(&server, "GET", &path, None).1;
        done["state"] == "failed"
    });
    assert_eq!(
        (
            &done["response"]["is_error"],
            &done["response"]["response"],
            &done["response"]["error_code"],
            &done["response"]["exit_code"]
        ),
        (
            &json!(true),
            &json!(AUTH_MESSAGE),
            &json!("agent_auth_failed"),
            &json!(1)
        )
    );

    let (success, crash) = send(&server, "flaky", &["simulate-crash", "--new-session"]);
    assert!(!success);
    assert_eq!(
        (
            &crash["is_error"],
            &crash["exit_code"],
            &crash["error_code"]
        ),
        (&json!(true), &json!(3), &json!("agent_crashed"))
    );
    assert_eq!(
        crash["response"],
        json!("the agent exited with status 3: fake-claude: simulated crash: segmentation fault in the parser")
    );

    // The deadline kills the agent's whole process tree.
    let started = Instant::now();
    let (success, late) = send(
        &server,
        "flaky",
        &["simulate-sleep", "--new-session", "--timeout", "2"],
    );
    let took = started.elapsed();
    assert!(!success);
    assert_eq!(
        (&late["is_error"], &late["error_code"], &late["exit_code"]),
        (&json!(true), &json!("agent_timeout"), &Value::Null)
    );
    assert_eq!(
        late["response"],
        json!("the agent did not finish within 2s and was stopped (its processes were killed)")
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "{took:?}"
    );
    wait_until(
        "the killed agent to be gone",
        Duration::from_secs(10),
        || !sandbox_processes(&server, "flaky").contains("sleep 297"),
    );

    // The job form: accepted at once, then done; a job that runs out of time fails.
    let (status, job) = api(
        &server,
        "POST",
        "/sandboxes/flaky/agent-send-jobs",
        Some(json!({"message": "a long task", "new_session": true})),
    );
    assert_eq!(status, 202, "{job}");
    assert!(
        ["pending", "running", "done"].contains(&str_of(&job, "state")),
        "{job}"
    );
    assert_eq!(job["response"], Value::Null);
    let job_id = str_of(&job, "job_id").to_string();
    let mut done = Value::Null;
    wait_until("the job to finish", Duration::from_secs(30), || {
        done = api(
            &server,
            "GET",
            &format!("/sandboxes/flaky/agent-send-jobs/{job_id}"),
            None,
        )
        .1;
        done["state"] == "done"
    });
    assert!(str_of(&done, "result_text").starts_with("echo: a long task\n"));
    assert_eq!(done["response"]["job_id"], json!(job_id));
    assert_eq!(done["response"]["is_error"], json!(false));
    assert_eq!(done["session_id"], job["session_id"]);

    let (_, slow) = api(
        &server,
        "POST",
        "/sandboxes/flaky/agent-send-jobs",
        Some(json!({"message": "simulate-sleep", "new_session": true, "timeout_secs": 1})),
    );
    let slow_id = str_of(&slow, "job_id").to_string();
    let mut failed = Value::Null;
    wait_until("the slow job to fail", Duration::from_secs(30), || {
        failed = api(
            &server,
            "GET",
            &format!("/sandboxes/flaky/agent-send-jobs/{slow_id}"),
            None,
        )
        .1;
        failed["state"] == "failed"
    });
    assert_eq!(failed["response"]["error_code"], json!("agent_timeout"));
    wait_until(
        "the slow job's agent to be gone",
        Duration::from_secs(10),
        || !sandbox_processes(&server, "flaky").contains("sleep 297"),
    );
}

#[test]
fn closing_the_connection_stops_the_agent() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(&server, "cancel-me", &[]);

    let addr = server.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let body = json!({"message": "simulate-sleep", "timeout_secs": 120}).to_string();
    write!(
        stream,
        "POST /api/v0beta1/sandboxes/cancel-me/agent-send HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.admin_key,
        body.len()
    )
    .unwrap();
    wait_until("the agent to start", Duration::from_secs(30), || {
        sandbox_processes(&server, "cancel-me").contains("sleep 297")
    });
    drop(stream);
    wait_until(
        "the agent to be killed after the client left",
        Duration::from_secs(15),
        || !sandbox_processes(&server, "cancel-me").contains("sleep 297"),
    );

    // The send is recorded as cancelled.
    let (_, list) = api(&server, "GET", "/sandboxes/cancel-me/sessions", None);
    let id = str_of(&list["sessions"][0], "id").to_string();
    let mut session = Value::Null;
    wait_until(
        "the cancellation to be recorded",
        Duration::from_secs(10),
        || {
            session = api(
                &server,
                "GET",
                &format!("/sandboxes/cancel-me/sessions/{id}"),
                None,
            )
            .1;
            session["transcript"][0]["state"] == "failed"
        },
    );
    assert_eq!(
        session["transcript"][0]["error_code"],
        json!("agent_cancelled")
    );
    assert_eq!(session["status"], json!("idle"));
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(&server, "strict", &[]);
    let post = |body: Value| api(&server, "POST", "/sandboxes/strict/agent-send", Some(body));

    let cases = [
        (json!({"message": "  "}), 400, "message must not be empty"),
        (
            json!({"message": "m", "session_id": "ses_x", "new_session": true}),
            400,
            "session_id and new_session exclude each other",
        ),
        (
            json!({"message": "m", "timeout_secs": 100000}),
            422,
            "longer than this server's agent deadline of 600s",
        ),
        (
            json!({"message": "m", "timeout_secs": 0}),
            400,
            "at least 1",
        ),
        (json!({"message": "m", "sessionId": "s"}), 400, "sessionId"),
        (
            json!({"message": "m", "agent": "gemini"}),
            400,
            "claude or codex",
        ),
        (
            json!({"message": "x".repeat(200 * 1024)}),
            400,
            "more than the 102400 an agent can be given",
        ),
        (
            json!({"message": "m", "session_id": "ses_nope"}),
            422,
            r#"agent session "ses_nope" in sandbox "strict" not found"#,
        ),
    ];
    for (body, status, says) in cases {
        let (got, answer) = post(body.clone());
        let message = answer["message"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{body}: {answer}");
        assert!(message.contains(says), "{body}: {message}");
    }
    let (status, _) = api(
        &server,
        "POST",
        "/sandboxes/missing/agent-send",
        Some(json!({"message": "m"})),
    );
    assert_eq!(status, 404);
    let (status, answer) = api(
        &server,
        "GET",
        "/sandboxes/strict/agent-send-jobs/job_missing",
        None,
    );
    assert_eq!(status, 404, "{answer}");
    for query in ["limit=0", "limit=5000", "status=asleep", "limit=x"] {
        let (status, answer) = api(
            &server,
            "GET",
            &format!("/sandboxes/strict/sessions?{query}"),
            None,
        );
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["type"], json!("error"), "{query}: {answer}");
    }

    // A stopped sandbox is told to start first; nothing runs.
    ok(server.amika().args(["sandbox", "stop", "strict"]));
    let (status, answer) = post(json!({"message": "m"}));
    assert_eq!(status, 409, "{answer}");
    assert!(
        str_of(&answer, "message")
            .contains("agent-send needs it running (`amika sandbox start strict`)"),
        "{answer}"
    );
}
