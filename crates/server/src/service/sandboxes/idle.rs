//! `auto_stop_interval` and `auto_delete_interval`: a sandbox left without exec or agent
//! activity for that many minutes is stopped, or deleted. Activity is kept in memory (an exec,
//! an agent send, a start, the create itself); after a server restart every sandbox's idle time
//! counts from the restart. A watcher task checks once a second, only the sandboxes that have
//! an interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amika_store::SandboxRow;
use amika_types::SandboxState;

use crate::service::{Caller, Result, Service};

/// How often the watcher looks.
const TICK: Duration = Duration::from_secs(1);

/// A sandbox with an interval: its owner, its policy and when it was last used.
#[derive(Debug, Clone)]
pub(crate) struct IdleEntry {
    user_id: String,
    org_id: String,
    stop_after: Option<Duration>,
    delete_after: Option<Duration>,
    last_active: Instant,
    /// Commands (exec, agent sends) running now: never idle while one runs.
    busy: usize,
}

/// Held while a command runs in a sandbox: the sandbox is not idle until it is dropped, and its
/// idle time starts again then.
#[derive(Debug)]
pub(crate) struct Busy {
    idle: Arc<Mutex<IdleTable>>,
    id: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(e) = self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&self.id)
        {
            e.busy = e.busy.saturating_sub(1);
            e.last_active = Instant::now();
        }
    }
}

/// Minutes as given in a request → a duration; `None` for "never" (absent, 0, or -1).
pub(super) fn interval(minutes: Option<f64>) -> Option<Duration> {
    minutes
        .filter(|m| *m > 0.0)
        .map(|m| Duration::from_secs_f64(m * 60.0))
}

impl Service {
    /// Watch `row`'s intervals, if it has any, counting from now.
    pub(super) fn watch_idle(&self, row: &SandboxRow) {
        let stop_after = interval(row.options.auto_stop_interval);
        let delete_after = interval(row.options.auto_delete_interval);
        if stop_after.is_none() && delete_after.is_none() {
            return;
        }
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).insert(
            row.id.clone(),
            IdleEntry {
                user_id: row.user_id.clone(),
                org_id: row.org_id.clone(),
                stop_after,
                delete_after,
                last_active: Instant::now(),
                busy: 0,
            },
        );
    }

    /// A command starts running in the sandbox: it is busy until the guard is dropped.
    pub(crate) fn busy(&self, id: &str) -> Busy {
        if let Some(e) = self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            e.busy += 1;
            e.last_active = Instant::now();
        }
        Busy {
            idle: self.idle.clone(),
            id: id.to_string(),
        }
    }

    /// The sandbox was used (a start): its idle time starts again.
    pub(crate) fn touch(&self, id: &str) {
        if let Some(e) = self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            e.last_active = Instant::now();
        }
    }

    /// Watch every sandbox that has an interval (at start-up), then check them once a second
    /// for as long as the server runs.
    pub async fn watch_idle_sandboxes(self) {
        match self.store.list_all_sandbox_heads().await {
            Ok(heads) => {
                for (id, _) in heads {
                    if let Ok(row) = self.store.get_sandbox(&id).await {
                        self.watch_idle(&row);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list sandboxes to watch their idle time"),
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.reap_idle().await;
        }
    }

    /// Stop or delete what has been idle too long.
    async fn reap_idle(&self) {
        let due: Vec<(String, IdleEntry)> = {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.iter()
                .filter(|(_, e)| {
                    let quiet = e.last_active.elapsed();
                    if e.busy > 0 {
                        return false;
                    }
                    e.delete_after.is_some_and(|d| quiet >= d)
                        || e.stop_after.is_some_and(|d| quiet >= d)
                })
                .map(|(id, e)| (id.clone(), e.clone()))
                .collect()
        };
        for (id, entry) in due {
            if let Err(e) = self.reap_one(&id, &entry).await {
                tracing::warn!(sandbox = %id, error = %e, "cannot stop or delete an idle sandbox");
                // Try again after another full interval rather than every second.
                self.touch(&id);
            }
        }
    }

    async fn reap_one(&self, id: &str, entry: &IdleEntry) -> Result<()> {
        let caller = Caller {
            user_id: entry.user_id.clone(),
            user_name: "amika (idle timeout)".into(),
            org_id: entry.org_id.clone(),
            is_admin: false,
            api_key_id: String::new(),
        };
        let quiet = entry.last_active.elapsed();
        if entry.delete_after.is_some_and(|d| quiet >= d) {
            tracing::info!(
                sandbox = id,
                idle_secs = quiet.as_secs(),
                "deleting an idle sandbox"
            );
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
            return match self.delete_sandbox(&caller, id).await {
                Err(crate::service::ServiceError::NotFound(_)) => Ok(()),
                other => other,
            };
        }
        let head = match self.store.get_sandbox_head(id).await {
            Ok(head) => head,
            Err(amika_store::StoreError::NotFound(_)) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        match head.state {
            SandboxState::Running => {
                tracing::info!(
                    sandbox = id,
                    idle_secs = quiet.as_secs(),
                    "stopping an idle sandbox"
                );
                self.stop_sandbox(&caller, id).await?;
            }
            // Still starting (a long setup script): idle time counts from when it is ready.
            SandboxState::Initializing => {
                self.touch(id);
                return Ok(());
            }
            _ => {}
        }
        // Stopped (or not running anyway): nothing more to stop until it is used again; a
        // delete interval, if any, keeps counting.
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = idle.get_mut(id) {
            e.stop_after = None;
            if e.delete_after.is_none() {
                idle.remove(id);
            }
        }
        Ok(())
    }

    /// Forget a deleted sandbox.
    pub(super) fn unwatch_idle(&self, id: &str) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The watcher's table type (held by the service).
pub(crate) type IdleTable = HashMap<String, IdleEntry>;
