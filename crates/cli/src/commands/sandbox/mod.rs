//! `amika sandbox`: create (with its repository, env, setup script and injection flags), list,
//! get, logs, stop, start, delete, and exec with streamed output.
//!
//! `create` (in `create.rs`, with the repository it sends in `workspace.rs`) always sends one
//! agent-credential entry per agent (see `sandbox_flags`), follows the setup script's output,
//! waits for the sandbox to be `running` (spinner on a terminal), then reports on stderr, one
//! line per kind, which credential was injected or why none was. `list`, `get` and `logs` are
//! in `show.rs`.

mod create;
mod shell;
mod show;
mod ssh;
mod workspace;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use amika_client::Client;
use amika_types::{
    ExecFrame, ExecRequest, ResolutionOutcome, ResolvedAgentCredential, Sandbox, SandboxState,
};
use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::Ctx;
use crate::output::print_json;
use crate::prompt;
use crate::spinner::Spinner;

const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Create a sandbox and wait until it is running. Inside a git checkout, the sandbox gets
    /// that repository (see --git, --no-git).
    Create(Box<create::CreateArgs>),
    /// List your sandboxes.
    List,
    /// Show a sandbox: its repository, what was injected, its repo config and setup outcome.
    Get {
        /// The sandbox's name (or id).
        name: String,
    },
    /// Print a sandbox's kept logs (the setup script's output).
    Logs(show::LogsArgs),
    /// Delete a sandbox: kill its processes and remove its files. With --force (or --yes) a
    /// sandbox that does not exist (any more) is not an error, so a delete can be retried.
    Delete {
        /// The sandbox's name (or id).
        name: String,
        /// Do not ask for confirmation; succeed if the sandbox is already gone.
        #[arg(short, long)]
        force: bool,
        /// Do not ask for confirmation (same as --force).
        #[arg(short, long)]
        yes: bool,
    },
    /// Stop a running sandbox (its home directory is kept).
    Stop(WaitArgs),
    /// Start a stopped sandbox and wait until it is running.
    Start(WaitArgs),
    /// Run a command inside a sandbox, streaming its output; exits with the command's code.
    Exec(ExecArgs),
    /// Open a shell (or run a command) in a sandbox over SSH, with the system's `ssh`.
    Ssh(ssh::SshArgs),
    /// Open a login shell in a sandbox over SSH, with the CLI's own SSH client (no ssh needed).
    Shell(shell::ShellArgs),
    /// Copy a file into or out of a sandbox over SSH (`NAME:PATH`), with the system's `scp`.
    Cp(ssh::CpArgs),
    /// Send a message to the coding agent in a sandbox and print its reply.
    AgentSend(super::agent::AgentSendArgs),
    /// List a sandbox's agent sessions, most recently used first.
    Sessions {
        /// The sandbox's name (or id).
        name: String,
    },
    /// Show one agent session and its transcript (redacted).
    Session {
        /// The sandbox's name (or id).
        name: String,
        /// The session's id (from `amika sandbox sessions NAME`).
        session_id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The sandbox's name (or id).
    pub name: String,
    /// Return as soon as the server accepted the request.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the new state.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub wait_timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The sandbox's name (or id).
    pub name: String,
    /// Working directory inside the sandbox (default: the workspace).
    #[arg(long)]
    pub cwd: Option<String>,
    /// Kill the command after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

pub async fn run(ctx: &Ctx, cmd: SandboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCommand::Create(args) => create::run(ctx, *args).await?,
        SandboxCommand::List => show::list(ctx).await?,
        SandboxCommand::Get { name } => show::get(ctx, name).await?,
        SandboxCommand::Logs(args) => show::logs(ctx, args).await?,
        SandboxCommand::Delete { name, force, yes } => delete(ctx, name, force || yes).await?,
        SandboxCommand::Stop(args) => stop(ctx, args).await?,
        SandboxCommand::Start(args) => start(ctx, args).await?,
        SandboxCommand::Exec(args) => return exec(ctx, args).await,
        SandboxCommand::Ssh(args) => return ssh::ssh(ctx, args).await,
        SandboxCommand::Cp(args) => return ssh::cp(ctx, args).await,
        SandboxCommand::Shell(args) => return shell::shell(ctx, args).await,
        SandboxCommand::AgentSend(args) => return super::agent::send(ctx, args).await,
        SandboxCommand::Sessions { name } => super::sessions::list(ctx, &name).await?,
        SandboxCommand::Session { name, session_id } => {
            super::sessions::show(ctx, &name, &session_id).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stderr line reporting one kind's resolution, e.g.
/// `Using claude credential "personal-oauth" (oauth, source=request:name)` or
/// `Skipped codex credential (no-agent-credential flag)`.
pub fn resolution_line(r: &ResolvedAgentCredential) -> String {
    match r.outcome {
        ResolutionOutcome::Resolved => {
            let mut line = format!(
                "Using {} credential {:?} ({}, source={})",
                r.kind, r.name, r.credential_type, r.source
            );
            if !r.reason.is_empty() {
                line.push_str(" — ");
                line.push_str(&r.reason);
            }
            line
        }
        ResolutionOutcome::Skipped => {
            let why = if r.reason.is_empty() {
                r.source.as_str()
            } else {
                &r.reason
            };
            format!("Skipped {} credential ({why})", r.kind)
        }
    }
}

fn print_resolution(resolved: &[ResolvedAgentCredential]) {
    for r in resolved {
        eprintln!("{}", resolution_line(r));
    }
}

/// Waits (spinner on a terminal) until the sandbox is in `until` or `failed`.
async fn wait(
    client: &Client,
    name: &str,
    until: SandboxState,
    message: String,
    timeout_secs: u64,
) -> anyhow::Result<Sandbox> {
    let _spinner = Spinner::start(message);
    let sandbox = client
        .wait_for_sandbox(
            name,
            &[until],
            POLL_INTERVAL,
            Duration::from_secs(timeout_secs),
        )
        .await?;
    Ok(sandbox)
}

fn failed_error(sandbox: &Sandbox) -> anyhow::Error {
    anyhow::anyhow!(
        "sandbox {:?} failed: {}",
        sandbox.name,
        sandbox
            .error_message
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or("no reason given")
    )
}

async fn delete(ctx: &Ctx, name: String, yes: bool) -> anyhow::Result<()> {
    let client = ctx.client()?;
    prompt::confirm(
        ctx.output,
        yes,
        "--force (or --yes)",
        &format!("delete sandbox {name:?}"),
        &format!("Delete sandbox {name:?}? Its processes are killed and its files removed."),
    )?;
    // Delete is idempotent for the user who asked not to be asked: with --force/--yes, a
    // sandbox that is already gone is what they wanted (scripts, retries after a timeout).
    // The API itself still answers 404 for a missing sandbox, and without --force so does
    // this command.
    let status = match client.delete_sandbox(&name).await {
        Err(e) if yes && e.status() == Some(404) => {
            if ctx.json() {
                return print_json(&json!({ "ok": true, "deleted": name, "already_gone": true }));
            }
            crate::outln!("Sandbox {name} does not exist: nothing to delete");
            return Ok(());
        }
        other => other?,
    };
    if ctx.json() {
        print_json(&json!({ "ok": status.ok, "deleted": name }))
    } else {
        crate::outln!("Deleted sandbox {name}");
        Ok(())
    }
}

async fn stop(ctx: &Ctx, args: WaitArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    client.stop_sandbox(&args.name).await?;
    settle(ctx, &client, &args, SandboxState::Stopped, "Stopping").await
}

async fn start(ctx: &Ctx, args: WaitArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    client.start_sandbox(&args.name).await?;
    settle(ctx, &client, &args, SandboxState::Running, "Starting").await
}

/// After a stop or start: wait for `target` (unless `--no-wait`) and print the sandbox.
async fn settle(
    ctx: &Ctx,
    client: &Client,
    args: &WaitArgs,
    target: SandboxState,
    doing: &str,
) -> anyhow::Result<()> {
    let sandbox = if args.no_wait {
        client.get_sandbox(&args.name).await?
    } else {
        wait(
            client,
            &args.name,
            target,
            format!("{doing} sandbox {:?}...", args.name),
            args.wait_timeout,
        )
        .await?
    };
    if sandbox.state == SandboxState::Failed {
        return Err(failed_error(&sandbox));
    }
    if ctx.json() {
        return print_json(&sandbox);
    }
    crate::outln!("Sandbox {:?} is {}", sandbox.name, sandbox.state);
    Ok(())
}

/// A command's exit status as this process's: 0–255 as is, a signal death (negative) as
/// 128 + signal like a shell, anything else 1.
pub fn exit_code_for(code: i32) -> u8 {
    match code {
        0..=255 => code as u8,
        -127..=-1 => (128 - code) as u8,
        _ => 1,
    }
}

async fn exec(ctx: &Ctx, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let req = ExecRequest {
        command: args.command,
        cwd: args.cwd,
        timeout_secs: args.timeout,
    };
    let mut stream = client.exec(&args.name, &req).await?;
    let mut stdout_text = String::new();
    let mut stderr_text = String::new();
    let mut outcome: Option<Result<i32, String>> = None;
    while let Some(frame) = stream.next_frame().await {
        match frame? {
            ExecFrame::Stdout { data } => {
                if ctx.json() {
                    stdout_text.push_str(&data);
                } else {
                    let mut out = std::io::stdout().lock();
                    out.write_all(data.as_bytes())
                        .and_then(|_| out.flush())
                        .context("cannot write to stdout")?;
                }
            }
            ExecFrame::Stderr { data } => {
                if ctx.json() {
                    stderr_text.push_str(&data);
                } else {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(data.as_bytes()).and_then(|_| err.flush());
                }
            }
            ExecFrame::Exit { code } => {
                outcome = Some(Ok(code));
                break;
            }
            ExecFrame::Error { message } => {
                outcome = Some(Err(message));
                break;
            }
        }
    }
    let outcome = outcome.unwrap_or_else(|| {
        Err("the server closed the exec stream before the command exited".to_string())
    });
    if ctx.json() {
        let mut doc = json!({
            "stdout": stdout_text,
            "stderr": stderr_text,
            "exit_code": outcome.as_ref().ok(),
        });
        if let Err(message) = &outcome {
            doc["error"] = json!(message);
        }
        print_json(&doc)?;
    }
    match outcome {
        Ok(code) => Ok(ExitCode::from(exit_code_for(code))),
        Err(message) => bail!("exec in sandbox {:?} failed: {message}", args.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amika_types::{AgentKind, ResolutionSource};
    use clap::Parser;

    fn resolved(
        kind: AgentKind,
        name: &str,
        ty: &str,
        source: &str,
        reason: &str,
    ) -> ResolvedAgentCredential {
        ResolvedAgentCredential {
            kind,
            outcome: ResolutionOutcome::Resolved,
            name: name.into(),
            credential_type: ty.into(),
            source: source.parse().unwrap(),
            reason: reason.into(),
        }
    }

    fn skipped(kind: AgentKind, reason: &str) -> ResolvedAgentCredential {
        ResolvedAgentCredential {
            kind,
            outcome: ResolutionOutcome::Skipped,
            name: String::new(),
            credential_type: String::new(),
            source: ResolutionSource::NoCredential,
            reason: reason.into(),
        }
    }

    #[test]
    fn resolution_lines_are_exact() {
        assert_eq!(
            resolution_line(&resolved(
                AgentKind::Claude,
                "personal-oauth",
                "oauth",
                "request:name",
                ""
            )),
            r#"Using claude credential "personal-oauth" (oauth, source=request:name)"#
        );
        assert_eq!(
            resolution_line(&resolved(
                AgentKind::Claude,
                "old",
                "oauth",
                "request:name",
                "oauth token expired at 2024-01-01T00:00:00Z"
            )),
            r#"Using claude credential "old" (oauth, source=request:name) — oauth token expired at 2024-01-01T00:00:00Z"#
        );
        assert_eq!(
            resolution_line(&skipped(AgentKind::Codex, "no-agent-credential flag")),
            "Skipped codex credential (no-agent-credential flag)"
        );
        assert_eq!(
            resolution_line(&skipped(AgentKind::Codex, "no stored credential")),
            "Skipped codex credential (no stored credential)"
        );
    }

    #[test]
    fn exit_codes_map_like_a_shell() {
        assert_eq!(exit_code_for(0), 0);
        assert_eq!(exit_code_for(3), 3);
        assert_eq!(exit_code_for(255), 255);
        assert_eq!(exit_code_for(-9), 137);
        assert_eq!(exit_code_for(256), 1);
    }

    #[test]
    fn exec_takes_the_command_after_double_dash() {
        let cli = crate::commands::Cli::try_parse_from([
            "amika", "sandbox", "exec", "box", "--", "sh", "-c", "echo hi",
        ])
        .unwrap();
        match cli.command {
            crate::commands::Command::Sandbox(SandboxCommand::Exec(args)) => {
                assert_eq!(args.name, "box");
                assert_eq!(args.command, vec!["sh", "-c", "echo hi"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
