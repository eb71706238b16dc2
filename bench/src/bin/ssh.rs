//! Benchmark (issue 15): a command and a shell over the SSH endpoint, with the real OpenSSH
//! client, beside exec in the same run.
//!
//! One sandbox, one token. Each iteration times, interleaved so that drift on the machine lands
//! on every row:
//!
//! - `ssh dest -- true`: the `ssh` process from spawn to exit (TCP connect, key exchange, the
//!   token login, the command entering the sandbox, its exit status);
//! - `ssh -tt dest`: from spawn to the first byte the login shell's terminal shows (its prompt);
//! - baselines: `amika sandbox exec NAME -- true` (the CLI binary beside this one, from spawn to
//!   exit: its own start, one HTTP exec) and the same exec from this process (`POST .../exec`).
//!
//! The issue sets no target. A new SSH connection pays for a key exchange and an Ed25519
//! signature that an HTTP request does not.

use std::process::Stdio;
use std::time::{Duration, Instant};

use amika_bench::{
    create_running, exec_true, ms, ratio, Backend, CommonArgs, Report, Server, Summary,
};
use amika_types::CreateSandboxRequest;
use anyhow::{bail, Context};
use clap::Parser;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

#[derive(Debug, Parser)]
#[command(about = "ssh dest -- true and the first prompt byte of ssh -tt, beside exec true")]
struct Args {
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    Server::start_with(Backend::Sqlite, |c| {
        c.ssh_listen = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await?
    .run_then_stop(async |server| run(server, &args).await)
    .await
}

/// An OpenSSH client with no keys or known hosts of the machine's, that never prompts.
fn ssh(home: &std::path::Path) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn ssh_true(home: &std::path::Path, dest: &[String]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = ssh(home).args(dest).args(["--", "true"]).status().await?;
    if !status.success() {
        bail!("ssh -- true exited {status}");
    }
    Ok(started.elapsed())
}

async fn first_prompt_byte(home: &std::path::Path, dest: &[String]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = ssh(home)
        .arg("-tt")
        .args(dest)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = child.stdout.take().context("ssh's stdout")?;
    let mut byte = [0u8; 1];
    let n = out.read(&mut byte).await?;
    let elapsed = started.elapsed();
    let _ = child.kill().await;
    if n == 0 {
        bail!("the shell showed nothing");
    }
    Ok(elapsed)
}

/// `amika sandbox exec NAME -- true` with the CLI binary beside this one, if it was built.
async fn cli_exec_true(server: &Server, name: &str) -> anyhow::Result<Option<Duration>> {
    let exe = std::env::current_exe()?;
    let amika = exe.with_file_name("amika");
    if !amika.exists() {
        return Ok(None);
    }
    let started = Instant::now();
    let status = Command::new(&amika)
        .args(["sandbox", "exec", name, "--", "true"])
        .env("AMIKA_API_URL", &server.url)
        .env("AMIKA_API_KEY", &server.admin_key)
        .env("AMIKA_CONFIG", server.data_dir().join("no-cli-config.json"))
        .stdin(Stdio::null())
        .status()
        .await?;
    if !status.success() {
        bail!("amika sandbox exec exited {status}");
    }
    Ok(Some(started.elapsed()))
}

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let iterations = args.common.count(args.iterations, 3);
    let name = "ssh-bench";
    let req = CreateSandboxRequest {
        name: name.into(),
        ..Default::default()
    };
    let sb = create_running(&server.client, &req, Duration::from_millis(50))
        .await
        .map_err(anyhow::Error::msg)?;
    let access = server.client.create_ssh_access(name, None).await?;
    let dest: Vec<String> = access
        .ssh_destination
        .split_whitespace()
        .map(String::from)
        .collect();
    let home = tempfile::tempdir()?;
    let warmup = iterations / 10 + 1;
    let (mut cmd, mut prompt, mut cli, mut api) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..warmup + iterations {
        let c = ssh_true(home.path(), &dest).await?;
        let p = first_prompt_byte(home.path(), &dest).await?;
        let e = cli_exec_true(server, name).await?;
        let t = Instant::now();
        exec_true(&server.client, &sb.id).await?;
        let a = t.elapsed();
        if i >= warmup {
            cmd.push(c);
            prompt.push(p);
            cli.extend(e);
            api.push(a);
        }
    }
    let mut report = Report::new("ssh", false, &["measurement", "n", "p50", "p95", "p99"]);
    let (cmd, prompt, api) = (Summary::of(&cmd), Summary::of(&prompt), Summary::of(&api));
    let cli = (!cli.is_empty()).then(|| Summary::of(&cli));
    let mut rows = vec![
        ("`ssh dest -- true` (spawn to exit)", &cmd),
        ("`ssh -tt dest`: first prompt byte", &prompt),
        ("exec `true` over HTTP from this process", &api),
    ];
    if let Some(cli) = &cli {
        rows.push(("`amika sandbox exec NAME -- true` (spawn to exit)", cli));
    }
    for (label, s) in rows {
        let mut cells = vec![label.to_string()];
        cells.extend(s.ms_cells());
        report.row(cells);
    }
    let baseline = cli.as_ref().unwrap_or(&api);
    report.note(format!(
        "ssh -- true / {} at p50: {:.2}× ({} vs {})",
        if cli.is_some() {
            "amika sandbox exec"
        } else {
            "HTTP exec"
        },
        ratio(cmd.p50, baseline.p50),
        ms(cmd.p50),
        ms(baseline.p50)
    ));
    report.note(format!(
        "{iterations} iterations after {warmup} warm-up; the OpenSSH client of this machine"
    ));
    report.finish(&args.common)
}
