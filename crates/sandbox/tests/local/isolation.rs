//! What a sandbox cannot reach (the host, the network per mode), the limits it runs under, and
//! how fast it starts.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_stays_out_of_reach() {
    let g = Guard::new();
    let p = g.provider();
    let probe = PathBuf::from(format!("/root/{}", distinctive("probe")));
    std::fs::write(&probe, "host secret").unwrap();
    struct RemoveProbe(PathBuf);
    impl Drop for RemoveProbe {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _probe = RemoveProbe(probe.clone());

    p.start(&spec("jail"), Injection::default()).await.unwrap();
    let out = run(&p, "jail", &["cat", probe.to_str().unwrap()]).await;
    assert_ne!(out.code, Some(0));
    assert!(!out.out().contains("host secret"));
    assert_ne!(run(&p, "jail", &["cat", "/etc/shadow"]).await.code, Some(0));
    assert_ne!(
        run(&p, "jail", &["ls", "/etc/ssl/private"]).await.code,
        Some(0)
    );
    // The provider's own directory is not visible either.
    let root = g.path();
    assert_ne!(
        run(&p, "jail", &["ls", root.to_str().unwrap()]).await.code,
        Some(0)
    );
    // Read-only system, and no network but loopback.
    for target in ["/usr/amika-probe", "/etc/amika-probe", "/amika-probe"] {
        assert_ne!(
            run(&p, "jail", &["touch", target]).await.code,
            Some(0),
            "{target} is writable"
        );
    }
    for target in [
        "/home/amika/w",
        "/home/amika/workspace/w",
        "/tmp/w",
        "/dev/shm/w",
    ] {
        assert_eq!(run(&p, "jail", &["touch", target]).await.code, Some(0));
    }
    assert_eq!(
        sh(
            &p,
            "jail",
            "ls /sys/class/net 2>/dev/null || ip -o link | cut -d: -f2"
        )
        .await
        .trim(),
        "lo"
    );
    // Global kernel settings stay out of reach (a same-value write must fail: read-only).
    let out = run(
        &p,
        "jail",
        &[
            "sh",
            "-c",
            "v=$(cat /proc/sys/kernel/ctrl-alt-del) && echo $v > /proc/sys/kernel/ctrl-alt-del",
        ],
    )
    .await;
    assert_ne!(out.code, Some(0), "a sysctl is writable from the sandbox");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only"));
    // No nested user namespaces.
    assert_ne!(
        run(&p, "jail", &["unshare", "-U", "true"]).await.code,
        Some(0)
    );
    // No descriptor of the server leaks in.
    assert_eq!(
        sh(&p, "jail", "ls /proc/self/fd | sort -n | tr '\\n' ' '").await,
        "0 1 2 3 "
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_modes() {
    let g = Guard::new();
    let p = g.provider();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let connect = |host: String| format!("exec 3<>/dev/tcp/{host}/{port} && echo connected");

    let mut none = spec("net-none");
    none.network = NetworkMode::None;
    p.start(&none, Injection::default()).await.unwrap();
    let out = run(
        &p,
        "net-none",
        &["bash", "-c", &connect("127.0.0.1".into())],
    )
    .await;
    assert_ne!(
        out.code,
        Some(0),
        "loopback of the sandbox is not the host's"
    );

    let mut host = spec("net-host");
    host.network = NetworkMode::Host;
    p.start(&host, Injection::default()).await.unwrap();
    assert_eq!(
        run(
            &p,
            "net-host",
            &["bash", "-c", &connect("127.0.0.1".into())]
        )
        .await
        .out(),
        "connected\n"
    );

    let mut egress = spec("net-egress");
    egress.network = NetworkMode::Egress;
    p.start(&egress, Injection::default()).await.unwrap();
    assert!(sh(&p, "net-egress", "ip -o -4 addr show tap0")
        .await
        .contains("10.0.2.100"));
    // The host's loopback (where the server listens) stays unreachable.
    let out = run(
        &p,
        "net-egress",
        &["bash", "-c", &connect("10.0.2.2".into())],
    )
    .await;
    assert_ne!(out.code, Some(0));
    if let Some(ip) = host_ip() {
        let out = run(&p, "net-egress", &["bash", "-c", &connect(ip.to_string())]).await;
        assert_eq!(
            out.out(),
            "connected\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&p, "net-none", &["bash", "-c", &connect(ip.to_string())]).await;
        assert_ne!(out.code, Some(0));
    }
    // Names resolve through slirp4netns' DNS forwarder (when the host can resolve at all).
    let host_resolves = std::process::Command::new("getent")
        .args(["hosts", "pypi.org"])
        .output()
        .is_ok_and(|o| o.status.success());
    if host_resolves {
        sh(&p, "net-egress", "getent hosts pypi.org").await;
    }
    // The network helper goes away with the sandbox.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.path().join("net-egress/state.json")).unwrap())
            .unwrap();
    let slirp = state["slirp4netns"]["pid"].as_i64().unwrap();
    p.stop("net-egress").await.unwrap();
    assert!(!amika_alive(slirp as i32));

    let missing = g
        .provider()
        .with_slirp4netns_path("/nonexistent/slirp4netns".into());
    let err = missing
        .start(&spec("net-missing").tap_egress(), Injection::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "slirp4netns is not installed: run `apt-get install -y slirp4netns`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_for_execs() {
    let g = Guard::new();
    let p = g.provider();
    let mut few_pids = spec("limited-pids");
    few_pids.pids = Some(24);
    p.start(&few_pids, Injection::default()).await.unwrap();
    let mut little_memory = spec("limited");
    little_memory.memory_mib = Some(64);
    p.start(&little_memory, Injection::default()).await.unwrap();

    // More processes than allowed: forks fail.
    let out = run(
        &p,
        "limited-pids",
        &[
            "sh",
            "-c",
            "for i in $(seq 40); do sleep 30 & done; echo forked",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cannot fork"),
        "pids limit not enforced: {stderr}"
    );
    assert!(!out.out().contains("forked"));
    assert!(
        stderr.contains("amika: the sandbox reached its process limit"),
        "the exec does not say which limit bit: {stderr}"
    );

    // More memory than allowed: the OOM killer ends the command (SIGKILL).
    let out = run(
        &p,
        "limited",
        &[
            "sh",
            "-c",
            "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}",
        ],
    )
    .await;
    assert_eq!(
        out.code,
        Some(137),
        "memory limit not enforced: {} {}",
        out.out(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("amika: the sandbox reached its memory limit: the OOM killer killed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A command that stays within the limits gets no such note.
    let calm = run(&p, "limited", &["true"]).await;
    assert!(calm.stderr.is_empty(), "{:?}", calm);
    // The sandbox itself survives, and its cgroups go away with it.
    assert_eq!(sh(&p, "limited", "echo alive").await, "alive\n");
    let cgroups = || -> Vec<String> {
        let found = std::process::Command::new("find")
            .args([
                "/sys/fs/cgroup",
                "-maxdepth",
                "7",
                "-type",
                "d",
                "-name",
                "limited*",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&found.stdout)
            .lines()
            .filter(|l| l.contains("/amika/"))
            .map(str::to_owned)
            .collect()
    };
    assert!(
        cgroups().len() >= 2,
        "cgroups of the running sandboxes: {:?}",
        cgroups()
    );
    p.stop("limited").await.unwrap();
    p.stop("limited-pids").await.unwrap();
    assert!(cgroups().is_empty(), "cgroups left behind: {:?}", cgroups());
}

/// Start and exec latency against a bare `bwrap ... /bin/true`. Prints the numbers; asserts only
/// a loose bound so that a loaded CI machine does not fail it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_exec_are_fast() {
    let g = Guard::new();
    let p = g.provider();
    let raw = {
        let t = Instant::now();
        for _ in 0..5 {
            let ok = std::process::Command::new("bwrap")
                .args([
                    "--unshare-all",
                    "--uid",
                    "1000",
                    "--gid",
                    "1000",
                    "--ro-bind",
                    "/usr",
                    "/usr",
                    "--symlink",
                    "usr/bin",
                    "/bin",
                    "--symlink",
                    "usr/lib",
                    "/lib",
                    "--symlink",
                    "usr/lib64",
                    "/lib64",
                    "--dev",
                    "/dev",
                    "--proc",
                    "/proc",
                    "/bin/true",
                ])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        t.elapsed() / 5
    };
    let mut starts = Vec::new();
    let mut execs = Vec::new();
    for i in 0..5 {
        let id = format!("fast{i}");
        let t = Instant::now();
        p.start(&spec(&id), Injection::default()).await.unwrap();
        starts.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(run(&p, &id, &["true"]).await.code, Some(0));
        execs.push(t.elapsed());
    }
    starts.sort();
    execs.sort();
    let (start, exec) = (starts[2], execs[2]);
    eprintln!(
        "raw bwrap /bin/true {raw:?}; start (median) {start:?}; first exec (median) {exec:?}; \
         create-to-first-exec {:?} = {:.1}x raw",
        start + exec,
        (start + exec).as_secs_f64() / raw.as_secs_f64()
    );
    assert!(start + exec < Duration::from_secs(2));
}

/// Every mount a sandbox can write to is `nosuid` (a set-uid file it makes never raises
/// privileges) and `nodev` (a device node it makes opens nothing), but for the device files
/// bubblewrap binds in `/dev` (`null`, `zero`, ...), which are devices by purpose.
#[tokio::test(flavor = "multi_thread")]
async fn every_writable_mount_is_nosuid_and_nodev() {
    let guard = Guard::new();
    let p = guard.provider();
    let creds = Injection {
        files: vec![file(".claude/.credentials.json", b"{}")],
        ..Default::default()
    };
    p.start(&spec("mounts"), creds).await.unwrap();
    let mounts = sh(&p, "mounts", "cat /proc/self/mountinfo").await;
    let mut writable = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (point, options) = (fields[4], fields[5]);
        let options: Vec<&str> = options.split(',').collect();
        if !options.contains(&"rw") {
            continue;
        }
        writable.push(point.to_string());
        assert!(options.contains(&"nosuid"), "{point}: {options:?}");
        let device_bind = point.starts_with("/dev/") && point != "/dev/shm";
        if !device_bind {
            assert!(options.contains(&"nodev"), "{point}: {options:?}");
        }
    }
    for point in ["/tmp", "/home/amika", "/home/amika/.claude", "/dev"] {
        assert!(
            writable.contains(&point.to_string()),
            "{point} in {writable:?}"
        );
    }
    p.remove("mounts").await.unwrap();
}
