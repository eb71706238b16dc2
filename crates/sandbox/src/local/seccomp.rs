//! The default seccomp filter of every sandbox process: the init gets it from bubblewrap
//! (`--seccomp`), every exec from the entering process just before it runs the command (an
//! exec enters the sandbox's namespaces from outside, so it does not inherit the init's
//! filter).
//!
//! A deny list in the spirit of the common container runtimes' default profiles: the system
//! calls below answer `EPERM`, everything else is allowed. They reach kernel state that is one
//! for the whole host and not namespaced (keyrings, the clock, kernel modules, swap, the
//! accounting file, the kernel log), or are the kernel's most exploited surface for an
//! unprivileged process (eBPF, perf events, userfaultfd, file handles that bypass the mount
//! namespace). A system call of another ABI than the host's (32-bit x86 or x32 on x86_64)
//! answers `ENOSYS`: the filter could not name its numbers. Debuggers (`ptrace`) keep working,
//! as with those runtimes on current kernels. Namespaces are not the filter's business: the
//! sandbox is denied user namespaces by bubblewrap (`--disable-userns`), without which the
//! others cannot be made.

use std::sync::OnceLock;

/// The denied system calls, by name for the documentation and the tests.
pub const DENIED: &[(libc::c_long, &str)] = &[
    (libc::SYS_acct, "acct"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_clock_adjtime, "clock_adjtime"),
    (libc::SYS_clock_settime, "clock_settime"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_fsconfig, "fsconfig"),
    (libc::SYS_fsmount, "fsmount"),
    (libc::SYS_fsopen, "fsopen"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_lookup_dcookie, "lookup_dcookie"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_move_mount, "move_mount"),
    (libc::SYS_name_to_handle_at, "name_to_handle_at"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_open_tree, "open_tree"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_quotactl, "quotactl"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_request_key, "request_key"),
    (libc::SYS_settimeofday, "settimeofday"),
    (libc::SYS_swapoff, "swapoff"),
    (libc::SYS_swapon, "swapon"),
    (libc::SYS_syslog, "syslog"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_vhangup, "vhangup"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_iopl, "iopl"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_ioperm, "ioperm"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_uselib, "uselib"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_ustat, "ustat"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_sysfs, "sysfs"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS__sysctl, "_sysctl"),
];

/// The host's system call ABI as `seccomp_data.arch` names it (`AUDIT_ARCH_*`).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// x32 system calls on x86_64 are the native numbers with this bit set.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter as classic BPF, built once per process.
pub(crate) fn program() -> &'static [libc::sock_filter] {
    static PROGRAM: OnceLock<Vec<libc::sock_filter>> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let errno = |e: i32| libc::SECCOMP_RET_ERRNO | e as u32;
        // offsetof(struct seccomp_data, nr) = 0, arch = 4.
        let mut p = vec![
            op(LD_W_ABS, 0, 0, 4),
            op(JEQ_K, 1, 0, AUDIT_ARCH),
            op(RET_K, 0, 0, errno(libc::ENOSYS)),
            op(LD_W_ABS, 0, 0, 0),
            op(JGE_K, 0, 1, X32_SYSCALL_BIT),
            op(RET_K, 0, 0, errno(libc::ENOSYS)),
        ];
        // One test per denied call, each jumping to the final `EPERM` when it matches.
        let n = DENIED.len();
        for (i, (nr, _)) in DENIED.iter().enumerate() {
            let to_deny = (n - i) as u8; // over the rest of the tests and the `ALLOW`
            p.push(op(JEQ_K, to_deny, 0, *nr as u32));
        }
        p.push(op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
        p.push(op(RET_K, 0, 0, errno(libc::EPERM)));
        p
    })
}

/// The filter's address and length, for a `sock_fprog` made in a forked child (which may not
/// allocate; the program is static).
pub(crate) fn address() -> (usize, libc::c_ushort) {
    let program = program();
    (program.as_ptr() as usize, program.len() as libc::c_ushort)
}

/// In a forked child (only system calls, no allocation): `no_new_privs`, then the filter at
/// `address` (from [`address`], taken before the fork), for this process and all it starts.
#[allow(unsafe_code)]
pub(crate) fn restrict_self((at, len): (usize, libc::c_ushort)) -> std::io::Result<()> {
    let program = libc::sock_fprog {
        len,
        filter: at as *mut libc::sock_filter,
    };
    // SAFETY: `prctl` and `seccomp` are plain system calls (async-signal-safe); `program`
    // points at the static program `address` described, which lives for the whole process.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        let mode = libc::SECCOMP_SET_MODE_FILTER;
        if libc::syscall(libc::SYS_seccomp, mode, 0, &raw const program) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The filter as the bytes bubblewrap's `--seccomp FD` reads (the `sock_filter` array).
pub(crate) fn program_bytes() -> Vec<u8> {
    program()
        .iter()
        .flat_map(|f| {
            let mut b = Vec::with_capacity(8);
            b.extend_from_slice(&f.code.to_ne_bytes());
            b.push(f.jt);
            b.push(f.jf);
            b.extend_from_slice(&f.k.to_ne_bytes());
            b
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denied_call_jumps_to_eperm_and_nothing_else_does() {
        let p = program();
        let deny = p.len() - 1;
        assert_eq!(p[deny].k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
        assert_eq!(p[deny - 1].k, libc::SECCOMP_RET_ALLOW);
        for (i, (nr, name)) in DENIED.iter().enumerate() {
            let at = 6 + i;
            assert_eq!(p[at].k, *nr as u32, "{name}");
            assert_eq!(at + 1 + p[at].jt as usize, deny, "{name}");
            assert_eq!(p[at].jf, 0, "{name}");
        }
        assert_eq!(program_bytes().len(), p.len() * 8);
    }
}
