//! Input rules shared by every entry point (API, web UI): names, env vars, sizes.
//!
//! Each error names the request field it is about (see [`ServiceError::at`]). The fields are
//! where every request keeps what is checked here: a secret's, credential's, sandbox's, org's,
//! user's and API key's name is its `name`; a value to store is `value`; an env var name is a
//! key of `secret_env_vars`.

use amika_types::ErrorCode;

use super::{Result, ServiceError};

/// Largest secret or credential value accepted.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

fn check(
    field: &str,
    what: &str,
    value: &str,
    max: usize,
    ok_char: impl Fn(char) -> bool,
    first_ok: impl Fn(char) -> bool,
    expected: &str,
) -> Result<()> {
    let fail = |why: String| Err(ServiceError::invalid(ErrorCode::InvalidName, why).at(field));
    if value.is_empty() {
        return fail(format!("{what} must not be empty: expected {expected}"));
    }
    if value.chars().count() > max {
        return fail(format!("{what} {value:?} is longer than {max} characters"));
    }
    let first = value.chars().next().unwrap_or(' ');
    if !first_ok(first) || !value.chars().all(ok_char) {
        return fail(format!("invalid {what} {value:?}: expected {expected}"));
    }
    Ok(())
}

/// Secret and credential names: `DATABASE_URL`, `personal-oauth`, `team.key`.
pub fn object_name(what: &str, value: &str) -> Result<()> {
    check(
        "name",
        what,
        value,
        128,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
        |c| c.is_ascii_alphanumeric() || c == '_',
        "letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (at most 128)",
    )
}

/// Sandbox names: also used in paths and host names, so kept DNS-like.
pub fn sandbox_name(value: &str) -> Result<()> {
    check(
        "name",
        "sandbox name",
        value,
        63,
        |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
        |c| c.is_ascii_alphanumeric(),
        "letters, digits, '-', '_' and '.', starting with a letter or digit (at most 63)",
    )
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`, as keys of `secret_env_vars`.
pub fn env_var(value: &str) -> Result<()> {
    check(
        &format!("secret_env_vars.{value}"),
        "env var name",
        value,
        128,
        |c| c.is_ascii_alphanumeric() || c == '_',
        |c| c.is_ascii_alphabetic() || c == '_',
        "[A-Za-z_][A-Za-z0-9_]*",
    )
}

/// Org, user and API key names: free text, printable, short.
pub fn label(what: &str, value: &str) -> Result<()> {
    check(
        "name",
        what,
        value.trim(),
        64,
        |c| !c.is_control(),
        |c| !c.is_whitespace(),
        "1 to 64 printable characters",
    )
}

/// A value to store: not empty, not oversize.
pub fn value(what: &str, value: &str) -> Result<()> {
    let fail = |why: String| Err(ServiceError::invalid(ErrorCode::InvalidValue, why).at("value"));
    if value.is_empty() {
        return fail(format!("{what} value must not be empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return fail(format!(
            "{what} value is {} bytes; at most {MAX_VALUE_BYTES} are accepted",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_documented_examples() {
        for ok in [
            "DATABASE_URL",
            "personal-oauth",
            "my-claude-key",
            "team.key",
            "_x",
        ] {
            object_name("secret name", ok).unwrap();
        }
        for ok in ["dev-box", "a", "box.1"] {
            sandbox_name(ok).unwrap();
        }
        env_var("ANTHROPIC_API_KEY").unwrap();
    }

    #[test]
    fn bad_names_say_what_is_expected() {
        for bad in ["", "-x", "a b", "a/b", "é", &"x".repeat(129)] {
            let err = object_name("secret name", bad).unwrap_err().to_string();
            assert!(err.contains("secret name"), "{bad:?}: {err}");
        }
        for bad in ["", "Dev Box", "-box", "a/b", &"x".repeat(64)] {
            assert!(sandbox_name(bad).is_err(), "{bad:?}");
        }
        for bad in ["1X", "A-B", "", "A B"] {
            let err = env_var(bad).unwrap_err().to_string();
            assert!(err.contains("[A-Za-z_]"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn each_error_names_the_request_field_it_is_about() {
        let field = |r: Result<()>| r.unwrap_err().field().map(str::to_string);
        assert_eq!(field(sandbox_name("")), Some("name".into()));
        assert_eq!(
            field(object_name("secret name", "a b")),
            Some("name".into())
        );
        assert_eq!(field(label("org name", " ")), Some("name".into()));
        assert_eq!(field(value("secret", "")), Some("value".into()));
        assert_eq!(field(env_var("1X")), Some("secret_env_vars.1X".into()));
        assert_eq!(field(env_var("")), Some("secret_env_vars.".into()));
        assert_eq!(
            sandbox_name("a b").unwrap_err().code(),
            ErrorCode::InvalidName
        );
        assert_eq!(value("s", "").unwrap_err().code(), ErrorCode::InvalidValue);
    }

    #[test]
    fn values_must_be_non_empty_and_bounded() {
        assert!(value("secret", "").is_err());
        assert!(value("secret", &"x".repeat(MAX_VALUE_BYTES + 1))
            .unwrap_err()
            .to_string()
            .contains("at most"));
        value("secret", "x").unwrap();
    }
}
