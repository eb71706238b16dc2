//! `amika preset` and `amika sandbox create --preset coder` against a real server started with
//! `--install-preset coder`, whose presets dir is the one the tests share
//! (`$AMIKA_TEST_PRESETS_DIR`, else `~/.cache/amika-test-presets`: installed once per machine
//! from npm, see crates/server/tests/preset_coder.rs). Nothing is skipped: without npm or the
//! registry the server does not start and these tests fail.

mod common;

use std::path::PathBuf;

use common::{fails, ok, ok_json, Server};
use serde_json::Value;

const CLAUDE_KEY: &str = "sk-ant-api03-CLI-PRESET-KEY-9d8c7b";

fn shared_presets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AMIKA_TEST_PRESETS_DIR").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/amika-test-presets")
}

fn pinned() -> Value {
    serde_json::from_str(include_str!("../../../presets/coder.json")).unwrap()
}

/// A server with coder installed (`--install-preset`) and the default preset set in its
/// config file (kept in the returned dir for as long as the server runs).
fn server() -> (Server, tempfile::TempDir) {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("server.json");
    let body = serde_json::json!({
        "presets_dir": shared_presets_dir(),
        "default_preset": "coder",
        "warm_sandboxes": 0,
    });
    std::fs::write(&config, body.to_string()).unwrap();
    let server = Server::start_with(
        None,
        &[
            "--config",
            config.to_str().unwrap(),
            "--install-preset",
            "coder",
        ],
    );
    (server, config_dir)
}

#[test]
fn preset_commands_list_install_and_remove_and_a_coder_sandbox_has_the_real_claude() {
    let (server, _config) = server();
    let list = ok_json(server.amika().args(["preset", "list", "-o", "json"]));
    let coder = &list["presets"][0];
    let id = coder["current"].as_str().unwrap().to_string();
    assert_eq!(coder["name"], "coder");
    assert_eq!(coder["installed"], true);
    assert_eq!(coder["default"], true);
    assert_eq!(coder["packages"], pinned()["packages"]);
    let text = ok(server.amika().args(["preset", "list"]));
    assert!(text.contains("coder") && text.contains(&id), "{text}");

    // Installed already: the last step at once, then the summary.
    for verb in ["install", "update"] {
        let out = server
            .amika()
            .args(["preset", verb, "coder"])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout.starts_with(&format!("Installed coder {id} (@anthropic-ai/claude-code@")),
            "{stdout}"
        );
        assert!(
            stderr.contains(&format!(
                "[####################] 4/4 coder {id} is already installed"
            )),
            "{stderr}"
        );
    }
    let err = fails(server.amika().args(["preset", "install", "gamer"]));
    assert!(
        err.contains("preset \"gamer\" (this server has coder) not found"),
        "{err}"
    );

    let key_file = server.dir.path().join("claude.key");
    std::fs::write(&key_file, CLAUDE_KEY).unwrap();
    ok(server
        .amika()
        .args(["secret", "claude", "push", "--name", "claude-key"])
        .args(["--type", "api_key", "--yes", "--from-file"])
        .arg(&key_file));
    let created = ok_json(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "cli-coder",
        "--no-git",
        "--network",
        "none",
        "--preset",
        "coder",
        "--agent-credential",
        "claude=claude-key",
        "--no-agent-credential",
        "codex",
        "-o",
        "json",
    ]));
    assert_eq!(created["preset"], format!("coder@{id}"));
    let status: Value = serde_json::from_str(&ok(server.amika().args([
        "sandbox",
        "exec",
        "cli-coder",
        "--",
        "claude",
        "auth",
        "status",
    ])))
    .unwrap();
    assert_eq!(status["loggedIn"], true, "{status}");
    assert_eq!(status["apiKeySource"], "ANTHROPIC_API_KEY", "{status}");
    let codex = ok(server.amika().args([
        "sandbox",
        "exec",
        "cli-coder",
        "--",
        "sh",
        "-c",
        "codex login status 2>&1; echo rc=$?",
    ]));
    assert!(
        codex.contains("Not logged in") && codex.ends_with("rc=1\n"),
        "{codex}"
    );

    // The server's default preset: a create without --preset gets it.
    let by_default = ok_json(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "by-default",
        "--no-git",
        "--network",
        "none",
        "-o",
        "json",
    ]));
    assert_eq!(by_default["preset"], format!("coder@{id}"));

    // Removal keeps the version the sandboxes use (and says so); only admins may remove.
    let member_key = ok(server
        .amika()
        .args(["admin", "user", "create", "dev", "--org", "default"]))
    .trim()
    .to_string();
    let err = fails(
        server
            .amika_as(&member_key)
            .args(["preset", "remove", "coder"]),
    );
    assert!(
        err.contains("only admins may install or remove presets"),
        "{err}"
    );
    let out = ok(server.amika().args(["preset", "remove", "coder"]));
    assert!(
        out.starts_with(&format!("Kept coder {id}: used by "))
            && out.ends_with(" (delete them first)\n"),
        "{out}"
    );
    let mut names: Vec<&str> = users(&out);
    names.sort();
    assert_eq!(names, ["by-default", "cli-coder"]);
    for name in ["cli-coder", "by-default"] {
        ok(server.amika().args(["sandbox", "delete", name, "--yes"]));
    }
    // The server's debug log names the preset it installed at start, never the key.
    let log = server.log_text();
    assert!(log.contains("preset installed"), "{log}");
    assert!(!log.contains(CLAUDE_KEY));
}

/// The sandbox names of a `Kept ...: used by A, B (...)` line.
fn users(out: &str) -> Vec<&str> {
    out.split("used by ")
        .nth(1)
        .and_then(|s| s.split(" (").next())
        .map(|s| s.split(", ").collect())
        .unwrap_or_default()
}
