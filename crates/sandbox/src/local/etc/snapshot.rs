//! What the curated `/etc` depends on: a snapshot of the stats of every watched source path, and
//! the fingerprint (the version's name) made from them. Re-checking a snapshot is a few dozen
//! `lstat`s; see the parent module's staleness rule.

use std::collections::BTreeSet;
use std::hash::Hasher;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{context, EGRESS_RESOLV_CONF, ETC_ENTRIES, FORMAT, GROUP, HOSTS, HOST_FILES, PASSWD};

/// What identifies a version of a path: any rewrite, rename-over, chmod or chown changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatKey {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl StatKey {
    fn of(path: &Path, follow: bool) -> Option<StatKey> {
        let meta = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        }
        .ok()?;
        Some(StatKey {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// One watched source path and what it was when the snapshot was taken (`None`: absent).
#[derive(Debug)]
struct Probe {
    path: PathBuf,
    /// Source-relative, for the fingerprint; `None` for paths only watched to notice new
    /// entries (the source dir itself, parents of nested entries), which change for unrelated
    /// reasons and must not make a new version.
    rel: Option<String>,
    follow: bool,
    key: Option<StatKey>,
}

/// The state of the source as far as the curated copy depends on it.
#[derive(Debug)]
pub(super) struct Snapshot {
    probes: Vec<Probe>,
    /// The listed top-level entries (source-relative) that exist, in copy order.
    pub(super) entries: Vec<String>,
    /// Hex hash of the fingerprinted probes and amika's own files: the version's name.
    pub(super) fingerprint: String,
}

impl Snapshot {
    pub(super) fn take(source: &Path) -> io::Result<Snapshot> {
        let mut probes = Vec::new();
        let mut watch = |path: PathBuf| {
            let key = StatKey::of(&path, false);
            probes.push(Probe {
                path,
                rel: None,
                follow: false,
                key,
            });
        };
        watch(source.to_path_buf());
        let names = entry_names(source)?;
        let parents: BTreeSet<&str> = names
            .iter()
            .filter_map(|n| n.rsplit_once('/').map(|(parent, _)| parent))
            .collect();
        for parent in parents {
            watch(source.join(parent));
        }
        let mut entries = Vec::new();
        for name in &names {
            let path = source.join(name);
            let key = StatKey::of(&path, false);
            if key.is_some() {
                entries.push(name.clone());
            }
            let is_dir = key.is_some_and(|k| k.mode & libc::S_IFMT == libc::S_IFDIR);
            probes.push(Probe {
                path: path.clone(),
                rel: Some(name.clone()),
                follow: false,
                key,
            });
            if is_dir {
                walk_dirs(&path, name, &mut probes);
            }
        }
        for name in HOST_FILES {
            let path = source.join(name);
            let key = StatKey::of(&path, true);
            probes.push(Probe {
                path,
                rel: Some(format!("host:{name}")),
                follow: true,
                key,
            });
        }
        let fingerprint = fingerprint(&probes);
        Ok(Snapshot {
            probes,
            entries,
            fingerprint,
        })
    }

    /// Whether every probed path still has the stats it had.
    pub(super) fn unchanged(&self) -> bool {
        self.probes
            .iter()
            .all(|p| StatKey::of(&p.path, p.follow) == p.key)
    }
}

/// The entry names to copy: the fixed list plus the source's versioned `python3.*`/`java-*`.
fn entry_names(source: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = ETC_ENTRIES.iter().map(|s| s.to_string()).collect();
    let dir = std::fs::read_dir(source).map_err(|e| context(e, "cannot read", source))?;
    for entry in dir {
        let entry = entry.map_err(|e| context(e, "cannot read", source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("python3.") || name.starts_with("java-") {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Probe every directory below `dir` (not following symlinks), in name order.
fn walk_dirs(dir: &Path, rel: &str, probes: &mut Vec<Probe>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name())
        .collect();
    subdirs.sort();
    for name in subdirs {
        let path = dir.join(&name);
        let rel = format!("{rel}/{}", name.to_string_lossy());
        probes.push(Probe {
            key: StatKey::of(&path, false),
            path: path.clone(),
            rel: Some(rel.clone()),
            follow: false,
        });
        walk_dirs(&path, &rel, probes);
    }
}

/// FNV-1a, 64 bits: a stable (across builds and processes) name for a set of stats. Not a
/// security boundary: the sources are root's `/etc`, not something a sandbox controls.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn fingerprint(probes: &[Probe]) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    let mut field = |bytes: &[u8]| {
        h.write_u64(bytes.len() as u64);
        h.write(bytes);
    };
    for constant in [FORMAT, PASSWD, GROUP, HOSTS, EGRESS_RESOLV_CONF] {
        field(constant.as_bytes());
    }
    for probe in probes {
        let Some(rel) = &probe.rel else { continue };
        field(rel.as_bytes());
        match probe.key {
            None => field(b"absent"),
            Some(k) => {
                for n in [
                    k.dev,
                    k.ino,
                    u64::from(k.mode),
                    k.size,
                    k.mtime.0 as u64,
                    k.mtime.1 as u64,
                    k.ctime.0 as u64,
                    k.ctime.1 as u64,
                ] {
                    field(&n.to_le_bytes());
                }
            }
        }
    }
    format!("{:016x}", h.finish())
}
