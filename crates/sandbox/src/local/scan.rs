//! Finding sandbox processes by their command line, for what no `state.json` names: a bwrap (or
//! bwrap's child) left by a server killed in the middle of a start, and warm sandboxes an earlier
//! server left. The record is the normal way; this `/proc` scan is the backstop.

use std::path::Path;

use super::proc::{self, ProcRef};
use super::{check_id, LocalProvider, KILL_TIMEOUT, POOL_DIR};
use crate::Result;

impl LocalProvider {
    /// Host processes that still run bubblewrap's command line for a sandbox under this root,
    /// with the sandbox's id: bwrap itself, and bwrap's child *before* it becomes the init.
    /// `state.json` is the normal way to find a sandbox's processes; this scan is the backstop
    /// for what a server killed mid-start leaves before the record is written. One such case is
    /// real: bwrap writes `--info-fd` before it lets its child run, so if the server (the
    /// reader) is gone, the write kills bwrap and leaves the child blocked forever, with
    /// bwrap's argv. The `--bind <root>/<id>/home` argument names the sandbox.
    pub(super) fn bwrap_processes(&self) -> Vec<(String, ProcRef)> {
        self.bwrap_bound(|rest| {
            let mut id = rest.to_str()?.to_owned();
            // A claimed warm sandbox: its slot links to the sandbox (see `claim`).
            if let Some(slot) = id.strip_prefix(".pool/") {
                let link = std::fs::read_link(self.root_dir.join(POOL_DIR).join(slot)).ok()?;
                id = link.file_name()?.to_str()?.to_owned();
            }
            check_id(&id).ok().map(|()| id)
        })
    }

    /// Host processes running bubblewrap's command line with `--bind <root>/<dir>/home`, with
    /// what `name(<dir>)` makes of the directory (skipped on `None`).
    pub(super) fn bwrap_bound(
        &self,
        name: impl Fn(&Path) -> Option<String>,
    ) -> Vec<(String, ProcRef)> {
        use std::os::unix::ffi::OsStrExt;
        let bwrap = self.tools.bwrap.as_os_str().as_bytes();
        // A process's command name is its executable's file name cut to 15 bytes: bwrap (and
        // its child before that becomes the init) is named as what it was started as.
        let comm_of = |name: &[u8]| name[..name.len().min(15)].to_vec();
        let names = [
            comm_of(b"bwrap"),
            comm_of(
                Path::new(std::ffi::OsStr::from_bytes(bwrap))
                    .file_name()
                    .map_or(b"bwrap", |n| n.as_bytes()),
            ),
        ];
        proc::find_named_by_cmdline(
            |comm| names.iter().any(|n| n == comm.as_bytes()),
            |argv| {
                let program = Path::new(std::ffi::OsStr::from_bytes(argv.first()?));
                if program.as_os_str().as_bytes() != bwrap
                    && program.file_name() != Some("bwrap".as_ref())
                {
                    return None;
                }
                argv.windows(2).find_map(|pair| {
                    if pair[0] != b"--bind" {
                        return None;
                    }
                    let source = Path::new(std::ffi::OsStr::from_bytes(pair[1]));
                    let rest = source.strip_prefix(&self.root_dir).ok()?;
                    if rest.file_name()? != "home" {
                        return None;
                    }
                    name(rest.parent()?)
                })
            },
        )
    }

    /// Kill what [`Self::bwrap_processes`] finds for `id`: each process's children first (a
    /// bwrap's child is the sandbox's init, whose death ends the whole pid namespace), then the
    /// process itself.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn kill_strays(&self, id: &str) -> Result<()> {
        for (_, process) in self.bwrap_processes().into_iter().filter(|(i, _)| i == id) {
            for child in process.children() {
                child.kill_and_wait(KILL_TIMEOUT).await?;
            }
            process.kill_and_wait(KILL_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Host processes with bubblewrap's command line for a warm sandbox slot, with the slot.
    pub(super) fn bwrap_slots(&self) -> Vec<(String, ProcRef)> {
        self.bwrap_bound(|dir| {
            let slot = dir.strip_prefix(POOL_DIR).ok()?;
            (slot.components().count() == 1).then(|| slot.to_str().map(str::to_owned))?
        })
    }
}
