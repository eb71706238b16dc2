//! A deleted sandbox's teardown, in the background (issue 19): a delete answers once the
//! sandbox can no longer run anything (its processes were sent SIGKILL, its row is gone); the
//! kernel's end of its pid namespace, the removal of its cgroups and the removal of its files go
//! on here. A create of the same name by the same user waits for that to finish first, so a name
//! is never reused while its last sandbox is still being taken apart. A teardown that fails (a
//! process still in the kernel's teardown after its deadline) is tried again; one still failing,
//! or cut short by a server stop, is an orphan the next start's reconciliation removes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amika_store::SandboxHead;
use tokio::sync::watch;

use crate::service::{error_chain, Service};

/// Attempts of a teardown, and the pause between two.
const ATTEMPTS: u32 = 4;
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Longest a create waits for the teardown of a sandbox of the same name.
const REUSE_WAIT: Duration = Duration::from_secs(60);

/// Teardowns running, by (owner, sandbox name); each receiver turns `true` when its ends.
type Running = HashMap<(String, String), watch::Receiver<bool>>;

#[derive(Debug, Default, Clone)]
pub(crate) struct Teardowns(Arc<Mutex<Running>>);

impl Teardowns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether no teardown is running.
    #[cfg(feature = "bench")]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl Service {
    /// Take the halted sandbox `head` apart in the background.
    pub(super) fn tear_down_in_background(&self, head: &SandboxHead) {
        let (done, ended) = watch::channel(false);
        let key = (head.user_id.clone(), head.name.clone());
        self.teardowns.lock().insert(key.clone(), ended);
        let svc = self.clone();
        let id = head.id.clone();
        tokio::spawn(async move {
            for attempt in 1..=ATTEMPTS {
                match svc.provider.remove(&id).await {
                    Ok(()) => break,
                    Err(e) => {
                        let error = error_chain(&e);
                        tracing::warn!(sandbox = %id, attempt, %error, "the teardown of a deleted sandbox failed");
                        if attempt < ATTEMPTS {
                            tokio::time::sleep(RETRY_AFTER).await;
                        }
                    }
                }
            }
            let mut running = svc.teardowns.lock();
            // A later delete of a sandbox of the same name may have replaced this entry.
            if running
                .get(&key)
                .is_some_and(|r| r.same_channel(&done.subscribe()))
            {
                running.remove(&key);
            }
            drop(running);
            done.send_replace(true);
        });
    }

    /// Wait (bounded) until no teardown of a sandbox of the caller's named `name` runs.
    pub(super) async fn wait_for_teardown(&self, user_id: &str, name: &str) {
        let ended = self
            .teardowns
            .lock()
            .get(&(user_id.to_string(), name.to_string()))
            .cloned();
        if let Some(mut ended) = ended {
            let _ = tokio::time::timeout(REUSE_WAIT, ended.wait_for(|done| *done)).await;
        }
    }
}
