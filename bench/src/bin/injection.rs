//! Benchmark 2 (issue 8): resolution, decryption and injection of 50 secrets, in process.
//!
//! Calls the service layer directly, no HTTP: `Service::prepare_injection` resolves a create
//! request that maps 50 env secrets and pins a Claude OAuth credential and a Codex API key,
//! loads every row, opens all 52 sealed values (unwrap the data key, decrypt) and builds the
//! provider's `Injection` — everything a create does before its first write. Resolution alone
//! (`Service::preview_sandbox`) is timed beside it, so the cost of decryption shows.
//! Target: p50 under 1 ms.

use std::time::Instant;

use amika_bench::{seed_create_fixtures, verdict, Backend, CommonArgs, Report, Server, Summary};
use anyhow::ensure;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "resolve + decrypt + build the injection of 50 secrets, in process")]
struct Args {
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Env secrets in the request.
    #[arg(long, default_value_t = 50)]
    secrets: usize,
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

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let iterations = args.common.count(args.iterations, 20);
    let mut req = seed_create_fixtures(&server.client, args.secrets).await?;
    req.name = "injection-bench".into();
    let caller = server.caller().await?;
    let svc = &server.service;

    // Check once that the work is the whole work: every value is in the injection.
    let injection = svc.prepare_injection(&caller, &req).await?;
    ensure!(
        injection.env.len() == args.secrets + 1 && injection.files.len() == 2,
        "expected {} env vars and 2 files, got {} and {}",
        args.secrets + 1,
        injection.env.len(),
        injection.files.len()
    );

    let warmup = iterations / 10 + 1;
    let mut full = Vec::with_capacity(iterations);
    let mut resolve_only = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let t = Instant::now();
        let injection = svc.prepare_injection(&caller, &req).await?;
        let took = t.elapsed();
        drop(injection);
        let t = Instant::now();
        svc.preview_sandbox(&caller, &req).await?;
        let resolve = t.elapsed();
        if i >= warmup {
            full.push(took);
            resolve_only.push(resolve);
        }
    }
    let full = Summary::of(&full);
    let resolve_only = Summary::of(&resolve_only);
    let mut report = Report::new(
        "injection",
        args.backend == Backend::Postgres,
        &["measurement", "n", "p50", "p95", "p99"],
    );
    let mut row = |label: String, s: &Summary| {
        let mut cells = vec![label];
        cells.extend(s.us_cells());
        report.row(cells);
    };
    row(
        format!(
            "**resolve + decrypt {} values + build Injection** ({} env secrets, claude oauth, codex api_key)",
            args.secrets + 2,
            args.secrets
        ),
        &full,
    );
    row("resolution only (`preview_sandbox`)".into(), &resolve_only);
    report.note(format!(
        "backend {}: p50 {:.3} ms — target < 1 ms {}",
        args.backend.name(),
        full.p50.as_secs_f64() * 1e3,
        verdict(full.p50.as_secs_f64() < 1e-3)
    ));
    report.note("in process through `Service::prepare_injection`: store reads, XChaCha20-Poly1305 unwrap + decrypt of each value, the Injection; no HTTP");
    report.finish(&args.common)
}
