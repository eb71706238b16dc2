//! `amika sandbox list`, `get` and `logs`: what a sandbox is, holds and did. Also the reading
//! of a setup log, which `create` uses to show the script's output live.

use std::io::Write;

use amika_client::Client;
use amika_types::{
    ExecFrame, RepoConfigApplied, ResolutionOutcome, ResolvedAgentCredential, Sandbox,
    SetupOutcome, SetupState,
};
use anyhow::{bail, Context};
use serde_json::json;

use super::workspace::WORKSPACE;
use super::Ctx;
use crate::output::{or_dash, print_json, time, Table};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The sandbox's name (or id).
    pub name: String,
    /// The setup script's output (stdout and stderr, redacted), the log a sandbox keeps.
    #[arg(long, required = true)]
    pub setup: bool,
    /// While the setup script still runs, keep printing its output until it ends.
    #[arg(short, long)]
    pub follow: bool,
}

/// `claude=personal-oauth codex=-`: what each kind got.
pub fn credentials_summary(resolved: &[ResolvedAgentCredential]) -> String {
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

fn joined(items: &[impl AsRef<str>], separator: &str) -> String {
    if items.is_empty() {
        return "-".to_string();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(separator)
}

pub async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let sandboxes = ctx.client()?.list_sandboxes().await?;
    if ctx.json() {
        return print_json(&sandboxes);
    }
    let mut table = Table::new(&[
        "NAME",
        "STATE",
        "REPO",
        "BRANCH",
        "CREDENTIALS",
        "SECRETS",
        "CREATED",
    ]);
    for s in &sandboxes {
        table.row(vec![
            s.name.clone(),
            s.state.to_string(),
            or_dash(s.repo_name.as_ref()),
            or_dash(s.branch.as_ref()),
            credentials_summary(&s.resolved_agent_credentials),
            joined(&s.secret_names, ","),
            time(&s.created_at),
        ]);
    }
    table.print()?;
    Ok(())
}

/// `-` for none; `30 min`.
fn minutes(m: Option<f64>) -> String {
    or_dash(m.filter(|m| *m > 0.0).map(|m| format!("{m} min")))
}

/// What a repository's `.amika/config.toml` contributed, on one line.
pub fn repo_config_summary(applied: &RepoConfigApplied) -> String {
    let kinds: Vec<String> = applied
        .agent_credentials
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "env vars {}; secret env vars {}; credentials {}; setup script {}",
        joined(&applied.env_vars, ", "),
        joined(&applied.secret_env_vars, ", "),
        joined(&kinds, ", "),
        or_dash(applied.setup_script.as_ref()),
    )
}

/// `failed (exit 3), script from the request, 12:00:01 to 12:00:03`.
pub fn setup_summary(setup: &SetupOutcome) -> String {
    let mut line = setup.state.to_string();
    if let Some(code) = setup.exit_code {
        line.push_str(&format!(" (exit {code})"));
    }
    match (&setup.script, setup.source.as_str()) {
        (Some(path), _) => line.push_str(&format!(", {path} from .amika/config.toml")),
        (None, "request") => line.push_str(", script from the request"),
        (None, other) => line.push_str(&format!(", script from {other}")),
    }
    if let Some(started) = &setup.started_at {
        line.push_str(&format!(", {}", time(started)));
        if let Some(ended) = &setup.ended_at {
            line.push_str(&format!(" to {}", time(ended)));
        }
    }
    line
}

pub async fn get(ctx: &Ctx, name: String) -> anyhow::Result<()> {
    let s = ctx.client()?.get_sandbox(&name).await?;
    if ctx.json() {
        return print_json(&s);
    }
    print_overview(&s)?;
    print_workspace(&s)?;
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

fn print_overview(s: &Sandbox) -> anyhow::Result<()> {
    crate::outln!("Name:      {}", s.name);
    crate::outln!("ID:        {}", s.id);
    crate::outln!("State:     {}", s.state);
    if let Some(error) = s.error_message.as_deref().filter(|e| !e.is_empty()) {
        crate::outln!("Error:     {error}");
    }
    crate::outln!("Provider:  {}", s.provider);
    crate::outln!("Network:   {}", s.network);
    crate::outln!("Size:      {}", or_dash(s.size));
    crate::outln!(
        "Memory:    {}",
        or_dash(s.memory_mib.map(|m| format!("{m} MiB")))
    );
    crate::outln!("Pids:      {}", or_dash(s.pids));
    crate::outln!("Preset:    {}", or_dash(s.preset.as_ref()));
    crate::outln!(
        "Idle:      stop after {}, delete after {}",
        minutes(s.auto_stop_interval),
        minutes(s.auto_delete_interval)
    );
    crate::outln!("Created:   {}", time(&s.created_at));
    crate::outln!("Updated:   {}", time(&s.updated_at));
    crate::outln!("Secrets:   {}", joined(&s.secret_names, ", "));
    let env: Vec<String> = s.env_vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    crate::outln!("Env vars:  {}", joined(&env, " "));
    Ok(())
}

fn print_workspace(s: &Sandbox) -> anyhow::Result<()> {
    match &s.repo_name {
        Some(name) => {
            crate::outln!("Repo:      {name} ({WORKSPACE}/{name})");
            crate::outln!("Repo URL:  {}", or_dash(s.repo_url.as_ref()));
            crate::outln!("Branch:    {}", or_dash(s.branch.as_ref()));
            crate::outln!("Commit:    {}", or_dash(s.commit_hash.as_ref()));
        }
        None => crate::outln!("Repo:      - (empty workspace)"),
    }
    match &s.repo_config {
        Some(applied) => {
            crate::outln!("Repo config (.amika/config.toml):");
            crate::outln!("  env vars:        {}", joined(&applied.env_vars, ", "));
            crate::outln!(
                "  secret env vars: {}",
                joined(&applied.secret_env_vars, ", ")
            );
            let kinds: Vec<String> = applied
                .agent_credentials
                .iter()
                .map(ToString::to_string)
                .collect();
            crate::outln!("  credentials:     {}", joined(&kinds, ", "));
            crate::outln!(
                "  setup script:    {}",
                or_dash(applied.setup_script.as_ref())
            );
        }
        None => crate::outln!("Repo config: -"),
    }
    crate::outln!(
        "Setup:     {}",
        or_dash(s.setup.as_ref().map(setup_summary))
    );
    Ok(())
}

/// Where the frames of a setup log go while they are read.
#[derive(Debug, Clone, Copy)]
pub enum SetupLogText {
    /// Written as they come: stderr frames to stderr, stdout frames to stdout (or to stderr,
    /// with `stdout_to_stderr`, when stdout is kept for one JSON document).
    Live { stdout_to_stderr: bool },
    /// Only collected.
    Collect,
}

/// A setup log as read: its output, and how the script ended.
#[derive(Debug, Default)]
pub struct SetupLogRead {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
    /// Why the script did not run or finish (an `error` frame).
    pub error: Option<String>,
}

/// Reads a sandbox's setup log (`follow`: until the script ends), writing it as `text` says.
/// An API error (404: no script ran) is returned as the client's error.
pub async fn stream_setup_log(
    client: &Client,
    id_or_name: &str,
    follow: bool,
    text: SetupLogText,
) -> anyhow::Result<SetupLogRead> {
    let mut stream = client.setup_log(id_or_name, follow).await?;
    let mut read = SetupLogRead::default();
    while let Some(frame) = stream.next_frame().await {
        match frame? {
            ExecFrame::Stdout { data } => {
                match text {
                    SetupLogText::Live {
                        stdout_to_stderr: false,
                    } => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(data.as_bytes())
                            .and_then(|_| out.flush())
                            .context("cannot write to stdout")?;
                    }
                    SetupLogText::Live {
                        stdout_to_stderr: true,
                    } => write_stderr(&data),
                    SetupLogText::Collect => {}
                }
                read.stdout.push_str(&data);
            }
            ExecFrame::Stderr { data } => {
                if matches!(text, SetupLogText::Live { .. }) {
                    write_stderr(&data);
                }
                read.stderr.push_str(&data);
            }
            ExecFrame::Exit { code } => read.exit_code = Some(code),
            ExecFrame::Error { message } => read.error = Some(message),
        }
    }
    Ok(read)
}

fn write_stderr(data: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(data.as_bytes()).and_then(|_| err.flush());
}

pub async fn logs(ctx: &Ctx, args: LogsArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let sandbox = client.get_sandbox(&args.name).await?;
    let text = if ctx.json() {
        SetupLogText::Collect
    } else {
        SetupLogText::Live {
            stdout_to_stderr: false,
        }
    };
    let read = match stream_setup_log(&client, &sandbox.id, args.follow, text).await {
        Ok(read) => read,
        Err(e)
            if e.downcast_ref::<amika_client::ClientError>()
                .and_then(|c| c.status())
                == Some(404) =>
        {
            let skipped = sandbox
                .setup
                .as_ref()
                .is_some_and(|s| s.state == SetupState::Skipped);
            if skipped {
                bail!(
                    "{} ran no setup script (it was skipped: --no-setup)",
                    args.name
                );
            }
            bail!("{} ran no setup script", args.name);
        }
        Err(e) => return Err(e),
    };
    if ctx.json() {
        return print_json(&json!({
            "sandbox": sandbox.name,
            "stdout": read.stdout,
            "stderr": read.stderr,
            "exit_code": read.exit_code,
            "error": read.error,
        }));
    }
    match (read.exit_code, read.error) {
        (Some(code), _) => eprintln!("(the setup script exited with {code})"),
        (None, Some(e)) => eprintln!("(the setup script did not finish: {e})"),
        (None, None) => eprintln!("(the setup script is still running: --follow waits for it)"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use amika_types::{AgentKind, ResolutionSource};

    fn resolved(kind: AgentKind, name: &str) -> ResolvedAgentCredential {
        ResolvedAgentCredential {
            kind,
            outcome: ResolutionOutcome::Resolved,
            name: name.into(),
            credential_type: "oauth".into(),
            source: ResolutionSource::UserDefault,
            reason: String::new(),
        }
    }

    #[test]
    fn credentials_summary_lists_each_kind() {
        let mut codex = resolved(AgentKind::Codex, "");
        codex.outcome = ResolutionOutcome::Skipped;
        let rs = vec![resolved(AgentKind::Claude, "p"), codex];
        assert_eq!(credentials_summary(&rs), "claude=p codex=-");
        assert_eq!(credentials_summary(&[]), "-");
    }

    #[test]
    fn repo_config_and_setup_read_on_one_line() {
        let applied = RepoConfigApplied {
            env_vars: vec!["NODE_ENV".into(), "PORT".into()],
            secret_env_vars: vec![],
            agent_credentials: vec![AgentKind::Claude],
            setup_script: Some("scripts/setup.sh".into()),
        };
        assert_eq!(
            repo_config_summary(&applied),
            "env vars NODE_ENV, PORT; secret env vars -; credentials claude; setup script scripts/setup.sh"
        );
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let setup = SetupOutcome {
            source: "request".into(),
            script: None,
            state: SetupState::Failed,
            exit_code: Some(3),
            started_at: Some(at),
            ended_at: Some(at),
        };
        assert_eq!(
            setup_summary(&setup),
            "failed (exit 3), script from the request, 2026-01-02 03:04:05 to 2026-01-02 03:04:05"
        );
        let setup = SetupOutcome {
            source: "repo_config".into(),
            script: Some("scripts/setup.sh".into()),
            state: SetupState::Pending,
            exit_code: None,
            started_at: None,
            ended_at: None,
        };
        assert_eq!(
            setup_summary(&setup),
            "pending, scripts/setup.sh from .amika/config.toml"
        );
        assert_eq!(minutes(None), "-");
        assert_eq!(minutes(Some(0.0)), "-");
        assert_eq!(minutes(Some(30.0)), "30 min");
    }
}
