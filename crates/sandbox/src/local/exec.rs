//! Running a command in a running sandbox: the entering process (see `enter`) in the sandbox's
//! cgroups, its output relayed as it arrives, its timeout, and notes when a limit bit.

use std::io::{self, PipeReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{ChildStderr, ChildStdout, Command};
use tokio::sync::mpsc;

use super::proc::{self, ChildSetup};
use super::record::RunRecord;
use super::script::{self, HOME};
use super::{cgroup, enter, rlimit, LocalProvider, TIMEOUT_EXIT_CODE};
use crate::{EndOutput, ExecEvent, ExecHandle, ExecSpec, ProviderError, Result};

/// Default working directory of execs.
const WORKSPACE: &str = "/home/amika/workspace";
/// After an exec's command exits, how long its output may still drain to its end. A background
/// process that keeps the pipes open does not hold the exec open beyond this; what is in the
/// pipes by then is still delivered.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

impl LocalProvider {
    pub(super) async fn exec_in_sandbox(&self, id: &str, spec: ExecSpec) -> Result<ExecHandle> {
        let cwd = check_command(&spec)?;
        let record = self.running_record(id)?;
        let (mut cmd, mut report) = entering_command(id, &record, &spec, cwd, Stdin::Null)?;
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
                    return Err(start_error(e, &record.cgroups));
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
            Some(Err(e)) => return Err(start_error(e, &record.cgroups)),
            None => return Err(not_started(&limits_before, &record.cgroups)),
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
}

/// The kernel's limit on one argument of a command (`MAX_ARG_STRLEN`, 32 pages, counts the
/// terminating NUL).
pub const MAX_ARG_BYTES: usize = 128 * 1024 - 1;

/// Why a command could not start: its sandbox's process limit is full (`EAGAIN` from a fork
/// there), its arguments are too long all together (`E2BIG`), or another failure as it is.
fn start_error(e: io::Error, cgroups: &[PathBuf]) -> ProviderError {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => {}
        Some(libc::E2BIG) => {
            return ProviderError::InvalidCommand(
                "the command's arguments are over the kernel's limit on a command line (E2BIG): \
                 pass large input on stdin or in a file"
                    .into(),
            )
        }
        _ => return e.into(),
    }
    let limit = cgroups
        .iter()
        .find_map(|dir| std::fs::read_to_string(dir.join("pids.max")).ok())
        .map(|max| format!(" (pids {})", max.trim()))
        .unwrap_or_default();
    ProviderError::LimitReached(format!(
        "the sandbox's process limit is reached{limit}: no new process can start in it until \
         some of its processes end (stop and start the sandbox to end them all, or create it \
         with a larger pids)"
    ))
}

/// Why the entering process reported no command: the OOM killer took it (the sandbox is at
/// its memory limit), or a failure it could not report.
fn not_started(before: &cgroup::Events, cgroups: &[PathBuf]) -> ProviderError {
    if cgroup::Events::read(cgroups).oom_kills > before.oom_kills {
        return ProviderError::LimitReached(
            "the sandbox is at its memory limit: the OOM killer ended the command before it \
             started (files in its /tmp count against the limit too); free memory in it, stop \
             and start it, or create it with a larger memory_mib"
                .into(),
        );
    }
    ProviderError::Io(io::Error::other("the command did not start in the sandbox"))
}

/// The command's working directory, once the command is known to be runnable as given.
pub(super) fn check_command(spec: &ExecSpec) -> Result<&str> {
    if spec.argv.is_empty() {
        return Err(ProviderError::InvalidCommand("the command is empty".into()));
    }
    if let Some((i, arg)) = (spec.argv.iter().enumerate()).find(|(_, a)| a.len() > MAX_ARG_BYTES) {
        return Err(ProviderError::InvalidCommand(format!(
            "argument {} is {} bytes: the kernel takes at most {MAX_ARG_BYTES} bytes per \
             argument; pass larger input on stdin or in a file",
            i + 1,
            arg.len()
        )));
    }
    let cwd = spec.cwd.as_deref().unwrap_or(WORKSPACE);
    if cwd.is_empty() || spec.argv.iter().any(|a| a.contains('\0')) || cwd.contains('\0') {
        return Err(ProviderError::InvalidCommand(
            "the command or working directory contains a NUL byte (or the directory is empty)"
                .into(),
        ));
    }
    Ok(cwd)
}

/// What an entered command reads and where it writes: an exec's stdin is empty; an SSH
/// session's is a pipe, or a terminal for all three streams.
#[derive(Debug)]
pub(super) enum Stdin {
    Null,
    Piped,
    /// The PTY's follower side: stdin, stdout and stderr, and the controlling terminal; with
    /// the client's `TERM`.
    Terminal {
        tty: std::os::fd::OwnedFd,
        term: String,
    },
}

/// The process that enters sandbox `id` (see `enter`) and runs the command in `cwd`, with the
/// sandbox's environment as its init was started with it (whichever provider instance started
/// it), in the sandbox's cgroups; and the pipe on which it reports the command's pid.
pub(super) fn entering_command(
    id: &str,
    record: &RunRecord,
    spec: &ExecSpec,
    cwd: &str,
    stdin: Stdin,
) -> Result<(Command, PipeReader)> {
    let not_running = || ProviderError::NotRunning(id.to_owned());
    let environ = record.init.environ().ok_or_else(not_running)?;
    let mut vars = script::parse_environ(&environ);
    if let Stdin::Terminal { term, .. } = &stdin {
        vars.retain(|(name, _)| name != "TERM");
        vars.push((
            "TERM".into(),
            zeroize::Zeroizing::new(term.as_bytes().to_vec()),
        ));
    }
    let env = enter::Environment::new(vars);
    let init = record.init.pidfd().ok_or_else(not_running)?;
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..]).kill_on_drop(true);
    let controlling_tty = matches!(stdin, Stdin::Terminal { .. });
    match stdin {
        Stdin::Null | Stdin::Piped => {
            let input = match stdin {
                Stdin::Piped => Stdio::piped(),
                _ => Stdio::null(),
            };
            cmd.stdin(input)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        Stdin::Terminal { tty, .. } => {
            cmd.stdin(Stdio::from(tty.try_clone()?))
                .stdout(Stdio::from(tty.try_clone()?))
                .stderr(Stdio::from(tty));
        }
    }
    proc::install(
        &mut cmd,
        ChildSetup {
            join_cgroups: record
                .cgroups
                .iter()
                .map(|d| d.join("cgroup.procs"))
                .collect(),
            keep_fds: Vec::new(),
            // Read at every exec (two small files): the pids limit is the sandbox's, and a
            // restarted server knows it only from the cgroup.
            rlimits: rlimit::prepare(&rlimit::for_exec(
                rlimit::pids_of(&record.cgroups),
                rlimit::HostTables::cached(),
            ))?,
        },
    )?;
    let (report, report_write) = std::io::pipe()?;
    enter::install(
        &mut cmd,
        enter::Target {
            init,
            cwd: cwd.to_owned(),
            fallback_cwd: spec.cwd.is_none().then(|| HOME.to_owned()),
            env,
            report: report_write.into(),
            argv: spec.argv.clone(),
            controlling_tty,
        },
    )?;
    Ok((cmd, report))
}

/// Kills an exec's whole process group if its handle is dropped before the command ended.
#[derive(Debug)]
pub(super) struct KillGroupOnDrop {
    pub(super) pgid: i32,
    pub(super) done: Arc<AtomicBool>,
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
    let mut end = EndOutput::default();
    let out_task = tokio::spawn(forward(end.pipe(stdout), tx.clone(), ExecEvent::Stdout));
    let err_task = tokio::spawn(forward(end.pipe(stderr), tx.clone(), ExecEvent::Stderr));

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
    // Everything written before the end is delivered, even by a relay that is behind.
    end.drain_within(DRAIN_GRACE, async {
        let _ = out_task.await;
        let _ = err_task.await;
    })
    .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An exec whose entering process reported no command answered a bare 500 while its
    /// sandbox sat at its memory limit (the soak benchmark found it). Now the cgroup's OOM
    /// count decides: a kill since the exec began is the memory limit; else an i/o error.
    #[test]
    fn a_command_the_oom_killer_took_before_it_started_is_the_memory_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cgroups = [dir.path().to_path_buf()];
        std::fs::write(dir.path().join("memory.events"), "oom 3\noom_kill 2\n").unwrap();
        let before = cgroup::Events::read(&cgroups);
        assert!(matches!(
            not_started(&before, &cgroups),
            ProviderError::Io(_)
        ));
        std::fs::write(dir.path().join("memory.events"), "oom 4\noom_kill 3\n").unwrap();
        match not_started(&before, &cgroups) {
            ProviderError::LimitReached(message) => {
                assert!(
                    message.starts_with("the sandbox is at its memory limit"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
