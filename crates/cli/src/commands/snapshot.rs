//! `amika snapshot`: capture a prepared sandbox and start new ones from it (`amika sandbox
//! create --snapshot SNAP`). `create` is interactive by default: it asks for the mode, shows
//! the scrub preview (the files and env var names removed, never values) and asks to confirm;
//! `--no-interactive` (and `-o json`, or no terminal) requires `--mode` and `--name`. It waits
//! until the capture ends: a refused scrub is an error naming the files and secrets found.

use std::time::{Duration, Instant};

use amika_types::{CreateSnapshotRequest, SandboxSnapshot, Scope, SnapshotMode, SnapshotState};
use anyhow::bail;
use serde_json::json;

use super::Ctx;
use crate::output::{or_dash, print_json, time, Table};
use crate::prompt;
use crate::spinner::Spinner;

/// How long `create` waits for a capture to end.
const CAPTURE_WAIT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Capture a sandbox's home and workspace (scrub_and_delete: injected secrets removed and
    /// searched for, then the sandbox deleted; full: everything kept, the sandbox too).
    Create(CreateArgs),
    /// Your snapshots and your org's shared ones, with their sizes.
    List {
        /// Only snapshots of this source sandbox (its name or id).
        #[arg(long, value_name = "NAME")]
        sandbox: Option<String>,
    },
    /// One snapshot.
    Get {
        /// The snapshot's name (or id).
        name: String,
    },
    /// Delete snapshots and their archives.
    Delete {
        /// The snapshots' names (or ids).
        #[arg(required = true)]
        names: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The sandbox to capture (its name or id).
    #[arg(long, value_name = "NAME")]
    pub sandbox: String,
    /// The snapshot's name (letters, digits, '-', '_', '.'; at most 63).
    #[arg(long, value_name = "SNAP")]
    pub name: Option<String>,
    /// scrub_and_delete (default when asked) or full (unsafe: keeps whatever the agent wrote
    /// down, secrets included).
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub mode: Option<SnapshotMode>,
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Who can start sandboxes from it: only you (user, the default) or every member of your
    /// org (org: org admins only, scrub_and_delete only).
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<Scope>,
    /// Ask nothing: --mode and --name are then required.
    #[arg(long)]
    pub no_interactive: bool,
}

fn parse_mode(value: &str) -> Result<SnapshotMode, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?}: expected scrub_and_delete or full"))
}

pub async fn run(ctx: &Ctx, cmd: SnapshotCommand) -> anyhow::Result<()> {
    match cmd {
        SnapshotCommand::Create(args) => create(ctx, args).await,
        SnapshotCommand::List { sandbox } => list(ctx, sandbox.as_deref()).await,
        SnapshotCommand::Get { name } => {
            let snap = ctx.client()?.get_snapshot(&name).await?;
            if ctx.json() {
                return print_json(&snap);
            }
            show(&snap)
        }
        SnapshotCommand::Delete { names, yes } => delete(ctx, names, yes).await,
    }
}

async fn create(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let interactive = !args.no_interactive && prompt::can_prompt(ctx.output);
    if !interactive {
        let missing: Vec<&str> = [
            ("--mode", args.mode.is_none()),
            ("--name", args.name.is_none()),
        ]
        .into_iter()
        .filter_map(|(flag, missing)| missing.then_some(flag))
        .collect();
        if !missing.is_empty() {
            bail!(
                "{} required without a prompt (--no-interactive, -o json or no terminal)",
                missing.join(" and ")
            );
        }
    }
    let client = ctx.client()?;
    let name = match args.name {
        Some(n) => n,
        None => prompt::ask_line("Snapshot name:", "")?,
    };
    if name.trim().is_empty() {
        bail!("--name is empty: expected a snapshot name");
    }
    let mode = match args.mode {
        Some(m) => m,
        None => {
            let answer = prompt::ask_line(
                "Mode, scrub_and_delete or full [scrub_and_delete]:",
                "scrub_and_delete",
            )?;
            parse_mode(&answer).map_err(|e| anyhow::anyhow!("mode {e}"))?
        }
    };
    if interactive {
        confirm(&client, &args.sandbox, &name, mode).await?;
    }
    let req = CreateSnapshotRequest {
        sandbox_ref: args.sandbox.clone(),
        name,
        description: args.description,
        mode: Some(mode),
        scope: args.scope,
    };
    let started = client.create_snapshot(&req).await?;
    let spinner = (!ctx.json() && prompt::stderr_is_tty()).then(|| {
        Spinner::start(format!(
            "capturing {} as {}",
            args.sandbox, started.snapshot
        ))
    });
    let deadline = Instant::now() + CAPTURE_WAIT;
    let snap = loop {
        let snap = client.get_snapshot(&started.id).await?;
        if snap.state != SnapshotState::Capturing {
            break snap;
        }
        if Instant::now() > deadline {
            bail!(
                "the capture of {} is still running: `amika snapshot get {}` shows when it ends",
                args.sandbox,
                snap.snapshot
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    drop(spinner);
    if snap.state == SnapshotState::Failed {
        bail!(
            "{}",
            snap.error_message
                .as_deref()
                .unwrap_or("the capture failed")
        );
    }
    if ctx.json() {
        return print_json(&snap);
    }
    crate::outln!(
        "Captured {} as snapshot {} ({}){}",
        args.sandbox,
        snap.snapshot,
        size(snap.size_bytes),
        if mode == SnapshotMode::ScrubAndDelete {
            "; the sandbox was deleted"
        } else {
            ""
        }
    );
    crate::outln!(
        "Start a sandbox from it: amika sandbox create --snapshot {}",
        snap.snapshot
    );
    Ok(())
}

/// Show what the mode does (the scrub preview) and ask.
async fn confirm(
    client: &amika_client::Client,
    sandbox: &str,
    name: &str,
    mode: SnapshotMode,
) -> anyhow::Result<()> {
    let question = match mode {
        SnapshotMode::ScrubAndDelete => {
            let preview = client.scrub_preview(sandbox).await?;
            eprintln!("The capture removes what was injected into {sandbox}:");
            for f in &preview.files {
                eprintln!("  file    {f}");
            }
            for e in &preview.env_vars {
                eprintln!("  env var {e}");
            }
            if preview.files.is_empty() && preview.env_vars.is_empty() {
                eprintln!("  (nothing was injected)");
            }
            eprintln!("and refuses to capture if any injected value is still in its files.");
            format!("Capture {sandbox} as {name}, then delete {sandbox}?")
        }
        SnapshotMode::Full => format!(
            "full mode keeps every file of {sandbox} as it is, including any secret or token the agent wrote down, for everyone who starts a sandbox from {name}. Capture anyway?"
        ),
    };
    if prompt::ask_yes_no(&question)? {
        Ok(())
    } else {
        bail!("aborted: nothing was changed")
    }
}

async fn list(ctx: &Ctx, sandbox: Option<&str>) -> anyhow::Result<()> {
    let list = ctx.client()?.list_snapshots(sandbox).await?;
    if ctx.json() {
        return print_json(&list);
    }
    let mut table = Table::new(&[
        "NAME", "SCOPE", "STATE", "MODE", "SOURCE", "SIZE", "CREATED",
    ]);
    for s in &list.items {
        table.row(vec![
            s.snapshot.clone(),
            s.scope.to_string(),
            s.state.to_string(),
            s.mode.to_string(),
            or_dash(s.source_sandbox_name.as_deref()),
            size(s.size_bytes),
            time(&s.created_at),
        ]);
    }
    table.print()
}

fn show(s: &SandboxSnapshot) -> anyhow::Result<()> {
    crate::outln!("name:        {}", s.snapshot);
    crate::outln!("id:          {}", s.id);
    crate::outln!("scope:       {}", s.scope);
    crate::outln!("state:       {}", s.state);
    crate::outln!("mode:        {}", s.mode);
    crate::outln!("source:      {}", or_dash(s.source_sandbox_name.as_deref()));
    crate::outln!("repository:  {}", or_dash(s.repo_name.as_deref()));
    crate::outln!("size:        {}", size(s.size_bytes));
    crate::outln!("description: {}", or_dash(s.description.as_deref()));
    crate::outln!("created:     {}", time(&s.created_at));
    if let Some(e) = &s.error_message {
        crate::outln!("error:       {e}");
    }
    Ok(())
}

async fn delete(ctx: &Ctx, names: Vec<String>, yes: bool) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let list = names.join(", ");
    prompt::confirm(
        ctx.output,
        yes,
        "--yes",
        &format!("delete snapshots {list}"),
        &format!("Delete snapshot(s) {list} and their archives?"),
    )?;
    for name in &names {
        client.delete_snapshot(name).await?;
        if !ctx.json() {
            crate::outln!("Deleted snapshot {name}");
        }
    }
    if ctx.json() {
        return print_json(&json!({"ok": true, "deleted": names}));
    }
    Ok(())
}

fn size(bytes: Option<i64>) -> String {
    match bytes {
        None => "-".into(),
        Some(b) if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}
