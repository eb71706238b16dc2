//! Warm sandboxes: bubblewrap already started, waiting for their injection script.
//!
//! Starting a sandbox's namespaces (bwrap, its mounts, the egress helper) is most of what a
//! create costs, and none of it depends on the secrets. So after a sandbox of some *shape*
//! (network mode and the home directories that get a tmpfs for credential files) starts, the
//! provider starts another one of that shape in the background and parks it here, stopped at the
//! point where a sandbox waits for its injection script (see `INIT_STAGE1`). The next create of
//! that shape claims it: its directory is renamed to the new sandbox's, it joins the new
//! sandbox's cgroups, and the script goes down its pipe — the same script and the same commit a
//! cold start sends.
//!
//! What a parked sandbox is not: it holds no value (none has been sent), it has no cgroups
//! (limits are per sandbox; the claim moves it into them before any command runs), and it
//! cannot outlive its provider — the provider holds the write end of its stdin, and an init
//! whose script never committed exits by itself when that pipe closes (server exit, crash, or
//! this pool dropping it).
//!
//! Directories: `<root>/.pool/<slot>/`, laid out as a sandbox directory. `.pool` cannot be a
//! sandbox id (ids never start with `.`), so listing sandboxes never sees it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use amika_types::NetworkMode;

use super::cgroup::Layout;
use super::launch::Launched;

/// How many shapes the pool keeps sandboxes for; the least recently used shape is dropped.
const MAX_SHAPES: usize = 4;

/// What a parked sandbox must match to serve a start: everything fixed when bwrap starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub network: NetworkMode,
    /// Home-relative directories with a tmpfs (see `script::tmpfs_dirs`).
    pub tmpfs_dirs: Vec<String>,
    /// Whether the sandbox has memory/pids limits, i.e. cgroups.
    pub limited: bool,
    /// The preset layer mounted (host path), if any: a warm sandbox without it, or with
    /// another version, never serves a start that wants it.
    pub preset: Option<PathBuf>,
    /// Which directory that path was when the sandbox started (device, inode, change time):
    /// a layer removed and installed again at the same path is another one, and a warm sandbox
    /// still holding the old (deleted) one must not serve it.
    pub preset_identity: Option<(u64, u64, i64, i64)>,
}

/// The cgroup name of a warm sandbox (a sandbox id never starts with `.`).
pub(crate) fn cgroup_name(slot: &str) -> String {
    format!(".pool-{slot}")
}

/// Remove what warm sandboxes of an earlier server left: their slots (except the links of claimed
/// ones whose sandbox still exists) and their empty cgroups; slots named `<own>…` are this
/// provider's and stay.
pub(crate) fn remove_stale(pool_dir: &Path, layout: &Layout, own: &str) {
    for entry in std::fs::read_dir(pool_dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(own) {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_symlink() => {
                if !path.exists() {
                    let _ = std::fs::remove_file(&path);
                }
            }
            _ => {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
    remove_stale_cgroups(layout, &cgroup_name(own));
}

/// Remove the links of claimed slots that point to sandbox `id` (it is being removed).
pub(crate) fn unlink_slots_of(pool_dir: &Path, id: &str) {
    for entry in std::fs::read_dir(pool_dir).into_iter().flatten().flatten() {
        if std::fs::read_link(entry.path()).is_ok_and(|t| t.file_name() == Some(id.as_ref())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Remove the empty cgroups of warm sandboxes an earlier server left behind (not those named
/// `<own>…`).
fn remove_stale_cgroups(layout: &Layout, own: &str) {
    let parents = layout.dirs("x");
    for parent in parents.iter().filter_map(|d| d.parent()) {
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".pool-") && !name.starts_with(own) {
                // Fails for one still in use, as it should.
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

/// A started sandbox waiting for its script, and its directory under `.pool`.
#[derive(Debug)]
pub(crate) struct Parked {
    pub dir: PathBuf,
    pub launched: Launched,
}

impl Parked {
    /// Let the sandbox go: closing its stdin ends its init (nothing was committed); its
    /// directory goes at once, its cgroups once its processes are gone (on a thread of its own:
    /// this may run outside any async runtime, in a `Drop`).
    pub fn discard(self) {
        let Parked { dir, launched } = self;
        let record = launched.record.clone();
        drop(launched);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a warm sandbox's directory");
            }
        }
        if record.cgroups.is_empty() {
            return;
        }
        std::thread::spawn(move || {
            for _ in 0..500 {
                if !record.init.is_alive() && !record.bwrap.is_alive() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            for dir in &record.cgroups {
                if let Err(e) = std::fs::remove_dir(dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a warm sandbox's cgroup");
                }
            }
        });
    }
}

#[derive(Debug)]
struct Slot {
    shape: Shape,
    parked: Vec<Parked>,
    /// Parked sandboxes being started for this shape right now.
    starting: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Least recently used first.
    slots: VecDeque<Slot>,
    closed: bool,
}

/// Parked sandboxes per shape, `size` of each.
#[derive(Debug)]
pub(crate) struct Pool {
    size: usize,
    state: Mutex<State>,
}

impl Pool {
    pub fn new(size: usize) -> Self {
        Pool {
            size,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A parked sandbox of this shape, if there is one.
    pub fn take(&self, shape: &Shape) -> Option<Parked> {
        self.lock()
            .slots
            .iter_mut()
            .find(|s| &s.shape == shape)
            .and_then(|s| s.parked.pop())
    }

    /// Note that a sandbox of `shape` was just started; true if the caller should start one
    /// more for the pool (it is then counted as starting until [`Self::put`] or
    /// [`Self::start_failed`]).
    pub fn want(&self, shape: &Shape) -> bool {
        if self.size == 0 {
            return false;
        }
        let mut evicted = Vec::new();
        let start = {
            let mut state = self.lock();
            if state.closed {
                return false;
            }
            let slot = match state.slots.iter().position(|s| &s.shape == shape) {
                Some(i) => state.slots.remove(i).expect("index from position"),
                None => Slot {
                    shape: shape.clone(),
                    parked: Vec::new(),
                    starting: 0,
                },
            };
            state.slots.push_back(slot);
            while state.slots.len() > MAX_SHAPES {
                if let Some(old) = state.slots.pop_front() {
                    evicted.extend(old.parked);
                }
            }
            let slot = state.slots.back_mut().expect("just pushed");
            let start = slot.parked.len() + slot.starting < self.size;
            if start {
                slot.starting += 1;
            }
            start
        };
        for parked in evicted {
            parked.discard();
        }
        start
    }

    /// Park a sandbox started after [`Self::want`] said so. Discarded if its shape was evicted
    /// meanwhile or the pool is closed.
    pub fn put(&self, shape: &Shape, parked: Parked) {
        let rejected = {
            let mut state = self.lock();
            let closed = state.closed;
            match state.slots.iter_mut().find(|s| &s.shape == shape) {
                Some(slot) => {
                    slot.starting = slot.starting.saturating_sub(1);
                    if closed {
                        Some(parked)
                    } else {
                        slot.parked.push(parked);
                        None
                    }
                }
                None => Some(parked),
            }
        };
        if let Some(parked) = rejected {
            parked.discard();
        }
    }

    /// A start announced by [`Self::want`] failed.
    pub fn start_failed(&self, shape: &Shape) {
        if let Some(slot) = self.lock().slots.iter_mut().find(|s| &s.shape == shape) {
            slot.starting = slot.starting.saturating_sub(1);
        }
    }

    /// Whether no warm sandbox is being started.
    pub fn is_settled(&self) -> bool {
        self.lock().slots.iter().all(|s| s.starting == 0)
    }

    /// How many sandboxes are parked (all shapes).
    pub fn parked(&self) -> usize {
        self.lock().slots.iter().map(|s| s.parked.len()).sum()
    }

    /// Discard every parked sandbox; later `want`/`put` calls park nothing.
    pub fn close(&self) {
        let parked: Vec<Parked> = {
            let mut state = self.lock();
            state.closed = true;
            state.slots.drain(..).flat_map(|s| s.parked).collect()
        };
        for p in parked {
            p.discard();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}
