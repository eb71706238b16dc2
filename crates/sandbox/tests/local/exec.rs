//! Running commands: exit codes, streamed output, timeouts, and the identity a command runs
//! with inside the sandbox.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_propagate() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("codes"), Injection::default()).await.unwrap();
    assert_eq!(
        run(&p, "codes", &["sh", "-c", "exit 7"]).await.code,
        Some(7)
    );
    assert_eq!(run(&p, "codes", &["true"]).await.code, Some(0));
    assert_eq!(
        run(&p, "codes", &["no-such-command-amika"]).await.code,
        Some(127)
    );
    assert_eq!(
        run(&p, "codes", &["sh", "-c", "kill -9 $$"]).await.code,
        Some(137)
    );
    let out = exec_spec(
        &p,
        "codes",
        ExecSpec {
            argv: vec!["pwd".into()],
            cwd: Some("/tmp".into()),
            timeout: None,
        },
    )
    .await;
    assert_eq!((out.out().as_str(), out.code), ("/tmp\n", Some(0)));
    let out = exec_spec(
        &p,
        "codes",
        ExecSpec {
            argv: vec!["pwd".into()],
            cwd: Some("/no/such/dir".into()),
            timeout: None,
        },
    )
    .await;
    assert_eq!(out.code, Some(126));
    assert!(matches!(
        p.exec(
            "codes",
            ExecSpec {
                argv: vec![],
                cwd: None,
                timeout: None
            }
        )
        .await,
        Err(ProviderError::InvalidCommand(_))
    ));
    // Arguments with spaces and quotes arrive as they are.
    let out = run(&p, "codes", &["printf", "%s|", "a b", "it's", "$HOME"]).await;
    assert_eq!(out.out(), "a b|it's|$HOME|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_streams_as_it_arrives() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("stream"), Injection::default())
        .await
        .unwrap();
    let mut handle = p
        .exec(
            "stream",
            ExecSpec {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo first; sleep 0.3; echo second >&2".into(),
                ],
                cwd: None,
                timeout: None,
            },
        )
        .await
        .unwrap();
    let first = handle.events.recv().await.unwrap();
    let first_at = Instant::now();
    assert_eq!(first, ExecEvent::Stdout(b"first\n".to_vec()));
    let mut rest = Vec::new();
    while let Some(e) = handle.events.recv().await {
        rest.push(e);
    }
    assert!(
        first_at.elapsed() >= Duration::from_millis(250),
        "the first chunk came before the command slept, not at the end"
    );
    assert_eq!(
        rest,
        vec![ExecEvent::Stderr(b"second\n".to_vec()), ExecEvent::Exit(0)]
    );
}

/// The soak benchmark saw `echo` answer exit 0 with no output, twice in 4,338 runs: the relay
/// gave the output 200 ms to drain after the command exited and then dropped what was left,
/// so a relay running late (a loaded server) or a reader behind lost output. Here the reader
/// is behind: it reads nothing until long after the command exited, with more lines written
/// (one write each) than the relay holds in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_written_before_the_exit_reaches_a_late_reader() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("late"), Injection::default()).await.unwrap();
    let script = "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line$i; \
                  [ $((i % 10)) -eq 0 ] && sleep 0.01; done";
    let handle = p
        .exec(
            "late",
            ExecSpec {
                argv: vec!["sh".into(), "-c".into(), script.into()],
                cwd: None,
                timeout: None,
            },
        )
        .await
        .unwrap();
    // The command is done well within this; the relay's grace after its exit too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = collect(handle).await;
    let expected: String = (1..=300).map(|i| format!("line{i}\n")).collect();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.out(), expected);

    // A background process that keeps the pipes open still does not hold the exec open.
    let started = Instant::now();
    let out = run(&p, "late", &["sh", "-c", "echo before; sleep 1000 &"]).await;
    assert_eq!((out.out().as_str(), out.code), ("before\n", Some(0)));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_drop_kill_the_command_tree() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("kill"), Injection::default()).await.unwrap();
    let started = Instant::now();
    let out = exec_spec(
        &p,
        "kill",
        ExecSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "sleep 1001 & sleep 1002; echo never".into(),
            ],
            cwd: None,
            timeout: Some(Duration::from_millis(300)),
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.code, Some(amika_sandbox::local::TIMEOUT_EXIT_CODE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(!out.out().contains("never"));
    let ps = processes(&p, "kill").await;
    assert!(
        !ps.contains("sleep 1001") && !ps.contains("sleep 1002"),
        "{ps}"
    );

    // Dropping the handle kills the command too.
    let handle = p
        .exec(
            "kill",
            ExecSpec {
                argv: vec!["sleep".into(), "1003".into()],
                cwd: None,
                timeout: None,
            },
        )
        .await
        .unwrap();
    assert!(processes(&p, "kill").await.contains("sleep 1003"));
    drop(handle);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ps = processes(&p, "kill").await;
        if !ps.contains("sleep 1003") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sleep 1003 survived the dropped handle: {ps}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_runs_as_amika_without_privileges_inside_every_namespace() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("entered"), Injection::default())
        .await
        .unwrap();
    let init = init_pid(&g.path(), "entered");
    let seen = sh(
        &p,
        "entered",
        "id -u; id -g; id -G; grep -E '^(CapEff|CapPrm|NoNewPrivs):' /proc/self/status; \
         ls /; pwd; echo $$; readlink /proc/self/ns/pid /proc/1/ns/pid",
    )
    .await;
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(&lines[..3], ["1000", "1000", "1000"], "{seen}");
    assert!(seen.contains("CapEff:\t0000000000000000"), "{seen}");
    assert!(seen.contains("CapPrm:\t0000000000000000"), "{seen}");
    assert!(seen.contains("NoNewPrivs:\t1"), "{seen}");
    // The sandbox's root (no host /root, /work or /var), the workspace, a pid of its own
    // namespace, the init's pid namespace.
    assert!(
        !seen.contains("\nroot\n") && !seen.contains("\nvar\n"),
        "{seen}"
    );
    assert!(seen.contains("/home/amika/workspace\n"), "{seen}");
    let ns: Vec<&str> = lines[lines.len() - 2..].to_vec();
    assert_eq!(ns[0], ns[1], "not in the sandbox's pid namespace: {seen}");
    let host_ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    assert_eq!(ns[0], host_ns.to_str().unwrap());
    let pid_inside: i32 = lines[lines.len() - 3].parse().unwrap();
    assert!(
        pid_inside < 100,
        "pid {pid_inside} is not from the sandbox's namespace"
    );

    // While a command runs, nothing stands between it and the provider: its host-side parent
    // is this process (no entering process stays around as a copy of the server).
    let handle = p
        .exec(
            "entered",
            ExecSpec {
                argv: vec!["sleep".into(), "7.4321".into()],
                cwd: None,
                timeout: Some(Duration::from_secs(30)),
            },
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let sleeper = loop {
        if let Some(&pid) = pids_containing(b"sleep\x007.4321").first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the command never showed up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, std::process::id());
    drop(handle);
    eventually("the dropped exec's command is killed", || {
        cmdlines_containing(b"sleep\x007.4321").is_empty()
    })
    .await;
}
