//! `amika secret`: generic secrets for env injection (push, list, delete, reveal), and the
//! `claude`/`codex`/`github` credential subcommands and `extract`, which live in their own files.
//!
//! `push` merges its sources with precedence `--from-file` < positional `KEY=VALUE` <
//! `--from-env`, shows a masked preview, asks, then sends them all in one request
//! (`POST /secret-batches`): the server creates each secret or stores a new version of the
//! caller's existing one in the same scope, all or nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use amika_client::{Page, PAGE_SIZE};
use amika_types::{Scope, SecretBatchAction, SecretBatchEntry, SecretBatchRequest, SecretSummary};
use anyhow::{bail, Context};
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::credential::{self, CredentialCommand};
use super::extract::{self, ExtractArgs};
use super::ssh_key::{self, SshKeyCommand};
use super::Ctx;
use crate::dotenv;
use crate::output::{mask_for_table, or_dash, print_json, time, PagedOutput, Table};
use crate::prompt;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store secrets (masked preview, then [y/N]); an existing name gets a new version. All are
    /// stored or none (one request).
    Push(PushArgs),
    /// List the secrets you can use (never their values).
    List,
    /// Delete one of your secrets.
    Delete {
        /// The secret's name (or id).
        name: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Print a secret's value (audited).
    Reveal {
        /// The secret's name (or id).
        name: String,
    },
    /// Manage Claude credentials.
    #[command(subcommand)]
    Claude(CredentialCommand),
    /// Manage Codex credentials.
    #[command(subcommand)]
    Codex(CredentialCommand),
    /// Manage GitHub tokens: they clone private repositories over HTTPS (your default one for
    /// GitHub hosts, or the one named with `sandbox create --git-credential NAME`); never
    /// injected into a sandbox as an agent credential. Type api_key only.
    #[command(subcommand)]
    Github(CredentialCommand),
    /// Find the agent credentials on this machine (and push them with --push).
    Extract(ExtractArgs),
    /// Manage the SSH public keys that log you in to your sandboxes as
    /// `ssh -p PORT SANDBOX_NAME@HOST` (or `amika sandbox ssh NAME --key`).
    #[command(subcommand, name = "ssh-key")]
    SshKey(SshKeyCommand),
}

/// `Debug` is written by hand below: the `KEY=VALUE` pairs carry values.
#[derive(clap::Args)]
pub struct PushArgs {
    /// Secrets as KEY=VALUE.
    #[arg(value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
    /// Read KEY=VALUE lines from a .env file. Values are taken verbatim, as the public Amika
    /// CLI takes them: quotes, ` #` comments and `$VAR` stay part of the value (only a trailing
    /// `\r` is dropped). Such lines and keys set twice get a warning on stderr, with the file and
    /// line, never the value.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Read these environment variables of this process (comma-separated).
    #[arg(long, value_name = "VAR,...", value_delimiter = ',')]
    pub from_env: Vec<String>,
    /// Who can use the secrets: only you (user) or your whole org (org).
    #[arg(long, default_value = "user")]
    pub scope: Scope,
    /// A description stored with every pushed secret.
    #[arg(long)]
    pub description: Option<String>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

impl std::fmt::Debug for PushArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The names only; a pair without `=` may be all value.
        let pairs: Vec<String> = self
            .pairs
            .iter()
            .map(|p| match p.split_once('=') {
                Some((key, _)) => format!("{key}={}", super::REDACTED),
                None => super::REDACTED.to_string(),
            })
            .collect();
        f.debug_struct("PushArgs")
            .field("pairs", &pairs)
            .field("from_file", &self.from_file)
            .field("from_env", &self.from_env)
            .field("scope", &self.scope)
            .field("description", &self.description)
            .field("yes", &self.yes)
            .finish()
    }
}

pub async fn run(ctx: &Ctx, cmd: SecretCommand) -> anyhow::Result<()> {
    match cmd {
        SecretCommand::Push(args) => push(ctx, args).await,
        SecretCommand::List => list(ctx).await,
        SecretCommand::Delete { name, yes } => delete(ctx, name, yes).await,
        SecretCommand::Reveal { name } => reveal(ctx, name).await,
        SecretCommand::Claude(cmd) => {
            credential::run(ctx, amika_types::AgentKind::Claude, cmd).await
        }
        SecretCommand::Codex(cmd) => credential::run(ctx, amika_types::AgentKind::Codex, cmd).await,
        SecretCommand::Github(cmd) => {
            credential::run(ctx, amika_types::AgentKind::Github, cmd).await
        }
        SecretCommand::Extract(args) => extract::run(ctx, args).await,
        SecretCommand::SshKey(cmd) => ssh_key::run(ctx, cmd).await,
    }
}

/// Merges the push sources (file < positional < env) into name → value. Pure: the file's
/// content and the environment are passed in.
pub fn collect_values(
    file: Option<(&str, &str)>,
    pairs: &[String],
    env_names: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    if let Some((name, content)) = file {
        for (key, value) in dotenv::parse(name, content)? {
            origin.insert(key.clone(), format!("in {name}"));
            values.insert(key, value);
        }
    }
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("invalid argument {pair:?}: expected KEY=VALUE");
        };
        let key = key.trim();
        if key.is_empty() {
            // Not quoted: all there is to quote is the value.
            bail!("invalid argument: expected KEY=VALUE, found an empty key before '='");
        }
        origin.insert(key.to_string(), "on the command line".to_string());
        values.insert(key.to_string(), value.to_string());
    }
    for name in env_names {
        let name = name.trim();
        if name.is_empty() {
            bail!("--from-env: empty variable name");
        }
        let Some(value) = env(name) else {
            bail!("--from-env: environment variable {name} is not set");
        };
        origin.insert(name.to_string(), "in the environment".to_string());
        values.insert(name.to_string(), value);
    }
    if let Some((key, _)) = values.iter().find(|(_, v)| v.is_empty()) {
        bail!(
            "empty value for {key} ({}): a secret needs a value",
            origin[key]
        );
    }
    // Checked here, before anything is sent, so that one bad name (say `export FOO` from a
    // shell-style .env) does not leave the names before it pushed and the rest not.
    if let Some(key) = values.keys().find(|k| !is_secret_name(k)) {
        bail!(
            "invalid secret name {key:?} ({}): expected {SECRET_NAME_FORM}; nothing was pushed",
            origin[key]
        );
    }
    Ok(values)
}

/// What the server accepts as a secret name (`validate::object_name` there, which stays the
/// authority; this copy only lets a push fail before its first request).
const SECRET_NAME_FORM: &str =
    "letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (at most 128)";

fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && name.chars().count() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// What a push did to one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
}

impl Action {
    /// What a push will do, given whether the caller already has the name in that scope.
    pub fn planned(exists: bool) -> Self {
        if exists {
            Action::Updated
        } else {
            Action::Created
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Action::Created => "Created",
            Action::Updated => "Updated",
        }
    }
    /// The preview table's ACTION cell.
    pub fn preview(self) -> &'static str {
        match self {
            Action::Created => "Create",
            Action::Updated => "Update",
        }
    }
}

/// The caller's secret named `name` in `scope`, if any (the list holds only the caller's user
/// secrets and their org's secrets, so name and scope identify it).
fn find_secret<'a>(
    secrets: &'a [SecretSummary],
    name: &str,
    scope: Scope,
) -> Option<&'a SecretSummary> {
    secrets.iter().find(|s| s.name == name && s.scope == scope)
}

async fn push(ctx: &Ctx, args: PushArgs) -> anyhow::Result<()> {
    let file = match &args.from_file {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("--from-file: cannot read {}", path.display()))?,
        )),
        None => None,
    };
    if let Some((name, content)) = &file {
        for warning in dotenv::warnings(name, content) {
            eprintln!("warning: {warning}");
        }
    }
    let values = collect_values(
        file.as_ref().map(|(n, c)| (n.as_str(), c.as_str())),
        &args.pairs,
        &args.from_env,
        |name| std::env::var(name).ok(),
    )?;
    if values.is_empty() {
        bail!("nothing to push: give KEY=VALUE arguments, --from-file FILE or --from-env VARS");
    }
    prompt::ensure_can_confirm(ctx.output, args.yes, "--yes", "push")?;

    let client = ctx.client()?;
    let existing = client.list_secrets().await?;
    let plan: Vec<(&String, &String, Option<String>)> = values
        .iter()
        .map(|(k, v)| {
            (
                k,
                v,
                find_secret(&existing, k, args.scope).map(|s| s.id.clone()),
            )
        })
        .collect();

    if !ctx.json() {
        let mut table = Table::new(&["NAME", "VALUE", "SCOPE", "ACTION"]);
        for (name, value, id) in &plan {
            table.row(vec![
                name.to_string(),
                mask_for_table(value),
                args.scope.to_string(),
                Action::planned(id.is_some()).preview().to_string(),
            ]);
        }
        table.eprint();
    }
    let count = plan.len();
    prompt::confirm(
        ctx.output,
        args.yes,
        "--yes",
        "push",
        &format!(
            "Push {count} secret{} to {}?",
            if count == 1 { "" } else { "s" },
            client.base_url()
        ),
    )?;

    let secrets = plan
        .iter()
        .map(|(name, value, _)| SecretBatchEntry {
            name: name.to_string(),
            value: value.to_string(),
            scope: Some(args.scope),
            description: args.description.clone(),
        })
        .collect();
    send_batch(ctx, &client, secrets).await
}

/// Push `secrets` in one request, with a progress line for big pushes, and print what was done.
async fn send_batch(
    ctx: &Ctx,
    client: &amika_client::Client,
    secrets: Vec<SecretBatchEntry>,
) -> anyhow::Result<()> {
    let count = secrets.len();
    let progress = Progress::new(count);
    let on_sent = {
        let progress = progress.clone();
        move |sent, total| progress.sent(sent, total)
    };
    let pushed = client
        .push_secrets(&SecretBatchRequest { secrets }, on_sent)
        .await;
    progress.clear();
    let pushed = match pushed {
        Ok(pushed) => pushed,
        Err(e) if e.status() == Some(413) => bail!(
            "cannot push {count} secrets: the request is larger than the server's \
             max_body_bytes (server config; 1 MiB by default): raise it, or push the secrets in \
             several smaller pushes (each of them all or nothing by itself); nothing was stored"
        ),
        Err(e) => {
            return Err(anyhow::Error::new(e).context("cannot push the secrets: nothing was stored"))
        }
    };
    let mut results = Vec::new();
    for r in pushed.secrets {
        let action = match r.action {
            SecretBatchAction::Created => Action::Created,
            SecretBatchAction::Updated => Action::Updated,
        };
        if !ctx.json() {
            crate::outln!("{} {}", action.label(), r.secret.name);
        }
        results.push(json!({
            "name": r.secret.name,
            "action": action,
            "id": r.secret.id,
            "version": r.secret.version,
            "scope": r.secret.scope,
        }));
    }
    if ctx.json() {
        print_json(&results)?;
    }
    Ok(())
}

/// What a big push shows on a terminal's stderr while its one request is sent and stored:
/// the share of the body sent, then that the server is storing it. Nothing for small pushes,
/// or when stderr is not a terminal.
#[derive(Debug, Clone)]
struct Progress {
    count: usize,
    shown: bool,
}

impl Progress {
    /// Pushes of fewer secrets than this are quick: no progress line.
    const FROM: usize = 200;

    fn new(count: usize) -> Self {
        Progress {
            count,
            shown: count >= Self::FROM && crate::prompt::stderr_is_tty(),
        }
    }

    fn sent(&self, sent: usize, total: usize) {
        if !self.shown {
            return;
        }
        let line = if sent < total {
            format!(
                "Sending {} secrets: {} of {} KiB",
                self.count,
                sent / 1024,
                total.div_ceil(1024)
            )
        } else {
            format!("Storing {} secrets (all or nothing)...", self.count)
        };
        eprint!("\r\x1b[2K{line}");
    }

    fn clear(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Prints a page at a time as the pages arrive, so thousands of secrets start showing at once.
async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let mut out = if ctx.json() {
        PagedOutput::json()
    } else {
        PagedOutput::table(&[
            "NAME",
            "SCOPE",
            "VERSION",
            "CREATED",
            "UPDATED",
            "DESCRIPTION",
        ])
    };
    let mut cursor: Option<String> = None;
    loop {
        let page: Page<SecretSummary> = client
            .list_page("/secrets", PAGE_SIZE, cursor.as_deref())
            .await?;
        out.page(&page.items, |s| {
            vec![
                s.name.clone(),
                s.scope.to_string(),
                s.version.to_string(),
                time(&s.created_at),
                time(&s.updated_at),
                or_dash(s.description.as_ref()),
            ]
        })?;
        match page.next_cursor {
            Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
            _ => break,
        }
    }
    out.finish()
}

async fn delete(ctx: &Ctx, name: String, yes: bool) -> anyhow::Result<()> {
    let client = ctx.client()?;
    prompt::confirm(
        ctx.output,
        yes,
        "--yes",
        &format!("delete secret {name:?}"),
        &format!("Delete secret {name:?}? Sandboxes that map it can no longer be created."),
    )?;
    client.delete_secret(&name).await?;
    if ctx.json() {
        print_json(&json!({ "deleted": name }))
    } else {
        crate::outln!("Deleted secret {name}");
        Ok(())
    }
}

async fn reveal(ctx: &Ctx, name: String) -> anyhow::Result<()> {
    let revealed = ctx.client()?.reveal_secret(&name).await?;
    if ctx.json() {
        print_json(&json!({ "name": name, "value": revealed.value }))
    } else {
        crate::outln!("{}", revealed.value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn sources_merge_file_then_positional_then_env() {
        let env = |name: &str| (name == "B" || name == "C").then(|| format!("env-{name}"));
        let values = collect_values(
            Some((".env", "A=file-a\nB=file-b\nC=file-c\nD=file-d\n")),
            &strings(&["B=pos-b", "D=pos-d", "E=pos=e"]),
            &strings(&["B", "C"]),
            env,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A", "file-a"),
                ("B", "env-B"),
                ("C", "env-C"),
                ("D", "pos-d"),
                ("E", "pos=e"),
            ]
        );
    }

    #[test]
    fn positional_without_equals_names_it() {
        let err = collect_values(None, &strings(&["DATABASE_URL"]), &[], no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument \"DATABASE_URL\": expected KEY=VALUE"
        );
    }

    #[test]
    fn positional_with_empty_key_is_an_error() {
        let err = collect_values(None, &strings(&["=v"]), &[], no_env).unwrap_err();
        assert!(err.to_string().contains("empty key"), "{err}");
    }

    #[test]
    fn missing_env_var_is_named() {
        let err = collect_values(None, &[], &strings(&["NOPE_NOT_SET"]), no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--from-env: environment variable NOPE_NOT_SET is not set"
        );
    }

    #[test]
    fn empty_values_are_errors_naming_key_and_source() {
        let err = collect_values(None, &strings(&["A="]), &[], no_env).unwrap_err();
        assert!(
            err.to_string()
                .contains("empty value for A (on the command line)"),
            "{err}"
        );
        let err = collect_values(Some(("x.env", "B=\n")), &[], &[], no_env).unwrap_err();
        assert!(
            err.to_string().contains("empty value for B (in x.env)"),
            "{err}"
        );
        let env = |_: &str| Some(String::new());
        let err = collect_values(None, &[], &strings(&["C"]), env).unwrap_err();
        assert!(
            err.to_string()
                .contains("empty value for C (in the environment)"),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_name_fails_the_whole_push_before_any_request() {
        let err = collect_values(
            Some(("app.env", "A=1\nexport FOO=bar\n")),
            &strings(&["B=2"]),
            &[],
            no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("invalid secret name \"export FOO\" (in app.env): expected letters"),
            "{err}"
        );
        assert!(err.ends_with("nothing was pushed"), "{err}");
        for good in ["DATABASE_URL", "my-claude-key", "team.key", "_x", "9lives"] {
            assert!(is_secret_name(good), "{good}");
        }
        for bad in ["-x", ".x", "a b", "a/b", "é", &"x".repeat(129)] {
            assert!(!is_secret_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_bad_env_file_line_names_file_and_line() {
        let err = collect_values(Some(("my.env", "A=1\noops\n")), &[], &[], no_env).unwrap_err();
        assert_eq!(err.to_string(), "my.env:2: expected KEY=VALUE");
    }
}
