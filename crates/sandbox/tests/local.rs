//! The local provider against real bubblewrap: no mocks. Every test removes its sandboxes even
//! when it fails (see [`Guard`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amika_sandbox::local::LocalProvider;
use amika_sandbox::{
    ExecEvent, ExecSpec, InjectedEnv, InjectedFile, Injection, Provider, ProviderError,
    RuntimeStatus, SandboxSpec, SecretBytes,
};
use amika_types::NetworkMode;

// The tests run on a multi-threaded runtime, as the server does: the provider reaps the
// commands of execs on the runtime, and a sandbox's pid namespace (hence its init) ends only
// once they are reaped — `Guard`'s blocking cleanup must not stall that.

/// A sandbox root that removes every sandbox in it when dropped — through a *fresh* provider,
/// which also exercises finding sandboxes from `state.json` alone.
struct Guard {
    root: tempfile::TempDir,
}

impl Guard {
    fn new() -> Guard {
        Guard {
            root: tempfile::Builder::new()
                .prefix("amika-sbx-test")
                .tempdir()
                .unwrap(),
        }
    }
    fn path(&self) -> PathBuf {
        self.root.path().join("sandboxes")
    }
    fn provider(&self) -> LocalProvider {
        LocalProvider::new(self.path())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let root = self.path();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let provider = LocalProvider::new(root);
                for id in provider.list().await.unwrap_or_default() {
                    if let Err(e) = provider.remove(&id).await {
                        eprintln!("cleanup of sandbox {id} failed: {e}");
                    }
                }
            });
        })
        .join();
    }
}

fn spec(id: &str) -> SandboxSpec {
    SandboxSpec {
        id: id.into(),
        network: NetworkMode::None,
        memory_mib: None,
        pids: None,
    }
}

fn env(name: &str, value: &[u8]) -> InjectedEnv {
    InjectedEnv {
        name: name.into(),
        value: SecretBytes::new(value.to_vec()),
        label: name.into(),
    }
}

fn file(path: &str, contents: &[u8]) -> InjectedFile {
    InjectedFile {
        relative_path: path.into(),
        contents: SecretBytes::new(contents.to_vec()),
        label: path.into(),
    }
}

/// A value no process or file on this machine contains by accident.
fn distinctive(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("amika-{tag}-{}-{nanos:x}", std::process::id())
}

#[derive(Debug, Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    code: Option<i32>,
}

impl Output {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

async fn exec_spec(p: &LocalProvider, id: &str, spec: ExecSpec) -> Output {
    let mut handle = p.exec(id, spec).await.expect("exec");
    let mut out = Output::default();
    while let Some(event) = handle.events.recv().await {
        match event {
            ExecEvent::Stdout(b) => out.stdout.extend(b),
            ExecEvent::Stderr(b) => out.stderr.extend(b),
            ExecEvent::Exit(c) => out.code = Some(c),
        }
    }
    out
}

async fn run(p: &LocalProvider, id: &str, argv: &[&str]) -> Output {
    exec_spec(
        p,
        id,
        ExecSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: None,
            timeout: Some(Duration::from_secs(30)),
        },
    )
    .await
}

/// Run and expect success; stdout as a string.
async fn sh(p: &LocalProvider, id: &str, script: &str) -> String {
    let out = run(p, id, &["sh", "-c", script]).await;
    assert_eq!(
        out.code,
        Some(0),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.out()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every host process's command line that contains `needle`.
fn cmdlines_containing(needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = entry.path().join("cmdline");
        if let Ok(bytes) = std::fs::read(&cmdline) {
            if contains(&bytes, needle) {
                hits.push(format!(
                    "{}: {}",
                    cmdline.display(),
                    String::from_utf8_lossy(&bytes)
                ));
            }
        }
    }
    hits
}

/// The pids of the processes whose command line contains `needle`.
fn pids_containing(needle: &[u8]) -> Vec<i32> {
    cmdlines_containing(needle)
        .iter()
        .filter_map(|hit| hit.strip_prefix("/proc/")?.split('/').next()?.parse().ok())
        .collect()
}

/// Every file under `dir` (not following symlinks) whose contents contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let ty = entry.file_type().unwrap();
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() && contains(&std::fs::read(entry.path()).unwrap(), needle) {
                hits.push(entry.path());
            }
        }
    }
    hits
}

fn init_pid(root: &Path, id: &str) -> i32 {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join(id).join("state.json")).unwrap()).unwrap();
    state["init"]["pid"].as_i64().unwrap() as i32
}

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

fn amika_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

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

async fn processes(p: &LocalProvider, id: &str) -> String {
    sh(p, id, "ps -eo args").await
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

/// An address of this host that is not loopback (what an egress sandbox can reach).
fn host_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
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

trait TapEgress {
    fn tap_egress(self) -> Self;
}
impl TapEgress for SandboxSpec {
    fn tap_egress(mut self) -> Self {
        self.network = NetworkMode::Egress;
        self
    }
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

/// Wait up to 10 s for `cond`.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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

/// SIGKILL a process of the test's own sandboxes, by pid.
fn kill_9(pid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
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
