//! Warm sandboxes: claimed by the next start of their shape with its own values and limits,
//! replaced when they died, and removed when an earlier provider left them.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_sandbox_serves_the_next_start_with_its_own_values_and_limits() {
    let g = Guard::new();
    let p = g.provider();
    let (a, b) = (distinctive("warm-a"), distinctive("warm-b"));
    let injection = |name: &str, value: &str| Injection {
        env: vec![env(name, value.as_bytes())],
        files: vec![file(".claude/cred.json", value.as_bytes())],
    };
    let mut first = spec("warm-first");
    first.pids = Some(64);
    p.start(&first, injection("A", &a)).await.unwrap();
    eventually("a warm sandbox is parked", || p.warm_sandboxes() == 1).await;

    // Waiting, it holds nothing: no value in any file or command line, no cgroup limit.
    let pool = g.path().join(".pool");
    let slot = std::fs::read_dir(&pool)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(files_containing(&pool, a.as_bytes()).is_empty());
    assert!(cmdlines_containing(b.as_bytes()).is_empty());

    // Same shape (network, credential dirs, limited), other values and limits: served warm.
    let mut second = spec("warm-second");
    second.pids = Some(24);
    p.start(&second, injection("B", &b)).await.unwrap();
    assert_eq!(p.warm_sandboxes(), 0, "the warm sandbox was not claimed");
    // The slot is now a link to the sandbox (for the process scan), the sandbox a real dir.
    assert_eq!(
        std::fs::read_link(&slot).unwrap(),
        Path::new("../warm-second")
    );
    assert!(std::fs::symlink_metadata(g.path().join("warm-second"))
        .unwrap()
        .is_dir());
    let seen = sh(
        &p,
        "warm-second",
        "echo \"$B ${A-unset}\"; cat ~/.claude/cred.json",
    )
    .await;
    assert_eq!(seen, format!("{b} unset\n{b}"));
    // Its own limits: the cgroups were renamed to the sandbox's and got its pids limit.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.path().join("warm-second/state.json")).unwrap())
            .unwrap();
    let cgroups: Vec<PathBuf> = state["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| PathBuf::from(c.as_str().unwrap()))
        .collect();
    assert!(
        cgroups.iter().all(|c| c.ends_with("warm-second")),
        "{cgroups:?}"
    );
    let pids_max = cgroups
        .iter()
        .find_map(|c| std::fs::read_to_string(c.join("pids.max")).ok())
        .unwrap();
    assert_eq!(pids_max.trim(), "24");
    let out = run(
        &p,
        "warm-second",
        &[
            "sh",
            "-c",
            "for i in $(seq 40); do sleep 30 & done; echo forked",
        ],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot fork"));

    // A restart is a cold start in the same home; stop/remove work as for any sandbox.
    p.stop("warm-second").await.unwrap();
    p.start(&second, injection("B", &b)).await.unwrap();
    assert_eq!(sh(&p, "warm-second", "echo $B").await, format!("{b}\n"));
    p.remove("warm-second").await.unwrap();
    assert!(!g.path().join("warm-second").exists());

    // A parked sandbox ends with its provider (the pipe it waits on closes).
    eventually("the pool refilled", || p.warm_sandboxes() == 1).await;
    drop(p);
    let needle = pool.as_os_str().as_encoded_bytes().to_vec();
    eventually("no warm sandbox runs", || {
        cmdlines_containing(&needle).is_empty()
    })
    .await;
    eventually("no warm sandbox dir remains", || {
        std::fs::read_dir(&pool).map_or(true, |mut d| d.next().is_none())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_sandboxes_are_per_shape_and_can_be_turned_off() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("shape-none"), Injection::default())
        .await
        .unwrap();
    eventually("a warm sandbox is parked", || p.warm_sandboxes() == 1).await;
    // Another shape (egress) is not served by it: a cold start, and a second shape is kept.
    let mut egress = spec("shape-egress");
    egress.network = NetworkMode::Egress;
    p.start(&egress, Injection::default()).await.unwrap();
    assert_eq!(p.warm_sandboxes(), 1);
    eventually("both shapes are warm", || p.warm_sandboxes() == 2).await;

    let off = LocalProvider::new(g.path().join("off")).with_warm_sandboxes(0);
    off.start(&spec("cold"), Injection::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(off.warm_sandboxes(), 0);
    assert!(!g.path().join("off/.pool").exists());
    off.remove("cold").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_sandbox_that_died_while_waiting_is_replaced_by_a_cold_start() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("died-first"), Injection::default())
        .await
        .unwrap();
    eventually("a warm sandbox is parked", || p.warm_sandboxes() == 1).await;
    // Kill the parked sandbox's init (found by the slot in its bwrap's command line).
    let pool = g.path().join(".pool");
    let needle = pool.as_os_str().as_encoded_bytes().to_vec();
    let bwrap = pids_containing(&needle)[0];
    let children = std::fs::read_to_string(format!("/proc/{bwrap}/task/{bwrap}/children")).unwrap();
    let init: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    kill_9(init);
    eventually("the parked init is gone", || {
        !Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/stat"))
                .is_ok_and(|s| s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
    })
    .await;
    let value = distinctive("after-death");
    p.start(
        &spec("died-second"),
        Injection {
            env: vec![env("V", value.as_bytes())],
            files: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(sh(&p, "died-second", "echo $V").await, format!("{value}\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_provider_removes_what_an_earlier_ones_warm_sandboxes_left() {
    let g = Guard::new();
    let pool = g.path().join(".pool");
    // A slot of an earlier server: its directory, and a process stuck with bubblewrap's command
    // line naming it (as bwrap's child is when its server died during the start).
    let slot = pool.join("0-0");
    std::fs::create_dir_all(slot.join("home")).unwrap();
    let bind = slot.join("home");
    let mut stuck = std::process::Command::new("bwrap")
        .args([
            "--unshare-all",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
        ])
        .args([
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
        ])
        .arg("--bind")
        .arg(&bind)
        .args(["/home/amika", "/usr/bin/sleep", "60"])
        .spawn()
        .unwrap();
    let needle = bind.as_os_str().as_encoded_bytes().to_vec();
    eventually("the stuck process runs", || {
        !cmdlines_containing(&needle).is_empty()
    })
    .await;

    let p = g.provider();
    assert!(p.list().await.unwrap().is_empty());
    eventually("the earlier slot's processes are gone", || {
        cmdlines_containing(&needle).is_empty()
    })
    .await;
    assert!(
        !slot.exists(),
        "the earlier slot's directory is still there"
    );
    let _ = stuck.wait();

    // The provider's own warm sandbox is no leftover: later listings leave it alone.
    p.start(&spec("sweeper"), Injection::default())
        .await
        .unwrap();
    eventually("a warm sandbox is parked", || p.warm_sandboxes() == 1).await;
    assert_eq!(p.list().await.unwrap(), vec!["sweeper".to_string()]);
    assert_eq!(p.warm_sandboxes(), 1);
    assert_eq!(std::fs::read_dir(&pool).unwrap().count(), 1);
}
