//! After a restart: every sandbox record made to match what really runs, through the
//! transition table, and whatever runs without a record removed.

use std::collections::BTreeSet;

use amika_sandbox::lifecycle::{reconcile, Operation, Reconcile};
use amika_sandbox::RuntimeStatus;
use amika_store::SandboxHead;

use crate::service::{error_chain, Result, Service};

impl Service {
    /// After a restart: make every record match what runs, and remove what runs without a
    /// record. Returns a line per change, for the log.
    ///
    /// - a sandbox the provider has (files or processes) without a record: removed;
    /// - the rest as [`reconcile`] (the lifecycle module) says, each state through the
    ///   transition table: `deleting` is finished; `initializing` (the server died during its
    ///   start) has its processes killed and is `failed`; `running` or `stopping` with its
    ///   processes gone is `stopped`, with the reason; `stopping`, `stopped` or `failed` with
    ///   processes running is stopped.
    ///
    /// A provider error on one sandbox is logged as a change and does not keep the server from
    /// starting; the sandbox keeps its state, and a later stop or delete tries again. Each
    /// sandbox is read by its identity and state only, so one whose other columns no longer
    /// decode is reconciled too; one whose state does not decode is logged and skipped (and its
    /// files are not taken for an orphan's).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn reconcile_sandboxes(&self) -> Result<Vec<String>> {
        let mut changes = Vec::new();
        let heads = self.store.list_all_sandbox_heads().await?;
        let known: BTreeSet<&str> = heads.iter().map(|(id, _)| id.as_str()).collect();
        for id in self.provider.list().await? {
            if !known.contains(id.as_str()) {
                changes.push(match self.provider.remove(&id).await {
                    Ok(()) => format!("removed orphaned sandbox files and processes {id}"),
                    Err(e) => format!("could not remove orphaned sandbox {id}: {e}"),
                });
            }
        }
        for (id, head) in &heads {
            let head = match head {
                Ok(head) => head,
                Err(e) => {
                    let error = error_chain(e);
                    tracing::warn!(sandbox = %id, %error, "not reconciled: its row does not decode");
                    continue;
                }
            };
            match self.provider.status(&head.id).await {
                Ok(status) => changes.extend(self.reconcile_sandbox(head, status).await?),
                Err(e) => changes.push(format!("{}: cannot read its status: {e}", head.name)),
            }
        }
        Ok(changes)
    }

    /// Reconcile one sandbox with its runtime `status`: the change made, if any.
    async fn reconcile_sandbox(
        &self,
        row: &SandboxHead,
        status: RuntimeStatus,
    ) -> Result<Option<String>> {
        let (running, gone_because) = match status {
            RuntimeStatus::Running => (true, None),
            RuntimeStatus::NotRunning { reason } => (false, reason),
        };
        let op = match reconcile(row.state, running) {
            Reconcile::Keep => return Ok(None),
            Reconcile::FinishDelete => {
                if let Err(e) = self.provider.remove(&row.id).await {
                    return Ok(Some(format!(
                        "{}: could not finish deleting: {e}",
                        row.name
                    )));
                }
                self.store.delete_sandbox(&row.id).await?;
                return Ok(Some(format!("finished deleting {}", row.name)));
            }
            Reconcile::Record(op) => op,
        };
        let note = match op {
            Operation::ReconcileInterrupted => match self.provider.stop(&row.id).await {
                Ok(()) => "the server stopped while this sandbox was starting: start it again".to_string(),
                Err(e) => format!("the server stopped while this sandbox was starting, and stopping what it had started failed ({e}): delete it"),
            },
            Operation::ReconcileStrays => {
                if let Err(e) = self.provider.stop(&row.id).await {
                    return Ok(Some(format!("{}: could not stop it: {e}", row.name)));
                }
                "stopped on restart: it was recorded as not running".to_string()
            }
            // `ReconcileLost`: nothing runs; say why, when the provider knows.
            _ => format!(
                "its processes were gone when the server restarted{}",
                gone_because.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        };
        // A row that changed meanwhile (a request served while the server was starting) is
        // left as it is, and the log says so rather than report a change never written.
        match self.transition_head(row, op, Some(&note)).await? {
            Some(_) => Ok(Some(format!("{}: {note}", row.name))),
            None => Ok(Some(format!(
                "{}: changed meanwhile, left as it is (not recorded: {note})",
                row.name
            ))),
        }
    }
}
