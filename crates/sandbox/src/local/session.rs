//! Interactive sessions in a running sandbox (the SSH endpoint's shells, commands and SFTP),
//! and TCP connections made from inside its network namespace (SSH port forwarding).
//!
//! A session's command enters the sandbox exactly as an exec does (`exec::entering_command`:
//! every namespace, the cgroups, uid 1000, the sandbox's environment); what differs is its
//! input: a pipe the caller writes, or a new PTY. With a PTY the command leads a session of its
//! own with the terminal as its controlling terminal (see `enter`), and the server keeps the
//! PTY's leader side, non-blocking, registered with tokio.
//!
//! A connection for port forwarding is made by a short-lived thread of the server that moves
//! into the sandbox's network namespace (`setns`), connects, and exits: the socket stays in the
//! namespace it was made in. That needs `CAP_SYS_ADMIN` over the namespace: a server run as
//! root has it; otherwise the caller gets a clear error.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use rustix::pty::OpenptFlags;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::exec::{check_command, entering_command, KillGroupOnDrop, Stdin};
use super::{enter, LocalProvider};
use crate::{
    EndOutput, ExecSpec, ProviderError, Result, SessionHandle, SessionSpec, TerminalSize,
    TerminalSpec,
};

/// Longest a port-forwarding connection may take to be accepted inside the sandbox.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl LocalProvider {
    pub(super) async fn session_in_sandbox(
        &self,
        id: &str,
        spec: SessionSpec,
    ) -> Result<SessionHandle> {
        let exec = ExecSpec {
            argv: spec.argv,
            cwd: spec.cwd,
            timeout: None,
        };
        let cwd = check_command(&exec)?.to_owned();
        let record = self.running_record(id)?;
        let (leader, stdin) = match &spec.terminal {
            Some(TerminalSpec { size, term }) => {
                let (leader, tty) = open_pty(*size)?;
                let term = term.clone();
                (Some(leader), Stdin::Terminal { tty, term })
            }
            None => (None, Stdin::Piped),
        };
        let (mut cmd, mut report) = entering_command(id, &record, &exec, &cwd, stdin)?;
        let spawned = cmd.spawn();
        // Drops the setup's copies of the PTY's follower side too: once the command exits, the
        // leader side reads EOF.
        drop(cmd);
        let command = enter::reported_pid(&mut report);
        let mut entering = match spawned {
            Ok(child) => child,
            Err(e) => {
                if let Some(pid) = command {
                    enter::reap(pid);
                }
                let Some((code, message)) = enter::not_runnable(&exec.argv[0], &e) else {
                    return Err(e.into());
                };
                return Ok(not_runnable_session(code, message, leader.is_some()));
            }
        };
        let Some(pid) = command else {
            return Err(ProviderError::Io(io::Error::other(
                "the command did not start in the sandbox",
            )));
        };
        // With a terminal the command leads its own session and group; without one it is in
        // the entering process's group (as an exec).
        let pgid = match leader {
            Some(_) => pid,
            None => entering.id().map(|p| p as i32).unwrap_or(-1),
        };
        let pipes = (
            entering.stdin.take(),
            entering.stdout.take(),
            entering.stderr.take(),
        );
        tokio::spawn(async move {
            let _ = entering.wait().await;
        });
        let running = enter::Running::new(pid)?;
        let done = Arc::new(AtomicBool::new(false));
        let (exit_tx, exit) = oneshot::channel();
        let finished = done.clone();
        tokio::spawn(async move {
            let code = running.wait().await.unwrap_or(255);
            finished.store(true, Ordering::SeqCst);
            let _ = exit_tx.send(code);
        });
        let guard = Box::new(KillGroupOnDrop { pgid, done });
        let mut end_output = EndOutput::default();
        Ok(match leader {
            Some(leader) => {
                let leader = Arc::new(register(leader)?);
                let resizer = leader.clone();
                SessionHandle {
                    stdin: Box::new(PtyLeader(leader.clone())),
                    stdout: Box::new(end_output.pipe(PtyLeader(leader))),
                    stderr: None,
                    exit,
                    resize: Some(Box::new(move |size| {
                        let _ = rustix::termios::tcsetwinsize(resizer.get_ref(), winsize(size));
                    })),
                    end_output,
                    _guard: guard,
                }
            }
            None => {
                let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
                    return Err(ProviderError::Io(io::Error::other("missing pipes")));
                };
                SessionHandle {
                    stdin: Box::new(stdin),
                    stdout: Box::new(end_output.pipe(stdout)),
                    stderr: Some(Box::new(end_output.pipe(stderr))),
                    exit,
                    resize: None,
                    end_output,
                    _guard: guard,
                }
            }
        })
    }

    pub(super) async fn connect_in_sandbox(
        &self,
        id: &str,
        host: std::net::IpAddr,
        port: u16,
    ) -> Result<tokio::net::TcpStream> {
        let record = self.running_record(id)?;
        let init = record
            .init
            .pidfd()
            .ok_or_else(|| ProviderError::NotRunning(id.to_owned()))?;
        let (tx, rx) = oneshot::channel();
        // A thread of its own, which ends after this: a thread left in the sandbox's network
        // namespace would make the server's later connections there.
        std::thread::Builder::new()
            .name("amika-forward".into())
            .spawn(move || {
                let _ = tx.send(connect_from(init, host, port));
            })?;
        let stream = rx
            .await
            .map_err(|_| io::Error::other("the connecting thread ended"))??;
        Ok(tokio::net::TcpStream::from_std(stream)?)
    }
}

/// In this thread: enter the network namespace of the process behind `init` (a pidfd) and
/// connect to `host:port` there.
fn connect_from(init: OwnedFd, host: std::net::IpAddr, port: u16) -> Result<std::net::TcpStream> {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    move_into_link_name_space(init.as_fd(), Some(LinkNameSpaceType::Network)).map_err(|e| {
        if e == rustix::io::Errno::PERM {
            ProviderError::Unavailable(
                "port forwarding into a sandbox needs the server to run as root".into(),
            )
        } else {
            ProviderError::Io(e.into())
        }
    })?;
    let stream = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::new(host, port),
        CONNECT_TIMEOUT,
    )?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// A new PTY of `size`: its leader side (non-blocking, for the server) and its follower side
/// (for the command).
fn open_pty(size: TerminalSize) -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let leader = rustix::pty::openpt(flags)?;
    rustix::pty::grantpt(&leader)?;
    rustix::pty::unlockpt(&leader)?;
    let follower = rustix::pty::ioctl_tiocgptpeer(&leader, flags)?;
    rustix::termios::tcsetwinsize(&leader, winsize(size))?;
    rustix::io::ioctl_fionbio(&leader, true)?;
    Ok((leader, follower))
}

/// Register the PTY's leader side with tokio's reactor.
#[allow(unsafe_code)]
fn register(leader: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    let interest = tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE;
    // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, so the descriptor stays open and the
    // same for the `AsyncFd`'s whole life.
    unsafe { AsyncFd::register_with_interest(leader, interest) }.map_err(io::Error::from)
}

fn winsize(size: TerminalSize) -> rustix::termios::Winsize {
    rustix::termios::Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A session whose command cannot run: what a shell would answer, and its exit code.
fn not_runnable_session(code: i32, message: String, terminal: bool) -> SessionHandle {
    let (exit_tx, exit) = oneshot::channel();
    let _ = exit_tx.send(code);
    let message: Box<dyn AsyncRead + Send + Unpin> = Box::new(io::Cursor::new(message));
    let empty: Box<dyn AsyncRead + Send + Unpin> = Box::new(tokio::io::empty());
    let (stdout, stderr) = if terminal {
        (message, None)
    } else {
        (empty, Some(message))
    };
    SessionHandle {
        stdin: Box::new(tokio::io::sink()),
        stdout,
        stderr,
        exit,
        resize: None,
        end_output: EndOutput::default(),
        _guard: Box::new(()),
    }
}

/// The PTY's leader side as a tokio reader and writer.
struct PtyLeader(Arc<AsyncFd<OwnedFd>>);

impl AsFd for PtyLeader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.get_ref().as_fd()
    }
}

impl AsyncRead for PtyLeader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut *unfilled)?)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // EIO: no process has the terminal open any more: the end of its output.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyLeader {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| Ok(rustix::io::write(fd.get_ref(), data)?)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
