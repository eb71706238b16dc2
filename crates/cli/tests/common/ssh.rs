//! What the SSH tests share: a server with its SSH endpoint on, a running sandbox with a secret
//! injected, a fresh token, and OpenSSH clients that use nothing of the machine's (keys, agent,
//! known hosts) and never prompt.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::agents::{api, str_of};
use super::{ok, Server};

pub const SECRET: &str = "ssh-e2e-secret-value-5f2c91";

pub fn ssh_server() -> Server {
    Server::start_with(None, &["--ssh-listen", "127.0.0.1:0"])
}

/// A running sandbox `name` with `SSH_SECRET` injected.
pub fn sandbox(server: &Server, name: &str) {
    let env = server.dir.path().join("ssh.env");
    std::fs::write(&env, format!("ssh-secret={SECRET}\n")).unwrap();
    ok(server
        .amika()
        .args(["secret", "push", "--from-file"])
        .arg(&env)
        .arg("--yes"));
    ok(server.amika().args([
        "sandbox",
        "create",
        "--name",
        name,
        "--no-git",
        "--secret",
        "env:SSH_SECRET=ssh-secret",
    ]));
}

/// A fresh token: (the `ssh` arguments of its destination, the whole answer).
pub fn access(server: &Server, name: &str) -> (Vec<String>, Value) {
    let (status, body) = api(server, "POST", &format!("/sandboxes/{name}/ssh"), None);
    assert_eq!(status, 200, "{body}");
    let dest = str_of(&body, "ssh_destination")
        .split_whitespace()
        .map(String::from)
        .collect();
    (dest, body)
}

/// An OpenSSH client with no keys, agent or known hosts of the machine's, that never prompts.
pub fn client(server: &Server, program: &str) -> Command {
    let home = server.dir.path().join("ssh-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(program);
    cmd.env("HOME", &home)
        .env_remove("SSH_AUTH_SOCK")
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
        .args(["-o", "ConnectTimeout=10"])
        .stdin(Stdio::null());
    cmd
}

pub fn ssh(server: &Server, dest: &[String], command: &str) -> Command {
    let mut cmd = client(server, "ssh");
    cmd.args(dest).arg("--").arg(command);
    cmd
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the OpenSSH client runs")
}

/// `ssh` with the same user but another authentication method, and its output.
pub fn refused(server: &Server, dest: &[String], extra: &[&str]) -> String {
    let out = run(client(server, "ssh")
        .args(extra)
        .args(dest)
        .args(["--", "true"]));
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    text(&out.stderr)
}
