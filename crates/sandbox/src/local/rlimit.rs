//! Per-process resource limits (`setrlimit`) of every sandbox process, as a container runtime
//! sets them: open files, processes, core dumps, locked memory. Cgroups bound a sandbox as a
//! whole (memory, pids); these bound what each of its processes may take from tables the kernel
//! keeps for the whole host — above all the open-file table (`fs.file-max`), which no cgroup
//! limits: a sandbox that fills it makes every process of the host fail with `ENFILE` ("Too
//! many open files in system").
//!
//! The limits are set in the child between `fork` and `exec` (see [`super::proc::install`]) of
//! bubblewrap (so the init and everything it starts inherit them) and of every exec's entering
//! process (entering namespaces keeps the entering process's limits, and the command inherits
//! them). Soft and hard are set together, and the hard limit cannot be raised again inside: the
//! sandbox has no `CAP_SYS_RESOURCE` in the host's user namespace.
//!
//! # How many files a sandbox may hold
//!
//! A sandbox holds at most `pids × NOFILE` open files (its pids limit bounds its tasks, and each
//! process has at most `NOFILE` descriptors). The hard `NOFILE` of an exec is therefore derived
//! from the sandbox's pids limit so that this product stays within [`FILE_TABLE_SHARE`] of the
//! host's `fs.file-max`, and never above [`NOFILE_HARD_MAX`], `fs.nr_open` or the server's own
//! hard limit. On the machine this was written on (`fs.file-max` = 2,466,097): pids 1024 →
//! hard 1204 (soft 1024), pids 4096 → hard 301, so a sandbox at its limits holds at most half
//! the table and the host keeps the other half (see `docs/threat-model.md`).
//!
//! The egress helper (`slirp4netns`, a host process) holds one socket per connection of the
//! sandbox: its `NOFILE` is [`NOFILE_HARD_MAX`] too.
//!
//! `NPROC` counts the processes of the sandbox's uid in the sandbox's own user namespace (the
//! kernel counts per namespace and uid since 5.14), so it is set to the sandbox's pids limit on
//! execs: a backstop for hosts whose pids controller is missing. It is not set on bubblewrap:
//! the limit bubblewrap has when it creates the user namespace becomes that namespace's ceiling
//! for *every* process of the server's uid, which would cap all sandboxes together on a
//! non-root server.

use std::io;
use std::path::PathBuf;

/// Soft `RLIMIT_NOFILE` of sandbox processes (what `ulimit -n` shows), as Docker and Podman set
/// it; lowered to the hard limit when that is lower.
pub const NOFILE_SOFT: u64 = 1024;
/// The largest hard `RLIMIT_NOFILE` a sandbox process gets (the sandbox may raise its soft
/// limit up to the hard one).
pub const NOFILE_HARD_MAX: u64 = 4096;
/// The smallest hard `RLIMIT_NOFILE`, whatever the arithmetic says: below this, ordinary tools
/// (a shell, git, a compiler) stop working.
pub const NOFILE_HARD_MIN: u64 = 256;
/// `RLIMIT_NOFILE` of the init (it only sleeps) and of bubblewrap.
pub const NOFILE_INIT: u64 = 1024;
/// The share of the host's open-file table one sandbox at its limits may hold: 1/2.
pub const FILE_TABLE_SHARE: u64 = 2;
/// Processes assumed for a sandbox without a pids limit (no cgroup), for the arithmetic above
/// and as its `NPROC`.
pub const UNLIMITED_PIDS_ASSUMED: u64 = 4096;
/// `RLIMIT_CORE`: no core dumps (they would land in the sandbox's home, on the host's disk, and
/// may hold injected values).
pub const CORE: u64 = 0;
/// `RLIMIT_MEMLOCK` in bytes: 64 KiB, the kernel's and Docker's default; locked memory escapes
/// swap and reclaim.
pub const MEMLOCK: u64 = 64 * 1024;

/// One limit to set: (resource, soft, hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub resource: libc::__rlimit_resource_t,
    pub soft: u64,
    pub hard: u64,
}

/// The host's global limits the arithmetic needs, from `/proc/sys/fs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTables {
    /// `fs.file-max`: open files on the whole host.
    pub file_max: u64,
    /// `fs.nr_open`: the largest `RLIMIT_NOFILE` the kernel allows.
    pub nr_open: u64,
}

impl HostTables {
    /// This host's values (defaults when `/proc/sys/fs` cannot be read: no file limit, the
    /// kernel's default `nr_open`).
    pub fn read() -> HostTables {
        let read = |name: &str, default: u64| {
            std::fs::read_to_string(PathBuf::from("/proc/sys/fs").join(name))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(default)
        };
        HostTables {
            file_max: read("file-max", u64::MAX),
            nr_open: read("nr_open", 1 << 20),
        }
    }

    /// [`HostTables::read`] once per process: an exec is a hot path, and the host's tables are
    /// set at boot (a change takes effect at the server's next start).
    pub fn cached() -> HostTables {
        static TABLES: std::sync::OnceLock<HostTables> = std::sync::OnceLock::new();
        *TABLES.get_or_init(HostTables::read)
    }
}

/// The hard `RLIMIT_NOFILE` of a sandbox with at most `pids` processes (see the module docs).
pub fn nofile_hard(pids: Option<u64>, host: HostTables) -> u64 {
    let pids = pids.unwrap_or(UNLIMITED_PIDS_ASSUMED).max(1);
    (host.file_max / FILE_TABLE_SHARE / pids)
        .clamp(NOFILE_HARD_MIN, NOFILE_HARD_MAX)
        .min(host.nr_open)
}

/// The limits of an exec's command in a sandbox with at most `pids` processes.
pub(crate) fn for_exec(pids: Option<u64>, host: HostTables) -> Vec<Limit> {
    let hard = nofile_hard(pids, host);
    let nproc = pids.unwrap_or(UNLIMITED_PIDS_ASSUMED);
    vec![
        Limit {
            resource: libc::RLIMIT_NOFILE,
            soft: NOFILE_SOFT.min(hard),
            hard,
        },
        Limit {
            resource: libc::RLIMIT_NPROC,
            soft: nproc,
            hard: nproc,
        },
        Limit {
            resource: libc::RLIMIT_CORE,
            soft: CORE,
            hard: CORE,
        },
        Limit {
            resource: libc::RLIMIT_MEMLOCK,
            soft: MEMLOCK,
            hard: MEMLOCK,
        },
    ]
}

/// The limits of bubblewrap and the init (no `NPROC`: see the module docs).
pub(crate) fn for_init() -> Vec<Limit> {
    vec![
        Limit {
            resource: libc::RLIMIT_NOFILE,
            soft: NOFILE_INIT,
            hard: NOFILE_INIT,
        },
        Limit {
            resource: libc::RLIMIT_CORE,
            soft: CORE,
            hard: CORE,
        },
        Limit {
            resource: libc::RLIMIT_MEMLOCK,
            soft: MEMLOCK,
            hard: MEMLOCK,
        },
    ]
}

/// The limits of the egress helper (`slirp4netns`): every connection the sandbox opens is one
/// of its sockets, on the host's file table, so it gets [`NOFILE_HARD_MAX`] (about as many
/// connections at once).
pub(crate) fn for_network_helper() -> Vec<Limit> {
    vec![
        Limit {
            resource: libc::RLIMIT_NOFILE,
            soft: NOFILE_HARD_MAX,
            hard: NOFILE_HARD_MAX,
        },
        Limit {
            resource: libc::RLIMIT_CORE,
            soft: CORE,
            hard: CORE,
        },
    ]
}

/// `limits` as `rlimit` values the child can set without privilege: never above the server's
/// own hard limits (a process may lower its hard limit, not raise it).
pub(crate) fn prepare(limits: &[Limit]) -> io::Result<Vec<Limit>> {
    limits
        .iter()
        .map(|l| {
            let hard = l.hard.min(rustix_getrlimit(l.resource)?);
            Ok(Limit {
                resource: l.resource,
                soft: l.soft.min(hard),
                hard,
            })
        })
        .collect()
}

/// This process's hard limit of `resource` (`u64::MAX`: unlimited).
fn rustix_getrlimit(resource: libc::__rlimit_resource_t) -> io::Result<u64> {
    use rustix::process::Resource;
    let resource = match resource {
        libc::RLIMIT_NOFILE => Resource::Nofile,
        libc::RLIMIT_NPROC => Resource::Nproc,
        libc::RLIMIT_CORE => Resource::Core,
        libc::RLIMIT_MEMLOCK => Resource::Memlock,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("resource {other} is not one a sandbox limits"),
            ))
        }
    };
    Ok(rustix::process::getrlimit(resource)
        .maximum
        .unwrap_or(u64::MAX))
}

/// The pids limit of a sandbox from its cgroups (`pids.max`), `None` when it has none.
pub(crate) fn pids_of(cgroups: &[PathBuf]) -> Option<u64> {
    cgroups.iter().find_map(|dir| {
        std::fs::read_to_string(dir.join("pids.max"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_at_its_limits_holds_at_most_half_the_file_table() {
        let host = HostTables {
            file_max: 2_466_097,
            nr_open: 1 << 20,
        };
        assert_eq!(nofile_hard(Some(1024), host), 1204);
        assert_eq!(nofile_hard(Some(4096), host), 301);
        assert_eq!(nofile_hard(Some(64), host), NOFILE_HARD_MAX);
        assert_eq!(nofile_hard(None, host), 301);
        for pids in [8, 256, 1024, 4096] {
            assert!(pids * nofile_hard(Some(pids), host) <= host.file_max / 2);
        }
        // A tiny table: the floor wins, and nr_open always caps.
        let tiny = HostTables {
            file_max: 10_000,
            nr_open: 128,
        };
        assert_eq!(nofile_hard(Some(1024), tiny), 128);
        let exec = for_exec(Some(1024), host);
        assert_eq!((exec[0].soft, exec[0].hard), (1024, 1204));
        let low = for_exec(Some(4096), host);
        assert_eq!((low[0].soft, low[0].hard), (301, 301));
    }

    #[test]
    fn prepared_limits_never_exceed_the_servers_own() {
        let prepared = prepare(&[Limit {
            resource: libc::RLIMIT_NOFILE,
            soft: u64::MAX,
            hard: u64::MAX,
        }])
        .unwrap();
        let own = rustix_getrlimit(libc::RLIMIT_NOFILE).unwrap();
        assert_eq!(prepared[0].hard, own);
        assert!(prepared[0].soft <= own);
    }
}
