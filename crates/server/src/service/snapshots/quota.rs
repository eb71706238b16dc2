//! Snapshot quotas (`snapshot_quota_mib_per_user`, `snapshot_quota_mib_per_org`): the archives a
//! user holds, and those of their whole org, stay under the server's ceilings. A capture starts
//! only with room left under both, and its archive is written through a [`BudgetWriter`] that
//! stops it once it outgrows that room, so an oversized capture never fills the disk first.
//! (Captures running at the same time each see the room the others have not used yet: together
//! they may pass a quota by up to their sizes; the next capture is then refused.)

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use amika_types::ErrorCode;

use crate::service::{Caller, Result, Service, ServiceError};

const MIB: u64 = 1024 * 1024;

/// Room left for one capture, and which quota bounds it (for the message when it is outgrown).
#[derive(Debug, Clone)]
pub(super) struct Budget {
    pub bytes: Option<u64>,
    pub limit: &'static str,
    pub limit_mib: u64,
}

impl Budget {
    /// What a capture that outgrew this budget says.
    pub fn exceeded(&self) -> String {
        format!(
            "snapshot over quota: the archive outgrew the room left under {} = {} MiB. The \
             sandbox was left as it was. Delete snapshots you no longer need (`amika snapshot \
             delete`), or ask an admin to raise the quota",
            self.limit, self.limit_mib
        )
    }
}

impl Service {
    /// The room left for a new capture of the caller's; `422 over_limit` naming the quota when
    /// there is none.
    pub(super) async fn snapshot_budget(&self, caller: &Caller) -> Result<Budget> {
        let ceilings = &self.config.ceilings;
        let quotas = [
            (
                "snapshot_quota_mib_per_user",
                ceilings.snapshot_quota_mib_per_user,
                true,
            ),
            (
                "snapshot_quota_mib_per_org",
                ceilings.snapshot_quota_mib_per_org,
                false,
            ),
        ];
        let mut budget = Budget {
            bytes: None,
            limit: "",
            limit_mib: 0,
        };
        if quotas.iter().all(|(_, q, _)| q.is_none()) {
            return Ok(budget);
        }
        let usage = self
            .store
            .snapshot_usage(&caller.org_id, &caller.user_id)
            .await?;
        for (name, quota, per_user) in quotas {
            let Some(mib) = quota else { continue };
            let (used, whose) = if per_user {
                (usage.user_bytes, "your snapshots hold")
            } else {
                (usage.org_bytes, "your org's snapshots hold")
            };
            let left = (mib * MIB).saturating_sub(used);
            if left == 0 {
                return Err(ServiceError::unprocessable(
                    ErrorCode::OverLimit,
                    format!(
                        "{whose} {} MiB, this server's quota {name} = {mib} MiB: delete \
                         snapshots you no longer need first (`amika snapshot list` shows sizes)",
                        used.div_ceil(MIB)
                    ),
                ));
            }
            if budget.bytes.is_none_or(|b| left < b) {
                budget = Budget {
                    bytes: Some(left),
                    limit: name,
                    limit_mib: mib,
                };
            }
        }
        Ok(budget)
    }
}

/// A writer that refuses to write past `left` bytes, and says so in `over` (the error itself may
/// come back wrapped by the archiver).
pub(super) struct BudgetWriter<W> {
    inner: W,
    left: Option<u64>,
    over: Arc<AtomicBool>,
}

impl<W> BudgetWriter<W> {
    pub fn new(inner: W, left: Option<u64>, over: Arc<AtomicBool>) -> Self {
        BudgetWriter { inner, left, over }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for BudgetWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(left) = self.left {
            if buf.len() as u64 > left {
                self.over.store(true, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::QuotaExceeded,
                    "the snapshot quota is reached",
                ));
            }
        }
        let n = self.inner.write(buf)?;
        if let Some(left) = &mut self.left {
            *left -= n as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_writer_takes_up_to_its_budget_and_refuses_more() {
        let over = Arc::new(AtomicBool::new(false));
        let mut w = BudgetWriter::new(Vec::new(), Some(10), over.clone());
        w.write_all(b"0123456789").unwrap();
        assert!(!over.load(Ordering::Relaxed));
        let e = w.write_all(b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::QuotaExceeded);
        assert!(over.load(Ordering::Relaxed));
        assert_eq!(w.into_inner(), b"0123456789");
    }

    #[test]
    fn a_budget_writer_without_a_budget_takes_everything() {
        let over = Arc::new(AtomicBool::new(false));
        let mut w = BudgetWriter::new(Vec::new(), None, over.clone());
        w.write_all(&[7; 100_000]).unwrap();
        assert!(!over.load(Ordering::Relaxed));
        assert_eq!(w.into_inner().len(), 100_000);
    }
}
