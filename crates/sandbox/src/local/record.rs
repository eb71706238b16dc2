//! `state.json`: the non-secret record of a running sandbox's processes and cgroups. It is how a
//! provider instance — this one or one started after a server restart — finds, uses, stops and
//! removes a sandbox. Written atomically (temp file + rename) before the sandbox is given
//! anything to run (see `launch`).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::StartError;
use super::proc::ProcRef;
use super::{check_id, LocalProvider};
use crate::{ProviderError, Result};

/// Where a sandbox directory keeps its [`RunRecord`].
pub(super) const STATE_FILE: &str = "state.json";

/// A `state.json` that does not parse. Carried inside an `io::Error` of kind `InvalidData`
/// (what `remove` tolerates), with the parser's error as its source.
#[derive(Debug, thiserror::Error)]
#[error("corrupt state file of sandbox {id}: {source}")]
struct CorruptState {
    id: String,
    #[source]
    source: serde_json::Error,
}

/// What `state.json` records about a running sandbox. Nothing secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    /// The host-side bubblewrap process (parent of the init).
    pub bwrap: ProcRef,
    /// Pid 1 of the sandbox's pid namespace, as seen from the host.
    pub init: ProcRef,
    /// The egress network helper, if the sandbox has one.
    pub slirp4netns: Option<ProcRef>,
    /// Cgroup directories of the sandbox (limits), joined by every exec.
    pub cgroups: Vec<PathBuf>,
}

impl LocalProvider {
    pub(super) fn state_file(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join(STATE_FILE)
    }

    pub(super) fn read_record(&self, id: &str) -> Result<Option<RunRecord>> {
        match std::fs::read(self.state_file(id)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
                let corrupt = CorruptState {
                    id: id.to_owned(),
                    source,
                };
                ProviderError::Io(io::Error::new(io::ErrorKind::InvalidData, corrupt))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Self::write_record_at`] for a start.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) fn record_start(
        &self,
        dir: &Path,
        record: &RunRecord,
    ) -> std::result::Result<(), StartError> {
        self.write_record_at(dir, record)
            .map_err(StartError::Record)
    }

    pub(super) fn write_record_at(&self, dir: &Path, record: &RunRecord) -> io::Result<()> {
        let path = dir.join(STATE_FILE);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)
    }

    /// The record of a sandbox whose init is alive, or `NotRunning`.
    pub(super) fn running_record(&self, id: &str) -> Result<RunRecord> {
        if check_id(id).is_err() {
            return Err(ProviderError::NotRunning(id.to_owned()));
        }
        match self.read_record(id)? {
            Some(record) if record.init.is_alive() => Ok(record),
            _ => Err(ProviderError::NotRunning(id.to_owned())),
        }
    }

    /// Remove the record of a sandbox whose processes are gone. Missing is fine.
    pub(super) fn remove_record(dir: &Path) -> io::Result<()> {
        match std::fs::remove_file(dir.join(STATE_FILE)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}
