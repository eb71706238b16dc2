//! Host-side process plumbing for the local provider: the hook that runs between `fork` and
//! `exec` of every host process the provider starts (one of the crate's three audited `unsafe`
//! sites: see the crate docs), and process identities that stay meaningful across a server
//! restart.

use std::ffi::CString;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::secret_buf;

/// What every host process the provider spawns (bwrap, an exec, slirp4netns) gets set up in the
/// child, between `fork` and `exec`.
#[derive(Debug, Default)]
pub(crate) struct ChildSetup {
    /// `cgroup.procs` files to join, so the limits hold from the first instruction and for
    /// everything the process forks (joining from the parent after spawn would race with forks).
    pub join_cgroups: Vec<PathBuf>,
    /// Descriptors the child must inherit (e.g. slirp4netns' ready and exit fds); all others
    /// above stderr are closed on exec.
    pub keep_fds: Vec<RawFd>,
    /// Resource limits to set, prepared by [`super::rlimit::prepare`] (sandbox processes only;
    /// host helpers keep the server's).
    pub rlimits: Vec<super::rlimit::Limit>,
}

/// Install [`ChildSetup`] on `cmd`. In the child, before exec:
/// - `setsid()`: a new session and process group. The process is not killed with the server's
///   terminal or process group (sandboxes outlive a server restart), a timeout can kill the whole
///   group, and — the reason it is a session, not just a group — a sandboxed process can never
///   reach the server's controlling terminal (`/dev/tty` + `TIOCSTI` injection, CVE-2017-5226).
/// - every descriptor above 2 is marked close-on-exec, except `keep_fds`: descriptors the server
///   itself inherited without `CLOEXEC` must not leak into a sandbox (`bwrap` and an exec pass
///   their open descriptors on to the sandboxed program).
/// - join the cgroups by writing `0` ("the writing process") to each `cgroup.procs`.
/// - set the resource limits (see `rlimit`).
#[allow(unsafe_code)]
pub(crate) fn install(cmd: &mut tokio::process::Command, setup: ChildSetup) -> io::Result<()> {
    let cgroup_files: Vec<CString> = setup
        .join_cgroups
        .iter()
        .map(|p| CString::new(p.as_os_str().as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in cgroup path"))?;
    let keep_fds = setup.keep_fds;
    let rlimits = setup.rlimits;
    // SAFETY: the closure runs in the forked child of a possibly multi-threaded process, where
    // only async-signal-safe functions may be called. It allocates nothing (the C strings and the
    // fd list are prepared above and only borrowed), takes no locks, and calls only raw system
    // calls through libc: setsid, close_range, fcntl, open, write, close, setrlimit — all
    // async-signal-safe.
    // It touches no descriptor it does not own: close_range only sets a flag (the descriptors
    // stay open until exec, so std's own exec-error pipe keeps working), `keep_fds` are
    // descriptors the caller keeps open until after spawn, and the cgroup file descriptors are
    // opened and closed here.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            // Best effort on kernels before 5.11 (ENOSYS): nothing else leaks there in practice
            // since Rust opens every descriptor with O_CLOEXEC.
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            for &fd in &keep_fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            for file in &cgroup_files {
                let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd == -1 {
                    return Err(io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(err);
                }
            }
            for limit in &rlimits {
                let value = libc::rlimit {
                    rlim_cur: limit.soft,
                    rlim_max: limit.hard,
                };
                if libc::setrlimit(limit.resource, &value) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// A process as the provider records it: its pid and its start time (field 22 of
/// `/proc/<pid>/stat`, clock ticks since boot). Pids are reused; the pair is not, so a record
/// read back after a server restart never makes the provider signal an unrelated process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcRef {
    pub pid: i32,
    pub start_time: u64,
}

/// The fields of `/proc/<pid>/stat` the provider needs.
#[derive(Debug, Clone, Copy)]
struct Stat {
    state: u8,
    start_time: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).map(|(stat, _)| stat)
}

/// The fields of a `/proc/<pid>/stat` text, and the command name (`comm`: the executable's
/// file name, at most 15 bytes).
fn parse_stat(text: &str) -> Option<(Stat, &str)> {
    // The command name (field 2) is in parentheses and may contain spaces or ')': split after
    // the last ')'. What follows starts at field 3 (state); start time is field 22.
    let close = text.rfind(')')?;
    let comm = &text[text.find('(')? + 1..close];
    let mut fields = text[close + 1..].split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((Stat { state, start_time }, comm))
}

impl ProcRef {
    /// Identify the live process `pid` now.
    pub fn of(pid: i32) -> io::Result<ProcRef> {
        read_stat(pid)
            .map(|s| ProcRef {
                pid,
                start_time: s.start_time,
            })
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("process {pid} is gone"))
            })
    }

    /// Running (not exited, not a zombie waiting to be reaped) and still the same process.
    pub fn is_alive(&self) -> bool {
        matches!(read_stat(self.pid), Some(s) if s.start_time == self.start_time && s.state != b'Z' && s.state != b'X')
    }

    /// [`ProcRef::is_alive`] for a process asked about again and again (a sandbox's init, each
    /// time the sandbox is shown): the first answer opens a pidfd and keeps it, and the next
    /// ones are one `poll(2)` on it instead of reading and parsing `/proc/PID/stat` (issue 19:
    /// that read was half the CPU of `GET /sandboxes` with 10 running). A pidfd pins the process
    /// it was opened for, so a reused pid cannot answer for it; it is readable once the process
    /// has exited, zombie or not, as `is_alive` says.
    pub fn is_alive_watched(&self) -> bool {
        let key = (self.pid, self.start_time);
        let mut watched = WATCHED.lock().unwrap_or_else(|p| p.into_inner());
        match watched.get(&key).map(has_exited) {
            Some(Some(false)) => return true,
            Some(Some(true)) => {
                watched.remove(&key);
                return false;
            }
            // Cannot tell: ask /proc afresh below.
            Some(None) => drop(watched.remove(&key)),
            None => {}
        }
        let Some(fd) = self.pidfd() else {
            return false;
        };
        if watched.len() >= WATCHED_MAX {
            watched.retain(|_, fd| has_exited(fd) == Some(false));
            if watched.len() >= WATCHED_MAX {
                watched.clear();
            }
        }
        watched.insert(key, fd);
        true
    }

    /// A pidfd for exactly this process, or `None` if it has exited. The start time is checked
    /// *after* opening: a pidfd pins the process it was opened for, so if the start time still
    /// matches then, every later signal through it reaches this process and no other.
    pub fn pidfd(&self) -> Option<OwnedFd> {
        let pid = Pid::from_raw(self.pid)?;
        let fd = rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok()?;
        self.is_alive().then_some(fd)
    }

    /// SIGKILL the process, not waiting for it to exit. Ok if it was gone.
    pub fn kill(&self) -> io::Result<()> {
        match self.pidfd() {
            Some(fd) => send_kill(&fd),
            None => Ok(()),
        }
    }

    /// SIGKILL the process and wait (up to `timeout`) until it has exited. Ok if it was gone.
    pub async fn kill_and_wait(&self, timeout: Duration) -> io::Result<()> {
        let Some(fd) = self.pidfd() else {
            return Ok(());
        };
        send_kill(&fd)?;
        if wait_for_exit(fd, timeout).await? {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "process {} did not exit within {timeout:?} of SIGKILL",
                    self.pid
                ),
            ))
        }
    }

    /// Wait (up to `timeout`) for the process to exit by itself; whether it did (or was gone).
    pub async fn wait_exit(&self, timeout: Duration) -> io::Result<bool> {
        match self.pidfd() {
            Some(fd) => wait_for_exit(fd, timeout).await,
            None => Ok(true),
        }
    }

    /// The environment the process was started with (`/proc/<pid>/environ`), if it is still this
    /// process after reading. It holds the sandbox's injected values: read into a zeroizing
    /// buffer that never leaves a copy behind as it grows (see `secret_buf`).
    pub fn environ(&self) -> Option<Zeroizing<Vec<u8>>> {
        let path = format!("/proc/{}/environ", self.pid);
        let data = secret_buf::read_file(Path::new(&path)).ok()?;
        self.is_alive().then_some(data)
    }
}

/// The pidfds [`ProcRef::is_alive_watched`] keeps, by process. An entry goes when its process
/// is found exited; the map is bounded (emptied of exited processes, then of all, when full).
static WATCHED: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<(i32, u64), OwnedFd>>,
> = std::sync::LazyLock::new(Default::default);
const WATCHED_MAX: usize = 4096;

/// Whether the pidfd's process has exited, without waiting; `None` if poll(2) cannot tell.
fn has_exited(fd: &OwnedFd) -> Option<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let now = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        match rustix::event::poll(&mut fds, Some(&now)) {
            Ok(n) => return Some(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Wait until the pidfd's process exits; false on timeout. A pidfd becomes readable when its
/// process exits — for the init of a pid namespace, after the kernel has killed and waited for
/// every other process in the namespace. (A blocking poll on a worker thread: registering the fd
/// with tokio's reactor needs `unsafe`, which only an exec's hot path pays for: see
/// `enter::Running::new`. Stops and removes are rare enough for a thread.)
async fn wait_for_exit(fd: OwnedFd, timeout: Duration) -> io::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let limit = rustix::event::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        loop {
            match rustix::event::poll(&mut fds, Some(&limit)) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    })
    .await
    .map_err(io::Error::other)?
}

/// Every live process whose command line `select` picks, with what it returned: a scan of
/// `/proc`. Each process is identified *before* its command line is read and checked again
/// after, so a pid reused in between is never returned under the old command line.
pub(crate) fn find_by_cmdline<T>(select: impl Fn(&[&[u8]]) -> Option<T>) -> Vec<(T, ProcRef)> {
    find_named_by_cmdline(|_| true, select)
}

/// [`find_by_cmdline`] among the processes whose command name (`comm`, see [`parse_stat`])
/// `named` accepts: the others' command lines are not read. (Reading one maps the process's
/// memory: the costly part of a scan, which a teardown runs with hundreds of processes around.)
pub(crate) fn find_named_by_cmdline<T>(
    named: impl Fn(&str) -> bool,
    select: impl Fn(&[&[u8]]) -> Option<T>,
) -> Vec<(T, ProcRef)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((Stat { start_time, .. }, comm)) = parse_stat(&stat) else {
            continue;
        };
        if !named(comm) {
            continue;
        }
        let proc_ref = ProcRef { pid, start_time };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<&[u8]> = cmdline
            .strip_suffix(b"\0")
            .unwrap_or(&cmdline)
            .split(|&b| b == 0)
            .collect();
        if let Some(picked) = select(&argv) {
            if proc_ref.is_alive() {
                found.push((picked, proc_ref));
            }
        }
    }
    found
}

impl ProcRef {
    /// The live children of this process (`/proc/<pid>/task/*/children`).
    pub fn children(&self) -> Vec<ProcRef> {
        let mut children = Vec::new();
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid));
        for task in tasks.into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            children.extend(
                text.split_ascii_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .filter_map(|p| ProcRef::of(p).ok()),
            );
        }
        if self.is_alive() {
            children
        } else {
            Vec::new()
        }
    }
}

/// SIGKILL every process in the process group `pgid` (a session leader's pid, see [`install`]).
fn send_kill(fd: &OwnedFd) -> io::Result<()> {
    match rustix::process::pidfd_send_signal(fd, Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn kill_group(pgid: i32) {
    if let Some(pid) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_this_process() {
        let me = ProcRef::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let reused = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(
            !reused.is_alive(),
            "a different start time is a different process"
        );
        assert!(me.environ().is_some());
    }

    #[test]
    fn a_watched_process_is_alive_until_it_exits_zombie_or_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let rec = ProcRef::of(child.id() as i32).unwrap();
        let other = ProcRef {
            start_time: rec.start_time + 1,
            ..rec
        };
        for _ in 0..3 {
            assert!(rec.is_alive_watched());
            assert!(
                !other.is_alive_watched(),
                "another start time, another process"
            );
        }
        assert!(WATCHED
            .lock()
            .unwrap()
            .contains_key(&(rec.pid, rec.start_time)));
        rustix::process::kill_process(Pid::from_raw(rec.pid).unwrap(), Signal::KILL).unwrap();
        // Not reaped yet: a zombie, dead all the same.
        let start = std::time::Instant::now();
        while rec.is_alive_watched() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "still alive after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!rec.is_alive() && !rec.is_alive_watched());
        assert!(!WATCHED
            .lock()
            .unwrap()
            .contains_key(&(rec.pid, rec.start_time)));
        child.wait().unwrap();
        assert!(!rec.is_alive_watched());
    }

    #[tokio::test]
    async fn kill_and_wait_kills_exactly_the_recorded_process() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let rec = ProcRef::of(child.id().unwrap() as i32).unwrap();
        // A record with the wrong start time is not signalled.
        let stale = ProcRef {
            start_time: rec.start_time + 1,
            ..rec
        };
        stale.kill_and_wait(Duration::from_secs(1)).await.unwrap();
        assert!(rec.is_alive());
        rec.kill_and_wait(Duration::from_secs(5)).await.unwrap();
        assert!(
            !rec.is_alive(),
            "exited (a zombie until reaped) counts as gone"
        );
        let status = child.wait().await.unwrap();
        assert!(!status.success());
    }
}
