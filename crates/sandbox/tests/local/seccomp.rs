//! The default seccomp filter in a real sandbox: the init (from bubblewrap) and every exec
//! (from the entering process) run under it, each denied call answers `EPERM` and an allowed
//! one still works. Before it, a sandbox could call `keyctl`, `bpf`, `perf_event_open`,
//! `userfaultfd` and the rest on the host's kernel.

use super::*;
use amika_sandbox::local::seccomp::DENIED;

/// Call each system call number of `numbers` with zero arguments and print "nr errno" per
/// call (0 when it succeeded or failed otherwise than the filter would).
fn calls_script(numbers: &[libc::c_long]) -> String {
    format!(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nfor nr in {numbers:?}:\n    \
         ctypes.set_errno(0)\n    r = libc.syscall(nr, 0, 0, 0, 0, 0)\n    \
         print(nr, ctypes.get_errno() if r == -1 else 0)\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_init_and_every_exec_run_under_the_filter_and_denied_calls_answer_eperm() {
    let guard = Guard::new();
    let p = guard.provider();
    p.start(&spec("filtered"), Injection::default())
        .await
        .unwrap();

    // Both the init (pid 1 inside) and this exec carry one filter.
    let status = sh(
        &p,
        "filtered",
        "grep -E '^Seccomp(_filters)?:' /proc/1/status /proc/self/status",
    )
    .await;
    for who in ["/proc/1/status", "/proc/self/status"] {
        assert!(status.contains(&format!("{who}:Seccomp:\t2")), "{status}");
        assert!(
            status.contains(&format!("{who}:Seccomp_filters:\t1")),
            "{status}"
        );
    }

    let denied: Vec<libc::c_long> = DENIED.iter().map(|(nr, _)| *nr).collect();
    let out = run(&p, "filtered", &["python3", "-c", &calls_script(&denied)]).await;
    let text = out.out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), DENIED.len(), "{}", out.out());
    for ((nr, name), line) in DENIED.iter().zip(&lines) {
        assert_eq!(*line, format!("{nr} {}", libc::EPERM), "{name}");
    }
    // Calls outside the list keep working: getpid succeeds, and so does ptrace's TRACEME check
    // of a debugger (PTRACE_TRACEME = 0 succeeds once).
    let allowed = [libc::SYS_getpid, libc::SYS_ptrace];
    let out = run(&p, "filtered", &["python3", "-c", &calls_script(&allowed)]).await;
    assert_eq!(
        out.out(),
        format!("{} 0\n{} 0\n", allowed[0], allowed[1]),
        "{}",
        out.out()
    );
    p.remove("filtered").await.unwrap();
}
