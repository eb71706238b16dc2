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

mod copy;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amika_types::NetworkMode;

use self::copy::build;
use self::snapshot::Snapshot;

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

/// `e` saying what was done to which path, of the same kind, with `e` as its source.
fn context(e: io::Error, what: &'static str, path: &Path) -> io::Error {
    let kind = e.kind();
    io::Error::new(
        kind,
        PathError {
            what,
            path: path.to_path_buf(),
            source: e,
        },
    )
}

/// An I/O error on a path of the curated `/etc` (see [`context`]).
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", .path.display())]
struct PathError {
    what: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}
