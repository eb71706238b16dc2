//! The local provider: each sandbox is a set of Linux namespaces made by bubblewrap on this
//! machine, kept alive by a tiny init, entered for every command by the spawned process itself
//! (see `enter`).
//!
//! Files of sandbox `<id>` live in `<root_dir>/<id>/` (mode 0700):
//! - `home/` — bound on `/home/amika`, persists across stop/start; `home/workspace` is the
//!   default working directory;
//! - `state.json` — non-secret facts about the running sandbox: pids with their start times,
//!   cgroups. It is what lets a *new* provider instance (after a server restart) find, use, stop
//!   and remove sandboxes that an earlier instance started;
//! - `slirp4netns.log` — diagnostics of the egress network helper.
//!
//! Beside them: `<root_dir>/.etc/` holds the one curated `/etc` every sandbox sees (see `etc`),
//! and `<root_dir>/.pool/` the warm sandboxes — started, without any value, waiting for a
//! create to claim them (see `pool`).
//!
//! Design choices (see the module docs of `script`, `proc`, `cgroup` for the details):
//! - **Sandboxes survive a server restart.** bwrap runs without `--die-with-parent`, in its own
//!   session (`setsid`), and is reaped by a background task; a restarted server finds it through
//!   `state.json`. Nothing is orphaned: `stop` kills by recorded (pid, start time) pairs, and
//!   a start writes `state.json` *before* it hands the init its injection script, whose last
//!   line commits the start. A server killed before that point closes the pipe, and an init
//!   without the commit exits by itself, taking bwrap with it: no sandbox process can outlive
//!   the server without a `state.json` that names it (see `INIT_STAGE1`).
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

mod cgroup;
mod enter;
mod etc;
mod pool;
mod proc;
mod script;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use amika_types::NetworkMode;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use self::pool::{Parked, Pool, Shape};
use self::proc::{ChildSetup, ProcRef};
use self::script::HOME;
use crate::redact::{RedactionSet, Redactor};
use crate::{
    ExecEvent, ExecHandle, ExecSpec, Injection, Provider, ProviderError, Result, RuntimeStatus,
    SandboxSpec,
};

/// The sandbox user's uid and gid inside the sandbox.
const SANDBOX_ID: u32 = 1000;
/// Default working directory of execs.
const WORKSPACE: &str = "/home/amika/workspace";
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
/// What the init prints on stderr once bubblewrap's setup is done and it waits for its script.
const STARTED_LINE: &[u8] = b"amika-started";
/// What the init prints on stderr once the injected environment and files are in place.
const READY_LINE: &[u8] = b"amika-ready";
/// Stage 1 of the init (`$1` is stage 2): create the workspace (tolerating whatever the sandbox
/// left in its place, so that a sandbox cannot make itself unstartable), source the injection script from
/// stdin (exports and credential files, written under `umask 077`), then replace itself by stage
/// 2 — whose environment block (`/proc/<pid>/environ`) thereby holds every injected variable
/// from its first instruction on, before it reports ready.
///
/// Stage 2 runs only if the script ended with [`INIT_COMMIT`]: the provider sends the script
/// only after `state.json` names the sandbox's processes, so a server killed before that (the
/// pipe then ends early) leaves an init that exits by itself instead of a sandbox nobody can
/// find. The commit is a positional parameter, not a variable: an injected `export NAME=...`
/// cannot forge it, and a truncated last line cannot match it.
const INIT_STAGE1: &str = "set -e; \
    [ -d /home/amika/workspace ] || mkdir -p /home/amika/workspace 2>/dev/null || :; \
    cd /home/amika/workspace 2>/dev/null || cd /home/amika; \
    echo amika-started >&2; umask 077; . /dev/stdin; umask 022; \
    [ \"${2-}\" = amika-committed ] || exit 111; \
    exec /bin/sh -c \"$1\" amika-init";
/// The last line of every injection script (see [`INIT_STAGE1`]).
const INIT_COMMIT: &[u8] = b"set -- \"$1\" amika-committed\n";
/// Stage 2, the long-lived init (pid 1 of the sandbox): report ready, let go of the pipes, sleep
/// forever. `wait` returns for any child, so orphans re-parented to pid 1 are reaped. Signals
/// from inside the sandbox cannot kill it (pid 1 without handlers); the host's SIGKILL can.
const INIT_STAGE2: &str = "echo amika-ready >&2; exec </dev/null >/dev/null 2>&1; \
    while :; do sleep 3600 & wait; done";
/// Where a sandbox directory keeps its [`RunRecord`].
const STATE_FILE: &str = "state.json";
/// Warm sandboxes live in `<root>/.pool/` (not a sandbox id: ids never start with `.`).
const POOL_DIR: &str = ".pool";
/// How long after a start its warm replacement is started.
const REFILL_DELAY: Duration = Duration::from_millis(100);
/// Warm sandboxes per shape unless configured otherwise.
pub const DEFAULT_WARM: usize = 1;
/// Exit code reported for a command killed by its timeout (as `timeout(1)` does).
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// How long `start` waits for the sandbox to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a SIGKILLed process to exit.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// After an exec's command exits, how long its output may still drain. A background process
/// that keeps the pipes open does not hold the exec open beyond this.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

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
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
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

/// A bubblewrap started and recorded, waiting for its injection script.
#[derive(Debug)]
pub(crate) struct Launched {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: BufReader<ChildStderr>,
    record: RunRecord,
}

/// What `state.json` records about a running sandbox. Nothing secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRecord {
    /// The host-side bubblewrap process (parent of the init).
    bwrap: ProcRef,
    /// Pid 1 of the sandbox's pid namespace, as seen from the host.
    init: ProcRef,
    /// The egress network helper, if the sandbox has one.
    slirp4netns: Option<ProcRef>,
    /// Cgroup directories of the sandbox (limits), joined by every exec.
    cgroups: Vec<PathBuf>,
}

/// What bwrap writes to `--info-fd`.
#[derive(Debug, Deserialize)]
struct BwrapInfo {
    #[serde(rename = "child-pid")]
    child_pid: i32,
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
            locks: Arc::new(Mutex::new(HashMap::new())),
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

    fn state_file(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join(STATE_FILE)
    }

    fn cgroup_layout(&self) -> &cgroup::Layout {
        self.cgroups.get_or_init(cgroup::Layout::detect)
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    fn read_record(&self, id: &str) -> Result<Option<RunRecord>> {
        match std::fs::read(self.state_file(id)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                ProviderError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt state file of sandbox {id}: {e}"),
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Self::write_record_at`] for a start, whose errors are reasons (strings).
    fn record_start(&self, dir: &Path, record: &RunRecord) -> std::result::Result<(), String> {
        self.write_record_at(dir, record)
            .map_err(|e| format!("cannot record the sandbox's processes: {e}"))
    }

    fn write_record_at(&self, dir: &Path, record: &RunRecord) -> io::Result<()> {
        let path = dir.join(STATE_FILE);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)
    }

    /// The record of a sandbox whose init is alive, or `NotRunning`.
    fn running_record(&self, id: &str) -> Result<RunRecord> {
        if check_id(id).is_err() {
            return Err(ProviderError::NotRunning(id.to_owned()));
        }
        match self.read_record(id)? {
            Some(record) if record.init.is_alive() => Ok(record),
            _ => Err(ProviderError::NotRunning(id.to_owned())),
        }
    }

    /// Kill every process of a run and remove its cgroups and state file.
    async fn teardown(&self, dir: &Path, record: &RunRecord) -> Result<()> {
        // The init first: the kernel then kills the rest of the pid namespace before the init's
        // pidfd reports its exit. bwrap then reaps it and exits by itself; it is killed only if
        // it does not (killing it first would leave the init a zombie for the host's pid 1).
        record.init.kill_and_wait(KILL_TIMEOUT).await?;
        if !record.bwrap.wait_exit(Duration::from_secs(1)).await? {
            record.bwrap.kill_and_wait(KILL_TIMEOUT).await?;
        }
        if let Some(slirp) = &record.slirp4netns {
            slirp.kill_and_wait(KILL_TIMEOUT).await?;
        }
        cgroup::remove(&record.cgroups).await?;
        match std::fs::remove_file(dir.join(STATE_FILE)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn stop_locked(&self, id: &str) -> Result<()> {
        // Strays first: one may sit in the sandbox's cgroups, which the teardown removes.
        self.kill_strays(id).await?;
        match self.read_record(id)? {
            Some(record) => self.teardown(&self.sandbox_dir(id), &record).await,
            None => {
                // No record, but maybe the cgroups of a start that never got to write one.
                cgroup::remove(&self.cgroup_layout().dirs(id)).await?;
                Ok(())
            }
        }
    }

    /// Host processes that still run bubblewrap's command line for a sandbox under this root,
    /// with the sandbox's id: bwrap itself, and bwrap's child *before* it becomes the init.
    /// `state.json` is the normal way to find a sandbox's processes; this scan is the backstop
    /// for what a server killed mid-start leaves before the record is written. One such case is
    /// real: bwrap writes `--info-fd` before it lets its child run, so if the server (the
    /// reader) is gone, the write kills bwrap and leaves the child blocked forever, with
    /// bwrap's argv. The `--bind <root>/<id>/home` argument names the sandbox.
    fn bwrap_processes(&self) -> Vec<(String, ProcRef)> {
        self.bwrap_bound(|rest| {
            let mut id = rest.to_str()?.to_owned();
            // A claimed warm sandbox: its slot links to the sandbox (see `claim`).
            if let Some(slot) = id.strip_prefix(".pool/") {
                let link = std::fs::read_link(self.root_dir.join(POOL_DIR).join(slot)).ok()?;
                id = link.file_name()?.to_str()?.to_owned();
            }
            check_id(&id).ok().map(|()| id)
        })
    }

    /// Host processes running bubblewrap's command line with `--bind <root>/<dir>/home`, with
    /// what `name(<dir>)` makes of the directory (skipped on `None`).
    fn bwrap_bound(&self, name: impl Fn(&Path) -> Option<String>) -> Vec<(String, ProcRef)> {
        use std::os::unix::ffi::OsStrExt;
        let bwrap = self.tools.bwrap.as_os_str().as_bytes();
        proc::find_by_cmdline(|argv| {
            let program = Path::new(std::ffi::OsStr::from_bytes(argv.first()?));
            if program.as_os_str().as_bytes() != bwrap
                && program.file_name() != Some("bwrap".as_ref())
            {
                return None;
            }
            argv.windows(2).find_map(|pair| {
                if pair[0] != b"--bind" {
                    return None;
                }
                let source = Path::new(std::ffi::OsStr::from_bytes(pair[1]));
                let rest = source.strip_prefix(&self.root_dir).ok()?;
                if rest.file_name()? != "home" {
                    return None;
                }
                name(rest.parent()?)
            })
        })
    }

    /// Kill what [`Self::bwrap_processes`] finds for `id`: each process's children first (a
    /// bwrap's child is the sandbox's init, whose death ends the whole pid namespace), then the
    /// process itself.
    async fn kill_strays(&self, id: &str) -> Result<()> {
        for (_, process) in self.bwrap_processes().into_iter().filter(|(i, _)| i == id) {
            for child in process.children() {
                child.kill_and_wait(KILL_TIMEOUT).await?;
            }
            process.kill_and_wait(KILL_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Create a sandbox directory (`<root>/<id>`, or a warm sandbox's under `.pool`) and its
    /// home.
    fn prepare_dirs(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(&self.root_dir)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        // The home is written by the sandbox: never follow what may be a symlink it made.
        // `create_dir` does not follow a final symlink, and `workspace` is only created when
        // nothing at all is there (the init recreates it from inside if needed).
        let home = dir.join("home");
        if !home.exists() {
            std::fs::create_dir(&home)?;
        }
        let workspace = home.join("workspace");
        if let Err(e) = std::fs::symlink_metadata(&workspace) {
            if e.kind() == io::ErrorKind::NotFound {
                std::fs::create_dir(&workspace)?;
            }
        }
        Ok(())
    }

    /// bubblewrap's arguments. All of them are world-readable in `/proc/<pid>/cmdline`: paths
    /// and constants only.
    fn bwrap_args(
        &self,
        network: NetworkMode,
        dir: &Path,
        etc_dir: &Path,
        tmpfs_dirs: &[String],
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
            args.extend(items.iter().map(|s| s.as_ref().to_os_string()));
        };
        // User, pid, ipc, uts, mount, cgroup and net namespaces; `--share-net` keeps the host's
        // network for `host` mode.
        push(&[&"--unshare-all"]);
        // The sandbox may not make user namespaces of its own: each one hands out a full set of
        // capabilities over new namespaces, the kernel's largest attack surface for an
        // unprivileged process. (`--disable-userns` wants `--unshare-user` spelled out.)
        push(&[&"--unshare-user", &"--disable-userns"]);
        if network == NetworkMode::Host {
            push(&[&"--share-net"]);
        }
        let uid = SANDBOX_ID.to_string();
        push(&[&"--uid", &uid, &"--gid", &uid, &"--hostname", &"amika"]);
        // --new-session: no controlling terminal to inject keystrokes into (CVE-2017-5226).
        // --as-pid-1: our init is pid 1 and reaps orphans itself; bwrap's info then gives its pid.
        push(&[&"--new-session", &"--as-pid-1"]);
        push(&[&"--ro-bind", &"/usr", &"/usr"]);
        for (target, link) in [
            ("usr/bin", "/bin"),
            ("usr/sbin", "/sbin"),
            ("usr/lib", "/lib"),
            ("usr/lib64", "/lib64"),
        ] {
            push(&[&"--symlink", &target, &link]);
        }
        // The curated /etc of this network mode (see `etc`): one mount.
        push(&[&"--ro-bind", &etc_dir, &"/etc"]);
        push(&[&"--dev", &"/dev", &"--proc", &"/proc"]);
        // Sandbox processes are the server's uid on the host (that is how an unprivileged user
        // namespace maps them), and sysctl files and the sysrq trigger check only that uid, not a
        // capability: writable, they would let a sandbox retune or reboot the host. bwrap covers
        // them itself only when *it* can write them at setup, which it cannot here.
        push(&[&"--ro-bind", &"/proc/sys", &"/proc/sys"]);
        push(&[
            &"--ro-bind-try",
            &"/proc/sysrq-trigger",
            &"/proc/sysrq-trigger",
        ]);
        push(&[&"--perms", &"1777", &"--tmpfs", &"/tmp"]);
        push(&[&"--bind", &dir.join("home"), &HOME]);
        // Credential files go into a tmpfs over their directory: memory only, never the host's
        // disk (the mount point itself is an empty directory in the persistent home).
        for rel in tmpfs_dirs {
            let target = format!("{HOME}/{rel}");
            push(&[&"--perms", &"0700", &"--tmpfs", &target]);
        }
        // The root is bwrap's own tmpfs (it holds `/etc` and the mount points): made read-only
        // last, so that the sandbox writes only in its home, its workspace, `/tmp` and `/dev`
        // (a fresh tmpfs with `shm`) — what it writes elsewhere would vanish at the next start
        // anyway, and a read-only `/etc` cannot be edited to confuse the sandbox's own tools.
        push(&[&"--remount-ro", &"/"]);
        push(&[&"--chdir", &HOME]);
        // bwrap reports the init's host pid on its stdout.
        push(&[&"--info-fd", &"1"]);
        push(&[
            &"--",
            &"/bin/sh",
            &"-c",
            &INIT_STAGE1,
            &"amika-setup",
            &INIT_STAGE2,
        ]);
        args
    }

    async fn start_locked(&self, spec: &SandboxSpec, injection: Injection) -> Result<()> {
        let id = spec.id.as_str();
        let failed = |reason: String| ProviderError::StartFailed {
            id: id.to_owned(),
            reason,
        };

        // A previous run: refuse if alive, clean up what is left of it otherwise.
        let dir = self.sandbox_dir(id);
        if let Some(record) = self.read_record(id)? {
            if record.init.is_alive() {
                return Err(failed("it is already running".into()));
            }
            self.teardown(&dir, &record).await?;
        }
        // A sandbox that never ran here: a warm one can serve it.
        let fresh = !dir.exists();

        if spec.network == NetworkMode::Egress && !is_executable(&self.tools.slirp4netns) {
            return Err(ProviderError::Unavailable(
                "slirp4netns is not installed: run `apt-get install -y slirp4netns`".into(),
            ));
        }
        let limited = spec.memory_mib.is_some() || spec.pids.is_some();
        if let (true, cgroup::Layout::Unavailable(reason)) = (limited, self.cgroup_layout()) {
            return Err(ProviderError::Unavailable(format!(
                "cannot enforce memory/pids limits: {reason}"
            )));
        }
        let shape = Shape {
            network: spec.network,
            tmpfs_dirs: script::tmpfs_dirs(
                injection.files.iter().map(|f| f.relative_path.as_str()),
            ),
            limited,
        };

        // The injection script: exports, files, then the commit line. Zeroized when dropped.
        let mut init_script = Zeroizing::new(Vec::new());
        for env in &injection.env {
            script::push_export(&mut init_script, &env.name, env.value.expose_secret());
        }
        for file in &injection.files {
            let path = format!("{HOME}/{}", file.relative_path);
            script::push_write_file(&mut init_script, &path, file.contents.expose_secret());
        }
        init_script.extend_from_slice(INIT_COMMIT);
        let redactor = RedactionSet::from_injection(&injection).into_redactor();
        drop(injection);

        let warm = if fresh { self.pool.take(&shape) } else { None };
        let launched = match warm {
            Some(parked) => self.claim(parked, &dir, spec, &shape).await,
            None => self.cold_start(&dir, spec, &shape).await,
        };
        if fresh {
            self.refill(shape);
        }
        let launched = match launched {
            Ok(launched) => launched,
            Err(reason) => {
                let _ = cgroup::remove(&self.cgroup_layout().dirs(id)).await;
                return Err(failed(reason));
            }
        };
        self.commit(&dir, launched, init_script, &redactor)
            .await
            .map_err(failed)
    }

    /// Turn a warm sandbox into sandbox `dir`: its directory and its cgroups take the sandbox's
    /// name, and the cgroups get its limits — before the script gives it anything to run. A
    /// warm sandbox that cannot be moved into place is let go and a cold one started instead.
    async fn claim(
        &self,
        parked: Parked,
        dir: &Path,
        spec: &SandboxSpec,
        shape: &Shape,
    ) -> std::result::Result<Launched, String> {
        let moved = if parked.launched.record.init.is_alive() {
            std::fs::rename(&parked.dir, dir).map_err(|e| e.to_string())
        } else {
            // Killed while it waited (by hand, the OOM killer of the host, ...).
            Err("it died while it waited".into())
        };
        if let Err(why) = moved {
            tracing::warn!(slot = %parked.dir.display(), %why, "cannot claim a warm sandbox; starting a cold one");
            parked.discard();
            return self.cold_start(dir, spec, shape).await;
        }
        // bwrap's command line still names the slot: a link from the slot to the sandbox keeps
        // the process scan (`bwrap_processes`) able to tell whose processes they are.
        if let Err(e) = std::os::unix::fs::symlink(Path::new("..").join(&spec.id), &parked.dir) {
            tracing::warn!(slot = %parked.dir.display(), error = %e, "cannot link a claimed warm sandbox's slot");
        }
        let mut launched = parked.launched;
        let layout = self.cgroup_layout();
        let adopted = if shape.limited {
            layout.adopt(
                &launched.record.cgroups,
                &spec.id,
                spec.memory_mib,
                spec.pids,
            )
        } else {
            Ok(Vec::new())
        };
        let recorded = adopted.and_then(|cgroups| {
            launched.record.cgroups = cgroups;
            self.record_start(dir, &launched.record)
        });
        if let Err(reason) = recorded {
            self.abandon(dir, launched).await;
            return Err(reason);
        }
        Ok(launched)
    }

    /// Start sandbox `dir` from nothing: its cgroups, then [`Self::launch_in`].
    async fn cold_start(
        &self,
        dir: &Path,
        spec: &SandboxSpec,
        shape: &Shape,
    ) -> std::result::Result<Launched, String> {
        let cgroups = if shape.limited {
            self.cgroup_layout()
                .create(&spec.id, spec.memory_mib, spec.pids)?
        } else {
            Vec::new()
        };
        self.launch_in(dir, shape, cgroups).await
    }

    /// The sandbox's directories, then bubblewrap (in `cgroups`).
    async fn launch_in(
        &self,
        dir: &Path,
        shape: &Shape,
        cgroups: Vec<PathBuf>,
    ) -> std::result::Result<Launched, String> {
        self.prepare_dirs(dir).map_err(|e| e.to_string())?;
        for rel in &shape.tmpfs_dirs {
            make_mount_point(&dir.join("home"), rel)?;
        }
        self.launch(dir, shape.network, &shape.tmpfs_dirs, cgroups)
            .await
    }

    /// Start bubblewrap for the sandbox in `dir` (prepared) and record its processes; the
    /// sandbox then waits for its injection script (see [`Self::commit`]). On failure nothing is
    /// left running; the caller removes the cgroups it made.
    async fn launch(
        &self,
        dir: &Path,
        network: NetworkMode,
        tmpfs_dirs: &[String],
        cgroups: Vec<PathBuf>,
    ) -> std::result::Result<Launched, String> {
        // The egress helper's exit fd: one end is inherited by bwrap and the init, the other goes
        // to slirp4netns, which exits when every holder of the first end is gone — i.e. when the
        // sandbox dies, even if no server is around to stop it.
        let exit_pair = if network == NetworkMode::Egress {
            Some(std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?)
        } else {
            None
        };

        let etc_dir = self
            .etc
            .dir(network)
            .map_err(|e| format!("cannot prepare the sandbox's /etc: {e}"))?;
        let mut cmd = Command::new(&self.tools.bwrap);
        cmd.args(self.bwrap_args(network, dir, &etc_dir, tmpfs_dirs))
            .env_clear()
            .envs(BASE_ENV.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        proc::install(
            &mut cmd,
            ChildSetup {
                join_cgroups: cgroups.iter().map(|d| d.join("cgroup.procs")).collect(),
                keep_fds: exit_pair.iter().map(|(keep, _)| keep.as_raw_fd()).collect(),
            },
        )
        .map_err(|e| e.to_string())?;
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.tools.bwrap.display()))?;
        // Only bwrap (and through it the init) may hold the sandbox's end of the exit pair.
        let exit_for_slirp = exit_pair.map(|(keep, other)| {
            drop(keep);
            other
        });
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));

        // The pids, recorded before the sandbox gets anything to run: until the commit line of
        // the script arrives, the init waits on its stdin, and if this server dies first the pipe
        // closes and the init exits by itself. So every sandbox that can outlive this server has
        // a `state.json` that a restarted one finds.
        let info = tokio::time::timeout(START_TIMEOUT, read_info(&mut stdout))
            .await
            .unwrap_or_else(|_| Err(format!("not started within {START_TIMEOUT:?}")));
        let recorded = info.and_then(|info| {
            let bwrap = ProcRef::of(child.id().map(|p| p as i32).unwrap_or(-1));
            let init = ProcRef::of(info.child_pid);
            let record = RunRecord {
                bwrap: bwrap.map_err(|e| format!("bubblewrap exited at once: {e}"))?,
                init: init.map_err(|e| format!("the sandbox's init exited at once: {e}"))?,
                slirp4netns: None,
                cgroups,
            };
            self.record_start(dir, &record)?;
            Ok(record)
        });
        let record = match recorded {
            Ok(record) => record,
            Err(reason) => {
                drop(stdin);
                let _ = child.start_kill();
                let _ = child.wait().await;
                let _ = std::fs::remove_file(dir.join(STATE_FILE));
                // Nothing was injected yet: nothing to redact.
                return Err(explain(reason, Vec::new(), &mut stderr, &Redactor::default()).await);
            }
        };
        let mut launched = Launched {
            child,
            stdin,
            stdout,
            stderr,
            record,
        };
        // bwrap reports the pid before it sets up the mounts; only once the init runs is the
        // sandbox's directory no longer looked up by path (a warm one is then renamed).
        let mut seen = Vec::new();
        let started = tokio::time::timeout(
            START_TIMEOUT,
            wait_line(&mut launched.stderr, &mut seen, STARTED_LINE),
        )
        .await
        .unwrap_or_else(|_| Err(format!("not started within {START_TIMEOUT:?}")));
        if let Err(reason) = started {
            let reason = explain(reason, seen, &mut launched.stderr, &Redactor::default()).await;
            self.abandon(dir, launched).await;
            return Err(reason);
        }
        if let Some(exit_fd) = exit_for_slirp {
            let slirp = self
                .start_slirp4netns(dir, &launched.record, exit_fd)
                .await
                .and_then(|slirp| {
                    launched.record.slirp4netns = Some(slirp);
                    self.record_start(dir, &launched.record)
                });
            if let Err(reason) = slirp {
                self.abandon(dir, launched).await;
                return Err(reason);
            }
        }
        Ok(launched)
    }

    /// Send the injection script (ending in the commit line) and wait until the sandbox is
    /// ready. On failure the sandbox is torn down.
    async fn commit(
        &self,
        dir: &Path,
        launched: Launched,
        script: Zeroizing<Vec<u8>>,
        redactor: &Redactor,
    ) -> std::result::Result<(), String> {
        let Launched {
            mut child,
            mut stdin,
            stdout,
            mut stderr,
            record,
        } = launched;
        // Written concurrently with the sandbox reading it: a pipe holds 64 KiB, the script can
        // be larger (credential files).
        tokio::spawn(async move {
            let _ = stdin.write_all(&script).await;
        });
        let mut setup_output = Vec::new();
        let ready = tokio::time::timeout(
            START_TIMEOUT,
            wait_line(&mut stderr, &mut setup_output, READY_LINE),
        )
        .await
        .unwrap_or_else(|_| Err(format!("not ready within {START_TIMEOUT:?}")));
        if let Err(reason) = ready {
            self.end(dir, &record, child).await;
            return Err(explain(reason, setup_output, &mut stderr, redactor).await);
        }
        // Reap bwrap whenever it exits; the sandbox does not depend on this task (or on this
        // server process) staying around.
        tokio::spawn(async move {
            let _ = child.wait().await;
            drop(stdout);
            drop(stderr);
        });
        Ok(())
    }

    /// Tear down a launched sandbox that will not be committed.
    async fn abandon(&self, dir: &Path, launched: Launched) {
        let Launched {
            child,
            stdin,
            record,
            ..
        } = launched;
        drop(stdin);
        self.end(dir, &record, child).await;
    }

    /// Kill a started sandbox's processes (see [`Self::teardown`]) and reap its bwrap.
    async fn end(&self, dir: &Path, record: &RunRecord, mut bwrap: Child) {
        let _ = self.teardown(dir, record).await;
        let _ = bwrap.start_kill();
        let _ = bwrap.wait().await;
    }

    /// After a sandbox of `shape` started, start one more of that shape in the background for
    /// the next create (see `pool`).
    fn refill(&self, shape: Shape) {
        if !self.pool.want(&shape) {
            return;
        }
        let provider = self.clone();
        tokio::spawn(async move {
            // Not while the new sandbox's first commands run: on a small machine the start
            // would slow them down (and the next create rarely follows within this delay).
            tokio::time::sleep(REFILL_DELAY).await;
            match provider.park(&shape).await {
                Ok(parked) => provider.pool.put(&shape, parked),
                Err(reason) => {
                    provider.pool.start_failed(&shape);
                    tracing::warn!(%reason, "cannot start a warm sandbox");
                }
            }
        });
    }

    /// Once per provider: remove what warm sandboxes of an earlier server left. Those that were
    /// waiting ended with it (their stdin closed), but one that server was still starting can be
    /// stuck for good (bwrap's child waits for a bwrap that died writing `--info-fd` to a gone
    /// reader: see [`Self::bwrap_processes`]); it is killed. Claimed slots (links) stay while
    /// their sandbox does; this provider's own slots are left alone.
    async fn sweep_pool(&self) {
        if self.pool_swept.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool_dir = self.root_dir.join(POOL_DIR);
        let own = format!("{}-", self.instance);
        let stale = |slot: &str| !slot.starts_with(&own) && !pool_dir.join(slot).is_symlink();
        for (slot, process) in self.bwrap_slots() {
            if stale(&slot) {
                for child in process.children() {
                    let _ = child.kill_and_wait(KILL_TIMEOUT).await;
                }
                let _ = process.kill_and_wait(KILL_TIMEOUT).await;
            }
        }
        pool::remove_stale(&pool_dir, self.cgroup_layout(), &own);
    }

    /// Host processes with bubblewrap's command line for a warm sandbox slot, with the slot.
    fn bwrap_slots(&self) -> Vec<(String, ProcRef)> {
        self.bwrap_bound(|dir| {
            let slot = dir.strip_prefix(POOL_DIR).ok()?;
            (slot.components().count() == 1).then(|| slot.to_str().map(str::to_owned))?
        })
    }

    /// Start a warm sandbox of `shape` under `.pool`.
    async fn park(&self, shape: &Shape) -> std::result::Result<Parked, String> {
        static SLOTS: AtomicU64 = AtomicU64::new(0);
        self.sweep_pool().await;
        let layout = self.cgroup_layout();
        let slot = format!(
            "{}-{:x}",
            self.instance,
            SLOTS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.root_dir.join(POOL_DIR).join(&slot);
        // Limits come with the claim; the cgroups exist now so that joining them (slow: see
        // `cgroup::Layout::adopt`) happens here, off the create's path.
        let cgroups = if shape.limited {
            layout.create(&pool::cgroup_name(&slot), None, None)?
        } else {
            Vec::new()
        };
        match self.launch_in(&dir, shape, cgroups.clone()).await {
            Ok(launched) => Ok(Parked { dir, launched }),
            Err(reason) => {
                let _ = cgroup::remove(&cgroups).await;
                let _ = std::fs::remove_dir_all(&dir);
                Err(reason)
            }
        }
    }

    /// Give the sandbox's network namespace a user-mode NAT to the outside (egress mode).
    async fn start_slirp4netns(
        &self,
        dir: &Path,
        record: &RunRecord,
        exit_fd: std::os::unix::net::UnixStream,
    ) -> std::result::Result<ProcRef, String> {
        let (ready_read, ready_write) =
            std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
        let log_path = dir.join("slirp4netns.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.tools.slirp4netns);
        cmd.arg("--configure")
            .arg("--mtu=65520")
            // No way from the sandbox to the host's 127.0.0.1 services (the server among them).
            .arg("--disable-host-loopback")
            .arg("--enable-sandbox")
            .arg("--enable-seccomp")
            .arg(format!("--ready-fd={}", ready_write.as_raw_fd()))
            .arg(format!("--exit-fd={}", exit_fd.as_raw_fd()));
        // bwrap started by real root creates the namespaces owned by the *initial* user
        // namespace (and the user namespace after them): joining the sandbox's user namespace
        // first, slirp4netns' default, would lose the right to enter its network namespace.
        // Naming our own user namespace makes that join a no-op.
        if rustix::process::geteuid().is_root() {
            cmd.arg("--userns-path=/proc/self/ns/user");
        }
        cmd.arg(record.init.pid.to_string())
            .arg("tap0")
            .env_clear()
            .envs(BASE_ENV.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        proc::install(
            &mut cmd,
            ChildSetup {
                join_cgroups: Vec::new(),
                keep_fds: vec![ready_write.as_raw_fd(), exit_fd.as_raw_fd()],
            },
        )
        .map_err(|e| e.to_string())?;
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.tools.slirp4netns.display()))?;
        drop(ready_write);
        drop(exit_fd);
        let slirp = child
            .id()
            .ok_or_else(|| "slirp4netns exited at once".to_string())
            .and_then(|pid| ProcRef::of(pid as i32).map_err(|e| e.to_string()));
        ready_read
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let mut ready_read =
            tokio::net::UnixStream::from_std(ready_read).map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        let ready = tokio::time::timeout(START_TIMEOUT, ready_read.read(&mut byte)).await;
        let slirp = match (ready, slirp) {
            (Ok(Ok(1)), Ok(slirp)) => slirp,
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "slirp4netns did not set up the network: {}",
                    log.trim()
                ));
            }
        };
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(slirp)
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
        let failed = |reason: String| ProviderError::StartFailed {
            id: spec.id.clone(),
            reason,
        };
        check_id(&spec.id).map_err(failed)?;
        self.check()?;
        for env in &injection.env {
            if !script::is_valid_env_name(&env.name) {
                return Err(failed(format!(
                    "invalid environment variable name {:?}",
                    env.name
                )));
            }
            if env.value.expose_secret().contains(&0) {
                return Err(failed(format!(
                    "the value of {} contains a NUL byte",
                    env.name
                )));
            }
        }
        for file in &injection.files {
            script::check_file_path(&file.relative_path).map_err(failed)?;
        }
        let lock = self.lock_for(&spec.id);
        let _guard = lock.lock().await;
        self.start_locked(spec, injection).await
    }

    async fn stop(&self, id: &str) -> Result<()> {
        if check_id(id).is_err() {
            return Ok(()); // nothing can exist under an invalid id
        }
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        self.stop_locked(id).await
    }

    async fn remove(&self, id: &str) -> Result<()> {
        if check_id(id).is_err() {
            return Ok(());
        }
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        match self.stop_locked(id).await {
            // An unreadable state file must not make a sandbox undeletable.
            Err(ProviderError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(sandbox = id, error = %e, "removing a sandbox whose state is unreadable");
            }
            other => other?,
        }
        pool::unlink_slots_of(&self.root_dir.join(POOL_DIR), id);
        // std's remove_dir_all does not follow symlinks, whatever the sandbox left in its home.
        match std::fs::remove_dir_all(self.sandbox_dir(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }

    async fn exec(&self, id: &str, spec: ExecSpec) -> Result<ExecHandle> {
        if spec.argv.is_empty() {
            return Err(ProviderError::InvalidCommand("the command is empty".into()));
        }
        let cwd = spec.cwd.as_deref().unwrap_or(WORKSPACE);
        if cwd.is_empty()
            || spec
                .argv
                .iter()
                .chain([&cwd.to_owned()])
                .any(|a| a.contains('\0'))
        {
            return Err(ProviderError::InvalidCommand(
                "the command or working directory contains a NUL byte (or the directory is empty)"
                    .into(),
            ));
        }
        let record = self.running_record(id)?;
        // The sandbox's environment, as its init was started with it (whichever provider
        // instance started it).
        let environ = Zeroizing::new(
            record
                .init
                .environ()
                .ok_or_else(|| ProviderError::NotRunning(id.to_owned()))?,
        );
        let env = enter::Environment::new(script::parse_environ(&environ));
        let init = record
            .init
            .pidfd()
            .ok_or_else(|| ProviderError::NotRunning(id.to_owned()))?;

        let mut cmd = Command::new(&spec.argv[0]);
        cmd.args(&spec.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        proc::install(
            &mut cmd,
            ChildSetup {
                join_cgroups: record
                    .cgroups
                    .iter()
                    .map(|d| d.join("cgroup.procs"))
                    .collect(),
                keep_fds: Vec::new(),
            },
        )?;
        let (mut report, report_write) = std::io::pipe()?;
        enter::install(
            &mut cmd,
            enter::Target {
                init,
                cwd: cwd.to_owned(),
                fallback_cwd: spec.cwd.is_none().then(|| HOME.to_owned()),
                env,
                report: report_write.into(),
                argv: spec.argv.clone(),
            },
        )?;
        let limits_before = cgroup::Events::read(&record.cgroups);
        let spawned = cmd.spawn();
        // The pipe's write end went with `cmd`'s setup; the report is complete now.
        drop(cmd);
        let command = enter::reported_pid(&mut report);
        let mut entering = match spawned {
            Ok(child) => child,
            Err(e) => {
                // The command started and its exec failed: it is this process's child.
                if let Some(pid) = command {
                    enter::reap(pid);
                }
                let Some((code, message)) = enter::not_runnable(&spec.argv[0], &e) else {
                    return Err(e.into());
                };
                // What a shell would answer, as the exec's own output.
                let (tx, rx) = mpsc::channel(2);
                let _ = tx.try_send(ExecEvent::Stderr(message.into_bytes()));
                let _ = tx.try_send(ExecEvent::Exit(code));
                return Ok(ExecHandle {
                    events: rx,
                    _guard: Box::new(()),
                });
            }
        };
        // A new session: the command's process group is the entering process's pid (it stays
        // the group's id after that process exited, as long as the command runs).
        let pgid = entering.id().map(|p| p as i32).unwrap_or(-1);
        let stdout = entering.stdout.take().expect("piped stdout");
        let stderr = entering.stderr.take().expect("piped stderr");
        tokio::spawn(async move {
            let _ = entering.wait().await;
        });
        let command = match command.map(enter::Running::new) {
            Some(Ok(command)) => command,
            Some(Err(e)) => return Err(e.into()),
            None => {
                return Err(ProviderError::Io(io::Error::other(
                    "the command did not start in the sandbox",
                )))
            }
        };

        let (tx, rx) = mpsc::channel(64);
        let done = Arc::new(AtomicBool::new(false));
        let limits = LimitWatch {
            before: limits_before,
            cgroups: record.cgroups,
        };
        tokio::spawn(run_exec(
            command,
            stdout,
            stderr,
            tx,
            spec.timeout,
            pgid,
            done.clone(),
            limits,
        ));
        Ok(ExecHandle {
            events: rx,
            _guard: Box::new(KillGroupOnDrop { pgid, done }),
        })
    }

    async fn status(&self, id: &str) -> Result<RuntimeStatus> {
        if check_id(id).is_err() {
            return Ok(RuntimeStatus::NotRunning {
                reason: Some("invalid sandbox id".into()),
            });
        }
        Ok(match self.read_record(id)? {
            None => RuntimeStatus::NotRunning { reason: None },
            Some(record) if record.init.is_alive() => RuntimeStatus::Running,
            Some(record) => RuntimeStatus::NotRunning {
                reason: Some(if cgroup::oom_killed(&record.cgroups) {
                    "killed by the OOM killer".into()
                } else {
                    "the sandbox's init process exited".into()
                }),
            },
        })
    }

    async fn list(&self) -> Result<Vec<String>> {
        // Listing is what reconciliation at a server's start does: leftovers of an earlier
        // server's warm sandboxes go then, not only with the first create.
        self.sweep_pool().await;
        let entries = match std::fs::read_dir(&self.root_dir) {
            Ok(entries) => Some(entries),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in entries.into_iter().flatten() {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str() {
                if check_id(name).is_ok() {
                    ids.push(name.to_owned());
                }
            }
        }
        // Processes whose directory is already gone count too: `remove` kills them.
        ids.extend(self.bwrap_processes().into_iter().map(|(id, _)| id));
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn root_dir(&self) -> Option<PathBuf> {
        Some(self.root_dir.clone())
    }

    fn is_settled(&self) -> bool {
        self.pool.is_settled()
    }
}

/// Kills an exec's whole process group if its handle is dropped before the command ended.
#[derive(Debug)]
struct KillGroupOnDrop {
    pgid: i32,
    done: Arc<AtomicBool>,
}

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if !self.done.load(Ordering::SeqCst) {
            proc::kill_group(self.pgid);
        }
    }
}

/// The sandbox's limit counters as an exec started, to tell afterwards whether a limit bit
/// while it ran.
#[derive(Debug)]
struct LimitWatch {
    cgroups: Vec<PathBuf>,
    before: cgroup::Events,
}

impl LimitWatch {
    /// A line for the exec's stderr per limit that was hit since the exec started. (Another
    /// exec running at the same time may have been the one that hit it: the note says what
    /// happened in the sandbox, not whose fault it was.)
    fn notes(&self) -> Vec<String> {
        let after = cgroup::Events::read(&self.cgroups);
        let mut notes = Vec::new();
        if after.oom_kills > self.before.oom_kills {
            notes.push(format!(
                "amika: the sandbox reached its memory limit: the OOM killer killed {} process(es)\n",
                after.oom_kills - self.before.oom_kills
            ));
        }
        if after.pids_max > self.before.pids_max {
            notes.push(format!(
                "amika: the sandbox reached its process limit: {} fork(s) refused\n",
                after.pids_max - self.before.pids_max
            ));
        }
        notes
    }
}

/// Relay an exec's output as it arrives, then its exit code.
#[allow(clippy::too_many_arguments)]
async fn run_exec(
    command: enter::Running,
    stdout: ChildStdout,
    stderr: ChildStderr,
    tx: mpsc::Sender<ExecEvent>,
    timeout: Option<Duration>,
    pgid: i32,
    done: Arc<AtomicBool>,
    limits: LimitWatch,
) {
    let out_task = tokio::spawn(forward(stdout, tx.clone(), ExecEvent::Stdout));
    let err_task = tokio::spawn(forward(stderr, tx.clone(), ExecEvent::Stderr));

    let waited = match timeout {
        Some(limit) => tokio::time::timeout(limit, command.wait()).await.ok(),
        None => Some(command.wait().await),
    };
    let timed_out = waited.is_none();
    let status = match waited {
        Some(status) => status.map_err(|_| ()),
        None => {
            // Timed out: kill the whole group (the entering process and the command's tree inside).
            proc::kill_group(pgid);
            command.kill();
            let _ = command.wait().await;
            Err(())
        }
    };
    let (out_abort, err_abort) = (out_task.abort_handle(), err_task.abort_handle());
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = out_task.await;
        let _ = err_task.await;
    })
    .await;
    if drained.is_err() {
        out_abort.abort();
        err_abort.abort();
    }
    done.store(true, Ordering::SeqCst);
    for note in limits.notes() {
        let _ = tx.send(ExecEvent::Stderr(note.into_bytes())).await;
    }
    let code = match (timed_out, status) {
        (true, _) => {
            let limit = timeout.unwrap_or_default();
            let note = format!("amika: command timed out after {limit:?} and was killed\n");
            let _ = tx.send(ExecEvent::Stderr(note.into_bytes())).await;
            TIMEOUT_EXIT_CODE
        }
        (false, Ok(code)) => code,
        (false, Err(())) => 255,
    };
    let _ = tx.send(ExecEvent::Exit(code)).await;
}

async fn forward<R: AsyncRead + Unpin>(
    mut reader: R,
    tx: mpsc::Sender<ExecEvent>,
    wrap: fn(Vec<u8>) -> ExecEvent,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send(wrap(buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// A failed start's reason with what bwrap and the setup shell said. Their messages name paths,
/// not values; redacted anyway.
async fn explain<R: AsyncRead + Unpin>(
    reason: String,
    mut seen: Vec<u8>,
    stderr: &mut BufReader<R>,
    redactor: &Redactor,
) -> String {
    let _ = tokio::time::timeout(Duration::from_secs(1), stderr.read_to_end(&mut seen)).await;
    let detail = redactor.redact(&seen);
    format!(
        "{reason}; bubblewrap said: {}",
        String::from_utf8_lossy(&detail).trim()
    )
}

/// Read bwrap's `--info-fd` JSON (it does not necessarily close the descriptor after it).
async fn read_info<R: AsyncRead + Unpin>(stdout: &mut R) -> std::result::Result<BwrapInfo, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stdout.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("bubblewrap exited before starting the sandbox".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match serde_json::from_slice::<BwrapInfo>(&buf) {
            Ok(info) => return Ok(info),
            Err(e) if e.is_eof() => continue,
            Err(e) => return Err(format!("unexpected bubblewrap info: {e}")),
        }
    }
}

/// Wait for one of the init's lines (`STARTED_LINE`, `READY_LINE`) on bwrap's stderr. Anything
/// else there is bwrap (or the injection script) failing.
async fn wait_line<R: AsyncRead + Unpin>(
    stderr: &mut BufReader<R>,
    seen: &mut Vec<u8>,
    expected: &[u8],
) -> std::result::Result<(), String> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = stderr
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the sandbox's init exited before it was ready".into());
        }
        if line.trim_ascii_end() == expected {
            return Ok(());
        }
        // Keep going: a failure ends with EOF, and is reported with what was seen.
        seen.extend_from_slice(&line);
    }
}

/// Make `home/rel` a real directory for bwrap to mount a tmpfs on. bwrap creates and resolves
/// mount points *before* it switches to the sandbox's root, so a symlink the sandbox left at
/// `~/.claude` (say, to `/root/x`) would make it create directories on the host. Every component
/// is therefore checked without following symlinks; a symlink is replaced by a directory (the
/// tmpfs hides whatever is there anyway). The sandbox is not running, so nothing races with this.
fn make_mount_point(home: &Path, rel: &str) -> std::result::Result<(), String> {
    let mut path = home.to_path_buf();
    for component in rel.split('/') {
        path.push(component);
        let replace = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => continue,
            Ok(m) if m.file_type().is_symlink() => true,
            Ok(_) => {
                return Err(format!(
                    "~/{rel} cannot hold injected files: {} is not a directory",
                    path.display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
        };
        if replace {
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        }
        std::fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Sandbox ids name directories and cgroups: `[A-Za-z0-9_.-]`, not starting with `.`, at most
/// 128 bytes.
fn check_id(id: &str) -> std::result::Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid sandbox id {id:?}"))
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

    /// Run the init's stage 1 on the host's `/bin/sh` with `script` on stdin, stage 2 being
    /// `echo stage2`: (exit code, stdout).
    fn run_stage1(script: &[u8]) -> (Option<i32>, String) {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", INIT_STAGE1, "amika-setup", "echo stage2 \"$V\""])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn an_init_whose_start_was_not_committed_exits_by_itself() {
        let mut full = Zeroizing::new(Vec::new());
        script::push_export(&mut full, "V", b"value");
        // An injected variable named like the commit cannot stand in for it.
        script::push_export(&mut full, "amika_committed", b"amika-committed");
        let body = full.len();
        full.extend_from_slice(INIT_COMMIT);
        assert_eq!(run_stage1(&full), (Some(0), "stage2 value\n".into()));
        // Every cut before the end (the server died while sending) ends the init instead.
        for cut in (0..full.len() - 1).filter(|c| *c % 7 == 0 || *c >= body) {
            let (code, out) = run_stage1(&full[..cut]);
            assert_ne!(code, Some(0), "cut at {cut}: {out}");
            assert!(!out.contains("stage2"), "cut at {cut} ran stage 2");
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

    #[test]
    fn bwrap_args_hold_no_secret_and_no_die_with_parent() {
        let provider = LocalProvider::new("/nonexistent".into());
        let args = provider.bwrap_args(
            NetworkMode::None,
            Path::new("/nonexistent/x"),
            Path::new("/nonexistent/.etc/v/none"),
            &[".claude".into()],
        );
        let joined: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(!joined
            .iter()
            .any(|a| a == "--die-with-parent" || a == "--setenv"));
        assert!(!joined.iter().any(|a| a == "--share-net"));
        let tmpfs = joined
            .iter()
            .position(|a| a == "/home/amika/.claude")
            .unwrap();
        assert_eq!(joined[tmpfs - 1], "--tmpfs");
        let home = joined.iter().position(|a| a == "/home/amika").unwrap();
        assert!(
            home < tmpfs,
            "the tmpfs must be mounted over the bound home, not under it"
        );
    }
}
