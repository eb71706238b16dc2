//! Benchmark (issue 14): the first byte of a streamed agent reply, over HTTP.
//!
//! One sandbox, with the *stand-in* Claude (`crates/cli/tests/fixtures/fake-claude.sh`: a test
//! agent, not the real Claude Code, which cannot reach its provider here) installed as
//! `claude`; it prints what `claude -p --output-format stream-json` prints, its first text
//! delta at once. Each iteration times, from the request:
//!
//! - `first delta`: `POST .../agent-send/stream` until its first `delta` event arrives;
//! - `done`: the same stream until its `done` event;
//! - baseline, in the same run: `exec true` in the same sandbox (`POST .../exec` until its exit
//!   frame): the least any send costs, one process started in the sandbox and its end reported.
//!
//! The issue sets no target: the figures show what streaming adds to a process start. The
//! stand-in computes a SHA-256 of its credential before its first delta, which is part of the
//! difference.

use std::time::{Duration, Instant};

use amika_bench::{exec_true, ms, ratio, Backend, CommonArgs, Report, Server, Summary};
use amika_types::{AgentSendRequest, AgentStreamEvent, CreateSandboxRequest, ExecRequest};
use anyhow::{bail, Context};
use clap::Parser;

const FAKE_CLAUDE: &str = include_str!("../../../crates/cli/tests/fixtures/fake-claude.sh");

#[derive(Debug, Parser)]
#[command(about = "first byte of a streamed agent reply (stand-in agent) beside exec true")]
struct Args {
    #[arg(long, default_value_t = 200)]
    iterations: usize,
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

/// A sandbox with the stand-in Claude as `claude`, and a credential for it.
async fn agent_sandbox(server: &Server) -> anyhow::Result<String> {
    let client = &server.client;
    client
        .create_credential(
            amika_types::AgentKind::Claude,
            &amika_types::CreateCredentialRequest {
                name: "bench-key".into(),
                credential_type: amika_types::CredentialType::ApiKey,
                value: amika_bench::random_value(40),
                scope: None,
                is_default: true,
            },
        )
        .await
        .context("push the bench's claude credential")?;
    let sb = client
        .create_sandbox(&CreateSandboxRequest {
            name: "agent-stream-bench".into(),
            agent_credentials: vec![amika_types::AgentCredentialRef {
                kind: amika_types::AgentKind::Claude,
                name: Some("bench-key".into()),
                credential_type: None,
                none: false,
            }],
            ..Default::default()
        })
        .await?;
    let install = "mkdir -p \"$HOME/.local/bin\" && printf '%s' \"$1\" > \"$HOME/.local/bin/claude\" && chmod 755 \"$HOME/.local/bin/claude\"".to_string();
    let mut stream = client
        .exec(
            &sb.id,
            &ExecRequest {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    install,
                    "install-stand-in".into(),
                    FAKE_CLAUDE.into(),
                ],
                cwd: None,
                timeout_secs: Some(30),
            },
        )
        .await?;
    while let Some(frame) = stream.next_frame().await {
        if let amika_types::ExecFrame::Exit { code } = frame? {
            if code != 0 {
                bail!("installing the stand-in agent exited {code}");
            }
        }
    }
    Ok(sb.id)
}

/// One streamed send: (first delta, done), from the request.
async fn streamed(server: &Server, sandbox: &str) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let req = AgentSendRequest {
        message: "benchmark".into(),
        new_session: true,
        ..Default::default()
    };
    let mut events = server.client.agent_send_stream(sandbox, &req).await?;
    let mut first = None;
    while let Some(event) = events.next_event().await {
        match event? {
            AgentStreamEvent::Delta(_) if first.is_none() => first = Some(started.elapsed()),
            AgentStreamEvent::Done(r) if !r.is_error => {
                let first = first.context("a done without a delta before it")?;
                return Ok((first, started.elapsed()));
            }
            AgentStreamEvent::Done(r) => bail!("the stand-in agent failed: {}", r.response),
            AgentStreamEvent::Error(e) => bail!("the stream ended in an error: {}", e.message),
            _ => {}
        }
    }
    bail!("the stream ended without its answer")
}

async fn run(server: &Server, args: &Args) -> anyhow::Result<()> {
    let iterations = args.common.count(args.iterations, 5);
    let sandbox = agent_sandbox(server).await?;
    let warmup = iterations / 10 + 1;
    let (mut first, mut done, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..warmup + iterations {
        // Interleaved, so that drift on the machine lands on both sides.
        let t = Instant::now();
        exec_true(&server.client, &sandbox).await?;
        let exec = t.elapsed();
        let (f, d) = streamed(server, &sandbox).await?;
        if i >= warmup {
            baseline.push(exec);
            first.push(f);
            done.push(d);
        }
    }
    let (first, done, baseline) = (
        Summary::of(&first),
        Summary::of(&done),
        Summary::of(&baseline),
    );
    let mut report = Report::new(
        "agent-stream",
        args.backend == Backend::Postgres,
        &["measurement", "n", "p50", "p95", "p99"],
    );
    for (name, s) in [
        ("exec `true` in the sandbox (baseline)", &baseline),
        ("streamed send: first delta", &first),
        ("streamed send: done", &done),
    ] {
        let mut cells = vec![name.to_string()];
        cells.extend(s.ms_cells());
        report.row(cells);
    }
    report.note(format!(
        "first delta / exec true at p50: {:.2}× ({} vs {}); the answer's end at {:.2}×",
        ratio(first.p50, baseline.p50),
        ms(first.p50),
        ms(baseline.p50),
        ratio(done.p50, baseline.p50),
    ));
    report.note(format!(
        "{iterations} iterations after {warmup} warm-up, stand-in agent"
    ));
    report.finish(&args.common)
}
