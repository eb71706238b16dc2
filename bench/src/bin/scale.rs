//! Benchmark 4 (issue 8): 200 sandboxes running at once.
//!
//! For each network mode (`none`, then `egress`): create 200 sandboxes one after the other
//! (each with 10 env secrets and both agent credentials, create-to-ready = create + first exec
//! of `true`), let them go idle, then measure
//! - host memory per idle sandbox: RSS and PSS summed over every process the sandboxes consist of
//!   (bwrap, the init shell and its `sleep`, slirp4netns for egress) from
//!   `/proc/<pid>/smaps_rollup` — all of them descend from this process, which runs the server —
//!   and, for what the kernel spends besides (page tables, tmpfs, other kernel objects), what
//!   each sandbox's memory cgroup is charged (`MemAvailable` would be the whole host's, and other
//!   work on a shared machine drowns it);
//! - create-to-ready of the 200th against the first (and the first 10 against the last 10);
//! - `GET /sandboxes` latency with 200 listed.
//!
//! Then every sandbox is deleted. Target: under 4 MiB per idle sandbox.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use amika_bench::{
    create_to_ready, ms, ratio, seed_create_fixtures, verdict, Backend, CommonArgs, Report, Server,
    Summary,
};
use amika_types::{CreateSandboxRequest, NetworkMode};
use anyhow::ensure;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "200 sandboxes at once: memory per idle sandbox, create and list latency")]
struct Args {
    /// Sandboxes running at once.
    #[arg(long, default_value_t = 200)]
    sandboxes: usize,
    /// List requests timed with every sandbox up.
    #[arg(long, default_value_t = 200)]
    list_requests: usize,
    /// Network modes to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "none,egress")]
    modes: Vec<String>,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    #[command(flatten)]
    common: CommonArgs,
}

/// Memory of a set of processes, KiB.
#[derive(Debug, Default, Clone)]
struct Memory {
    processes: usize,
    rss_kib: u64,
    pss_kib: u64,
    /// Process count and PSS per command name.
    by_comm: BTreeMap<String, (usize, u64)>,
}

/// Every descendant of `root` (not `root` itself).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split at the last `)`.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            out.push(c);
            stack.push(c);
        }
    }
    out
}

fn memory_of(pids: &[u32]) -> Memory {
    let mut m = Memory::default();
    for pid in pids {
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        let field = |name: &str| {
            rollup.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        };
        let (Some(rss), Some(pss)) = (field("Rss"), field("Pss")) else {
            continue; // a kernel thread or a process that just exited
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        m.processes += 1;
        m.rss_kib += rss;
        m.pss_kib += pss;
        let e = m.by_comm.entry(comm).or_default();
        e.0 += 1;
        e.1 += pss;
    }
    m
}

/// Memory charged to the sandboxes' own memory cgroups (their processes, the tmpfs files and
/// the kernel objects they allocated; not slirp4netns, which runs outside), KiB. Read from the
/// cgroups each sandbox's `state.json` names.
fn cgroup_charge_kib(sandboxes_dir: &std::path::Path) -> (usize, u64) {
    let mut counted = 0;
    let mut total = 0;
    for entry in std::fs::read_dir(sandboxes_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(state) = std::fs::read(entry.path().join("state.json")) else {
            continue;
        };
        let Ok(state) = serde_json::from_slice::<serde_json::Value>(&state) else {
            continue;
        };
        for dir in state["cgroups"].as_array().into_iter().flatten() {
            let dir = std::path::Path::new(dir.as_str().unwrap_or_default());
            // cgroup v2: memory.current; v1: memory.usage_in_bytes (in the memory hierarchy).
            let bytes = ["memory.current", "memory.usage_in_bytes"]
                .iter()
                .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if let Some(b) = bytes {
                counted += 1;
                total += b / 1024;
            }
        }
    }
    (counted, total)
}

fn mib(kib: f64) -> String {
    format!("{:.2} MiB", kib / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Warm sandboxes off: the memory and process counts are then the sandboxes' alone (and
    // creates one right after the other would find the pool empty anyway).
    Server::start_with(args.backend, |c| c.warm_sandboxes = 0)
        .await?
        .run_then_stop(async |server| run(server, &args).await)
        .await
}

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let n = args.common.count(args.sandboxes, 3);
    let list_requests = args.common.count(args.list_requests, 5);
    let template = seed_create_fixtures(&server.client, 10).await?;
    let mut report = Report::new(
        "scale",
        args.backend == Backend::Postgres,
        &["network", "measurement", "value", "target"],
    );
    for mode in &args.modes {
        let network: NetworkMode = mode.parse().map_err(anyhow::Error::msg)?;
        let measured = measure_mode(server, &template, mode, network, n, list_requests).await?;
        report_mode(&mut report, mode, n, &measured);
    }
    report.note(format!(
        "backend {}; {n} sandboxes per mode, created one after the other, each with 10 env secrets and both agent credentials and its default limits (2048 MiB, 1024 pids); memory read 2 s after the last create; server --warm-sandboxes 0",
        args.backend.name()
    ));
    report.finish(&args.common)
}

/// What one network mode measured.
struct ModeMeasurement {
    /// Create-to-ready of each sandbox, in the order they were created.
    timings: Vec<Duration>,
    /// The sandboxes' processes, idle.
    mem: Memory,
    /// How many memory cgroups were read, and what they are charged in all, KiB.
    cgroups: usize,
    charged_kib: u64,
    /// `GET /sandboxes` with every sandbox up.
    list: Summary,
    /// Deleting them all, one after the other.
    delete_all: Duration,
}

/// Create `n` sandboxes in `network`, let them go idle, read their memory, time the list, and
/// delete them all.
async fn measure_mode(
    server: &Server,
    template: &CreateSandboxRequest,
    mode: &str,
    network: NetworkMode,
    n: usize,
    list_requests: usize,
) -> anyhow::Result<ModeMeasurement> {
    let me = std::process::id();
    no_processes_left(me).await?;
    let mut timings = Vec::with_capacity(n);
    for i in 0..n {
        let t = create_to_ready(&server.client, template, &sandbox_name(mode, i), network).await?;
        timings.push(t.total());
        if (i + 1).is_multiple_of(50) {
            eprintln!("{mode}: {} sandboxes running", i + 1);
        }
    }
    // Idle: the creates' transient processes (execs) are gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mem = memory_of(&descendants(me));
    let (cgroups, charged_kib) = cgroup_charge_kib(&server.data_dir().join("sandboxes"));
    let list = time_list(server, n, list_requests).await?;

    let t = Instant::now();
    for i in 0..n {
        server.client.delete_sandbox(&sandbox_name(mode, i)).await?;
    }
    Ok(ModeMeasurement {
        timings,
        mem,
        cgroups,
        charged_kib,
        list,
        delete_all: t.elapsed(),
    })
}

/// Waits (up to 10 s) until `me` has no descendants: a delete answers once the sandbox's init
/// is killed and tears the rest down in the background, so the previous mode's processes may
/// still be exiting.
async fn no_processes_left(me: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = descendants(me);
        if left.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "processes are left over from before, 10 s after their sandboxes were deleted: {:?}",
            left.iter()
                .map(|pid| {
                    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"));
                    format!("{pid} {}", comm.as_deref().unwrap_or("(gone)").trim())
                })
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `i`th sandbox of a mode's run.
fn sandbox_name(mode: &str, i: usize) -> String {
    format!("scale-{mode}-{i:03}")
}

/// `requests` timed `GET /sandboxes`, each of which must list all `n` sandboxes.
async fn time_list(server: &Server, n: usize, requests: usize) -> anyhow::Result<Summary> {
    let mut list = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let all = server.client.list_sandboxes().await?;
        list.push(t.elapsed());
        ensure!(
            all.len() == n,
            "list shows {} sandboxes, expected {n}",
            all.len()
        );
    }
    Ok(Summary::of(&list))
}

/// The rows of one network mode: memory per idle sandbox, create-to-ready first against last,
/// list latency, delete.
fn report_mode(report: &mut Report, mode: &str, n: usize, m: &ModeMeasurement) {
    let (mem, timings) = (&m.mem, &m.timings);
    let pss = mem.pss_kib as f64 / n as f64;
    let rss = mem.rss_kib as f64 / n as f64;
    let charged = m.charged_kib as f64 / n as f64;
    let k = (n / 20).max(1);
    let first_k = Summary::of(&timings[..k]);
    let last_k = Summary::of(&timings[n - k..]);
    let mut row = |what: String, value: String, target: String| {
        report.row(vec![mode.to_string(), what, value, target]);
    };
    row(
        format!(
            "PSS per idle sandbox ({} processes for {n} sandboxes)",
            mem.processes
        ),
        mib(pss),
        format!("< 4 MiB {}", verdict(pss < 4.0 * 1024.0)),
    );
    row(
        "RSS per idle sandbox (shared pages counted in full)".into(),
        mib(rss),
        String::new(),
    );
    row(
        format!(
            "memory cgroup charge per sandbox (processes, tmpfs, kernel objects; {} cgroups)",
            m.cgroups
        ),
        mib(charged),
        String::new(),
    );
    let comms: Vec<String> = mem
        .by_comm
        .iter()
        .map(|(c, (count, pss))| format!("{c} ×{count}: {}", mib(*pss as f64 / n as f64)))
        .collect();
    row(
        "PSS per sandbox by process".into(),
        comms.join("; "),
        String::new(),
    );
    row(
        "create-to-ready: 1st → last".into(),
        format!(
            "{} → {} ({:.2}×)",
            ms(timings[0]),
            ms(timings[n - 1]),
            ratio(timings[n - 1], timings[0])
        ),
        String::new(),
    );
    row(
        format!("create-to-ready p50: first {k} → last {k}"),
        format!(
            "{} → {} ({:.2}×)",
            ms(first_k.p50),
            ms(last_k.p50),
            ratio(last_k.p50, first_k.p50)
        ),
        String::new(),
    );
    let list = &m.list;
    row(
        format!(
            "`GET /sandboxes` with {n} listed, p50 / p95 / p99 (n={})",
            list.n
        ),
        format!("{} / {} / {}", ms(list.p50), ms(list.p95), ms(list.p99)),
        String::new(),
    );
    row(
        format!("delete all {n} (sequential)"),
        format!(
            "{} ({} each)",
            ms(m.delete_all),
            ms(m.delete_all / n as u32)
        ),
        String::new(),
    );
}
