//! Start, stop, remove and restart; a fresh provider finding running sandboxes; what a corrupt
//! record or a server killed mid-start leaves behind.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_persists_across_restart_and_tmp_does_not() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("persist"), Injection::default())
        .await
        .unwrap();
    sh(
        &p,
        "persist",
        "echo kept > ~/workspace/note; echo gone > /tmp/note",
    )
    .await;
    p.stop("persist").await.unwrap();
    assert_eq!(
        p.status("persist").await.unwrap(),
        RuntimeStatus::NotRunning { reason: None }
    );
    assert!(matches!(
        p.exec(
            "persist",
            ExecSpec {
                argv: vec!["true".into()],
                cwd: None,
                timeout: None
            }
        )
        .await,
        Err(ProviderError::NotRunning(_))
    ));
    p.start(&spec("persist"), Injection::default())
        .await
        .unwrap();
    assert_eq!(sh(&p, "persist", "cat ~/workspace/note").await, "kept\n");
    assert_ne!(
        run(&p, "persist", &["cat", "/tmp/note"]).await.code,
        Some(0)
    );
    // Stop is idempotent.
    p.stop("persist").await.unwrap();
    p.stop("persist").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_kills_every_process_and_deletes_the_files() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("doomed"), Injection::default())
        .await
        .unwrap();
    let out = run(
        &p,
        "doomed",
        &["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo started"],
    )
    .await;
    assert_eq!(out.code, Some(0));
    assert_eq!(out.out(), "started\n");

    let init = init_pid(&g.path(), "doomed");
    let pidns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    let members = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path().join("ns/pid")).ok().as_ref() == Some(&pidns))
            .filter(|e| amika_alive(e.file_name().to_string_lossy().parse().unwrap_or(0)))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        members().len() >= 3,
        "init, its sleep and the background sleep 1000"
    );

    p.remove("doomed").await.unwrap();
    assert!(members().is_empty(), "processes survived: {:?}", members());
    assert!(!Path::new(&format!("/proc/{init}")).exists() || !amika_alive(init));
    assert!(!g.path().join("doomed").exists());
    assert!(!p.list().await.unwrap().contains(&"doomed".to_string()));
    // Idempotent, and fine for something that never existed.
    p.remove("doomed").await.unwrap();
    p.remove("never-existed").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_provider_finds_and_uses_running_sandboxes() {
    let g = Guard::new();
    let value = distinctive("restart");
    {
        let first = g.provider();
        first
            .start(
                &spec("survivor"),
                Injection {
                    env: vec![env("AMIKA_TEST_SECRET", value.as_bytes())],
                    files: vec![],
                },
            )
            .await
            .unwrap();
    } // the first provider is gone, as after a server restart

    let second = g.provider();
    assert_eq!(second.list().await.unwrap(), vec!["survivor".to_string()]);
    assert_eq!(
        second.status("survivor").await.unwrap(),
        RuntimeStatus::Running
    );
    assert_eq!(
        sh(&second, "survivor", "printenv AMIKA_TEST_SECRET")
            .await
            .trim(),
        value
    );
    assert!(matches!(
        second.start(&spec("survivor"), Injection::default()).await,
        Err(ProviderError::StartFailed { .. })
    ));
    second.stop("survivor").await.unwrap();
    assert!(matches!(
        second.status("survivor").await.unwrap(),
        RuntimeStatus::NotRunning { .. }
    ));
    // A sandbox killed behind the provider's back is reported, with a reason.
    second
        .start(&spec("survivor"), Injection::default())
        .await
        .unwrap();
    let init = init_pid(&g.path(), "survivor");
    std::process::Command::new("kill")
        .args(["-9", &init.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while second.status("survivor").await.unwrap() == RuntimeStatus::Running {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        second.status("survivor").await.unwrap(),
        RuntimeStatus::NotRunning {
            reason: Some("the sandbox's init process exited".into())
        }
    );
    // Starting again cleans up what is left and works.
    second
        .start(&spec("survivor"), Injection::default())
        .await
        .unwrap();
    assert_eq!(sh(&second, "survivor", "echo ok").await, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_what_to_install() {
    let g = Guard::new();
    let p = g.provider().with_bwrap_path("/nonexistent/bwrap".into());
    let err = p.check().unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)));
    assert_eq!(
        err.to_string(),
        "bubblewrap (bwrap) is not installed: run `apt-get install -y bubblewrap`"
    );
    assert!(matches!(
        p.start(&spec("x"), Injection::default()).await,
        Err(ProviderError::Unavailable(_))
    ));
    g.provider().check().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_does_not_block_removal() {
    let g = Guard::new();
    let p = g.provider();
    p.start(&spec("corrupt"), Injection::default())
        .await
        .unwrap();
    let init = init_pid(&g.path(), "corrupt");
    // Stop first so that no process is left behind by the test itself.
    p.stop("corrupt").await.unwrap();
    assert!(!amika_alive(init));
    std::fs::write(g.path().join("corrupt/state.json"), "{not json").unwrap();
    assert!(p.status("corrupt").await.is_err());
    p.remove("corrupt").await.unwrap();
    assert!(!g.path().join("corrupt").exists());
}

/// What a server killed in the middle of a start leaves: bwrap writes `--info-fd` before it
/// lets its child run, and with the reader (the server) gone that write kills bwrap, leaving
/// the child blocked for good, with no `state.json` to name it. Reproduced here with a real
/// bwrap whose info pipe has no reader; `list` must report it and `remove` must kill it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_cut_short_by_a_dead_server_leaves_nothing_running() {
    let g = Guard::new();
    let p = g.provider();
    let id = "cut-short";
    let home = g.path().join(id).join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = std::process::Command::new("bwrap")
        .args(["--unshare-all", "--uid", "1000", "--gid", "1000"])
        .args(["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin"])
        .args([
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
        ])
        .arg("--bind")
        .arg(&home)
        .args(["/home/amika", "--info-fd", "1", "/bin/sleep", "1000"])
        .stdout(writer)
        .status()
        .unwrap();
    assert!(!status.success(), "bwrap should die writing its info");
    let needle = home.to_str().unwrap().as_bytes();
    let stuck = cmdlines_containing(needle);
    assert!(!stuck.is_empty(), "the reproduction left no stuck child");

    // Its directory may be gone too (a record deleted after a failed start): still listed.
    std::fs::remove_dir_all(g.path().join(id)).unwrap();
    assert_eq!(p.list().await.unwrap(), vec![id.to_string()]);
    assert!(matches!(
        p.status(id).await.unwrap(),
        RuntimeStatus::NotRunning { .. }
    ));
    p.remove(id).await.unwrap();
    assert_eq!(cmdlines_containing(needle), Vec::<String>::new());
    assert!(p.list().await.unwrap().is_empty());
}
