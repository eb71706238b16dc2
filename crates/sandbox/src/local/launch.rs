//! Launching bubblewrap for a sandbox: its directories and credential mount points, its command
//! line (paths and constants only: argv is world-readable), its two-stage init, and the record of
//! its processes — written before the init gets anything to run (see [`INIT_STAGE1`]). A
//! launched sandbox waits for its injection script (see `start`), or is parked as a warm one.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use amika_types::NetworkMode;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::error::StartError;
use super::pool::Shape;
use super::proc::{self, ChildSetup, ProcRef};
use super::record::{RunRecord, STATE_FILE};
use super::script::HOME;
use super::{rlimit, seccomp};
use super::{LocalProvider, BASE_ENV, START_TIMEOUT};
use crate::redact::RedactionSet;

/// The sandbox user's uid and gid inside the sandbox.
const SANDBOX_ID: u32 = 1000;
/// What the init prints on stderr once bubblewrap's setup is done and it waits for its script.
pub(super) const STARTED_LINE: &[u8] = b"amika-started";
/// What the init prints on stderr once the injected environment and files are in place.
pub(super) const READY_LINE: &[u8] = b"amika-ready";
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
pub(super) const INIT_STAGE1: &str = "set -e; \
    [ -d /home/amika/workspace ] || mkdir -p /home/amika/workspace 2>/dev/null || :; \
    cd /home/amika/workspace 2>/dev/null || cd /home/amika; \
    echo amika-started >&2; umask 077; . /dev/stdin; umask 022; \
    [ \"${2-}\" = amika-committed ] || exit 111; \
    exec /bin/sh -c \"$1\" amika-init";
/// The last line of every injection script (see [`INIT_STAGE1`]).
pub(super) const INIT_COMMIT: &[u8] = b"set -- \"$1\" amika-committed\n";
/// Stage 2, the long-lived init (pid 1 of the sandbox): report ready, let go of the pipes, sleep
/// forever. `wait` returns for any child, so orphans re-parented to pid 1 are reaped. Signals
/// from inside the sandbox cannot kill it (pid 1 without handlers); the host's SIGKILL can.
pub(super) const INIT_STAGE2: &str = "echo amika-ready >&2; exec </dev/null >/dev/null 2>&1; \
    while :; do sleep 3600 & wait; done";

/// A bubblewrap started and recorded, waiting for its injection script.
#[derive(Debug)]
pub(crate) struct Launched {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: BufReader<ChildStderr>,
    pub record: RunRecord,
}

/// What bwrap writes to `--info-fd`.
#[derive(Debug, Deserialize)]
struct BwrapInfo {
    #[serde(rename = "child-pid")]
    child_pid: i32,
}

impl LocalProvider {
    /// Create a sandbox directory (`<root>/<id>`, or a warm sandbox's under `.pool`) and its
    /// home.
    pub(super) fn prepare_dirs(&self, dir: &Path) -> io::Result<()> {
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
    pub(super) fn bwrap_args(&self, dir: &Path, etc_dir: &Path, shape: &Shape) -> Vec<OsString> {
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
        if shape.network == NetworkMode::Host {
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
        for rel in &shape.tmpfs_dirs {
            let target = format!("{HOME}/{rel}");
            push(&[&"--perms", &"0700", &"--tmpfs", &target]);
        }
        // The preset's layer: the host's directory, read-only (bwrap makes the mount point on
        // its tmpfs root). Its programs run with the host's `/usr` (e.g. `/usr/bin/node`).
        if let Some(layer) = &shape.preset {
            push(&[&"--ro-bind", layer, &super::PRESET_MOUNT]);
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

    /// The sandbox's directories, then bubblewrap (in `cgroups`).
    pub(super) async fn launch_in(
        &self,
        dir: &Path,
        shape: &Shape,
        cgroups: Vec<PathBuf>,
    ) -> Result<Launched, StartError> {
        self.prepare_dirs(dir).map_err(StartError::Io)?;
        for rel in &shape.tmpfs_dirs {
            make_mount_point(&dir.join("home"), rel)?;
        }
        self.launch(dir, shape, cgroups).await
    }

    /// Start bubblewrap for the sandbox in `dir` (prepared) and record its processes; the
    /// sandbox then waits for its injection script (see `start`'s `commit`). On failure nothing
    /// is left running; the caller removes the cgroups it made.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn launch(
        &self,
        dir: &Path,
        shape: &Shape,
        cgroups: Vec<PathBuf>,
    ) -> Result<Launched, StartError> {
        let network = shape.network;
        // The egress helper's exit fd: one end is inherited by bwrap and the init, the other goes
        // to slirp4netns, which exits when every holder of the first end is gone — i.e. when the
        // sandbox dies, even if no server is around to stop it.
        let exit_pair = if network == NetworkMode::Egress {
            Some(UnixStream::pair().map_err(StartError::Io)?)
        } else {
            None
        };
        let keep = exit_pair.as_ref().map(|(keep, _)| keep.as_raw_fd());
        let child = self.spawn_bwrap(dir, shape, &cgroups, keep)?;
        // Only bwrap (and through it the init) may hold the sandbox's end of the exit pair.
        let exit_for_slirp = exit_pair.map(|(keep, other)| {
            drop(keep);
            other
        });
        let mut launched = self.record_launch(dir, child, cgroups).await?;
        // bwrap reports the pid before it sets up the mounts; only once the init runs is the
        // sandbox's directory no longer looked up by path (a warm one is then renamed).
        let mut seen = Vec::new();
        let started = tokio::time::timeout(
            START_TIMEOUT,
            wait_line(&mut launched.stderr, &mut seen, STARTED_LINE),
        )
        .await
        .unwrap_or(Err(StartError::NotStarted(START_TIMEOUT)));
        if let Err(reason) = started {
            let reason = explain(reason, seen, &mut launched.stderr, &RedactionSet::new()).await;
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

    /// Spawn bubblewrap for the sandbox in `dir`, in `cgroups`, with only `keep_fd` (the egress
    /// helper's exit fd) inherited beyond its pipes.
    #[tracing::instrument(level = "debug", skip_all)]
    fn spawn_bwrap(
        &self,
        dir: &Path,
        shape: &Shape,
        cgroups: &[PathBuf],
        keep_fd: Option<RawFd>,
    ) -> Result<Child, StartError> {
        let etc_dir = self.etc.dir(shape.network).map_err(StartError::Etc)?;
        // The default seccomp filter (see `seccomp`), read by bwrap from a pipe it inherits.
        let filter = {
            use std::io::Write;
            let (reader, mut writer) = std::io::pipe().map_err(StartError::Io)?;
            writer
                .write_all(&seccomp::program_bytes())
                .map_err(StartError::Io)?;
            reader
        };
        let mut cmd = Command::new(&self.tools.bwrap);
        cmd.arg("--seccomp")
            .arg(filter.as_raw_fd().to_string())
            .args(self.bwrap_args(dir, &etc_dir, shape))
            .env_clear()
            .envs(BASE_ENV.iter().copied());
        // bwrap's environment is the init's, hence every exec's: with a preset, its `bin` is on
        // `PATH` (a constant too).
        if shape.preset.is_some() {
            cmd.env("PATH", super::PRESET_PATH);
        }
        cmd.current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        proc::install(
            &mut cmd,
            ChildSetup {
                join_cgroups: cgroups.iter().map(|d| d.join("cgroup.procs")).collect(),
                keep_fds: keep_fd.into_iter().chain([filter.as_raw_fd()]).collect(),
                rlimits: rlimit::prepare(&rlimit::for_init()).map_err(StartError::Io)?,
            },
        )
        .map_err(StartError::Io)?;
        cmd.spawn().map_err(|source| StartError::Spawn {
            program: self.tools.bwrap.clone(),
            source: name_what_is_missing(source, dir, cgroups),
        })
    }

    /// Read the init's pid from bwrap and record both in `state.json` — before the sandbox
    /// gets anything to run: until the commit line of the script arrives, the init waits on its
    /// stdin, and if this server dies first the pipe closes and the init exits by itself. So
    /// every sandbox that can outlive this server has a `state.json` that a restarted one finds.
    /// On failure bwrap is killed and no record is left.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_launch(
        &self,
        dir: &Path,
        mut child: Child,
        cgroups: Vec<PathBuf>,
    ) -> Result<Launched, StartError> {
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let info = tokio::time::timeout(START_TIMEOUT, read_info(&mut stdout))
            .await
            .unwrap_or(Err(StartError::NotStarted(START_TIMEOUT)));
        let recorded = info.and_then(|info| {
            let bwrap = ProcRef::of(child.id().map(|p| p as i32).unwrap_or(-1));
            let init = ProcRef::of(info.child_pid);
            let record = RunRecord {
                bwrap: bwrap.map_err(StartError::BwrapGone)?,
                init: init.map_err(StartError::InitGone)?,
                slirp4netns: None,
                cgroups,
            };
            self.record_start(dir, &record)?;
            Ok(record)
        });
        match recorded {
            Ok(record) => Ok(Launched {
                child,
                stdin,
                stdout,
                stderr,
                record,
            }),
            Err(reason) => {
                drop(stdin);
                let _ = child.start_kill();
                let _ = child.wait().await;
                let _ = std::fs::remove_file(dir.join(STATE_FILE));
                // Nothing was injected yet: nothing to redact.
                Err(explain(reason, Vec::new(), &mut stderr, &RedactionSet::new()).await)
            }
        }
    }
}

/// A failed start's reason with what bwrap and the setup shell said. Their messages name paths,
/// not values; redacted anyway.
pub(super) async fn explain<R: AsyncRead + Unpin>(
    reason: StartError,
    mut seen: Vec<u8>,
    stderr: &mut BufReader<R>,
    redactions: &RedactionSet,
) -> StartError {
    let _ = tokio::time::timeout(Duration::from_secs(1), stderr.read_to_end(&mut seen)).await;
    let detail = redactions.redact(&seen);
    StartError::Explained {
        reason: Box::new(reason),
        said: String::from_utf8_lossy(&detail).trim().to_owned(),
    }
}

/// Read bwrap's `--info-fd` JSON (it does not necessarily close the descriptor after it).
async fn read_info<R: AsyncRead + Unpin>(stdout: &mut R) -> Result<BwrapInfo, StartError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stdout.read(&mut chunk).await.map_err(StartError::Io)?;
        if n == 0 {
            return Err(StartError::BwrapExitedEarly);
        }
        buf.extend_from_slice(&chunk[..n]);
        match serde_json::from_slice::<BwrapInfo>(&buf) {
            Ok(info) => return Ok(info),
            Err(e) if e.is_eof() => continue,
            Err(e) => return Err(StartError::BwrapInfo(e)),
        }
    }
}

/// Wait for one of the init's lines (`STARTED_LINE`, `READY_LINE`) on bwrap's stderr. Anything
/// else there is bwrap (or the injection script) failing.
pub(super) async fn wait_line<R: AsyncRead + Unpin>(
    stderr: &mut BufReader<R>,
    seen: &mut Vec<u8>,
    expected: &[u8],
) -> Result<(), StartError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = stderr
            .read_until(b'\n', &mut line)
            .await
            .map_err(StartError::Io)?;
        if n == 0 {
            return Err(StartError::InitExited);
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
pub(super) fn make_mount_point(home: &Path, rel: &str) -> Result<(), StartError> {
    let mut path = home.to_path_buf();
    for component in rel.split('/') {
        path.push(component);
        let replace = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => continue,
            Ok(m) if m.file_type().is_symlink() => true,
            Ok(_) => {
                return Err(StartError::NotADirectory {
                    rel: rel.to_owned(),
                    path,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(source) => return Err(StartError::Inspect { path, source }),
        };
        if replace {
            std::fs::remove_file(&path).map_err(StartError::Io)?;
        }
        if let Err(source) = std::fs::create_dir(&path) {
            return Err(StartError::CreateDir { path, source });
        }
    }
    Ok(())
}

/// A spawn's `ENOENT` can come from bwrap itself, from the child's `chdir` into the sandbox's
/// directory, or from joining a cgroup in `pre_exec`; std does not say which. Name what is gone.
fn name_what_is_missing(e: std::io::Error, dir: &Path, cgroups: &[PathBuf]) -> std::io::Error {
    if e.kind() != std::io::ErrorKind::NotFound {
        return e;
    }
    let missing: Vec<String> = std::iter::once(dir.to_path_buf())
        .chain(cgroups.iter().map(|c| c.join("cgroup.procs")))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return e;
    }
    std::io::Error::new(e.kind(), format!("{e} (gone: {})", missing.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::script;
    use zeroize::Zeroizing;

    #[test]
    fn a_spawn_that_found_nothing_names_what_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let (dir, cgroup) = (root.path().join("slot"), root.path().join("cg"));
        std::fs::create_dir(&cgroup).unwrap();
        std::fs::write(cgroup.join("cgroup.procs"), "").unwrap();
        let enoent = || std::io::Error::from_raw_os_error(libc::ENOENT);
        let named = name_what_is_missing(enoent(), &dir, std::slice::from_ref(&cgroup));
        assert_eq!(named.kind(), std::io::ErrorKind::NotFound);
        assert!(
            named
                .to_string()
                .ends_with(&format!("(gone: {})", dir.display())),
            "{named}"
        );
        // Everything there: the error as it was; another error: untouched.
        std::fs::create_dir(&dir).unwrap();
        let plain = name_what_is_missing(enoent(), &dir, &[cgroup]);
        assert_eq!(plain.to_string(), enoent().to_string());
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(
            name_what_is_missing(eperm, &root.path().join("x"), &[]).kind(),
            std::io::ErrorKind::PermissionDenied
        );
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
    fn bwrap_args_hold_no_secret_and_no_die_with_parent() {
        let provider = LocalProvider::new("/nonexistent".into());
        let args = provider.bwrap_args(
            Path::new("/nonexistent/x"),
            Path::new("/nonexistent/.etc/v/none"),
            &Shape {
                network: NetworkMode::None,
                tmpfs_dirs: vec![".claude".into()],
                limited: false,
                preset: None,
                preset_identity: None,
            },
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

    #[test]
    fn a_preset_layer_is_bound_read_only_before_the_root_is_remounted() {
        let provider = LocalProvider::new("/nonexistent".into());
        let shape = |preset: Option<PathBuf>| Shape {
            network: NetworkMode::None,
            tmpfs_dirs: Vec::new(),
            limited: false,
            preset,
            preset_identity: None,
        };
        let args: Vec<String> = provider
            .bwrap_args(
                Path::new("/nonexistent/x"),
                Path::new("/nonexistent/.etc/v/none"),
                &shape(Some("/data/presets/coder/abc".into())),
            )
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = args
            .iter()
            .position(|a| a == super::super::PRESET_MOUNT)
            .unwrap();
        assert_eq!(args[at - 2..at], ["--ro-bind", "/data/presets/coder/abc"]);
        let remount = args.iter().position(|a| a == "--remount-ro").unwrap();
        assert!(at < remount);
        let none = provider.bwrap_args(
            Path::new("/nonexistent/x"),
            Path::new("/nonexistent/.etc/v/none"),
            &shape(None),
        );
        assert!(!none.iter().any(|a| a == super::super::PRESET_MOUNT));
    }
}
