//! Stopping a sandbox: kill its processes by their recorded identities, remove its cgroups and
//! its record, keep its home. Idempotent: a sandbox with nothing running stops at once.

use std::path::Path;
use std::time::Duration;

use super::record::RunRecord;
use super::{cgroup, check_id, LocalProvider, KILL_TIMEOUT};
use crate::Result;

impl LocalProvider {
    pub(super) async fn stop_sandbox(&self, id: &str) -> Result<()> {
        if check_id(id).is_err() {
            return Ok(()); // nothing can exist under an invalid id
        }
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        self.stop_locked(id).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn stop_locked(&self, id: &str) -> Result<()> {
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

    /// Kill every process of a run and remove its cgroups and state file.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn teardown(&self, dir: &Path, record: &RunRecord) -> Result<()> {
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
        Ok(Self::remove_record(dir)?)
    }
}
