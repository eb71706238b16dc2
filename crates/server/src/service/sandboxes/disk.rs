//! The disk watch: every few seconds, the home and workspace of each running sandbox on this
//! server are measured on the host's disk (allocated blocks), and one over the server's
//! `max_disk_mib` is stopped, its error message saying why. Home and workspace are plain
//! directories of the data dir on the host's filesystem (no quota, no filesystem of their
//! own, which an unprivileged server cannot make), so this watch is what bounds them: a
//! sandbox can write past the limit for one period plus a walk before it is stopped — at a
//! disk's speed, gigabytes: the limit is a bound on what a sandbox keeps, not a guarantee
//! against a burst.

use std::time::Duration;

use amika_types::SandboxState;

use crate::service::{Caller, Result, Service};

/// How often the running sandboxes are measured (at most: see `watch_disk_usage`).
pub(crate) const DISK_TICK: Duration = Duration::from_secs(5);

impl Service {
    /// Measure the running sandboxes once per [`DISK_TICK`] for as long as the server runs
    /// (nothing to do without `max_disk_mib`).
    pub async fn watch_disk_usage(self) {
        let Some(limit) = self.config.ceilings.max_disk_mib else {
            return;
        };
        loop {
            let round = std::time::Instant::now();
            if let Err(e) = self.stop_over_disk_limit(limit).await {
                tracing::warn!(error = %e, "cannot measure the sandboxes' disk usage");
            }
            // Walking costs about 15 µs per file (warm): with many large workspaces the rounds
            // space out so that the walks take at most a tenth of one core.
            tokio::time::sleep(DISK_TICK.max(round.elapsed() * 10)).await;
        }
    }

    /// Stop every running sandbox of this server whose home and workspace take more than
    /// `limit_mib`; returns the ids stopped.
    pub async fn stop_over_disk_limit(&self, limit_mib: u64) -> Result<Vec<String>> {
        let mut stopped = Vec::new();
        for (id, head) in self.store.list_all_sandbox_heads().await? {
            let Ok(head) = head else { continue };
            if head.state != SandboxState::Running {
                continue;
            }
            // `None`: not this server's sandbox (servers may share a database).
            let Some(bytes) = self.provider.disk_usage(&id).await? else {
                continue;
            };
            let used_mib = bytes / (1024 * 1024);
            if used_mib <= limit_mib {
                continue;
            }
            let why = format!(
                "stopped by the server: its home and workspace took {used_mib} MiB on disk, over \
                 this server's max_disk_mib = {limit_mib}; start it and delete files to go on"
            );
            tracing::warn!(sandbox = %id, used_mib, limit_mib, "stopping a sandbox over its disk limit");
            let owner = Caller {
                user_id: head.user_id.clone(),
                user_name: "amika (disk limit)".into(),
                org_id: head.org_id.clone(),
                is_admin: false,
                api_key_id: String::new(),
            };
            match self.stop_sandbox_because(&owner, &id, Some(&why)).await {
                Ok(()) => stopped.push(id),
                Err(e) => {
                    tracing::warn!(sandbox = %id, error = %e, "cannot stop a sandbox over its disk limit")
                }
            }
        }
        Ok(stopped)
    }
}
