//! `amika snapshot` and `amika sandbox create --snapshot` through the real binary against a
//! real server and real bwrap sandboxes: the capture-and-fork flow of the README, a refused
//! scrub naming the file (never the value), and the flags' malformed forms.

mod common;

use common::{exec_sh, fails, ok, ok_json, Server};

const TOKEN: &str = "sk-live-CLI-SNAPSHOT-0123456789abcdef";

fn sandbox(server: &Server, name: &str) {
    ok(server.amika().args([
        "sandbox",
        "create",
        "--name",
        name,
        "--no-git",
        "--network",
        "none",
        "--secret",
        "env:TOKEN",
    ]));
}

#[test]
fn capture_and_fork_through_the_cli_and_a_refused_scrub_names_the_file() {
    let server = Server::start();
    ok(server
        .amika()
        .args(["secret", "push", &format!("TOKEN={TOKEN}"), "--yes"]));
    sandbox(&server, "src");
    exec_sh(
        &server,
        "src",
        "mkdir -p ~/workspace/app && echo warmed > ~/workspace/app/cache.txt",
    );

    // Without a terminal, --mode and --name are required; a bad mode says what is expected.
    let err = fails(
        server
            .amika()
            .args(["snapshot", "create", "--sandbox", "src"]),
    );
    assert!(err.contains("--mode and --name required"), "{err}");
    let err = fails(server.amika().args([
        "snapshot",
        "create",
        "--sandbox",
        "src",
        "--name",
        "base",
        "--mode",
        "partial",
    ]));
    assert!(err.contains("expected scrub_and_delete or full"), "{err}");
    let err = fails(server.amika().args([
        "snapshot",
        "create",
        "--sandbox",
        "src",
        "--name",
        "base",
        "--mode",
        "full",
        "--scope",
        "team",
    ]));
    assert!(
        err.contains("--scope") && err.contains("user or org"),
        "{err}"
    );
    let err = fails(server.amika().args([
        "snapshot",
        "create",
        "--sandbox",
        "src",
        "--name",
        "base",
        "--mode",
        "full",
        "--scope",
        "org",
        "--no-interactive",
    ]));
    assert!(
        err.contains("org-scope snapshot is taken with mode scrub_and_delete"),
        "{err}"
    );
    let err = fails(server.amika().args([
        "snapshot",
        "create",
        "--sandbox",
        "nope",
        "--name",
        "base",
        "--mode",
        "full",
        "--no-interactive",
    ]));
    assert!(err.contains("sandbox \"nope\" not found"), "{err}");

    let snap = ok_json(server.amika().args([
        "snapshot",
        "create",
        "--sandbox",
        "src",
        "--name",
        "base",
        "--mode",
        "scrub_and_delete",
        "--scope",
        "org",
        "--no-interactive",
        "-o",
        "json",
    ]));
    assert_eq!(snap["state"], "active", "{snap}");
    assert_eq!(snap["scope"], "org", "{snap}");
    let list = ok_json(server.amika().args(["snapshot", "list", "-o", "json"]));
    assert_eq!(list["items"][0]["snapshot"], "base");
    let text = ok(server.amika().args(["snapshot", "list"]));
    assert!(text.contains("SIZE") && text.contains("KiB"), "{text}");
    assert!(text.contains("SCOPE") && text.contains(" org "), "{text}");

    ok(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "fork",
        "--snapshot",
        "base",
        "--network",
        "none",
        "--secret",
        "env:TOKEN",
    ]));
    assert_eq!(
        exec_sh(&server, "fork", "cat ~/workspace/app/cache.txt"),
        "warmed\n"
    );
    let fork = ok_json(
        server
            .amika()
            .args(["sandbox", "get", "fork", "-o", "json"]),
    );
    assert_eq!(fork["snapshot"], "base");
    let err = fails(server.amika().args([
        "sandbox",
        "create",
        "--snapshot",
        "base",
        "--git",
        "https://example.com/r.git",
    ]));
    assert!(err.contains("--git"), "{err}");

    // The agent wrote the value down: refused, naming the file and the secret.
    exec_sh(
        &server,
        "fork",
        "echo \"$TOKEN\" > ~/workspace/app/notes.txt",
    );
    let err = fails(server.amika().args([
        "snapshot",
        "create",
        "--sandbox",
        "fork",
        "--name",
        "leaky",
        "--mode",
        "scrub_and_delete",
        "--no-interactive",
    ]));
    assert!(err.contains("~/workspace/app/notes.txt (TOKEN)"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    assert!(err.contains("--mode full"), "{err}");

    let err = fails(server.amika().args(["snapshot", "delete", "base"]));
    assert!(err.contains("pass --yes"), "{err}");
    ok(server
        .amika()
        .args(["snapshot", "delete", "base", "leaky", "--yes"]));
    let list = ok_json(server.amika().args(["snapshot", "list", "-o", "json"]));
    assert_eq!(list["items"], serde_json::json!([]));
    ok(server.amika().args(["sandbox", "delete", "fork", "--yes"]));
}
