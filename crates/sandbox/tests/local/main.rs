//! The local provider against real bubblewrap: no mocks. Every test removes its sandboxes even
//! when it fails (see [`Guard`]).
//!
//! One module per area, as the provider keeps one operation per file: `injection` (what goes in
//! and where it must not end up), `lifecycle` (start, stop, remove, restart, leftovers), `exec`,
//! `isolation` (host, network, limits, speed), `preset` (a mounted preset layer) and `warm`
//! (warm sandboxes).

mod exec;
mod injection;
mod isolation;
mod lifecycle;
mod preset;
mod rlimits;
mod seccomp;
mod warm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amika_sandbox::local::LocalProvider;
use amika_sandbox::{
    ExecEvent, ExecSpec, InjectedEnv, InjectedFile, Injection, Provider, ProviderError,
    RuntimeStatus, SandboxSpec, SecretBytes,
};
use amika_types::NetworkMode;

// The tests run on a multi-threaded runtime, as the server does: the provider reaps the
// commands of execs on the runtime, and a sandbox's pid namespace (hence its init) ends only
// once they are reaped — `Guard`'s blocking cleanup must not stall that.

/// A sandbox root that removes every sandbox in it when dropped — through a *fresh* provider,
/// which also exercises finding sandboxes from `state.json` alone.
struct Guard {
    root: tempfile::TempDir,
}

impl Guard {
    fn new() -> Guard {
        Guard {
            root: tempfile::Builder::new()
                .prefix("amika-sbx-test")
                .tempdir()
                .unwrap(),
        }
    }
    fn path(&self) -> PathBuf {
        self.root.path().join("sandboxes")
    }
    fn provider(&self) -> LocalProvider {
        LocalProvider::new(self.path())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let root = self.path();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let provider = LocalProvider::new(root);
                for id in provider.list().await.unwrap_or_default() {
                    if let Err(e) = provider.remove(&id).await {
                        eprintln!("cleanup of sandbox {id} failed: {e}");
                    }
                }
            });
        })
        .join();
    }
}

fn spec(id: &str) -> SandboxSpec {
    SandboxSpec {
        id: id.into(),
        network: NetworkMode::None,
        memory_mib: None,
        pids: None,
        preset: None,
    }
}

fn env(name: &str, value: &[u8]) -> InjectedEnv {
    InjectedEnv {
        name: name.into(),
        value: SecretBytes::new(value.to_vec()),
        label: name.into(),
    }
}

fn file(path: &str, contents: &[u8]) -> InjectedFile {
    InjectedFile {
        relative_path: path.into(),
        contents: SecretBytes::new(contents.to_vec()),
        label: path.into(),
    }
}

/// A value no process or file on this machine contains by accident.
fn distinctive(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("amika-{tag}-{}-{nanos:x}", std::process::id())
}

#[derive(Debug, Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    code: Option<i32>,
}

impl Output {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

async fn exec_spec(p: &LocalProvider, id: &str, spec: ExecSpec) -> Output {
    collect(p.exec(id, spec).await.expect("exec")).await
}

/// Everything an exec's handle gives, to its end.
async fn collect(mut handle: amika_sandbox::ExecHandle) -> Output {
    let mut out = Output::default();
    while let Some(event) = handle.events.recv().await {
        match event {
            ExecEvent::Stdout(b) => out.stdout.extend(b),
            ExecEvent::Stderr(b) => out.stderr.extend(b),
            ExecEvent::Exit(c) => out.code = Some(c),
        }
    }
    out
}

async fn run(p: &LocalProvider, id: &str, argv: &[&str]) -> Output {
    exec_spec(
        p,
        id,
        ExecSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: None,
            timeout: Some(Duration::from_secs(30)),
        },
    )
    .await
}

/// Run and expect success; stdout as a string.
async fn sh(p: &LocalProvider, id: &str, script: &str) -> String {
    let out = run(p, id, &["sh", "-c", script]).await;
    assert_eq!(
        out.code,
        Some(0),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.out()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every host process's command line that contains `needle`.
fn cmdlines_containing(needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = entry.path().join("cmdline");
        if let Ok(bytes) = std::fs::read(&cmdline) {
            if contains(&bytes, needle) {
                hits.push(format!(
                    "{}: {}",
                    cmdline.display(),
                    String::from_utf8_lossy(&bytes)
                ));
            }
        }
    }
    hits
}

/// The pids of the processes whose command line contains `needle`.
fn pids_containing(needle: &[u8]) -> Vec<i32> {
    cmdlines_containing(needle)
        .iter()
        .filter_map(|hit| hit.strip_prefix("/proc/")?.split('/').next()?.parse().ok())
        .collect()
}

/// Every file under `dir` (not following symlinks) whose contents contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let ty = entry.file_type().unwrap();
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() && contains(&std::fs::read(entry.path()).unwrap(), needle) {
                hits.push(entry.path());
            }
        }
    }
    hits
}

fn init_pid(root: &Path, id: &str) -> i32 {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join(id).join("state.json")).unwrap()).unwrap();
    state["init"]["pid"].as_i64().unwrap() as i32
}

fn amika_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

async fn processes(p: &LocalProvider, id: &str) -> String {
    sh(p, id, "ps -eo args").await
}

/// An address of this host that is not loopback (what an egress sandbox can reach).
fn host_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

trait TapEgress {
    fn tap_egress(self) -> Self;
}
impl TapEgress for SandboxSpec {
    fn tap_egress(mut self) -> Self {
        self.network = NetworkMode::Egress;
        self
    }
}

/// Wait up to 10 s for `cond`.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// SIGKILL a process of the test's own sandboxes, by pid.
fn kill_9(pid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
