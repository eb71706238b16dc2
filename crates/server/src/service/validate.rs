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

/// A name rule, one definition for both the validator and the OpenAPI document (`pattern`,
/// `maxLength`), so that the two cannot drift (a property test checks that they agree).
#[derive(Debug, Clone, Copy)]
pub struct NameRule {
    pub max_chars: usize,
    first: fn(char) -> bool,
    rest: fn(char) -> bool,
    /// The same rule as an ECMA-262 regular expression, for JSON Schema's `pattern`.
    pub pattern: &'static str,
    expected: &'static str,
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
fn alnum_or_underscore(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
fn alpha_or_underscore(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Secret and credential names: `DATABASE_URL`, `personal-oauth`, `team.key`.
pub const OBJECT_NAME: NameRule = NameRule {
    max_chars: 128,
    first: alnum_or_underscore,
    rest: name_char,
    pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
    expected:
        "letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (at most 128)",
};

/// Sandbox names: also used in paths and host names, so kept DNS-like.
pub const SANDBOX_NAME: NameRule = NameRule {
    max_chars: 63,
    first: alnum,
    rest: name_char,
    pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    expected: "letters, digits, '-', '_' and '.', starting with a letter or digit (at most 63)",
};

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`.
pub const ENV_VAR: NameRule = NameRule {
    max_chars: 128,
    first: alpha_or_underscore,
    rest: alnum_or_underscore,
    pattern: "^[A-Za-z_][A-Za-z0-9_]*$",
    expected: "[A-Za-z_][A-Za-z0-9_]*",
};

impl NameRule {
    /// Whether `value` follows the rule.
    pub fn accepts(&self, value: &str) -> bool {
        let mut chars = value.chars();
        chars.next().is_some_and(self.first)
            && chars.all(self.rest)
            && value.chars().count() <= self.max_chars
    }
}

fn fail(field: &str, why: String) -> Result<()> {
    Err(ServiceError::invalid(ErrorCode::InvalidName, why).at(field))
}

fn check(field: &str, what: &str, value: &str, rule: &NameRule) -> Result<()> {
    let expected = rule.expected;
    if value.is_empty() {
        return fail(
            field,
            format!("{what} must not be empty: expected {expected}"),
        );
    }
    if value.chars().count() > rule.max_chars {
        let max = rule.max_chars;
        return fail(
            field,
            format!("{what} {value:?} is longer than {max} characters"),
        );
    }
    if !rule.accepts(value) {
        return fail(
            field,
            format!("invalid {what} {value:?}: expected {expected}"),
        );
    }
    Ok(())
}

/// Secret and credential names ([`OBJECT_NAME`]).
pub fn object_name(what: &str, value: &str) -> Result<()> {
    check("name", what, value, &OBJECT_NAME)
}

/// Sandbox names ([`SANDBOX_NAME`]).
pub fn sandbox_name(value: &str) -> Result<()> {
    check("name", "sandbox name", value, &SANDBOX_NAME)
}

/// Environment variable names ([`ENV_VAR`]), as keys of `secret_env_vars`.
pub fn env_var(value: &str) -> Result<()> {
    let field = format!("secret_env_vars.{value}");
    check(&field, "env var name", value, &ENV_VAR)
}

/// Org, user and API key names: free text, printable, short.
pub fn label(what: &str, value: &str) -> Result<()> {
    // The length counts surrounding blanks too, as the OpenAPI document's `maxLength` does.
    if value.chars().count() > 64 {
        return fail(
            "name",
            format!("{what} {:?} is longer than 64 characters", value.trim()),
        );
    }
    let value = value.trim();
    let expected = "1 to 64 printable characters";
    if value.is_empty() {
        return fail(
            "name",
            format!("{what} must not be empty: expected {expected}"),
        );
    }
    if value.chars().count() > 64 {
        return fail(
            "name",
            format!("{what} {value:?} is longer than 64 characters"),
        );
    }
    if value.chars().any(char::is_control) {
        return fail(
            "name",
            format!("invalid {what} {value:?}: expected {expected}"),
        );
    }
    Ok(())
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

    proptest::proptest! {
        /// The patterns the OpenAPI document declares accept exactly what the validators
        /// accept (with `maxLength`), on names made of the rules' characters and a few others.
        #[test]
        fn each_rules_pattern_agrees_with_its_validator(value in "[A-Za-z0-9_.\\- /é]{0,140}") {
            for rule in [OBJECT_NAME, SANDBOX_NAME, ENV_VAR] {
                let pattern = regex::Regex::new(rule.pattern).unwrap();
                let by_schema = pattern.is_match(&value) && value.chars().count() <= rule.max_chars;
                let by_validator = check("name", "name", &value, &rule).is_ok();
                proptest::prop_assert_eq!(by_schema, by_validator, "{:?} {}", value, rule.pattern);
            }
        }
    }

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
