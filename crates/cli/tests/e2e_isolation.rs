//! Isolation of sandboxes through the real `amika` binary, a real server and real bubblewrap:
//! what a sandbox can reach on the network in each mode, what its limits contain, and what of
//! the host's files it can read or write. Every check that something is out of reach is paired
//! with one that shows the probe itself works, so a broken probe cannot pass as isolation.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, ok, ok_json, Server};
use serde_json::Value;

/// Run `argv` in a sandbox through `amika sandbox exec -o json`: (exit code, stdout, stderr).
fn exec(server: &Server, sandbox: &str, argv: &[&str]) -> (i64, String, String) {
    let out = server
        .amika()
        .args(["sandbox", "exec", sandbox, "-o", "json", "--"])
        .args(argv)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "exec {argv:?} in {sandbox}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let code = doc["exit_code"]
        .as_i64()
        .unwrap_or_else(|| panic!("exec {argv:?} in {sandbox} did not run: {doc}"));
    let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    (code, s("stdout"), s("stderr"))
}

/// Whether a TCP connection from inside the sandbox to `host:port` succeeds within 5 s
/// (bash's `/dev/tcp`: no nc or curl needed inside).
fn connects(server: &Server, sandbox: &str, host: &str, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/{host}/{port} && echo connected");
    let (code, out, _) = exec(server, sandbox, &["timeout", "5", "bash", "-c", &script]);
    code == 0 && out == "connected\n"
}

/// The sandbox's network interfaces, sorted, space-separated (from `/proc/net/dev`: no `ip`
/// or `/sys` needed inside).
fn interfaces(server: &Server, sandbox: &str) -> String {
    let script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '";
    let (code, out, err) = exec(server, sandbox, &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    out
}

/// Deletes every sandbox of the server when dropped, so that a failing test leaves no sandbox
/// running (a server's exit does not stop its sandboxes, by design).
struct DeleteAll<'a>(&'a Server);

impl Drop for DeleteAll<'_> {
    fn drop(&mut self) {
        let Ok(out) = self
            .0
            .amika()
            .args(["sandbox", "list", "-o", "json"])
            .output()
        else {
            return;
        };
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for sb in list.as_array().into_iter().flatten() {
            if let Some(name) = sb["name"].as_str() {
                let _ = self
                    .0
                    .amika()
                    .args(["sandbox", "delete", name, "--yes"])
                    .output();
            }
        }
    }
}

fn create(server: &Server, name: &str, extra: &[&str]) -> std::process::Output {
    let out = server
        .amika()
        .args(["sandbox", "create", "--name", name])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "create {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace of the test's own, joined to the host by a veth pair with a private /30
/// (only addresses on this machine), and an `amika server` listening inside it: a service that
/// is *not* on the host's loopback. Removed (with its veth pair) when dropped.
struct OutsideService {
    netns: String,
    child: Child,
    addr: String,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OutsideService {
    fn start() -> OutsideService {
        let pid = std::process::id();
        let netns = format!("amika-test-{pid}");
        // A /30 picked from the pid, so that concurrent runs on one machine do not collide.
        let (a, b) = ((pid / 64) % 256, (pid % 64) * 4);
        let (host_ip, ns_ip) = (
            format!("10.213.{a}.{}", b + 1),
            format!("10.213.{a}.{}", b + 2),
        );
        let (veth_host, veth_ns) = (format!("amkt{pid}h"), format!("amkt{pid}n"));
        let ip = |args: &str| {
            let status = Command::new("ip")
                .args(args.split_whitespace())
                .status()
                .unwrap();
            assert!(status.success(), "ip {args}");
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &netns])
            .stderr(Stdio::null())
            .status();
        ip(&format!("netns add {netns}"));
        let mut service = OutsideService {
            netns: netns.clone(),
            child: Command::new("true").spawn().unwrap(),
            addr: ns_ip.clone(),
            port: 0,
            _dir: tempfile::tempdir().unwrap(),
        };
        ip(&format!(
            "link add {veth_host} type veth peer name {veth_ns}"
        ));
        ip(&format!("link set {veth_ns} netns {netns}"));
        ip(&format!("addr add {host_ip}/30 dev {veth_host}"));
        ip(&format!("link set {veth_host} up"));
        ip(&format!("-n {netns} addr add {ns_ip}/30 dev {veth_ns}"));
        ip(&format!("-n {netns} link set {veth_ns} up"));
        ip(&format!("-n {netns} link set lo up"));
        ip(&format!("-n {netns} route add default via {host_ip}"));

        let amika = assert_cmd::cargo::cargo_bin("amika");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns])
            .arg(amika)
            .args(["server", "--listen", &format!("{ns_ip}:0"), "--data-dir"])
            .arg(service._dir.path().join("data"))
            .env_remove("AMIKA_DATABASE_URL")
            .env_remove("AMIKA_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        service.child = child;
        let url = line
            .trim()
            .strip_prefix("amika server listening on http://")
            .unwrap_or_else(|| panic!("the outside service did not start: {line:?}"));
        service.port = url.rsplit_once(':').unwrap().1.parse().unwrap();
        service
    }
}

impl Drop for OutsideService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Deleting the namespace also deletes the veth pair (and so the host's end and route).
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[test]
fn network_modes_egress_none_host() {
    let server = Server::start();
    let _cleanup = DeleteAll(&server);
    let server_port: u16 = server.url.rsplit_once(':').unwrap().1.parse().unwrap();
    // Another service on the host's loopback.
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    let local_port = local.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in local.incoming() {});
    let outside = OutsideService::start();

    // egress is the default.
    create(&server, "net-egress", &[]);
    let sb = ok_json(
        server
            .amika()
            .args(["sandbox", "get", "net-egress", "-o", "json"]),
    );
    assert_eq!(sb["network"], "egress");
    // Reaches a listener outside the host's loopback (the test's own network namespace)...
    assert!(
        connects(&server, "net-egress", &outside.addr, outside.port),
        "egress cannot reach {}:{}",
        outside.addr,
        outside.port
    );
    // ...but not the host's loopback: neither through slirp4netns' host alias nor its own
    // 127.0.0.1, neither the amika server's port nor another service there.
    for port in [server_port, local_port] {
        for host in ["10.0.2.2", "127.0.0.1"] {
            assert!(
                !connects(&server, "net-egress", host, port),
                "egress reached the host's loopback port {port} as {host}"
            );
        }
    }

    // none: loopback only, nothing else reachable.
    create(&server, "net-none", &["--network", "none"]);
    assert_eq!(interfaces(&server, "net-none"), "lo ");
    assert_eq!(interfaces(&server, "net-egress"), "lo tap0 ");
    assert!(!connects(&server, "net-none", &outside.addr, outside.port));
    for port in [server_port, local_port] {
        assert!(!connects(&server, "net-none", "127.0.0.1", port));
        assert!(!connects(&server, "net-none", "10.0.2.2", port));
    }

    // host: the host's network, with a warning from the CLI.
    let out = create(&server, "net-host", &["--network", "host"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --network host") && stderr.contains("shares the host's network"),
        "{stderr}"
    );
    assert!(connects(&server, "net-host", "127.0.0.1", local_port));
    assert!(connects(&server, "net-host", "127.0.0.1", server_port));
    assert!(connects(&server, "net-host", &outside.addr, outside.port));
}

fn get(server: &Server, name: &str) -> Value {
    ok_json(server.amika().args(["sandbox", "get", name, "-o", "json"]))
}

#[test]
fn limits_contain_a_fork_bomb_and_a_memory_hog() {
    // Defaults from the server's flags; a create may set its own.
    let server = Server::start_with(None, &["--default-memory", "256", "--default-pids", "128"]);
    let _cleanup = DeleteAll(&server);
    create(&server, "bystander", &["--network", "none"]);
    let sb = get(&server, "bystander");
    assert_eq!(
        (sb["memory_mib"].as_u64(), sb["pids"].as_u64()),
        (Some(256), Some(128))
    );
    create(&server, "bomb", &["--network", "none", "--pids", "32"]);
    let sb = get(&server, "bomb");
    assert_eq!(
        (sb["memory_mib"].as_u64(), sb["pids"].as_u64()),
        (Some(256), Some(32))
    );
    // 125 MiB = 32,000 pages: the kernel scales oom_score_adj by (limit in pages / 1000) with
    // integer division, so at a limit that is a multiple of 1,000 pages an init at 1000 outranks
    // any other process of the cgroup. (At 64 MiB, 16,384 pages, it scored 16,000 + its own
    // 377 pages against a hog of up to 16,380: a near tie the hog sometimes won.)
    create(&server, "hog", &["--network", "none", "--memory", "125"]);

    // A fork bomb, killed by the exec's timeout. While it runs, the other sandbox and the host
    // keep working.
    let bomb = server
        .amika()
        .args([
            "sandbox",
            "exec",
            "bomb",
            "-o",
            "json",
            "--timeout",
            "4",
            "--",
        ])
        .args(["bash", "-c", "f() { f | f & }; f; sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        exec(&server, "bystander", &["echo", "alive"]),
        (0, "alive\n".into(), String::new())
    );
    let host_forks = (0..20).all(|_| Command::new("true").status().unwrap().success());
    assert!(
        host_forks,
        "the host cannot fork while a sandbox runs a fork bomb"
    );
    let out = bomb.wait_with_output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = doc["stderr"].as_str().unwrap();
    assert_eq!(doc["exit_code"], 124, "{doc}");
    assert!(
        stderr.contains("amika: the sandbox reached its process limit")
            && stderr.contains("timed out"),
        "the exec does not say what happened: {stderr}"
    );
    // The bomb is gone with its exec, and the sandbox is usable again.
    assert!(
        eventually(Duration::from_secs(10), || exec(
            &server,
            "bomb",
            &["echo", "ok"]
        )
        .0 == 0),
        "the bombed sandbox did not recover"
    );
    assert_eq!(get(&server, "bomb")["state"], "running");

    // A memory hog: the OOM killer ends the command, not the sandbox.
    let hog = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}";
    let (code, out, err) = exec(&server, "hog", &["sh", "-c", hog]);
    assert_eq!(code, 137, "memory limit not enforced: {out} {err}");
    assert!(
        err.contains("amika: the sandbox reached its memory limit: the OOM killer killed"),
        "{err}"
    );
    assert_eq!(exec(&server, "hog", &["echo", "ok"]).0, 0);
    assert_eq!(get(&server, "hog")["state"], "running");
    assert_eq!(exec(&server, "bystander", &["echo", "alive"]).0, 0);

    // When the OOM killer takes the sandbox's init (here made its first choice), the whole
    // sandbox dies, and the server says so.
    let (code, _, err) = exec(
        &server,
        "hog",
        &[
            "sh",
            "-c",
            &format!("echo 1000 > /proc/1/oom_score_adj && {hog}"),
        ],
    );
    assert_eq!(code, 137, "{err}");
    // The exec can end a moment before the sandbox's last process is reaped: poll briefly.
    assert!(
        eventually(Duration::from_secs(10), || get(&server, "hog")["state"]
            == "failed"),
        "{}",
        get(&server, "hog")
    );
    let sb = get(&server, "hog");
    let reason = sb["error_message"].as_str().unwrap_or("");
    assert!(reason.contains("killed by the OOM killer"), "{sb}");
    let refused = common::fails(
        server
            .amika()
            .args(["sandbox", "exec", "hog", "--", "true"]),
    );
    assert!(
        refused.contains("is failed (the sandbox died: killed by the OOM killer)"),
        "{refused}"
    );
    // It starts again, and the others never noticed.
    ok(server.amika().args(["sandbox", "start", "hog"]));
    assert_eq!(exec(&server, "hog", &["echo", "ok"]).0, 0);
    assert_eq!(exec(&server, "bystander", &["echo", "alive"]).0, 0);
}

/// A file the test puts on the host (in `/root` or `/home`) for a sandbox to look for; removed
/// when dropped.
struct HostProbe(std::path::PathBuf);

impl HostProbe {
    fn new(dir: &str, contents: &str) -> HostProbe {
        let path = std::path::Path::new(dir).join(format!(
            "amika-probe-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::write(&path, contents).unwrap();
        HostProbe(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for HostProbe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn the_host_and_other_sandboxes_are_out_of_reach_of_a_sandbox() {
    let server = Server::start();
    let _cleanup = DeleteAll(&server);
    let data = server.data_dir.to_str().unwrap().to_string();
    create(&server, "prober", &["--network", "none"]);
    create(&server, "neighbour", &["--network", "none"]);
    let neighbour_id = get(&server, "neighbour")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Something private in the neighbour's home and workspace.
    let private = "neighbour-private-3f9a1c";
    let (code, _, err) = exec(
        &server,
        "neighbour",
        &[
            "sh",
            "-c",
            &format!(
                "echo {private} > ~/neighbour-note && echo {private} > ~/workspace/neighbour-work"
            ),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let in_root = HostProbe::new("/root", "host-root-secret-77e1");
    let in_home = HostProbe::new("/home", "host-home-secret-77e1");
    let neighbour_home = format!("{data}/sandboxes/{neighbour_id}/home");
    // The paths exist on the host: the probes below fail because of the sandbox, not a typo.
    for path in [
        format!("{data}/master.key"),
        format!("{data}/amika.db"),
        format!("{data}/admin-api-key"),
        format!("{neighbour_home}/neighbour-note"),
        format!("{neighbour_home}/workspace/neighbour-work"),
    ] {
        assert!(std::path::Path::new(&path).exists(), "{path}");
    }

    let cannot_read = [
        format!("ls {data}"),
        format!("cat {data}/master.key"),
        format!("cat {data}/amika.db"),
        format!("cat {data}/admin-api-key"),
        format!("ls {data}/sandboxes"),
        format!("cat {neighbour_home}/neighbour-note"),
        format!("cat {neighbour_home}/workspace/neighbour-work"),
        format!("cat {}", in_root.path()),
        format!("cat {}", in_home.path()),
        "ls /root/.ssh /root/.cargo".to_string(),
        // Guessing: anything named like the neighbour's files anywhere, another user's home,
        // another sandbox's processes and their roots.
        "find / -name 'neighbour-*' -not -path '/proc/*' 2>/dev/null | grep .".to_string(),
        "ls /home | grep -v '^amika$' | grep .".to_string(),
        format!("grep -rs {private} /home /tmp /root /var /srv /mnt /opt"),
        format!("cat /proc/*/root{neighbour_home}/neighbour-note"),
        // Only the sandbox's own few processes are visible, not the host's hundreds.
        "test $(ls -d /proc/[0-9]* | wc -l) -gt 20".to_string(),
        "grep -l 'amika [s]erver' /proc/[0-9]*/cmdline".to_string(),
    ];
    for probe in &cannot_read {
        let (code, out, _) = exec(&server, "prober", &["sh", "-c", probe]);
        assert_ne!(code, 0, "a sandbox ran `{probe}`: {out}");
        for secret in [private, "host-root-secret", "host-home-secret"] {
            assert!(!out.contains(secret), "`{probe}` showed {secret}: {out}");
        }
    }

    // Writes: only home, workspace and /tmp (which are the sandbox's own).
    for dir in ["/home/amika", "/home/amika/workspace", "/tmp"] {
        let (code, _, err) = exec(&server, "prober", &["touch", &format!("{dir}/amika-w")]);
        assert_eq!(code, 0, "cannot write in {dir}: {err}");
    }
    for dir in [
        "/usr", "/usr/bin", "/etc", "/", "/opt", "/bin", "/var", "/root", "/home",
    ] {
        let target = format!("{dir}/amika-w").replace("//", "/");
        let (code, _, _) = exec(&server, "prober", &["touch", &target]);
        assert_ne!(code, 0, "a sandbox wrote {target}");
    }
    for dir in ["/usr", "/etc", "/opt", "/root", "/home"] {
        assert!(!std::path::Path::new(&format!("{dir}/amika-w")).exists());
    }
    // What the prober wrote stays in its own home, not the neighbour's.
    assert!(!std::path::Path::new(&format!("{neighbour_home}/amika-w")).exists());
}
