//! The sequence of DESIGN §1 through the real `amika` binary and a real server with real
//! bubblewrap sandboxes: what lands inside, what a skipped kind gets, what never leaks, and
//! that failed creates leave nothing behind.

mod common;

use std::time::Duration;

use common::{
    claude_oauth_doc, exec_sh, fails, files_containing, ok, ok_json, sha256, wait_until, Server,
};
use serde_json::Value;

const DB_URL: &str = "postgres://app:db-pw-5d1e9a@db:5432/app";
const CLAUDE_KEY: &str = "sk-ant-api03-E2EKEY-7c41b2";
const ACCESS: &str = "sk-ant-oat01-E2EACCESS-33aa91";
const REFRESH: &str = "sk-ant-ort01-E2EREFRESH-0c7e1d";
const CODEX_KEY: &str = "sk-proj-E2ECODEX-91f0aa";

fn oauth_doc() -> String {
    claude_oauth_doc(ACCESS, REFRESH)
}

/// Push the values of DESIGN §1 through the CLI.
fn push_vault(server: &Server) {
    let dir = server.dir.path();
    std::fs::write(
        dir.join("vals.env"),
        format!("DATABASE_URL={DB_URL}\nmy-claude-key={CLAUDE_KEY}\n"),
    )
    .unwrap();
    ok(server
        .amika()
        .args(["secret", "push", "--from-file"])
        .arg(dir.join("vals.env"))
        .arg("--yes"));
    std::fs::write(dir.join("creds.json"), oauth_doc()).unwrap();
    ok(server
        .amika()
        .args([
            "secret",
            "claude",
            "push",
            "--name",
            "personal-oauth",
            "--type",
            "oauth",
            "--from-file",
        ])
        .arg(dir.join("creds.json"))
        .args(["--default", "--yes"]));
    std::fs::write(dir.join("codex.key"), CODEX_KEY).unwrap();
    ok(server
        .amika()
        .args([
            "secret",
            "codex",
            "push",
            "--name",
            "work-key",
            "--type",
            "api_key",
            "--from-file",
        ])
        .arg(dir.join("codex.key"))
        .arg("--yes"));
}

fn resolution(sb: &Value) -> Vec<(String, String, String, String, String)> {
    sb["resolved_agent_credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("kind"), s("outcome"), s("name"), s("source"), s("reason"))
        })
        .collect()
}

fn all_cmdlines() -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            all.extend(c);
            all.push(b'\n');
        }
    }
    all
}

#[test]
fn design_sequence_injects_exactly_what_was_resolved() {
    let server = Server::start();
    push_vault(&server);

    let out = server
        .amika()
        .args([
            "sandbox",
            "create",
            "--name",
            "dev-box",
            "--secret",
            "env:ANTHROPIC_API_KEY=my-claude-key",
            "--secret",
            "env:DATABASE_URL",
        ])
        .args([
            "--agent-credential",
            "claude=personal-oauth",
            "--agent-credential-type",
            "codex=api-key",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"Using claude credential "personal-oauth" (oauth, source=request:name)"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"Using codex credential "work-key" (api_key, source=request:type)"#),
        "{stderr}"
    );

    // Inside: the env vars, and the credential files (0600, owned by amika) with the right bytes.
    let env = exec_sh(&server, "dev-box", "env");
    assert!(
        env.contains("ANTHROPIC_API_KEY=[REDACTED:my-claude-key]"),
        "{env}"
    );
    assert!(
        env.contains("DATABASE_URL=[REDACTED:DATABASE_URL]"),
        "{env}"
    );
    assert!(env.contains("OPENAI_API_KEY=[REDACTED:work-key]"), "{env}");
    // Compare by hash inside the sandbox, since relayed output is redacted.
    let inside = exec_sh(
        &server,
        "dev-box",
        r#"printf %s "$ANTHROPIC_API_KEY" | sha256sum; printf %s "$DATABASE_URL" | sha256sum; printf %s "$OPENAI_API_KEY" | sha256sum; sha256sum < ~/.claude/.credentials.json; sha256sum < ~/.codex/auth.json; stat -c '%a %U %n' ~/.claude/.credentials.json ~/.codex/auth.json; id -un; pwd"#,
    );
    let lines: Vec<&str> = inside.lines().collect();
    assert_eq!(&lines[0][..64], sha256(CLAUDE_KEY));
    assert_eq!(&lines[1][..64], sha256(DB_URL));
    assert_eq!(&lines[2][..64], sha256(CODEX_KEY));
    assert_eq!(
        &lines[3][..64],
        sha256(oauth_doc()),
        "claude oauth file holds the stored JSON verbatim"
    );
    assert_eq!(
        &lines[4][..64],
        sha256(format!(r#"{{"OPENAI_API_KEY":"{CODEX_KEY}"}}"#))
    );
    assert_eq!(lines[5], "600 amika /home/amika/.claude/.credentials.json");
    assert_eq!(lines[6], "600 amika /home/amika/.codex/auth.json");
    assert_eq!(lines[7], "amika");
    assert_eq!(lines[8], "/home/amika/workspace");

    // A value split by the command across writes is still redacted.
    let split = exec_sh(
        &server,
        "dev-box",
        r#"v="$OPENAI_API_KEY"; printf %s "${v%????????}"; sleep 0.2; printf '%s\n' "${v#${v%????????}}""#,
    );
    assert_eq!(split.trim(), "[REDACTED:work-key]");

    // get -o json: the resolution and secret names, stored and returned.
    let sb = ok_json(
        server
            .amika()
            .args(["sandbox", "get", "dev-box", "-o", "json"]),
    );
    assert_eq!(sb["state"], "running");
    assert_eq!(
        sb["secret_names"],
        serde_json::json!(["DATABASE_URL", "my-claude-key"])
    );
    assert_eq!(
        resolution(&sb),
        vec![
            (
                "claude".into(),
                "resolved".into(),
                "personal-oauth".into(),
                "request:name".into(),
                "".into()
            ),
            (
                "codex".into(),
                "resolved".into(),
                "work-key".into(),
                "request:type".into(),
                "".into()
            ),
        ]
    );
    let list = ok_json(server.amika().args(["sandbox", "list", "-o", "json"]));
    assert_eq!(resolution(&list[0]), resolution(&sb));

    // No value on any command line, in the data dir (sandbox homes included) or in the log.
    let cmdlines = all_cmdlines();
    for v in [DB_URL, CLAUDE_KEY, ACCESS, REFRESH, CODEX_KEY] {
        assert!(
            !common::contains(&cmdlines, v.as_bytes()),
            "{v} is on a command line"
        );
        let hits = files_containing(&server.data_dir, v.as_bytes());
        assert!(hits.is_empty(), "{v} on the host disk: {hits:?}");
        assert!(!server.log_text().contains(v), "{v} in the server log");
    }

    // Exit codes pass through; the audit names what went in.
    let code = server
        .amika()
        .args(["sandbox", "exec", "dev-box", "--", "sh", "-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(code.code(), Some(7));
    let audit = ok_json(
        server
            .amika()
            .args(["audit", "-o", "json", "--limit", "50"]),
    );
    let created = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "sandbox.created")
        .expect("sandbox.created event");
    let detail = created["detail"].to_string();
    assert!(
        detail.contains("personal-oauth")
            && detail.contains("work-key")
            && detail.contains("DATABASE_URL")
            && detail.contains("\"version\":1"),
        "{detail}"
    );

    // Delete kills everything and removes its files (the answer comes once nothing runs in
    // it; the kernel and the file removal finish right after, in the background).
    let id = sb["id"].as_str().unwrap().to_string();
    ok(server
        .amika()
        .args(["sandbox", "delete", "dev-box", "--yes"]));
    wait_until(
        "the deleted sandbox's files to go",
        Duration::from_secs(20),
        || !server.data_dir.join("sandboxes").join(&id).exists(),
    );
    wait_until(
        "every process of the deleted sandbox to end",
        Duration::from_secs(20),
        || !String::from_utf8_lossy(&all_cmdlines()).contains(&id),
    );
    assert!(fails(server.amika().args(["sandbox", "get", "dev-box"])).contains("not found"));
}

#[test]
fn documented_example_default_oauth_and_skipped_codex() {
    let server = Server::start();
    push_vault(&server);
    let out = server
        .amika()
        .args([
            "sandbox",
            "create",
            "--name",
            "dev-box",
            "--no-agent-credential",
            "codex",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"Using claude credential "personal-oauth" (oauth, source=user_default)"#),
        "{stderr}"
    );
    assert!(
        stderr.contains("Skipped codex credential (no-agent-credential flag)"),
        "{stderr}"
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = vec![
        (
            "claude".to_string(),
            "resolved".to_string(),
            "personal-oauth".to_string(),
            "user_default".to_string(),
            "".to_string(),
        ),
        (
            "codex".to_string(),
            "skipped".to_string(),
            "".to_string(),
            "no-credential".to_string(),
            "no-agent-credential flag".to_string(),
        ),
    ];
    assert_eq!(resolution(&created), expected);
    assert_eq!(
        resolution(&ok_json(
            server
                .amika()
                .args(["sandbox", "get", "dev-box", "-o", "json"])
        )),
        expected
    );

    // The skipped kind got nothing: no env var, no file.
    let inside = exec_sh(&server, "dev-box", "echo \"openai=${OPENAI_API_KEY:-unset}\"; ls -A ~/.codex 2>/dev/null | wc -l; test -s ~/.claude/.credentials.json && echo claude-file");
    assert_eq!(inside, "openai=unset\n0\nclaude-file\n");
    ok(server
        .amika()
        .args(["sandbox", "delete", "dev-box", "--yes"]));
}

#[test]
fn failed_creates_leave_nothing_and_say_what_to_fix() {
    let server = Server::start();
    push_vault(&server);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--secret", "env:X=missing-secret"],
            "secret \"missing-secret\" not found",
        ),
        (
            &["--agent-credential", "codex=nope"],
            "no credential named \"nope\"",
        ),
        (
            &[
                "--agent-credential",
                "claude=personal-oauth",
                "--agent-credential-type",
                "claude=api-key",
            ],
            "type",
        ),
        (&["--agent-credential-type", "codex=oauth"], "codex"),
    ];
    for (args, needle) in cases {
        let err = fails(
            server
                .amika()
                .args(["sandbox", "create", "--name", "broken"])
                .args(*args),
        );
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }
    ok(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "taken",
        "--no-agent-credential",
        "claude",
        "--no-agent-credential",
        "codex",
    ]));
    let err = fails(
        server
            .amika()
            .args(["sandbox", "create", "--name", "taken"]),
    );
    assert!(err.contains("already exists"), "{err}");
    let list = ok_json(server.amika().args(["sandbox", "list", "-o", "json"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let dirs = common::sandbox_dirs(&server.data_dir);
    assert_eq!(dirs.len(), 1, "only the one sandbox has files: {dirs:?}");
    ok(server.amika().args(["sandbox", "delete", "taken", "--yes"]));
}

#[test]
fn closing_the_exec_connection_kills_a_silent_command() {
    use std::io::{Read, Write};
    let server = Server::start();
    ok(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "quiet",
        "--no-agent-credential",
        "claude",
        "--no-agent-credential",
        "codex",
    ]));
    let addr = server.url.trim_start_matches("http://").to_string();
    let body = r#"{"command":["sleep","4242"]}"#;
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /api/v0beta1/sandboxes/quiet/exec HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.admin_key,
        body.len()
    )
    .unwrap();
    // Wait for the response head: the command is running and has printed nothing.
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let running = || String::from_utf8_lossy(&all_cmdlines()).contains("sleep\u{0}4242");
    wait_until(
        "the command runs while the client listens",
        Duration::from_secs(5),
        running,
    );
    drop(s);
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !running()
    });
    assert!(gone, "a command that prints nothing outlived its client");
    ok(server.amika().args(["sandbox", "delete", "quiet", "--yes"]));
}
