//! `amika server --config FILE`: the policies it sets take effect, and a bad file stops the
//! server at start with a message naming the file and the problem.

mod common;

use assert_cmd::cargo::CommandCargoExt;
use common::{fails, ok, ok_json, Server};

#[test]
fn config_file_policies_apply_and_bad_files_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.json");
    std::fs::write(
        &cfg,
        r#"{"allow_reveal": false, "default_pids": 64, "agent_permissions": {"claude": "plan"}}"#,
    )
    .unwrap();
    let server = Server::start_with(None, &["--config", cfg.to_str().unwrap()]);
    ok(server
        .amika()
        .args(["secret", "push", "K=config-file-value", "--yes"]));
    let err = fails(server.amika().args(["secret", "reveal", "K"]));
    assert!(err.contains("switched off"), "{err}");
    ok(server
        .amika()
        .args(["sandbox", "create", "--name", "limited"]));
    let pids = ok(server
        .amika()
        .args(["sandbox", "get", "limited", "-o", "json"]));
    assert!(
        pids.contains("\"pids\": 64") || pids.contains("\"pids\":64"),
        "{pids}"
    );
    ok(server
        .amika()
        .args(["sandbox", "delete", "limited", "--yes"]));
    // The agents' permission policies: the configured one, and the default of the other.
    let presets = ok_json(server.amika().args(["preset", "list", "-o", "json"]));
    assert_eq!(
        presets["agent_permissions"],
        serde_json::json!([
            {"agent": "claude", "mode": "plan", "args": ["--permission-mode", "plan"]},
            {"agent": "codex", "mode": "danger-full-access", "args": ["--sandbox", "danger-full-access"]}
        ])
    );
    let text = ok(server.amika().args(["preset", "list"]));
    assert!(
        text.contains("claude runs with permission mode plan (--permission-mode plan)"),
        "{text}"
    );

    for (file, expected) in [
        (r#"{"allow_reveal": "no"}"#, "expected a boolean"),
        (
            r#"{"agent_permissions": {"codex": "yolo"}}"#,
            "agent_permissions.codex: \"yolo\" is not a codex permission mode: expected one of read-only, workspace-write, danger-full-access",
        ),
        (
            r#"{"agent_permissions": {"claude": 1}}"#,
            "invalid type: integer `1`, expected a string",
        ),
    ] {
        std::fs::write(&cfg, file).unwrap();
        let out = std::process::Command::cargo_bin("amika")
            .unwrap()
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data2"))
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("server.json") && stderr.contains(expected),
            "{file}: {stderr}"
        );
    }
}

/// A push is one request, all or nothing: over the server's `max_body_bytes` it stores none of
/// its secrets and says which limit to raise; under it, all of them.
#[test]
fn a_push_over_max_body_bytes_stores_nothing_and_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.json");
    std::fs::write(&cfg, r#"{"max_body_bytes": 16384}"#).unwrap();
    let server = Server::start_with(None, &["--config", cfg.to_str().unwrap()]);
    let env_file = dir.path().join("big.env");
    let lines: String = (0..1000)
        .map(|i| format!("BIG_{i:04}=value-{i:04}-0123456789\n"))
        .collect();
    std::fs::write(&env_file, lines).unwrap();
    let err = fails(
        server
            .amika()
            .args(["secret", "push", "--yes", "--from-file"])
            .arg(&env_file),
    );
    assert!(err.contains("max_body_bytes"), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert!(!err.contains("value-0"), "{err}");
    let listed = ok_json(server.amika().args(["secret", "list", "-o", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    // 200 of them fit: all stored, in one request.
    let lines: String = (0..200)
        .map(|i| format!("FIT_{i:03}=value-{i:03}\n"))
        .collect();
    std::fs::write(&env_file, lines).unwrap();
    let out = ok(server
        .amika()
        .args(["secret", "push", "--yes", "--from-file"])
        .arg(&env_file));
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("Created FIT_"))
            .count(),
        200
    );
    let listed = ok_json(server.amika().args(["secret", "list", "-o", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 200);
}
