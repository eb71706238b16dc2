//! What every amika benchmark shares: a real server on 127.0.0.1 (SQLite or a fresh PostgreSQL
//! database), the fixtures of a realistic create (10 env secrets, a Claude OAuth credential and
//! a Codex API key), percentiles, and the record each run appends to `bench/RESULTS.md` (machine,
//! commit, date, the exact command).
//!
//! The server runs in the benchmark's own process through `amika_testkit`'s server
//! (`amika_server::open` + `launch` — the code `amika server` runs, without the CLI around it),
//! so one build gives the server, the client and the baseline, and nothing else on the machine
//! is measured by mistake.
//! Benchmarks are programs, never timed tests; `--smoke` runs each with tiny counts for CI
//! (`bench/smoke.sh`) and appends nothing.

pub mod spans;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amika_client::{Client, ClientError};
use amika_types::{
    AgentCredentialRef, AgentKind, CreateCredentialRequest, CreateSandboxRequest,
    CreateSecretRequest, CredentialType, ExecFrame, ExecRequest, NetworkMode, Sandbox,
    SandboxState,
};
use anyhow::{bail, Context};
use rand::distributions::{Alphanumeric, DistString};

pub mod served;

/// The environment variable that turns the server's benchmark-only routes on
/// (`GET /bench/constant`, see `amika_server::http::bench`; compiled in by the `bench` feature
/// of amika-server, which this crate enables).
pub use amika_server::http::bench::BENCH_ROUTES_ENV;

/// Which database the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The embedded default: a SQLite file in a fresh data dir.
    Sqlite,
    /// A fresh database on the cluster named by `AMIKA_TEST_DATABASE_URL`
    /// (run under `scripts/with-postgres.sh`), dropped at the end.
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Options every benchmark takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Tiny counts, for CI: prove the benchmark still runs and prints numbers; append nothing.
    #[arg(long)]
    pub smoke: bool,
    /// Print the results without appending them to bench/RESULTS.md.
    #[arg(long)]
    pub no_record: bool,
}

impl CommonArgs {
    /// Whether this run appends to RESULTS.md.
    pub fn records(&self) -> bool {
        !self.smoke && !self.no_record
    }

    /// `full` normally, `smoke` under `--smoke`.
    pub fn count(&self, full: usize, smoke: usize) -> usize {
        if self.smoke {
            smoke
        } else {
            full
        }
    }
}

/// A `--duration`: `600` (seconds), `90s`, `10m`, `1h` or a sum of them (`2m30s`); more than 0.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration: write e.g. `600`, `90s`, `10m` or `2m30s`");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = s.parse::<u64>() {
        return if n == 0 {
            Err("the duration must be more than 0".into())
        } else {
            Ok(Duration::from_secs(n))
        };
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    if total == 0 {
        return Err("the duration must be more than 0".into());
    }
    Ok(Duration::from_secs(total))
}

// ---------------------------------------------------------------------------------- statistics

/// Percentiles of a set of timings (nearest rank).
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub min: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        let mut s = samples.to_vec();
        s.sort();
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Summary {
            n: s.len(),
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            min: s[0],
            max: s[s.len() - 1],
            mean: s.iter().sum::<Duration>() / s.len() as u32,
        }
    }

    /// The table cells `n | p50 | p95 | p99` in milliseconds.
    pub fn ms_cells(&self) -> Vec<String> {
        vec![self.n.to_string(), ms(self.p50), ms(self.p95), ms(self.p99)]
    }

    /// The table cells `n | p50 | p95 | p99` in microseconds.
    pub fn us_cells(&self) -> Vec<String> {
        vec![self.n.to_string(), us(self.p50), us(self.p95), us(self.p99)]
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// `a / b` as `"1.83×"`.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// `met` / `MISSED` for a target.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// Time an async step.
pub async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

// ---------------------------------------------------------------------------------- the record

/// The repository root (bench/ is one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// `nproc`, memory and kernel of this machine, in one line.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib = meminfo("MemTotal").unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "nproc {cpus} ({model}), {:.1} GiB RAM, Linux {kernel}",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

/// A field of `/proc/meminfo`, in KiB.
pub fn meminfo(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
}

/// `git rev-parse --short HEAD`, with `-dirty` when tracked files differ from it.
pub fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(repo_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if s.is_empty() => head,
        _ => format!("{head}-dirty"),
    }
}

/// The command that reproduces this run: `cargo run --release -p amika-bench --bin NAME -- ARGS`
/// (without `--release` from a debug build; under `scripts/with-postgres.sh` when PostgreSQL is
/// involved).
pub fn command_line(bin: &str, uses_postgres: bool) -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| shell_word(&a)).collect();
    let mut cmd = String::new();
    if uses_postgres {
        cmd.push_str("scripts/with-postgres.sh ");
    }
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    let _ = write!(cmd, "cargo run{profile} -p amika-bench --bin {bin}");
    if !args.is_empty() {
        let _ = write!(cmd, " -- {}", args.join(" "));
    }
    cmd
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What one run found: a table of measurements and a few lines of verdicts.
#[derive(Debug)]
pub struct Report {
    pub bench: String,
    pub command: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Further tables (headers, rows), printed after the main one.
    pub tables: Vec<(Vec<String>, Vec<Vec<String>>)>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(bench: &str, uses_postgres: bool, headers: &[&str]) -> Report {
        Report {
            bench: bench.to_string(),
            command: command_line(bench, uses_postgres),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            tables: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "row width");
        self.rows.push(cells);
    }

    /// A further table, printed after the main one.
    pub fn table(&mut self, headers: &[&str], rows: Vec<Vec<String>>) {
        for row in &rows {
            assert_eq!(row.len(), headers.len(), "row width");
        }
        let headers = headers.iter().map(|h| h.to_string()).collect();
        self.tables.push((headers, rows));
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// The run as Markdown: a heading, the machine, commit, date and command, the table, the notes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
        let built = env!("AMIKA_BENCH_BUILT_FROM");
        let head = commit();
        let commit = if head == built {
            built.to_string()
        } else {
            format!("built from {built} (HEAD now {head})")
        };
        let _ = writeln!(out, "### {} — {date} — {commit}\n", self.bench);
        let _ = writeln!(out, "- machine: {}", machine());
        let _ = writeln!(out, "- command: `{}`\n", self.command);
        write_table(&mut out, &self.headers, &self.rows);
        for (headers, rows) in &self.tables {
            out.push('\n');
            write_table(&mut out, headers, rows);
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    /// Print the run, and append it to `bench/RESULTS.md` unless told not to.
    pub fn finish(&self, args: &CommonArgs) -> anyhow::Result<()> {
        let md = self.markdown();
        println!("\n{md}");
        if args.records() {
            use std::io::Write;
            let path = repo_root().join("bench/RESULTS.md");
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .with_context(|| format!("open {}", path.display()))?;
            writeln!(f, "\n{md}")?;
            println!("appended to {}", path.display());
        } else {
            println!("(not recorded: --smoke or --no-record)");
        }
        Ok(())
    }
}

/// A Markdown table.
fn write_table(out: &mut String, headers: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        headers.iter().map(|_| "---|").collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

// ---------------------------------------------------------------------------------- the server

/// A real amika server on 127.0.0.1:0, in this process (`amika_testkit`'s server, with the
/// `bench` feature of amika-server on).
#[derive(Debug)]
pub struct Server {
    pub url: String,
    pub admin_key: String,
    /// The server's service layer, for setting up fixtures fast and for in-process benchmarks.
    pub service: amika_server::Service,
    pub client: Client,
    pub backend: Backend,
    running: amika_testkit::RunningServer,
    pg: Option<amika_testkit::FreshDatabase>,
}

impl Server {
    pub async fn start(backend: Backend) -> anyhow::Result<Server> {
        Self::start_with(backend, |_| {}).await
    }

    /// [`Server::start`] with the default config changed by `configure`.
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(&mut amika_server::ServerConfig) + Send,
    ) -> anyhow::Result<Server> {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let cluster = std::env::var(amika_testkit::postgres::DATABASE_URL_ENV).context(
                    "--backend postgres needs AMIKA_TEST_DATABASE_URL: run under scripts/with-postgres.sh",
                )?;
                Some(amika_testkit::FreshDatabase::create_on(
                    &cluster,
                    "amika_bench",
                )?)
            }
        };
        let running = amika_testkit::ServerBuilder::new()
            .dir_prefix("amika-bench.")
            .database_url(pg.as_ref().map(|db| db.url().to_string()))
            .configure(configure)
            .open()
            .await?
            .serve()
            .await?;
        let url = running.url.clone();
        let admin_key = running.admin_key().to_string();
        let client = Client::new(url.clone(), Some(admin_key.clone()));
        client.health().await?;
        Ok(Server {
            url,
            admin_key,
            service: running.service().clone(),
            client,
            backend,
            running,
            pg,
        })
    }

    /// The server's data dir (`sandboxes/` holds the sandbox homes).
    pub fn data_dir(&self) -> &Path {
        self.running.server.data_dir()
    }

    /// Wait (up to 5 s) until the server's background work — warm sandboxes being started
    /// after a create — is done, so that it lands in no measurement.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.service.is_settled() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The authenticated admin, for calls into the service layer.
    pub async fn caller(&self) -> anyhow::Result<amika_server::service::Caller> {
        Ok(self.service.authenticate(&self.admin_key).await?)
    }

    /// On PostgreSQL, `ANALYZE` the database: what autovacuum does within a minute of a bulk
    /// load, so that the planner knows the tables' sizes. A no-op on SQLite.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        if let Some(pg) = &self.pg {
            amika_testkit::postgres::execute(pg.url(), "ANALYZE".into())?;
        }
        Ok(())
    }

    /// Run `bench` against this server, then [`stop`](Server::stop) it whether `bench` succeeded
    /// or not: every benchmark's `main`.
    pub async fn run_then_stop(
        self,
        bench: impl AsyncFnOnce(&Server) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let result = bench(&self).await;
        self.stop().await?;
        result
    }

    /// Remove every sandbox that is left, stop serving, drop the PostgreSQL database.
    pub async fn stop(self) -> anyhow::Result<()> {
        for sb in self.client.list_sandboxes().await.unwrap_or_default() {
            let _ = self.client.delete_sandbox(&sb.id).await;
        }
        self.running.stop().await;
        if let Some(pg) = self.pg {
            // As before: a database left behind in a throwaway cluster fails no run.
            let _ = pg.drop_database();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------- fixtures

/// A random value that looks like a token.
pub fn random_value(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

/// Push `env_secrets` secrets (`bench-secret-<i>`), a Claude OAuth credential and a Codex API
/// key through the API, and return the create request that uses them all: every secret mapped
/// to `BENCH_SECRET_<i>`, Claude pinned by name, Codex pinned by type.
pub async fn seed_create_fixtures(
    client: &Client,
    env_secrets: usize,
) -> anyhow::Result<CreateSandboxRequest> {
    let mut secret_env_vars = BTreeMap::new();
    for i in 0..env_secrets {
        let name = format!("bench-secret-{i}");
        client
            .create_secret(&CreateSecretRequest {
                name: name.clone(),
                value: random_value(40),
                scope: None,
                description: None,
            })
            .await?;
        secret_env_vars.insert(format!("BENCH_SECRET_{i}"), name);
    }
    let expires = chrono::Utc::now().timestamp_millis() + 30 * 24 * 3600 * 1000;
    let oauth = amika_testkit::ClaudeOauth::new(
        &format!("sk-ant-oat01-{}", random_value(60)),
        &format!("sk-ant-ort01-{}", random_value(60)),
    )
    .expires_at_ms(expires)
    .scopes(&["user:inference", "user:profile"])
    .subscription_type("max");
    client
        .create_credential(
            AgentKind::Claude,
            &CreateCredentialRequest {
                name: "bench-claude".into(),
                value: oauth.to_json(),
                credential_type: CredentialType::Oauth,
                scope: None,
                is_default: false,
            },
        )
        .await?;
    client
        .create_credential(
            AgentKind::Codex,
            &CreateCredentialRequest {
                name: "bench-codex".into(),
                value: format!("sk-proj-{}", random_value(48)),
                credential_type: CredentialType::ApiKey,
                scope: None,
                is_default: false,
            },
        )
        .await?;
    Ok(CreateSandboxRequest {
        name: String::new(),
        secret_env_vars,
        agent_credentials: vec![
            AgentCredentialRef {
                kind: AgentKind::Claude,
                name: Some("bench-claude".into()),
                credential_type: None,
                none: false,
            },
            AgentCredentialRef {
                kind: AgentKind::Codex,
                name: None,
                credential_type: Some(CredentialType::ApiKey),
                none: false,
            },
        ],
        ..Default::default()
    })
}

/// Timings of one create-to-ready.
#[derive(Debug, Clone, Copy)]
pub struct CreateTiming {
    /// `POST /sandboxes` until the sandbox is `running` (the 202 on the fast path).
    pub create: Duration,
    /// The first exec of `true`, until its exit frame.
    pub first_exec: Duration,
}

impl CreateTiming {
    pub fn total(&self) -> Duration {
        self.create + self.first_exec
    }
}

/// Create a sandbox from `template` named `name` with `network`, wait until it is running, and
/// run `true` in it: create-to-ready, as a client sees it.
pub async fn create_to_ready(
    client: &Client,
    template: &CreateSandboxRequest,
    name: &str,
    network: NetworkMode,
) -> anyhow::Result<CreateTiming> {
    let mut req = template.clone();
    req.name = name.to_string();
    req.network = Some(network);
    let started = Instant::now();
    let sb = create_running(client, &req, Duration::from_millis(2))
        .await
        .map_err(anyhow::Error::msg)?;
    let create = started.elapsed();
    let exec_started = Instant::now();
    exec_true(client, &sb.id).await?;
    Ok(CreateTiming {
        create,
        first_exec: exec_started.elapsed(),
    })
}

/// `POST /sandboxes` for `req`, then (unless it already runs) poll it every `poll`, for up to
/// 120 s, until it is running. The error says why: the client error as [`describe`] puts it, or
/// the state the sandbox ended in with its error message.
pub async fn create_running(
    client: &Client,
    req: &CreateSandboxRequest,
    poll: Duration,
) -> Result<Sandbox, String> {
    let sb = client.create_sandbox(req).await.map_err(|e| describe(&e))?;
    if sb.state == SandboxState::Running {
        return Ok(sb);
    }
    let sb = client
        .wait_for_sandbox(
            &sb.id,
            &[SandboxState::Running],
            poll,
            Duration::from_secs(120),
        )
        .await
        .map_err(|e| describe(&e))?;
    if sb.state != SandboxState::Running {
        let why = sb.error_message.unwrap_or_default();
        return Err(format!("sandbox {} is {}: {why}", req.name, sb.state));
    }
    Ok(sb)
}

/// A client error as a report shows it: the status first when there is one, the trace id
/// (which the server's log line names) last.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Api {
            status,
            trace_id: Some(trace),
            ..
        } => format!("HTTP {status}: {e} [trace {trace}]"),
        _ => match e.status() {
            Some(status) => format!("HTTP {status}: {e}"),
            None => e.to_string(),
        },
    }
}

/// Run `true` in a sandbox and check that it exited 0.
pub async fn exec_true(client: &Client, sandbox: &str) -> anyhow::Result<()> {
    let mut stream = client
        .exec(
            sandbox,
            &ExecRequest {
                command: vec!["true".into()],
                cwd: None,
                timeout_secs: Some(30),
            },
        )
        .await?;
    while let Some(frame) = stream.next_frame().await {
        match frame? {
            ExecFrame::Exit { code: 0 } => return Ok(()),
            ExecFrame::Exit { code } => bail!("`true` exited {code} in {sandbox}"),
            ExecFrame::Error { message } => bail!("exec in {sandbox} failed: {message}"),
            _ => {}
        }
    }
    bail!("exec in {sandbox} ended without an exit frame")
}

/// The raw bubblewrap baseline: a fresh set of namespaces running `/usr/bin/true`, the least a
/// sandbox start can cost on this machine.
pub const RAW_BWRAP_ARGS: &[&str] = &[
    "--unshare-all",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "/usr/bin/true",
];

/// Time one raw `bwrap ... /usr/bin/true`, from spawn to exit.
pub async fn raw_bwrap() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = tokio::process::Command::new("bwrap")
        .args(RAW_BWRAP_ARGS)
        .stdin(std::process::Stdio::null())
        .status()
        .await
        .context("run bwrap (apt-get install -y bubblewrap)")?;
    let took = started.elapsed();
    if !status.success() {
        bail!("raw bwrap exited with {status}");
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reproducing_command_names_the_build_profile_it_ran_with() {
        let cmd = command_line("api", true);
        assert!(
            cmd.starts_with("scripts/with-postgres.sh cargo run"),
            "{cmd}"
        );
        assert_eq!(
            cmd.contains(" --release "),
            !cfg!(debug_assertions),
            "{cmd}"
        );
        assert!(cmd.contains(" -p amika-bench --bin api"), "{cmd}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p95, Duration::from_millis(95));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        let one = Summary::of(&[Duration::from_millis(7)]);
        assert_eq!(
            (one.p50, one.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
    }

    #[test]
    fn command_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("--iterations=5"), "--iterations=5");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn durations_in_seconds_minutes_hours_and_sums() {
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2m30s"), Ok(Duration::from_secs(150)));
    }

    #[test]
    fn malformed_durations_are_refused_with_an_example() {
        for bad in [
            "",
            " ",
            "m",
            "10x",
            "-5",
            "1.5m",
            "10m5",
            "5 m",
            "99999999999999999999h",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(
                err.contains("is not a duration") && err.contains("10m"),
                "{bad}: {err}"
            );
        }
        for zero in ["0", "0s", "0m0s"] {
            assert_eq!(
                parse_duration(zero),
                Err("the duration must be more than 0".to_string())
            );
        }
    }
}
