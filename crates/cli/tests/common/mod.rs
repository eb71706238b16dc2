//! End-to-end harness: a real `amika server` process on a free port of 127.0.0.1 (SQLite in a
//! temp dir, or a fresh database in the throwaway PostgreSQL that `scripts/with-postgres.sh`
//! starts, from `amika_testkit::FreshDatabase`), and the real `amika` binary talking to it.
#![allow(dead_code)]

pub mod agents;
pub mod ssh;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

pub struct Server {
    pub url: String,
    pub admin_key: String,
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub database_url: Option<String>,
    child: Child,
    /// Set by [`Server::kill`]: the sandboxes are meant to outlive this server.
    crashed: bool,
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(None, &[])
    }

    pub fn start_with(database_url: Option<String>, extra_args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Self::start_in(dir, data_dir, database_url, extra_args)
    }

    /// Start (or restart) a server on an existing data dir.
    pub fn start_in(
        dir: tempfile::TempDir,
        data_dir: PathBuf,
        database_url: Option<String>,
        extra_args: &[&str],
    ) -> Server {
        let log = dir.path().join(format!("server-{}.log", rand_suffix()));
        let mut cmd = Command::cargo_bin("amika").unwrap();
        cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(extra_args);
        cmd.env_remove("AMIKA_DATABASE_URL")
            .env_remove("AMIKA_MASTER_KEY");
        if let Some(url) = &database_url {
            cmd.args(["--database-url", url]);
        }
        // Debug logging on purpose: tests check that even this level never shows a value.
        cmd.env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("amika server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = match line.trim().strip_prefix("amika server listening on ") {
            Some(u) => u.to_string(),
            None => {
                let _ = child.kill();
                panic!(
                    "server did not start: {line:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let admin_key = std::fs::read_to_string(data_dir.join("admin-api-key"))
            .unwrap()
            .trim()
            .to_string();
        Server {
            url,
            admin_key,
            dir,
            data_dir,
            log,
            database_url,
            child,
            crashed: false,
        }
    }

    /// The real `amika` binary, logged in as `key`, with a private HOME and config.
    pub fn amika_as(&self, key: &str) -> Command {
        let mut cmd = Command::cargo_bin("amika").unwrap();
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        // Outside any git repository (the tests run inside this one): `sandbox create` would
        // otherwise send this checkout as the sandbox's repository.
        cmd.current_dir(self.dir.path())
            .env("AMIKA_API_URL", &self.url)
            .env("AMIKA_API_KEY", key)
            .env("AMIKA_CONFIG", self.dir.path().join("cli-config.json"))
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .stdin(Stdio::null());
        cmd
    }

    pub fn amika(&self) -> Command {
        self.amika_as(&self.admin_key)
    }

    /// The server process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the server process to exit by itself, at most `limit`: its status, or `None`
    /// when it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kill the server (SIGKILL) and keep its directory, e.g. to restart on it.
    pub fn kill(mut self) -> (tempfile::TempDir, PathBuf, Option<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.crashed = true;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.data_dir.clone(), self.database_url.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Sandboxes outlive their server by design: a test that failed half-way must not leave
        // them running. Kill every process whose command line points into this data dir.
        if !self.crashed {
            kill_sandbox_processes(&self.data_dir);
        }
    }
}

/// SIGKILL every process whose command line names a sandbox of `data_dir`.
pub fn kill_sandbox_processes(data_dir: &Path) {
    let needle = format!("{}/sandboxes/", data_dir.display());
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(&needle) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Run a command, assert success, return stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run a command, assert success, parse stdout as JSON.
pub fn ok_json(cmd: &mut Command) -> serde_json::Value {
    let out = ok(cmd);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Run a command, assert failure, return stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "{cmd:?} should fail:\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                if let Ok(bytes) = std::fs::read(&p) {
                    if contains(&bytes, needle) {
                        hits.push(p);
                    }
                }
            }
        }
    }
    hits
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `sh -c SCRIPT` in a sandbox through `amika sandbox exec`; asserts success, returns stdout.
pub fn exec_sh(server: &Server, sandbox: &str, script: &str) -> String {
    ok(server
        .amika()
        .args(["sandbox", "exec", sandbox, "--", "sh", "-c", script]))
}

/// Hex SHA-256, by the host's `sha256sum` (what the scripts inside sandboxes use).
pub fn sha256(value: impl AsRef<[u8]>) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_ref())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A Claude OAuth credential document (`~/.claude/.credentials.json`) with these tokens.
pub fn claude_oauth_doc(access: &str, refresh: &str) -> String {
    amika_testkit::ClaudeOauth::new(access, refresh)
        .scopes(&["user:inference"])
        .to_json()
}

/// Runs `check` every 100 ms until it holds (true) or `limit` passes (false).
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if check() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`eventually`] that must hold: fails the test naming `what` otherwise.
pub fn wait_until(what: &str, limit: Duration, done: impl FnMut() -> bool) {
    assert!(eventually(limit, done), "timed out waiting for {what}");
}

/// A bare HTTP/1.1 request to the server (no client library between the test and the wire).
pub fn http(
    server: &Server,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = server.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let body = body.unwrap_or("");
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The sandbox directories under a data dir: every entry of `sandboxes/` except the provider's
/// own (`.etc`, the shared /etc; `.pool`, warm sandboxes), which hold no sandbox.
#[allow(dead_code)]
pub fn sandbox_dirs(data_dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(data_dir.join("sandboxes"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect()
}
