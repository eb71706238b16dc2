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
//! 3. `fork` again, because a process cannot move itself into a pid namespace, only its
//!    children. The first child stays outside, closes every descriptor it has (so that the
//!    server sees the command's output end, and spawn's own status pipe, only through the
//!    command) and waits for the command, then exits the same way (its exit code, or the same
//!    signal): it is the process the server waits on and signals, and the command is in its
//!    process group, so killing the group kills both;
//! 4. the command: dies with the first child (`PR_SET_PDEATHSIG`), gets `no_new_privs` (as
//!    everything bubblewrap starts), changes to its working directory (else the fallback, else
//!    exits 126 saying why), and std then runs it with the sandbox's environment — looked up on
//!    the sandbox's `PATH`, loaded by the sandbox's own loader, inside every namespace, so an
//!    injected `LD_PRELOAD` concerns only the sandbox.
//!
//! A command that cannot be run at all makes `spawn` fail (std reports the `execvp` error);
//! [`not_runnable`] turns that into what a shell would answer (127 or 126 and a message).

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
}

/// The command's environment (`NAME=value` entries, values from the sandbox's init) in one
/// zeroized block, with the `environ` array pointing into it — built before `fork`, installed
/// in the command after it entered the sandbox.
pub(crate) struct Environment {
    block: Zeroizing<Vec<u8>>,
    /// Addresses of the entries in `block`, then 0 (the array's NULL end).
    pointers: Vec<usize>,
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
        Environment { block, pointers }
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

extern "C" {
    /// The C library's environment, which `execvp` searches `PATH` in and passes on.
    static mut environ: *const *const libc::c_char;
}

/// Install the entering steps on `cmd` (after [`super::proc::install`]).
#[allow(unsafe_code)]
pub(crate) fn install(cmd: &mut tokio::process::Command, target: Target) -> io::Result<()> {
    let nul = |_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a directory name");
    let cwd = CString::new(target.cwd.clone()).map_err(nul)?;
    let fallback = target
        .fallback_cwd
        .clone()
        .map(CString::new)
        .transpose()
        .map_err(nul)?;
    let cannot_enter = format!("amika: cannot change to directory {:?}\n", target.cwd).into_bytes();
    let init = target.init;
    let env = target.env;
    // SAFETY: runs in the forked child of a multi-threaded process: only async-signal-safe
    // system calls through libc, no allocation (everything above is prepared and only borrowed),
    // no locks. `fork` in that child is safe: the child is single-threaded. The first child never
    // returns: it only closes descriptors, waits and exits (`_exit`, `kill`, `raise` are
    // async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
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
            match libc::fork() {
                -1 => return Err(io::Error::last_os_error()),
                0 => {}
                command => wait_and_mirror(command),
            }
            // The command.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() == 1 {
                // The first child is already gone (killed): so is the exec.
                libc::_exit(137);
            }
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let entered = libc::chdir(cwd.as_ptr()) == 0
                || fallback
                    .as_ref()
                    .is_some_and(|dir| libc::chdir(dir.as_ptr()) == 0);
            if !entered {
                libc::write(2, cannot_enter.as_ptr().cast(), cannot_enter.len());
                libc::_exit(126);
            }
            // std leaves `environ` alone (the command's environment is not set through it) and
            // runs `execvp` next: PATH is looked up in, and the command gets, this environment.
            debug_assert!(!env.block.is_empty() || env.pointers.len() == 1);
            environ = env.pointers.as_ptr().cast();
            Ok(())
        });
    }
    Ok(())
}

/// The first child: let go of every descriptor, wait for the command, end the same way.
#[allow(unsafe_code)]
unsafe fn wait_and_mirror(command: libc::pid_t) -> ! {
    libc::syscall(
        libc::SYS_close_range,
        0 as libc::c_uint,
        libc::c_uint::MAX,
        0,
    );
    let mut status = 0;
    loop {
        let r = libc::waitpid(command, &mut status, 0);
        if r == command {
            break;
        }
        if r == -1 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(1);
        }
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        libc::_exit(128 + sig);
    }
    libc::_exit(libc::WEXITSTATUS(status))
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
