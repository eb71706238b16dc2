//! `amika secret claude|codex|github`: provider credentials (push, list, delete, reveal): the
//! agents' credentials, and `github` tokens that clone private repositories.
//!
//! An OAuth credential is the agent's whole credential JSON document and must parse as JSON; it
//! is checked here too, so a wrong file is named before anything is sent. An API key is a string
//! (surrounding whitespace, such as a file's final newline, is dropped).

use std::path::PathBuf;

use amika_client::Client;
use amika_types::{
    AgentKind, CreateCredentialRequest, CredentialSummary, CredentialType, ErrorCode, Scope,
    UpdateCredentialRequest,
};
use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::secret::Action;
use super::Ctx;
use crate::output::{mask_for_table, or_dash, print_json, time, Table};
use crate::prompt;

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Store a credential (masked preview, then [y/N]); an existing name gets a new version.
    Push(PushArgs),
    /// List the credentials of this kind you can use.
    List,
    /// Delete one of your credentials.
    Delete {
        /// The credential's name (or id).
        name: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Print a credential's value (audited).
    Reveal {
        /// The credential's name (or id).
        name: String,
    },
}

/// `Debug` is written by hand below: `--value` carries the credential.
#[derive(clap::Args)]
pub struct PushArgs {
    /// The credential's name.
    #[arg(long)]
    pub name: String,
    /// oauth (the agent's credential JSON) or api_key (also spelled api-key); github: api_key.
    #[arg(long = "type", value_name = "TYPE")]
    pub credential_type: CredentialType,
    /// The value; `-` reads it from stdin. Without --value or --from-file, prompted for (hidden).
    #[arg(long, conflicts_with = "from_file")]
    pub value: Option<String>,
    /// Read the value from a file (e.g. ~/.claude/.credentials.json).
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Who can use it: only you (user) or your whole org (org).
    #[arg(long, default_value = "user")]
    pub scope: Scope,
    /// Make it your default credential of this kind.
    #[arg(long)]
    pub default: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

impl std::fmt::Debug for PushArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushArgs")
            .field("name", &self.name)
            .field("credential_type", &self.credential_type)
            .field("value", &self.value.as_ref().map(|_| super::REDACTED))
            .field("from_file", &self.from_file)
            .field("scope", &self.scope)
            .field("default", &self.default)
            .field("yes", &self.yes)
            .finish()
    }
}

pub async fn run(ctx: &Ctx, kind: AgentKind, cmd: CredentialCommand) -> anyhow::Result<()> {
    match cmd {
        CredentialCommand::Push(args) => push(ctx, kind, args).await,
        CredentialCommand::List => list(ctx, kind).await,
        CredentialCommand::Delete { name, yes } => delete(ctx, kind, name, yes).await,
        CredentialCommand::Reveal { name } => reveal(ctx, kind, name).await,
    }
}

/// A `github` credential is a token: `--type api_key` (before its value is read).
pub fn check_type(kind: AgentKind, ty: CredentialType) -> anyhow::Result<()> {
    if kind == AgentKind::Github && ty == CredentialType::Oauth {
        bail!("--type oauth: a github credential is a token: expected --type api_key");
    }
    Ok(())
}

/// Checks and normalises a credential value read from `source` (a phrase for messages):
/// OAuth values must be JSON and are kept verbatim; API keys are trimmed. Empty is an error.
pub fn check_value(ty: CredentialType, value: String, source: &str) -> anyhow::Result<String> {
    let value = match ty {
        CredentialType::Oauth => value,
        CredentialType::ApiKey => value.trim().to_string(),
    };
    if value.trim().is_empty() {
        bail!("{source} is empty");
    }
    if ty == CredentialType::Oauth {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&value) {
            bail!(
                "{source} is not valid JSON ({e}): an oauth credential is the agent's credential JSON document; use --type api_key for a plain key"
            );
        }
    }
    Ok(value)
}

fn read_value(ctx: &Ctx, kind: AgentKind, args: &PushArgs) -> anyhow::Result<String> {
    let ty = args.credential_type;
    if let Some(path) = &args.from_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--from-file: cannot read {}", path.display()))?;
        return check_value(ty, text, &format!("--from-file {}", path.display()));
    }
    match args.value.as_deref() {
        Some("-") => {
            let text = prompt::read_stdin()?;
            check_value(
                ty,
                prompt::strip_one_newline(&text).to_string(),
                "the value read from stdin",
            )
        }
        Some(value) => check_value(ty, value.to_string(), "--value"),
        None if prompt::can_prompt(ctx.output) => {
            let value = prompt::hidden(&format!("Value for {kind} credential {:?}: ", args.name))?;
            check_value(ty, value, "the value typed")
        }
        None => bail!("no value given: pass --value VALUE, --value - (stdin) or --from-file FILE"),
    }
}

/// Creates the caller's credential, or stores a new version of the one they already have with
/// that name in that scope.
pub async fn upsert_credential(
    client: &Client,
    kind: AgentKind,
    req: CreateCredentialRequest,
    existing_id: Option<String>,
) -> anyhow::Result<(Action, CredentialSummary)> {
    let update = |id: String, req: &CreateCredentialRequest| {
        let body = UpdateCredentialRequest {
            value: Some(req.value.clone()),
            credential_type: Some(req.credential_type),
            is_default: req.is_default.then_some(true),
        };
        async move { client.update_credential(kind, &id, &body).await }
    };
    if let Some(id) = existing_id {
        return Ok((Action::Updated, update(id, &req).await?));
    }
    match client.create_credential(kind, &req).await {
        Ok(created) => Ok((Action::Created, created)),
        Err(e) if e.is_code(ErrorCode::CredentialExists) => {
            let scope = req.scope.unwrap_or(Scope::User);
            let existing = client.list_credentials(kind).await?;
            let Some(found) = find_credential(&existing, &req.name, scope) else {
                return Err(e.into());
            };
            Ok((Action::Updated, update(found.id.clone(), &req).await?))
        }
        Err(e) => Err(e.into()),
    }
}

/// The caller's credential named `name` in `scope`, if any.
pub fn find_credential<'a>(
    credentials: &'a [CredentialSummary],
    name: &str,
    scope: Scope,
) -> Option<&'a CredentialSummary> {
    credentials
        .iter()
        .find(|c| c.name == name && c.scope == scope)
}

async fn push(ctx: &Ctx, kind: AgentKind, args: PushArgs) -> anyhow::Result<()> {
    if args.default && args.scope == Scope::Org {
        bail!(
            "--default applies to user-scope credentials only (drop --default or use --scope user)"
        );
    }
    if args.name.trim().is_empty() {
        bail!("--name is empty");
    }
    check_type(kind, args.credential_type)?;
    let value = read_value(ctx, kind, &args)?;
    prompt::ensure_can_confirm(ctx.output, args.yes, "--yes", "push")?;
    let client = ctx.client()?;
    let existing = client.list_credentials(kind).await?;
    let existing_id = find_credential(&existing, &args.name, args.scope).map(|c| c.id.clone());

    if !ctx.json() {
        let mut table = Table::new(&[
            "KIND", "NAME", "TYPE", "SCOPE", "DEFAULT", "VALUE", "ACTION",
        ]);
        table.row(vec![
            kind.to_string(),
            args.name.clone(),
            args.credential_type.to_string(),
            args.scope.to_string(),
            if args.default { "yes" } else { "no" }.to_string(),
            mask_for_table(&value),
            Action::planned(existing_id.is_some()).preview().to_string(),
        ]);
        table.eprint();
    }
    prompt::confirm(
        ctx.output,
        args.yes,
        "--yes",
        "push",
        &format!(
            "Push {kind} credential {:?} to {}?",
            args.name,
            client.base_url()
        ),
    )?;

    let req = CreateCredentialRequest {
        name: args.name.clone(),
        value,
        credential_type: args.credential_type,
        scope: Some(args.scope),
        is_default: args.default,
    };
    let (action, credential) = upsert_credential(&client, kind, req, existing_id).await?;
    if ctx.json() {
        print_json(&json!({
            "kind": kind,
            "name": credential.name,
            "type": credential.credential_type,
            "scope": credential.scope,
            "is_default": credential.is_default,
            "action": action,
            "id": credential.id,
            "version": credential.version,
        }))
    } else {
        crate::outln!("{} {kind} credential {:?}", action.label(), credential.name);
        Ok(())
    }
}

async fn list(ctx: &Ctx, kind: AgentKind) -> anyhow::Result<()> {
    let credentials = ctx.client()?.list_credentials(kind).await?;
    if ctx.json() {
        return print_json(&credentials);
    }
    let mut table = Table::new(&["NAME", "TYPE", "SCOPE", "DEFAULT", "EXPIRES", "UPDATED"]);
    for c in &credentials {
        table.row(vec![
            c.name.clone(),
            c.credential_type.to_string(),
            c.scope.to_string(),
            if c.is_default { "yes" } else { "no" }.to_string(),
            or_dash(c.expires_at.as_ref().map(time)),
            time(&c.updated_at),
        ]);
    }
    table.print()?;
    Ok(())
}

async fn delete(ctx: &Ctx, kind: AgentKind, name: String, yes: bool) -> anyhow::Result<()> {
    let client = ctx.client()?;
    prompt::confirm(
        ctx.output,
        yes,
        "--yes",
        &format!("delete {kind} credential {name:?}"),
        &format!("Delete {kind} credential {name:?}?"),
    )?;
    client.delete_credential(kind, &name).await?;
    if ctx.json() {
        print_json(&json!({ "kind": kind, "deleted": name }))
    } else {
        crate::outln!("Deleted {kind} credential {name:?}");
        Ok(())
    }
}

async fn reveal(ctx: &Ctx, kind: AgentKind, name: String) -> anyhow::Result<()> {
    let revealed = ctx.client()?.reveal_credential(kind, &name).await?;
    if ctx.json() {
        print_json(&json!({ "kind": kind, "name": name, "value": revealed.value }))
    } else {
        crate::outln!("{}", revealed.value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_values_must_be_json_and_the_source_is_named() {
        let err = check_value(
            CredentialType::Oauth,
            "sk-not-json".into(),
            "--from-file creds.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("--from-file creds.json is not valid JSON"),
            "{err}"
        );
        let ok = check_value(CredentialType::Oauth, "{\"a\":1}\n".into(), "x").unwrap();
        assert_eq!(ok, "{\"a\":1}\n", "oauth documents are kept verbatim");
    }

    #[test]
    fn a_github_credential_is_a_token() {
        let err = check_type(AgentKind::Github, CredentialType::Oauth).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--type oauth: a github credential is a token: expected --type api_key"
        );
        assert!(check_type(AgentKind::Github, CredentialType::ApiKey).is_ok());
        assert!(check_type(AgentKind::Claude, CredentialType::Oauth).is_ok());
    }

    #[test]
    fn api_keys_are_trimmed_and_must_not_be_empty() {
        assert_eq!(
            check_value(CredentialType::ApiKey, " sk-123\n".into(), "x").unwrap(),
            "sk-123"
        );
        let err = check_value(CredentialType::ApiKey, "\n".into(), "--value").unwrap_err();
        assert_eq!(err.to_string(), "--value is empty");
    }
}
