//! Removing a sandbox: stop it, then delete its directory (home and workspace included) and
//! whatever warm-sandbox slot still links to it. Idempotent, and possible even when the
//! sandbox's `state.json` is unreadable.

use std::io;

use super::{check_id, pool, LocalProvider, POOL_DIR};
use crate::{ProviderError, Result};

impl LocalProvider {
    /// SIGKILL the sandbox's init, not waiting: the kernel then ends every process of its pid
    /// namespace (each exec joined it), so nothing runs in the sandbox any more. `remove`
    /// does the waiting and the rest.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn halt_sandbox(&self, id: &str) -> Result<()> {
        if check_id(id).is_err() {
            return Ok(());
        }
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        match self.read_record(id) {
            Ok(Some(record)) => Ok(record.init.kill()?),
            // No record: nothing started, or a state file `remove` deals with.
            Ok(None) => Ok(()),
            Err(ProviderError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn remove_sandbox(&self, id: &str) -> Result<()> {
        if check_id(id).is_err() {
            return Ok(());
        }
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        match self.stop_locked(id).await {
            // An unreadable state file must not make a sandbox undeletable.
            Err(ProviderError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(sandbox = id, error = %e, "removing a sandbox whose state is unreadable");
            }
            other => other?,
        }
        pool::unlink_slots_of(&self.root_dir.join(POOL_DIR), id);
        self.discard_staged(id);
        // std's remove_dir_all does not follow symlinks, whatever the sandbox left in its home.
        match std::fs::remove_dir_all(self.sandbox_dir(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}
