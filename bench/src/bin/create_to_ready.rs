//! Benchmark 1 (issues 3 and 8): create-to-ready against raw bubblewrap, in the same run.
//!
//! Each iteration creates a sandbox through the API with 10 env secrets, a Claude OAuth
//! credential and a Codex API key, waits until it is running, runs the first exec of `true` and
//! stops the clock; the sandbox is then deleted, its `DELETE` timed on its own (issue 19's
//! target: the answer within one raw bwrap start, the teardown after it). Beside it, in the same iteration,
//! raw `bwrap --unshare-all ... /usr/bin/true` is timed. Both network modes (`egress`, the
//! default, and `none`) are measured; the order within an iteration is shuffled (fixed seed) so
//! that no step always runs on a warmer machine or right after the same other step. Before each
//! step the bench waits until the server's background work (starting the warm sandbox that
//! replaces one a create claimed) is done, so that it lands in no measurement;
//! `--warm-sandboxes 0` measures cold starts. Targets: p50 at most 2× raw bwrap (3× at worst),
//! p99 at most 5×.
//!
//! `--preset coder` (issue 14) installs the preset (into `--presets-dir`, default the tests'
//! shared `~/.cache/amika-test-presets`) and adds a third kind of create: network `none` with
//! the preset's layer mounted, compared with `none` without it. Target: the preset adds < 2 ms
//! at p50.

use std::time::{Duration, Instant};

use amika_bench::{
    create_to_ready, ratio, raw_bwrap, seed_create_fixtures, verdict, Backend, CommonArgs,
    CreateTiming, Report, Server, Summary,
};
use amika_types::NetworkMode;
use clap::Parser;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

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
    /// Also measure creates with this preset (e.g. coder), installed first if needed.
    #[arg(long)]
    preset: Option<String>,
    /// Where the preset's layers live (default `~/.cache/amika-test-presets`, what the tests
    /// share, so that nothing is downloaded again).
    #[arg(long)]
    presets_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy)]
enum Step {
    Raw,
    Sandbox(NetworkMode),
    /// Network `none` with the preset of `--preset`.
    Preset,
}

const STEPS: [Step; 4] = [
    Step::Raw,
    Step::Sandbox(NetworkMode::Egress),
    Step::Sandbox(NetworkMode::None),
    Step::Preset,
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let iterations = args.common.count(args.iterations, 3);
    let warmup = args.common.count(args.warmup, 1);
    let presets_dir = args.presets_dir.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
        std::path::PathBuf::from(home).join(".cache/amika-test-presets")
    });
    Server::start_with(args.backend, |c| {
        c.warm_sandboxes = args.warm_sandboxes;
        c.presets_dir = presets_dir;
    })
    .await?
    .run_then_stop(async |server| run(server, iterations, warmup, &args).await)
    .await
}

async fn run(server: &Server, iterations: usize, warmup: usize, args: &Args) -> anyhow::Result<()> {
    let template = seed_create_fixtures(&server.client, 10).await?;
    if let Some(name) = &args.preset {
        let def = amika_server::service::presets::find(name).map_err(anyhow::Error::msg)?;
        let progress = amika_server::service::presets::InstallProgress::none();
        server
            .service
            .install_preset_as_server(def, progress)
            .await?;
    }
    let steps: Vec<Step> = STEPS
        .into_iter()
        .filter(|s| args.preset.is_some() || !matches!(s, Step::Preset))
        .collect();
    let mut rng = StdRng::seed_from_u64(14);
    let mut with_preset: Vec<CreateTiming> = Vec::new();
    let mut raw = Vec::new();
    let mut egress: Vec<CreateTiming> = Vec::new();
    let mut none: Vec<CreateTiming> = Vec::new();
    let (mut delete_egress, mut delete_none) = (Vec::new(), Vec::new());
    for i in 0..warmup + iterations {
        let measured = i >= warmup;
        // Shuffled, not rotated: with a rotation each step always follows the same other one
        // (`none` after `egress`, the preset after `none`), and what a step leaves behind
        // lands in its successor's time.
        let mut order = steps.clone();
        order.shuffle(&mut rng);
        for step in order {
            server.settle().await;
            match step {
                Step::Raw => {
                    let t = raw_bwrap().await?;
                    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
                    if measured {
                        raw.push(t);
                    }
                }
                Step::Preset => {
                    let name = format!("c2r-preset-{i}");
                    let mut req = template.clone();
                    req.preset = args.preset.clone();
                    let t = create_to_ready(&server.client, &req, &name, NetworkMode::None).await?;
                    server.client.delete_sandbox(&name).await?;
                    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
                    if measured {
                        with_preset.push(t);
                    }
                }
                Step::Sandbox(network) => {
                    let name = format!("c2r-{network}-{i}");
                    let t = create_to_ready(&server.client, &template, &name, network).await?;
                    server.settle().await;
                    let started = Instant::now();
                    server.client.delete_sandbox(&name).await?;
                    let deleted = started.elapsed();
                    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
                    if measured {
                        match network {
                            NetworkMode::Egress => (egress.push(t), delete_egress.push(deleted)),
                            _ => (none.push(t), delete_none.push(deleted)),
                        };
                    }
                }
            }
        }
        if measured && (i - warmup + 1).is_multiple_of(20) {
            eprintln!("{} / {iterations}", i - warmup + 1);
        }
    }

    let deletes = [("egress", delete_egress), ("none", delete_none)];
    report(args, warmup, &raw, &egress, &none, &with_preset, &deletes)
}

/// The table and verdicts of a run.
fn report(
    args: &Args,
    warmup: usize,
    raw: &[Duration],
    egress: &[CreateTiming],
    none: &[CreateTiming],
    with_preset: &[CreateTiming],
    deletes: &[(&str, Vec<Duration>)],
) -> anyhow::Result<()> {
    let raw = Summary::of(raw);
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
    for (mode, timings) in [("egress", egress), ("none", none)] {
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
    for (mode, times) in deletes {
        let s = Summary::of(times);
        row(
            &format!("**{mode}: `DELETE /sandboxes/{{name}}`** (the answer)"),
            &s,
        );
        let p50 = ratio(s.p50, raw.p50);
        verdicts.push(format!(
            "delete, {mode}: p50 {p50:.2}× raw — target ≤ 1× {}",
            verdict(p50 <= 1.0)
        ));
    }
    if let Some(preset) = &args.preset {
        verdicts.push(preset_rows(preset, with_preset, none, &mut row));
    }
    for v in verdicts {
        report.note(v);
    }
    report.note(format!(
        "backend {}; every create carries 10 env secrets, a claude oauth and a codex api_key credential; each sandbox deleted after its create-to-ready (the delete timed on its own, after the server settled), then {} ms of rest; {warmup} warm-up iterations; server --warm-sandboxes {}",
        args.backend.name(),
        args.settle_ms,
        args.warm_sandboxes
    ));
    report.finish(&args.common)
}

/// The preset's rows (`--preset`), and its verdict.
fn preset_rows(
    preset: &str,
    with_preset: &[CreateTiming],
    none: &[CreateTiming],
    row: &mut dyn FnMut(&str, &Summary),
) -> String {
    let total =
        |t: &[CreateTiming]| Summary::of(&t.iter().map(CreateTiming::total).collect::<Vec<_>>());
    let (with, without) = (total(with_preset), total(none));
    row(
        &format!("**none + preset {preset}: create-to-ready**"),
        &with,
    );
    let part = |f: fn(&CreateTiming) -> Duration| {
        Summary::of(&with_preset.iter().map(f).collect::<Vec<_>>())
    };
    row(
        &format!("none + preset {preset}: of which create"),
        &part(|t| t.create),
    );
    row(
        &format!("none + preset {preset}: of which first exec of `true`"),
        &part(|t| t.first_exec),
    );
    let added = with.p50.as_secs_f64() * 1000.0 - without.p50.as_secs_f64() * 1000.0;
    format!(
        "preset {preset}: adds {added:.2} ms at p50 over `none` without it — target < 2 ms {}; median of the per-iteration differences (same iteration, both creates): {:.2} ms",
        verdict(added < 2.0),
        paired_median_ms(with_preset, none),
    )
}

/// The median of `a[i] - b[i]` (same iteration) in ms: less sensitive to what the machine does
/// from one iteration to the next than a difference of two medians.
fn paired_median_ms(a: &[CreateTiming], b: &[CreateTiming]) -> f64 {
    let mut d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x.total().as_secs_f64() - y.total().as_secs_f64()) * 1000.0)
        .collect();
    d.sort_by(f64::total_cmp);
    d.get(d.len() / 2).copied().unwrap_or(0.0)
}
