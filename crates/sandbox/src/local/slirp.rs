//! The egress network helper: slirp4netns gives a sandbox's network namespace a user-mode NAT
//! to the outside (never to the host's loopback), and exits with the sandbox.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::error::StartError;
use super::proc::{self, ChildSetup, ProcRef};
use super::record::RunRecord;
use super::{LocalProvider, BASE_ENV, START_TIMEOUT};

impl LocalProvider {
    /// Give the sandbox's network namespace a user-mode NAT to the outside (egress mode).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn start_slirp4netns(
        &self,
        dir: &Path,
        record: &RunRecord,
        exit_fd: std::os::unix::net::UnixStream,
    ) -> Result<ProcRef, StartError> {
        let (ready_read, ready_write) =
            std::os::unix::net::UnixStream::pair().map_err(StartError::Io)?;
        let log_path = dir.join("slirp4netns.log");
        let log = std::fs::File::create(&log_path).map_err(StartError::Io)?;
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
                // Each connection the sandbox opens is a socket here, on the host's table.
                rlimits: super::rlimit::prepare(&super::rlimit::for_network_helper())
                    .map_err(StartError::Io)?,
            },
        )
        .map_err(StartError::Io)?;
        let mut child = cmd.spawn().map_err(|source| StartError::Spawn {
            program: self.tools.slirp4netns.clone(),
            source,
        })?;
        drop(ready_write);
        drop(exit_fd);
        // Gone at once is reported below, with its log.
        let slirp = child.id().and_then(|pid| ProcRef::of(pid as i32).ok());
        ready_read.set_nonblocking(true).map_err(StartError::Io)?;
        let mut ready_read =
            tokio::net::UnixStream::from_std(ready_read).map_err(StartError::Io)?;
        let mut byte = [0u8; 1];
        let ready = tokio::time::timeout(START_TIMEOUT, ready_read.read(&mut byte)).await;
        let slirp = match (ready, slirp) {
            (Ok(Ok(1)), Some(slirp)) => slirp,
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(StartError::Slirp {
                    log: log.trim().to_owned(),
                });
            }
        };
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(slirp)
    }
}
