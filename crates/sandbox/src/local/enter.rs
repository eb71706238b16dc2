//! Entering a running sandbox for an exec, in the child between `fork` and `exec` — what
//! `nsenter` plus a shell used to do, without starting either of them (each cost a process
//! start per exec: about a millisecond together).
//!
//! In the forked child (after [`super::proc::install`]'s setup, so already in the sandbox's
//! cgroups and a session of its own):
//! 1. `setns` through a pidfd of the sandbox's init into all its namespaces at once (user, mount,
//!    pid, network, ipc, uts, cgroup); entering the mount namespace also puts the root and the
//!    working directory at the sandbox's root;
//! 2. become `amika` (uid/gid 1000, no supplementary groups): no capability is left;
//! 3. start the command with `clone(CLONE_PARENT)`: a process cannot move itself into a pid
//!    namespace, only its children, and `CLONE_PARENT` makes the command a child of the
//!    *server*, so the entering process can exit at once. (Were it to wait for the command
//!    instead, it would stay around as a copy-on-write copy of the server for as long as the
//!    command runs: measured at 2.5 MiB PSS and growing with the server's activity.) It reports
//!    the command's pid on a pipe; the server waits for the command through a pidfd
//!    ([`Running`]). The command keeps the session and process group of the entering process,
//!    so killing the group kills the command's tree;
//! 4. the command gets `no_new_privs` and the sandbox's seccomp filter (as everything bubblewrap
//!    starts; see `seccomp`), changes to its working
//!    directory (else the fallback, else exits 126 saying why), and std then runs it with the
//!    sandbox's environment — looked up on the sandbox's `PATH`, loaded by the sandbox's own
//!    loader, inside every namespace, so an injected `LD_PRELOAD` concerns only the sandbox.
//!
//! A command that cannot be run at all makes `spawn` fail (std reports the `execvp` error);
//! [`not_runnable`] turns that into what a shell would answer (127 or 126 and a message).
//!
//! The raw `clone` system call is used because glibc's `fork` offers no `CLONE_PARENT`; the
//! command only runs async-signal-safe code and then `execvp` before anything could depend on
//! glibc's idea of its thread id.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use zeroize::Zeroizing;

/// The sandbox user's uid and gid.
const AMIKA: libc::uid_t = 1000;

/// Everything the child needs, prepared before `fork` (the child may not allocate).
#[derive(Debug)]
pub(crate) struct Target {
    /// A pidfd of the sandbox's init.
    pub init: OwnedFd,
    /// Where the command runs, and where it runs if that does not exist (the home, when the
    /// caller did not choose the directory).
    pub cwd: String,
    pub fallback_cwd: Option<String>,
    pub env: Environment,
    /// Where the entering process writes the command's pid (4 bytes, native endian).
    pub report: OwnedFd,
    /// The command and its arguments (no NUL in any).
    pub argv: Vec<String>,
    /// Whether the command's standard input is a terminal (an SSH session's PTY) to make its
    /// controlling terminal: the command then starts a session of its own (see `install`).
    pub controlling_tty: bool,
}

/// The command's environment (`NAME=value` entries, values from the sandbox's init) in one
/// zeroized block, with the `environ` array pointing into it — built before `fork`, installed
/// in the command after it entered the sandbox.
pub(crate) struct Environment {
    /// Owns the entries `pointers` point into (zeroized when the exec's setup is dropped).
    #[allow(dead_code)]
    block: Zeroizing<Vec<u8>>,
    /// Addresses of the entries in `block`, then 0 (the array's NULL end).
    pointers: Vec<usize>,
    /// The sandbox's `PATH` (not secret: a constant of the provider unless a secret was
    /// mapped to `PATH`, which only changes where commands are looked up).
    path: Zeroizing<Vec<u8>>,
}

impl Environment {
    pub fn new(vars: Vec<(String, Zeroizing<Vec<u8>>)>) -> Self {
        let size = vars.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
        // Reserved up front: the block never reallocates, so the addresses stay valid.
        let mut block = Zeroizing::new(Vec::with_capacity(size));
        let mut offsets = Vec::with_capacity(vars.len());
        for (name, value) in &vars {
            offsets.push(block.len());
            block.extend_from_slice(name.as_bytes());
            block.push(b'=');
            block.extend_from_slice(value);
            block.push(0);
        }
        let base = block.as_ptr() as usize;
        let mut pointers: Vec<usize> = offsets.into_iter().map(|o| base + o).collect();
        pointers.push(0);
        let path = vars
            .iter()
            .find(|(name, _)| name == "PATH")
            .map_or_else(|| DEFAULT_PATH.to_vec(), |(_, v)| v.to_vec());
        let path = Zeroizing::new(path);
        Environment {
            block,
            pointers,
            path,
        }
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Environment([{} variables, values hidden])",
            self.pointers.len() - 1
        )
    }
}

/// Where commands are looked up when the sandbox has no `PATH` (what `execvp` would use).
const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/usr/bin:/bin";

/// The paths to try for `program`, as `execvp` would: the name itself if it has a `/`, else
/// each `PATH` entry (empty: the working directory) joined with it. NUL-terminated, one after
/// the other in one zeroized block (a secret may have been mapped to `PATH`), with their
/// offsets.
fn candidates(program: &str, path: &[u8]) -> (Zeroizing<Vec<u8>>, Vec<usize>) {
    // Sized exactly first: a reallocation would free an unzeroized copy of `PATH`'s entries.
    let size = if program.contains('/') {
        program.len() + 1
    } else {
        path.split(|&b| b == b':')
            .map(|dir| dir.len().max(1) + 1 + program.len() + 1)
            .sum()
    };
    let mut block = Zeroizing::new(Vec::with_capacity(size));
    let mut offsets = Vec::new();
    let mut push = |parts: &[&[u8]]| {
        offsets.push(block.len());
        for part in parts {
            block.extend_from_slice(part);
        }
        block.push(0);
    };
    if program.contains('/') {
        push(&[program.as_bytes()]);
    } else {
        for dir in path.split(|&b| b == b':') {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            push(&[dir, b"/", program.as_bytes()]);
        }
    }
    debug_assert_eq!(block.len(), size);
    (block, offsets)
}

/// What the child passes to the kernel as C strings, built before `fork`.
struct CStrings {
    cwd: CString,
    fallback: Option<CString>,
    /// The message when neither directory can be entered.
    cannot_enter: Vec<u8>,
    argv: Vec<CString>,
}

impl CStrings {
    fn of(target: &Target) -> io::Result<CStrings> {
        let nul = |_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a directory name");
        let fallback = target.fallback_cwd.clone().map(CString::new);
        Ok(CStrings {
            cwd: CString::new(target.cwd.clone()).map_err(nul)?,
            fallback: fallback.transpose().map_err(nul)?,
            cannot_enter: format!("amika: cannot change to directory {:?}\n", target.cwd)
                .into_bytes(),
            argv: (target.argv.iter().map(|a| CString::new(a.as_str())))
                .collect::<Result<_, _>>()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the command"))?,
        })
    }
}

/// Install the entering steps on `cmd` (after [`super::proc::install`]).
#[allow(unsafe_code)]
pub(crate) fn install(cmd: &mut tokio::process::Command, target: Target) -> io::Result<()> {
    let CStrings {
        cwd,
        fallback,
        cannot_enter,
        argv,
    } = CStrings::of(&target)?;
    let mut argv_pointers: Vec<usize> = argv.iter().map(|a| a.as_ptr() as usize).collect();
    argv_pointers.push(0);
    let program = target.argv.first().map(String::as_str).unwrap_or_default();
    let (tries, try_offsets) = candidates(program, &target.env.path);
    let init = target.init;
    let env = target.env;
    let report = target.report;
    let filter = super::seccomp::address();
    let controlling_tty = target.controlling_tty;
    // SAFETY: runs in the forked child of a multi-threaded process: only async-signal-safe
    // system calls through libc, no allocation (everything above is prepared and only borrowed),
    // no locks. The clone in that child is safe: the child is single-threaded, and the clone's
    // parent side only writes to a pipe and `_exit`s.
    unsafe {
        cmd.pre_exec(move || {
            // Whole values, not just the fields used below (a closure captures only what it
            // names): the pointers point into `env.block` and `argv`, which must live as long.
            let (env, _argv, tries) = (&env, &argv, &tries);
            let flags = libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWNET
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS
                | libc::CLONE_NEWCGROUP;
            if libc::setns(init.as_raw_fd(), flags) == -1 {
                return Err(io::Error::last_os_error());
            }
            // Fails with EPERM where setgroups is denied in the namespace; then there are none.
            libc::setgroups(0, std::ptr::null());
            if libc::setresgid(AMIKA, AMIKA, AMIKA) == -1
                || libc::setresuid(AMIKA, AMIKA, AMIKA) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // A fork whose child is the server's (see the module docs); no new stack: the child
            // runs on a copy of this one, as after fork.
            let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
            match libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) {
                -1 => return Err(io::Error::last_os_error()),
                0 => {}
                command => {
                    let pid = (command as i32).to_ne_bytes();
                    libc::write(report.as_raw_fd(), pid.as_ptr().cast(), pid.len());
                    libc::_exit(0);
                }
            }
            // The command.
            // A terminal session (SSH with a PTY): only a session leader can take a controlling
            // terminal, and the entering process (the leader so far) exits at once, so the
            // command leads a session of its own, whose terminal is the PTY on its stdin (job
            // control, Ctrl-C, SIGHUP when the terminal closes).
            if controlling_tty && (libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1)
            {
                return Err(io::Error::last_os_error());
            }
            super::seccomp::restrict_self(filter)?;
            let entered = libc::chdir(cwd.as_ptr()) == 0
                || fallback
                    .as_ref()
                    .is_some_and(|dir| libc::chdir(dir.as_ptr()) == 0);
            if !entered {
                libc::write(2, cannot_enter.as_ptr().cast(), cannot_enter.len());
                libc::_exit(126);
            }
            // Run it here, with the sandbox's environment, looked up on the sandbox's PATH (as
            // `execvp` would, which looks in the *server's* PATH). Only a failure returns: std
            // then reports it through `spawn`.
            let mut denied = false;
            for &offset in &try_offsets {
                libc::execve(
                    tries.as_ptr().add(offset).cast(),
                    argv_pointers.as_ptr().cast(),
                    env.pointers.as_ptr().cast(),
                );
                match *libc::__errno_location() {
                    libc::ENOENT | libc::ENOTDIR => {}
                    libc::EACCES => denied = true,
                    _ => return Err(io::Error::last_os_error()),
                }
            }
            Err(io::Error::from_raw_os_error(if denied {
                libc::EACCES
            } else {
                libc::ENOENT
            }))
        });
    }
    Ok(())
}

/// What a shell answers for a command it cannot run, for a `spawn` that failed at `execvp`:
/// (exit code, message), or `None` for any other failure.
pub(crate) fn not_runnable(program: &str, error: &io::Error) -> Option<(i32, String)> {
    match error.kind() {
        io::ErrorKind::NotFound => Some((127, format!("amika: {program}: command not found\n"))),
        io::ErrorKind::PermissionDenied => {
            Some((126, format!("amika: {program}: permission denied\n")))
        }
        _ => match error.raw_os_error() {
            Some(libc::ENOEXEC) | Some(libc::EISDIR) => {
                Some((126, format!("amika: {program}: cannot execute: {error}\n")))
            }
            _ => None,
        },
    }
}

/// A command started by [`install`]: a child of this process (see the module docs), waited for
/// through a pidfd.
#[derive(Debug)]
pub(crate) struct Running {
    pidfd: tokio::io::unix::AsyncFd<OwnedFd>,
    reaped: std::sync::atomic::AtomicBool,
}

/// The command's pid from the entering process's report, once `spawn` returned (the entering
/// process has exited or failed by then, so the report is complete). `None` if it reported
/// nothing (it failed before starting the command).
pub(crate) fn reported_pid(report: &mut std::io::PipeReader) -> Option<i32> {
    use std::io::Read;
    let mut pid = [0u8; 4];
    report.read_exact(&mut pid).ok()?;
    Some(i32::from_ne_bytes(pid))
}

/// Reap a command whose exec failed (std reported the error through `spawn`): it is this
/// process's child and exits at once.
pub(crate) fn reap(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    }
}

impl Running {
    #[allow(unsafe_code)]
    pub fn new(pid: i32) -> io::Result<Running> {
        let pid = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| io::Error::other("the command has no pid"))?;
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK)?;
        // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, so the descriptor stays open and
        // the same for the `AsyncFd`'s whole life.
        let pidfd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)?;
        Ok(Running {
            pidfd,
            reaped: false.into(),
        })
    }

    /// Wait until the command exits and reap it: its exit code, or 128 + the signal that ended
    /// it.
    pub async fn wait(&self) -> io::Result<i32> {
        use rustix::process::{waitid, WaitId, WaitIdOptions};
        loop {
            let mut ready = self.pidfd.readable().await?;
            let id = WaitId::PidFd(std::os::fd::AsFd::as_fd(self.pidfd.get_ref()));
            match waitid(id, WaitIdOptions::EXITED | WaitIdOptions::NOHANG)? {
                Some(status) => {
                    self.reaped.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Ok(status
                        .exit_status()
                        .or_else(|| status.terminating_signal().map(|s| 128 + s))
                        .unwrap_or(255));
                }
                None => ready.clear_ready(),
            }
        }
    }

    /// SIGKILL the command (if it has not been reaped yet).
    pub fn kill(&self) {
        let _ =
            rustix::process::pidfd_send_signal(self.pidfd.get_ref(), rustix::process::Signal::KILL);
    }
}

impl Drop for Running {
    /// A command nobody waits for any more (its relay was cancelled, e.g. at shutdown) is
    /// killed and reaped: unreaped, it would stay a zombie in the sandbox's pid namespace, and a
    /// namespace whose processes are not all reaped keeps its init from exiting, so the
    /// sandbox could not be stopped.
    fn drop(&mut self) {
        if self.reaped.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        self.kill();
        let Ok(fd) = self.pidfd.get_ref().try_clone() else {
            return;
        };
        std::thread::spawn(move || {
            use rustix::process::{waitid, WaitId, WaitIdOptions};
            for _ in 0..1000 {
                let id = WaitId::PidFd(std::os::fd::AsFd::as_fd(&fd));
                match waitid(id, WaitIdOptions::EXITED | WaitIdOptions::NOHANG) {
                    Ok(None) | Err(rustix::io::Errno::AGAIN) => {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    _ => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(program: &str, path: &str) -> Vec<String> {
        let (block, offsets) = candidates(program, path.as_bytes());
        offsets
            .iter()
            .map(|&o| {
                let end = o + block[o..].iter().position(|&b| b == 0).unwrap();
                String::from_utf8(block[o..end].to_vec()).unwrap()
            })
            .collect()
    }

    #[test]
    fn commands_are_looked_up_as_execvp_would() {
        assert_eq!(
            tried("claude", "/home/amika/.local/bin::/usr/bin"),
            [
                "/home/amika/.local/bin/claude",
                "./claude",
                "/usr/bin/claude"
            ]
        );
        assert_eq!(tried("./run.sh", "/usr/bin"), ["./run.sh"]);
        assert_eq!(tried("/bin/true", "/usr/bin"), ["/bin/true"]);
    }

    /// The candidate paths were pushed into a block grown from empty: each reallocation freed
    /// an unzeroized copy of the sandbox's `PATH` (which may be a secret).
    #[test]
    fn the_candidate_paths_are_sized_once() {
        for (program, path) in [
            ("claude", "/home/amika/.local/bin::/usr/bin:"),
            ("./run.sh", "/usr/bin"),
            ("x", ""),
        ] {
            let (block, offsets) = candidates(program, path.as_bytes());
            assert_eq!(block.len(), block.capacity(), "{program} on {path:?}");
            assert!(!offsets.is_empty());
        }
    }

    #[test]
    fn the_environment_is_one_block_and_hides_its_values_in_debug() {
        let env = Environment::new(vec![
            ("A".into(), Zeroizing::new(b"secret-one".to_vec())),
            ("PATH".into(), Zeroizing::new(b"/x:/y".to_vec())),
        ]);
        assert_eq!(env.pointers.len(), 3);
        assert_eq!(*env.pointers.last().unwrap(), 0);
        assert_eq!(&env.block[..], b"A=secret-one\0PATH=/x:/y\0");
        assert_eq!(env.pointers[1] - env.pointers[0], "A=secret-one\0".len());
        assert_eq!(&env.path[..], b"/x:/y");
        let shown = format!("{env:?}");
        assert!(!shown.contains("secret-one"), "{shown}");
        let no_path = Environment::new(Vec::new());
        assert_eq!(&no_path.path[..], DEFAULT_PATH);
    }

    #[test]
    fn unrunnable_commands_answer_as_a_shell() {
        let nf = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            not_runnable("nope", &nf),
            Some((127, "amika: nope: command not found\n".into()))
        );
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(not_runnable("x", &denied).unwrap().0, 126);
        let noexec = io::Error::from_raw_os_error(libc::ENOEXEC);
        assert_eq!(not_runnable("x", &noexec).unwrap().0, 126);
        assert_eq!(not_runnable("x", &io::Error::other("other")), None);
    }
}
