//! Benchmark 6 (issue 13): create-to-ready of a sandbox with a repository, beside `git clone` of
//! the same repository in the same run.
//!
//! Builds, once, a bare repository of `--files` files (5,000) holding `--size-mib` MiB (50) of
//! deterministic pseudo-random text (it does not compress away) in `--commits` commits, with a
//! `.amika/config.toml` (one plain env var) so that a create reads and applies a config, and
//! serves it over `file://` and over `git http-backend` behind a small HTTP server on 127.0.0.1
//! (`--no-http` leaves that out). Then, `--iterations` times, with the order of the steps rotated
//! each iteration:
//! - **git clone**: `git clone -q URL DIR` with the git binary the server runs — the baseline;
//! - **amika's clone step alone**: `amika_sandbox::local::git::clone`, in process, exactly what a
//!   create runs before anything else (`clone --no-hardlinks --progress` in a clean environment,
//!   then `rev-parse` and `symbolic-ref`), for the profile;
//! - **create-to-ready, warm sandboxes on**: `POST /sandboxes` with `repo_url`, until `running`,
//!   then the first exec of `true` (as `create-to-ready` measures it);
//! - **create-to-ready, warm sandboxes off**: the same on a second server started with
//!   `--warm-sandboxes 0` (file:// only).
//!
//! Clones and sandboxes are removed after each step and `sync` runs (not timed), so that no step
//! pays for the previous one's writes. Target: create-to-ready (warm) p50 at most 1.5× the git
//! clone p50.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amika_bench::{create_to_ready, ms, ratio, verdict, Backend, CommonArgs, Report, Server};
use amika_sandbox::local::git::{self, CloneSpec};
use amika_types::{CreateSandboxRequest, NetworkMode};
use anyhow::{bail, ensure, Context};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The bare repository's directory (and so the sandbox's `~/workspace/bench-repo`).
const REPO_DIR: &str = "bench-repo.git";
/// The target: create-to-ready at most this many times the plain clone.
const TARGET: f64 = 1.5;

#[derive(Debug, Parser)]
#[command(about = "create-to-ready of a sandbox with a 50 MB repository vs git clone of it")]
struct Args {
    /// Measured iterations of every step.
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// Unmeasured iterations first (page cache, the warm pool learning the shape).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Files in the repository's last commit.
    #[arg(long, default_value_t = 5000)]
    files: usize,
    /// Bytes of the working tree, in MiB.
    #[arg(long, default_value_t = 50)]
    size_mib: u64,
    /// Commits: the first adds every file, each later one changes 5% of them and adds a few.
    #[arg(long, default_value_t = 3)]
    commits: usize,
    /// Leave out the `git http-backend` transport.
    #[arg(long)]
    no_http: bool,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    File,
    Http,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::File => "file://",
            Transport::Http => "http (git http-backend)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    GitClone(Transport),
    AmikaClone(Transport),
    /// `true`: on the server with warm sandboxes.
    Create(Transport, bool),
}

/// One measurement: the total, and for a create its two parts.
#[derive(Debug, Clone, Copy)]
struct Sample {
    total: Duration,
    create: Duration,
    first_exec: Duration,
}

/// Nearest-rank percentiles of a set of timings.
#[derive(Debug, Clone, Copy)]
struct Stats {
    n: usize,
    p50: Duration,
    p90: Duration,
    min: Duration,
    max: Duration,
}

impl Stats {
    fn of(samples: impl Iterator<Item = Duration>) -> Stats {
        let mut s: Vec<Duration> = samples.collect();
        assert!(!s.is_empty(), "no samples");
        s.sort();
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Stats {
            n: s.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            min: s[0],
            max: s[s.len() - 1],
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let work = tempfile::Builder::new()
        .prefix("amika-bench-repo.")
        .tempdir()
        .context("create the benchmark's temp dir")?;
    let git = find_git()?;
    let shape = if args.common.smoke {
        RepoShape {
            files: 40,
            bytes: 256 * 1024,
            commits: 2,
        }
    } else {
        RepoShape {
            files: args.files,
            bytes: args.size_mib * 1024 * 1024,
            commits: args.commits,
        }
    };
    eprintln!(
        "building a repository of {} files, {:.1} MiB, {} commits ...",
        shape.files,
        shape.bytes as f64 / 1048576.0,
        shape.commits
    );
    let started = Instant::now();
    let repo = {
        let (root, git) = (work.path().to_path_buf(), git.clone());
        tokio::task::spawn_blocking(move || build_repo(&root, &git, &shape)).await??
    };
    let built_in = started.elapsed();
    let http = if args.no_http {
        None
    } else {
        Some(serve_http(work.path().to_path_buf(), git.clone()).await?)
    };
    let warm = Server::start_with(args.backend, |c| {
        c.warm_sandboxes = amika_sandbox::local::DEFAULT_WARM.max(1)
    })
    .await?;
    let cold = Server::start_with(args.backend, |c| c.warm_sandboxes = 0).await?;
    let bench = Bench {
        args: &args,
        work: work.path(),
        git,
        file_url: format!("file://{}", repo.path.display()),
        http_url: http,
        warm: &warm,
        cold: &cold,
    };
    let result = bench.run(&repo, built_in).await;
    warm.stop().await?;
    cold.stop().await?;
    result
}

struct Bench<'a> {
    args: &'a Args,
    work: &'a Path,
    git: PathBuf,
    file_url: String,
    http_url: Option<String>,
    warm: &'a Server,
    cold: &'a Server,
}

impl Bench<'_> {
    fn url(&self, t: Transport) -> &str {
        match t {
            Transport::File => &self.file_url,
            Transport::Http => self.http_url.as_deref().expect("http is served"),
        }
    }

    fn steps(&self) -> Vec<Step> {
        let mut steps = vec![
            Step::GitClone(Transport::File),
            Step::AmikaClone(Transport::File),
            Step::Create(Transport::File, true),
            Step::Create(Transport::File, false),
        ];
        if self.http_url.is_some() {
            steps.extend([
                Step::GitClone(Transport::Http),
                Step::AmikaClone(Transport::Http),
                Step::Create(Transport::Http, true),
            ]);
        }
        steps
    }

    async fn run(&self, repo: &Repo, built_in: Duration) -> anyhow::Result<()> {
        let iterations = self.args.common.count(self.args.iterations, 1);
        let warmup = self.args.common.count(self.args.warmup, 0);
        let steps = self.steps();
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); steps.len()];
        for i in 0..warmup + iterations {
            for k in 0..steps.len() {
                let which = (i + k) % steps.len();
                let sample = self.step(steps[which], i).await?;
                if i >= warmup {
                    samples[which].push(sample);
                }
            }
            eprintln!(
                "{} {} / {}",
                if i < warmup { "warm-up" } else { "iteration" },
                if i < warmup { i + 1 } else { i - warmup + 1 },
                if i < warmup { warmup } else { iterations }
            );
        }
        self.report(&steps, &samples, repo, built_in)?
            .finish(&self.args.common)
    }

    /// Run one step and clean up after it (not timed).
    async fn step(&self, step: Step, i: usize) -> anyhow::Result<Sample> {
        let dest = self.work.join(format!("clone-{i}"));
        let sample = match step {
            Step::GitClone(t) => {
                let started = Instant::now();
                let status = tokio::process::Command::new(&self.git)
                    .args(["clone", "-q", "--", self.url(t)])
                    .arg(&dest)
                    .status()
                    .await?;
                ensure!(
                    status.success(),
                    "git clone {} exited {status}",
                    self.url(t)
                );
                plain(started.elapsed())
            }
            Step::AmikaClone(t) => {
                let scratch = self.work.join("scratch");
                std::fs::create_dir_all(&scratch)?;
                let started = Instant::now();
                git::clone(&CloneSpec {
                    url: self.url(t),
                    bundle: None,
                    branch: None,
                    new_branch: None,
                    token: None,
                    dest: &dest,
                    scratch: &scratch,
                    timeout: Duration::from_secs(600),
                })
                .await?;
                plain(started.elapsed())
            }
            Step::Create(t, warm) => {
                let server = if warm { self.warm } else { self.cold };
                server.settle().await;
                let template = CreateSandboxRequest {
                    repo_url: Some(self.url(t).to_string()),
                    ..Default::default()
                };
                let name = format!("repo-{}-{i}", if warm { "warm" } else { "cold" });
                let timing =
                    create_to_ready(&server.client, &template, &name, NetworkMode::Egress).await?;
                let sb = server.client.get_sandbox(&name).await?;
                ensure!(
                    sb.repo_name.as_deref() == Some("bench-repo") && sb.commit_hash.is_some(),
                    "sandbox {name} has no repository: {sb:?}"
                );
                server.client.delete_sandbox(&name).await?;
                server.settle().await;
                Sample {
                    total: timing.total(),
                    create: timing.create,
                    first_exec: timing.first_exec,
                }
            }
        };
        if dest.exists() {
            std::fs::remove_dir_all(&dest)?;
        }
        let _ = std::process::Command::new("sync").status();
        Ok(sample)
    }

    fn report(
        &self,
        steps: &[Step],
        samples: &[Vec<Sample>],
        repo: &Repo,
        built_in: Duration,
    ) -> anyhow::Result<Report> {
        let mut report = Report::new(
            "create-repo",
            self.args.backend == Backend::Postgres,
            COLUMNS,
        );
        let of = |step: Step| &samples[steps.iter().position(|s| *s == step).expect("a step")];
        let stats =
            |step: Step, part: fn(&Sample) -> Duration| Stats::of(of(step).iter().map(part));
        // Each create over the clone of the same iteration: less exposed to the load drifting
        // over the run than a ratio of medians.
        let paired = |step: Step, base: Step| {
            let mut r: Vec<f64> = of(step)
                .iter()
                .zip(of(base))
                .map(|(a, b)| ratio(a.total, b.total))
                .collect();
            r.sort_by(f64::total_cmp);
            r[(r.len() - 1) / 2]
        };
        let mut verdicts = Vec::new();
        for t in [Transport::File, Transport::Http] {
            if !steps.contains(&Step::GitClone(t)) {
                continue;
            }
            let base = stats(Step::GitClone(t), |s| s.total);
            let mut row = |label: String, s: Stats| {
                report.row(vec![
                    label,
                    s.n.to_string(),
                    ms(s.p50),
                    ms(s.p90),
                    ms(s.min),
                    ms(s.max),
                    format!("{:.2}×", ratio(s.p50, base.p50)),
                ]);
            };
            let l = t.label();
            row(format!("{l}: `git clone` (baseline)"), base);
            let own = stats(Step::AmikaClone(t), |s| s.total);
            row(
                format!("{l}: amika's clone step alone (clone --no-hardlinks --progress, rev-parse, symbolic-ref)"),
                own,
            );
            for warm in [true, false] {
                if !steps.contains(&Step::Create(t, warm)) {
                    continue;
                }
                let on = if warm { "on" } else { "off" };
                let total = stats(Step::Create(t, warm), |s| s.total);
                row(
                    format!("**{l}: create-to-ready, warm sandboxes {on}**"),
                    total,
                );
                row(
                    format!("{l}, warm {on}: of which create (POST until running)"),
                    stats(Step::Create(t, warm), |s| s.create),
                );
                row(
                    format!("{l}, warm {on}: of which first exec of `true`"),
                    stats(Step::Create(t, warm), |s| s.first_exec),
                );
                let r = ratio(total.p50, base.p50);
                let beyond = total.p50.as_secs_f64() - own.p50.as_secs_f64();
                verdicts.push(format!(
                    "{l}, warm sandboxes {on}: create-to-ready p50 {r:.2}× git clone p50 — target ≤ {TARGET}× {} (min {:.2}× git clone min; median of the per-iteration ratios {:.2}×); p50 beyond amika's own clone step: {:+.0} ms (the row, the sandbox's start, the move into the workspace, the config read, the first exec; negative: within the noise)",
                    verdict(r <= TARGET),
                    ratio(total.min, base.min),
                    paired(Step::Create(t, warm), Step::GitClone(t)),
                    beyond * 1e3,
                ));
            }
        }
        for v in verdicts {
            report.note(v);
        }
        report.note(format!(
            "repository: {} files, {:.1} MiB of text in the last commit, {} commits, {:.1} MiB packed (built in {:.1} s, not measured); git {}",
            repo.files,
            repo.tree_bytes as f64 / 1048576.0,
            repo.commits,
            repo.pack_bytes as f64 / 1048576.0,
            built_in.as_secs_f64(),
            repo.git_version,
        ));
        report.note(format!(
            "backend {}; steps rotated each iteration; {} warm-up iterations; clones and sandboxes removed and `sync` run after each step (not timed); creates carry only repo_url (network egress, the server's default limits); warm server --warm-sandboxes {}, cold server 0",
            self.args.backend.name(),
            self.args.common.count(self.args.warmup, 0),
            amika_sandbox::local::DEFAULT_WARM.max(1),
        ));
        Ok(report)
    }
}

/// The columns of the results table.
const COLUMNS: &[&str] = &[
    "measurement",
    "n",
    "p50",
    "p90",
    "min",
    "max",
    "p50 / git clone p50",
];

fn plain(total: Duration) -> Sample {
    Sample {
        total,
        create: total,
        first_exec: Duration::ZERO,
    }
}

/// The git the server runs (`amika_sandbox::local::git` looks in this order), so that the
/// baseline and the server use the same one.
fn find_git() -> anyhow::Result<PathBuf> {
    ["/usr/bin/git", "/usr/local/bin/git", "/bin/git"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .context("git is not installed (apt-get install -y git)")
}

// ---------------------------------------------------------------------------------- the repository

#[derive(Debug, Clone, Copy)]
struct RepoShape {
    files: usize,
    bytes: u64,
    commits: usize,
}

#[derive(Debug)]
struct Repo {
    path: PathBuf,
    files: usize,
    tree_bytes: u64,
    commits: usize,
    pack_bytes: u64,
    git_version: String,
}

/// SplitMix64: a tiny deterministic generator, the same output on every machine and build.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `len` bytes of text for file `file` in version `version`: lines of 63 characters drawn
/// from 64 (6 bits each, so zlib cannot shrink it much), each line ending in a newline.
fn content(file: usize, version: usize, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ";
    let mut rng = SplitMix(((file as u64) << 20) ^ (version as u64) ^ 0x5eed);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let mut r = rng.next();
        for _ in 0..8 {
            if out.len() % 64 == 63 {
                out.push(b'\n');
            } else {
                out.push(ALPHABET[(r & 63) as usize]);
            }
            r >>= 6;
        }
    }
    out.truncate(len);
    out
}

fn file_path(i: usize) -> String {
    format!("src/pkg{:02}/mod{}/file_{i:05}.txt", i / 500, (i / 50) % 10)
}

/// The size of file `i`: from half to one and a half times the average, fixed by `i`.
fn file_len(i: usize, average: u64) -> usize {
    let spread = SplitMix(i as u64 ^ 0x51ce).next() % (average.max(2));
    (average / 2 + spread) as usize
}

/// A bare repository at `root/REPO_DIR` written with `git fast-import` (fixed dates: the same
/// commits on every run), then repacked as a served repository would be.
fn build_repo(root: &Path, git: &Path, shape: &RepoShape) -> anyhow::Result<Repo> {
    use std::io::Write;
    let path = root.join(REPO_DIR);
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(git)
            .args(args)
            .env("GIT_DIR", &path)
            .output()?;
        ensure!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    run(&["init", "-q", "--bare", "-b", "main"])?;
    let mut import = std::process::Command::new(git)
        .args(["fast-import", "--quiet"])
        .env("GIT_DIR", &path)
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = std::io::BufWriter::new(import.stdin.take().context("stdin")?);
    let average = shape.bytes / shape.files.max(1) as u64;
    // Files of the first commit, then a few added by each later one.
    let first = shape.files - (shape.commits.saturating_sub(1) * (shape.files / 100));
    let mut present = first;
    let mut tree_bytes: Vec<usize> = (0..first).map(|i| file_len(i, average)).collect();
    for c in 0..shape.commits.max(1) {
        let message = format!("commit {c}\n");
        let at = 1_700_000_000 + c * 3600;
        write!(
            stdin,
            "commit refs/heads/main\nauthor Bench <bench@amika.invalid> {at} +0000\ncommitter Bench <bench@amika.invalid> {at} +0000\ndata {}\n{message}",
            message.len()
        )?;
        let changed: Vec<usize> = if c == 0 {
            write_blob(
                &mut stdin,
                ".amika/config.toml",
                b"[env]\nBENCH_REPO = \"1\"\n",
            )?;
            (0..first).collect()
        } else {
            let added = shape.files / 100;
            tree_bytes.extend((present..present + added).map(|i| file_len(i, average)));
            present += added;
            (0..present)
                .filter(|i| (i + c) % 20 == 0 || *i >= present - added)
                .collect()
        };
        for i in changed {
            write_blob(&mut stdin, &file_path(i), &content(i, c, tree_bytes[i]))?;
        }
        stdin.write_all(b"\n")?;
    }
    drop(stdin);
    let status = import.wait()?;
    ensure!(status.success(), "git fast-import exited {status}");
    run(&["repack", "-a", "-d", "-q"])?;
    run(&["gc", "-q", "--prune=now"])?;
    let pack_bytes = std::fs::read_dir(path.join("objects/pack"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let listed = run(&["ls-tree", "-r", "--name-only", "main"])?;
    let files = listed.lines().count();
    if files != present + 1 {
        bail!("the repository has {files} files, expected {}", present + 1);
    }
    let commits = run(&["rev-list", "--count", "main"])?.parse()?;
    let git_version = run(&["--version"])?.replace("git version ", "");
    Ok(Repo {
        path,
        files,
        tree_bytes: tree_bytes.iter().map(|n| *n as u64).sum(),
        commits,
        pack_bytes,
        git_version,
    })
}

fn write_blob(out: &mut impl std::io::Write, path: &str, data: &[u8]) -> std::io::Result<()> {
    write!(out, "M 100644 inline {path}\ndata {}\n", data.len())?;
    out.write_all(data)?;
    out.write_all(b"\n")
}

// ---------------------------------------------------------------------------------- the HTTP server

/// Serve every repository under `root` with `git http-backend` (smart HTTP, no auth) on
/// 127.0.0.1; the URL of the benchmark's repository.
async fn serve_http(root: PathBuf, git: PathBuf) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (root, git) = (root.clone(), git.clone());
            tokio::spawn(async move {
                if let Err(e) = http_backend(conn, &root, &git).await {
                    eprintln!("http-backend: {e:#}");
                }
            });
        }
    });
    Ok(format!("http://{addr}/{REPO_DIR}"))
}

/// An HTTP request as the CGI needs it.
struct Request {
    method: String,
    path: String,
    query: String,
    /// Lowercased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(h, _)| h == name)
            .map(|(_, v)| v.clone())
    }
}

/// Read one request: its head, then `Content-Length` bytes of body.
async fn read_request(conn: &mut TcpStream) -> anyhow::Result<Request> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        let n = conn.read(&mut chunk).await?;
        ensure!(
            n > 0,
            "the connection closed before the request's head ended"
        );
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default().to_string();
    let mut req = Request {
        method: String::new(),
        path: String::new(),
        query: String::new(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: buf.split_off(head_end),
    };
    if req.header("transfer-encoding").is_some() {
        bail!("this benchmark's HTTP server takes no chunked request bodies");
    }
    let len: usize = req.header("content-length").map_or(Ok(0), |v| v.parse())?;
    while req.body.len() < len {
        let n = conn.read(&mut chunk).await?;
        ensure!(
            n > 0,
            "the connection closed before the request's body ended"
        );
        req.body.extend_from_slice(&chunk[..n]);
    }
    let mut parts = request.split(' ');
    req.method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    (req.path, req.query) = (path.to_string(), query.to_string());
    Ok(req)
}

/// One request (`Connection: close`), handed to `git http-backend` as CGI; its answer streamed
/// back as it comes.
async fn http_backend(mut conn: TcpStream, root: &Path, git: &Path) -> anyhow::Result<()> {
    let _ = conn.set_nodelay(true);
    let req = read_request(&mut conn).await?;
    let mut cgi = tokio::process::Command::new(git);
    cgi.arg("http-backend")
        .env_clear()
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", &req.path)
        .env("QUERY_STRING", &req.query)
        .env(
            "CONTENT_TYPE",
            req.header("content-type").unwrap_or_default(),
        )
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (from, to) in [
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(v) = req.header(from) {
            cgi.env(to, v);
        }
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let body = req.body;
    let feed = async move {
        stdin.write_all(&body).await?;
        drop(stdin);
        Ok::<_, std::io::Error>(())
    };
    let answer = async {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        let (split, sep) = loop {
            let n = stdout.read(&mut chunk).await?;
            ensure!(n > 0, "git http-backend ended without a head");
            out.extend_from_slice(&chunk[..n]);
            if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                break (i, 4);
            }
        };
        let mut status = "200 OK".to_string();
        let mut reply = String::new();
        for l in String::from_utf8_lossy(&out[..split]).lines() {
            match l.split_once(": ") {
                Some(("Status", s)) => status = s.to_string(),
                Some(_) => reply.push_str(&format!("{l}\r\n")),
                None => {}
            }
        }
        let head = format!("HTTP/1.1 {status}\r\n{reply}Connection: close\r\n\r\n");
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(&out[split + sep..]).await?;
        tokio::io::copy(&mut stdout, &mut conn).await?;
        conn.shutdown().await?;
        Ok(())
    };
    let (fed, answered) = tokio::join!(feed, answer);
    fed?;
    answered?;
    let status = child.wait().await?;
    ensure!(status.success(), "git http-backend exited {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_text_of_the_asked_length() {
        let a = content(7, 0, 10_000);
        assert_eq!(a, content(7, 0, 10_000));
        assert_ne!(a, content(7, 1, 10_000));
        assert_ne!(a, content(8, 0, 10_000));
        assert_eq!(a.len(), 10_000);
        assert!(a
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\n'));
        assert_eq!(a[63], b'\n');
    }

    #[test]
    fn file_sizes_average_out() {
        let total: u64 = (0..5000).map(|i| file_len(i, 10_000) as u64).sum();
        let avg = total / 5000;
        assert!((9_500..10_500).contains(&avg), "{avg}");
    }
}
