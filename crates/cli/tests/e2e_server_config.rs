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
