//! Agent sessions on the public API's wire (issue 14) end to end: the real `amika` binary, a real
//! server on a real port, real bubblewrap sandboxes.
//!
//! The agents are the *stand-in* scripts of `tests/fixtures` (`fake-claude.sh`, `fake-codex.sh`:
//! test agents, not the real CLIs, which cannot reach their providers here), installed as
//! `claude` and `codex` in the sandbox's `~/.local/bin`. The Claude stand-in echoes the message,
//! the session it resumed and the directory it ran in (`cwd: ...`).

mod common;

use std::time::Duration;

use common::agents::{api, api_as, sandbox, str_of, Credentials};
use common::{fails, files_containing, ok, wait_until, Server};
use serde_json::{json, Value};

const ACCESS: &str = "sk-ant-oat01-SESSIONACCESS-77a1c0de42";
const REFRESH: &str = "sk-ant-ort01-SESSIONREFRESH-31f00dba5e";
const CLAUDE_KEY: &str = "sk-ant-api03-SESSIONKEY-d00dfeed55";
const CODEX_KEY: &str = "sk-proj-SESSIONCODEX-4b4b4b1212";

/// Claude: `personal-oauth` (oauth, default) and `backup-key` (api key); Codex: `work-key`.
fn push_credentials(server: &Server) {
    Credentials {
        access: ACCESS,
        refresh: REFRESH,
        claude_key: CLAUDE_KEY,
        codex_key: CODEX_KEY,
    }
    .push(server)
}
const DB_URL: &str = "postgres://app:session-db-pw-8c2e@db:5432/app";

/// `amika sandbox agent-send SANDBOX ARGS... -o json`, which must succeed.
fn reply(server: &Server, sandbox: &str, args: &[&str]) -> Value {
    let out = server
        .amika()
        .args(["sandbox", "agent-send", sandbox])
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "agent-send {args:?}: not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && answer["is_error"] == false,
        "agent-send {args:?}: {answer:#}"
    );
    answer
}

/// An API call that must answer `status`.
fn expect(server: &Server, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
    let (got, answer) = api(server, method, path, body);
    assert_eq!(got, status, "{method} {path}: {answer:#}");
    answer
}

/// The field a 400 names, and its message.
fn bad_field(answer: &Value) -> (String, String) {
    (
        answer["details"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        str_of(answer, "message").to_string(),
    )
}

/// Wait until a job is done or failed; its last state.
fn finished_job(server: &Server, sandbox: &str, job: &str) -> Value {
    let path = format!("/sandboxes/{sandbox}/agent-send-jobs/{job}");
    let mut last = Value::Null;
    wait_until("the job to finish", Duration::from_secs(60), || {
        last = expect(server, "GET", &path, None, 200);
        last["state"] == "done" || last["state"] == "failed"
    });
    last
}

#[test]
fn sessions_are_created_listed_fetched_and_updated_on_the_public_wire() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(&server, "ses-box", &["--no-agent-credential", "codex"]);
    let sandbox_id = str_of(
        &expect(&server, "GET", "/sandboxes/ses-box", None, 200),
        "id",
    )
    .to_string();
    let me = expect(&server, "GET", "/me", None, 200);

    // None yet: latest is a 404, the list is empty.
    let none = expect(
        &server,
        "GET",
        "/sandboxes/ses-box/sessions/latest",
        None,
        404,
    );
    assert!(str_of(&none, "message").contains("session"), "{none}");
    let list = expect(&server, "GET", "/sandboxes/ses-box/sessions", None, 200);
    assert_eq!(list["sessions"], json!([]));

    let metadata = json!({"ticket": "ENG-1 ✓", "labels": ["a", 2], "nested": {"x": 1}});
    let created = expect(
        &server,
        "POST",
        "/sandboxes/ses-box/sessions",
        Some(json!({"agent_name": "claude", "metadata": metadata})),
        201,
    );
    let sid = str_of(&created, "id").to_string();
    assert!(sid.starts_with("ses"), "{created}");
    assert_eq!(
        (
            &created["sandbox_id"],
            &created["org_id"],
            &created["agent_name"],
            &created["status"],
            &created["ended_at"],
            &created["metadata"],
            &created["server_metadata"],
        ),
        (
            &json!(sandbox_id),
            &me["org_id"],
            &json!("claude"),
            &json!("idle"),
            &Value::Null,
            &metadata,
            &json!({"credential": "personal-oauth"}),
        )
    );
    for key in ["started_at", "created_at", "updated_at"] {
        assert!(created[key].is_string(), "{key}: {created}");
    }

    let list = expect(&server, "GET", "/sandboxes/ses-box/sessions", None, 200);
    assert_eq!(list["sessions"], json!([created.clone()]));
    assert_eq!(
        expect(
            &server,
            "GET",
            "/sandboxes/ses-box/sessions/latest",
            None,
            200
        ),
        created
    );
    expect(
        &server,
        "GET",
        "/sandboxes/ses-box/sessions/latest?agent=codex",
        None,
        404,
    );
    let got = expect(
        &server,
        "GET",
        &format!("/sandboxes/ses-box/sessions/{sid}"),
        None,
        200,
    );
    assert_eq!(got["transcript"], json!([]));
    assert_eq!(got["metadata"], metadata);

    // The first send to the created session starts the agent's conversation in it.
    let first = reply(&server, "ses-box", &["--session-id", &sid, "hello there"]);
    assert_eq!(
        (&first["session_id"], &first["is_new_session"]),
        (&json!(sid), &json!(true))
    );
    let got = expect(
        &server,
        "GET",
        &format!("/sandboxes/ses-box/sessions/{sid}"),
        None,
        200,
    );
    assert_eq!(got["status"], "idle");
    assert_eq!(got["transcript"][0]["message"], "hello there");
    assert_eq!(
        got["metadata"], metadata,
        "a send leaves the client's metadata alone"
    );

    // PATCH: a merge patch of the metadata, and a status that ends the session.
    let path = format!("/sandboxes/ses-box/sessions/{sid}");
    let patched = expect(
        &server,
        "PATCH",
        &path,
        Some(
            json!({"status": "completed", "metadata": {"ticket": null, "nested": {"y": 2}, "owner": "alice"}}),
        ),
        200,
    );
    assert_eq!(patched["status"], "completed");
    assert!(patched["ended_at"].is_string(), "{patched}");
    assert_eq!(
        patched["metadata"],
        json!({"labels": ["a", 2], "nested": {"x": 1, "y": 2}, "owner": "alice"})
    );
    assert_eq!(
        patched["server_metadata"],
        json!({"credential": "personal-oauth"})
    );
    let got = expect(&server, "GET", &path, None, 200);
    assert_eq!(
        (&got["status"], &got["metadata"], &got["ended_at"]),
        (
            &patched["status"],
            &patched["metadata"],
            &patched["ended_at"]
        )
    );
    for status in ["cancelled", "failed", "idle"] {
        let p = expect(
            &server,
            "PATCH",
            &path,
            Some(json!({"status": status})),
            200,
        );
        assert_eq!(p["status"], status);
        assert_eq!(p["ended_at"].is_null(), status == "idle", "{p}");
        assert_eq!(
            p["metadata"], patched["metadata"],
            "status alone keeps the metadata"
        );
    }

    // A send records the session's status: failed after a crash, idle after a success, and
    // running while a send is in flight (which a status PATCH then waits for: 409).
    let (_, crash) = api(
        &server,
        "POST",
        "/sandboxes/ses-box/agent-send",
        Some(json!({"message": "simulate-crash", "session_id": sid})),
    );
    assert_eq!(crash["is_error"], true, "{crash}");
    assert_eq!(expect(&server, "GET", &path, None, 200)["status"], "failed");
    reply(&server, "ses-box", &["--session-id", &sid, "better now"]);
    assert_eq!(expect(&server, "GET", &path, None, 200)["status"], "idle");
    let job = expect(
        &server,
        "POST",
        "/sandboxes/ses-box/agent-send-jobs",
        Some(json!({"message": "simulate-sleep", "session_id": sid, "timeout_secs": 4})),
        202,
    );
    let running = expect(&server, "GET", &path, None, 200);
    assert_eq!(running["status"], "running", "{running}");
    let only_running = expect(
        &server,
        "GET",
        "/sandboxes/ses-box/sessions?status=running",
        None,
        200,
    );
    assert_eq!(only_running["sessions"][0]["id"], json!(sid));
    let (status, busy) = api(
        &server,
        "PATCH",
        &path,
        Some(json!({"status": "completed"})),
    );
    assert_eq!(status, 409, "{busy}");
    assert!(
        str_of(&busy, "message").contains("is answering a message"),
        "{busy}"
    );
    // Metadata alone may change meanwhile, and survives the send's end.
    expect(
        &server,
        "PATCH",
        &path,
        Some(json!({"metadata": {"during": true}})),
        200,
    );
    let ended = finished_job(&server, "ses-box", str_of(&job, "job_id"));
    assert_eq!(ended["response"]["error_code"], "agent_timeout", "{ended}");
    let got = expect(&server, "GET", &path, None, 200);
    assert_eq!(got["status"], "failed");
    assert_eq!(got["metadata"]["during"], true, "{got}");

    // Latest: the most recently used; ?agent= picks an agent's.
    let codex_box_session = expect(
        &server,
        "POST",
        "/sandboxes/ses-box/sessions",
        Some(json!({"agent_name": "claude"})),
        201,
    );
    assert_eq!(codex_box_session["metadata"], json!({}));
    let latest = expect(
        &server,
        "GET",
        "/sandboxes/ses-box/sessions/latest?agent=claude",
        None,
        200,
    );
    assert_eq!(latest["id"], codex_box_session["id"]);
    let (status, answer) = api(
        &server,
        "GET",
        "/sandboxes/ses-box/sessions/latest?agent=gemini",
        None,
    );
    assert_eq!(
        (status, bad_field(&answer).0.as_str()),
        (400, "agent"),
        "{answer}"
    );
    expect(
        &server,
        "GET",
        "/sandboxes/ses-box/sessions/ses_nope",
        None,
        404,
    );
    expect(
        &server,
        "PATCH",
        "/sandboxes/ses-box/sessions/ses_nope",
        Some(json!({"status": "idle"})),
        404,
    );

    bad_session_requests(&server, &path);
    other_users_see_nothing(&server, &sandbox_id, &sid);
}

/// Bad input: a 400 naming the field and what is expected.
fn bad_session_requests(server: &Server, path: &str) {
    let big = json!({"k": "x".repeat(17 * 1024)});
    // Errors found while reading the body name the field in the message (`status: ...`,
    // "unknown field `colour`"); those of the checks after it also in `details`.
    let patches = [
        (json!({"status": "paused"}), "", "status: unknown agent session status \"paused\": expected idle, running, completed, failed or cancelled"),
        (json!({"status": "running"}), "status", "server's to set"),
        (json!({"metadata": "ticket=1"}), "metadata", "metadata must be a JSON object"),
        (json!({"metadata": [1, 2]}), "metadata", "not an array"),
        (json!({"metadata": big}), "metadata", "metadata is 17416 bytes as JSON, more than the 16384"),
        (json!({"colour": "red"}), "", "unknown field `colour`"),
    ];
    for (body, field, says) in patches {
        let (status, answer) = api(server, "PATCH", path, Some(body.clone()));
        let (got_field, message) = bad_field(&answer);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(message.contains(says), "{body}: {message}");
        assert_eq!(got_field, field, "{body}: {answer}");
    }
    let creates = [
        (json!({"agent_name": "github"}), 400, "not an agent"),
        (
            json!({"agent_name": "gemini"}),
            400,
            "claude, codex or github",
        ),
        (json!({}), 400, "agent_name"),
        (
            json!({"agent_name": "claude", "metadata": 5}),
            400,
            "not a number",
        ),
        (
            json!({"agent_name": "claude", "tags": []}),
            400,
            "unknown field `tags`",
        ),
        // The sandbox was made without a codex credential.
        (
            json!({"agent_name": "codex"}),
            422,
            "has no codex credential",
        ),
    ];
    for (body, status, says) in creates {
        let (got, answer) = api(
            server,
            "POST",
            "/sandboxes/ses-box/sessions",
            Some(body.clone()),
        );
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            str_of(&answer, "message").contains(says),
            "{body}: {answer}"
        );
    }
}

/// Another user of the same org: every session route of someone else's sandbox is a 404,
/// by name or by id, and nothing changes.
fn other_users_see_nothing(server: &Server, sandbox_id: &str, sid: &str) {
    let me = expect(server, "GET", "/me", None, 200);
    let bob = ok(server.amika().args([
        "admin",
        "user",
        "create",
        "bob",
        "--org",
        str_of(&me, "org_name"),
    ]))
    .trim()
    .to_string();
    let before = expect(
        server,
        "GET",
        &format!("/sandboxes/ses-box/sessions/{sid}"),
        None,
        200,
    );
    for sandbox in ["ses-box", sandbox_id] {
        let calls = [
            ("GET", format!("/sandboxes/{sandbox}/sessions"), None),
            ("GET", format!("/sandboxes/{sandbox}/sessions/latest"), None),
            ("GET", format!("/sandboxes/{sandbox}/sessions/{sid}"), None),
            (
                "PATCH",
                format!("/sandboxes/{sandbox}/sessions/{sid}"),
                Some(json!({"status": "cancelled", "metadata": {"bob": 1}})),
            ),
            (
                "POST",
                format!("/sandboxes/{sandbox}/sessions"),
                Some(json!({"agent_name": "claude"})),
            ),
        ];
        for (method, path, body) in calls {
            let (status, answer) = api_as(server, &bob, method, &path, body);
            assert_eq!(status, 404, "bob {method} {path}: {answer}");
        }
    }
    let after = expect(
        server,
        "GET",
        &format!("/sandboxes/ses-box/sessions/{sid}"),
        None,
        200,
    );
    assert_eq!(before, after);
}

#[test]
fn agent_send_continues_the_latest_session_of_its_agent_unless_told_otherwise() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(
        &server,
        "chat",
        &[
            "--agent-credential",
            "claude=personal-oauth",
            "--agent-credential",
            "codex=work-key",
        ],
    );

    let first = reply(&server, "chat", &["one"]);
    let a = str_of(&first, "session_id").to_string();
    assert_eq!(first["is_new_session"], true);
    // No session flag: the latest claude session, resumed with the agent's own id.
    let second = reply(&server, "chat", &["two"]);
    assert_eq!(
        (str_of(&second, "session_id"), &second["is_new_session"]),
        (a.as_str(), &json!(false))
    );
    assert!(
        str_of(&second, "response")
            .contains(&format!("resumed: {}", str_of(&first, "agent_session_id"))),
        "{second}"
    );
    // --new-session starts another, which is then the latest.
    let third = reply(&server, "chat", &["--new-session", "three"]);
    let b = str_of(&third, "session_id").to_string();
    assert_ne!(a, b);
    assert_eq!(third["is_new_session"], true);
    assert!(
        str_of(&third, "response").contains("resumed: none"),
        "{third}"
    );
    assert_eq!(str_of(&reply(&server, "chat", &["four"]), "session_id"), b);
    // A codex send does not continue a claude session; the next claude send still does.
    let codex = reply(&server, "chat", &["--agent", "codex", "five"]);
    assert!(
        codex["session_id"] != json!(a) && codex["session_id"] != json!(b),
        "{codex}"
    );
    assert_eq!(str_of(&reply(&server, "chat", &["six"]), "session_id"), b);
    // A session created through the API is the latest, so the next send goes to it.
    let c = expect(
        &server,
        "POST",
        "/sandboxes/chat/sessions",
        Some(json!({"agent_name": "claude"})),
        201,
    );
    let seventh = reply(&server, "chat", &["seven"]);
    assert_eq!(
        (&seventh["session_id"], &seventh["is_new_session"]),
        (&c["id"], &json!(true))
    );
    // --session-id picks an older one.
    assert_eq!(
        str_of(
            &reply(&server, "chat", &["--session-id", &a, "eight"]),
            "session_id"
        ),
        a
    );

    // `amika sandbox sessions`: newest first, as a table and as JSON.
    let table = ok(server.amika().args(["sandbox", "sessions", "chat"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{table}"
    );
    assert_eq!(lines.len(), 5, "a header and four sessions: {table}");
    assert!(
        lines[1].starts_with(&a)
            && lines[1].contains("claude")
            && lines[1].contains("idle")
            && lines[1].contains("personal-oauth"),
        "{table}"
    );
    let listed: Value = serde_json::from_str(&ok(server
        .amika()
        .args(["sandbox", "sessions", "chat", "-o", "json"])))
    .unwrap();
    let ids: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], a);
    assert_eq!(ids.len(), 4);
    assert!(ids.contains(&b.as_str()) && ids.contains(&str_of(&c, "id")));

    // `amika sandbox session`: the transcript, message then reply, oldest first.
    let shown = ok(server.amika().args(["sandbox", "session", "chat", &a]));
    assert!(
        shown.starts_with(&format!(
            "session {a}: claude, idle, credential personal-oauth\n"
        )),
        "{shown}"
    );
    let one = shown
        .find("> one\necho: one")
        .unwrap_or_else(|| panic!("{shown}"));
    let two = shown
        .find("> two\necho: two")
        .unwrap_or_else(|| panic!("{shown}"));
    let eight = shown
        .find("> eight\necho: eight")
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(one < two && two < eight, "{shown}");
    assert!(!shown.contains("three"), "another session's turn: {shown}");
    let json_shown: Value = serde_json::from_str(&ok(server
        .amika()
        .args(["sandbox", "session", "chat", &a, "-o", "json"])))
    .unwrap();
    assert_eq!(json_shown["transcript"].as_array().unwrap().len(), 3);
    let err = fails(
        server
            .amika()
            .args(["sandbox", "session", "chat", "ses_nope"]),
    );
    assert!(
        err.contains("ses_nope") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn workdir_picks_where_the_agent_runs_and_no_wait_returns_a_job() {
    let server = Server::start();
    push_credentials(&server);
    let _sb = sandbox(&server, "wd", &[]);
    ok(server.amika().args([
        "sandbox",
        "exec",
        "wd",
        "--",
        "mkdir",
        "-p",
        "/home/amika/workspace/app/src",
        "/tmp/elsewhere",
    ]));

    let cwd_of = |answer: &Value| {
        str_of(answer, "response")
            .lines()
            .find_map(|l| l.strip_prefix("cwd: "))
            .unwrap_or_else(|| panic!("no cwd line: {answer}"))
            .to_string()
    };
    assert_eq!(
        cwd_of(&reply(&server, "wd", &["where?"])),
        "/home/amika/workspace"
    );
    assert_eq!(
        cwd_of(&reply(&server, "wd", &["--workdir", "app/src", "where?"])),
        "/home/amika/workspace/app/src"
    );
    assert_eq!(
        cwd_of(&reply(
            &server,
            "wd",
            &["--workdir", "/tmp/elsewhere", "where?"]
        )),
        "/tmp/elsewhere"
    );

    // A directory that does not exist: the agent does not run, and the answer says which.
    let out = server
        .amika()
        .args([
            "sandbox",
            "agent-send",
            "wd",
            "--workdir",
            "no/such/dir",
            "where?",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("/home/amika/workspace/no/such/dir"),
        "{stderr}"
    );
    // Refused before anything runs: ~ (never expanded) and an empty directory.
    let err =
        fails(
            server
                .amika()
                .args(["sandbox", "agent-send", "wd", "--workdir", "~/app", "m"]),
        );
    assert!(err.contains("--workdir \"~/app\" starts with ~"), "{err}");
    for bad in [json!(""), json!("~/app"), json!("a\u{0}b")] {
        let (status, answer) = api(
            &server,
            "POST",
            "/sandboxes/wd/agent-send",
            Some(json!({"message": "m", "workdir": bad})),
        );
        assert_eq!(
            (status, bad_field(&answer).0.as_str()),
            (400, "workdir"),
            "{bad}: {answer}"
        );
        assert!(
            bad_field(&answer).1.contains("relative to the workspace"),
            "{answer}"
        );
    }

    // --no-wait: the job id on stdout at once; the job later completes in the latest session.
    let out = ok(server.amika().args([
        "sandbox",
        "agent-send",
        "wd",
        "--no-wait",
        "--workdir",
        "app",
        "in the background",
    ]));
    let job_id = out.trim();
    assert!(job_id.starts_with("job") && !job_id.contains('\n'), "{out}");
    let job = finished_job(&server, "wd", job_id);
    assert_eq!(job["state"], "done", "{job}");
    assert!(
        str_of(&job, "result_text").starts_with("echo: in the background\n"),
        "{job}"
    );
    assert!(
        str_of(&job, "result_text").contains("cwd: /home/amika/workspace/app\n")
            || str_of(&job, "result_text").ends_with("cwd: /home/amika/workspace/app"),
        "{job}"
    );
    let latest = expect(&server, "GET", "/sandboxes/wd/sessions/latest", None, 200);
    assert_eq!(latest["id"], job["session_id"]);
    let json_job: Value = serde_json::from_str(&ok(server.amika().args([
        "sandbox",
        "agent-send",
        "wd",
        "--no-wait",
        "-o",
        "json",
        "again",
    ])))
    .unwrap();
    assert_eq!(json_job["state"], "pending", "{json_job}");
    assert_eq!(
        finished_job(&server, "wd", str_of(&json_job, "job_id"))["state"],
        "done"
    );
}

#[test]
fn no_injected_value_appears_in_a_transcript_or_a_sessions_metadata_sqlite() {
    redaction_story(&Server::start());
}

/// The same on PostgreSQL (skipped without one: run under `scripts/with-postgres.sh`).
#[test]
fn no_injected_value_appears_in_a_transcript_or_a_sessions_metadata_postgres() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("amika_e2e_sessions") else {
        return;
    };
    redaction_story(&Server::start_with(Some(db.url().to_string()), &[]));
}

fn redaction_story(server: &Server) {
    push_credentials(server);
    ok(server
        .amika()
        .args(["secret", "push", &format!("DATABASE_URL={DB_URL}"), "--yes"]));
    let _sb = sandbox(
        server,
        "leaky",
        &[
            "--agent-credential",
            "claude=backup-key",
            "--secret",
            "env:DATABASE_URL",
        ],
    );
    let raw = [CLAUDE_KEY, DB_URL];

    let created = expect(
        server,
        "POST",
        "/sandboxes/leaky/sessions",
        Some(
            json!({"agent_name": "claude", "metadata": {"db": DB_URL, "list": [format!("key {CLAUDE_KEY}")], DB_URL: 1}}),
        ),
        201,
    );
    let sid = str_of(&created, "id").to_string();
    let path = format!("/sandboxes/leaky/sessions/{sid}");
    expect(
        server,
        "PATCH",
        &path,
        Some(json!({"metadata": {"later": {"deep": CLAUDE_KEY}}})),
        200,
    );
    // The stand-in prints its raw key; the message carries the database URL.
    reply(
        server,
        "leaky",
        &[
            "--session-id",
            &sid,
            &format!("echo-credential, then connect to {DB_URL}"),
        ],
    );
    let job = expect(
        server,
        "POST",
        "/sandboxes/leaky/agent-send-jobs",
        Some(json!({"message": format!("echo-credential {CLAUDE_KEY}"), "session_id": sid})),
        202,
    );
    finished_job(server, "leaky", str_of(&job, "job_id"));

    let got = expect(server, "GET", &path, None, 200);
    assert_eq!(got["metadata"]["db"], "[REDACTED:DATABASE_URL]", "{got}");
    assert_eq!(
        got["metadata"]["later"]["deep"], "[REDACTED:backup-key]",
        "{got}"
    );
    assert_eq!(
        got["metadata"]["[REDACTED:DATABASE_URL]"], 1,
        "keys are redacted too: {got}"
    );
    let transcript = got["transcript"].to_string();
    assert!(
        transcript.contains("[REDACTED:backup-key]")
            && transcript.contains("[REDACTED:DATABASE_URL]"),
        "{transcript}"
    );
    let texts = [
        got.to_string(),
        expect(server, "GET", "/sandboxes/leaky/sessions", None, 200).to_string(),
        expect(server, "GET", "/sandboxes/leaky/sessions/latest", None, 200).to_string(),
        ok(server.amika().args(["sandbox", "session", "leaky", &sid])),
        ok(server
            .amika()
            .args(["sandbox", "sessions", "leaky", "-o", "json"])),
        server.log_text(),
    ];
    for text in &texts {
        for value in raw {
            assert!(!text.contains(value), "{value} leaked: {text}");
        }
    }
    for value in raw {
        assert!(
            files_containing(&server.data_dir, value.as_bytes()).is_empty(),
            "{value} on disk"
        );
    }
}

/// `git -C dir ARGS` with a fixed identity and no user config; must succeed.
fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn in_a_sandbox_made_from_a_repository_the_agent_runs_in_the_repository() {
    let server = Server::start();
    push_credentials(&server);
    // A real repository (a bare one, cloned by the server through file://, as admins may).
    let proj = server.dir.path().join("proj");
    std::fs::create_dir_all(proj.join("src")).unwrap();
    std::fs::write(proj.join("src/lib.rs"), "// code\n").unwrap();
    git(&proj, &["init", "-q", "-b", "main"]);
    git(&proj, &["add", "."]);
    git(&proj, &["commit", "-q", "-m", "first"]);
    let bare = server.dir.path().join("webapp.git");
    git(
        server.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            proj.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let url = format!("file://{}", bare.display());
    let _sb = sandbox(&server, "repo-box", &["--git", &url]);

    let cwd_of = |answer: &Value| {
        str_of(answer, "response")
            .lines()
            .find_map(|l| l.strip_prefix("cwd: "))
            .unwrap_or_else(|| panic!("no cwd line: {answer}"))
            .to_string()
    };
    assert_eq!(
        cwd_of(&reply(&server, "repo-box", &["where?"])),
        "/home/amika/workspace/webapp"
    );
    assert_eq!(
        cwd_of(&reply(&server, "repo-box", &["--workdir", "src", "where?"])),
        "/home/amika/workspace/webapp/src"
    );
    assert_eq!(
        cwd_of(&reply(
            &server,
            "repo-box",
            &["--workdir", "/home/amika", "where?"]
        )),
        "/home/amika"
    );
}
