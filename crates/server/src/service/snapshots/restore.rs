//! Starting a sandbox from a snapshot: the archive decrypted (its AAD must match the snapshot's
//! owner and id), decompressed and unpacked as the new sandbox's home before its first start.

use std::io::BufReader;

use amika_sandbox::snapshot;
use amika_store::SnapshotRow;
use amika_types::{self as t, ErrorCode, SnapshotState};

use crate::service::sealing::{snapshot_aad, OpeningReader};
use crate::service::{Caller, Result, Service, ServiceError};

/// A create's `snapshot` (`""` or null: none) names a snapshot, and comes without a repository
/// of its own: the snapshot's workspace is the sandbox's.
pub(crate) fn check_snapshot_field(req: &t::CreateSandboxRequest) -> Result<()> {
    let Some(snapshot) = req.snapshot.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    if snapshot.trim() != snapshot || snapshot.len() > 128 || snapshot.contains('\0') {
        return Err(ServiceError::bad_request(format!(
            "snapshot {snapshot:?} is not a snapshot name or id"
        ))
        .at("snapshot"));
    }
    let repo_url = req.repo_url.as_deref().unwrap_or("").trim();
    if !repo_url.is_empty() || req.workspace_upload.is_some() {
        return Err(ServiceError::bad_request(
            "snapshot and a repository (repo_url, workspace_upload) are mutually exclusive: a sandbox started from a snapshot has the snapshot's workspace",
        )
        .at("snapshot"));
    }
    Ok(())
}

impl Service {
    /// For a create with `snapshot`: the snapshot, unpacked as sandbox `id`'s home (nothing is
    /// left of it when this fails). `None` without one.
    pub(crate) async fn restore_for_create(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
        id: &str,
    ) -> Result<Option<SnapshotRow>> {
        let Some(r) = req.snapshot.as_deref() else {
            return Ok(None);
        };
        let snap = self.snapshot_to_start_from(caller, r).await?;
        if let Err(e) = self.restore_snapshot(&snap, id).await {
            let _ = self.provider.remove(id).await;
            return Err(e);
        }
        Ok(Some(snap))
    }

    /// The caller's active snapshot named by `r` (a create's `snapshot` field).
    pub(crate) async fn snapshot_to_start_from(
        &self,
        caller: &Caller,
        r: &str,
    ) -> Result<SnapshotRow> {
        let row = self
            .find_snapshot(caller, r)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(what) => ServiceError::unprocessable(
                    ErrorCode::NotFound,
                    format!("{what} not found: `amika snapshot list` shows yours"),
                ),
                e => e,
            })
            .map_err(|e| e.at("snapshot"))?;
        if row.state != SnapshotState::Active {
            return Err(ServiceError::conflict(
                ErrorCode::InvalidState,
                format!(
                    "snapshot {} is {}: a sandbox starts from an active snapshot only",
                    row.name, row.state
                ),
            )
            .at("snapshot"));
        }
        Ok(row)
    }

    /// Unpack snapshot `snap` as the home of sandbox `id` (which has no files yet).
    pub(crate) async fn restore_snapshot(&self, snap: &SnapshotRow, id: &str) -> Result<()> {
        let home = self
            .provider
            .home_dir(id)
            .ok_or_else(|| ServiceError::internal("the provider has no home directory"))?;
        let key = self.open_snapshot_key(snap)?;
        let (done, _) = self.snapshot_paths(&snap.id);
        let snap = snap.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&done)?;
            let reader = OpeningReader::new(&key, &snapshot_aad(&snap), BufReader::new(file))?;
            snapshot::restore(reader, &home)
        })
        .await
        .map_err(ServiceError::internal)?
        .map_err(ServiceError::internal)
    }
}
