//! Benchmark (issue 16): a snapshot of a 200 MB workspace, captured and restored, beside
//! `tar --zstd` of the same tree in the same run.
//!
//! Each iteration makes a fresh source sandbox (5 env secrets, a claude OAuth and a codex API
//! key credential injected: what the scrub searches for) and fills its workspace on the host
//! with the same tree: source-like text files (compressible) and binary ones (random, as
//! built artifacts are), 64 KiB each. Then, timed:
//! - `tar --zstd -cf` of the home (the host's GNU tar and zstd, level 3, one thread) and
//!   `tar --zstd -xf` of that archive into a fresh directory: the baseline;
//! - the capture: `create_snapshot` in `scrub_and_delete` mode until the snapshot is `active`
//!   (stop the sandbox, walk, tar, zstd level 3, search every byte for every injected value in
//!   every form, encrypt, fsync, rename);
//! - the restore: a create with `snapshot` until the sandbox is `running` (decrypt, zstd, untar
//!   into its home, start, inject): create-from-snapshot to ready.
//!
//! Target: capture and restore within 1.5× of tar.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use amika_bench::{
    ms, ratio, seed_create_fixtures, verdict, Backend, CommonArgs, Report, Server, Summary,
};
use amika_types::{CreateSnapshotRequest, NetworkMode, SandboxState, SnapshotMode, SnapshotState};
use clap::Parser;
use rand::{Rng, SeedableRng};

#[derive(Debug, Parser)]
#[command(about = "snapshot capture and restore of a workspace beside tar --zstd")]
struct Args {
    /// Size of the workspace tree, in MiB.
    #[arg(long, default_value_t = 200)]
    mib: usize,
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    #[command(flatten)]
    common: CommonArgs,
}

const FILE_LEN: usize = 64 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    Server::start_with(Backend::Sqlite, |c| c.warm_sandboxes = 0)
        .await?
        .run_then_stop(async |server| run(server, &args).await)
        .await
}

#[derive(Default)]
struct Samples {
    tar_c: Vec<Duration>,
    tar_x: Vec<Duration>,
    capture: Vec<Duration>,
    restore: Vec<Duration>,
    tar_bytes: u64,
    snap_bytes: u64,
}

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let mib = args.common.count(args.mib, 2);
    let iterations = args.common.count(args.iterations, 1);
    let caller = server.caller().await?;
    let svc = &server.service;
    let fixtures = seed_create_fixtures(&server.client, 5).await?;
    let scratch = tempfile::tempdir()?;
    let mut s = Samples::default();
    for i in 0..iterations {
        let mut req = fixtures.clone();
        req.name = format!("snap-src-{i}");
        req.network = Some(NetworkMode::None);
        let src = svc.create_sandbox(&caller, req).await?;
        wait_running(server, &caller, &src.id).await?;
        let home = server
            .data_dir()
            .join("sandboxes")
            .join(&src.id)
            .join("home");
        fill(&home.join("workspace/tree"), mib)?;

        let tarball = scratch.path().join("home.tar.zst");
        let t = Instant::now();
        sh(Command::new("tar")
            .arg("--zstd")
            .arg("-cf")
            .arg(&tarball)
            .arg("-C")
            .arg(&home)
            .arg("."))?;
        s.tar_c.push(t.elapsed());
        s.tar_bytes = std::fs::metadata(&tarball)?.len();
        let out = scratch.path().join("untar");
        std::fs::create_dir(&out)?;
        let t = Instant::now();
        sh(Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&out))?;
        s.tar_x.push(t.elapsed());
        std::fs::remove_dir_all(&out)?;
        std::fs::remove_file(&tarball)?;

        let name = format!("snap-{i}");
        let t = Instant::now();
        let snap = svc
            .create_snapshot(
                &caller,
                CreateSnapshotRequest {
                    sandbox_ref: src.id.clone(),
                    name: name.clone(),
                    description: None,
                    mode: Some(SnapshotMode::ScrubAndDelete),
                    scope: None,
                },
            )
            .await?;
        let snap = loop {
            let now = svc.get_snapshot(&caller, &snap.id).await?;
            if now.state != SnapshotState::Capturing {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        s.capture.push(t.elapsed());
        anyhow::ensure!(
            snap.state == SnapshotState::Active,
            "capture failed: {:?}",
            snap.error_message
        );
        s.snap_bytes = snap.size_bytes.unwrap_or(0) as u64;

        let mut req = fixtures.clone();
        req.name = format!("snap-fork-{i}");
        req.network = Some(NetworkMode::None);
        req.snapshot = Some(name.clone());
        let t = Instant::now();
        let fork = svc.create_sandbox(&caller, req).await?;
        wait_running(server, &caller, &fork.id).await?;
        s.restore.push(t.elapsed());
        svc.delete_sandbox(&caller, &fork.id).await?;
        svc.delete_snapshot(&caller, &name).await?;
    }
    report(args, mib, &s)
}

fn report(args: &Args, mib: usize, s: &Samples) -> anyhow::Result<()> {
    let mut report = Report::new(
        "snapshot",
        false,
        &["measurement", "n", "p50", "p95", "p99", "p50 / tar p50"],
    );
    let (tc, tx) = (Summary::of(&s.tar_c), Summary::of(&s.tar_x));
    let (c, r) = (Summary::of(&s.capture), Summary::of(&s.restore));
    for (label, sum, base) in [
        ("`tar --zstd -cf` of the home (baseline)", tc, tc),
        ("**capture** (`scrub_and_delete`, until `active`)", c, tc),
        ("`tar --zstd -xf` into a fresh dir (baseline)", tx, tx),
        ("**restore**: create with `snapshot` until `running`", r, tx),
    ] {
        let mut cells = vec![label.to_string()];
        cells.extend(sum.ms_cells());
        cells.push(format!("{:.2}×", ratio(sum.p50, base.p50)));
        report.row(cells);
    }
    let (cr, rr) = (ratio(c.p50, tc.p50), ratio(r.p50, tx.p50));
    report.note(format!(
        "{mib} MiB workspace ({} files of 64 KiB: 60% text, 40% random); capture {cr:.2}× tar, restore {rr:.2}× untar at p50 (target ≤ 1.5×: {} / {})",
        mib * 1024 * 1024 / FILE_LEN,
        verdict(cr <= 1.5),
        verdict(rr <= 1.5)
    ));
    report.note(format!(
        "archive {:.1} MiB encrypted vs {:.1} MiB tar.zst; the source has 5 env secrets and 2 credentials injected (the scrub searches ~7 values in every form); {} iterations, each on a fresh source sandbox (its fill not timed)",
        s.snap_bytes as f64 / 1048576.0,
        s.tar_bytes as f64 / 1048576.0,
        args.common.count(args.iterations, 1)
    ));
    report.note(format!("restore includes the sandbox's start and injection (create-from-snapshot to ready); tar p50 {} / untar p50 {}", ms(tc.p50), ms(tx.p50)));
    report.finish(&args.common)
}

async fn wait_running(
    server: &Server,
    caller: &amika_server::service::Caller,
    id: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sb = server.service.get_sandbox(caller, id).await?;
        match sb.state {
            SandboxState::Running => return Ok(()),
            SandboxState::Failed => anyhow::bail!("sandbox failed: {:?}", sb.error_message),
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "sandbox {id} did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The same tree every time: `mib` MiB of 64 KiB files, 100 per directory.
fn fill(root: &Path, mib: usize) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let words = [
        "fn", "let", "mut", "return", "impl", "struct", "self", "match", "Some", "None", "=>", "{",
        "}", "(", ");", "value", "config", "request", "sandbox",
    ];
    let files = mib * 1024 * 1024 / FILE_LEN;
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i / 100));
        std::fs::create_dir_all(&dir)?;
        let mut data = Vec::with_capacity(FILE_LEN);
        if i % 5 < 3 {
            while data.len() < FILE_LEN {
                let w = words[rng.gen_range(0..words.len())];
                data.extend_from_slice(w.as_bytes());
                data.push(if rng.gen_range(0..8) == 0 {
                    b'\n'
                } else {
                    b' '
                });
            }
            data.truncate(FILE_LEN);
            std::fs::File::create(dir.join(format!("f{i}.rs")))?.write_all(&data)?;
        } else {
            data.resize(FILE_LEN, 0);
            rng.fill(&mut data[..]);
            std::fs::File::create(dir.join(format!("f{i}.bin")))?.write_all(&data)?;
        }
    }
    Ok(())
}

fn sh(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status()?;
    anyhow::ensure!(status.success(), "{cmd:?}: {status}");
    Ok(())
}
