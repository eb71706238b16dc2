//! Benchmark (issue 19): the user's path through the CLI, beside raw bubblewrap in the same run.
//!
//! Each iteration times, interleaved so that drift on the machine lands on every row:
//!
//! - **the user's path**: `amika sandbox create --name N --no-git --network none` and then
//!   `amika sandbox exec N -- true`, two CLI processes, from the first spawn to the second exit
//!   (target: at most 2.5× one raw bwrap start);
//! - raw `bwrap --unshare-all ... /usr/bin/true` (the baseline);
//! - the CLI's own cost: `amika sandbox get N -o json` beside `curl` of the same request,
//!   `amika --version` (the CLI's start with no request) and the bare `true` binary (process
//!   start), so that what the CLI does before and around its one request shows as the
//!   difference.
//!
//! The sandbox is deleted through the API after each iteration (not timed), and the server's
//! background work (warm sandboxes, teardowns) settles before each step.

use std::process::Stdio;
use std::time::{Duration, Instant};

use amika_bench::{ms, ratio, raw_bwrap, verdict, Backend, CommonArgs, Report, Server, Summary};
use anyhow::bail;
use clap::Parser;
use tokio::process::Command;

#[derive(Debug, Parser)]
#[command(about = "amika sandbox create + exec (two CLI processes) beside raw bwrap")]
struct Args {
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    Server::start_with(Backend::Sqlite, |_| {})
        .await?
        .run_then_stop(async |server| run(server, &args).await)
        .await
}

/// Run a process to its exit, silenced: how long it took. It must succeed.
async fn timed(mut cmd: Command) -> anyhow::Result<Duration> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().await?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

/// The CLI binary beside this one, pointed at the server.
fn amika(server: &Server, args: &[&str]) -> anyhow::Result<Command> {
    let path = std::env::current_exe()?.with_file_name("amika");
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release -p amika-cli)",
            path.display()
        );
    }
    let mut cmd = Command::new(path);
    cmd.args(args)
        .env("AMIKA_API_URL", &server.url)
        .env("AMIKA_API_KEY", &server.admin_key)
        .env("AMIKA_CONFIG", server.data_dir().join("no-cli-config.json"));
    Ok(cmd)
}

/// `curl` of `GET /sandboxes/{name}`, the request `amika sandbox get` sends. The key goes in a
/// header file, not on curl's command line.
fn curl_get(server: &Server, name: &str, headers: &std::path::Path) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sf", "-o", "/dev/null", "-H"])
        .arg(format!("@{}", headers.display()))
        .arg(format!("{}/api/v0beta1/sandboxes/{name}", server.url));
    cmd
}

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let iterations = args.common.count(args.iterations, 3);
    let warmup = iterations / 10 + 1;
    let headers = server.data_dir().join("bench-curl-headers");
    std::fs::write(
        &headers,
        format!("Authorization: Bearer {}\n", server.admin_key),
    )?;
    let [mut path, mut raw, mut get, mut curl, mut version, mut bare]: [Vec<Duration>; 6] =
        Default::default();
    for i in 0..warmup + iterations {
        let name = format!("cli-path-{i}");
        server.settle().await;
        let r = raw_bwrap().await?;
        server.settle().await;
        let started = Instant::now();
        timed(amika(
            server,
            &[
                "sandbox",
                "create",
                "--name",
                &name,
                "--no-git",
                "--network",
                "none",
            ],
        )?)
        .await?;
        timed(amika(server, &["sandbox", "exec", &name, "--", "true"])?).await?;
        let p = started.elapsed();
        let g = timed(amika(server, &["sandbox", "get", &name, "-o", "json"])?).await?;
        let c = timed(curl_get(server, &name, &headers)).await?;
        let v = timed(amika(server, &["--version"])?).await?;
        let b = timed(Command::new("true")).await?;
        server.client.delete_sandbox(&name).await?;
        if i >= warmup {
            path.push(p);
            raw.push(r);
            get.push(g);
            curl.push(c);
            version.push(v);
            bare.push(b);
        }
    }
    let [path, raw, get, curl, version, bare] =
        [path, raw, get, curl, version, bare].map(|v| Summary::of(&v));
    let mut report = Report::new(
        "cli-path",
        false,
        &["measurement", "n", "p50", "p95", "p99", "p50 / raw p50"],
    );
    for (label, s) in [
        ("raw `bwrap --unshare-all … /usr/bin/true`", &raw),
        (
            "**`amika sandbox create` + `amika sandbox exec -- true`** (two processes)",
            &path,
        ),
        ("`amika sandbox get NAME -o json` (spawn to exit)", &get),
        ("`curl` of the same `GET /sandboxes/{name}`", &curl),
        ("`amika --version` (the CLI's start, no request)", &version),
        ("`true` (process start)", &bare),
    ] {
        let mut cells = vec![label.to_string()];
        cells.extend(s.ms_cells());
        cells.push(format!("{:.2}×", ratio(s.p50, raw.p50)));
        report.row(cells);
    }
    let x = ratio(path.p50, raw.p50);
    report.note(format!(
        "the user's path: p50 {x:.2}× raw bwrap ({} vs {}) — target ≤ 2.5× {}",
        ms(path.p50),
        ms(raw.p50),
        verdict(x <= 2.5)
    ));
    report.note(format!(
        "the CLI around one request: `amika sandbox get` {} against curl {}; the CLI's start alone (`amika --version`) {} against a bare process start {}",
        ms(get.p50),
        ms(curl.p50),
        ms(version.p50),
        ms(bare.p50)
    ));
    report.note(format!(
        "{iterations} iterations after {warmup} warm-up; network none; sqlite; the server in this process, the CLI the binary beside this one (the same build)"
    ));
    report.finish(&args.common)
}
