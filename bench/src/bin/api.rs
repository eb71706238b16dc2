//! Benchmark 3 (issue 8): API throughput and latency under `wrk` on 127.0.0.1, 64 connections.
//!
//! One server (started with `AMIKA_BENCH_ROUTES=1`) answers, one after the other, at
//! `--connections` (64):
//! - `GET /bench/constant` — a constant, no service call: the ceiling of the HTTP stack here;
//! - `GET /bench/authenticated` — the same constant after authenticating the key (diagnostic);
//! - `GET /healthz` — public, no key, no storage: the HTTP stack and routing alone;
//! - `GET /api/v0beta1/sandboxes/{name}` — a sandbox by name;
//! - `GET /api/v0beta1/secrets?limit=50` — the first page of the secrets list;
//! - `GET /api/v0beta1/secrets` — the whole secrets list, with 1,000 secrets stored
//!   (`--secrets 10000` for issue 17's figure);
//!
//! then at `--list-connections` (200, issue 19: "200 concurrent clients listing sandboxes"):
//! - `GET /bench/constant` again — the ceiling at that load;
//! - `GET /api/v0beta1/sandboxes` — the caller's `--list-sandboxes` (10) sandboxes, running
//!   (created through the API with network `none`: `bench-box` and `bench-list-NN`).
//!
//! Targets: each API endpoint at least 50% of the ceiling's throughput, p99 under 10 ms (issue
//! 19: by name p99 under 5 ms; the list at 200 connections p99 under 50 ms).
//! The 1,000 secrets are created through the service layer in process (seal + insert + audit,
//! the API handler's code without HTTP); the API key reaches wrk through its environment.

use std::process::Stdio;
use std::time::Duration;

use amika_bench::{repo_root, verdict, Backend, CommonArgs, Report, Server, BENCH_ROUTES_ENV};
use amika_types::{CreateSandboxRequest, CreateSecretRequest, NetworkMode};
use anyhow::{bail, Context};
use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(about = "API throughput and latency with wrk, against a constant handler")]
struct Args {
    /// Seconds of load per endpoint.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Secrets stored for the list endpoint.
    #[arg(long, default_value_t = 1000)]
    secrets: usize,
    /// `limit` of the first-page request.
    #[arg(long, default_value_t = 50)]
    page: u32,
    /// Connections of the sandbox-list run (and of the ceiling measured beside it).
    #[arg(long, default_value_t = 200)]
    list_connections: usize,
    /// Sandboxes of the caller listed by the sandbox-list run (running, network `none`).
    #[arg(long, default_value_t = 10)]
    list_sandboxes: usize,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    #[command(flatten)]
    common: CommonArgs,
}

/// What wrk measured for one endpoint.
#[derive(Debug, Clone, Copy)]
struct WrkResult {
    rps: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    requests: u64,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    // Before any thread exists: the router reads it when the server starts.
    std::env::set_var(BENCH_ROUTES_ENV, "1");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let args = Args::parse();
            Server::start(args.backend)
                .await?
                .run_then_stop(async |server| run(server, &args).await)
                .await
        })
}

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let secrets = args.common.count(args.secrets, 50);
    let duration = args.common.count(args.duration as usize, 1) as u64;
    let sandboxes = args.common.count(args.list_sandboxes, 3).max(1);
    seed(server, secrets, args.page, sandboxes).await?;
    let results = load_endpoints(server, args, duration, (secrets, sandboxes)).await?;
    report(args, duration, &results)
}

/// Store `secrets` secrets and the sandbox `bench-box`, and check that the endpoints answer
/// what they should before they are loaded.
async fn seed(server: &Server, secrets: usize, page: u32, sandboxes: usize) -> anyhow::Result<()> {
    let caller = server.caller().await?;
    for i in 0..secrets {
        server
            .service
            .create_secret(
                &caller,
                CreateSecretRequest {
                    name: format!("api-bench-{i:05}"),
                    value: amika_bench::random_value(40),
                    scope: None,
                    description: Some("api benchmark".into()),
                },
            )
            .await?;
    }
    for i in 0..sandboxes {
        let name = match i {
            0 => "bench-box".to_string(),
            i => format!("bench-list-{i:02}"),
        };
        server
            .client
            .create_sandbox(&CreateSandboxRequest {
                name,
                network: Some(NetworkMode::None),
                ..Default::default()
            })
            .await?;
    }
    let listed = server.client.list_sandboxes().await?;
    if listed.len() != sandboxes {
        bail!(
            "the list has {} sandboxes, expected {sandboxes}",
            listed.len()
        );
    }
    let listed = server.client.list_secrets().await?;
    if listed.len() != secrets {
        bail!("the list has {} secrets, expected {secrets}", listed.len());
    }
    let first = server
        .client
        .list_page::<amika_types::SecretSummary>("/secrets", page, None)
        .await?;
    if first.items.len() != secrets.min(page as usize) {
        bail!(
            "the first page has {} secrets, expected {}",
            first.items.len(),
            secrets.min(page as usize)
        );
    }
    if (secrets > page as usize) != first.next_cursor.is_some() {
        bail!(
            "the first page's next cursor is {:?} with {secrets} stored",
            first.next_cursor
        );
    }
    server.client.get_sandbox("bench-box").await?;
    Ok(())
}

/// One loaded endpoint: what the table calls it, its path, the connections wrk keeps open, and
/// its target (none for the references: the ceilings, the authenticated constant, /healthz).
struct Endpoint {
    label: String,
    path: String,
    connections: usize,
    /// The p99 it must stay under (with ≥ 50% of the ceiling at the same connections).
    p99_target: Option<Duration>,
}

/// The endpoints loaded, in order: each group's ceiling first.
fn endpoints(args: &Args, sandboxes: usize) -> Vec<Endpoint> {
    let api = amika_types::API_BASE;
    let (c, lc, page) = (args.connections, args.list_connections, args.page);
    let at = |label: &str, path: String, connections, p99_ms: Option<u64>| Endpoint {
        label: label.to_string(),
        path,
        connections,
        p99_target: p99_ms.map(Duration::from_millis),
    };
    vec![
        at(
            "ceiling: `GET /bench/constant`",
            "/bench/constant".into(),
            c,
            None,
        ),
        at(
            "`GET /bench/authenticated` (constant after auth)",
            "/bench/authenticated".into(),
            c,
            None,
        ),
        at(
            "`GET /healthz` (public, no storage)",
            "/healthz".into(),
            c,
            None,
        ),
        at(
            "`GET /api/v0beta1/sandboxes/bench-box` (by name)",
            format!("{api}/sandboxes/bench-box"),
            c,
            Some(5),
        ),
        at(
            &format!("`GET /api/v0beta1/secrets?limit={page}` (first page, 1,000 stored)"),
            format!("{api}/secrets?limit={page}"),
            c,
            Some(10),
        ),
        at(
            "`GET /api/v0beta1/secrets` (all, 1,000 stored)",
            format!("{api}/secrets"),
            c,
            Some(10),
        ),
        at(
            "ceiling: `GET /bench/constant`",
            "/bench/constant".into(),
            lc,
            None,
        ),
        at(
            &format!("`GET /api/v0beta1/sandboxes` ({sandboxes} listed, running)"),
            format!("{api}/sandboxes"),
            lc,
            Some(50),
        ),
    ]
}

/// Load each endpoint with wrk for `duration` seconds, one after the other; any failed request
/// fails the run. Each result comes with the ceiling's throughput at its connections.
async fn load_endpoints(
    server: &Server,
    args: &Args,
    duration: u64,
    (secrets, sandboxes): (usize, usize),
) -> anyhow::Result<Vec<(Endpoint, WrkResult, f64)>> {
    let mut results = Vec::new();
    let mut ceiling = 0.0;
    for mut e in endpoints(args, sandboxes) {
        let url = format!("{}{}", server.url, e.path);
        eprintln!("wrk -c{} {url} for {duration}s ...", e.connections);
        let r = wrk(&url, &server.admin_key, args, e.connections, duration).await?;
        e.label = e.label.replace("1,000", &fmt_thousands(secrets));
        if r.errors > 0 {
            bail!(
                "{}: {} of {} requests failed",
                e.label,
                r.errors,
                r.requests
            );
        }
        if e.path == "/bench/constant" {
            ceiling = r.rps;
        }
        results.push((e, r, ceiling));
    }
    Ok(results)
}

/// The table: each endpoint's throughput against the ceiling at the same connections and its
/// latency, with the targets for the API endpoints.
fn report(
    args: &Args,
    duration: u64,
    results: &[(Endpoint, WrkResult, f64)],
) -> anyhow::Result<()> {
    let mut report = Report::new(
        "api",
        args.backend == Backend::Postgres,
        &[
            "endpoint",
            "connections",
            "requests/s",
            "of ceiling",
            "p50",
            "p95",
            "p99",
            "target: ≥ 50% / p99",
        ],
    );
    for (e, r, ceiling) in results {
        let share = r.rps / ceiling;
        let target = match e.p99_target {
            None => "—".to_string(),
            Some(p99) => format!(
                "{} / < {} ms {}",
                verdict(share >= 0.5),
                p99.as_millis(),
                verdict(r.p99 < p99)
            ),
        };
        report.row(vec![
            e.label.clone(),
            e.connections.to_string(),
            format!("{:.0}", r.rps),
            format!("{:.0}%", share * 100.0),
            amika_bench::ms(r.p50),
            amika_bench::ms(r.p95),
            amika_bench::ms(r.p99),
            target,
        ]);
    }
    report.note(format!(
        "backend {}; wrk -t{} -d{duration}s on 127.0.0.1, one run per endpoint in this order, each against the ceiling at its connections; server in the benchmark's process (2 tokio workers on this machine), wrk beside it on the same cores",
        args.backend.name(),
        args.threads,
    ));
    report.finish(&args.common)
}

fn fmt_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn wrk(
    url: &str,
    token: &str,
    args: &Args,
    connections: usize,
    duration: u64,
) -> anyhow::Result<WrkResult> {
    let script = repo_root().join("bench/wrk/report.lua");
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{duration}s"))
        // Long enough for the whole list of 10,000 secrets queued behind 64 connections (seconds
        // each): a timeout would count as a failed request, not as the latency it is.
        .arg("--timeout")
        .arg("60s")
        .arg("-s")
        .arg(&script)
        .arg(url)
        .env("AMIKA_BENCH_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .await
        .context("run wrk (apt-get install -y wrk)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK_RESULT "))
        .with_context(|| format!("wrk printed no result line: {stdout}"))?;
    let v: Value = serde_json::from_str(line)?;
    let num = |k: &str| {
        v[k].as_u64()
            .with_context(|| format!("wrk result lacks {k}"))
    };
    let requests = num("requests")?;
    let us = |k: &str| num(k).map(Duration::from_micros);
    Ok(WrkResult {
        rps: requests as f64 / (num("duration_us")? as f64 / 1e6),
        p50: us("p50_us")?,
        p95: us("p95_us")?,
        p99: us("p99_us")?,
        requests,
        errors: num("non2xx")? + num("socket_errors")?,
    })
}
