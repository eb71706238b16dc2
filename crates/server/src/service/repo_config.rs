//! `.amika/config.toml`, the configuration a repository carries for the sandboxes made from it
//! (DESIGN §11): plain and secret-backed env vars, an agent credential per kind, and a setup
//! script. Parsing is pure (the text in, typed data or an error naming the line out), so the
//! service can read the file from a clone before anything starts and refuse a bad one with the
//! file, the line and what was expected.
//!
//! ```toml
//! [env]
//! NODE_ENV = "development"                 # plain value
//! DATABASE_URL = { secret = "staging-db" } # a vault secret, resolved like --secret
//! [agent_credentials]
//! claude = { name = "team-oauth" }         # or { type = "api_key" }, or { none = true }
//! [lifecycle]
//! setup_script = "scripts/setup.sh"        # relative to the repository root
//! ```

use std::collections::BTreeMap;
use std::fmt;

use amika_types::{AgentCredentialRef, AgentKind, CredentialType};
use serde::Deserialize;

/// Where the file lives, relative to the repository's root.
pub const PATH: &str = ".amika/config.toml";

/// Largest file accepted: a config is a few lines; anything bigger is a mistake.
pub const MAX_BYTES: usize = 64 * 1024;

/// A parsed, checked `.amika/config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoConfig {
    /// Env var → its value or the secret it comes from.
    pub env: BTreeMap<String, EnvValue>,
    /// At most one entry per kind, as a request's `agent_credentials` entry would be.
    pub agent_credentials: BTreeMap<AgentKind, AgentCredentialRef>,
    /// Relative to the repository's root; never absolute, never outside it.
    pub setup_script: Option<String>,
}

/// One `[env]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A plain value, written in the file (so not a secret).
    Plain(String),
    /// The name of a vault secret, resolved like `--secret env:VAR=NAME`.
    Secret(String),
}

/// Why a `.amika/config.toml` was refused. `Display` names the file and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfigError {
    /// 1-based line of the offending text, when it can be told.
    pub line: Option<usize>,
    /// What was wrong and what is expected.
    pub message: String,
}

impl fmt::Display for RepoConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{PATH}:{line}: {}", self.message),
            None => write!(f, "{PATH}: {}", self.message),
        }
    }
}

impl std::error::Error for RepoConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    env: BTreeMap<String, RawEnvValue>,
    #[serde(default)]
    agent_credentials: BTreeMap<String, RawCredential>,
    #[serde(default)]
    lifecycle: RawLifecycle,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEnvValue {
    Plain(String),
    Secret(RawSecretRef),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretRef {
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    name: Option<String>,
    #[serde(rename = "type")]
    credential_type: Option<String>,
    #[serde(default)]
    none: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLifecycle {
    setup_script: Option<String>,
}

/// Parse and check the file's text.
pub fn parse(text: &str) -> Result<RepoConfig, RepoConfigError> {
    if text.len() > MAX_BYTES {
        return Err(RepoConfigError {
            line: None,
            message: format!(
                "the file is {} bytes; at most {MAX_BYTES} are accepted",
                text.len()
            ),
        });
    }
    let raw: RawConfig = toml::from_str(text).map_err(|e| RepoConfigError {
        line: e.span().map(|s| line_of(text, s.start)),
        message: describe_toml_error(&e),
    })?;
    let at = |needle: &str| find_line(text, needle);
    let mut config = RepoConfig::default();
    for (var, value) in raw.env {
        // The same rule as a request's `secret_env_vars` keys.
        super::validate::env_var(&var).map_err(|e| RepoConfigError {
            line: at(&var),
            message: format!("[env] {e}"),
        })?;
        let value = match value {
            RawEnvValue::Plain(v) => EnvValue::Plain(v),
            RawEnvValue::Secret(RawSecretRef { secret }) if secret.is_empty() => {
                return Err(RepoConfigError {
                    line: at(&var),
                    message: format!("[env] {var}: the secret name must not be empty"),
                })
            }
            RawEnvValue::Secret(RawSecretRef { secret }) => EnvValue::Secret(secret),
        };
        config.env.insert(var, value);
    }
    for (kind, entry) in raw.agent_credentials {
        let fail = |message: String| RepoConfigError {
            line: at(&kind),
            message: format!("[agent_credentials] {kind}: {message}"),
        };
        let parsed_kind = kind.parse::<AgentKind>().map_err(|e| fail(e.to_string()))?;
        if !parsed_kind.is_agent() {
            // A request's `agent_credentials` refuses it too; here it would be silently unused.
            return Err(fail(format!(
                "{kind} is not an agent: expected claude or codex (a github credential for the clone is named with git_credential)"
            )));
        }
        let credential_type = entry
            .credential_type
            .as_deref()
            .map(str::parse::<CredentialType>)
            .transpose()
            .map_err(|e| fail(e.to_string()))?;
        if entry.none && (entry.name.is_some() || credential_type.is_some()) {
            return Err(fail(
                "`none = true` and `name`/`type` are mutually exclusive".into(),
            ));
        }
        if !entry.none && entry.name.is_none() && credential_type.is_none() {
            return Err(fail(
                "expected { name = \"...\" }, { type = \"oauth\" | \"api_key\" } or { none = true }"
                    .into(),
            ));
        }
        if entry.name.as_deref() == Some("") {
            return Err(fail("the credential name must not be empty".into()));
        }
        config.agent_credentials.insert(
            parsed_kind,
            AgentCredentialRef {
                kind: parsed_kind,
                name: entry.name,
                credential_type,
                none: entry.none,
            },
        );
    }
    if let Some(script) = raw.lifecycle.setup_script {
        check_relative_path(&script).map_err(|e| RepoConfigError {
            line: at("setup_script"),
            message: format!("[lifecycle] setup_script: {e}"),
        })?;
        config.setup_script = Some(script);
    }
    Ok(config)
}

/// What is wrong with a path of the file, before its line is known.
#[derive(Debug, thiserror::Error)]
enum BadValue {
    #[error("must not be empty")]
    EmptyPath,
    #[error("{0:?} must be a path relative to the repository's root, without `..`")]
    PathOutsideRepo(String),
}

/// A path inside the repository: relative, no `..`, no NUL, not empty.
fn check_relative_path(path: &str) -> Result<(), BadValue> {
    if path.is_empty() {
        return Err(BadValue::EmptyPath);
    }
    if path.starts_with('/') || path.contains('\0') || path.split('/').any(|c| c == "..") {
        return Err(BadValue::PathOutsideRepo(path.to_owned()));
    }
    Ok(())
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// The first line where `needle` appears as a key (best effort: errors found after parsing
/// have no span of their own).
pub(crate) fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(needle)
                .or_else(|| l.strip_prefix(&format!("\"{needle}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// toml's message without its own rendering of the source (we add file and line).
fn describe_toml_error(e: &toml::de::Error) -> String {
    let message = e.message().trim();
    if message.starts_with("data did not match any variant of untagged enum RawEnvValue") {
        return "an [env] value must be a string or { secret = \"NAME\" }".into();
    }
    message.replace("RawEnvValue", "env value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let c = parse(
            r#"
[env]
NODE_ENV = "development"
DATABASE_URL = { secret = "staging-db" }
[agent_credentials]
claude = { name = "team-oauth" }
codex = { type = "api-key" }
[lifecycle]
setup_script = "scripts/setup.sh"
"#,
        )
        .unwrap();
        assert_eq!(c.env["NODE_ENV"], EnvValue::Plain("development".into()));
        assert_eq!(c.env["DATABASE_URL"], EnvValue::Secret("staging-db".into()));
        assert_eq!(
            c.agent_credentials[&AgentKind::Claude].name.as_deref(),
            Some("team-oauth")
        );
        assert_eq!(
            c.agent_credentials[&AgentKind::Codex].credential_type,
            Some(CredentialType::ApiKey)
        );
        assert_eq!(c.setup_script.as_deref(), Some("scripts/setup.sh"));
    }

    #[test]
    fn an_empty_file_is_an_empty_config() {
        assert_eq!(parse("").unwrap(), RepoConfig::default());
    }

    #[test]
    fn malformed_files_name_the_line_and_what_was_expected() {
        let cases: &[(&str, usize, &str)] = &[
            ("[env]\nA = \n", 2, "string"),
            ("[env]\nX = 1\n", 2, "string or { secret"),
            ("[nope]\na = 1\n", 1, "unknown field `nope`"),
            ("[env]\nA = { secrt = \"x\" }\n", 2, "string or { secret"),
            (
                "[agent_credentials]\ngemini = { name = \"x\" }\n",
                2,
                "gemini",
            ),
            (
                "[agent_credentials]\ngithub = { name = \"gh\" }\n",
                2,
                "github is not an agent: expected claude or codex",
            ),
            (
                "[agent_credentials]\nclaude = { type = \"password\" }\n",
                2,
                "oauth, api_key",
            ),
            (
                "[agent_credentials]\nclaude = { none = true, name = \"x\" }\n",
                2,
                "mutually exclusive",
            ),
            ("[agent_credentials]\nclaude = {}\n", 2, "expected { name"),
            (
                "[agent_credentials]\nclaude = { name = \"x\", extra = 1 }\n",
                2,
                "unknown field `extra`",
            ),
            (
                "[lifecycle]\nsetup_script = \"../x.sh\"\n",
                2,
                "relative to the repository",
            ),
            (
                "[lifecycle]\nsetup_script = \"/etc/x.sh\"\n",
                2,
                "relative to the repository",
            ),
            (
                "[lifecycle]\nsetup = \"x.sh\"\n",
                2,
                "unknown field `setup`",
            ),
            ("\n\n[env]\n\"1BAD\" = \"x\"\n", 4, "invalid env var name"),
            ("[env]\nA = { secret = \"\" }\n", 2, "must not be empty"),
        ];
        for (text, line, expected) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, Some(*line), "{text:?}: {e}");
            assert!(e.to_string().contains(expected), "{text:?}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!(".amika/config.toml:{line}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let e = parse(&"#".repeat(MAX_BYTES + 1)).unwrap_err();
        assert!(e.to_string().contains("at most 65536"), "{e}");
    }
}
