//! A distinctive value pushed through the real CLI is found nowhere — not in the SQLite file,
//! the PostgreSQL dump, the server's debug log, the data dir, or any API response — except in
//! the answer of the audited reveal.

mod common;

use amika_testkit::postgres::pg_dump;
use common::{contains, files_containing, http, ok, ok_json, Server};

const SECRET_V1: &str = "leak-canary-v1-7f3a9c21e8";
const SECRET_V2: &str = "leak-canary-v2-b40d55aa19";
const ACCESS: &str = "sk-ant-oat01-LEAKCANARYACCESS0001";
const REFRESH: &str = "sk-ant-ort01-LEAKCANARYREFRESH002";
const CODEX: &str = "sk-proj-LEAKCANARYCODEX000000003";

fn values() -> [&'static str; 5] {
    [SECRET_V1, SECRET_V2, ACCESS, REFRESH, CODEX]
}

fn story(server: &Server) {
    let dir = server.dir.path();
    std::fs::write(
        dir.join("push.env"),
        format!("# a comment\nLEAK_CANARY={SECRET_V1}\n"),
    )
    .unwrap();
    ok(server
        .amika()
        .args(["secret", "push", "--from-file"])
        .arg(dir.join("push.env"))
        .arg("--yes"));
    ok(server
        .amika()
        .args(["secret", "push", "--from-env", "LEAK_CANARY", "--yes"])
        .env("LEAK_CANARY", SECRET_V2));
    let oauth = amika_testkit::ClaudeOauth::new(ACCESS, REFRESH).to_json();
    std::fs::write(dir.join("creds.json"), &oauth).unwrap();
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
    let mut codex = server.amika();
    codex
        .args([
            "secret", "codex", "push", "--name", "work-key", "--type", "api-key", "--value", "-",
            "--yes",
        ])
        .stdin(std::process::Stdio::piped());
    let mut child = codex
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), CODEX.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait_with_output().unwrap().status.success());

    // Every read answer, through the CLI and on the wire, is value-free.
    let mut answers = Vec::new();
    for args in [
        vec!["secret", "list", "-o", "json"],
        vec!["secret", "list"],
        vec!["secret", "claude", "list", "-o", "json"],
        vec!["secret", "codex", "list"],
        vec!["audit", "-o", "json"],
        vec!["auth", "status", "-o", "json"],
    ] {
        answers.push(ok(server.amika().args(&args)));
    }
    for path in [
        "/api/v0beta1/secrets",
        "/api/v0beta1/secrets/claude",
        "/api/v0beta1/secrets/codex",
        "/api/v0beta1/audit-events?limit=1000",
        "/api/v0beta1/api-keys",
        "/api/v0beta1/sandboxes",
        "/openapi.json",
    ] {
        let (status, body) = http(server, "GET", path, Some(&server.admin_key), None);
        assert_eq!(status, 200, "{path}: {body}");
        answers.push(body);
    }
    // A failed create that names the secret does not echo any value either.
    let (status, body) = http(
        server,
        "POST",
        "/api/v0beta1/sandboxes",
        Some(&server.admin_key),
        Some(
            r#"{"name":"x","secret_env_vars":{"A":"LEAK_CANARY"},"agent_credentials":[{"kind":"claude","name":"personal-oauth","type":"api_key"}]}"#,
        ),
    );
    assert_eq!(status, 422, "{body}");
    answers.push(body);
    for a in &answers {
        for v in values() {
            assert!(!a.contains(v), "an API answer shows a value: {a}");
        }
    }
    // Only reveal answers with the value (the current version), and it is audited.
    let revealed = ok_json(
        server
            .amika()
            .args(["secret", "reveal", "LEAK_CANARY", "-o", "json"]),
    );
    assert!(revealed.to_string().contains(SECRET_V2), "{revealed}");
    let (_, body) = http(
        server,
        "POST",
        "/api/v0beta1/secrets/claude/personal-oauth/reveal",
        Some(&server.admin_key),
        None,
    );
    assert!(body.contains(ACCESS), "{body}");
    let audit = ok_json(server.amika().args(["audit", "-o", "json"]));
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "secret.created",
        "secret.updated",
        "credential.created",
        "secret.revealed",
        "credential.revealed",
    ] {
        assert!(actions.contains(&want), "audit lacks {want}: {actions:?}");
    }
}

fn assert_nowhere_on_disk_or_in_log(server: &Server) {
    for v in values() {
        let hits = files_containing(&server.data_dir, v.as_bytes());
        assert!(hits.is_empty(), "{v} found in {hits:?}");
        assert!(
            !server.log_text().contains(v),
            "{v} found in the server log"
        );
    }
    assert!(
        server.log_text().contains("secret.created"),
        "the log is the debug log we meant to scan"
    );
}

#[test]
fn values_leak_nowhere_on_sqlite() {
    let server = Server::start();
    story(&server);
    assert!(server.data_dir.join("amika.db").exists());
    assert_nowhere_on_disk_or_in_log(&server);
}

#[test]
fn values_leak_nowhere_on_postgres() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("amika_e2e") else {
        return;
    };
    let url = db.url().to_string();
    let server = Server::start_with(Some(url.clone()), &[]);
    story(&server);
    assert_nowhere_on_disk_or_in_log(&server);
    let dump = pg_dump(&url);
    assert!(
        contains(&dump, b"LEAK_CANARY"),
        "the dump holds the secret's row"
    );
    for v in values() {
        assert!(
            !contains(&dump, v.as_bytes()),
            "{v} found in the PostgreSQL dump"
        );
    }
}
