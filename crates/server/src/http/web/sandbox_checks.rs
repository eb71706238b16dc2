//! Every error of a New sandbox form at once, in plain words.
//!
//! The service checks a create request whole and reports every field's error in one answer
//! ([`ServiceError::Several`]); the form asks its preview once (it stores nothing) and places
//! each error next to the input of the field it names.
//!
//! The messages are the service's, written for API and CLI users: [`plain`] takes out what a
//! person filling in a form cannot use (request field paths, patterns, CLI commands).

use amika_types as t;

use crate::service::{Caller, Service, ServiceError};

/// The preview of `req`, or every error the service finds in it, one per field it names.
pub async fn check_all(
    svc: &Service,
    caller: &Caller,
    req: &t::CreateSandboxRequest,
) -> Result<t::ResolutionPreview, Vec<ServiceError>> {
    svc.preview_sandbox(caller, req)
        .await
        .map_err(ServiceError::each)
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
}
