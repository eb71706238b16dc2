//! Parsing of `amika sandbox create`'s flags that take structured values (DESIGN §4, §9, §11).
//! Pure: strings in, values or one clear message out; every message names the flag and the
//! offending value, and says what is expected.
//!
//! - `--secret env:VAR=NAME` maps env var `VAR` to secret `NAME`; `--secret env:NAME` is
//!   `env:NAME=NAME`. `VAR` must be a shell variable name and may be mapped once.
//! - `--env KEY=VALUE` sets a plain variable; a `KEY` that a `--secret` also maps is an error.
//! - `--agent-credential KIND=NAME`, `--agent-credential-type KIND=TYPE`, `--no-agent-credential
//!   KIND`: each at most once per kind; `--no-agent-credential` and the other two are mutually
//!   exclusive for its kind; a name and a type for the same kind combine into `{kind, name,
//!   type}` (the named credential must then have that type). `KIND` is an agent (`claude`,
//!   `codex`): a `github` credential is a clone token, named with `--git-credential`.
//! - The request always carries one entry per agent, so a kind the user said nothing about is
//!   resolved by the server's default order rather than silently left out.
//! - `--git PATH|URL` is a URL when it looks like one and is no local directory.
//! - `--auto-stop` / `--auto-delete` are minutes within the API's bounds.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use amika_types::{AgentCredentialRef, AgentKind, CredentialType};

const SECRET_FORM: &str = "expected env:VAR=SECRET_NAME or env:SECRET_NAME";
/// The kinds the agent-credential flags accept, as their messages list them.
const AGENT_KINDS: &str = "claude or codex";
/// Longest idle interval the API accepts, in minutes (a week).
pub const MAX_MINUTES: f64 = 10080.0;

/// A flag that cannot be used as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError(pub String);

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlagError {}

fn fail<T>(message: String) -> Result<T, FlagError> {
    Err(FlagError(message))
}

/// Whether `name` matches `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses one `--secret` value into `(VAR, SECRET_NAME)`.
pub fn parse_secret(flag_value: &str) -> Result<(String, String), FlagError> {
    let Some(spec) = flag_value.strip_prefix("env:") else {
        return fail(format!("invalid --secret {flag_value:?}: {SECRET_FORM}"));
    };
    let (var, name, explicit_var) = match spec.split_once('=') {
        Some((var, name)) => (var, name, true),
        None => (spec, spec, false),
    };
    if spec.is_empty() {
        return fail(format!(
            "invalid --secret {flag_value:?}: empty secret name; {SECRET_FORM}"
        ));
    }
    if var.is_empty() {
        return fail(format!(
            "invalid --secret {flag_value:?}: empty env var name; {SECRET_FORM}"
        ));
    }
    if name.is_empty() {
        return fail(format!(
            "invalid --secret {flag_value:?}: empty secret name; {SECRET_FORM}"
        ));
    }
    if !is_env_var_name(var) {
        let hint = if explicit_var {
            String::new()
        } else {
            format!("; to inject secret {name:?}, name the variable: env:VAR={name}")
        };
        return fail(format!(
            "invalid --secret {flag_value:?}: env var name {var:?} must match [A-Za-z_][A-Za-z0-9_]*{hint}"
        ));
    }
    Ok((var.to_string(), name.to_string()))
}

/// Parses every `--secret` into the env var → secret name map; the same env var twice is an error.
pub fn parse_secrets(values: &[String]) -> Result<BTreeMap<String, String>, FlagError> {
    let mut map = BTreeMap::new();
    let mut given_by: BTreeMap<String, &str> = BTreeMap::new();
    for value in values {
        let (var, name) = parse_secret(value)?;
        if let Some(first) = given_by.get(&var) {
            return fail(format!(
                "invalid --secret {value:?}: env var {var} is already mapped by --secret {first:?}"
            ));
        }
        given_by.insert(var.clone(), value);
        map.insert(var, name);
    }
    Ok(map)
}

fn parse_kind(flag: &str, flag_value: &str, kind: &str) -> Result<AgentKind, FlagError> {
    match kind.parse::<AgentKind>() {
        Ok(kind) if kind.is_agent() => Ok(kind),
        Ok(kind) => fail(format!(
            "invalid {flag} {flag_value:?}: {kind} is not an agent: expected {AGENT_KINDS} (a {kind} credential is a clone token: name it with --git-credential NAME)"
        )),
        Err(_) => fail(format!(
            "invalid {flag} {flag_value:?}: unknown kind {kind:?}: expected {AGENT_KINDS}"
        )),
    }
}

/// clap's parser for a flag naming an agent (`agent-send --agent`): `github` is no agent.
pub fn parse_agent(value: &str) -> Result<AgentKind, String> {
    match value.parse::<AgentKind>() {
        Ok(kind) if kind.is_agent() => Ok(kind),
        _ => Err(format!("unknown agent {value:?}: expected {AGENT_KINDS}")),
    }
}

fn split_kind_value<'a>(
    flag: &str,
    flag_value: &'a str,
    form: &str,
) -> Result<(&'a str, &'a str), FlagError> {
    match flag_value.split_once('=') {
        Some(pair) => Ok(pair),
        None => fail(format!(
            "invalid {flag} {flag_value:?}: expected {form} with KIND {AGENT_KINDS}"
        )),
    }
}

/// What the user said about one kind, with the flag values that said it (for messages).
#[derive(Debug, Default)]
struct KindChoice<'a> {
    name: Option<(String, &'a str)>,
    credential_type: Option<(CredentialType, &'a str)>,
    none: Option<&'a str>,
}

/// Parses the three agent-credential flags into one reference per agent ([`AgentKind::AGENTS`]):
/// pinned by name → `{kind, name}`, by type → `{kind, type}`, both → `{kind, name, type}`,
/// `--no-agent-credential` → `{kind, none: true}`, nothing said → bare `{kind}`.
pub fn parse_agent_credentials(
    by_name: &[String],
    by_type: &[String],
    none: &[String],
) -> Result<Vec<AgentCredentialRef>, FlagError> {
    let mut choices: BTreeMap<AgentKind, KindChoice> = BTreeMap::new();

    for value in by_name {
        let flag = "--agent-credential";
        let (kind, name) = split_kind_value(flag, value, "KIND=NAME")?;
        let kind = parse_kind(flag, value, kind)?;
        if name.is_empty() {
            return fail(format!(
                "invalid {flag} {value:?}: empty credential name; expected KIND=NAME"
            ));
        }
        let choice = choices.entry(kind).or_default();
        if let Some((_, first)) = &choice.name {
            return fail(format!(
                "{flag} given twice for {kind} ({first:?} and {value:?})"
            ));
        }
        choice.name = Some((name.to_string(), value));
    }

    for value in by_type {
        let flag = "--agent-credential-type";
        let (kind, ty) = split_kind_value(flag, value, "KIND=TYPE")?;
        let kind = parse_kind(flag, value, kind)?;
        let ty: CredentialType = ty.parse().map_err(|_| {
            FlagError(format!(
                "invalid {flag} {value:?}: unknown type {ty:?}: expected {}",
                CredentialType::EXPECTED
            ))
        })?;
        let choice = choices.entry(kind).or_default();
        if let Some((_, first)) = &choice.credential_type {
            return fail(format!(
                "{flag} given twice for {kind} ({first:?} and {value:?})"
            ));
        }
        choice.credential_type = Some((ty, value));
    }

    for value in none {
        let flag = "--no-agent-credential";
        let kind = parse_kind(flag, value, value)?;
        let choice = choices.entry(kind).or_default();
        if choice.none.is_some() {
            return fail(format!("{flag} given twice for {kind} ({value:?})"));
        }
        choice.none = Some(value);
        if let Some((_, other)) = &choice.name {
            return fail(format!(
                "{flag} {value} and --agent-credential {other} are mutually exclusive (for {kind})"
            ));
        }
        if let Some((_, other)) = &choice.credential_type {
            return fail(format!(
                "{flag} {value} and --agent-credential-type {other} are mutually exclusive (for {kind})"
            ));
        }
    }

    Ok(AgentKind::AGENTS
        .iter()
        .map(|&kind| {
            let choice = choices.remove(&kind).unwrap_or_default();
            AgentCredentialRef {
                kind,
                none: choice.none.is_some(),
                name: choice.name.map(|(name, _)| name),
                credential_type: choice.credential_type.map(|(ty, _)| ty),
            }
        })
        .collect())
}

/// Parses every `--env KEY=VALUE` into the plain env var map. A `KEY` given twice, or also
/// mapped by a `--secret` (`secret_flags`, the raw `--secret` values), is an error. Values are
/// never quoted in a message (they may be anything the user pasted).
pub fn parse_env(
    values: &[String],
    secret_flags: &[String],
) -> Result<BTreeMap<String, String>, FlagError> {
    let mut map = BTreeMap::new();
    for value in values {
        let Some((key, plain)) = value.split_once('=') else {
            return fail(format!(
                "invalid --env {value:?}: expected KEY=VALUE (for a secret: --secret env:{value}=SECRET_NAME)"
            ));
        };
        if key.is_empty() {
            return fail(
                "invalid --env: empty variable name before '=': expected KEY=VALUE".into(),
            );
        }
        if !is_env_var_name(key) {
            return fail(format!(
                "invalid --env {key}=...: variable name {key:?} must match [A-Za-z_][A-Za-z0-9_]*; expected KEY=VALUE"
            ));
        }
        if map.insert(key.to_string(), plain.to_string()).is_some() {
            return fail(format!("--env {key} given twice: give each variable once"));
        }
        let secret = secret_flags
            .iter()
            .find(|flag| matches!(parse_secret(flag), Ok((var, _)) if var == key));
        if let Some(secret) = secret {
            return fail(format!(
                "--env {key}=... and --secret {secret:?} both set {key}: give it once (a plain value with --env, or a secret with --secret)"
            ));
        }
    }
    Ok(map)
}

/// What `--git` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitSource {
    /// A directory on this machine, inside a git checkout.
    Local(PathBuf),
    /// A URL the server clones.
    Url(String),
}

/// The forms `--git` takes, for messages.
pub const GIT_FORMS: &str =
    "a local git checkout's path, or a URL: https://, ssh://, git://, file:/// or user@host:path";

/// Reads `--git VALUE`; `is_dir`: whether `value` is an existing directory here. Anything with
/// `://` is a URL; otherwise a directory wins over the `user@host:path` form.
pub fn parse_git(value: &str, is_dir: bool) -> Result<GitSource, FlagError> {
    if value.trim().is_empty() {
        return fail(format!("--git is empty: expected {GIT_FORMS}"));
    }
    if value.contains("://") {
        return Ok(GitSource::Url(value.to_string()));
    }
    if is_dir {
        return Ok(GitSource::Local(PathBuf::from(value)));
    }
    let scp_like = value
        .split_once(':')
        .is_some_and(|(host, _)| host.contains('@') && !host.contains('/'));
    if scp_like {
        return Ok(GitSource::Url(value.to_string()));
    }
    fail(format!(
        "invalid --git {value:?}: no such directory, and not a URL: expected {GIT_FORMS}"
    ))
}

/// clap's parser for `--auto-stop` / `--auto-delete`: minutes from 0 (never) to a week.
pub fn parse_minutes(value: &str) -> Result<f64, String> {
    let expected = format!("expected a number of minutes from 0 to {MAX_MINUTES} (0: never)");
    match value.trim().parse::<f64>() {
        Ok(m) if m.is_finite() && (0.0..=MAX_MINUTES).contains(&m) => Ok(m),
        _ => Err(expected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    fn secret_err(value: &str) -> String {
        parse_secret(value).unwrap_err().to_string()
    }

    fn agent_err(by_name: &[&str], by_type: &[&str], none: &[&str]) -> String {
        parse_agent_credentials(&strings(by_name), &strings(by_type), &strings(none))
            .unwrap_err()
            .to_string()
    }

    fn r(
        kind: AgentKind,
        name: Option<&str>,
        ty: Option<CredentialType>,
        none: bool,
    ) -> AgentCredentialRef {
        AgentCredentialRef {
            kind,
            name: name.map(str::to_string),
            credential_type: ty,
            none,
        }
    }

    // ---------------------------------------------------------------- --secret

    #[test]
    fn secret_with_var_and_name() {
        assert_eq!(
            parse_secret("env:ANTHROPIC_API_KEY=my-claude-key").unwrap(),
            ("ANTHROPIC_API_KEY".into(), "my-claude-key".into())
        );
    }

    #[test]
    fn secret_name_alone_is_also_the_var() {
        assert_eq!(
            parse_secret("env:DATABASE_URL").unwrap(),
            ("DATABASE_URL".into(), "DATABASE_URL".into())
        );
    }

    #[test]
    fn secret_name_may_contain_equals_after_the_first() {
        assert_eq!(
            parse_secret("env:X=a=b").unwrap(),
            ("X".into(), "a=b".into())
        );
    }

    #[test]
    fn secret_without_env_prefix_shows_the_expected_form() {
        assert_eq!(
            secret_err("foo"),
            r#"invalid --secret "foo": expected env:VAR=SECRET_NAME or env:SECRET_NAME"#
        );
        assert!(secret_err("FOO=bar").contains(SECRET_FORM));
        assert!(secret_err("ENV:FOO").contains(SECRET_FORM));
        assert!(secret_err("file:FOO").contains(r#""file:FOO""#));
        assert!(secret_err("").contains(SECRET_FORM));
    }

    #[test]
    fn secret_with_nothing_after_prefix_is_an_error() {
        let err = secret_err("env:");
        assert!(
            err.contains(r#""env:""#) && err.contains("empty secret name"),
            "{err}"
        );
        assert!(err.contains(SECRET_FORM), "{err}");
    }

    #[test]
    fn secret_with_empty_name_is_an_error() {
        let err = secret_err("env:X=");
        assert!(
            err.contains(r#""env:X=""#) && err.contains("empty secret name"),
            "{err}"
        );
    }

    #[test]
    fn secret_with_empty_var_is_an_error() {
        let err = secret_err("env:=name");
        assert!(
            err.contains(r#""env:=name""#) && err.contains("empty env var name"),
            "{err}"
        );
    }

    #[test]
    fn secret_var_must_be_a_shell_name() {
        for bad in ["env:1X=a", "env:A-B=a", "env:A B=a", "env:Ä=a", "env:A.B=a"] {
            let err = secret_err(bad);
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("[A-Za-z_][A-Za-z0-9_]*"),
                "{err}"
            );
        }
        assert!(parse_secret("env:_x9=a").is_ok());
    }

    #[test]
    fn secret_short_form_with_a_non_var_name_suggests_the_long_form() {
        let err = secret_err("env:my-key");
        assert!(err.contains(r#"env var name "my-key""#), "{err}");
        assert!(err.contains("env:VAR=my-key"), "{err}");
    }

    #[test]
    fn the_same_var_twice_is_an_error() {
        let err = parse_secrets(&strings(&["env:X=a", "env:Y=b", "env:X=c"]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"invalid --secret "env:X=c": env var X is already mapped by --secret "env:X=a""#
        );
        let err = parse_secrets(&strings(&["env:X", "env:X=other"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("env var X is already mapped"), "{err}");
    }

    #[test]
    fn secrets_build_the_env_map() {
        let map = parse_secrets(&strings(&["env:A=one", "env:B"])).unwrap();
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            vec![("A".into(), "one".into()), ("B".into(), "B".into())]
        );
        assert!(parse_secrets(&[]).unwrap().is_empty());
    }

    // ---------------------------------------------------------------- agent credentials

    #[test]
    fn nothing_said_sends_one_bare_entry_per_kind() {
        let refs = parse_agent_credentials(&[], &[], &[]).unwrap();
        assert_eq!(refs.len(), AgentKind::AGENTS.len());
        for (r, kind) in refs.iter().zip(AgentKind::AGENTS) {
            assert_eq!(
                r,
                &AgentCredentialRef {
                    kind: *kind,
                    name: None,
                    credential_type: None,
                    none: false
                }
            );
        }
    }

    #[test]
    fn every_kind_always_has_exactly_one_entry() {
        let cases: Vec<(Vec<&str>, Vec<&str>, Vec<&str>)> = vec![
            (vec!["claude=a"], vec![], vec![]),
            (vec![], vec!["codex=oauth"], vec![]),
            (vec![], vec![], vec!["claude", "codex"]),
            (vec!["claude=a", "codex=b"], vec!["claude=oauth"], vec![]),
        ];
        for (n, t, x) in cases {
            let refs = parse_agent_credentials(&strings(&n), &strings(&t), &strings(&x)).unwrap();
            let kinds: Vec<AgentKind> = refs.iter().map(|r| r.kind).collect();
            assert_eq!(kinds, AgentKind::AGENTS.to_vec());
        }
    }

    #[test]
    fn the_design_example_resolves_as_written() {
        let refs = parse_agent_credentials(
            &strings(&["claude=personal-oauth"]),
            &strings(&["codex=api-key"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            refs,
            vec![
                r(AgentKind::Claude, Some("personal-oauth"), None, false),
                r(AgentKind::Codex, None, Some(CredentialType::ApiKey), false),
            ]
        );
    }

    #[test]
    fn no_agent_credential_sends_none() {
        let refs = parse_agent_credentials(&[], &[], &strings(&["codex"])).unwrap();
        assert_eq!(
            refs,
            vec![
                r(AgentKind::Claude, None, None, false),
                r(AgentKind::Codex, None, None, true),
            ]
        );
        let json = serde_json::to_string(&refs).unwrap();
        assert_eq!(json, r#"[{"kind":"claude"},{"kind":"codex","none":true}]"#);
    }

    #[test]
    fn name_and_type_for_one_kind_combine() {
        let refs =
            parse_agent_credentials(&strings(&["claude=work"]), &strings(&["claude=oauth"]), &[])
                .unwrap();
        assert_eq!(
            refs[0],
            r(
                AgentKind::Claude,
                Some("work"),
                Some(CredentialType::Oauth),
                false
            )
        );
    }

    #[test]
    fn type_spellings_are_accepted() {
        for (spelling, ty) in [
            ("oauth", CredentialType::Oauth),
            ("api_key", CredentialType::ApiKey),
            ("api-key", CredentialType::ApiKey),
        ] {
            let refs = parse_agent_credentials(&[], &strings(&[&format!("codex={spelling}")]), &[])
                .unwrap();
            assert_eq!(refs[1].credential_type, Some(ty));
        }
    }

    #[test]
    fn agent_credential_without_equals_is_an_error() {
        let err = agent_err(&["claude"], &[], &[]);
        assert_eq!(
            err,
            r#"invalid --agent-credential "claude": expected KIND=NAME with KIND claude or codex"#
        );
    }

    #[test]
    fn agent_credential_with_unknown_kind_is_an_error() {
        let err = agent_err(&["gemini=x"], &[], &[]);
        assert_eq!(
            err,
            r#"invalid --agent-credential "gemini=x": unknown kind "gemini": expected claude or codex"#
        );
        let err = agent_err(&["=x"], &[], &[]);
        assert!(
            err.contains(r#""=x""#) && err.contains("unknown kind \"\""),
            "{err}"
        );
        let err = agent_err(&["Claude=x"], &[], &[]);
        assert!(err.contains("unknown kind \"Claude\""), "{err}");
    }

    #[test]
    fn agent_credential_with_empty_name_is_an_error() {
        let err = agent_err(&["claude="], &[], &[]);
        assert!(
            err.contains(r#"invalid --agent-credential "claude=""#)
                && err.contains("empty credential name"),
            "{err}"
        );
    }

    #[test]
    fn agent_credential_twice_for_a_kind_is_an_error() {
        let err = agent_err(&["claude=a", "claude=b"], &[], &[]);
        assert_eq!(
            err,
            r#"--agent-credential given twice for claude ("claude=a" and "claude=b")"#
        );
    }

    #[test]
    fn agent_credential_type_without_equals_is_an_error() {
        let err = agent_err(&[], &["codex"], &[]);
        assert_eq!(
            err,
            r#"invalid --agent-credential-type "codex": expected KIND=TYPE with KIND claude or codex"#
        );
    }

    #[test]
    fn agent_credential_type_with_unknown_kind_is_an_error() {
        let err = agent_err(&[], &["gpt=oauth"], &[]);
        assert!(
            err.starts_with(r#"invalid --agent-credential-type "gpt=oauth": unknown kind "gpt""#),
            "{err}"
        );
    }

    #[test]
    fn agent_credential_type_with_unknown_type_is_an_error() {
        let err = agent_err(&[], &["codex=token"], &[]);
        assert_eq!(
            err,
            r#"invalid --agent-credential-type "codex=token": unknown type "token": expected oauth, api_key or api-key"#
        );
        let err = agent_err(&[], &["codex="], &[]);
        assert!(err.contains(r#"unknown type """#), "{err}");
    }

    #[test]
    fn agent_credential_type_twice_for_a_kind_is_an_error() {
        let err = agent_err(&[], &["codex=oauth", "codex=api-key"], &[]);
        assert_eq!(
            err,
            r#"--agent-credential-type given twice for codex ("codex=oauth" and "codex=api-key")"#
        );
    }

    #[test]
    fn no_agent_credential_with_unknown_kind_is_an_error() {
        let err = agent_err(&[], &[], &["gemini"]);
        assert_eq!(
            err,
            r#"invalid --no-agent-credential "gemini": unknown kind "gemini": expected claude or codex"#
        );
        let err = agent_err(&[], &[], &["codex=x"]);
        assert!(err.contains(r#"--no-agent-credential "codex=x""#), "{err}");
    }

    #[test]
    fn no_agent_credential_twice_is_an_error() {
        let err = agent_err(&[], &[], &["codex", "codex"]);
        assert!(
            err.starts_with("--no-agent-credential given twice for codex"),
            "{err}"
        );
    }

    #[test]
    fn no_agent_credential_excludes_a_type_for_the_same_kind() {
        let err = agent_err(&[], &["codex=api-key"], &["codex"]);
        assert_eq!(
            err,
            "--no-agent-credential codex and --agent-credential-type codex=api-key are mutually exclusive (for codex)"
        );
    }

    #[test]
    fn no_agent_credential_excludes_a_name_for_the_same_kind() {
        let err = agent_err(&["claude=personal"], &[], &["claude"]);
        assert_eq!(
            err,
            "--no-agent-credential claude and --agent-credential claude=personal are mutually exclusive (for claude)"
        );
    }

    #[test]
    fn no_agent_credential_for_one_kind_leaves_the_other_pinned() {
        let refs =
            parse_agent_credentials(&strings(&["claude=p"]), &[], &strings(&["codex"])).unwrap();
        assert_eq!(
            refs,
            vec![
                r(AgentKind::Claude, Some("p"), None, false),
                r(AgentKind::Codex, None, None, true),
            ]
        );
    }

    #[test]
    fn agents_are_claude_and_codex() {
        assert_eq!(parse_agent("claude"), Ok(AgentKind::Claude));
        assert_eq!(parse_agent("codex"), Ok(AgentKind::Codex));
        for bad in ["github", "gemini", ""] {
            assert_eq!(
                parse_agent(bad).unwrap_err(),
                format!("unknown agent {bad:?}: expected claude or codex")
            );
        }
    }

    #[test]
    fn github_is_refused_by_every_agent_flag_and_named_as_a_clone_token() {
        for (n, t, x, flag) in [
            (
                vec!["github=gh"],
                vec![],
                vec![],
                "--agent-credential \"github=gh\"",
            ),
            (
                vec![],
                vec!["github=api_key"],
                vec![],
                "--agent-credential-type \"github=api_key\"",
            ),
            (
                vec![],
                vec![],
                vec!["github"],
                "--no-agent-credential \"github\"",
            ),
        ] {
            let err = agent_err(&n, &t, &x);
            assert!(err.contains(flag), "{err}");
            assert!(err.contains("github is not an agent"), "{err}");
            assert!(err.contains("expected claude or codex"), "{err}");
            assert!(err.contains("--git-credential"), "{err}");
        }
    }

    // ---------------------------------------------------------------- --env

    fn env_err(values: &[&str], secrets: &[&str]) -> String {
        parse_env(&strings(values), &strings(secrets))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn env_values_are_taken_verbatim() {
        let map = parse_env(
            &strings(&["NODE_ENV=development", "EMPTY=", "EQ=a=b c", "_x1= spaced "]),
            &strings(&["env:DB=db-url"]),
        )
        .unwrap();
        assert_eq!(map["NODE_ENV"], "development");
        assert_eq!(map["EMPTY"], "");
        assert_eq!(map["EQ"], "a=b c");
        assert_eq!(map["_x1"], " spaced ");
        assert_eq!(map.len(), 4);
    }

    #[test]
    fn malformed_env_flags_are_clear_errors() {
        assert_eq!(
            env_err(&["FOO"], &[]),
            r#"invalid --env "FOO": expected KEY=VALUE (for a secret: --secret env:FOO=SECRET_NAME)"#
        );
        assert_eq!(
            env_err(&["=value"], &[]),
            "invalid --env: empty variable name before '=': expected KEY=VALUE"
        );
        let err = env_err(&["1A=hidden-value"], &[]);
        assert!(
            err.contains("\"1A\" must match [A-Za-z_][A-Za-z0-9_]*"),
            "{err}"
        );
        assert!(
            !err.contains("hidden-value"),
            "values are not quoted: {err}"
        );
        assert_eq!(
            env_err(&["A=1", "A=2"], &[]),
            "--env A given twice: give each variable once"
        );
    }

    #[test]
    fn an_env_key_that_a_secret_also_sets_names_both_flags() {
        let err = env_err(&["DB=plain-value"], &["env:X=y", "env:DB=db-url"]);
        assert_eq!(
            err,
            r#"--env DB=... and --secret "env:DB=db-url" both set DB: give it once (a plain value with --env, or a secret with --secret)"#
        );
        let err = env_err(&["DATABASE_URL=x"], &["env:DATABASE_URL"]);
        assert!(err.contains(r#"--secret "env:DATABASE_URL""#), "{err}");
    }

    // ---------------------------------------------------------------- --git

    #[test]
    fn git_values_are_urls_or_directories() {
        for url in [
            "https://github.com/org/repo.git",
            "ssh://git@host/org/repo",
            "file:///srv/git/repo.git",
            "git://host/repo",
        ] {
            assert_eq!(parse_git(url, false).unwrap(), GitSource::Url(url.into()));
            assert_eq!(parse_git(url, true).unwrap(), GitSource::Url(url.into()));
        }
        assert_eq!(
            parse_git("git@github.com:org/repo.git", false).unwrap(),
            GitSource::Url("git@github.com:org/repo.git".into())
        );
        assert_eq!(
            parse_git("../my-project", true).unwrap(),
            GitSource::Local("../my-project".into())
        );
        // A directory that happens to look like user@host:path is the directory.
        assert_eq!(
            parse_git("me@x:y", true).unwrap(),
            GitSource::Local("me@x:y".into())
        );
    }

    #[test]
    fn a_git_value_that_is_neither_is_a_clear_error() {
        let err = parse_git("no/such/dir", false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                r#"invalid --git "no/such/dir": no such directory, and not a URL: expected {GIT_FORMS}"#
            )
        );
        assert!(parse_git("dir/a@b:c", false).is_err());
        assert!(parse_git(" ", false)
            .unwrap_err()
            .to_string()
            .starts_with("--git is empty: expected"));
    }

    // ---------------------------------------------------------------- minutes

    #[test]
    fn minutes_are_bounded() {
        assert_eq!(parse_minutes("0"), Ok(0.0));
        assert_eq!(parse_minutes("30"), Ok(30.0));
        assert_eq!(parse_minutes("1.5"), Ok(1.5));
        assert_eq!(parse_minutes("10080"), Ok(10080.0));
        for bad in ["-1", "-0.5", "10081", "soon", "", "NaN", "inf"] {
            let err = parse_minutes(bad).unwrap_err();
            assert_eq!(
                err, "expected a number of minutes from 0 to 10080 (0: never)",
                "{bad}"
            );
        }
    }

    #[test]
    fn env_var_names() {
        assert!(is_env_var_name("A"));
        assert!(is_env_var_name("_"));
        assert!(is_env_var_name("a_1"));
        assert!(!is_env_var_name(""));
        assert!(!is_env_var_name("1"));
        assert!(!is_env_var_name("a-b"));
    }
}
