//! Benchmark 9 (issue 19): create + delete cycles under concurrent load, against raw bubblewrap
//! under the same concurrency, in the same run.
//!
//! First the baseline: `--clients` (50) loops each running raw `bwrap --unshare-all …
//! /usr/bin/true` again and again for `--duration` (30 s) after `--warmup` (5 s): bubblewrap
//! cycles per second, what this machine can start at that concurrency at all. Then the same
//! number of API clients (each with its own connection pool) each run, again and again:
//! `POST /sandboxes` (10 env secrets, a Claude OAuth and a Codex API key credential, network
//! `--network`, default `egress`), wait until it is `running`, `DELETE /sandboxes/{name}`.
//! Reported: cycles per second (cycles that ended in the measured window, over its length),
//! create (`POST` until `running`) and delete (the answer) p50/p95/p99, errors by operation with
//! the first message (target 0), and CPU time per cycle: this process tree's (`/proc/self/stat`,
//! children once reaped) and the machine's busy time (from `/proc/stat`:
//! everything on the machine, this process's server and clients included).
//! Targets: ≥ 80 cycles/s and create p99 < 250 ms at 50 clients.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amika_bench::{
    create_running, describe, ms, parse_duration, raw_bwrap, seed_create_fixtures, verdict,
    Backend, CommonArgs, Report, Server, Summary,
};
use amika_client::Client;
use amika_types::{CreateSandboxRequest, NetworkMode};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "create + delete cycles of N concurrent clients vs N concurrent raw bwrap loops")]
struct Args {
    /// Concurrent client loops (and raw bwrap loops for the baseline).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// How long each measurement runs, after the warm-up: `30`, `30s`, `1m`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured load first (same loops), before each measurement.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// The network mode of every create: egress, none or host.
    #[arg(long, default_value = "egress")]
    network: NetworkMode,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Also time the server's tracing spans (wall time by step, waits included) during the
    /// measured window, and print them as a second table.
    #[arg(long)]
    spans: bool,
    /// The server's `--warm-sandboxes`.
    #[arg(long, default_value_t = amika_sandbox::local::DEFAULT_WARM)]
    warm_sandboxes: usize,
    #[command(flatten)]
    common: CommonArgs,
}

/// The measured window: cycles that end inside it count.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn after_warmup(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now() + warmup;
        Window {
            start,
            end: start + duration,
        }
    }

    fn counts(&self, began: Instant) -> bool {
        began >= self.start && began < self.end
    }
}

/// What the loops saw, shared by all of them.
#[derive(Debug, Default)]
struct Tally {
    /// Cycles begun in the window and ended.
    cycles: Vec<Duration>,
    create: Vec<Duration>,
    delete: Vec<Duration>,
    /// Errors by operation: count and first message.
    errors: BTreeMap<&'static str, (u64, String)>,
}

type Shared = Arc<Mutex<Tally>>;

fn record_error(tally: &Shared, op: &'static str, message: String) {
    let mut t = tally.lock().expect("tally lock");
    let e = t.errors.entry(op).or_insert((0, String::new()));
    if e.0 == 0 {
        eprintln!("throughput: {op} failed: {message}");
        e.1 = message;
    }
    e.0 += 1;
}

/// The machine's busy and total CPU time so far, in ms (`/proc/stat`, USER_HZ = 100).
fn cpu_ms() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    ((total - idle) * 10, total * 10)
}

/// CPU time of this process (the server, the clients) and of its children it reaped (bwrap,
/// which reaped the sandbox's init and its commands; slirp4netns), in ms: what the machine's
/// other tenants do not add to (`/proc/self/stat`: utime, stime, cutime, cstime).
fn own_cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name's closing parenthesis, field 3 (state) comes first.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() * 10
}

/// One measurement: cycles/s, the CPU the machine spent per cycle and its share busy, and the
/// CPU this process tree spent per cycle.
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_sec: f64,
    cpu_ms_per_cycle: f64,
    busy: f64,
    own_ms_per_cycle: f64,
}

/// Run `loops` until the window ends, sampling the machine's CPU over the window.
async fn measure(window: Window, loops: Vec<tokio::task::JoinHandle<()>>, tally: &Shared) -> Rate {
    tokio::time::sleep_until(window.start.into()).await;
    let (before, own_before) = (cpu_ms(), own_cpu_ms());
    tokio::time::sleep_until(window.end.into()).await;
    let (after, own_after) = (cpu_ms(), own_cpu_ms());
    for l in loops {
        let _ = l.await;
    }
    let n = tally.lock().expect("tally lock").cycles.len();
    let secs = (window.end - window.start).as_secs_f64();
    let (busy, total) = (after.0 - before.0, after.1 - before.1);
    Rate {
        per_sec: n as f64 / secs,
        cpu_ms_per_cycle: busy as f64 / n.max(1) as f64,
        busy: busy as f64 / total.max(1) as f64,
        own_ms_per_cycle: (own_after - own_before) as f64 / n.max(1) as f64,
    }
}

/// The baseline: `clients` loops of raw bwrap.
async fn baseline(clients: usize, window: Window) -> (Rate, Shared) {
    let tally = Shared::default();
    let loops = (0..clients)
        .map(|_| {
            let tally = tally.clone();
            tokio::spawn(async move {
                while Instant::now() < window.end {
                    let began = Instant::now();
                    match raw_bwrap().await {
                        Ok(t) if window.counts(began) && Instant::now() < window.end => {
                            tally.lock().expect("tally lock").cycles.push(t)
                        }
                        Ok(_) => {}
                        Err(e) => record_error(&tally, "raw bwrap", format!("{e:#}")),
                    }
                }
            })
        })
        .collect();
    (measure(window, loops, &tally).await, tally)
}

/// One client's create + delete loop until the window ends.
async fn cycle_loop(
    client: Client,
    j: usize,
    template: CreateSandboxRequest,
    window: Window,
    tally: Shared,
) {
    let mut n = 0;
    while Instant::now() < window.end {
        let mut req = template.clone();
        req.name = format!("tp-{j}-{n}");
        n += 1;
        let began = Instant::now();
        if let Err(e) = create_running(&client, &req, Duration::from_millis(10)).await {
            record_error(&tally, "create", e);
            let _ = client.delete_sandbox(&req.name).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let created = began.elapsed();
        let deleting = Instant::now();
        if let Err(e) = client.delete_sandbox(&req.name).await {
            record_error(&tally, "delete", describe(&e));
            continue;
        }
        let deleted = deleting.elapsed();
        if window.counts(began) && Instant::now() < window.end {
            let mut t = tally.lock().expect("tally lock");
            t.cycles.push(began.elapsed());
            t.create.push(created);
            t.delete.push(deleted);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spans = if args.spans {
        Some(amika_bench::spans::SpanTimes::install()?)
    } else {
        None
    };
    Server::start_with(args.backend, |c| c.warm_sandboxes = args.warm_sandboxes)
        .await?
        .run_then_stop(async |server| run(server, &args, spans.as_ref()).await)
        .await
}

async fn run(
    server: &Server,
    args: &Args,
    spans: Option<&amika_bench::spans::SpanTimes>,
) -> anyhow::Result<()> {
    let (clients, duration, warmup) = if args.common.smoke {
        (4, Duration::from_secs(3), Duration::from_secs(1))
    } else {
        (args.clients, args.duration, args.warmup)
    };
    let mut template = seed_create_fixtures(&server.client, 10).await?;
    template.network = Some(args.network);

    eprintln!("raw bwrap: {clients} loops, {warmup:?} warm-up, {duration:?}");
    let (raw, raw_tally) = baseline(clients, Window::after_warmup(warmup, duration)).await;
    server.settle().await;

    eprintln!("amika: {clients} create + delete loops, {warmup:?} warm-up, {duration:?}");
    let window = Window::after_warmup(warmup, duration);
    let tally = Shared::default();
    let loops = (0..clients)
        .map(|j| {
            let client = Client::new(server.url.clone(), Some(server.admin_key.clone()));
            tokio::spawn(cycle_loop(
                client,
                j,
                template.clone(),
                window,
                tally.clone(),
            ))
        })
        .collect();
    if let Some(spans) = spans {
        tokio::time::sleep_until(window.start.into()).await;
        spans.clear();
    }
    let amika = measure(window, loops, &tally).await;
    // The last deletes' teardowns, before the server stops.
    server.settle().await;

    let raw_tally = raw_tally.lock().expect("tally lock");
    let tally = tally.lock().expect("tally lock");
    let spans = spans.map(|s| s.table());
    report(
        args,
        (clients, duration, warmup),
        raw,
        &raw_tally,
        amika,
        &tally,
        spans,
    )
}

fn report(
    args: &Args,
    (clients, duration, warmup): (usize, Duration, Duration),
    raw: Rate,
    raw_tally: &Tally,
    amika: Rate,
    tally: &Tally,
    spans: Option<(Vec<&str>, Vec<Vec<String>>)>,
) -> anyhow::Result<()> {
    let mut report = Report::new(
        "throughput",
        args.backend == Backend::Postgres,
        &[
            "measurement",
            "cycles/s",
            "CPU per cycle",
            "n",
            "p50",
            "p95",
            "p99",
            "errors",
        ],
    );
    let errors = |t: &Tally, op: &str| t.errors.get(op).map_or(0, |e| e.0).to_string();
    let mut row = |label: &str, rate: Option<Rate>, samples: &[Duration], errors: String| {
        let mut cells = vec![label.to_string()];
        match rate {
            Some(r) => cells.extend([
                format!("{:.1}", r.per_sec),
                format!(
                    "{:.1} ms ({:.1} ms machine, {:.0}% busy)",
                    r.own_ms_per_cycle,
                    r.cpu_ms_per_cycle,
                    r.busy * 100.0
                ),
            ]),
            None => cells.extend(["".into(), "".into()]),
        }
        if samples.is_empty() {
            cells.extend(["0".into(), "-".into(), "-".into(), "-".into()]);
        } else {
            cells.extend(Summary::of(samples).ms_cells());
        }
        cells.push(errors);
        report.row(cells);
    };
    row(
        &format!("raw `bwrap --unshare-all … /usr/bin/true`, {clients} loops"),
        Some(raw),
        &raw_tally.cycles,
        errors(raw_tally, "raw bwrap"),
    );
    let network = args.network;
    row(
        &format!("**amika: create + delete cycle**, {clients} clients, {network}"),
        Some(amika),
        &tally.cycles,
        tally.errors.values().map(|e| e.0).sum::<u64>().to_string(),
    );
    row(
        "of which create (POST until running)",
        None,
        &tally.create,
        errors(tally, "create"),
    );
    row(
        "of which delete (the answer)",
        None,
        &tally.delete,
        errors(tally, "delete"),
    );

    let create_p99 = (!tally.create.is_empty()).then(|| Summary::of(&tally.create).p99);
    report.note(format!(
        "{:.1} cycles/s — target ≥ 80 {}; create p99 {} — target < 250 ms {}; {:.2}× raw bwrap's cycles/s at the same concurrency; errors {} (target 0)",
        amika.per_sec,
        verdict(amika.per_sec >= 80.0),
        create_p99.map_or("-".into(), ms),
        verdict(create_p99.is_some_and(|p| p < Duration::from_millis(250))),
        amika.per_sec / raw.per_sec.max(1e-9),
        tally.errors.values().map(|e| e.0).sum::<u64>(),
    ));
    for (op, (n, first)) in raw_tally.errors.iter().chain(&tally.errors) {
        report.note(format!("{n} {op} errors, the first: {first}"));
    }
    report.note(format!(
        "backend {}; {clients} concurrent loops for {:.0} s after a {:.0} s warm-up, each: raw bwrap, then (second measurement) POST /sandboxes with 10 env secrets + a claude oauth + a codex api_key credential, network {network}, until running, then DELETE; a cycle counts when it began and ended in the window; CPU per cycle: this process's and its reaped children's CPU time (/proc/self/stat: the server, the clients, bwrap, the sandboxes' processes, slirp4netns) over the window divided by the cycles, then the whole machine's busy time (/proc/stat, other tenants included) likewise; server --warm-sandboxes {}",
        args.backend.name(),
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        args.warm_sandboxes,
    ));
    if let Some((headers, rows)) = spans {
        report.table(&headers, rows);
        report.note("the second table: the server's spans (amika's crates, debug level) that closed in the measured window (`--spans`), by name, the largest sum first");
    }
    report.finish(&args.common)
}
