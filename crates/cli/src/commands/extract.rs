//! `amika secret extract`: find the agent credentials already on this machine, show them masked
//! with a proposed name, and (with `--push`, after confirmation) store them as user-scope
//! credentials.
//!
//! Sources: `~/.claude/.credentials.json` (claude oauth), `~/.codex/auth.json` (codex: an API key
//! when it holds a non-null `OPENAI_API_KEY` string and no `tokens`, else oauth with the whole
//! document), `$ANTHROPIC_API_KEY` (claude api_key) and `$OPENAI_API_KEY` (codex api_key).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use amika_client::Client;
use amika_types::{AgentKind, CreateCredentialRequest, CredentialType, Scope};
use serde_json::json;

use super::credential::{find_credential, upsert_credential};
use super::secret::Action;
use super::Ctx;
use crate::output::{mask, mask_for_table, print_json, Table};
use crate::prompt;

#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// Store what was found as your (user-scope) credentials, after confirmation.
    #[arg(long)]
    pub push: bool,
    /// Only these kinds (comma-separated: claude,codex).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// One credential found on this machine.
#[derive(Clone, PartialEq)]
pub struct Found {
    pub kind: AgentKind,
    pub credential_type: CredentialType,
    pub name: String,
    /// Where it was found (a path or `$VAR`).
    pub source: String,
    pub value: String,
}

impl fmt::Debug for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Found")
            .field("kind", &self.kind)
            .field("credential_type", &self.credential_type)
            .field("name", &self.name)
            .field("source", &self.source)
            .field("value", &mask(&self.value))
            .finish()
    }
}

/// Parses `--only`; empty means every kind.
pub fn parse_only(values: &[String]) -> anyhow::Result<Vec<AgentKind>> {
    if values.is_empty() {
        return Ok(AgentKind::AGENTS.to_vec());
    }
    let mut kinds = Vec::new();
    for value in values {
        // Agents only: there is nothing to extract for `github`.
        let kind = value
            .trim()
            .parse()
            .ok()
            .filter(|k: &AgentKind| k.is_agent())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--only: unknown kind {value:?}: expected claude or codex (comma-separated)"
                )
            })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

impl Found {
    fn new(
        kind: AgentKind,
        credential_type: CredentialType,
        name: &str,
        source: impl Into<String>,
        value: String,
    ) -> Found {
        Found {
            kind,
            credential_type,
            name: name.into(),
            source: source.into(),
            value,
        }
    }
}

/// Looks for credentials under `home` and in `env`. Unreadable or malformed files are reported
/// in the returned warnings and skipped. Pure apart from reading the two files.
pub fn discover(
    home: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
    kinds: &[AgentKind],
) -> (Vec<Found>, Vec<String>) {
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if kinds.contains(&AgentKind::Claude) {
        discover_claude(home, env("ANTHROPIC_API_KEY"), &mut found, &mut warnings);
    }
    if kinds.contains(&AgentKind::Codex) {
        discover_codex(home, env("OPENAI_API_KEY"), &mut found, &mut warnings);
    }
    (found, warnings)
}

/// `~/.claude/.credentials.json` (oauth) and `$ANTHROPIC_API_KEY` (api_key).
fn discover_claude(
    home: Option<&Path>,
    env_key: Option<String>,
    found: &mut Vec<Found>,
    warnings: &mut Vec<String>,
) {
    if let Some(home) = home {
        let path = home.join(".claude").join(".credentials.json");
        if let Some((text, _)) = read_json(&path, warnings) {
            found.push(Found::new(
                AgentKind::Claude,
                CredentialType::Oauth,
                "claude-oauth",
                path.display().to_string(),
                text,
            ));
        }
    }
    if let Some(key) = env_key {
        found.push(Found::new(
            AgentKind::Claude,
            CredentialType::ApiKey,
            "claude-api-key",
            "$ANTHROPIC_API_KEY",
            key.trim().to_string(),
        ));
    }
}

/// `~/.codex/auth.json` (see [`codex_auth_json`]) and `$OPENAI_API_KEY` (api_key; one
/// credential when it is the file's key too).
fn discover_codex(
    home: Option<&Path>,
    env_key: Option<String>,
    found: &mut Vec<Found>,
    warnings: &mut Vec<String>,
) {
    if let Some(home) = home {
        let path = home.join(".codex").join("auth.json");
        if let Some((text, doc)) = read_json(&path, warnings) {
            found.push(codex_auth_json(&path, text, &doc));
        }
    }
    let Some(key) = env_key else {
        return;
    };
    let key = key.trim().to_string();
    let api_key = |name: &str, value: String| {
        Found::new(
            AgentKind::Codex,
            CredentialType::ApiKey,
            name,
            "$OPENAI_API_KEY",
            value,
        )
    };
    match found.iter_mut().find(|f| f.name == "codex-api-key") {
        // The same key in both places: one credential.
        Some(same) if same.value == key => {
            same.source.push_str(", $OPENAI_API_KEY");
        }
        Some(_) => found.push(api_key("codex-api-key-env", key)),
        None => found.push(api_key("codex-api-key", key)),
    }
}

/// Codex's `auth.json`: an API key when it holds a non-null `OPENAI_API_KEY` string and no
/// `tokens`, else oauth with the whole document.
fn codex_auth_json(path: &Path, text: String, doc: &serde_json::Value) -> Found {
    let api_key = doc
        .get("OPENAI_API_KEY")
        .and_then(|v| v.as_str())
        .filter(|k| !k.trim().is_empty());
    let has_tokens = doc.get("tokens").is_some_and(|t| !t.is_null());
    let source = path.display().to_string();
    match api_key {
        Some(key) if !has_tokens => Found::new(
            AgentKind::Codex,
            CredentialType::ApiKey,
            "codex-api-key",
            source,
            key.trim().to_string(),
        ),
        _ => Found::new(
            AgentKind::Codex,
            CredentialType::Oauth,
            "codex-oauth",
            source,
            text,
        ),
    }
}

/// The text of the JSON file at `path` and its parse; `None` when it does not exist, and `None`
/// with a warning when it cannot be read or is not JSON.
fn read_json(path: &Path, warnings: &mut Vec<String>) -> Option<(String, serde_json::Value)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warnings.push(format!("cannot read {}: {e}; skipped", path.display()));
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(doc) => Some((text, doc)),
        Err(e) => {
            warnings.push(format!(
                "{} is not valid JSON ({e}); skipped",
                path.display()
            ));
            None
        }
    }
}

pub async fn run(ctx: &Ctx, args: ExtractArgs) -> anyhow::Result<()> {
    let kinds = parse_only(&args.only)?;
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let (found, warnings) = discover(home.as_deref(), |n| std::env::var(n).ok(), &kinds);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if found.is_empty() {
        if ctx.json() {
            return print_json(&Vec::<()>::new());
        }
        eprintln!(
            "No agent credentials found (looked in ~/.claude/.credentials.json, ~/.codex/auth.json, $ANTHROPIC_API_KEY, $OPENAI_API_KEY)."
        );
        return Ok(());
    }
    if args.push {
        push(ctx, &args, &kinds, &found).await
    } else {
        show(ctx, &found)
    }
}

/// The table row of a found credential, masked (`KIND NAME TYPE SOURCE VALUE`).
fn found_row(f: &Found) -> Vec<String> {
    vec![
        f.kind.to_string(),
        f.name.clone(),
        f.credential_type.to_string(),
        f.source.clone(),
        mask_for_table(&f.value),
    ]
}

/// Without `--push`: what was found, masked, and how to store it.
fn show(ctx: &Ctx, found: &[Found]) -> anyhow::Result<()> {
    if ctx.json() {
        let items: Vec<_> = found
            .iter()
            .map(|f| {
                json!({
                    "kind": f.kind,
                    "name": f.name,
                    "type": f.credential_type,
                    "source": f.source,
                    "value": mask(&f.value),
                })
            })
            .collect();
        return print_json(&items);
    }
    let mut table = Table::new(&["KIND", "NAME", "TYPE", "SOURCE", "VALUE"]);
    for f in found {
        table.row(found_row(f));
    }
    table.print()?;
    eprintln!("Run `amika secret extract --push` to store them as your credentials.");
    Ok(())
}

/// `--push`: show the plan (create or update each), confirm, then store each as a user-scope
/// credential.
async fn push(
    ctx: &Ctx,
    args: &ExtractArgs,
    kinds: &[AgentKind],
    found: &[Found],
) -> anyhow::Result<()> {
    prompt::ensure_can_confirm(ctx.output, args.yes, "--yes", "push")?;
    let client = ctx.client()?;
    let mut existing = BTreeMap::new();
    for kind in kinds {
        existing.insert(*kind, client.list_credentials(*kind).await?);
    }
    let existing_id = |f: &Found| {
        existing
            .get(&f.kind)
            .and_then(|list| find_credential(list, &f.name, Scope::User))
            .map(|c| c.id.clone())
    };
    if !ctx.json() {
        let mut table = Table::new(&["KIND", "NAME", "TYPE", "SOURCE", "VALUE", "ACTION"]);
        for f in found {
            let mut row = found_row(f);
            row.push(
                Action::planned(existing_id(f).is_some())
                    .preview()
                    .to_string(),
            );
            table.row(row);
        }
        table.eprint();
    }
    let count = found.len();
    prompt::confirm(
        ctx.output,
        args.yes,
        "--yes",
        "push",
        &format!(
            "Push {count} credential{} to {} (user scope)?",
            if count == 1 { "" } else { "s" },
            client.base_url()
        ),
    )?;
    let mut results = Vec::new();
    for f in found {
        results.push(push_one(ctx, &client, f, existing_id(f)).await?);
    }
    if ctx.json() {
        print_json(&results)?;
    }
    Ok(())
}

/// Store one found credential (creating it, or updating `existing_id`), say so, and return its
/// JSON result.
async fn push_one(
    ctx: &Ctx,
    client: &Client,
    f: &Found,
    existing_id: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    // `discover` only yields an oauth value whose file parsed as JSON.
    let req = CreateCredentialRequest {
        name: f.name.clone(),
        value: f.value.clone(),
        credential_type: f.credential_type,
        scope: Some(Scope::User),
        is_default: false,
    };
    let (action, credential) = upsert_credential(client, f.kind, req, existing_id).await?;
    if !ctx.json() {
        crate::outln!(
            "{} {} credential {:?}",
            action.label(),
            f.kind,
            credential.name
        );
    }
    Ok(json!({
        "kind": f.kind,
        "name": credential.name,
        "type": credential.credential_type,
        "source": f.source,
        "action": action,
        "id": credential.id,
        "version": credential.version,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn home_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn summary(found: &[Found]) -> Vec<(AgentKind, CredentialType, &str, &str)> {
        found
            .iter()
            .map(|f| (f.kind, f.credential_type, f.name.as_str(), f.value.as_str()))
            .collect()
    }

    const CLAUDE: &str =
        r#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":1}}"#;

    #[test]
    fn finds_every_source() {
        let home = home_with(&[
            (".claude/.credentials.json", CLAUDE),
            (
                ".codex/auth.json",
                r#"{"OPENAI_API_KEY":null,"tokens":{"id_token":"x"}}"#,
            ),
        ]);
        let env = |n: &str| match n {
            "ANTHROPIC_API_KEY" => Some("sk-ant-1".to_string()),
            "OPENAI_API_KEY" => Some("sk-oai-1\n".to_string()),
            _ => None,
        };
        let (found, warnings) = discover(Some(home.path()), env, AgentKind::ALL);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            summary(&found),
            vec![
                (
                    AgentKind::Claude,
                    CredentialType::Oauth,
                    "claude-oauth",
                    CLAUDE
                ),
                (
                    AgentKind::Claude,
                    CredentialType::ApiKey,
                    "claude-api-key",
                    "sk-ant-1"
                ),
                (
                    AgentKind::Codex,
                    CredentialType::Oauth,
                    "codex-oauth",
                    r#"{"OPENAI_API_KEY":null,"tokens":{"id_token":"x"}}"#
                ),
                (
                    AgentKind::Codex,
                    CredentialType::ApiKey,
                    "codex-api-key",
                    "sk-oai-1"
                ),
            ]
        );
    }

    #[test]
    fn codex_auth_json_with_only_an_api_key_is_an_api_key() {
        let home = home_with(&[(".codex/auth.json", r#"{"OPENAI_API_KEY":"sk-file"}"#)]);
        let (found, _) = discover(Some(home.path()), |_| None, AgentKind::ALL);
        assert_eq!(
            summary(&found),
            vec![(
                AgentKind::Codex,
                CredentialType::ApiKey,
                "codex-api-key",
                "sk-file"
            )]
        );
    }

    #[test]
    fn codex_auth_json_with_key_and_tokens_is_oauth() {
        let doc = r#"{"OPENAI_API_KEY":"sk-file","tokens":{"a":1}}"#;
        let home = home_with(&[(".codex/auth.json", doc)]);
        let (found, _) = discover(Some(home.path()), |_| None, AgentKind::ALL);
        assert_eq!(
            summary(&found),
            vec![(AgentKind::Codex, CredentialType::Oauth, "codex-oauth", doc)]
        );
    }

    #[test]
    fn the_same_codex_key_in_file_and_env_is_found_once() {
        let home = home_with(&[(".codex/auth.json", r#"{"OPENAI_API_KEY":"sk-same"}"#)]);
        let env = |n: &str| (n == "OPENAI_API_KEY").then(|| "sk-same".to_string());
        let (found, _) = discover(Some(home.path()), env, AgentKind::ALL);
        assert_eq!(found.len(), 1);
        assert!(found[0].source.ends_with(", $OPENAI_API_KEY"));

        let env = |n: &str| (n == "OPENAI_API_KEY").then(|| "sk-other".to_string());
        let (found, _) = discover(Some(home.path()), env, AgentKind::ALL);
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["codex-api-key", "codex-api-key-env"]);
    }

    #[test]
    fn only_limits_the_kinds() {
        let home = home_with(&[(".claude/.credentials.json", CLAUDE)]);
        let env = |n: &str| (n == "OPENAI_API_KEY").then(|| "sk".to_string());
        let (found, _) = discover(Some(home.path()), env, &[AgentKind::Codex]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AgentKind::Codex);
    }

    #[test]
    fn malformed_files_are_warned_about_and_skipped() {
        let home = home_with(&[(".claude/.credentials.json", "not json")]);
        let (found, warnings) = discover(Some(home.path()), |_| None, AgentKind::ALL);
        assert!(found.is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains(".credentials.json is not valid JSON"),
            "{warnings:?}"
        );
    }

    #[test]
    fn only_parses_kinds_and_rejects_unknown_ones() {
        assert_eq!(parse_only(&[]).unwrap(), AgentKind::AGENTS.to_vec());
        assert!(parse_only(&["github".into()]).is_err());
        assert_eq!(
            parse_only(&["codex".into(), "codex".into()]).unwrap(),
            vec![AgentKind::Codex]
        );
        let err = parse_only(&["claude".into(), "gemini".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--only: unknown kind \"gemini\": expected claude or codex (comma-separated)"
        );
    }

    #[test]
    fn debug_masks_the_value() {
        let f = Found {
            kind: AgentKind::Claude,
            credential_type: CredentialType::ApiKey,
            name: "n".into(),
            source: "s".into(),
            value: "sk-ant-supersecretvalue".into(),
        };
        assert!(!format!("{f:?}").contains("supersecret"));
    }
}
