//! `amika auth`: log in to a server, show the login, and manage the caller's API keys.

use amika_client::Client;
use amika_types::CreateApiKeyRequest;
use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use super::Ctx;
use crate::config;
use crate::output::{mask, or_dash, print_json, time, Table};
use crate::prompt;

/// `Debug` is written by hand below: `--api-key` carries a key.
#[derive(Subcommand)]
pub enum AuthCommand {
    /// Verify an API key against a server and save both to the config file.
    Login {
        /// The server's URL (default: $AMIKA_API_URL, the saved one, or http://127.0.0.1:7070).
        #[arg(long)]
        url: Option<String>,
        /// The API key (`amk_...`); `-` reads it from stdin. Prompted for (hidden) on a terminal.
        #[arg(long)]
        api_key: Option<String>,
    },
    /// Show which server and user the CLI acts as (the key only masked).
    Status,
    /// Manage your API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; its value is printed once.
    Create {
        /// A name to recognise the key by.
        name: String,
    },
    /// List your API keys (obfuscated).
    List,
    /// Delete an API key.
    Delete {
        /// The key's id.
        id: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
}

impl std::fmt::Debug for AuthCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthCommand::Login { url, api_key } => f
                .debug_struct("Login")
                .field("url", url)
                .field("api_key", &api_key.as_ref().map(|_| super::REDACTED))
                .finish(),
            AuthCommand::Status => f.write_str("Status"),
            AuthCommand::ApiKey(cmd) => f.debug_tuple("ApiKey").field(cmd).finish(),
        }
    }
}

pub async fn run(ctx: &Ctx, cmd: AuthCommand) -> anyhow::Result<()> {
    match cmd {
        AuthCommand::Login { url, api_key } => login(ctx, url, api_key).await,
        AuthCommand::Status => status(ctx).await,
        AuthCommand::ApiKey(cmd) => api_key(ctx, cmd).await,
    }
}

async fn login(ctx: &Ctx, url: Option<String>, api_key: Option<String>) -> anyhow::Result<()> {
    let url = match url {
        Some(url) => url,
        None => ctx.settings()?.url,
    };
    let key = match api_key.as_deref() {
        Some("-") => prompt::strip_one_newline(&prompt::read_stdin()?)
            .trim()
            .to_string(),
        Some(key) => key.trim().to_string(),
        None if prompt::can_prompt(ctx.output) => prompt::hidden("API key: ")?.trim().to_string(),
        None => bail!("no API key given: pass --api-key KEY, or --api-key - to read it from stdin"),
    };
    if key.is_empty() {
        bail!("the API key is empty");
    }
    let client = Client::new(url.clone(), Some(key.clone()));
    let me = match client.me().await {
        Ok(me) => me,
        Err(e) if e.status() == Some(401) => {
            return Err(anyhow::Error::new(e).context("the server rejected this API key"))
        }
        Err(e) => return Err(e.into()),
    };
    let path = config::save_login(client.base_url(), &key)?;
    if ctx.json() {
        print_json(&json!({
            "url": client.base_url(),
            "user_id": me.user_id,
            "user": me.user_name,
            "org_id": me.org_id,
            "org": me.org_name,
            "is_admin": me.is_admin,
            "config_path": path,
        }))
    } else {
        crate::outln!(
            "Logged in to {} as {} (org {}{})",
            client.base_url(),
            me.user_name,
            me.org_name,
            if me.is_admin { ", admin" } else { "" }
        );
        crate::outln!("Saved to {}", path.display());
        Ok(())
    }
}

async fn status(ctx: &Ctx) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    let client = ctx.client()?;
    let me = client.me().await?;
    // Older servers have no `/ssh`: shown as off.
    let ssh = client.ssh_endpoint().await.ok().filter(|e| e.enabled);
    let masked = settings.api_key.as_deref().map(mask).unwrap_or_default();
    let key_from = settings
        .key_source
        .describe(config::ENV_KEY, &settings.path);
    let url_from = settings
        .url_source
        .describe(config::ENV_URL, &settings.path);
    if ctx.json() {
        print_json(&json!({
            "url": settings.url,
            "url_source": url_from,
            "user_id": me.user_id,
            "user": me.user_name,
            "org_id": me.org_id,
            "org": me.org_name,
            "is_admin": me.is_admin,
            "api_key": masked,
            "api_key_source": key_from,
            "ssh": ssh,
        }))
    } else {
        crate::outln!("Server:   {} (from {url_from})", settings.url);
        crate::outln!("User:     {} ({})", me.user_name, me.user_id);
        crate::outln!("Org:      {} ({})", me.org_name, me.org_id);
        crate::outln!("Admin:    {}", if me.is_admin { "yes" } else { "no" });
        crate::outln!("API key:  {masked} (from {key_from})");
        match ssh {
            Some(e) => crate::outln!(
                "SSH:      {} (host key {})",
                e.listen.unwrap_or_default(),
                e.host_key_fingerprint.unwrap_or_default()
            ),
            None => crate::outln!("SSH:      off"),
        }
        Ok(())
    }
}

async fn api_key(ctx: &Ctx, cmd: ApiKeyCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        ApiKeyCommand::Create { name } => {
            let created = client.create_api_key(&CreateApiKeyRequest { name }).await?;
            if ctx.json() {
                return print_json(&created);
            }
            eprintln!(
                "Created API key \"{}\" ({}). It is shown only this once:",
                created.summary.name, created.summary.id
            );
            crate::outln!("{}", created.value);
            Ok(())
        }
        ApiKeyCommand::List => {
            let keys = client.list_api_keys().await?;
            if ctx.json() {
                return print_json(&keys);
            }
            let mut table = Table::new(&["ID", "NAME", "KEY", "LAST USED", "CREATED"]);
            for key in &keys.data {
                table.row(vec![
                    key.id.clone(),
                    key.name.clone(),
                    key.obfuscated_value.clone(),
                    or_dash(key.last_used_at.as_ref().map(time)),
                    time(&key.created_at),
                ]);
            }
            table.print()?;
            Ok(())
        }
        ApiKeyCommand::Delete { id, yes } => {
            prompt::confirm(
                ctx.output,
                yes,
                "--yes",
                &format!("delete API key {id:?}"),
                &format!("Delete API key {id:?}? Anything using it stops working."),
            )?;
            client.delete_api_key(&id).await?;
            if ctx.json() {
                print_json(&json!({"deleted": id}))
            } else {
                crate::outln!("Deleted API key {id}");
                Ok(())
            }
        }
    }
}
