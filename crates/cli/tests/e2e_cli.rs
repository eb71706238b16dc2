//! Every command of `amika` through the real binary against a real server: `up` and `server`,
//! `auth` (login, status, api-key), `admin`, `secret` (push, list, delete, reveal, claude/codex,
//! extract), `audit` and `sandbox` (list, get, stop, start, exec, delete, and create's flag
//! errors), in text and `-o json` output, with the confirmations they ask for (also on a real
//! pseudo-terminal, through util-linux `script`) and the errors bad input gets.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use common::{exec_sh, fails, http, ok, ok_json, sha256, wait_until, Server};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` with `input` on its stdin.
fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A command that must fail with exit code 1 and one `error: ...` line on stderr containing
/// every needle; returns that line.
fn fails_with(cmd: &mut Command, needles: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{cmd:?} should fail with exit code 1:\nstdout: {}\nstderr: {stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.starts_with("error: ") && stderr.lines().count() == 1,
        "{cmd:?}: not one error line: {stderr:?}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{cmd:?}: {needle:?} not in {stderr}"
        );
    }
    stderr
}

/// A failing `-o json` command prints nothing on stdout but (at most) one JSON document.
fn fails_json(cmd: &mut Command, needles: &[&str]) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should fail");
    assert!(
        out.stdout.is_empty() || serde_json::from_slice::<Value>(&out.stdout).is_ok(),
        "{cmd:?}: stdout is not JSON: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{cmd:?}: {needle:?} not in {stderr}"
        );
    }
    stderr
}

/// DESIGN §9's mask, as a table cell shows it (stars capped at 24, then the length).
fn masked(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n <= 12 {
        return "*".repeat(n);
    }
    // Control characters among the shown ones become spaces (previews stay on one line).
    let shown = |c: &char| if c.is_control() { ' ' } else { *c };
    let head: String = chars[..4].iter().map(shown).collect();
    let tail: String = chars[n - 4..].iter().map(shown).collect();
    if n - 8 > 24 {
        format!("{head}{}{tail} ({n} chars)", "*".repeat(24))
    } else {
        format!("{head}{}{tail}", "*".repeat(n - 8))
    }
}

fn assert_absent(haystack: &str, values: &[&str], what: &str) {
    for v in values {
        assert!(!haystack.contains(v), "{v:?} shows in {what}:\n{haystack}");
    }
}

/// The secret's value through `secret reveal -o json` (exact, no added newline).
fn reveal(server: &Server, name: &str) -> String {
    let doc = ok_json(
        server
            .amika()
            .args(["secret", "reveal", name, "-o", "json"]),
    );
    assert_eq!(doc["name"], name);
    doc["value"].as_str().unwrap().to_string()
}

fn secret_names(server: &Server) -> Vec<(String, String, u64)> {
    let list = ok_json(server.amika().args(["secret", "list", "-o", "json"]));
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s.get("value").is_none(), "a list shows a value: {s}");
            (
                s["name"].as_str().unwrap().to_string(),
                s["scope"].as_str().unwrap().to_string(),
                s["version"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn credential_list(server: &Server, kind: &str) -> Vec<Value> {
    let list = ok_json(server.amika().args(["secret", kind, "list", "-o", "json"]));
    let list = list.as_array().unwrap().clone();
    for c in &list {
        assert!(c.get("value").is_none(), "a list shows a value: {c}");
    }
    list
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A command on a real pseudo-terminal (util-linux `script`), for what only a terminal gets:
/// the `[y/N]` confirmation and the hidden prompts. The transcript is what the terminal showed
/// (stdout and stderr together, and the echo of what was typed unless echo was off).
struct Tty {
    child: Child,
    rx: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Tty {
    /// Runs `cmd` (program, arguments and environment) under `script`.
    fn spawn(cmd: &Command) -> Tty {
        let mut line = shell_quote(cmd.get_program().to_str().unwrap());
        for arg in cmd.get_args() {
            line.push(' ');
            line.push_str(&shell_quote(arg.to_str().unwrap()));
        }
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]);
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => script.env(key, v),
                None => script.env_remove(key),
            };
        }
        let mut child = script
            .env("SHELL", "/bin/sh")
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("util-linux `script` runs");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Tty {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits until the terminal has shown `needle`.
    fn expect(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !text(&self.seen).contains(needle) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!(
                    "{needle:?} never showed; the terminal showed:\n{}",
                    text(&self.seen)
                ),
            }
        }
    }

    /// Waits until the program on the terminal has switched echo off (a hidden prompt is
    /// printed just before that, so typing on seeing the prompt alone would race it).
    fn expect_echo_off(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(tty) = self.terminal() {
                let out = Command::new("stty")
                    .arg("-a")
                    .arg("-F")
                    .arg(&tty)
                    .output()
                    .unwrap();
                if text(&out.stdout).split_whitespace().any(|w| w == "-echo") {
                    return;
                }
            }
            assert!(std::time::Instant::now() < deadline, "echo never went off");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The terminal (`/dev/pts/N`) that the processes under `script` read from.
    fn terminal(&self) -> Option<PathBuf> {
        let mut parents = Vec::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after the last `)`.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
        let mut family = vec![self.child.id()];
        let mut i = 0;
        while i < family.len() {
            let parent = family[i];
            family.extend(
                parents
                    .iter()
                    .filter(|(_, pp)| *pp == parent)
                    .map(|(p, _)| *p),
            );
            i += 1;
        }
        family[1..].iter().find_map(|pid| {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/0")).ok()?;
            target.starts_with("/dev/pts/").then_some(target)
        })
    }

    /// Types a line.
    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the command to end: its exit code and the whole transcript.
    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        while let Ok(chunk) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.seen.extend(chunk);
        }
        (status.code().unwrap_or(-1), text(&self.seen))
    }
}

/// Deletes a sandbox when the test ends, passed or not.
struct SandboxGuard<'a> {
    server: &'a Server,
    name: &'static str,
}

impl Drop for SandboxGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .server
            .amika()
            .args(["sandbox", "delete", self.name, "--force"])
            .output();
    }
}

// ---------------------------------------------------------------------------------------------
// amika up / amika server

/// A home, data and config dir of their own, as on a fresh machine.
struct FreshMachine {
    dir: tempfile::TempDir,
}

impl FreshMachine {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["home", "data", "config"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        FreshMachine { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `amika` with only this machine's dirs: no AMIKA_* login or server settings.
    fn amika(&self) -> Command {
        let mut cmd = Command::cargo_bin("amika").unwrap();
        for var in [
            "AMIKA_API_URL",
            "AMIKA_API_KEY",
            "AMIKA_CONFIG",
            "AMIKA_DATABASE_URL",
            "AMIKA_MASTER_KEY",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .stdin(Stdio::null());
        cmd
    }

    fn config_file(&self) -> PathBuf {
        self.path("config/amika/config.json")
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data/amika")
    }
}

/// A running `amika up` (or `amika server`), killed when dropped.
struct Running {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl Running {
    fn start(mut cmd: Command, stderr: PathBuf, ready_prefix: &str) -> Running {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(rest) = line.trim().strip_prefix(ready_prefix) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "did not start: {line:?}\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        let url = rest.split_whitespace().next().unwrap().to_string();
        Running { child, url, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn amika_up(machine: &FreshMachine, log: &str) -> Running {
    let mut cmd = machine.amika();
    cmd.args(["up", "--listen", "127.0.0.1:0"]);
    Running::start(cmd, machine.path(log), "amika is running at ")
}

#[test]
fn up_logs_the_cli_in_and_a_restart_on_the_same_dirs_keeps_login_and_data() {
    let machine = FreshMachine::new();
    let first = amika_up(&machine, "up-1.log");
    assert!(first.url.starts_with("http://127.0.0.1:"), "{}", first.url);
    assert!(
        first.stderr().contains("Created the first admin user"),
        "{}",
        first.stderr()
    );

    // The CLI config: 0600, the printed URL and the first admin's key.
    let config_path = machine.config_file();
    assert_eq!(mode(&config_path), 0o600);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(config["url"], first.url.as_str());
    let key = config["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("amk_"), "{key}");

    // The data dir: key file, database, admin key file, all where XDG_DATA_HOME says.
    let data = machine.data_dir();
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert!(data.join("amika.db").is_file());
    assert_eq!(mode(&data.join("admin-api-key")), 0o600);
    assert_eq!(
        std::fs::read_to_string(data.join("admin-api-key"))
            .unwrap()
            .trim(),
        key
    );

    // Logged in without any AMIKA_API_* variable.
    let status = ok_json(machine.amika().args(["auth", "status", "-o", "json"]));
    assert_eq!(status["user"], "admin");
    assert_eq!(status["is_admin"], true);
    assert_eq!(status["url"], first.url.as_str());
    assert_eq!(
        status["api_key_source"],
        config_path.display().to_string().as_str()
    );
    assert_ne!(status["api_key"], key.as_str(), "the key is shown masked");
    ok(machine.amika().args([
        "secret",
        "push",
        "UP_SECRET=kept-across-restarts-42",
        "--yes",
    ]));

    // Killed and started again on the same dirs: logged in again (new port), data intact.
    drop(first);
    let second = amika_up(&machine, "up-2.log");
    assert!(
        !second.stderr().contains("Created the first admin user"),
        "{}",
        second.stderr()
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(config["url"], second.url.as_str());
    assert_eq!(config["api_key"], key.as_str());
    assert_eq!(mode(&config_path), 0o600);
    let status = ok_json(machine.amika().args(["auth", "status", "-o", "json"]));
    assert_eq!(status["user"], "admin");
    assert_eq!(status["url"], second.url.as_str());
    let revealed = ok_json(
        machine
            .amika()
            .args(["secret", "reveal", "UP_SECRET", "-o", "json"]),
    );
    assert_eq!(revealed["value"], "kept-across-restarts-42");
}

#[test]
fn server_writes_the_admin_key_file_and_leaves_the_cli_config_alone() {
    let machine = FreshMachine::new();
    // An existing login elsewhere must survive untouched.
    let config_path = machine.config_file();
    std::fs::create_dir_all(config_path.parent().unwrap()).unwrap();
    let before = "{\n  \"url\": \"http://127.0.0.1:9\",\n  \"api_key\": \"amk_someone_else\"\n}\n";
    std::fs::write(&config_path, before).unwrap();
    let data = machine.path("server-data");
    let mut cmd = machine.amika();
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data);
    let server = Running::start(
        cmd,
        machine.path("server.log"),
        "amika server listening on ",
    );

    let key_file = data.join("admin-api-key");
    assert_eq!(mode(&key_file), 0o600);
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.starts_with("amk_"));
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), before);
    assert!(
        !machine.path("home/.config").exists(),
        "amika server created a config under HOME"
    );
    // The key in the file works.
    let status = ok_json(
        machine
            .amika()
            .env("AMIKA_API_URL", &server.url)
            .env("AMIKA_API_KEY", &key)
            .args(["auth", "status", "-o", "json"]),
    );
    assert_eq!(status["user"], "admin");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// auth, admin

/// The binary with no AMIKA_API_* variables: only the config file at `config` counts.
fn amika_with_config(server: &Server, config: &Path) -> Command {
    let mut cmd = server.amika();
    cmd.env_remove("AMIKA_API_URL")
        .env_remove("AMIKA_API_KEY")
        .env("AMIKA_CONFIG", config);
    cmd
}

#[test]
fn auth_login_status_env_overrides_and_api_keys() {
    let server = Server::start();
    let config = server.dir.path().join("login").join("config.json");
    let url = server.url.clone();
    let admin = server.admin_key.clone();

    // Not logged in yet.
    fails_with(
        amika_with_config(&server, &config).args(["auth", "status"]),
        &["not logged in", "amika auth login"],
    );

    // A good key is checked and saved 0600.
    let out = ok(amika_with_config(&server, &config).args([
        "auth",
        "login",
        "--url",
        &url,
        "--api-key",
        &admin,
    ]));
    assert!(
        out.contains(&format!("Logged in to {url} as admin")),
        "{out}"
    );
    assert!(!out.contains(&admin), "login prints the key: {out}");
    assert_eq!(mode(&config), 0o600);
    let saved = std::fs::read_to_string(&config).unwrap();
    let doc: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(doc, json!({"url": url, "api_key": admin}));

    // A bad key: a clear error, and the saved login is unchanged.
    fails_with(
        amika_with_config(&server, &config).args([
            "auth",
            "login",
            "--url",
            &url,
            "--api-key",
            "amk_not_a_real_key",
        ]),
        &["rejected this API key", "unauthorized"],
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), saved);
    // No key and no terminal: told how to pass one, nothing changes.
    fails_with(
        amika_with_config(&server, &config).args(["auth", "login", "--url", &url]),
        &["--api-key"],
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), saved);

    // status, text and JSON: the key only masked, where each setting came from.
    let status = ok(amika_with_config(&server, &config).args(["auth", "status"]));
    assert!(status.contains("User:     admin"), "{status}");
    assert!(
        status.contains(&format!("(from {})", config.display())),
        "{status}"
    );
    assert!(
        status.contains(&admin[..4]) && !status.contains(&admin),
        "{status}"
    );
    let status =
        ok_json(amika_with_config(&server, &config).args(["auth", "status", "-o", "json"]));
    assert_eq!(
        status["api_key_source"],
        config.display().to_string().as_str()
    );
    assert_eq!(status["url_source"], config.display().to_string().as_str());
    assert!(!status.to_string().contains(&admin), "{status}");
    assert_eq!(
        status["api_key"].as_str().unwrap().chars().count(),
        admin.chars().count()
    );

    // A second user, to tell logins apart.
    ok(server.amika().args(["admin", "org", "create", "login-org"]));
    let bob_key = ok(server
        .amika()
        .args(["admin", "user", "create", "bob", "--org", "login-org"]))
    .trim()
    .to_string();

    // AMIKA_API_KEY and AMIKA_API_URL override the file.
    let status = ok_json(
        amika_with_config(&server, &config)
            .env("AMIKA_API_KEY", &bob_key)
            .args(["auth", "status", "-o", "json"]),
    );
    assert_eq!(status["user"], "bob");
    assert_eq!(status["api_key_source"], "$AMIKA_API_KEY");
    assert!(!status.to_string().contains(&bob_key));
    let status = ok(amika_with_config(&server, &config)
        .env("AMIKA_API_KEY", &bob_key)
        .args(["auth", "status"]));
    assert!(status.contains("(from $AMIKA_API_KEY)") && !status.contains(&bob_key));
    let nowhere = "http://127.0.0.1:9";
    fails_with(
        amika_with_config(&server, &config)
            .env("AMIKA_API_URL", nowhere)
            .args(["auth", "status"]),
        &["cannot reach", nowhere],
    );

    // `--api-key -` reads stdin (surrounding whitespace dropped); -o json shows the login.
    let out = run_with_stdin(
        amika_with_config(&server, &config).args([
            "auth",
            "login",
            "--url",
            &url,
            "--api-key",
            "-",
            "-o",
            "json",
        ]),
        &format!("  {bob_key}  \n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let login: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(login["user"], "bob");
    assert_eq!(login["is_admin"], false);
    assert!(!login.to_string().contains(&bob_key));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(doc["api_key"], bob_key.as_str());

    // On a terminal the key is asked for without echo.
    let mut login = amika_with_config(&server, &config);
    login.args(["auth", "login", "--url", &url]);
    let mut tty = Tty::spawn(&login);
    tty.expect("API key: ");
    tty.expect_echo_off();
    tty.send(&admin);
    let (code, shown) = tty.finish();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("Logged in to"), "{shown}");
    assert!(!shown.contains(&admin), "the typed key was echoed: {shown}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(doc["api_key"], admin.as_str());

    // api-key create: printed once (alone on stdout), and it works.
    let out = server
        .amika()
        .args(["auth", "api-key", "create", "laptop"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let laptop = text(&out.stdout).trim().to_string();
    assert!(laptop.starts_with("amk_") && !laptop.contains(char::is_whitespace));
    assert!(
        text(&out.stderr).contains("shown only this once"),
        "{}",
        text(&out.stderr)
    );
    let me = ok_json(
        server
            .amika_as(&laptop)
            .args(["auth", "status", "-o", "json"]),
    );
    assert_eq!(me["user"], "admin");
    let created = ok_json(
        server
            .amika()
            .args(["auth", "api-key", "create", "ci", "-o", "json"]),
    );
    let ci_key = created["value"].as_str().unwrap().to_string();
    let ci_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "ci");
    assert!(ci_key.starts_with("amk_"));

    // list: names and obfuscated values, never a key.
    let list = ok(server.amika().args(["auth", "api-key", "list"]));
    assert!(list.contains("laptop") && list.contains("ci") && list.contains(&ci_id));
    assert_absent(&list, &[&laptop, &ci_key, &admin], "api-key list");
    let list = ok_json(
        server
            .amika()
            .args(["auth", "api-key", "list", "-o", "json"]),
    );
    let listed = list.to_string();
    assert_absent(&listed, &[&laptop, &ci_key, &admin], "api-key list -o json");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ci") && names.contains(&"laptop"), "{list}");

    // delete: asks first; with --yes the key stops working (401).
    fails_with(
        server.amika().args(["auth", "api-key", "delete", &ci_id]),
        &["refusing", "--yes"],
    );
    assert_eq!(
        http(&server, "GET", "/api/v0beta1/me", Some(&ci_key), None).0,
        200
    );
    let deleted = ok_json(
        server
            .amika()
            .args(["auth", "api-key", "delete", &ci_id, "--yes", "-o", "json"]),
    );
    assert_eq!(deleted, json!({"deleted": ci_id}));
    assert_eq!(
        http(&server, "GET", "/api/v0beta1/me", Some(&ci_key), None).0,
        401
    );
    fails_with(
        server.amika_as(&ci_key).args(["secret", "list"]),
        &["unauthorized"],
    );
    fails_with(
        server
            .amika()
            .args(["auth", "api-key", "delete", &ci_id, "--yes"]),
        &["not found"],
    );
}

#[test]
fn admin_creates_orgs_and_users_whose_first_key_works() {
    let server = Server::start();
    let out = ok(server.amika().args(["admin", "org", "create", "acme"]));
    assert!(out.starts_with("Created org acme (org_"), "{out}");
    let org = ok_json(
        server
            .amika()
            .args(["admin", "org", "create", "globex", "-o", "json"]),
    );
    assert_eq!(org["name"], "globex");
    let globex_id = org["id"].as_str().unwrap().to_string();
    // Orgs are tenants: an admin's list holds their own org only.
    let orgs = ok_json(server.amika().args(["admin", "org", "list", "-o", "json"]));
    assert_eq!(orgs.as_array().unwrap().len(), 1, "{orgs}");
    assert_eq!(orgs[0]["name"], "default");
    let table = ok(server.amika().args(["admin", "org", "list"]));
    assert!(
        table.contains("default") && !table.contains("acme"),
        "{table}"
    );
    fails_with(
        server.amika().args(["admin", "org", "create", "acme"]),
        &["acme", "already exists"],
    );

    // A user's first key is printed once, alone on stdout, and works.
    let out = server
        .amika()
        .args(["admin", "user", "create", "wile", "--org", "acme"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wile = text(&out.stdout).trim().to_string();
    assert!(wile.starts_with("amk_"), "{wile}");
    assert!(text(&out.stderr).contains("shown only this once"));
    let me = ok_json(
        server
            .amika_as(&wile)
            .args(["auth", "status", "-o", "json"]),
    );
    assert_eq!(me["user"], "wile");
    assert_eq!(me["org"], "acme");
    assert_eq!(me["is_admin"], false);

    // --admin, with the org given by id; -o json carries the key.
    let created = ok_json(server.amika().args([
        "admin", "user", "create", "hank", "--org", &globex_id, "--admin", "-o", "json",
    ]));
    assert_eq!(created["user"]["name"], "hank");
    assert_eq!(created["user"]["is_admin"], true);
    let hank = created["api_key"].as_str().unwrap().to_string();
    let me = ok_json(
        server
            .amika_as(&hank)
            .args(["auth", "status", "-o", "json"]),
    );
    assert_eq!(
        (me["user"].as_str(), me["is_admin"].as_bool()),
        (Some("hank"), Some(true))
    );
    // The org admin adds a user to their own org.
    let frank = ok(server
        .amika_as(&hank)
        .args(["admin", "user", "create", "frank", "--org", "globex"]))
    .trim()
    .to_string();
    let me = ok_json(
        server
            .amika_as(&frank)
            .args(["auth", "status", "-o", "json"]),
    );
    assert_eq!(me["org"], "globex");

    // A non-admin gets a clear forbidden error and changes nothing.
    fails_with(
        server
            .amika_as(&wile)
            .args(["admin", "org", "create", "evil"]),
        &["admin", "forbidden"],
    );
    fails_with(
        server.amika_as(&wile).args([
            "admin", "user", "create", "mallory", "--org", "acme", "--admin",
        ]),
        &["admin", "forbidden"],
    );
    fails_json(
        server
            .amika_as(&wile)
            .args(["admin", "org", "create", "evil", "-o", "json"]),
        &["forbidden"],
    );
    // (The refused creates made nothing: the name is still free.)
    ok(server.amika().args(["admin", "org", "create", "evil"]));
    let orgs = ok_json(
        server
            .amika_as(&hank)
            .args(["admin", "org", "list", "-o", "json"]),
    );
    assert_eq!(orgs[0]["name"], "globex");
    assert_eq!(orgs.as_array().unwrap().len(), 1, "{orgs}");

    // Bad input: an unknown org, an empty name.
    fails_with(
        server
            .amika()
            .args(["admin", "user", "create", "x", "--org", "no-such-org"]),
        &["\"no-such-org\"", "not found"],
    );
    fails_with(
        server.amika().args(["admin", "org", "create", ""]),
        &["org name", "empty"],
    );
}

// ---------------------------------------------------------------------------------------------
// secret push, list, delete, reveal

#[test]
fn secret_push_merges_sources_asks_first_and_stores_versions() {
    secret_push_story(&Server::start());
}

/// `secret push`, `list`, `reveal` and `delete`, on an empty server.
fn secret_push_story(server: &Server) {
    let dir = server.dir.path();
    let env_file = dir.join("app.env");
    std::fs::write(
        &env_file,
        concat!(
            "# a comment line\n",
            "   # an indented comment = not a secret\n",
            "\n",
            "  SPACED_KEY  =  value with spaces  \n",
            "QUOTED=\"double quoted\" 'single'\n",
            "HASH=abc # not a comment\n",
            "URL=postgres://u:p@h/db?x=1\n",
            "DUP=first-duplicate\n",
            "DUP=second-duplicate\n",
            "OVERRIDE_POS=file-value\n",
            "OVERRIDE_ENV=file-value\n",
            "\n",
        ),
    )
    .unwrap();
    let out = server
        .amika()
        .args(["secret", "push", "--from-file"])
        .arg(&env_file)
        .args([
            "OVERRIDE_POS=positional-value",
            "OVERRIDE_ENV=positional-value",
            "POS_ONLY=a=b=c",
            "--from-env",
            "OVERRIDE_ENV,ENV_ONLY",
            "--yes",
        ])
        .env("OVERRIDE_ENV", "env-value-for-override")
        .env("ENV_ONLY", "env-only-value-1234")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    // Values are taken verbatim; where other readers would differ, a warning names the line.
    for warning in [
        "app.env:5: the value of QUOTED is in quotes",
        "app.env:6: the value of HASH contains ' #'",
        "app.env:9: DUP is set on line 8 and again on line 9",
    ] {
        let line = stderr.lines().find(|l| l.contains(warning));
        assert!(
            line.is_some_and(|l| l.starts_with("warning: ")),
            "{warning}: {stderr}"
        );
    }
    let expected: Vec<(&str, &str)> = vec![
        ("DUP", "second-duplicate"),
        ("ENV_ONLY", "env-only-value-1234"),
        ("HASH", "abc # not a comment"),
        ("OVERRIDE_ENV", "env-value-for-override"),
        ("OVERRIDE_POS", "positional-value"),
        ("POS_ONLY", "a=b=c"),
        ("QUOTED", "\"double quoted\" 'single'"),
        ("SPACED_KEY", "  value with spaces  "),
        ("URL", "postgres://u:p@h/db?x=1"),
    ];
    let created: String = expected
        .iter()
        .map(|(k, _)| format!("Created {k}\n"))
        .collect();
    assert_eq!(stdout, created);
    // The preview is on stderr, every value masked.
    for (name, value) in &expected {
        let row = stderr
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no preview row for {name}: {stderr}"));
        assert!(row.contains(&masked(value)), "{row}");
        assert!(row.ends_with("Create"), "{row}");
    }
    let values: Vec<&str> = expected.iter().map(|(_, v)| *v).collect();
    assert_absent(
        &stderr,
        &values
            .iter()
            .copied()
            .filter(|v| v.len() > 5)
            .collect::<Vec<_>>(),
        "the push preview",
    );
    for (name, value) in &expected {
        assert_eq!(reveal(server, name), *value, "{name}");
    }
    assert!(secret_names(server)
        .iter()
        .all(|(_, scope, v)| scope == "user" && *v == 1));

    // Pushing an existing name stores a new version.
    let out = ok(server.amika().args([
        "secret",
        "push",
        "DUP=third-value",
        "NEW_ONE=new-one-value",
        "--yes",
    ]));
    assert_eq!(out, "Updated DUP\nCreated NEW_ONE\n");
    assert!(secret_names(server).contains(&("DUP".into(), "user".into(), 2)));
    assert_eq!(reveal(server, "DUP"), "third-value");

    // --scope org, -o json: the shape of what was done, nothing else on stdout.
    let pushed = ok_json(server.amika().args([
        "secret",
        "push",
        "--scope",
        "org",
        "DUP=org-dup-value",
        "ORG_ONLY=org-only-value",
        "--yes",
        "-o",
        "json",
    ]));
    let pushed = pushed.as_array().unwrap();
    assert_eq!(pushed.len(), 2);
    for (entry, name) in pushed.iter().zip(["DUP", "ORG_ONLY"]) {
        let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["action", "id", "name", "scope", "version"]);
        assert_eq!(entry["name"], name);
        assert_eq!(entry["action"], "created");
        assert_eq!(entry["scope"], "org");
        assert_eq!(entry["version"], 1);
        assert!(entry["id"].as_str().unwrap().starts_with("sec_"));
    }
    let names = secret_names(server);
    assert!(
        names.contains(&("DUP".into(), "org".into(), 1)),
        "{names:?}"
    );
    assert!(
        names.contains(&("DUP".into(), "user".into(), 2)),
        "{names:?}"
    );
    // The user's own secret wins the name.
    assert_eq!(reveal(server, "DUP"), "third-value");
    let again = ok_json(server.amika().args([
        "secret",
        "push",
        "--scope",
        "org",
        "ORG_ONLY=org-only-v2",
        "--yes",
        "-o",
        "json",
    ]));
    assert_eq!(again[0]["action"], "updated");
    assert_eq!(again[0]["version"], 2);

    let before = secret_names(server);
    // Without --yes and no terminal: refused before anything is stored.
    fails_with(
        server
            .amika()
            .args(["secret", "push", "NEVER=never-stored-value"]),
        &["refusing to push", "--yes"],
    );
    fails_json(
        server
            .amika()
            .args(["secret", "push", "NEVER=never-stored-value", "-o", "json"]),
        &["--yes"],
    );
    // A bad .env line: file and line named, nothing stored (not even the good line).
    let bad = dir.join("bad.env");
    std::fs::write(
        &bad,
        "GOOD_LINE=good-value\n# fine\nTHIS LINE HAS NO EQUALS\n",
    )
    .unwrap();
    fails_with(
        server
            .amika()
            .args(["secret", "push", "--yes", "--from-file"])
            .arg(&bad),
        &[&format!("{}:3", bad.display()), "expected KEY=VALUE"],
    );
    fails_with(
        server
            .amika()
            .args(["secret", "push", "--yes", "--from-file"])
            .arg(dir.join("missing.env")),
        &["--from-file", "missing.env"],
    );
    // A positional without `=`, an unset --from-env variable: named, nothing stored.
    fails_with(
        server
            .amika()
            .args(["secret", "push", "FINE=fine-value", "JUSTAKEY", "--yes"]),
        &["\"JUSTAKEY\"", "expected KEY=VALUE"],
    );
    fails_with(
        server
            .amika()
            .args([
                "secret",
                "push",
                "FINE=fine-value",
                "--from-env",
                "E2E_UNSET_VAR",
                "--yes",
            ])
            .env_remove("E2E_UNSET_VAR"),
        &["--from-env", "E2E_UNSET_VAR", "not set"],
    );
    fails_with(
        server.amika().args(["secret", "push", "--yes"]),
        &["nothing to push"],
    );
    assert_eq!(
        secret_names(server),
        before,
        "a refused push stored something"
    );

    // On a terminal: the masked preview, then [y/N]; "n" stores nothing, "y" pushes.
    let value = "typed-at-a-terminal-31337";
    let mut push = server.amika();
    push.args(["secret", "push", &format!("TTY_SECRET={value}")]);
    let mut tty = Tty::spawn(&push);
    tty.expect("[y/N]");
    tty.send("n");
    let (code, shown) = tty.finish();
    assert_ne!(code, 0, "{shown}");
    let preview = shown.find(&masked(value)).expect("masked preview shown");
    assert!(preview < shown.find("[y/N]").unwrap(), "{shown}");
    assert!(shown.contains("aborted: nothing was changed"), "{shown}");
    assert!(!shown.contains(value), "{shown}");
    assert_eq!(secret_names(server), before);
    let mut tty = Tty::spawn(&push);
    tty.expect("Push 1 secret to");
    tty.send("y");
    let (code, shown) = tty.finish();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("Created TTY_SECRET"), "{shown}");
    assert_eq!(reveal(server, "TTY_SECRET"), value);

    // list: names, scopes and versions, never a value.
    let list = ok(server.amika().args(["secret", "list"]));
    let header: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SCOPE",
            "VERSION",
            "CREATED",
            "UPDATED",
            "DESCRIPTION"
        ]
    );
    let dup_rows: Vec<Vec<&str>> = list
        .lines()
        .filter(|l| l.starts_with("DUP "))
        .map(|l| l.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(dup_rows.len(), 2, "{list}");
    assert!(dup_rows.contains(&vec!["DUP", "user", "2"]), "{list}");
    assert!(dup_rows.contains(&vec!["DUP", "org", "1"]), "{list}");
    let list_json = ok(server.amika().args(["secret", "list", "-o", "json"]));
    serde_json::from_str::<Value>(&list_json).unwrap();
    for shown in [&list, &list_json] {
        assert_absent(
            shown,
            &[
                "second-duplicate",
                "third-value",
                "env-only-value-1234",
                "abc # not a comment",
                "postgres://u:p@h/db",
                "org-only-v2",
                value,
            ],
            "secret list",
        );
    }

    // reveal, text: the value and a newline.
    assert_eq!(
        ok(server.amika().args(["secret", "reveal", "QUOTED"])),
        "\"double quoted\" 'single'\n"
    );

    // delete: asks first; then the secret is gone.
    fails_with(
        server.amika().args(["secret", "delete", "HASH"]),
        &["refusing", "--yes"],
    );
    assert_eq!(reveal(server, "HASH"), "abc # not a comment");
    assert_eq!(
        ok(server.amika().args(["secret", "delete", "HASH", "--yes"])),
        "Deleted secret HASH\n"
    );
    fails_with(
        server.amika().args(["secret", "reveal", "HASH"]),
        &["HASH", "not found"],
    );
    assert!(!secret_names(server).iter().any(|(n, _, _)| n == "HASH"));
    let deleted = ok_json(
        server
            .amika()
            .args(["secret", "delete", "URL", "--yes", "-o", "json"]),
    );
    assert_eq!(deleted, json!({"deleted": "URL"}));
    fails_json(
        server
            .amika()
            .args(["secret", "reveal", "URL", "-o", "json"]),
        &["not found"],
    );
    fails_with(
        server.amika().args(["secret", "delete", "URL", "--yes"]),
        &["not found"],
    );
}

/// A push whose later name the server refuses used to store the names before it and then fail.
#[test]
fn secret_push_with_an_invalid_name_stores_nothing() {
    let server = Server::start();
    let env_file = server.dir.path().join("shell.env");
    std::fs::write(
        &env_file,
        "AAA_FIRST=first-value\nexport ZZZ_LAST=last-value\n",
    )
    .unwrap();
    fails_with(
        server
            .amika()
            .args(["secret", "push", "--yes", "--from-file"])
            .arg(&env_file),
        &[
            "invalid secret name \"export ZZZ_LAST\"",
            "shell.env",
            "nothing was pushed",
        ],
    );
    fails_with(
        server
            .amika()
            .args(["secret", "push", "AAA_FIRST=x", "ZZ BAD=y", "--yes"]),
        &["\"ZZ BAD\"", "on the command line"],
    );
    assert_eq!(secret_names(&server), []);
}

/// Issue 18: a CLI killed 2 s into a 10,000-secret push once left 2,062 of them stored. The push
/// is now one request written in one transaction: killed at any point, it leaves none or all.
#[test]
fn a_push_killed_midway_leaves_none_or_all_of_its_secrets() {
    const COUNT: usize = 10_000;
    let server = Server::start();
    let env_file = server.dir.path().join("big.env");
    let lines: String = (0..COUNT)
        .map(|i| format!("KILLED_{i:05}=value-{i:05}-0123456789abcdef\n"))
        .collect();
    std::fs::write(&env_file, lines).unwrap();
    let mut child = server
        .amika()
        .args(["secret", "push", "--yes", "--from-file"])
        .arg(&env_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed while in flight: the server takes seconds to seal and write 10,000 secrets in a
    // debug build. Whenever the kill lands, the count below must be 0 or all.
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let stored = secret_names(&server).len();
    assert!(stored == 0 || stored == COUNT, "{stored} of {COUNT} stored");
    eprintln!("killed push: {stored} of {COUNT} stored");
}

// ---------------------------------------------------------------------------------------------
// secret claude|codex

const OAUTH_ACCESS: &str = "sk-ant-oat01-CLIE2E-ACCESS-4f1d2c";
const OAUTH_REFRESH: &str = "sk-ant-ort01-CLIE2E-REFRESH-9a8b7c";

fn claude_oauth_doc() -> String {
    common::claude_oauth_doc(OAUTH_ACCESS, OAUTH_REFRESH) + "\n"
}

#[test]
fn agent_credentials_push_list_update_and_delete() {
    agent_credentials_story(&Server::start());
}

/// `secret claude|codex push`, `list`, `reveal` and `delete`, on a server without credentials.
fn agent_credentials_story(server: &Server) {
    let dir = server.dir.path();
    let creds = dir.join("credentials.json");
    std::fs::write(&creds, claude_oauth_doc()).unwrap();

    // claude oauth from a file, as the default.
    let out = server
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
        .arg(&creds)
        .args(["--default", "--yes"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "Created claude credential \"personal-oauth\"\n");
    assert!(stderr.contains(&masked(&claude_oauth_doc())), "{stderr}");
    assert_absent(
        &stderr,
        &[OAUTH_ACCESS, OAUTH_REFRESH],
        "the credential preview",
    );

    // claude api_key with --value; codex api-key from stdin in org scope (-o json).
    let claude_key = "sk-ant-api03-CLIE2E-KEY-000111";
    ok(server.amika().args([
        "secret",
        "claude",
        "push",
        "--name",
        "claude-key",
        "--type",
        "api_key",
        "--value",
        claude_key,
        "--yes",
    ]));
    let codex_key = "sk-proj-CLIE2E-CODEX-222333";
    let out = run_with_stdin(
        server.amika().args([
            "secret", "codex", "push", "--name", "team-key", "--type", "api-key", "--value", "-",
            "--scope", "org", "--yes", "-o", "json",
        ]),
        &format!("{codex_key}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pushed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["kind"], "codex");
    assert_eq!(pushed["name"], "team-key");
    assert_eq!(pushed["type"], "api_key", "api-key is stored as api_key");
    assert_eq!(pushed["scope"], "org");
    assert_eq!(pushed["action"], "created");
    assert_eq!(pushed["version"], 1);
    assert_eq!(pushed["is_default"], false);
    assert!(!text(&out.stdout).contains(codex_key));
    let revealed = ok_json(
        server
            .amika()
            .args(["secret", "codex", "reveal", "team-key", "-o", "json"]),
    );
    assert_eq!(
        revealed["value"], codex_key,
        "the newline from stdin is dropped"
    );
    // codex oauth: the whole auth.json, verbatim.
    let codex_doc = r#"{"OPENAI_API_KEY":null,"tokens":{"id_token":"CLIE2E-ID","access_token":"CLIE2E-CODEX-ACCESS"}}"#;
    std::fs::write(dir.join("auth.json"), codex_doc).unwrap();
    ok(server
        .amika()
        .args([
            "secret",
            "codex",
            "push",
            "--name",
            "codex-login",
            "--type",
            "oauth",
            "--from-file",
        ])
        .arg(dir.join("auth.json"))
        .args(["--default", "--yes"]));
    let revealed = ok(server
        .amika()
        .args(["secret", "codex", "reveal", "codex-login"]));
    assert_eq!(revealed, format!("{codex_doc}\n"));
    let revealed = ok_json(server.amika().args([
        "secret",
        "claude",
        "reveal",
        "personal-oauth",
        "-o",
        "json",
    ]));
    assert_eq!(revealed["value"], claude_oauth_doc().as_str());

    // list: DEFAULT, and EXPIRES for claude oauth (expiresAt 4102444800000 ms = 2100-01-01).
    let list = ok(server.amika().args(["secret", "claude", "list"]));
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "TYPE", "SCOPE", "DEFAULT", "EXPIRES", "UPDATED"]
    );
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {list}"))
            .clone()
    };
    assert_eq!(
        row("personal-oauth")[..6],
        [
            "personal-oauth",
            "oauth",
            "user",
            "yes",
            "2100-01-01",
            "00:00:00"
        ]
    );
    assert_eq!(
        row("claude-key")[..5],
        ["claude-key", "api_key", "user", "no", "-"]
    );
    assert_absent(
        &list,
        &[OAUTH_ACCESS, OAUTH_REFRESH, claude_key],
        "claude list",
    );
    let claude = credential_list(server, "claude");
    assert_eq!(claude.len(), 2);
    let oauth = claude
        .iter()
        .find(|c| c["name"] == "personal-oauth")
        .unwrap();
    assert_eq!(oauth["expires_at"], "2100-01-01T00:00:00Z");
    assert_eq!(oauth["is_default"], true);
    assert_eq!(oauth["type"], "oauth");
    let codex_list = ok(server.amika().args(["secret", "codex", "list"]));
    assert!(codex_list.lines().any(|l| l
        .split_whitespace()
        .take(5)
        .eq(["team-key", "api_key", "org", "no", "-"])));
    assert!(codex_list.lines().any(|l| l.split_whitespace().take(4).eq([
        "codex-login",
        "oauth",
        "user",
        "yes"
    ])));
    let codex_json = ok(server
        .amika()
        .args(["secret", "codex", "list", "-o", "json"]));
    assert_absent(
        &codex_json,
        &[codex_key, "CLIE2E-ID", "CLIE2E-CODEX-ACCESS"],
        "codex list",
    );

    // Pushing an existing name stores a new version.
    let new_key = "sk-ant-api03-CLIE2E-ROTATED-444555";
    let out = ok(server.amika().args([
        "secret",
        "claude",
        "push",
        "--name",
        "claude-key",
        "--type",
        "api-key",
        "--value",
        new_key,
        "--yes",
    ]));
    assert_eq!(out, "Updated claude credential \"claude-key\"\n");
    let updated = ok_json(server.amika().args([
        "secret",
        "claude",
        "push",
        "--name",
        "claude-key",
        "--type",
        "api_key",
        "--value",
        new_key,
        "--yes",
        "-o",
        "json",
    ]));
    assert_eq!(updated["action"], "updated");
    assert_eq!(updated["version"], 3);
    let revealed =
        ok_json(
            server
                .amika()
                .args(["secret", "claude", "reveal", "claude-key", "-o", "json"]),
        );
    assert_eq!(revealed["value"], new_key);
    assert_eq!(credential_list(server, "claude").len(), 2);

    // Invalid OAuth JSON: the file is named, nothing is stored.
    let bad = dir.join("not-json.json");
    std::fs::write(&bad, "{\"claudeAiOauth\": {\"accessToken\": ").unwrap();
    fails_with(
        server
            .amika()
            .args([
                "secret",
                "claude",
                "push",
                "--name",
                "broken",
                "--type",
                "oauth",
                "--from-file",
            ])
            .arg(&bad)
            .arg("--yes"),
        &[&bad.display().to_string(), "is not valid JSON"],
    );
    let out = run_with_stdin(
        server.amika().args([
            "secret", "codex", "push", "--name", "broken", "--type", "oauth", "--value", "-",
            "--yes",
        ]),
        "sk-plain-key-not-json\n",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("stdin is not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("sk-plain-key-not-json"));
    // An unknown type lists the expected values.
    let err = fails(server.amika().args([
        "secret", "claude", "push", "--name", "broken", "--type", "password", "--value", "x",
        "--yes",
    ]));
    assert!(
        err.contains("unknown credential type \"password\"")
            && err.contains("oauth, api_key or api-key"),
        "{err}"
    );
    // No value and no terminal; --default with org scope; without --yes.
    fails_with(
        server.amika().args([
            "secret", "claude", "push", "--name", "broken", "--type", "api_key", "--yes",
        ]),
        &["no value given", "--value", "--from-file"],
    );
    fails_with(
        server.amika().args([
            "secret",
            "claude",
            "push",
            "--name",
            "broken",
            "--type",
            "api_key",
            "--value",
            "sk-x-123",
            "--scope",
            "org",
            "--default",
            "--yes",
        ]),
        &["--default", "user"],
    );
    fails_with(
        server.amika().args([
            "secret", "claude", "push", "--name", "broken", "--type", "api_key", "--value",
            "sk-x-123",
        ]),
        &["refusing to push", "--yes"],
    );
    assert!(credential_list(server, "claude")
        .iter()
        .all(|c| c["name"] != "broken"));
    assert!(credential_list(server, "codex")
        .iter()
        .all(|c| c["name"] != "broken"));

    // delete: asks first; then gone.
    fails_with(
        server
            .amika()
            .args(["secret", "codex", "delete", "team-key"]),
        &["refusing", "--yes"],
    );
    assert_eq!(credential_list(server, "codex").len(), 2);
    assert_eq!(
        ok(server
            .amika()
            .args(["secret", "codex", "delete", "team-key", "--yes"])),
        "Deleted codex credential \"team-key\"\n"
    );
    let deleted = ok_json(server.amika().args([
        "secret",
        "claude",
        "delete",
        "claude-key",
        "--yes",
        "-o",
        "json",
    ]));
    assert_eq!(deleted, json!({"kind": "claude", "deleted": "claude-key"}));
    let names: Vec<Value> = credential_list(server, "codex")
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("codex-login")]);
    assert_eq!(credential_list(server, "claude").len(), 1);
    fails_with(
        server
            .amika()
            .args(["secret", "claude", "reveal", "claude-key"]),
        &["not found"],
    );
}

#[test]
fn reveal_is_refused_when_the_server_switched_it_off() {
    let server = Server::start_with(None, &["--no-reveal"]);
    ok(server
        .amika()
        .args(["secret", "push", "HIDDEN=hidden-value-123456", "--yes"]));
    ok(server.amika().args([
        "secret",
        "codex",
        "push",
        "--name",
        "k",
        "--type",
        "api_key",
        "--value",
        "sk-hidden-key-123456",
        "--yes",
    ]));
    fails_with(
        server.amika().args(["secret", "reveal", "HIDDEN"]),
        &["reveal is switched off", "forbidden"],
    );
    fails_json(
        server
            .amika()
            .args(["secret", "codex", "reveal", "k", "-o", "json"]),
        &["reveal is switched off"],
    );
}

/// The secret and credential commands again with the server on PostgreSQL (skipped only with
/// `AMIKA_SKIP_POSTGRES=1`).
#[test]
fn secret_and_credential_commands_on_postgres() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("amika_e2e") else {
        return;
    };
    let url = db.url().to_string();
    let server = Server::start_with(Some(url), &[]);
    secret_push_story(&server);
    agent_credentials_story(&server);
}

// ---------------------------------------------------------------------------------------------
// secret extract

#[test]
fn extract_shows_local_logins_masked_and_pushes_them() {
    let server = Server::start();
    let home = server.dir.path().join("extract-home");
    let access = "sk-ant-oat01-EXTRACTE2E-ACCESS-77aa";
    let refresh = "sk-ant-ort01-EXTRACTE2E-REFRESH-88bb";
    let id_token = "EXTRACTE2E-CODEX-IDTOKEN-99cc";
    let env_key = "sk-ant-api03-EXTRACTE2E-ENV-00dd";
    let claude_doc = amika_testkit::ClaudeOauth::new(access, refresh).to_json() + "\n";
    let codex_doc = amika_testkit::CodexAuth::ChatGpt {
        id_token: id_token.into(),
    }
    .to_json()
        + "\n";
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    std::fs::write(home.join(".claude/.credentials.json"), &claude_doc).unwrap();
    std::fs::write(home.join(".codex/auth.json"), &codex_doc).unwrap();
    let raw = [access, refresh, id_token, env_key];
    let extract = || {
        let mut cmd = server.amika();
        cmd.env("HOME", &home)
            .env("ANTHROPIC_API_KEY", env_key)
            .args(["secret", "extract"]);
        cmd
    };

    // Shown masked, never raw.
    let out = extract().output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_absent(&shown, &raw, "extract's output");
    let stdout = text(&out.stdout);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["claude", "claude-oauth", "oauth"],
            ["claude", "claude-api-key", "api_key"],
            ["codex", "codex-oauth", "oauth"],
        ]
    );
    assert!(shown.contains(&masked(env_key)), "{shown}");
    let found = ok_json(extract().args(["-o", "json"]));
    assert_absent(&found.to_string(), &raw, "extract -o json");
    let summary: Vec<(&str, &str, &str)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap(),
                f["name"].as_str().unwrap(),
                f["source"].as_str().unwrap(),
            )
        })
        .collect();
    let claude_path = home.join(".claude/.credentials.json").display().to_string();
    let codex_path = home.join(".codex/auth.json").display().to_string();
    assert_eq!(
        summary,
        [
            ("claude", "claude-oauth", claude_path.as_str()),
            ("claude", "claude-api-key", "$ANTHROPIC_API_KEY"),
            ("codex", "codex-oauth", codex_path.as_str()),
        ]
    );

    // --only limits; an unknown kind is an error listing the known ones.
    let only = ok_json(extract().args(["--only", "codex", "-o", "json"]));
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["kind"], "codex");
    fails_with(
        extract().args(["--only", "codex,gemini"]),
        &["--only", "\"gemini\"", "claude or codex"],
    );

    // --push asks first; --yes pushes (here only codex).
    fails_with(extract().arg("--push"), &["refusing to push", "--yes"]);
    assert!(credential_list(&server, "claude").is_empty());
    assert!(credential_list(&server, "codex").is_empty());
    let out = ok(extract().args(["--push", "--yes", "--only", "codex"]));
    assert_eq!(out, "Created codex credential \"codex-oauth\"\n");
    assert!(credential_list(&server, "claude").is_empty());

    // Everything: the claude ones created, codex gets a new version.
    let pushed = ok_json(extract().args(["--push", "--yes", "-o", "json"]));
    assert_absent(&pushed.to_string(), &raw, "extract --push -o json");
    let actions: Vec<(&str, &str, u64)> = pushed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["action"].as_str().unwrap(),
                p["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("claude-oauth", "created", 1),
            ("claude-api-key", "created", 1),
            ("codex-oauth", "updated", 2),
        ]
    );
    let claude = credential_list(&server, "claude");
    let mut listed: Vec<(&str, &str, &str)> = claude
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap(),
                c["scope"].as_str().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("claude-api-key", "api_key", "user"),
            ("claude-oauth", "oauth", "user")
        ]
    );
    let revealed =
        ok_json(
            server
                .amika()
                .args(["secret", "claude", "reveal", "claude-oauth", "-o", "json"]),
        );
    assert_eq!(revealed["value"], claude_doc.as_str(), "the file, verbatim");
    let revealed = ok_json(server.amika().args([
        "secret",
        "claude",
        "reveal",
        "claude-api-key",
        "-o",
        "json",
    ]));
    assert_eq!(revealed["value"], env_key);

    // Nothing found: said so, and -o json is an empty list.
    let empty = server.dir.path().join("empty-home");
    std::fs::create_dir_all(&empty).unwrap();
    let out = server
        .amika()
        .env("HOME", &empty)
        .args(["secret", "extract"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("No agent credentials found"));
    assert_eq!(
        ok_json(
            server
                .amika()
                .env("HOME", &empty)
                .args(["secret", "extract", "-o", "json"])
        ),
        json!([])
    );
}

// ---------------------------------------------------------------------------------------------
// audit

#[test]
fn audit_shows_every_change_and_reveal_and_never_a_value() {
    let server = Server::start();
    let v1 = "audit-value-one-5e6f7a";
    let v2 = "audit-value-two-8b9c0d";
    let cred = "sk-ant-api03-AUDITE2E-1f2e3d";
    ok(server
        .amika()
        .args(["secret", "push", &format!("AUDITED={v1}"), "--yes"]));
    ok(server
        .amika()
        .args(["secret", "push", &format!("AUDITED={v2}"), "--yes"]));
    ok(server.amika().args(["secret", "reveal", "AUDITED"]));
    ok(server.amika().args([
        "secret",
        "claude",
        "push",
        "--name",
        "audit-key",
        "--type",
        "api_key",
        "--value",
        cred,
        "--yes",
    ]));
    let _guard = SandboxGuard {
        server: &server,
        name: "audit-box",
    };
    ok(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "audit-box",
        "--secret",
        "env:AUDITED",
        "--no-agent-credential",
        "codex",
    ]));
    ok(server
        .amika()
        .args(["sandbox", "delete", "audit-box", "--yes"]));
    ok(server
        .amika()
        .args(["secret", "delete", "AUDITED", "--yes"]));

    let events = ok_json(
        server
            .amika()
            .args(["audit", "-o", "json", "--limit", "100"]),
    );
    let events = events.as_array().unwrap();
    let find = |action: &str| -> &Value {
        events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} event in {events:#?}"))
    };
    for (action, version) in [
        ("secret.created", 1),
        ("secret.updated", 2),
        ("secret.revealed", 2),
        ("secret.deleted", 2),
    ] {
        let e = find(action);
        assert_eq!(e["object_name"], "AUDITED", "{e}");
        assert_eq!(e["version"], version, "{e}");
    }
    assert_eq!(find("credential.created")["object_name"], "audit-key");
    let created = find("sandbox.created");
    let detail = created["detail"].to_string();
    assert!(
        detail.contains("AUDITED") && detail.contains("audit-key"),
        "{detail}"
    );
    find("sandbox.deleted");
    // Newest first.
    assert_eq!(events[0]["action"], "secret.deleted");
    let all = serde_json::to_string(events).unwrap();
    assert_absent(&all, &[v1, v2, cred], "audit -o json");

    let table = ok(server.amika().args(["audit", "--limit", "100"]));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["TIME", "USER", "ACTION", "OBJECT", "VERSION", "SANDBOX"]
    );
    for needle in [
        "secret.revealed",
        "secret AUDITED",
        "sandbox.created",
        "credential audit-key",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
    assert_absent(&table, &[v1, v2, cred], "audit");

    // --limit: exactly that many, the newest.
    let two = ok_json(server.amika().args(["audit", "--limit", "2", "-o", "json"]));
    assert_eq!(two.as_array().unwrap().len(), 2);
    assert_eq!(two[0], events[0]);
    let table = ok(server.amika().args(["audit", "--limit", "1"]));
    assert_eq!(table.lines().count(), 2, "{table}");
}

/// `--limit 0` used to show one event and `--limit 5000` a thousand: the server clamped (it now
/// answers 400), and the CLI refuses such a limit itself.
#[test]
fn audit_limit_out_of_range_is_refused_not_clamped() {
    let server = Server::start();
    ok(server
        .amika()
        .args(["secret", "push", "A=one-value", "B=two-value", "--yes"]));
    for bad in ["0", "1001"] {
        let out = server
            .amika()
            .args(["audit", "--limit", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "--limit {bad} was accepted");
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(err.contains("--limit") && err.contains(bad), "{err}");
    }
    let all = ok_json(
        server
            .amika()
            .args(["audit", "--limit", "1000", "-o", "json"]),
    );
    assert_eq!(all.as_array().unwrap().len(), 2);
    let one = ok_json(server.amika().args(["audit", "--limit", "1", "-o", "json"]));
    assert_eq!(one.as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// sandbox

fn sandbox_json(server: &Server, args: &[&str]) -> Value {
    let mut full = vec!["sandbox"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    ok_json(server.amika().args(&full))
}

#[test]
fn sandbox_lifecycle_exec_and_secret_rotation_through_the_cli() {
    let server = Server::start();
    let v1 = "rotation-value-version-one";
    let v2 = "rotation-value-version-two";
    ok(server
        .amika()
        .args(["secret", "push", &format!("ROTATED={v1}"), "--yes"]));
    let _guards = [
        SandboxGuard {
            server: &server,
            name: "life-box",
        },
        SandboxGuard {
            server: &server,
            name: "spare-box",
        },
    ];
    let created = sandbox_json(
        &server,
        &[
            "create",
            "--name",
            "life-box",
            "--secret",
            "env:ROTATED",
            "--no-agent-credential",
            "claude",
            "--no-agent-credential",
            "codex",
        ],
    );
    assert_eq!(created["state"], "running");
    assert_eq!(created["secret_names"], json!(["ROTATED"]));
    let id = created["id"].as_str().unwrap().to_string();

    // list and get, text and JSON.
    let list = sandbox_json(&server, &["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "life-box");
    let table = ok(server.amika().args(["sandbox", "list"]));
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    // No repository: REPO and BRANCH are "-".
    assert_eq!(
        row[..7],
        ["life-box", "running", "-", "-", "claude=-", "codex=-", "ROTATED"]
    );
    let got = sandbox_json(&server, &["get", "life-box"]);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(
        sandbox_json(&server, &["get", &id])["name"],
        "life-box",
        "get by id"
    );
    let shown = ok(server.amika().args(["sandbox", "get", "life-box"]));
    assert!(
        shown.contains("State:     running") && shown.contains("Secrets:   ROTATED"),
        "{shown}"
    );

    // exec: stdout and stderr apart, the command's exit code, injected values redacted.
    let out = server
        .amika()
        .args(["sandbox", "exec", "life-box", "--", "sh", "-c"])
        .arg("echo out; echo err >&2; echo \"$ROTATED\"; exit 3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "out\n[REDACTED:ROTATED]\n");
    assert_eq!(text(&out.stderr), "err\n");
    let out = server
        .amika()
        .args([
            "sandbox", "exec", "life-box", "-o", "json", "--", "sh", "-c",
        ])
        .arg("echo o; echo e >&2; exit 4")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        json!({"stdout": "o\n", "stderr": "e\n", "exit_code": 4})
    );
    let out = server
        .amika()
        .args(["sandbox", "exec", "life-box", "--", "no-such-command-e2e"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));

    // exec streams: the first line arrives while the command still waits for a file that only
    // a second exec creates (a buffered relay would show "timeout" instead).
    let mut streaming = server
        .amika()
        .args(["sandbox", "exec", "life-box", "--", "sh", "-c"])
        .arg("echo first; i=0; while [ ! -e ~/go ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; [ -e ~/go ] && echo second || echo timeout")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(streaming.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert_eq!(first, "first\n");
    exec_sh(&server, "life-box", "touch ~/go");
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "second\n");
    assert!(streaming.wait().unwrap().success());

    // Files in home and workspace; the value the sandbox got.
    let hash_script = "printf %s \"$ROTATED\" | sha256sum | cut -c1-64";
    exec_sh(
        &server,
        "life-box",
        "echo home-data > ~/kept-home.txt && echo ws-data > ~/workspace/kept-ws.txt",
    );
    assert_eq!(exec_sh(&server, "life-box", hash_script).trim(), sha256(v1));

    // A new value: the running sandbox keeps the old one.
    ok(server
        .amika()
        .args(["secret", "push", &format!("ROTATED={v2}"), "--yes"]));
    assert_eq!(exec_sh(&server, "life-box", hash_script).trim(), sha256(v1));

    // stop: stopped; exec then fails, saying how to start it; a second stop is refused.
    let stopped = sandbox_json(&server, &["stop", "life-box"]);
    assert_eq!(stopped["state"], "stopped");
    assert_eq!(
        sandbox_json(&server, &["get", "life-box"])["state"],
        "stopped"
    );
    fails_with(
        server
            .amika()
            .args(["sandbox", "exec", "life-box", "--", "true"]),
        &["\"life-box\"", "stopped", "amika sandbox start life-box"],
    );
    fails_json(
        server
            .amika()
            .args(["sandbox", "exec", "life-box", "-o", "json", "--", "true"]),
        &["stopped"],
    );
    fails_with(
        server.amika().args(["sandbox", "stop", "life-box"]),
        &["stopped"],
    );

    // start: running again, with the new value and the files still there.
    let started = sandbox_json(&server, &["start", "life-box"]);
    assert_eq!(started["state"], "running");
    assert_eq!(exec_sh(&server, "life-box", hash_script).trim(), sha256(v2));
    assert_eq!(
        exec_sh(
            &server,
            "life-box",
            "cat ~/kept-home.txt ~/workspace/kept-ws.txt"
        ),
        "home-data\nws-data\n"
    );
    assert_eq!(
        exec_sh(&server, "life-box", "echo \"$ROTATED\""),
        "[REDACTED:ROTATED]\n"
    );
    fails_with(
        server.amika().args(["sandbox", "start", "life-box"]),
        &["running"],
    );

    // Unknown names: not found, exit 1.
    fails_with(
        server.amika().args(["sandbox", "get", "no-such-box"]),
        &["\"no-such-box\"", "not found"],
    );
    fails_json(
        server
            .amika()
            .args(["sandbox", "get", "no-such-box", "-o", "json"]),
        &["not found"],
    );
    fails_with(
        server
            .amika()
            .args(["sandbox", "exec", "no-such-box", "--", "true"]),
        &["not found"],
    );

    // delete: asks first (--force or --yes), then everything is gone.
    fails_with(
        server.amika().args(["sandbox", "delete", "life-box"]),
        &["refusing", "--force"],
    );
    fails_json(
        server
            .amika()
            .args(["sandbox", "delete", "life-box", "-o", "json"]),
        &["--force"],
    );
    assert_eq!(
        sandbox_json(&server, &["get", "life-box"])["state"],
        "running"
    );
    let deleted = sandbox_json(&server, &["delete", "life-box", "--force"]);
    assert_eq!(deleted, json!({"ok": true, "deleted": "life-box"}));
    fails_with(
        server.amika().args(["sandbox", "get", "life-box"]),
        &["not found"],
    );
    wait_until(
        "the deleted sandbox's files to go",
        Duration::from_secs(20),
        || !server.data_dir.join("sandboxes").join(&id).exists(),
    );
    ok(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "spare-box",
        "--no-agent-credential",
        "claude",
        "--no-agent-credential",
        "codex",
    ]));
    assert_eq!(
        ok(server
            .amika()
            .args(["sandbox", "delete", "spare-box", "--yes"])),
        "Deleted sandbox spare-box\n"
    );
    assert_eq!(sandbox_json(&server, &["list"]), json!([]));
}

#[test]
fn sandbox_create_flag_errors_name_the_flag_and_the_value() {
    let server = Server::start();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--secret", "foo"],
            &["--secret", "\"foo\"", "env:VAR=SECRET_NAME"],
        ),
        (&["--secret", "env:1BAD=x"], &["--secret", "\"env:1BAD=x\""]),
        (
            &["--agent-credential", "claude"],
            &["--agent-credential", "\"claude\"", "KIND=NAME"],
        ),
        (
            &["--agent-credential", "gemini=x"],
            &["--agent-credential", "\"gemini=x\"", "claude or codex"],
        ),
        (
            &["--agent-credential-type", "codex=password"],
            &[
                "--agent-credential-type",
                "\"codex=password\"",
                "oauth, api_key or api-key",
            ],
        ),
        (
            &["--no-agent-credential", "gemini"],
            &["--no-agent-credential", "\"gemini\"", "claude or codex"],
        ),
        (
            &[
                "--agent-credential",
                "claude=a",
                "--agent-credential",
                "claude=b",
            ],
            &["--agent-credential", "claude=a", "claude=b", "twice"],
        ),
        (
            &[
                "--agent-credential-type",
                "codex=oauth",
                "--agent-credential-type",
                "codex=api-key",
            ],
            &[
                "--agent-credential-type",
                "codex=oauth",
                "codex=api-key",
                "twice",
            ],
        ),
        (
            &[
                "--no-agent-credential",
                "codex",
                "--agent-credential",
                "codex=x",
            ],
            &["--no-agent-credential codex", "--agent-credential codex=x"],
        ),
        (
            &[
                "--no-agent-credential",
                "claude",
                "--agent-credential-type",
                "claude=oauth",
            ],
            &[
                "--no-agent-credential claude",
                "--agent-credential-type claude=oauth",
            ],
        ),
    ];
    for (flags, needles) in cases {
        fails_with(
            server
                .amika()
                .args(["sandbox", "create", "--name", "never"])
                .args(*flags),
            needles,
        );
        fails_json(
            server
                .amika()
                .args(["sandbox", "create", "--name", "never", "-o", "json"])
                .args(*flags),
            needles,
        );
    }
    assert_eq!(sandbox_json(&server, &["list"]), json!([]));
    assert!(
        !server.data_dir.join("sandboxes").exists()
            || common::sandbox_dirs(&server.data_dir).is_empty(),
        "a refused create left files"
    );
}
