//! What reconciliation asks of the provider after a server restart: the runtime status of one
//! sandbox (with the reason it died, when known) and the ids of every sandbox that has files or
//! processes here.

use std::io;

use super::{cgroup, check_id, LocalProvider};
use crate::{Result, RuntimeStatus};

impl LocalProvider {
    pub(super) async fn runtime_status(&self, id: &str) -> Result<RuntimeStatus> {
        if check_id(id).is_err() {
            return Ok(RuntimeStatus::NotRunning {
                reason: Some("invalid sandbox id".into()),
            });
        }
        Ok(match self.read_record(id)? {
            None => RuntimeStatus::NotRunning { reason: None },
            Some(record) if record.init.is_alive_watched() => RuntimeStatus::Running,
            Some(record) => RuntimeStatus::NotRunning {
                reason: Some(if cgroup::oom_killed(&record.cgroups) {
                    "killed by the OOM killer".into()
                } else {
                    "the sandbox's init process exited".into()
                }),
            },
        })
    }

    pub(super) async fn list_sandboxes(&self) -> Result<Vec<String>> {
        // Listing is what reconciliation at a server's start does: leftovers of an earlier
        // server's warm sandboxes go then, not only with the first create.
        self.sweep_pool().await;
        let entries = match std::fs::read_dir(&self.root_dir) {
            Ok(entries) => Some(entries),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in entries.into_iter().flatten() {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str() {
                if check_id(name).is_ok() {
                    ids.push(name.to_owned());
                }
            }
        }
        // Repositories staged for a create that never finished count too: `remove` discards them.
        ids.extend(self.staged_ids());
        // Processes whose directory is already gone count too: `remove` kills them.
        ids.extend(self.bwrap_processes().into_iter().map(|(id, _)| id));
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}
