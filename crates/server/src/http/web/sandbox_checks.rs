//! Every error of a New sandbox form at once, in plain words.
//!
//! The service stops at the first error of a request. To report them all, the form asks again
//! with the field that error names set aside — the name replaced by a valid placeholder, the
//! env var or credential choice left out, a workspace field back to its default — until the
//! request passes or an error names no field (or one already set aside). Only the preview is
//! asked (it stores nothing); the errors keep the field they name, so each still lands next to
//! its input.
//!
//! The messages are the service's, written for API and CLI users: [`plain`] takes out what a
//! person filling in a form cannot use (request field paths, patterns, CLI commands).

use amika_types as t;
use serde_json::Value;

use crate::service::{Caller, Service, ServiceError};

/// How many times a form is asked again at most.
const MAX_ROUNDS: usize = 12;
/// A valid name standing in for one that was refused.
const PLACEHOLDER_NAME: &str = "preview";

/// The first error and every further one found by setting aside what each names; the preview
/// when there is none.
pub async fn check_all(
    svc: &Service,
    caller: &Caller,
    req: &t::CreateSandboxRequest,
) -> Result<t::ResolutionPreview, Vec<ServiceError>> {
    let mut errors = Vec::new();
    let mut set_aside: Vec<String> = Vec::new();
    let mut current = req.clone();
    for _ in 0..MAX_ROUNDS {
        let e = match svc.preview_sandbox(caller, &current).await {
            Ok(p) if errors.is_empty() => return Ok(p),
            Ok(_) => break,
            Err(e) => e,
        };
        let field = e.field().map(str::to_string);
        errors.push(e);
        let Some(field) = field else { break };
        if set_aside.contains(&field) {
            break;
        }
        match without(&current, &field) {
            Some(next) => current = next,
            None => break,
        }
        set_aside.push(field);
    }
    Err(errors)
}

/// `req` with the field at `path` set aside, or `None` where that cannot be done.
fn without(req: &t::CreateSandboxRequest, path: &str) -> Option<t::CreateSandboxRequest> {
    let mut v = serde_json::to_value(req).ok()?;
    let obj = v.as_object_mut()?;
    if path == "name" {
        obj.insert("name".into(), Value::String(PLACEHOLDER_NAME.into()));
    } else if let Some(env) = path.strip_prefix("secret_env_vars.") {
        obj.get_mut("secret_env_vars")?
            .as_object_mut()?
            .remove(env)?;
    } else if let Some(rest) = path.strip_prefix("agent_credentials[") {
        let index: usize = rest.split_once(']')?.0.parse().ok()?;
        let entry = obj.get_mut("agent_credentials")?.get_mut(index)?;
        let kind = entry.get("kind")?.clone();
        *entry = serde_json::json!({"kind": kind, "none": true});
    } else {
        let top = path.split(['.', '[']).next()?;
        obj.remove(top)?;
    }
    serde_json::from_value(v).ok()
}

/// A service message without what only an API or CLI user can act on.
pub fn plain(message: &str) -> String {
    let replaced = message
        .replace(
            "[A-Za-z_][A-Za-z0-9_]*",
            "letters, digits and '_', not starting with a digit",
        )
        .replace(" (env_vars / --env)", "")
        .replace(" (secret_env_vars / --secret)", "")
        .replace(
            "(push it with `amika secret push ",
            "(add it on the Secrets page `",
        );
    // A parenthesis holding a command: "(push it with `amika secret push X=...`)".
    let mut out = String::new();
    let mut rest = replaced.as_str();
    while let Some(start) = rest.find(" (") {
        let Some(len) = rest[start..].find(')') else {
            break;
        };
        let group = &rest[start..=start + len];
        out.push_str(&rest[..start]);
        if !group.contains('`') {
            out.push_str(group);
        } else if group.contains("Secrets page") {
            out.push_str(" (add it on the Secrets page)");
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    // A command left outside parentheses: ": an admin runs `amika preset install x`".
    strip_commands(&out)
}

/// Sentences' command parts in backticks replaced by what they do not need: the command.
fn strip_commands(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let Some(len) = rest[start + 1..].find('`') else {
            break;
        };
        let command = &rest[start + 1..start + 1 + len];
        out.push_str(&rest[..start]);
        if command.starts_with("amika ") {
            out.push_str("the CLI");
        } else {
            out.push_str(command);
        }
        rest = &rest[start + 2 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use amika_types::AgentKind;

    #[test]
    fn messages_lose_paths_patterns_and_commands() {
        assert_eq!(
            plain("env var DB: secret \"x\" not found (push it with `amika secret push x=...`)"),
            "env var DB: secret \"x\" not found (add it on the Secrets page)"
        );
        assert_eq!(
            plain("invalid env var name \"1X\": expected [A-Za-z_][A-Za-z0-9_]*"),
            "invalid env var name \"1X\": expected letters, digits and '_', not starting with a digit"
        );
        assert_eq!(
            plain("env var A is given twice, as a plain value (env_vars / --env) and as a secret (secret_env_vars / --secret): give it once"),
            "env var A is given twice, as a plain value and as a secret: give it once"
        );
        assert_eq!(
            plain("preset coder is not installed (an admin installs it with `amika preset install coder`)"),
            "preset coder is not installed"
        );
        assert_eq!(
            plain("keep (this) and run `amika x` then"),
            "keep (this) and run the CLI then"
        );
        for m in [
            "a (b) c (d `amika e`) f",
            "no parens at all",
            "(unclosed `x",
        ] {
            let p = plain(m);
            assert!(!p.contains("amika e"), "{p}");
        }
    }

    #[test]
    fn a_field_is_set_aside_as_the_request_stays_valid() {
        let req = t::CreateSandboxRequest {
            name: "bad name".into(),
            secret_env_vars: [("A".to_string(), "a".to_string()), ("B".into(), "b".into())].into(),
            agent_credentials: vec![t::AgentCredentialRef {
                kind: AgentKind::Codex,
                name: Some("missing".into()),
                credential_type: None,
                none: false,
            }],
            ..Default::default()
        };
        let r = without(&req, "name").unwrap();
        assert_eq!(r.name, PLACEHOLDER_NAME);
        let r = without(&req, "secret_env_vars.A").unwrap();
        assert_eq!(r.secret_env_vars.keys().collect::<Vec<_>>(), ["B"]);
        let r = without(&req, "agent_credentials[0].name").unwrap();
        assert!(r.agent_credentials[0].none);
        assert_eq!(r.agent_credentials[0].kind, AgentKind::Codex);
        assert!(without(&req, "agent_credentials[5]").is_none());
        assert!(without(&req, "secret_env_vars.C").is_none());
    }
}
