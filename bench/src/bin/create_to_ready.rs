//! Benchmark 1 (issues 3 and 8): create-to-ready against raw bubblewrap, in the same run.
//!
//! Each iteration creates a sandbox through the API with 10 env secrets, a Claude OAuth
//! credential and a Codex API key, waits until it is running, runs the first exec of `true` and
//! stops the clock; the sandbox is then deleted (not timed). Beside it, in the same iteration,
//! raw `bwrap --unshare-all ... /usr/bin/true` is timed. Both network modes (`egress`, the
//! default, and `none`) are measured; the order within an iteration rotates so that neither
//! always runs on a warmer machine. Before each step the bench waits until the server's
//! background work (starting the warm sandbox that replaces one a create claimed) is done, so
//! that it lands in no measurement; `--warm-sandboxes 0` measures cold starts. Targets: p50 at
//! most 2× raw bwrap (3× at worst), p99 at most 5×.

use std::time::Duration;

use amika_bench::{
    create_to_ready, ratio, raw_bwrap, seed_create_fixtures, verdict, Backend, CommonArgs,
    CreateTiming, Report, Server, Summary,
};
use amika_types::NetworkMode;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "create-to-ready (create + first exec of `true`) vs raw bwrap")]
struct Args {
    /// Measured iterations per network mode (after the warm-up).
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Unmeasured iterations first (page cache, lazily opened pools).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Pause after each step (not timed). 0 runs the steps back to back; with a pause the
    /// machine goes idle between steps, as it is when a user creates one sandbox, and on this
    /// VM every step then takes longer (CPUs wake from idle on each hand-off).
    #[arg(long, default_value_t = 0)]
    settle_ms: u64,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// The server's `--warm-sandboxes` (0: every create starts cold).
    #[arg(long, default_value_t = amika_sandbox::local::DEFAULT_WARM)]
    warm_sandboxes: usize,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy)]
enum Step {
    Raw,
    Sandbox(NetworkMode),
}

const STEPS: [Step; 3] = [
    Step::Raw,
    Step::Sandbox(NetworkMode::Egress),
    Step::Sandbox(NetworkMode::None),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let iterations = args.common.count(args.iterations, 3);
    let warmup = args.common.count(args.warmup, 1);
    Server::start_with(args.backend, |c| c.warm_sandboxes = args.warm_sandboxes)
        .await?
        .run_then_stop(async |server| run(server, iterations, warmup, &args).await)
        .await
}

async fn run(server: &Server, iterations: usize, warmup: usize, args: &Args) -> anyhow::Result<()> {
    let template = seed_create_fixtures(&server.client, 10).await?;
    let mut raw = Vec::new();
    let mut egress: Vec<CreateTiming> = Vec::new();
    let mut none: Vec<CreateTiming> = Vec::new();
    for i in 0..warmup + iterations {
        let measured = i >= warmup;
        for k in 0..STEPS.len() {
            server.settle().await;
            match STEPS[(i + k) % STEPS.len()] {
                Step::Raw => {
                    let t = raw_bwrap().await?;
                    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
                    if measured {
                        raw.push(t);
                    }
                }
                Step::Sandbox(network) => {
                    let name = format!("c2r-{network}-{i}");
                    let t = create_to_ready(&server.client, &template, &name, network).await?;
                    server.client.delete_sandbox(&name).await?;
                    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
                    if measured {
                        match network {
                            NetworkMode::Egress => egress.push(t),
                            _ => none.push(t),
                        }
                    }
                }
            }
        }
        if measured && (i - warmup + 1).is_multiple_of(20) {
            eprintln!("{} / {iterations}", i - warmup + 1);
        }
    }

    let raw = Summary::of(&raw);
    let mut report = Report::new(
        "create-to-ready",
        args.backend == Backend::Postgres,
        &[
            "measurement",
            "n",
            "p50",
            "p95",
            "p99",
            "p50 / raw p50",
            "p99 / raw p99",
        ],
    );
    let mut row = |label: &str, s: &Summary| {
        let mut cells = vec![label.to_string()];
        cells.extend(s.ms_cells());
        cells.push(format!("{:.2}×", ratio(s.p50, raw.p50)));
        cells.push(format!("{:.2}×", ratio(s.p99, raw.p99)));
        report.row(cells);
    };
    row("raw `bwrap --unshare-all … /usr/bin/true`", &raw);
    let mut verdicts = Vec::new();
    for (mode, timings) in [("egress", &egress), ("none", &none)] {
        let total: Vec<Duration> = timings.iter().map(CreateTiming::total).collect();
        let create: Vec<Duration> = timings.iter().map(|t| t.create).collect();
        let exec: Vec<Duration> = timings.iter().map(|t| t.first_exec).collect();
        let total = Summary::of(&total);
        row(
            &format!("**{mode}: create-to-ready** (create + first exec)"),
            &total,
        );
        row(
            &format!("{mode}: of which create (202, running)"),
            &Summary::of(&create),
        );
        row(
            &format!("{mode}: of which first exec of `true`"),
            &Summary::of(&exec),
        );
        let p50 = ratio(total.p50, raw.p50);
        let p99 = ratio(total.p99, raw.p99);
        verdicts.push(format!(
            "{mode} ({}): p50 {p50:.2}× raw — target ≤ 2× {}, ≤ 3× {}; p99 {p99:.2}× raw — target ≤ 5× {}",
            args.backend.name(),
            verdict(p50 <= 2.0),
            verdict(p50 <= 3.0),
            verdict(p99 <= 5.0),
        ));
    }
    for v in verdicts {
        report.note(v);
    }
    report.note(format!(
        "backend {}; every create carries 10 env secrets, a claude oauth and a codex api_key credential; sandboxes deleted between iterations (not timed), then {} ms of rest; {warmup} warm-up iterations; server --warm-sandboxes {}",
        args.backend.name(),
        args.settle_ms,
        args.warm_sandboxes
    ));
    report.finish(&args.common)
}
