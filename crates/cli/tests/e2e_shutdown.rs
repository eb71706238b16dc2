//! How a real `amika server` process ends and how it guards its data dir: SIGTERM with a
//! command still running ends that command after the grace and the server exits within a
//! bound (before, it waited for the command without end); a second server on the same data dir
//! refuses to start, naming the first one's pid (before, it started and reconciled the first
//! one's sandboxes), and a server killed with SIGKILL leaves no lock behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::{ok, wait_until, Server};

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Processes whose command line is exactly `cmdline` (NUL-separated words).
fn processes_running(cmdline: &[u8]) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| c.as_slice() == cmdline)
        .count()
}

#[test]
fn sigterm_ends_a_running_exec_after_the_grace_and_the_server_exits() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("server.json");
    std::fs::write(&config, r#"{"shutdown_grace_secs": 1}"#).unwrap();
    let mut server = Server::start_with(None, &["--config", config.to_str().unwrap()]);
    ok(server
        .amika()
        .args(["sandbox", "create", "--name", "busy", "--no-setup"]));
    // A command that would run for 10 minutes, recognisable among the host's processes.
    let mut exec = server
        .amika()
        .args(["sandbox", "exec", "busy", "--", "sh", "-c"])
        .arg("echo started; exec sleep 613")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut started = String::new();
    BufReader::new(exec.stdout.take().unwrap())
        .read_line(&mut started)
        .unwrap();
    assert_eq!(started, "started\n");
    // `echo` runs before `exec` replaces the shell, so the sleep may be a moment behind.
    wait_until("the command runs", Duration::from_secs(5), || {
        processes_running(b"sleep\x00613\x00") == 1
    });

    let signalled = Instant::now();
    sigterm(server.pid());
    // The listener closes at once: a new client is refused while the exec still runs.
    let port = server.url.rsplit(':').next().unwrap().to_string();
    wait_until("the listener closes", Duration::from_secs(2), || {
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err()
    });
    let status = server
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| {
            panic!(
                "the server still runs 15 s after SIGTERM:\n{}",
                server.log_text()
            )
        });
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}\n{}", server.log_text());
    // The grace (1 s), then the exec is ended and its connection closes.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");

    let out = exec.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the server shut down while the command was running; the command was stopped"
        ),
        "{stderr}"
    );
    wait_until(
        "the command's process is gone",
        Duration::from_secs(5),
        || processes_running(b"sleep\x00613\x00") == 0,
    );
    assert!(
        server.log_text().contains("ending them"),
        "{}",
        server.log_text()
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_refuses_to_start_until_the_first_is_gone() {
    let server = Server::start();
    let second = Command::cargo_bin("amika")
        .unwrap()
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server.data_dir)
        .env_remove("AMIKA_DATABASE_URL")
        .env_remove("AMIKA_MASTER_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "another amika server (pid {}) is using the data dir {}",
            server.pid(),
            server.data_dir.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--data-dir"), "{stderr}");
    // The first server is untouched: it still answers.
    ok(server.amika().args(["sandbox", "list"]));

    // Killed without a chance to clean up, it leaves no lock: a new server starts there.
    let (dir, data_dir, db) = server.kill();
    let restarted = Server::start_in(dir, data_dir, db, &[]);
    ok(restarted.amika().args(["sandbox", "list"]));
}
