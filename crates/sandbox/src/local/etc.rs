//! The sandbox's `/etc`: one curated, read-only directory shared by every sandbox, bound with a
//! single mount.
//!
//! **Why.** Binding each wanted host `/etc` entry on its own costs one mount per entry (about 40)
//! plus the sandbox's own passwd/group/hosts/resolv.conf, and those mounts were most of a
//! sandbox's start time. Instead the provider keeps a *copy* of the wanted entries, plus amika's
//! own files, under `<root_dir>/.etc/<version>/{none,egress,host}` and binds the variant that
//! matches the sandbox's network mode on `/etc`:
//! - `none`: amika's `passwd`, `group`, `hosts`; no `resolv.conf` (there is no network);
//! - `egress`: the same plus `resolv.conf` naming slirp4netns' DNS forwarder;
//! - `host`: amika's `passwd` and `group`, the host's `hosts` and `resolv.conf` (copied, their
//!   symlinks followed, as a bind mount of them would). A read-only `/etc` cannot take further
//!   mount points, so `host` cannot be `none` with the host's files bound on top.
//!
//! **Security: only an allow-list is copied** ([`ETC_ENTRIES`] and versioned `python3.*` /
//! `java-*` entries), never all of `/etc`. Sandbox processes are the server's uid on the host
//! (that is how an unprivileged user namespace maps them), and the copies belong to that uid:
//! a root-owned 0600 file such as `/etc/shadow` copied by a root server would be readable
//! inside. For the same reason only files that every local user may read (`o+r`) and
//! directories every local user may enter (`o+rx`) are copied: a copy cannot widen access.
//! Modes are kept (without setuid/setgid/sticky bits); symlinks are recreated with the same
//! target text and never followed while walking (an `/etc/alternatives` link into `/usr` stays a
//! link); sockets, fifos and devices are skipped; a listed entry that does not exist is skipped,
//! like `--ro-bind-try`.
//!
//! **Staleness rule.** `<version>` is a hash of (path, device, inode, mode, size, mtime, ctime)
//! of every listed top-level entry and of every directory inside the listed directories (a file
//! replaced by rename changes its directory's mtime), of the followed `hosts` and `resolv.conf`,
//! and of amika's own file contents. Every call re-stats those paths (a few dozen `lstat`s,
//! tens of microseconds) and rebuilds only when one changed. Not seen: a file *inside* a listed
//! directory rewritten in place without a rename (package managers and `update-ca-certificates`
//! replace files by rename, or add and remove them, which changes the directory); it is picked
//! up with the next change that is seen, or by removing `<root_dir>/.etc`.
//!
//! **Atomic builds.** A version is built in `.etc/tmp-<pid>-<n>` and renamed into place; if
//! another builder won (the rename fails with `ENOTEMPTY`/`EEXIST`) its identical directory is
//! used. A source that changed while it was copied is detected by a second snapshot and the
//! build is redone.
//!
//! **Old versions** are removed after a build and on the first call of a provider, unless a
//! running process's command line names a path inside them (the bwrap of a running sandbox) or
//! this instance handed them out within [`HANDOUT_GRACE`] (a start that has not spawned its bwrap
//! yet). Temp dirs of dead processes are removed with them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hasher;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amika_types::NetworkMode;

/// `/etc` entries a sandbox sees besides its own passwd/group/hosts: what programs need to link,
/// resolve names, verify TLS and look things up. Deliberately *not* all of /etc (see the module
/// docs). Versioned `python3.*` and `java-*` entries are added to these.
pub(crate) const ETC_ENTRIES: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "gitconfig",
    "host.conf",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "magic.mime",
    "mime.types",
    "networks",
    "nsswitch.conf",
    "os-release",
    "perl",
    "profile",
    "profile.d",
    "protocols",
    "python3",
    "services",
    "shells",
    "ssl/certs",
    "ssl/openssl.cnf",
    "terminfo",
    "timezone",
    "vim",
];

pub(crate) const PASSWD: &str = "root:x:0:0:root:/root:/usr/sbin/nologin\n\
    amika:x:1000:1000:amika:/home/amika:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
pub(crate) const GROUP: &str = "root:x:0:\namika:x:1000:\nnogroup:x:65534:\n";
pub(crate) const HOSTS: &str =
    "127.0.0.1\tlocalhost amika\n::1\tlocalhost ip6-localhost ip6-loopback\n";
/// slirp4netns' built-in DNS forwarder.
pub(crate) const EGRESS_RESOLV_CONF: &str = "nameserver 10.0.2.3\n";

/// The host's files a `host`-mode sandbox sees (copied with their symlinks followed).
const HOST_FILES: &[&str] = &["hosts", "resolv.conf"];
/// Part of every fingerprint: bump it when the layout or the copy rules change, so that a new
/// server never reuses a directory an older one built differently.
const FORMAT: &str = "amika-etc-1";
/// How long a handed-out version is kept even though no process names it yet: the time between
/// [`Curated::dir`] returning and the caller's bwrap showing up in `/proc`.
pub(crate) const HANDOUT_GRACE: Duration = Duration::from_secs(60);
/// How many times a build is redone because the source changed while it was copied.
const BUILD_ATTEMPTS: usize = 3;

/// The curated `/etc` directories under one provider root, with the in-memory snapshot that makes
/// the common call a few dozen `lstat`s. One per provider.
#[derive(Debug)]
pub(crate) struct Curated {
    /// `<root_dir>/.etc`.
    etc_dir: PathBuf,
    /// The host's `/etc` (a fake one in tests).
    source: PathBuf,
    grace: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The version handed out last and the stats it was made from.
    current: Option<(Snapshot, PathBuf)>,
    /// Whether old versions were looked for since this instance was made.
    swept: bool,
    /// When each version was last handed out by this instance.
    handed_out: HashMap<String, Instant>,
    /// Full walks of the source and builds, for the tests.
    walks: u64,
    builds: u64,
}

impl Curated {
    /// The curated `/etc` of the provider keeping sandboxes under `root_dir`. Touches nothing
    /// until [`Curated::dir`] is called.
    pub(crate) fn new(root_dir: &Path) -> Self {
        Self::with_source(root_dir, Path::new("/etc"))
    }

    /// As [`Curated::new`], copying from `source` instead of the host's `/etc`.
    fn with_source(root_dir: &Path, source: &Path) -> Self {
        Curated {
            etc_dir: root_dir.join(".etc"),
            source: source.to_path_buf(),
            grace: HANDOUT_GRACE,
            state: Mutex::new(State::default()),
        }
    }

    /// The directory to bind read-only on `/etc` for a sandbox with this network mode. Cheap
    /// when nothing changed (one `lstat` per watched source path); rebuilt when something did.
    pub(crate) fn dir(&self, network: NetworkMode) -> io::Result<PathBuf> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = match &state.current {
            Some((snapshot, version_dir)) => snapshot.unchanged() && version_dir.is_dir(),
            None => false,
        };
        if !fresh {
            self.refresh(&mut state)?;
        }
        let (snapshot, version_dir) = state.current.as_ref().expect("refreshed");
        let variant = version_dir.join(variant_name(network));
        let version = snapshot.fingerprint.clone();
        state.handed_out.insert(version, Instant::now());
        Ok(variant)
    }

    /// Walk the source, build its version if no directory holds it yet, and remove old versions
    /// if anything was built (or this instance never looked).
    fn refresh(&self, state: &mut State) -> io::Result<()> {
        let root_dir = self.etc_dir.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(root_dir).map_err(|e| context(e, "cannot create", root_dir))?;
        match std::fs::DirBuilder::new().mode(0o700).create(&self.etc_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(context(e, "cannot create", &self.etc_dir)),
        }
        let mut snapshot = Snapshot::take(&self.source)?;
        state.walks += 1;
        let mut built = false;
        let mut attempts = 0;
        let version_dir = loop {
            let version_dir = self.etc_dir.join(&snapshot.fingerprint);
            if version_dir.is_dir() {
                break version_dir;
            }
            if attempts == BUILD_ATTEMPTS {
                return Err(io::Error::other(format!(
                    "{} kept changing while it was copied to {} ({BUILD_ATTEMPTS} attempts)",
                    self.source.display(),
                    self.etc_dir.display()
                )));
            }
            attempts += 1;
            let tmp = self.etc_dir.join(temp_name());
            let result = build(&self.source, &snapshot, &tmp);
            state.builds += 1;
            if let Err(e) = result {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            // What was copied must be what the name says: a source that changed meanwhile is
            // copied again under its new name.
            let after = Snapshot::take(&self.source)?;
            state.walks += 1;
            if after.fingerprint != snapshot.fingerprint {
                let _ = std::fs::remove_dir_all(&tmp);
                snapshot = after;
                continue;
            }
            match std::fs::rename(&tmp, &version_dir) {
                Ok(()) => built = true,
                // Another builder (another server on this root) got there first: same sources,
                // same copy.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(context(e, "cannot move into place", &version_dir));
                }
            }
            break version_dir;
        };
        let version = snapshot.fingerprint.clone();
        state.current = Some((snapshot, version_dir));
        if built || !state.swept {
            state.swept = true;
            self.sweep(&version, state);
        }
        Ok(())
    }

    /// Remove versions other than `current` that no process names and that this instance did not
    /// hand out recently, and temp dirs of dead builders. Best effort: a failure is logged, never
    /// fails a sandbox start.
    fn sweep(&self, current: &str, state: &mut State) {
        let Ok(entries) = std::fs::read_dir(&self.etc_dir) else {
            return;
        };
        let mut old_versions = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_version_name(name) && name != current {
                old_versions.push(name.to_owned());
            } else if let Some(pid) = temp_pid(name) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    remove_logged(&entry.path());
                }
            }
        }
        if old_versions.is_empty() {
            return;
        }
        let referenced = self.referenced_versions();
        let now = Instant::now();
        for name in old_versions {
            let recent = state
                .handed_out
                .get(&name)
                .is_some_and(|at| now.duration_since(*at) < self.grace);
            if recent || referenced.contains(&name) {
                continue;
            }
            state.handed_out.remove(&name);
            remove_logged(&self.etc_dir.join(&name));
        }
    }

    /// The versions that some process's command line names a path inside (a running sandbox's
    /// bwrap binds `<etc_dir>/<version>/<variant>`). Any process counts, not only bwrap: keeping
    /// a version too long costs a little disk, removing one in use empties a sandbox's `/etc`.
    fn referenced_versions(&self) -> HashSet<String> {
        let mut prefix = self.etc_dir.as_os_str().as_bytes().to_vec();
        prefix.push(b'/');
        super::proc::find_by_cmdline(|argv| {
            let names: Vec<String> = argv
                .iter()
                .filter_map(|arg| arg.strip_prefix(prefix.as_slice()))
                .filter_map(|rest| rest.split(|&b| b == b'/').next())
                .filter_map(|name| std::str::from_utf8(name).ok())
                .map(str::to_owned)
                .collect();
            (!names.is_empty()).then_some(names)
        })
        .into_iter()
        .flat_map(|(names, _)| names)
        .collect()
    }

    #[cfg(test)]
    fn counters(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap();
        (state.walks, state.builds)
    }
}

fn variant_name(network: NetworkMode) -> &'static str {
    match network {
        NetworkMode::None => "none",
        NetworkMode::Egress => "egress",
        NetworkMode::Host => "host",
    }
}

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
struct Snapshot {
    probes: Vec<Probe>,
    /// The listed top-level entries (source-relative) that exist, in copy order.
    entries: Vec<String>,
    /// Hex hash of the fingerprinted probes and amika's own files: the version's name.
    fingerprint: String,
}

impl Snapshot {
    fn take(source: &Path) -> io::Result<Snapshot> {
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
    fn unchanged(&self) -> bool {
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

fn is_version_name(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn temp_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The builder's pid in a temp dir's name.
fn temp_pid(name: &str) -> Option<u32> {
    name.strip_prefix("tmp-")?.split('-').next()?.parse().ok()
}

fn remove_logged(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path) {
        tracing::warn!("cannot remove old curated /etc {}: {e}", path.display());
    }
}

fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Build every variant of `snapshot` in `tmp`: `none` is copied from the source, the others are
/// hard links to its files (all are read-only in every sandbox, so they can share inodes; creating
/// an inode costs far more than a link on some filesystems), then each gets amika's own files.
fn build(source: &Path, snapshot: &Snapshot, tmp: &Path) -> io::Result<()> {
    make_dir(tmp)?;
    let none = tmp.join(variant_name(NetworkMode::None));
    make_dir(&none)?;
    for name in &snapshot.entries {
        let mut parent = none.clone();
        if let Some((dirs, _)) = name.rsplit_once('/') {
            for component in dirs.split('/') {
                parent.push(component);
                if !parent.is_dir() {
                    make_dir(&parent)?;
                }
            }
        }
        copy_entry(&source.join(name), &none.join(name))?;
    }
    for network in [NetworkMode::Egress, NetworkMode::Host] {
        link_tree(&none, &tmp.join(variant_name(network)))?;
    }
    for network in [NetworkMode::None, NetworkMode::Egress, NetworkMode::Host] {
        let dst = tmp.join(variant_name(network));
        write_file(&dst.join("passwd"), PASSWD.as_bytes())?;
        write_file(&dst.join("group"), GROUP.as_bytes())?;
        match network {
            NetworkMode::None => write_file(&dst.join("hosts"), HOSTS.as_bytes())?,
            NetworkMode::Egress => {
                write_file(&dst.join("hosts"), HOSTS.as_bytes())?;
                write_file(&dst.join("resolv.conf"), EGRESS_RESOLV_CONF.as_bytes())?;
            }
            // Host networking means the host's name resolution; a missing file stays missing.
            NetworkMode::Host => {
                for name in HOST_FILES {
                    match std::fs::read(source.join(name)) {
                        Ok(bytes) => write_file(&dst.join(name), &bytes)?,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(context(e, "cannot read", &source.join(name))),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Recreate the directories of our own tree `from` at `to`, hard-linking everything else
/// (`hard_link` does not follow a symlink on Linux: the link itself is linked).
fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    make_dir(to)?;
    for entry in std::fs::read_dir(from).map_err(|e| context(e, "cannot read", from))? {
        let entry = entry.map_err(|e| context(e, "cannot read", from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            link_tree(&src, &dst)?;
        } else {
            std::fs::hard_link(&src, &dst).map_err(|e| context(e, "cannot link", &dst))?;
        }
    }
    Ok(())
}

/// Copy one source path (see the module docs for what is copied and how).
fn copy_entry(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(src) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(context(e, "cannot inspect", src)),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| context(e, "cannot read", src))?;
        std::os::unix::fs::symlink(&target, dst).map_err(|e| context(e, "cannot create", dst))
    } else if kind.is_dir() {
        if meta.mode() & 0o005 != 0o005 {
            return Ok(());
        }
        make_dir(dst)?;
        let mut names: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| context(e, "cannot read", src))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| context(e, "cannot read", src))?;
        names.sort();
        for name in names {
            copy_entry(&src.join(&name), &dst.join(&name))?;
        }
        Ok(())
    } else if kind.is_file() {
        copy_file(src, dst)
    } else {
        // Sockets, fifos, devices: nothing a program reads configuration from.
        Ok(())
    }
}

fn copy_file(src: &Path, dst: &Path) -> io::Result<()> {
    // No following a symlink swapped in since the lstat, no blocking on a fifo.
    let mut from = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(src)
    {
        Ok(file) => file,
        // Not readable by the server: not for the sandbox either.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(context(e, "cannot open", src)),
    };
    let meta = from
        .metadata()
        .map_err(|e| context(e, "cannot inspect", src))?;
    if !meta.is_file() || meta.mode() & 0o004 == 0 {
        return Ok(());
    }
    let mode = meta.mode() & 0o777;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dst)
        .map_err(|e| context(e, "cannot create", dst))?;
    io::copy(&mut from, &mut to).map_err(|e| context(e, "cannot copy", src))?;
    // The umask may have narrowed the mode; the copy is meant to have the source's.
    to.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| context(e, "cannot chmod", dst))
}

fn make_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| context(e, "cannot create", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| context(e, "cannot chmod", path))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| context(e, "cannot create", path))?;
    io::Write::write_all(&mut file, bytes).map_err(|e| context(e, "cannot write", path))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| context(e, "cannot chmod", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Barrier};
    use std::time::SystemTime;

    /// A fake `/etc`. Timestamps are set to the past so that a change made by a test always
    /// gets a different one (a coarse clock could otherwise give it the same tick).
    fn fake_etc() -> tempfile::TempDir {
        let src = tempfile::tempdir().unwrap();
        let p = src.path();
        let file = |rel: &str, body: &str, mode: u32| {
            let path = p.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, body).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        };
        file("ld.so.cache", "cache bytes", 0o644);
        file("nsswitch.conf", "passwd: files\n", 0o644);
        file("shadow", "root:$6$secret", 0o600);
        file("gshadow", "root:*::", 0o600);
        file("ssl/certs/ca.pem", "CERT 1", 0o644);
        file("ssl/private/key.pem", "PRIVATE KEY", 0o600);
        file("ssl/openssl.cnf", "[openssl]\n", 0o644);
        file("perl/Deep/Er/mod.pm", "1;\n", 0o644);
        file("python3.11/sitecustomize.py", "# site\n", 0o644);
        file("java-17-openjdk/security/java.policy", "grant {};\n", 0o644);
        file("fonts/fonts.conf", "<fontconfig/>\n", 0o644);
        // In a listed directory but not for everyone: not copied.
        file("fonts/local.conf", "owner only\n", 0o640);
        file("profile.d/run.sh", "echo hi\n", 0o755);
        // Special bits are not copied.
        file("profile.d/suid.sh", "echo root\n", 0o4755);
        // A directory only its owner may enter: not copied, whatever is inside.
        file("perl/private/open.pm", "1;\n", 0o644);
        fs::set_permissions(p.join("perl/private"), fs::Permissions::from_mode(0o700)).unwrap();
        file("real-resolv", "nameserver 192.0.2.53\n", 0o644);
        file("hosts", "192.0.2.1\thost-only\n", 0o644);
        symlink("ca.pem", p.join("ssl/certs/link.pem")).unwrap();
        symlink("/usr/share/zoneinfo/Etc/UTC", p.join("localtime")).unwrap();
        fs::create_dir(p.join("alternatives")).unwrap();
        symlink("/usr/bin/vim.basic", p.join("alternatives/editor")).unwrap();
        symlink("real-resolv", p.join("resolv.conf")).unwrap();
        let fifo = std::ffi::CString::new(p.join("fonts/fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        #[allow(unsafe_code)]
        let made = unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) };
        assert_eq!(made, 0);
        age(p);
        src
    }

    /// Set every file's and directory's times below `dir` (and its own) an hour back.
    fn age(dir: &Path) {
        let past = SystemTime::now() - Duration::from_secs(3600);
        let times = fs::FileTimes::new().set_modified(past).set_accessed(past);
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                age(&entry.path());
            } else if kind.is_file() {
                fs::File::options()
                    .write(true)
                    .open(entry.path())
                    .unwrap()
                    .set_times(times)
                    .unwrap();
            }
        }
        fs::File::open(dir).unwrap().set_times(times).unwrap();
    }

    /// Replace a file the way package managers do: write a new one, rename it over.
    fn replace(path: &Path, body: &str) {
        let tmp = path.with_extension("new");
        fs::write(&tmp, body).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        fs::rename(&tmp, path).unwrap();
    }

    fn versions(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.join(".etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn version_of(variant: &Path) -> String {
        let version = variant.parent().unwrap().file_name().unwrap();
        version.to_str().unwrap().to_owned()
    }

    #[test]
    fn builds_the_allow_list_from_a_source_dir() {
        let src = fake_etc();
        let root = tempfile::tempdir().unwrap();
        let curated = Curated::with_source(root.path(), src.path());
        let none = curated.dir(NetworkMode::None).unwrap();
        let egress = curated.dir(NetworkMode::Egress).unwrap();
        let host = curated.dir(NetworkMode::Host).unwrap();
        assert_eq!(none.parent(), egress.parent());
        assert_eq!(
            none.parent().unwrap().parent().unwrap(),
            root.path().join(".etc")
        );
        assert!(is_version_name(&version_of(&none)));

        for dir in [&none, &egress, &host] {
            for rel in [
                "ld.so.cache",
                "nsswitch.conf",
                "ssl/certs/ca.pem",
                "ssl/openssl.cnf",
                "perl/Deep/Er/mod.pm",
                "python3.11/sitecustomize.py",
                "java-17-openjdk/security/java.policy",
                "fonts/fonts.conf",
                "profile.d/run.sh",
            ] {
                assert_eq!(
                    fs::read(dir.join(rel)).unwrap(),
                    fs::read(src.path().join(rel)).unwrap(),
                    "{rel} in {}",
                    dir.display()
                );
            }
            let mode = |rel: &str| fs::metadata(dir.join(rel)).unwrap().mode() & 0o7777;
            assert_eq!(mode("profile.d/run.sh"), 0o755);
            assert_eq!(mode("profile.d/suid.sh"), 0o755);
            assert_eq!(mode("ld.so.cache"), 0o644);
            assert_eq!(mode("perl/Deep"), 0o755);
            for (link, target) in [
                ("ssl/certs/link.pem", "ca.pem"),
                ("localtime", "/usr/share/zoneinfo/Etc/UTC"),
                ("alternatives/editor", "/usr/bin/vim.basic"),
            ] {
                let meta = fs::symlink_metadata(dir.join(link)).unwrap();
                assert!(meta.file_type().is_symlink(), "{link} must stay a symlink");
                assert_eq!(fs::read_link(dir.join(link)).unwrap(), Path::new(target));
            }
            // Not listed, not for everyone, not a file, or not there at all.
            for absent in [
                "shadow",
                "gshadow",
                "ssl/private",
                "fonts/local.conf",
                "fonts/fifo",
                "perl/private",
                "real-resolv",
                "vim",
                "terminfo",
            ] {
                assert!(
                    fs::symlink_metadata(dir.join(absent)).is_err(),
                    "{absent} must not be in {}",
                    dir.display()
                );
            }
            let passwd = fs::read_to_string(dir.join("passwd")).unwrap();
            assert!(passwd.contains("amika:x:1000:1000:"), "{passwd}");
            assert_eq!(fs::read_to_string(dir.join("group")).unwrap(), GROUP);
        }
        assert_eq!(fs::read_to_string(none.join("hosts")).unwrap(), HOSTS);
        assert!(!none.join("resolv.conf").exists());
        assert_eq!(fs::read_to_string(egress.join("hosts")).unwrap(), HOSTS);
        assert_eq!(
            fs::read_to_string(egress.join("resolv.conf")).unwrap(),
            "nameserver 10.0.2.3\n"
        );
        // Host mode: the host's files, symlink followed.
        assert_eq!(
            fs::read_to_string(host.join("hosts")).unwrap(),
            "192.0.2.1\thost-only\n"
        );
        let resolv = fs::symlink_metadata(host.join("resolv.conf")).unwrap();
        assert!(resolv.is_file());
        assert_eq!(
            fs::read_to_string(host.join("resolv.conf")).unwrap(),
            "nameserver 192.0.2.53\n"
        );
        // Nothing left behind by the build.
        assert_eq!(versions(root.path()), vec![version_of(&none)]);
    }

    #[test]
    fn an_unchanged_source_is_only_stat_ed() {
        let src = fake_etc();
        let root = tempfile::tempdir().unwrap();
        let curated = Curated::with_source(root.path(), src.path());
        let first = curated.dir(NetworkMode::Egress).unwrap();
        let ino = fs::metadata(first.parent().unwrap()).unwrap().ino();
        assert_eq!(
            curated.counters(),
            (2, 1),
            "one build, checked by a second walk"
        );
        for _ in 0..3 {
            assert_eq!(curated.dir(NetworkMode::Egress).unwrap(), first);
        }
        assert_eq!(curated.counters(), (2, 1), "no walk, no build");
        assert_eq!(fs::metadata(first.parent().unwrap()).unwrap().ino(), ino);

        // A new instance (a restarted server) walks once and reuses the directory.
        let again = Curated::with_source(root.path(), src.path());
        assert_eq!(again.dir(NetworkMode::Egress).unwrap(), first);
        assert_eq!(again.counters(), (1, 0));

        // A version dir removed behind the cache's back is rebuilt, not handed out missing.
        fs::remove_dir_all(first.parent().unwrap()).unwrap();
        assert_eq!(curated.dir(NetworkMode::Egress).unwrap(), first);
        assert!(first.join("passwd").is_file());
        assert_eq!(curated.counters(), (4, 2));
    }

    #[test]
    fn a_changed_source_makes_a_new_version_and_the_old_one_goes() {
        let src = fake_etc();
        let root = tempfile::tempdir().unwrap();
        let mut curated = Curated::with_source(root.path(), src.path());
        curated.grace = Duration::ZERO;
        let v1 = curated.dir(NetworkMode::None).unwrap();

        // Inside a listed directory, replaced by rename: seen through the directory's mtime.
        replace(&src.path().join("ssl/certs/ca.pem"), "CERT 2");
        let v2 = curated.dir(NetworkMode::None).unwrap();
        assert_ne!(v1, v2);
        assert_eq!(
            fs::read_to_string(v2.join("ssl/certs/ca.pem")).unwrap(),
            "CERT 2"
        );
        assert_eq!(versions(root.path()), vec![version_of(&v2)], "v1 removed");

        // A top-level file rewritten in place.
        fs::write(src.path().join("nsswitch.conf"), "passwd: files systemd\n").unwrap();
        let v3 = curated.dir(NetworkMode::None).unwrap();
        assert_ne!(v2, v3);
        assert_eq!(
            fs::read_to_string(v3.join("nsswitch.conf")).unwrap(),
            "passwd: files systemd\n"
        );

        // A listed entry that appears, and a new versioned one.
        fs::create_dir(src.path().join("vim")).unwrap();
        fs::write(src.path().join("vim/vimrc"), "set nocp\n").unwrap();
        fs::create_dir(src.path().join("python3.12")).unwrap();
        let v4 = curated.dir(NetworkMode::None).unwrap();
        assert_ne!(v3, v4);
        assert!(v4.join("vim/vimrc").is_file());
        assert!(v4.join("python3.12").is_dir());

        // The host's resolv.conf changes where its symlink points.
        fs::write(src.path().join("real-resolv"), "nameserver 192.0.2.54\n").unwrap();
        let v5 = curated.dir(NetworkMode::Host).unwrap();
        assert_ne!(version_of(&v4), version_of(&v5));
        assert_eq!(
            fs::read_to_string(v5.join("resolv.conf")).unwrap(),
            "nameserver 192.0.2.54\n"
        );

        // A change outside the allow-list (the source dir's own mtime moves) is no new version.
        replace(&src.path().join("shadow"), "root:$6$other");
        assert_eq!(curated.dir(NetworkMode::Host).unwrap(), v5);
        assert_eq!(versions(root.path()), vec![version_of(&v5)]);
    }

    #[test]
    fn a_version_handed_out_recently_is_kept() {
        let src = fake_etc();
        let root = tempfile::tempdir().unwrap();
        let curated = Curated::with_source(root.path(), src.path());
        let v1 = curated.dir(NetworkMode::None).unwrap();
        replace(&src.path().join("ld.so.cache"), "new cache");
        let v2 = curated.dir(NetworkMode::None).unwrap();
        assert_ne!(v1, v2);
        // A start may have v1 and not have spawned its bwrap yet.
        assert!(v1.join("passwd").is_file());
        assert_eq!(versions(root.path()).len(), 2);
    }

    /// bwrap with `etc` bound on `/etc`, running `script` as uid 1000.
    fn bwrap(etc: &Path, script: &str) -> Command {
        let mut cmd = Command::new("bwrap");
        cmd.args([
            "--unshare-all",
            "--die-with-parent",
            "--uid",
            "1000",
            "--gid",
            "1000",
        ])
        .args(["--ro-bind", "/usr", "/usr"])
        .args([
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/lib",
            "/lib",
        ])
        .args(["--symlink", "usr/lib64", "/lib64"])
        .arg("--ro-bind")
        .arg(etc)
        .arg("/etc")
        .args([
            "--proc", "/proc", "--dev", "/dev", "--", "/bin/sh", "-c", script,
        ]);
        cmd
    }

    #[test]
    fn a_version_a_running_bwrap_binds_is_kept() {
        let src = fake_etc();
        let root = tempfile::tempdir().unwrap();
        let mut curated = Curated::with_source(root.path(), src.path());
        curated.grace = Duration::ZERO;
        let v1 = curated.dir(NetworkMode::None).unwrap();
        let mut sandbox = bwrap(&v1, "test -f /etc/passwd && echo up; exec sleep 30")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bwrap (apt-get install -y bubblewrap)");
        // Running with v1 on /etc (and past bwrap's setup, which a kill could otherwise
        // interrupt before the inner bwrap has asked to die with its parent).
        let mut up = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(sandbox.stdout.take().unwrap()),
            &mut up,
        )
        .unwrap();
        assert_eq!(up, "up\n");
        replace(&src.path().join("ld.so.cache"), "cache 2");
        let v2 = curated.dir(NetworkMode::None).unwrap();
        let kept = v1.join("passwd").is_file();
        let _ = sandbox.kill();
        let _ = sandbox.wait();
        assert!(kept, "v1 is bound by a running bwrap");
        assert_ne!(v1, v2);
        // bwrap's own pid 1 inside (same command line) dies of its parent's death shortly after.
        let deadline = Instant::now() + Duration::from_secs(10);
        while curated.referenced_versions().contains(&version_of(&v1)) {
            assert!(Instant::now() < deadline, "bwrap did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }

        // Once that sandbox is gone, the next build removes it.
        replace(&src.path().join("ld.so.cache"), "cache 3");
        let v3 = curated.dir(NetworkMode::None).unwrap();
        assert_eq!(versions(root.path()), vec![version_of(&v3)]);
    }

    #[test]
    fn the_real_etc_is_curated() {
        let root = tempfile::tempdir().unwrap();
        let curated = Curated::new(root.path());
        let dir = curated.dir(NetworkMode::Egress).unwrap();
        assert!(dir.join("ld.so.cache").is_file());
        assert!(dir.join("ssl/certs").is_dir());
        if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
            assert_eq!(
                fs::read(dir.join("ssl/certs/ca-certificates.crt")).unwrap(),
                fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap()
            );
        }
        // Whatever the host has, none of this may reach a sandbox.
        for secret in [
            "shadow",
            "gshadow",
            "ssl/private",
            "ssh",
            "sudoers",
            "sudoers.d",
            "npmrc",
            "pip.conf",
            "machine-id",
        ] {
            assert!(
                fs::symlink_metadata(dir.join(secret)).is_err(),
                "{secret} must not be copied"
            );
        }
        assert!(ETC_ENTRIES.iter().all(|e| !e.starts_with("ssl/private")));
        let passwd = fs::read_to_string(dir.join("passwd")).unwrap();
        assert_eq!(passwd, PASSWD);
    }

    #[test]
    fn a_sandbox_runs_on_the_curated_etc() {
        let root = tempfile::tempdir().unwrap();
        let curated = Curated::new(root.path());
        let script = "id -un; cat /etc/resolv.conf; \
            test -r /etc/ssl/certs/ca-certificates.crt && echo certs; \
            test -e /etc/shadow || echo no-shadow; \
            touch /etc/x 2>/dev/null || echo read-only";
        let out = bwrap(&curated.dir(NetworkMode::Egress).unwrap(), script)
            .output()
            .expect("bwrap (apt-get install -y bubblewrap)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut expected = String::from("amika\nnameserver 10.0.2.3\n");
        if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
            expected.push_str("certs\n");
        }
        expected.push_str("no-shadow\nread-only\n");
        assert_eq!(stdout, expected);
    }

    #[test]
    fn concurrent_first_calls_agree() {
        let src = fake_etc();
        let root = tempfile::tempdir().unwrap();
        // Two instances stand for two processes on one root; a shared one for two threads.
        let shared = Arc::new(Curated::with_source(root.path(), src.path()));
        let callers = [
            Arc::new(Curated::with_source(root.path(), src.path())),
            Arc::new(Curated::with_source(root.path(), src.path())),
            shared.clone(),
            shared,
        ];
        let barrier = Arc::new(Barrier::new(callers.len()));
        let threads: Vec<_> = callers
            .into_iter()
            .map(|curated| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    curated.dir(NetworkMode::Egress).unwrap()
                })
            })
            .collect();
        let dirs: Vec<PathBuf> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(dirs.iter().all(|d| d == &dirs[0]), "{dirs:?}");
        assert_eq!(
            fs::read_to_string(dirs[0].join("ssl/certs/ca.pem")).unwrap(),
            "CERT 1"
        );
        assert_eq!(
            fs::read_to_string(dirs[0].join("resolv.conf")).unwrap(),
            EGRESS_RESOLV_CONF
        );
        assert_eq!(
            versions(root.path()),
            vec![version_of(&dirs[0])],
            "no temp dirs left"
        );
    }

    #[test]
    fn a_missing_source_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("no-such-etc");
        let curated = Curated::with_source(root.path(), &missing);
        let err = curated.dir(NetworkMode::None).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("no-such-etc"),
            "{err}"
        );
    }

    #[test]
    fn dead_builders_temp_dirs_are_removed() {
        let src = fake_etc();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join(".etc/tmp-999999999-0/none")).unwrap();
        let live = format!("tmp-{}-77", std::process::id());
        fs::create_dir_all(root.path().join(".etc").join(&live)).unwrap();
        let curated = Curated::with_source(root.path(), src.path());
        let dir = curated.dir(NetworkMode::None).unwrap();
        let mut expected = vec![version_of(&dir), live];
        expected.sort();
        assert_eq!(versions(root.path()), expected);
    }
}
