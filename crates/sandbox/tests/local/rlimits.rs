//! Per-process resource limits in a real sandbox: the init and every exec get them, and a
//! process that opens too many files meets its own limit (`EMFILE`), never the host's
//! (`ENFILE`). Before the limits, an exec had the server's 20,000 open files and unlimited core
//! dumps, and 1,024 such processes could fill the host's open-file table.

use super::*;
use amika_sandbox::local::rlimit::{self, HostTables};

/// `/proc/<pid>/limits` line of `name` as (soft, hard).
fn limit_line<'a>(limits: &'a str, name: &str) -> (&'a str, &'a str) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {limits}"));
    let mut fields = line[name.len()..].split_whitespace();
    (fields.next().unwrap(), fields.next().unwrap())
}

/// (dash, the sandbox's `sh`, names the process limit `ulimit -p`.)
/// Open `/dev/null` until it fails: "errno count".
const OPEN_UNTIL_FULL: &str = "import os\nn = 0\ntry:\n    while True:\n        os.open('/dev/null', os.O_RDONLY)\n        n += 1\nexcept OSError as e:\n    print(e.errno, n)\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_init_and_every_exec_get_the_sandbox_rlimits() {
    let guard = Guard::new();
    let p = guard.provider();
    let mut limited = spec("rlimits");
    limited.pids = Some(1024);
    p.start(&limited, Injection::default()).await.unwrap();
    let hard = rlimit::nofile_hard(Some(1024), HostTables::read());
    let soft = rlimit::NOFILE_SOFT.min(hard);

    let shown = sh(
        &p,
        "rlimits",
        "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc; ulimit -l; ulimit -p",
    )
    .await;
    assert_eq!(shown, format!("{soft}\n{hard}\n0\n0\n64\n1024\n"));

    // The init (pid 1), started by bubblewrap.
    let init = sh(&p, "rlimits", "cat /proc/1/limits").await;
    let nofile = rlimit::NOFILE_INIT.to_string();
    assert_eq!(limit_line(&init, "Max open files"), (&*nofile, &*nofile));
    assert_eq!(limit_line(&init, "Max core file size"), ("0", "0"));
    assert_eq!(limit_line(&init, "Max locked memory"), ("65536", "65536"));

    // Too many files: the process's own limit, at its soft limit; raised to the hard one, at
    // that; and the hard one cannot be raised from inside.
    let emfile = libc::EMFILE.to_string();
    let out = run(&p, "rlimits", &["python3", "-c", OPEN_UNTIL_FULL])
        .await
        .out();
    let (errno, opened) = out.trim().split_once(' ').unwrap();
    assert_eq!(errno, emfile, "{out}");
    let opened: u64 = opened.parse().unwrap();
    assert!(opened + 3 <= soft && opened + 8 >= soft, "{opened}");
    let raised = format!(
        "import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, ({hard}, {hard}))\n{OPEN_UNTIL_FULL}"
    );
    let out = run(&p, "rlimits", &["python3", "-c", &raised]).await.out();
    let (errno, opened) = out.trim().split_once(' ').unwrap();
    assert_eq!(errno, emfile, "{out}");
    assert!(opened.parse::<u64>().unwrap() + 8 >= hard);
    let beyond = format!(
        "import resource\ntry:\n    resource.setrlimit(resource.RLIMIT_NOFILE, ({0}, {0}))\n    print('raised')\nexcept (ValueError, OSError) as e:\n    print('refused')\n",
        hard + 1
    );
    let out = run(&p, "rlimits", &["python3", "-c", &beyond]).await;
    assert_eq!(out.out(), "refused\n");
    p.remove("rlimits").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_without_a_pids_limit_gets_the_assumed_one() {
    let guard = Guard::new();
    let p = guard.provider();
    p.start(&spec("rlimits-unlimited"), Injection::default())
        .await
        .unwrap();
    let hard = rlimit::nofile_hard(None, HostTables::read());
    let shown = sh(&p, "rlimits-unlimited", "ulimit -Hn; ulimit -c; ulimit -p").await;
    assert_eq!(
        shown,
        format!("{hard}\n0\n{}\n", rlimit::UNLIMITED_PIDS_ASSUMED)
    );
    p.remove("rlimits-unlimited").await.unwrap();
}
