//! The `amika` command tree (clap derive) and its dispatch; one file per subcommand group.
//!
//! Shared here: the global `-o/--output` flag, the [`Ctx`] every command gets (output format and
//! an authenticated client built from the config), and the one-line error rendering.

pub mod admin;
pub mod agent;
pub mod audit;
pub mod auth;
pub mod credential;
pub mod extract;
pub mod preset;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod sessions;
pub mod snapshot;
pub mod ssh_key;
pub mod up;

use std::process::ExitCode;

use amika_client::Client;
use anyhow::bail;
use clap::{Parser, Subcommand};

use crate::config::{self, Settings};
use crate::output::OutputFormat;

/// amika: run AI coding agents in sandboxes, with secrets and agent credentials injected from an
/// encrypted vault.
#[derive(Debug, Parser)]
#[command(name = "amika", version, propagate_version = true)]
pub struct Cli {
    /// Output format: human-readable text, or only JSON on stdout (never prompts).
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local server (embedded SQLite, local sandboxes) and log the CLI in to it.
    Up(up::UpArgs),
    /// Run the server, or administer its data (`rotate-key`).
    Server(server::ServerArgs),
    /// Log in, show the login, manage your API keys.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Manage orgs and users (admins only).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Manage secrets, agent credentials and GitHub tokens (`secret claude|codex|github ...`).
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Create, inspect, run commands in and delete sandboxes.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// Show recent audit events.
    Audit(audit::AuditArgs),
    /// The server's presets (e.g. coder: the real Claude Code and Codex CLIs): list, install,
    /// update, remove.
    #[command(subcommand)]
    Preset(preset::PresetCommand),
    /// Capture a prepared sandbox and start new ones from it: create, list, get, delete.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
}

impl Command {
    /// Whether this command runs a server in this process (rather than talking to one).
    pub fn serves(&self) -> bool {
        matches!(self, Command::Up(_) | Command::Server(_))
    }
}

/// What the hand-written `Debug` of an argument struct shows instead of a value it carries.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// What every command gets: the output format and access to the configured server.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub output: OutputFormat,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.output.is_json()
    }

    /// The effective settings (env over config file over defaults).
    pub fn settings(&self) -> anyhow::Result<Settings> {
        config::load()
    }

    /// A client with the configured API key; an error telling how to log in when there is none.
    pub fn client(&self) -> anyhow::Result<Client> {
        let settings = self.settings()?;
        let Some(key) = settings.api_key else {
            bail!(
                "not logged in: run `amika auth login --url URL --api-key KEY` (or `amika up`), or set {}",
                config::ENV_KEY
            );
        };
        Ok(Client::new(settings.url, Some(key)))
    }
}

/// Runs a parsed command line; the exit code is the command's (exec passes its command's on).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx { output: cli.output };
    match cli.command {
        Command::Up(args) => up::run(args).await?,
        Command::Server(args) => server::run(args, ctx.output).await?,
        Command::Auth(cmd) => auth::run(&ctx, cmd).await?,
        Command::Admin(cmd) => admin::run(&ctx, cmd).await?,
        Command::Secret(cmd) => secret::run(&ctx, cmd).await?,
        Command::Sandbox(cmd) => return sandbox::run(&ctx, cmd).await,
        Command::Audit(args) => audit::run(&ctx, args).await?,
        Command::Preset(cmd) => preset::run(&ctx, cmd).await?,
        Command::Snapshot(cmd) => snapshot::run(&ctx, cmd).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// An error chain as one line: the contexts and causes joined by `: `, line breaks flattened.
/// An API error shows its message and code (`Display` of `ClientError::Api`).
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // A client error already says everything; its transport causes are noise here.
        let is_client_error = cause.downcast_ref::<amika_client::ClientError>().is_some();
        if !parts.iter().any(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        if is_client_error {
            break;
        }
    }
    parts
        .join(": ")
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn errors_render_on_one_line_with_context() {
        let err = Err::<(), _>(std::io::Error::other("disk\nfull"))
            .context("cannot write x")
            .unwrap_err();
        assert_eq!(one_line(&err), "cannot write x: disk full");
    }

    #[test]
    fn api_errors_show_message_and_code() {
        let err = anyhow::Error::new(amika_client::ClientError::Api {
            status: 409,
            code: "secret_exists".into(),
            message: "secret \"A\" already exists".into(),
            trace_id: None,
            details: vec![],
        });
        assert_eq!(
            one_line(&err),
            "secret \"A\" already exists (secret_exists)"
        );
    }
}
