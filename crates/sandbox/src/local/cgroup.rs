//! Per-sandbox cgroups for memory and pids limits, on cgroup v2 or the v1/hybrid layout.
//!
//! Layout is detected once from `/proc/self/mountinfo`:
//! - **v2** (`/sys/fs/cgroup` is cgroup2 and offers `memory` and `pids`): sandboxes go under
//!   `<root>/amika/<id>`, with both controllers enabled in the subtree. They hang off the root
//!   because v2 forbids enabling controllers below a cgroup that has processes (the server's).
//! - **v1/hybrid** (separate `memory` and `pids` hierarchies): sandboxes go under the *server's
//!   own* cgroup in each hierarchy, `<mount>/<server's path>/amika/<id>`, so whatever limits the
//!   server runs under (a systemd unit, a container) still bound its sandboxes.
//!
//! A process joins by writing to `cgroup.procs` in the child before exec (see
//! [`super::proc::install`]), so nothing it forks escapes. Execs join too (entering a
//! sandbox's namespaces does not move a process into its cgroups).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a sandbox's cgroups could not be made or limited.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No usable layout on this machine; the reason says what is missing.
    #[error("cannot enforce memory/pids limits: {0}")]
    Unavailable(String),
    #[error("cannot set up cgroup {}: {source}", .dir.display())]
    Setup {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot set {file} of cgroup {}: {source}", .dir.display())]
    Limit {
        file: &'static str,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The directories do not match the layout (a bug, not a host problem).
    #[error("unexpected cgroup layout")]
    UnexpectedLayout,
}

/// Where per-sandbox cgroups live on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    V2 {
        base: PathBuf,
    },
    V1 {
        memory: PathBuf,
        pids: PathBuf,
    },
    /// Limits cannot be enforced; the reason says why.
    Unavailable(String),
}

impl Layout {
    /// Detect from the running system.
    pub fn detect() -> Layout {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let v2_controllers = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").ok();
        Layout::from_system(&mountinfo, &own, v2_controllers.as_deref())
    }

    /// Detection from the text of `/proc/self/mountinfo`, `/proc/self/cgroup` and (if present)
    /// `/sys/fs/cgroup/cgroup.controllers`; separate so each layout can be unit-tested.
    pub fn from_system(mountinfo: &str, own_cgroup: &str, v2_controllers: Option<&str>) -> Layout {
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
        if let Some(m) = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2" && m.mount_point == "/sys/fs/cgroup")
        {
            let controllers = v2_controllers.unwrap_or("");
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            return if has("memory") && has("pids") {
                Layout::V2 {
                    base: PathBuf::from(&m.mount_point).join("amika"),
                }
            } else {
                Layout::Unavailable(format!(
                    "cgroup v2 at /sys/fs/cgroup does not offer the memory and pids controllers (it offers: {})",
                    controllers.trim()
                ))
            };
        }
        let v1 = |controller: &str| -> Option<PathBuf> {
            let m = mounts.iter().find(|m| {
                m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == controller)
            })?;
            // "4:memory:/process_api/abc" — the server's own cgroup in that hierarchy.
            let own_path = own_cgroup.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
                list.split(',').any(|c| c == controller).then_some(path)
            })?;
            // The mount may show only a subtree (containers): strip the mount's root.
            let relative = own_path
                .strip_prefix(m.root.trim_end_matches('/'))
                .unwrap_or(own_path);
            Some(
                Path::new(&m.mount_point)
                    .join(relative.trim_start_matches('/'))
                    .join("amika"),
            )
        };
        match (v1("memory"), v1("pids")) {
            (Some(memory), Some(pids)) => Layout::V1 { memory, pids },
            _ => Layout::Unavailable(
                "no usable cgroup hierarchy with the memory and pids controllers (neither cgroup v2 at /sys/fs/cgroup nor v1 memory and pids hierarchies are mounted)".into(),
            ),
        }
    }

    /// Where the cgroup(s) of sandbox `id` are (whether or not they exist).
    pub fn dirs(&self, id: &str) -> Vec<PathBuf> {
        match self {
            Layout::V2 { base } => vec![base.join(id)],
            Layout::V1 { memory, pids } => vec![memory.join(id), pids.join(id)],
            Layout::Unavailable(_) => Vec::new(),
        }
    }

    /// Create the cgroup(s) of sandbox `id` with these limits; returns their directories (each
    /// with a `cgroup.procs` to join). Replaces leftovers of an earlier run.
    pub fn create(
        &self,
        id: &str,
        memory_mib: Option<u64>,
        pids: Option<u64>,
    ) -> Result<Vec<PathBuf>, CgroupError> {
        self.make(id, |dir| {
            if let Layout::V2 { base } = self {
                enable_v2_controllers(base)?;
            }
            make_fresh_dir(dir)
        })
        .and_then(|dirs| self.limit(dirs, memory_mib, pids))
    }

    /// Rename the cgroups `from` (a warm sandbox's, with its processes in them) to those of
    /// sandbox `id` and give them its limits. Unlike moving processes between cgroups, which
    /// waits for an RCU grace period in the kernel (milliseconds), a rename is immediate.
    pub fn adopt(
        &self,
        from: &[PathBuf],
        id: &str,
        memory_mib: Option<u64>,
        pids: Option<u64>,
    ) -> Result<Vec<PathBuf>, CgroupError> {
        let mut from = from.iter();
        self.make(id, |to| {
            let source = from
                .next()
                .ok_or_else(|| io::Error::other("the warm sandbox has no such cgroup"))?;
            remove_leftover(to)?;
            std::fs::rename(source, to)
        })
        .and_then(|dirs| self.limit(dirs, memory_mib, pids))
    }

    /// The cgroup dirs of `id`, each brought into being by `make`.
    fn make(
        &self,
        id: &str,
        mut make: impl FnMut(&Path) -> io::Result<()>,
    ) -> Result<Vec<PathBuf>, CgroupError> {
        if let Layout::Unavailable(reason) = self {
            return Err(CgroupError::Unavailable(reason.clone()));
        }
        let dirs = self.dirs(id);
        for dir in &dirs {
            make(dir).map_err(|source| CgroupError::Setup {
                dir: dir.clone(),
                source,
            })?;
        }
        Ok(dirs)
    }

    /// Write the limits into the cgroups `dirs` of this layout (as `dirs` returns them).
    fn limit(
        &self,
        dirs: Vec<PathBuf>,
        memory_mib: Option<u64>,
        pids: Option<u64>,
    ) -> Result<Vec<PathBuf>, CgroupError> {
        let memory_bytes = memory_mib.map(|m| m.saturating_mul(1024 * 1024));
        let write = |dir: &Path, file: &'static str, value: String| {
            std::fs::write(dir.join(file), value).map_err(|source| CgroupError::Limit {
                file,
                dir: dir.to_path_buf(),
                source,
            })
        };
        let (mem_dir, pids_dir) = match (self, dirs.as_slice()) {
            (Layout::V2 { .. }, [dir]) => (dir, dir),
            (Layout::V1 { .. }, [mem, pids]) => (mem, pids),
            _ => return Err(CgroupError::UnexpectedLayout),
        };
        if let Some(bytes) = memory_bytes {
            if let Layout::V2 { .. } = self {
                write(mem_dir, "memory.max", bytes.to_string())?;
                // Without this, a v2 sandbox could push its excess into swap.
                let _ = std::fs::write(mem_dir.join("memory.swap.max"), "0");
            } else {
                write(mem_dir, "memory.limit_in_bytes", bytes.to_string())?;
                // Only present with swap accounting; must not be below the plain limit.
                let _ = std::fs::write(
                    mem_dir.join("memory.memsw.limit_in_bytes"),
                    bytes.to_string(),
                );
            }
        }
        if let Some(n) = pids {
            write(pids_dir, "pids.max", n.to_string())?;
        }
        Ok(dirs)
    }
}

/// Remove sandbox cgroups (their processes must be gone). Missing ones are fine. A cgroup whose
/// last process just exited can be busy for a moment, hence the short retry.
pub(crate) async fn remove(dirs: &[PathBuf]) -> io::Result<()> {
    for dir in dirs {
        let mut attempt = 0;
        loop {
            match std::fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    tracing::debug!(dir = %dir.display(), error = %e, "cgroup busy, retrying");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Whether the kernel's OOM killer killed a process in these cgroups (for a useful
/// "not running" reason).
pub(crate) fn oom_killed(dirs: &[PathBuf]) -> bool {
    Events::read(dirs).oom_kills > 0
}

/// How often the sandbox's limits have bitten so far. Compared before and after an exec, so
/// that the exec can say why its command died or could not fork.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Events {
    /// Processes the OOM killer killed (`oom_kill` in v2 `memory.events`, v1
    /// `memory.oom_control`).
    pub oom_kills: u64,
    /// Forks refused at the pids limit (`max` in `pids.events`, v1 and v2).
    pub pids_max: u64,
}

impl Events {
    pub fn read(dirs: &[PathBuf]) -> Events {
        let counter = |file: &Path, key: &str| -> u64 {
            std::fs::read_to_string(file)
                .ok()
                .and_then(|text| {
                    text.lines().find_map(|l| {
                        l.strip_prefix(key)?
                            .strip_prefix(' ')?
                            .trim()
                            .parse::<u64>()
                            .ok()
                    })
                })
                .unwrap_or(0)
        };
        let mut events = Events::default();
        for dir in dirs {
            events.oom_kills += counter(&dir.join("memory.events"), "oom_kill")
                + counter(&dir.join("memory.oom_control"), "oom_kill");
            events.pids_max += counter(&dir.join("pids.events"), "max");
        }
        events
    }
}

fn make_fresh_dir(dir: &Path) -> io::Result<()> {
    remove_leftover(dir)?;
    std::fs::create_dir_all(dir)
}

/// Remove an (empty) cgroup an earlier run left at `dir`, if there is one.
fn remove_leftover(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn enable_v2_controllers(base: &Path) -> io::Result<()> {
    std::fs::create_dir_all(base)?;
    for dir in [base.parent().unwrap_or(base), base] {
        let control = dir.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control)?;
        if !(enabled.split_whitespace().any(|c| c == "memory")
            && enabled.split_whitespace().any(|c| c == "pids"))
        {
            std::fs::write(&control, "+memory +pids")?;
        }
    }
    Ok(())
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug)]
struct Mount {
    root: String,
    mount_point: String,
    fstype: String,
    super_options: String,
}

impl Mount {
    fn parse(line: &str) -> Option<Mount> {
        // "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory"
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        Some(Mount {
            root: left.get(3)?.to_string(),
            mount_point: left.get(4)?.to_string(),
            fstype: right.first()?.to_string(),
            super_options: right.get(2).unwrap_or(&"").to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn detects_hybrid_v1_under_the_servers_own_cgroup() {
        let own = "8:pids:/\n4:memory:/process_api/abc\n0::/\n";
        assert_eq!(
            Layout::from_system(HYBRID, own, None),
            Layout::V1 {
                memory: "/sys/fs/cgroup/memory/process_api/abc/amika".into(),
                pids: "/sys/fs/cgroup/pids/amika".into(),
            }
        );
    }

    #[test]
    fn detects_v1_mounted_as_a_subtree() {
        let mountinfo = "\
35 31 0:32 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
39 31 0:36 /docker/x /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let own = "8:pids:/docker/x\n4:memory:/docker/x/inner\n";
        assert_eq!(
            Layout::from_system(mountinfo, own, None),
            Layout::V1 {
                memory: "/sys/fs/cgroup/memory/inner/amika".into(),
                pids: "/sys/fs/cgroup/pids/amika".into(),
            }
        );
    }

    #[test]
    fn detects_pure_v2() {
        let mountinfo = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            Layout::from_system(
                mountinfo,
                "0::/user.slice\n",
                Some("cpuset cpu io memory pids\n")
            ),
            Layout::V2 {
                base: "/sys/fs/cgroup/amika".into()
            }
        );
        assert!(matches!(
            Layout::from_system(mountinfo, "0::/\n", Some("cpu io\n")),
            Layout::Unavailable(_)
        ));
    }

    #[test]
    fn nothing_usable() {
        assert!(matches!(
            Layout::from_system("", "", None),
            Layout::Unavailable(_)
        ));
        let err = Layout::from_system("", "", None)
            .create("x", Some(1), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot enforce memory/pids limits"),
            "{err}"
        );
    }
}
