//! Parsing of `amika sandbox create`'s injection flags into a `CreateSandboxRequest`'s
//! `secret_env_vars` and `agent_credentials` (DESIGN §4, §9). Pure: strings in, values or one
//! clear message out; every message names the flag and the offending value.
//!
//! - `--secret env:VAR=NAME` maps env var `VAR` to secret `NAME`; `--secret env:NAME` is
//!   `env:NAME=NAME`. `VAR` must be a shell variable name and may be mapped once.
//! - `--agent-credential KIND=NAME`, `--agent-credential-type KIND=TYPE`, `--no-agent-credential
//!   KIND`: each at most once per kind; `--no-agent-credential` excludes the other two for its
//!   kind; a name and a type for the same kind combine into `{kind, name, type}` (the named
//!   credential must then have that type).
//! - The request always carries one entry per known kind, so a kind the user said nothing about
//!   is resolved by the server's default order rather than silently left out.

use std::collections::BTreeMap;
use std::fmt;

use amika_types::{AgentCredentialRef, AgentKind, CredentialType};

const SECRET_FORM: &str = "expected env:VAR=SECRET_NAME or env:SECRET_NAME";

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
    kind.parse().map_err(|_| {
        FlagError(format!(
            "invalid {flag} {flag_value:?}: unknown kind {kind:?}: expected {}",
            AgentKind::EXPECTED
        ))
    })
}

fn split_kind_value<'a>(
    flag: &str,
    flag_value: &'a str,
    form: &str,
) -> Result<(&'a str, &'a str), FlagError> {
    match flag_value.split_once('=') {
        Some(pair) => Ok(pair),
        None => fail(format!(
            "invalid {flag} {flag_value:?}: expected {form} with KIND {}",
            AgentKind::EXPECTED
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

/// Parses the three agent-credential flags into one reference per kind of [`AgentKind::ALL`]:
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
                "{flag} {value} cannot be combined with --agent-credential {other}"
            ));
        }
        if let Some((_, other)) = &choice.credential_type {
            return fail(format!(
                "{flag} {value} cannot be combined with --agent-credential-type {other}"
            ));
        }
    }

    Ok(AgentKind::ALL
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
        assert_eq!(refs.len(), AgentKind::ALL.len());
        for (r, kind) in refs.iter().zip(AgentKind::ALL) {
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
            assert_eq!(kinds, AgentKind::ALL.to_vec());
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
            "--no-agent-credential codex cannot be combined with --agent-credential-type codex=api-key"
        );
    }

    #[test]
    fn no_agent_credential_excludes_a_name_for_the_same_kind() {
        let err = agent_err(&["claude=personal"], &[], &["claude"]);
        assert_eq!(
            err,
            "--no-agent-credential claude cannot be combined with --agent-credential claude=personal"
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
    fn env_var_names() {
        assert!(is_env_var_name("A"));
        assert!(is_env_var_name("_"));
        assert!(is_env_var_name("a_1"));
        assert!(!is_env_var_name(""));
        assert!(!is_env_var_name("1"));
        assert!(!is_env_var_name("a-b"));
    }
}
