//! Warm sandboxes, the provider's side (the pool itself is `pool`): claiming one for a start,
//! parking a new one after a start, and removing what an earlier server's left.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::StartError;
use super::launch::Launched;
use super::pool::{self, Parked, Shape};
use super::{cgroup, LocalProvider, KILL_TIMEOUT, POOL_DIR};
use crate::SandboxSpec;

/// How long after a start its warm replacement is started.
const REFILL_DELAY: Duration = Duration::from_millis(100);

impl LocalProvider {
    /// Turn a warm sandbox into sandbox `dir`: its directory and its cgroups take the sandbox's
    /// name, and the cgroups get its limits — before the script gives it anything to run. A
    /// warm sandbox that cannot be moved into place is let go and a cold one started instead.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn claim(
        &self,
        parked: Parked,
        dir: &Path,
        spec: &SandboxSpec,
        shape: &Shape,
    ) -> Result<Launched, StartError> {
        let moved = if parked.launched.record.init.is_alive() {
            std::fs::rename(&parked.dir, dir).map_err(StartError::Io)
        } else {
            Err(StartError::WarmSandboxDied)
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
            layout
                .adopt(
                    &launched.record.cgroups,
                    &spec.id,
                    spec.memory_mib,
                    spec.pids,
                )
                .map_err(StartError::from)
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

    /// After a sandbox of `shape` started, start one more of that shape in the background for
    /// the next create (see `pool`).
    pub(super) fn refill(&self, shape: Shape) {
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
    pub(super) async fn sweep_pool(&self) {
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

    /// Start a warm sandbox of `shape` under `.pool`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn park(&self, shape: &Shape) -> Result<Parked, StartError> {
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
}
