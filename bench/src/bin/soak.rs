//! Soak test (issue 18): a running server under load while one sandbox attacks the host.
//!
//! For `--duration` (default 10 minutes), on one real server on 127.0.0.1 in a child process of
//! its own (`amika_bench::served`: what it holds is measured apart from the clients):
//! - `--clients` (200) API clients, each with its own connection pool, read in a loop:
//!   `GET /sandboxes`, `GET /sandboxes/{id}` (an idle fixture sandbox), `GET /secrets`,
//!   `GET /audit-events?limit=50`, with `--think-ms` between requests;
//! - `--loops` (20) loops that each create a sandbox (10 env secrets, both agent credentials),
//!   wait until it is `running`, exec `echo` in it and delete it, again and again;
//! - one hostile sandbox (`--hostile-memory-mib`, `--hostile-pids`) that exhausts each resource
//!   in turn, `--phase-secs` each: processes to its pids limit, memory to its memory limit
//!   (again and again), open files to its `RLIMIT_NOFILE` in many processes, its tmpfs `/tmp`,
//!   a CPU spinner on every core, and `--hostile-disk-mib` written to its home.
//!
//! It counts every error (a non-2xx answer, a transport failure, an unexpected answer) by
//! operation with its first message (target 0: the run exits non-zero when any is counted),
//! reports p50/p99 per operation, and the memory (RSS) and open file descriptors of the server's
//! process before the load, at their peak and after it
//! (target: flat), with the host's open-file count (`/proc/sys/fs/file-nr`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amika_bench::served::{self, Served};
use amika_bench::{
    describe, ms, parse_duration, seed_create_fixtures, Backend, CommonArgs, Report, Summary,
};
use amika_client::{Client, ClientError};
use amika_types::{CreateSandboxRequest, ExecFrame, ExecRequest, SandboxState};
use anyhow::bail;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "soak: 200 API clients, 20 create/exec/delete loops and one hostile sandbox")]
struct Args {
    /// How long the load runs: `600`, `90s`, `10m`, `1h`, `2m30s`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent API clients reading.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Concurrent create/exec/delete loops.
    #[arg(long, default_value_t = 20)]
    loops: usize,
    /// Pause of each reading client between two requests, ms.
    #[arg(long, default_value_t = 20)]
    think_ms: u64,
    /// Seconds each of the hostile sandbox's attacks lasts.
    #[arg(long, default_value_t = 20)]
    phase_secs: u64,
    /// The hostile sandbox's memory limit, MiB.
    #[arg(long, default_value_t = 256)]
    hostile_memory_mib: u64,
    /// The hostile sandbox's process limit.
    #[arg(long, default_value_t = 128)]
    hostile_pids: u64,
    /// MiB the hostile sandbox writes to its home in the disk phase (bounded: the host's disk is
    /// shared, and no per-sandbox disk quota exists yet to stop it).
    #[arg(long, default_value_t = 1024)]
    hostile_disk_mib: u64,
    /// Leave each attack's files (a full `/tmp`, the home file) in place instead of removing
    /// them after it: the hostile sandbox then stays at its memory limit.
    #[arg(long)]
    keep_leftovers: bool,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Be the server of another run of this benchmark (see `amika_bench::served`).
    #[arg(long = "serve-only", hide = true)]
    serve_only: bool,
    #[command(flatten)]
    common: CommonArgs,
}

// ---------------------------------------------------------------------------------- counting

/// What one operation saw.
#[derive(Debug, Default)]
struct OpStats {
    /// Latency of every successful call.
    samples: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// Every operation's counts, shared by all tasks.
#[derive(Debug, Default, Clone)]
struct Stats(Arc<Mutex<BTreeMap<String, OpStats>>>);

impl Stats {
    fn record(&self, op: &str, took: Duration, result: Result<(), String>) {
        let mut all = self.0.lock().expect("stats lock");
        let s = all.entry(op.to_string()).or_default();
        match result {
            Ok(()) => s.samples.push(took),
            Err(message) => {
                s.errors += 1;
                if s.first_error.is_none() {
                    eprintln!("soak: {op} failed: {message}");
                    s.first_error = Some(message);
                }
            }
        }
    }

    /// Time `f` and record it under `op`.
    async fn timed<T>(
        &self,
        op: &str,
        f: impl std::future::Future<Output = Result<T, String>>,
    ) -> Option<T> {
        let t = Instant::now();
        match f.await {
            Ok(v) => {
                self.record(op, t.elapsed(), Ok(()));
                Some(v)
            }
            Err(e) => {
                self.record(op, t.elapsed(), Err(e));
                None
            }
        }
    }

    fn total_errors(&self) -> u64 {
        self.0
            .lock()
            .expect("stats lock")
            .values()
            .map(|s| s.errors)
            .sum()
    }
}

// ---------------------------------------------------------------------------------- resources

/// RSS, open descriptors and threads of process `pid` (the server), and the host's allocated
/// file handles.
#[derive(Debug, Clone, Copy, Default)]
struct Resources {
    rss_kib: u64,
    fds: u64,
    threads: u64,
    host_files: u64,
}

impl Resources {
    fn of(pid: u32) -> Resources {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .trim_start_matches(':')
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
        let host_files = std::fs::read_to_string("/proc/sys/fs/file-nr")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        Resources {
            rss_kib: field("VmRSS").unwrap_or(0),
            fds,
            threads: field("Threads").unwrap_or(0),
            host_files,
        }
    }

    fn max(self, o: Resources) -> Resources {
        Resources {
            rss_kib: self.rss_kib.max(o.rss_kib),
            fds: self.fds.max(o.fds),
            threads: self.threads.max(o.threads),
            host_files: self.host_files.max(o.host_files),
        }
    }
}

// ---------------------------------------------------------------------------------- the load

/// Where the server is, for tasks of their own (each makes its own client).
#[derive(Debug, Clone)]
struct Conn {
    url: String,
    key: String,
}

impl Conn {
    fn client(&self) -> Client {
        Client::new(self.url.clone(), Some(self.key.clone()))
    }
}

/// One reading client until `deadline`: the four reads in turn.
async fn reader(
    conn: Conn,
    i: usize,
    fixture: String,
    stats: Stats,
    deadline: Instant,
    think: Duration,
) {
    let client = conn.client();
    let c = &client;
    let mut k = i;
    while Instant::now() < deadline {
        let _ = match k % 4 {
            0 => {
                let f = async { c.list_sandboxes().await.map(drop) };
                stats.timed("GET /sandboxes", api(f)).await
            }
            1 => {
                let f = async { c.get_sandbox(&fixture).await.map(drop) };
                stats.timed("GET /sandboxes/{id}", api(f)).await
            }
            2 => {
                let f = async { c.list_secrets().await.map(drop) };
                stats.timed("GET /secrets", api(f)).await
            }
            _ => {
                let f = async { c.list_audit_events(Some(50)).await.map(drop) };
                stats.timed("GET /audit-events?limit=50", api(f)).await
            }
        };
        k += 1;
        tokio::time::sleep(think).await;
    }
}

/// A client call with its error described.
async fn api<T>(f: impl std::future::Future<Output = Result<T, ClientError>>) -> Result<T, String> {
    f.await.map_err(|e| describe(&e))
}

/// Run `command` in `sandbox` to its end: (exit code, stdout+stderr), or the error frame's
/// message as `Err(Ok(..))`; a failed request is `Err(Err(..))`.
async fn run_exec(
    client: &Client,
    sandbox: &str,
    command: Vec<String>,
    timeout_secs: u64,
) -> Result<(i32, String), Result<String, String>> {
    let req = ExecRequest {
        command,
        cwd: None,
        timeout_secs: Some(timeout_secs),
    };
    let mut stream = client
        .exec(sandbox, &req)
        .await
        .map_err(|e| Err(describe(&e)))?;
    let mut out = String::new();
    while let Some(frame) = stream.next_frame().await {
        match frame.map_err(|e| Err(describe(&e)))? {
            ExecFrame::Stdout { data } | ExecFrame::Stderr { data } => out.push_str(&data),
            ExecFrame::Exit { code } => return Ok((code, out)),
            ExecFrame::Error { message } => return Err(Ok(message)),
        }
    }
    Err(Err("the exec stream ended without an exit frame".into()))
}

/// Create `name` from `template` and wait until it is running; its id.
async fn create_running(
    client: &Client,
    template: &CreateSandboxRequest,
    name: &str,
) -> Result<String, String> {
    let mut req = template.clone();
    req.name = name.to_string();
    let sb = amika_bench::create_running(client, &req, Duration::from_millis(20)).await?;
    Ok(sb.id)
}

/// One create/exec/delete loop until `deadline`.
async fn lifecycle_loop(
    conn: Conn,
    j: usize,
    template: CreateSandboxRequest,
    stats: Stats,
    deadline: Instant,
) {
    let client = conn.client();
    let mut n = 0;
    while Instant::now() < deadline {
        let name = format!("soak-loop-{j}-{n}");
        n += 1;
        let created = stats
            .timed(
                "create to running",
                create_running(&client, &template, &name),
            )
            .await;
        if let Some(id) = &created {
            let echo = vec!["echo".to_string(), format!("soak {name}")];
            stats
                .timed("exec echo", async {
                    match run_exec(&client, id, echo, 30).await {
                        Ok((0, out)) if out.trim() == format!("soak {name}") => Ok(()),
                        Ok((code, out)) => Err(format!("echo exited {code}, printed {out:?}")),
                        Err(Ok(m)) => Err(format!("error frame: {m}")),
                        Err(Err(m)) => Err(m),
                    }
                })
                .await;
        }
        if created.is_some() {
            let f = client.delete_sandbox(&name);
            stats.timed("DELETE /sandboxes/{id}", api(f)).await;
        } else {
            // After a failed create (counted): remove what may be left, quietly, and breathe.
            let _ = client.delete_sandbox(&name).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

// ---------------------------------------------------------------------------------- the attack

/// The hostile sandbox's attacks: (name, bash script). `$1` is the phase's seconds, `$2` the
/// MiB written to home. Each ends by itself within about `$1` seconds and prints what it reached.
const ATTACKS: &[(&str, &str)] = &[
    (
        "processes to the pids limit",
        // Forks until fork fails; the count comes from a glob and the children end by `kill 0`
        // (builtins: no fork needed, `kill $(jobs -p)` would need one and leave them running).
        r#"end=$((SECONDS+$1)); n=0
while [ $SECONDS -lt $end ]; do sleep "$1" 2>/dev/null & n=$((n+1)); done 2>/dev/null
p=(/proc/[0-9]*); echo "forks tried: $n; processes at once: ${#p[@]}"
trap '' TERM; kill 0; wait 2>/dev/null; true"#,
    ),
    (
        "memory to the memory limit",
        // `tail` keeps a line without newlines whole: it grows until the OOM killer ends it.
        r#"end=$((SECONDS+$1)); n=0
while [ $SECONDS -lt $end ]; do head -c 8G /dev/zero | tail >/dev/null; n=$((n+1)); done 2>/dev/null
echo "memory hogs ended (OOM-killed): $n""#,
    ),
    (
        "open files to RLIMIT_NOFILE, in 32 processes",
        r#"ulimit -Sn "$(ulimit -Hn)"
for i in $(seq 1 32); do
  bash -c 'n=0; while { exec {fd}</dev/null; } 2>/dev/null; do n=$((n+1)); done; echo $n; sleep "$1"' fill "$1" &
done > /tmp/soak-nofile; wait
echo "hard NOFILE $(ulimit -Hn); files held by 32 processes: $(awk '{s+=$1} END {print s}' /tmp/soak-nofile)""#,
    ),
    (
        "tmpfs /tmp filled",
        r#"dd if=/dev/zero of=/tmp/soak-fill bs=1M count=65536 2>&1 | tail -1
df -m /tmp | tail -1; sleep "$1"; rm -f /tmp/soak-fill"#,
    ),
    (
        "a CPU spinner on every core",
        r#"for i in $(seq 1 "$(nproc)"); do timeout "$1" bash -c 'while :; do :; done' & done
wait; echo "spun on $(nproc) cores for $1 s""#,
    ),
    (
        "disk writes in home",
        r#"dd if=/dev/zero of="$HOME/soak-fill" bs=1M count="$2" conv=fsync 2>&1 | tail -1
rm -f "$HOME/soak-fill""#,
    ),
];

/// The hostile sandbox's limits and the length of each attack.
#[derive(Debug, Clone, Copy)]
struct HostileLimits {
    memory_mib: u64,
    pids: u64,
    disk_mib: u64,
    phase_secs: u64,
    keep_leftovers: bool,
}

/// What one attack did, as the report shows it.
#[derive(Debug, Default)]
struct AttackOutcome {
    runs: u64,
    last: String,
}

/// The hostile sandbox's attacks in turn until `deadline`; after each, `exec true` in it must
/// still work (an error when it does not). Request failures of the attacks count as errors; an
/// attack's own exit code does not (being killed is what a limit does).
async fn hostile(
    conn: Conn,
    limits: HostileLimits,
    stats: Stats,
    deadline: Instant,
) -> Result<BTreeMap<&'static str, AttackOutcome>, String> {
    let client = conn.client();
    let phase_secs = limits.phase_secs;
    let req = CreateSandboxRequest {
        name: "soak-hostile".into(),
        memory_mib: Some(limits.memory_mib),
        pids: Some(limits.pids),
        ..Default::default()
    };
    let id = create_running(&client, &req, "soak-hostile").await?;
    let mut outcomes: BTreeMap<&'static str, AttackOutcome> = BTreeMap::new();
    for (name, script) in ATTACKS.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let command = vec![
            "bash".to_string(),
            "-c".to_string(),
            script.to_string(),
            "hostile".to_string(),
            phase_secs.to_string(),
            limits.disk_mib.to_string(),
        ];
        let op = format!("hostile exec: {name}");
        let result = stats
            .timed(&op, async {
                match run_exec(&client, &id, command, phase_secs * 3 + 60).await {
                    Ok((code, out)) => Ok(format!("exit {code}: {}", last_line(&out))),
                    Err(Ok(message)) => Ok(format!("error frame: {message}")),
                    Err(Err(m)) => Err(m),
                }
            })
            .await;
        let o = outcomes.entry(name).or_default();
        o.runs += 1;
        if let Some(r) = result {
            o.last = r;
        }
        // The attack's leftovers go: its processes (an attack cut short by a limit can leave
        // children that hold the pids limit, and then every exec is rightly refused with 409
        // until they end) by a stop and a start, as the 409's message tells a user to do —
        // which also empties the tmpfs `/tmp` — and its files in home by the clean-up command,
        // which shows that the sandbox still runs a command.
        if !limits.keep_leftovers {
            stats
                .timed(
                    "hostile: stop and start after an attack",
                    restart(&client, &id),
                )
                .await;
        }
        let cleanup = vec![
            "bash".to_string(),
            "-c".to_string(),
            if limits.keep_leftovers {
                "true".to_string()
            } else {
                r#"rm -f /tmp/soak-fill /tmp/soak-nofile "$HOME/soak-fill""#.to_string()
            },
        ];
        stats
            .timed("hostile: clean up after an attack", async {
                match run_exec(&client, &id, cleanup, 30).await {
                    Ok((0, _)) => Ok(()),
                    Ok((code, out)) => {
                        Err(format!("the clean-up exited {code}: {}", last_line(&out)))
                    }
                    Err(Ok(m)) => Err(format!("error frame: {m}")),
                    Err(Err(m)) => Err(m),
                }
            })
            .await;
    }
    let f = client.delete_sandbox(&id);
    stats.timed("hostile: DELETE /sandboxes/{id}", api(f)).await;
    Ok(outcomes)
}

/// Stop the sandbox and start it again, until it runs.
async fn restart(client: &Client, id: &str) -> Result<(), String> {
    client.stop_sandbox(id).await.map_err(|e| describe(&e))?;
    client.start_sandbox(id).await.map_err(|e| describe(&e))?;
    let sb = client
        .wait_for_sandbox(
            id,
            &[SandboxState::Running],
            Duration::from_millis(20),
            Duration::from_secs(120),
        )
        .await
        .map_err(|e| describe(&e))?;
    match sb.state {
        SandboxState::Running => Ok(()),
        state => Err(format!("the hostile sandbox is {state} after a restart")),
    }
}

fn last_line(out: &str) -> String {
    let line = out.trim().lines().last().unwrap_or("").trim();
    line.chars().take(160).collect::<String>().replace('|', "/")
}

// ---------------------------------------------------------------------------------- the run

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The server's warnings and errors, to stderr: what an error's trace id points at.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    if args.serve_only {
        return served::serve(args.backend).await;
    }
    let mut server = Served::spawn(&["--backend", args.backend.name()]).await?;
    let result = run(&mut server, &args).await;
    server.stop().await?;
    result
}

/// The counts of this run, `--smoke` making them tiny.
fn sizes(args: &Args) -> (Duration, usize, usize, u64) {
    if args.common.smoke {
        (
            args.duration.min(Duration::from_secs(10)),
            args.clients.min(10),
            args.loops.min(2),
            args.phase_secs.min(1),
        )
    } else {
        (args.duration, args.clients, args.loops, args.phase_secs)
    }
}

async fn run(server: &mut Served, args: &Args) -> anyhow::Result<()> {
    let (duration, clients, loops, phase_secs) = sizes(args);
    let template = seed_create_fixtures(&server.client, 10).await?;
    let conn = Conn {
        url: server.url.clone(),
        key: server.admin_key.clone(),
    };
    let fixture = create_running(&server.client, &template, "soak-fixture")
        .await
        .map_err(anyhow::Error::msg)?;
    server.settle().await?;
    let start = Resources::of(server.pid);
    let stats = Stats::default();
    let began = Instant::now();
    let deadline = began + duration;
    let think = Duration::from_millis(args.think_ms);
    let limits = HostileLimits {
        memory_mib: args.hostile_memory_mib,
        pids: args.hostile_pids,
        disk_mib: args.hostile_disk_mib,
        phase_secs,
        keep_leftovers: args.keep_leftovers,
    };
    let attack = tokio::spawn(hostile(conn.clone(), limits, stats.clone(), deadline));
    let mut tasks = Vec::new();
    for j in 0..loops {
        let t = lifecycle_loop(conn.clone(), j, template.clone(), stats.clone(), deadline);
        tasks.push(tokio::spawn(t));
    }
    for i in 0..clients {
        let r = reader(
            conn.clone(),
            i,
            fixture.clone(),
            stats.clone(),
            deadline,
            think,
        );
        tasks.push(tokio::spawn(r));
    }
    let peak = watch(server.pid, &tasks, &attack, &stats, began, start).await;
    let ran = began.elapsed();
    for t in tasks {
        t.await?;
    }
    let outcomes = match attack.await? {
        Ok(o) => o,
        Err(e) => {
            stats.record("hostile: create", Duration::ZERO, Err(e));
            BTreeMap::new()
        }
    };
    // Let the deletes' background work and the connections' ends land.
    server.settle().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end = Resources::of(server.pid);
    let errors = stats.total_errors();
    let mut report = Report::new(
        "soak",
        args.backend == Backend::Postgres,
        &[
            "operation",
            "n",
            "errors",
            "p50",
            "p99",
            "max",
            "first error",
        ],
    );
    fill_report(&mut report, &stats, &outcomes, [start, peak, end]);
    report.note(format!(
        "backend {}; ran {:.0} s: {clients} reading clients ({} ms think time), {loops} create/exec/delete loops, one hostile sandbox ({} MiB, {} pids, {phase_secs} s per attack, {} MiB written to home); errors: {errors} (target 0)",
        args.backend.name(),
        ran.as_secs_f64(),
        args.think_ms,
        args.hostile_memory_mib,
        args.hostile_pids,
        args.hostile_disk_mib,
    ));
    report.note("RSS, fds and threads are the server's: it runs in a child process of its own (the clients run in the benchmark's process); `start` is after setup, before the load, `end` 3 s after it stopped");
    report.finish(&args.common)?;
    if errors > 0 {
        bail!("{errors} errors counted (target 0): see the table");
    }
    Ok(())
}

/// Until every task has ended: the peak of the server's resources, and a line on stderr
/// every 30 s.
async fn watch<T, U>(
    server: u32,
    tasks: &[tokio::task::JoinHandle<T>],
    attack: &tokio::task::JoinHandle<U>,
    stats: &Stats,
    began: Instant,
    start: Resources,
) -> Resources {
    let mut peak = start;
    let mut last_print = Instant::now();
    while tasks.iter().any(|t| !t.is_finished()) || !attack.is_finished() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = Resources::of(server);
        peak = peak.max(now);
        if last_print.elapsed() >= Duration::from_secs(30) {
            last_print = Instant::now();
            eprintln!(
                "soak: {:.0} s, {} errors, RSS {:.1} MiB, {} fds",
                began.elapsed().as_secs_f64(),
                stats.total_errors(),
                now.rss_kib as f64 / 1024.0,
                now.fds
            );
        }
    }
    peak
}

/// The operations' rows, the resources' table and the attacks' outcomes.
fn fill_report(
    report: &mut Report,
    stats: &Stats,
    outcomes: &BTreeMap<&'static str, AttackOutcome>,
    [start, peak, end]: [Resources; 3],
) {
    for (op, s) in stats.0.lock().expect("stats lock").iter() {
        let (p50, p99, max) = if s.samples.is_empty() {
            ("-".into(), "-".into(), "-".into())
        } else {
            let sum = Summary::of(&s.samples);
            (ms(sum.p50), ms(sum.p99), ms(sum.max))
        };
        let first = s.first_error.as_deref().unwrap_or("").replace('|', "/");
        report.row(vec![
            op.clone(),
            (s.samples.len() as u64 + s.errors).to_string(),
            s.errors.to_string(),
            p50,
            p99,
            max,
            first.chars().take(200).collect(),
        ]);
    }
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    let row = |what: &str, f: &dyn Fn(Resources) -> String| {
        vec![what.to_string(), f(start), f(peak), f(end)]
    };
    report.table(
        &["server process", "start", "peak", "end"],
        vec![
            row("RSS", &|r| mib(r.rss_kib)),
            row("open file descriptors", &|r| r.fds.to_string()),
            row("threads", &|r| r.threads.to_string()),
            row("host: allocated file handles (fs/file-nr)", &|r| {
                r.host_files.to_string()
            }),
        ],
    );
    report.table(
        &["hostile attack", "runs", "last outcome"],
        outcomes
            .iter()
            .map(|(name, o)| vec![name.to_string(), o.runs.to_string(), o.last.clone()])
            .collect(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_operation_with_the_first_message() {
        let stats = Stats::default();
        stats.record("a", Duration::from_millis(1), Ok(()));
        stats.record("a", Duration::ZERO, Err("first".into()));
        stats.record("a", Duration::ZERO, Err("second".into()));
        stats.record("b", Duration::from_millis(2), Ok(()));
        assert_eq!(stats.total_errors(), 2);
        let all = stats.0.lock().unwrap();
        assert_eq!(all["a"].first_error.as_deref(), Some("first"));
        assert_eq!((all["a"].samples.len(), all["b"].errors), (1, 0));
    }
}
