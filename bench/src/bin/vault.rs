//! Benchmark 5 (issue 8): a vault of 100,000 secrets.
//!
//! Times, through the API, at 1,000 stored secrets and again at 100,000:
//! - creating a secret (`POST /secrets`: seal, insert, audit);
//! - resolving a sandbox (`POST /sandboxes/resolve-preview` with 5 env secrets and both agent
//!   kinds: every lookup a create makes, nothing started).
//!
//! The ratio 100k / 1k should stay near 1 (flat). The fill between the two is done through the
//! service layer in process (`Service::create_secret`: the API handler's code without HTTP —
//! seal, insert, audit row), 8 tasks in parallel, and its rate is reported too.
//!
//! On PostgreSQL the tables are `ANALYZE`d before each measurement, as autovacuum does within
//! about a minute of a bulk load; the resolve time right after the fill, on stale statistics,
//! is reported in a note.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amika_bench::{
    ms, ratio, seed_create_fixtures, verdict, Backend, CommonArgs, Report, Server, Summary,
};
use amika_types::{CreateSandboxRequest, CreateSecretRequest};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "secret create and resolve times at 1k and 100k stored secrets")]
struct Args {
    #[arg(long, default_value_t = 1_000)]
    small: usize,
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Timed operations of each kind at each size.
    #[arg(long, default_value_t = 300)]
    probes: usize,
    /// Parallel tasks filling the vault.
    #[arg(long, default_value_t = 8)]
    fill_tasks: usize,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    Server::start(args.backend)
        .await?
        .run_then_stop(async |server| run(server, &args).await)
        .await
}

/// Timings at one vault size.
struct AtSize {
    create: Summary,
    resolve: Summary,
}

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let small = args.common.count(args.small, 20);
    let large = args.common.count(args.large, 200);
    let probes = args.common.count(args.probes, 5);
    let mut req = seed_create_fixtures(&server.client, 5).await?;
    req.name = "vault-bench".into();
    // The 5 fixtures and 2 credentials are part of the count from here on.
    let mut stored = 5;

    let (filled_small, fill_small) = fill(server, stored, small, args.fill_tasks).await?;
    stored = small;
    server.analyze().await?; // see below
    let at_small = probe(server, &req, probes, "small").await?;
    stored += probes;

    let (filled, fill_large) = fill(server, stored, large, args.fill_tasks).await?;
    // PostgreSQL plans by table statistics, which a bulk load leaves stale until autovacuum
    // analyzes the table (within about a minute). Measured right after the fill, then after
    // ANALYZE — the steady state this benchmark is about (at both sizes).
    let stale = if args.backend == Backend::Postgres {
        let stale = probe(server, &req, probes.min(50), "stale").await?;
        server.analyze().await?;
        Some(stale)
    } else {
        None
    };
    let at_large = probe(server, &req, probes, "large").await?;

    let mut report = Report::new(
        "vault",
        args.backend == Backend::Postgres,
        &[
            "operation",
            "stored",
            "n",
            "p50",
            "p95",
            "p99",
            "p50 ratio large/small",
        ],
    );
    for (label, s, l) in [
        (
            "`POST /secrets` (create one)",
            at_small.create,
            at_large.create,
        ),
        (
            "`POST /sandboxes/resolve-preview` (5 env secrets, 2 kinds)",
            at_small.resolve,
            at_large.resolve,
        ),
    ] {
        let mut cells = vec![label.to_string(), small.to_string()];
        cells.extend(s.ms_cells());
        cells.push(String::new());
        report.row(cells);
        let mut cells = vec![label.to_string(), large.to_string()];
        cells.extend(l.ms_cells());
        cells.push(format!("{:.2}×", ratio(l.p50, s.p50)));
        report.row(cells);
    }
    let create_ratio = ratio(at_large.create.p50, at_small.create.p50);
    let resolve_ratio = ratio(at_large.resolve.p50, at_small.resolve.p50);
    report.note(format!(
        "backend {}: {large}/{small} p50 ratio — create {create_ratio:.2}×, resolve {resolve_ratio:.2}× (flat means ≤ 1.5×: {} / {})",
        args.backend.name(),
        verdict(create_ratio <= 1.5),
        verdict(resolve_ratio <= 1.5),
    ));
    report.note(format!(
        "fill through the service layer in process (`Service::create_secret`: seal + insert + audit), {} tasks: {filled_small} secrets in {} ({:.0}/s), then {filled} in {} ({:.0}/s)",
        args.fill_tasks,
        ms(fill_small),
        filled_small as f64 / fill_small.as_secs_f64().max(1e-9),
        ms(fill_large),
        filled as f64 / fill_large.as_secs_f64().max(1e-9),
    ));
    if let Some(stale) = stale {
        report.note(format!(
            "postgres right after the fill, before ANALYZE (stale statistics, until autovacuum runs): create p50 {}, resolve p50 {} — the rows above are after ANALYZE",
            ms(stale.create.p50),
            ms(stale.resolve.p50)
        ));
    }
    report.finish(&args.common)
}

/// Create secrets through the service until `to` are stored; returns how many and how long.
async fn fill(
    server: &Server,
    from: usize,
    to: usize,
    tasks: usize,
) -> anyhow::Result<(usize, Duration)> {
    let caller = Arc::new(server.caller().await?);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(from));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks.max(1) {
        let svc = server.service.clone();
        let caller = caller.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= to {
                    return Ok::<_, anyhow::Error>(());
                }
                svc.create_secret(
                    &caller,
                    CreateSecretRequest {
                        name: format!("vault-fill-{i:06}"),
                        value: amika_bench::random_value(40),
                        scope: None,
                        description: None,
                    },
                )
                .await?;
                if (i + 1).is_multiple_of(10_000) {
                    eprintln!("{} secrets stored", i + 1);
                }
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok((to.saturating_sub(from), started.elapsed()))
}

async fn probe(
    server: &Server,
    req: &CreateSandboxRequest,
    n: usize,
    tag: &str,
) -> anyhow::Result<AtSize> {
    // Warm the pool and caches the same way at both sizes.
    for _ in 0..5 {
        server.client.resolve_preview(req).await?;
    }
    let mut create = Vec::with_capacity(n);
    let mut resolve = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        server
            .client
            .create_secret(&CreateSecretRequest {
                name: format!("vault-probe-{tag}-{i:04}"),
                value: amika_bench::random_value(40),
                scope: None,
                description: None,
            })
            .await?;
        create.push(t.elapsed());
        let t = Instant::now();
        let preview = server.client.resolve_preview(req).await?;
        resolve.push(t.elapsed());
        anyhow::ensure!(preview.secret_names.len() == 5, "preview lost secrets");
    }
    Ok(AtSize {
        create: Summary::of(&create),
        resolve: Summary::of(&resolve),
    })
}
