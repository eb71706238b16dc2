//! What is injected reaches the sandbox, and nowhere else; what cannot be injected is refused
//! with a reason; what a sandbox leaves in its home cannot reach the host.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_env_and_files_reach_the_sandbox_and_nowhere_else() {
    let g = Guard::new();
    let p = g.provider();
    let env_value = distinctive("env");
    let cred_value = distinctive("cred");
    // > 64 KiB: the pipe must be written while the sandbox reads it.
    let big: Vec<u8> = distinctive("big")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(200 * 1024)
        .collect();
    let injection = Injection {
        env: vec![env("AMIKA_TEST_SECRET", env_value.as_bytes())],
        files: vec![
            file(".claude/.credentials.json", cred_value.as_bytes()),
            file(".codex/auth.json", &big),
        ],
    };
    p.start(&spec("inject"), injection).await.unwrap();

    assert_eq!(
        sh(&p, "inject", "printenv AMIKA_TEST_SECRET").await.trim(),
        env_value
    );
    assert!(run(&p, "inject", &["env"]).await.out().contains(&env_value));
    assert_eq!(
        sh(&p, "inject", "cat ~/.claude/.credentials.json").await,
        cred_value
    );
    let got_big = run(&p, "inject", &["cat", "/home/amika/.codex/auth.json"]).await;
    assert_eq!(got_big.stdout.len(), big.len());
    assert!(got_big.stdout == big, "200 KiB file arrives intact");
    assert_eq!(
        sh(
            &p,
            "inject",
            "stat -c '%a %u' ~/.claude/.credentials.json ~/.codex/auth.json"
        )
        .await,
        "600 1000\n600 1000\n"
    );
    assert_eq!(sh(&p, "inject", "id -u").await, "1000\n");
    assert_eq!(sh(&p, "inject", "id -un").await, "amika\n");
    assert_eq!(
        sh(&p, "inject", "id -G").await,
        "1000\n",
        "no supplementary host groups"
    );
    assert_eq!(
        sh(&p, "inject", "grep CapEff /proc/self/status").await,
        "CapEff:\t0000000000000000\n",
        "no capabilities"
    );
    assert_eq!(sh(&p, "inject", "pwd").await, "/home/amika/workspace\n");
    assert_eq!(sh(&p, "inject", "echo $HOME").await, "/home/amika\n");

    // Nothing on any command line of the host, even while an exec runs.
    let mut running = p
        .exec(
            "inject",
            ExecSpec {
                argv: vec!["sleep".into(), "5".into()],
                cwd: None,
                timeout: None,
            },
        )
        .await
        .unwrap();
    for needle in [env_value.as_bytes(), cred_value.as_bytes(), &big[..40]] {
        let hits = cmdlines_containing(needle);
        assert!(hits.is_empty(), "secret on a command line: {hits:?}");
        // And nowhere on disk under the provider's root (the tmpfs is memory).
        let files = files_containing(&g.path(), needle);
        assert!(files.is_empty(), "secret on disk: {files:?}");
    }
    drop(running.events.try_recv());
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_sandbox_leaves_in_its_home_cannot_reach_the_host() {
    let g = Guard::new();
    let p = g.provider();
    let escape = PathBuf::from(format!("/root/{}", distinctive("escape")));
    p.start(&spec("hostile"), Injection::default())
        .await
        .unwrap();
    // Symlinks where amika mounts credentials and where the workspace was.
    sh(
        &p,
        "hostile",
        &format!(
            "ln -s {} ~/.claude && rm -rf ~/workspace && ln -s /nonexistent ~/workspace",
            escape.display()
        ),
    )
    .await;
    p.stop("hostile").await.unwrap();
    let cred = distinctive("cred");
    p.start(
        &spec("hostile"),
        Injection {
            env: vec![],
            files: vec![file(".claude/.credentials.json", cred.as_bytes())],
        },
    )
    .await
    .unwrap();
    assert!(
        !escape.exists(),
        "bwrap followed the sandbox's symlink onto the host"
    );
    assert_eq!(
        sh(&p, "hostile", "cat /home/amika/.claude/.credentials.json").await,
        cred
    );
    assert!(files_containing(&g.path(), cred.as_bytes()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_injections_fail_to_start_with_a_reason() {
    let g = Guard::new();
    let p = g.provider();
    let secret = distinctive("value");
    for (injection, expected) in [
        (
            Injection {
                env: vec![env("LD-PRELOAD", secret.as_bytes())],
                files: vec![],
            },
            "invalid environment variable name",
        ),
        (
            Injection {
                env: vec![],
                files: vec![file(".netrc", secret.as_bytes())],
            },
            "inside a directory of the home",
        ),
        (
            Injection {
                env: vec![],
                files: vec![file("../escape/x", secret.as_bytes())],
            },
            "without `.` or `..`",
        ),
    ] {
        let err = p.start(&spec("bad"), injection).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ProviderError::StartFailed { .. }), "{msg}");
        assert!(msg.contains(expected), "{msg}");
        assert!(!msg.contains(&secret), "the error shows the value: {msg}");
    }
    assert!(matches!(
        p.start(&spec("../x"), Injection::default()).await,
        Err(ProviderError::StartFailed { .. })
    ));
    // A file where a credential directory must go.
    p.start(&spec("bad"), Injection::default()).await.unwrap();
    sh(&p, "bad", "echo x > ~/.codex").await;
    p.stop("bad").await.unwrap();
    let err = p
        .start(
            &spec("bad"),
            Injection {
                env: vec![],
                files: vec![file(".codex/auth.json", secret.as_bytes())],
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}
