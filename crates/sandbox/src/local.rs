//! The local provider: each sandbox is a set of Linux namespaces made by bubblewrap on this
//! machine, kept alive by a tiny init, entered for every command by the spawned process itself
//! (see `enter`).
//!
//! Files of sandbox `<id>` live in `<root_dir>/<id>/` (mode 0700):
//! - `home/` — bound on `/home/amika`, persists across stop/start; `home/workspace` is the
//!   default working directory;
//! - `state.json` — non-secret facts about the running sandbox: pids with their start times,
//!   cgroups. It is what lets a *new* provider instance (after a server restart) find, use, stop
//!   and remove sandboxes that an earlier instance started (see `record`);
//! - `slirp4netns.log` — diagnostics of the egress network helper.
//!
//! Beside them: `<root_dir>/.etc/` holds the one curated `/etc` every sandbox sees (see `etc`),
//! and `<root_dir>/.pool/` the warm sandboxes — started, without any value, waiting for a
//! create to claim them (see `pool` and `warm`).
//!
//! Design choices (see the module docs of `script`, `proc`, `cgroup` for the details):
//! - **Sandboxes survive a server restart.** bwrap runs without `--die-with-parent`, in its own
//!   session (`setsid`), and is reaped by a background task; a restarted server finds it through
//!   `state.json`. Nothing is orphaned: `stop` kills by recorded (pid, start time) pairs, and
//!   a start writes `state.json` *before* it hands the init its injection script, whose last
//!   line commits the start. A server killed before that point closes the pipe, and an init
//!   without the commit exits by itself, taking bwrap with it: no sandbox process can outlive
//!   the server without a `state.json` that names it (see `launch::INIT_STAGE1`).
//! - **The init** is `/bin/sh` as pid 1 of the sandbox's pid namespace (`--as-pid-1`): it sleeps
//!   in a loop and its `wait` reaps orphans. Killing it makes the kernel kill everything else in
//!   the namespace, so `stop` is one SIGKILL plus waiting on a pidfd.
//! - **Secrets** reach the sandbox only through a pipe to a shell that already runs inside it
//!   (never argv, never the environment of a host-side process, never the host's disk).
//! - **Env after a restart**: an exec takes its environment from the init's own
//!   `/proc/<pid>/environ` — the values the sandbox was started with, for as long as it runs,
//!   whichever provider instance started it. Nothing secret is kept in memory or on disk by the
//!   provider.
//! - **Host-side processes** (bwrap, slirp4netns) get a fixed environment of constants
//!   and every inherited descriptor closed (see [`proc::install`]).
//!
//! One file per operation, as youki keeps one container operation per file: `start` (with
//! `launch` for bubblewrap and its init, `slirp` for the egress helper, `warm` for claiming and
//! parking warm sandboxes), `stop`, `remove`, `exec`, `reconcile` (status and list); `record`
//! owns `state.json` and `scan` the `/proc` backstop for processes no record names; `error`
//! says why a start failed, as types; `secret_buf` grows buffers of secrets without copies;
//! `git` clones a repository on the host, a clone token fed through a pipe, and `workspace`
//! stages that clone until the start moves it into the sandbox's workspace.

mod cgroup;
mod enter;
mod error;
mod etc;
mod exec;
pub mod git;
mod launch;
mod pool;
mod proc;
mod reconcile;
mod record;
mod remove;
pub mod rlimit;
mod scan;
mod script;
pub mod seccomp;
mod secret_buf;
mod session;
mod slirp;
mod start;
mod stop;
mod warm;
mod workspace;

pub use self::workspace::{MAX_REPO_CONFIG_BYTES, REPO_CONFIG_PATH};

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

pub use self::cgroup::CgroupError;
pub use self::error::StartError;
use self::pool::Pool;
use self::script::HOME;
use crate::keyed_lock::{KeyedLock, KeyedLocks};
use crate::{
    ExecHandle, ExecSpec, Injection, Provider, ProviderError, Result, RuntimeStatus, SandboxSpec,
    StagedWorkspace, WorkspaceSpec,
};

/// The environment of every host-side process and the base environment inside the sandbox.
/// Constants only: see `script` for why no injected value goes here.
const BASE_ENV: &[(&str, &str)] = &[
    ("HOME", HOME),
    ("USER", "amika"),
    ("LOGNAME", "amika"),
    ("SHELL", "/bin/sh"),
    // The sandbox user's own bin dir first: agent CLIs install themselves there (agent-send runs
    // `claude`/`codex` by name). Host-side tools are started by absolute path.
    (
        "PATH",
        "/home/amika/.local/bin:/usr/local/bin:/usr/bin:/bin",
    ),
    ("LANG", "C.UTF-8"),
];
/// Where a preset layer (see [`crate::SandboxSpec::preset`]) is mounted, read-only.
pub const PRESET_MOUNT: &str = "/opt/amika/preset";
/// `PATH` inside a sandbox with a preset: the layer's `bin` after the user's own.
const PRESET_PATH: &str =
    "/home/amika/.local/bin:/opt/amika/preset/bin:/usr/local/bin:/usr/bin:/bin";
/// Warm sandboxes live in `<root>/.pool/` (not a sandbox id: ids never start with `.`).
const POOL_DIR: &str = ".pool";
/// Warm sandboxes per shape unless configured otherwise.
pub const DEFAULT_WARM: usize = 1;
/// Exit code reported for a command killed by its timeout (as `timeout(1)` does).
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// How long `start` waits for the sandbox to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a SIGKILLed process to exit.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Host programs the provider runs. Absolute paths, resolved once, so that nothing depends on
/// the `PATH` of whoever started the server.
#[derive(Debug, Clone)]
struct Tools {
    bwrap: PathBuf,
    slirp4netns: PathBuf,
}

/// Sandboxes as bubblewrap namespaces on this machine. See the module docs. A clone is a handle
/// on the same provider (its locks and warm sandboxes).
#[derive(Debug, Clone)]
pub struct LocalProvider {
    root_dir: PathBuf,
    tools: Tools,
    cgroups: Arc<OnceLock<cgroup::Layout>>,
    /// One lock per sandbox id, so that start/stop/remove of one sandbox never interleave.
    locks: KeyedLocks,
    /// Warm sandboxes (see `pool`).
    pool: Arc<Pool>,
    /// Whether `.pool` leftovers of an earlier server were removed.
    pool_swept: Arc<AtomicBool>,
    /// Names this provider's warm sandbox slots (`<instance>-<n>`), so that removing leftovers
    /// never touches its own.
    instance: Arc<str>,
    /// The `/etc` every sandbox sees.
    etc: Arc<etc::Curated>,
}

impl LocalProvider {
    /// A provider keeping sandboxes under `root_dir` (the server's data dir + `/sandboxes`).
    /// Cheap: nothing is touched until a sandbox is started.
    pub fn new(root_dir: PathBuf) -> Self {
        LocalProvider {
            tools: Tools {
                bwrap: find_tool("bwrap"),
                slirp4netns: find_tool("slirp4netns"),
            },
            cgroups: Arc::new(OnceLock::new()),
            locks: KeyedLocks::new(),
            pool: Arc::new(Pool::new(DEFAULT_WARM)),
            pool_swept: Arc::new(AtomicBool::new(false)),
            instance: {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("{nanos:x}").into()
            },
            etc: Arc::new(etc::Curated::new(&root_dir)),
            root_dir,
        }
    }

    /// Keep `per_shape` started sandboxes waiting for each recently used shape (network mode and
    /// credential directories), so that a create only sends its script (see `pool`). 0 turns
    /// warm sandboxes off.
    pub fn with_warm_sandboxes(mut self, per_shape: usize) -> Self {
        self.pool = Arc::new(Pool::new(per_shape));
        self
    }

    /// How many warm sandboxes are waiting right now.
    pub fn warm_sandboxes(&self) -> usize {
        self.pool.parked()
    }

    /// Use this bubblewrap binary (tests point it at a missing path to see `check` fail).
    pub fn with_bwrap_path(mut self, path: PathBuf) -> Self {
        self.tools.bwrap = path;
        self
    }

    /// Use this `slirp4netns` binary (egress networking).
    pub fn with_slirp4netns_path(mut self, path: PathBuf) -> Self {
        self.tools.slirp4netns = path;
        self
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root_dir.join(id)
    }

    fn cgroup_layout(&self) -> &cgroup::Layout {
        self.cgroups.get_or_init(cgroup::Layout::detect)
    }

    fn lock_for(&self, id: &str) -> KeyedLock {
        self.locks.handle(id)
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn check(&self) -> Result<()> {
        if !is_executable(&self.tools.bwrap) {
            return Err(ProviderError::Unavailable(
                "bubblewrap (bwrap) is not installed: run `apt-get install -y bubblewrap`".into(),
            ));
        }
        Ok(())
    }

    async fn start(&self, spec: &SandboxSpec, injection: Injection) -> Result<()> {
        self.start_sandbox(spec, injection).await
    }

    async fn stop(&self, id: &str) -> Result<()> {
        self.stop_sandbox(id).await
    }

    async fn remove(&self, id: &str) -> Result<()> {
        self.remove_sandbox(id).await
    }

    async fn halt(&self, id: &str) -> Result<()> {
        self.halt_sandbox(id).await
    }

    async fn exec(&self, id: &str, spec: ExecSpec) -> Result<ExecHandle> {
        self.exec_in_sandbox(id, spec).await
    }

    async fn session(&self, id: &str, spec: crate::SessionSpec) -> Result<crate::SessionHandle> {
        self.session_in_sandbox(id, spec).await
    }

    async fn connect_tcp(
        &self,
        id: &str,
        host: std::net::IpAddr,
        port: u16,
    ) -> Result<tokio::net::TcpStream> {
        self.connect_in_sandbox(id, host, port).await
    }

    async fn stage_workspace(&self, id: &str, spec: &WorkspaceSpec<'_>) -> Result<StagedWorkspace> {
        self.stage(id, spec).await
    }

    async fn status(&self, id: &str) -> Result<RuntimeStatus> {
        self.runtime_status(id).await
    }

    async fn list(&self) -> Result<Vec<String>> {
        self.list_sandboxes().await
    }

    async fn disk_usage(&self, id: &str) -> Result<Option<u64>> {
        let home = self.root_dir.join(id).join("home");
        let walked = tokio::task::spawn_blocking(move || disk_usage(&home))
            .await
            .map_err(|e| ProviderError::Io(io::Error::other(e)))?;
        Ok(walked?)
    }

    fn root_dir(&self) -> Option<PathBuf> {
        Some(self.root_dir.clone())
    }

    fn home_dir(&self, id: &str) -> Option<PathBuf> {
        check_id(id).ok()?;
        Some(self.sandbox_dir(id).join("home"))
    }

    fn is_settled(&self) -> bool {
        self.pool.is_settled()
    }
}

/// Sandbox ids name directories and cgroups: `[A-Za-z0-9_.-]`, not starting with `.`, at most
/// 128 bytes.
fn check_id(id: &str) -> std::result::Result<(), StartError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StartError::InvalidId(id.to_owned()))
    }
}

fn find_tool(name: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_absolute() && is_executable(candidate))
    });
    from_path.unwrap_or_else(|| Path::new("/usr/bin").join(name))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Allocated bytes of everything under `dir` (files, directories, symbolic links themselves),
/// `None` when `dir` does not exist. Files that vanish during the walk are skipped.
fn disk_usage(dir: &Path) -> io::Result<Option<u64>> {
    use std::os::unix::fs::MetadataExt;
    let top = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut total = top.blocks() * 512;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        check_id("sbx_01J9Z-abc.1").unwrap();
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn curated_etc_hides_host_secrets() {
        let entries = etc::ETC_ENTRIES;
        for secret in [
            "shadow",
            "gshadow",
            "ssl",
            "ssl/private",
            "ssh",
            "sudoers",
            "npmrc",
            "pip.conf",
        ] {
            assert!(!entries.contains(&secret), "{secret} must not be mounted");
        }
    }
}
