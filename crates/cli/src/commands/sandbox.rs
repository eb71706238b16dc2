//! `amika sandbox`: create (with secret and agent-credential injection flags), list, get, stop,
//! start, delete, and exec with streamed output.
//!
//! `create` always sends one agent-credential entry per known kind (see `sandbox_flags`), waits
//! for the sandbox to be `running` (spinner on a terminal), then reports on stderr, one line per
//! kind, which credential was injected or why none was.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use amika_client::Client;
use amika_types::{
    CreateSandboxRequest, ExecFrame, ExecRequest, NetworkMode, ResolutionOutcome,
    ResolvedAgentCredential, Sandbox, SandboxState,
};
use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::Ctx;
use crate::output::{or_dash, print_json, time, Table};
use crate::prompt;
use crate::sandbox_flags;
use crate::spinner::Spinner;

const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Create a sandbox and wait until it is running.
    Create(CreateArgs),
    /// List your sandboxes.
    List,
    /// Show a sandbox, with what was injected into it.
    Get {
        /// The sandbox's name (or id).
        name: String,
    },
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
    /// Send a message to the coding agent in a sandbox and print its reply.
    AgentSend(super::agent::AgentSendArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The sandbox's name (unique among yours).
    #[arg(long)]
    pub name: String,
    /// Inject a secret as an env var: env:VAR=SECRET_NAME or env:SECRET_NAME (repeatable).
    #[arg(long = "secret", value_name = "env:VAR=NAME")]
    pub secrets: Vec<String>,
    /// Use this credential for an agent: KIND=NAME (repeatable, once per kind).
    #[arg(long = "agent-credential", value_name = "KIND=NAME")]
    pub agent_credentials: Vec<String>,
    /// Use a credential of this type for an agent: KIND=TYPE, TYPE oauth|api_key|api-key.
    #[arg(long = "agent-credential-type", value_name = "KIND=TYPE")]
    pub agent_credential_types: Vec<String>,
    /// Inject no credential for this agent kind (repeatable).
    #[arg(long = "no-agent-credential", value_name = "KIND")]
    pub no_agent_credentials: Vec<String>,
    /// Network: egress (default), none, or host (shares the host's network).
    #[arg(long)]
    pub network: Option<NetworkMode>,
    /// Memory limit in MiB.
    #[arg(long, value_name = "MiB")]
    pub memory: Option<u64>,
    /// Maximum number of processes.
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Return as soon as the server accepted the request.
    #[arg(long)]
    pub no_wait: bool,
    /// Only show what would be injected; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for the sandbox to be running.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub wait_timeout: u64,
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
        SandboxCommand::Create(args) => create(ctx, args).await?,
        SandboxCommand::List => list(ctx).await?,
        SandboxCommand::Get { name } => get(ctx, name).await?,
        SandboxCommand::Delete { name, force, yes } => delete(ctx, name, force || yes).await?,
        SandboxCommand::Stop(args) => stop(ctx, args).await?,
        SandboxCommand::Start(args) => start(ctx, args).await?,
        SandboxCommand::Exec(args) => return exec(ctx, args).await,
        SandboxCommand::AgentSend(args) => return super::agent::send(ctx, args).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// The create request from the flags (pure; every flag error happens here, before any request).
pub fn build_request(args: &CreateArgs) -> anyhow::Result<CreateSandboxRequest> {
    if args.name.trim().is_empty() {
        bail!("--name is empty");
    }
    Ok(CreateSandboxRequest {
        name: args.name.clone(),
        secret_env_vars: sandbox_flags::parse_secrets(&args.secrets)?,
        agent_credentials: sandbox_flags::parse_agent_credentials(
            &args.agent_credentials,
            &args.agent_credential_types,
            &args.no_agent_credentials,
        )?,
        network: args.network,
        memory_mib: args.memory,
        pids: args.pids,
        ..Default::default()
    })
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

async fn create(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let req = build_request(&args)?;
    let client = ctx.client()?;
    if args.dry_run {
        let preview = client.resolve_preview(&req).await?;
        if ctx.json() {
            return print_json(&preview);
        }
        for r in &preview.resolved_agent_credentials {
            crate::outln!("{}", resolution_line(r));
        }
        for (var, secret) in &req.secret_env_vars {
            crate::outln!("Secret {secret:?} as ${var}");
        }
        return Ok(());
    }
    if args.network == Some(NetworkMode::Host) {
        eprintln!(
            "warning: --network host: the sandbox shares the host's network (no network isolation)"
        );
    }
    let mut sandbox = client.create_sandbox(&req).await?;
    let settled = matches!(sandbox.state, SandboxState::Running | SandboxState::Failed);
    if !args.no_wait && !settled {
        sandbox = wait(
            &client,
            &sandbox.id,
            SandboxState::Running,
            format!("Creating sandbox {:?}...", sandbox.name),
            args.wait_timeout,
        )
        .await?;
    }
    print_resolution(&sandbox.resolved_agent_credentials);
    if sandbox.state == SandboxState::Failed {
        return Err(failed_error(&sandbox));
    }
    if ctx.json() {
        return print_json(&sandbox);
    }
    crate::outln!(
        "Sandbox {:?} is {} (id {})",
        sandbox.name,
        sandbox.state,
        sandbox.id
    );
    if !sandbox.secret_names.is_empty() {
        crate::outln!("Secrets: {}", sandbox.secret_names.join(", "));
    }
    Ok(())
}

/// `claude=personal-oauth codex=-`: what each kind got.
fn credentials_summary(resolved: &[ResolvedAgentCredential]) -> String {
    if resolved.is_empty() {
        return "-".to_string();
    }
    resolved
        .iter()
        .map(|r| match r.outcome {
            ResolutionOutcome::Resolved => format!("{}={}", r.kind, r.name),
            ResolutionOutcome::Skipped => format!("{}=-", r.kind),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let sandboxes = ctx.client()?.list_sandboxes().await?;
    if ctx.json() {
        return print_json(&sandboxes);
    }
    let mut table = Table::new(&["NAME", "STATE", "CREDENTIALS", "SECRETS", "CREATED"]);
    for s in &sandboxes {
        table.row(vec![
            s.name.clone(),
            s.state.to_string(),
            credentials_summary(&s.resolved_agent_credentials),
            if s.secret_names.is_empty() {
                "-".to_string()
            } else {
                s.secret_names.join(",")
            },
            time(&s.created_at),
        ]);
    }
    table.print()?;
    Ok(())
}

async fn get(ctx: &Ctx, name: String) -> anyhow::Result<()> {
    let s = ctx.client()?.get_sandbox(&name).await?;
    if ctx.json() {
        return print_json(&s);
    }
    crate::outln!("Name:      {}", s.name);
    crate::outln!("ID:        {}", s.id);
    crate::outln!("State:     {}", s.state);
    if let Some(error) = s.error_message.as_deref().filter(|e| !e.is_empty()) {
        crate::outln!("Error:     {error}");
    }
    crate::outln!("Provider:  {}", s.provider);
    crate::outln!("Network:   {}", s.network);
    crate::outln!(
        "Memory:    {}",
        or_dash(s.memory_mib.map(|m| format!("{m} MiB")))
    );
    crate::outln!("Pids:      {}", or_dash(s.pids));
    crate::outln!("Created:   {}", time(&s.created_at));
    crate::outln!("Updated:   {}", time(&s.updated_at));
    crate::outln!(
        "Secrets:   {}",
        if s.secret_names.is_empty() {
            "-".to_string()
        } else {
            s.secret_names.join(", ")
        }
    );
    crate::outln!();
    let mut table = Table::new(&["KIND", "OUTCOME", "NAME", "TYPE", "SOURCE", "REASON"]);
    for r in &s.resolved_agent_credentials {
        table.row(vec![
            r.kind.to_string(),
            match r.outcome {
                ResolutionOutcome::Resolved => "resolved",
                ResolutionOutcome::Skipped => "skipped",
            }
            .to_string(),
            or_dash(Some(&r.name)),
            or_dash(Some(&r.credential_type)),
            r.source.to_string(),
            or_dash(Some(&r.reason)),
        ]);
    }
    table.print()?;
    Ok(())
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
    use amika_types::{AgentCredentialRef, AgentKind, CredentialType, ResolutionSource};
    use clap::Parser;

    fn parse_create(argv: &[&str]) -> CreateArgs {
        let mut full = vec!["amika", "sandbox", "create"];
        full.extend_from_slice(argv);
        let cli = crate::commands::Cli::try_parse_from(full).unwrap();
        match cli.command {
            crate::commands::Command::Sandbox(SandboxCommand::Create(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_request_always_has_one_entry_per_kind() {
        let args = parse_create(&["--name", "b"]);
        let req = build_request(&args).unwrap();
        let kinds: Vec<AgentKind> = req.agent_credentials.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, AgentKind::ALL.to_vec());
        assert!(req
            .agent_credentials
            .iter()
            .all(|r| r.name.is_none() && r.credential_type.is_none() && !r.none));
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json["agent_credentials"],
            serde_json::json!([{"kind":"claude"},{"kind":"codex"}])
        );
    }

    #[test]
    fn the_design_example_builds_the_expected_request() {
        let args = parse_create(&[
            "--name",
            "dev-box",
            "--secret",
            "env:ANTHROPIC_API_KEY=my-claude-key",
            "--secret",
            "env:DATABASE_URL",
            "--agent-credential",
            "claude=personal-oauth",
            "--agent-credential-type",
            "codex=api-key",
            "--network",
            "none",
            "--memory",
            "512",
            "--pids",
            "64",
        ]);
        let req = build_request(&args).unwrap();
        assert_eq!(req.name, "dev-box");
        assert_eq!(req.secret_env_vars["ANTHROPIC_API_KEY"], "my-claude-key");
        assert_eq!(req.secret_env_vars["DATABASE_URL"], "DATABASE_URL");
        assert_eq!(
            req.agent_credentials,
            vec![
                AgentCredentialRef {
                    kind: AgentKind::Claude,
                    name: Some("personal-oauth".into()),
                    credential_type: None,
                    none: false
                },
                AgentCredentialRef {
                    kind: AgentKind::Codex,
                    name: None,
                    credential_type: Some(CredentialType::ApiKey),
                    none: false
                },
            ]
        );
        assert_eq!(req.network, Some(NetworkMode::None));
        assert_eq!(req.memory_mib, Some(512));
        assert_eq!(req.pids, Some(64));
        // `type` is serialised as the canonical api_key.
        let json = serde_json::to_string(&req.agent_credentials).unwrap();
        assert!(json.contains(r#""type":"api_key""#), "{json}");
    }

    #[test]
    fn flag_errors_surface_from_build_request() {
        let args = parse_create(&["--name", "b", "--secret", "foo"]);
        let err = build_request(&args).unwrap_err().to_string();
        assert!(err.contains(r#"invalid --secret "foo""#), "{err}");
    }

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
    fn credentials_summary_lists_each_kind() {
        let rs = vec![
            resolved(AgentKind::Claude, "p", "oauth", "user_default", ""),
            skipped(AgentKind::Codex, "no stored credential"),
        ];
        assert_eq!(credentials_summary(&rs), "claude=p codex=-");
        assert_eq!(credentials_summary(&[]), "-");
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
