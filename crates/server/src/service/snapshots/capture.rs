//! The capture itself, in the background after `create_snapshot` answered: stop the source,
//! archive and encrypt its home (searching it for injected values in `scrub_and_delete`
//! mode), then make the snapshot `active` and delete the source — or fail the snapshot and put
//! the source back as it was.

use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use amika_sandbox::lifecycle::Operation;
use amika_sandbox::snapshot::{self, CaptureReport, ScanSet};
use amika_store::{SandboxRow, SnapshotRow, StoreError};
use amika_types::{SnapshotMode, SnapshotState};
use serde_json::json;

use super::injected_places;
use super::quota::{Budget, BudgetWriter};
use crate::service::audit::Subject;
use crate::service::sealing::{snapshot_aad, SealingWriter, StreamKey};
use crate::service::{error_chain, now, Caller, Result, Service, ServiceError};

/// How a capture ended.
enum Outcome {
    /// Archived: the file's size.
    Captured(u64),
    /// Injected values were found: the capture was thrown away.
    Refused(CaptureReport),
    /// The archive outgrew the room its quota left: thrown away.
    OverQuota,
}

impl Service {
    pub(super) async fn capture_in_background(
        self,
        caller: Caller,
        mut snap: SnapshotRow,
        source: SandboxRow,
        was_running: bool,
        budget: Budget,
    ) {
        let outcome = self.capture(&snap, &source, budget.bytes).await;
        let (state, error, size) = match &outcome {
            Ok(Outcome::Captured(size)) => (SnapshotState::Active, None, Some(*size as i64)),
            Ok(Outcome::Refused(report)) => (SnapshotState::Failed, Some(refusal(report)), None),
            Ok(Outcome::OverQuota) => (SnapshotState::Failed, Some(budget.exceeded()), None),
            Err(e) => {
                let chain = error_chain(e);
                tracing::warn!(snapshot = %snap.id, error = %chain, "snapshot capture failed");
                (
                    SnapshotState::Failed,
                    Some(format!("the capture failed: {chain}")),
                    None,
                )
            }
        };
        snap.state = state;
        snap.error_message = error;
        snap.size_bytes = size;
        snap.updated_at = now();
        if let Err(e) = self.store.update_snapshot(&snap).await {
            tracing::warn!(snapshot = %snap.id, error = %e, "cannot record the end of a capture");
        }
        let delete_source =
            state == SnapshotState::Active && snap.mode == SnapshotMode::ScrubAndDelete;
        if let Err(e) = self
            .release_source(&caller, &source, delete_source, was_running)
            .await
        {
            tracing::warn!(sandbox = %source.id, error = %error_chain(&e), "cannot release a snapshot's source");
        }
        let subject = Subject {
            object_type: "snapshot",
            object_id: &snap.id,
            object_name: &snap.name,
            version: None,
        };
        let (action, detail) = match &outcome {
            Ok(Outcome::Captured(size)) => (
                "snapshot.captured",
                json!({"mode": snap.mode, "bytes": size, "source_deleted": delete_source}),
            ),
            Ok(Outcome::Refused(report)) => (
                "snapshot.refused",
                json!({"found": report.hits.iter().map(|h| json!({"path": h.path, "secrets": h.labels})).collect::<Vec<_>>()}),
            ),
            Ok(Outcome::OverQuota) => ("snapshot.failed", json!({"over_quota": budget.limit})),
            Err(_) => ("snapshot.failed", json!({})),
        };
        if let Err(e) = self
            .audit(&caller, action, subject, Some(&source.id), detail)
            .await
        {
            tracing::warn!(snapshot = %snap.id, error = %e, "cannot audit a capture");
        }
    }

    /// Stop the source and archive its home into the snapshot's file, in at most `budget` bytes.
    async fn capture(
        &self,
        snap: &SnapshotRow,
        source: &SandboxRow,
        budget: Option<u64>,
    ) -> Result<Outcome> {
        {
            let lock = self.sandbox_lock(&source.id);
            let _guard = lock.lock().await;
            self.provider.stop(&source.id).await?;
            self.redactions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&source.id);
        }
        let home = self
            .provider
            .home_dir(&source.id)
            .ok_or_else(|| ServiceError::internal("the provider has no home directory"))?;
        let scan = match snap.mode {
            SnapshotMode::ScrubAndDelete => self.scan_set(source).await?,
            SnapshotMode::Full => ScanSet::new(),
        };
        let (exclude, _) = injected_places(&source.injection);
        let key = self.open_snapshot_key(snap)?;
        let (done, partial) = self.snapshot_paths(&snap.id);
        let dir = self.snapshots_dir();
        let snap = snap.clone();
        let written = tokio::task::spawn_blocking(move || {
            let target = Target {
                dir: &dir,
                partial: &partial,
                done: &done,
                budget,
            };
            write_archive(&target, &home, &scan, &exclude, &key, &snap)
        })
        .await
        .map_err(ServiceError::internal)?
        .map_err(ServiceError::internal)?;
        Ok(written)
    }

    /// Every value injected into the sandbox at its last start, under its secret or credential
    /// name: what a scrubbed archive must not hold. The current versions of what the sandbox's
    /// record names (a value changed since its start is looked for as it is now).
    async fn scan_set(&self, source: &SandboxRow) -> Result<ScanSet> {
        let mut set = ScanSet::new();
        for s in &source.injection.secrets {
            match self.store.get_secret(&s.secret_id).await {
                Ok(row) => set.add(&s.name, self.open_secret(&row)?.expose_secret().as_bytes()),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for c in &source.injection.credentials {
            match self.store.get_credential(&c.credential_id).await {
                Ok(row) => set.add(
                    &c.name,
                    self.open_credential(&row)?.expose_secret().as_bytes(),
                ),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(set)
    }

    /// After a capture: delete the source (`scrub_and_delete`, captured), or record it stopped
    /// and start it again if it ran before.
    async fn release_source(
        &self,
        caller: &Caller,
        source: &SandboxRow,
        delete: bool,
        was_running: bool,
    ) -> Result<()> {
        let current = {
            let lock = self.sandbox_lock(&source.id);
            let _guard = lock.lock().await;
            let current = self.store.get_sandbox(&source.id).await?;
            let op = if delete {
                Operation::DeleteSnapshotted
            } else {
                Operation::MarkStopped
            };
            self.transition(&current, op, None).await?
        };
        if current.is_none() {
            return Ok(());
        }
        if delete {
            self.delete_sandbox(caller, &source.id).await
        } else if was_running {
            self.start_sandbox(caller, &source.id).await
        } else {
            Ok(())
        }
    }
}

/// What a refused scrub says: the files and the secrets found there (never a value), and how
/// to go on.
fn refusal(report: &CaptureReport) -> String {
    let found: Vec<String> = report
        .hits
        .iter()
        .take(20)
        .map(|h| format!("~/{} ({})", h.path, h.labels.join(", ")))
        .collect();
    let more = report.hits.len().saturating_sub(found.len());
    format!(
        "snapshot refused: injected secret values were found in the sandbox's files: {}{}. \
         The sandbox was left as it was. Remove the values from those files (and from git \
         history) and try again, or take the snapshot with --mode full, which keeps them",
        found.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )
}

/// Where an archive is written: `partial` in `dir` until complete, then `done`; at most
/// `budget` bytes.
struct Target<'a> {
    dir: &'a Path,
    partial: &'a Path,
    done: &'a Path,
    budget: Option<u64>,
}

/// Archive `home` into `partial`, encrypted, then (no hit, or nothing searched for) sync it
/// and rename it to `done`. A refused, oversized or failed capture leaves no file.
fn write_archive(
    target: &Target,
    home: &Path,
    scan: &ScanSet,
    exclude: &[String],
    key: &StreamKey,
    snap: &SnapshotRow,
) -> std::io::Result<Outcome> {
    let Target {
        dir,
        partial,
        done,
        budget,
    } = *target;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)?;
    let over = Arc::new(AtomicBool::new(false));
    let result = (|| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(partial)?;
        let file = BufWriter::new(BudgetWriter::new(file, budget, over.clone()));
        let sealed = SealingWriter::new(key, &snapshot_aad(snap), file)?;
        let (sealed, report) = snapshot::capture(home, scan, exclude, sealed)?;
        if !report.hits.is_empty() {
            return Ok(Outcome::Refused(report));
        }
        let file = sealed.finish()?.into_inner().map_err(|e| e.into_error())?;
        let mut file = file.into_inner();
        file.flush()?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        std::fs::rename(partial, done)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(Outcome::Captured(size))
    })();
    if !matches!(result, Ok(Outcome::Captured(_))) {
        let _ = std::fs::remove_file(partial);
    }
    match result {
        Err(_) if over.load(Ordering::Relaxed) => Ok(Outcome::OverQuota),
        result => result,
    }
}
