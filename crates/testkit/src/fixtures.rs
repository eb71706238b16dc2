//! Credential documents as the agents write them, built in one place so that every suite feeds
//! the server the same shapes: Claude Code's `~/.claude/.credentials.json` (an OAuth document)
//! and Codex's `~/.codex/auth.json`. Compact JSON, keys in the order the agents write them, so
//! a test can compare what the server stores or injects byte for byte.
//!
//! The values are test tokens, but the types still keep them out of `Debug`.

use std::fmt;

/// `expiresAt` far in the future (2100-01-01T00:00:00Z, in epoch milliseconds): a token that
/// never expires during a test.
pub const FAR_FUTURE_MS: i64 = 4_102_444_800_000;

/// A Claude OAuth credential document (`{"claudeAiOauth": {...}}`).
#[derive(Clone)]
pub struct ClaudeOauth {
    access_token: String,
    refresh_token: String,
    expires_at_ms: i64,
    scopes: Vec<String>,
    subscription_type: Option<String>,
}

impl ClaudeOauth {
    /// A document with these tokens, expiring at [`FAR_FUTURE_MS`], without scopes.
    pub fn new(access_token: &str, refresh_token: &str) -> ClaudeOauth {
        ClaudeOauth {
            access_token: access_token.to_string(),
            refresh_token: refresh_token.to_string(),
            expires_at_ms: FAR_FUTURE_MS,
            scopes: Vec::new(),
            subscription_type: None,
        }
    }

    /// `expiresAt`, in epoch milliseconds.
    pub fn expires_at_ms(mut self, expires_at_ms: i64) -> ClaudeOauth {
        self.expires_at_ms = expires_at_ms;
        self
    }

    /// `scopes` (left out of the document when empty).
    pub fn scopes(mut self, scopes: &[&str]) -> ClaudeOauth {
        self.scopes = scopes.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `subscriptionType` (left out when not set).
    pub fn subscription_type(mut self, subscription_type: &str) -> ClaudeOauth {
        self.subscription_type = Some(subscription_type.to_string());
        self
    }

    /// The document, compact: `accessToken`, `refreshToken`, `expiresAt`, then `scopes` and
    /// `subscriptionType` when set.
    pub fn to_json(&self) -> String {
        let mut inner = format!(
            "\"accessToken\":{},\"refreshToken\":{},\"expiresAt\":{}",
            json_string(&self.access_token),
            json_string(&self.refresh_token),
            self.expires_at_ms
        );
        if !self.scopes.is_empty() {
            let scopes: Vec<String> = self.scopes.iter().map(|s| json_string(s)).collect();
            inner.push_str(&format!(",\"scopes\":[{}]", scopes.join(",")));
        }
        if let Some(t) = &self.subscription_type {
            inner.push_str(&format!(",\"subscriptionType\":{}", json_string(t)));
        }
        format!("{{\"claudeAiOauth\":{{{inner}}}}}")
    }
}

impl fmt::Debug for ClaudeOauth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaudeOauth")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A Codex `auth.json`.
#[derive(Clone)]
pub enum CodexAuth {
    /// `{"OPENAI_API_KEY":"<key>"}`: an API key.
    ApiKey(String),
    /// `{"OPENAI_API_KEY":null,"tokens":{"id_token":"<token>"}}`: a ChatGPT sign-in.
    ChatGpt { id_token: String },
    /// A ChatGPT sign-in as the real Codex CLI reads it: `tokens` with `id_token` (a JWT,
    /// see [`unsigned_id_token`]), `access_token`, `refresh_token`, `account_id`, and
    /// `last_refresh`.
    ChatGptTokens {
        id_token: String,
        access_token: String,
        refresh_token: String,
        account_id: String,
    },
}

/// An unsigned JWT (`alg: none`) whose claims are what Codex reads of a ChatGPT id token: the
/// email, and the plan and account under `https://api.openai.com/auth`.
pub fn unsigned_id_token(email: &str, plan: &str, account_id: &str) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let header = b64(serde_json::json!({"alg": "none", "typ": "JWT"}));
    let claims = b64(serde_json::json!({
        "email": email,
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": plan,
            "chatgpt_account_id": account_id,
        },
    }));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

impl CodexAuth {
    /// The document, compact.
    pub fn to_json(&self) -> String {
        match self {
            CodexAuth::ApiKey(key) => format!("{{\"OPENAI_API_KEY\":{}}}", json_string(key)),
            CodexAuth::ChatGpt { id_token } => format!(
                "{{\"OPENAI_API_KEY\":null,\"tokens\":{{\"id_token\":{}}}}}",
                json_string(id_token)
            ),
            CodexAuth::ChatGptTokens {
                id_token,
                access_token,
                refresh_token,
                account_id,
            } => format!(
                "{{\"OPENAI_API_KEY\":null,\"tokens\":{{\"id_token\":{},\"access_token\":{},\"refresh_token\":{},\"account_id\":{}}},\"last_refresh\":\"2026-01-01T00:00:00Z\"}}",
                json_string(id_token),
                json_string(access_token),
                json_string(refresh_token),
                json_string(account_id)
            ),
        }
    }
}

impl fmt::Debug for CodexAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodexAuth::ApiKey(_) => "CodexAuth::ApiKey(..)",
            CodexAuth::ChatGpt { .. } => "CodexAuth::ChatGpt { .. }",
            CodexAuth::ChatGptTokens { .. } => "CodexAuth::ChatGptTokens { .. }",
        })
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact bytes the suites wrote by hand before this module existed.
    #[test]
    fn claude_documents_match_the_hand_written_ones() {
        assert_eq!(
            ClaudeOauth::new("A", "R")
                .scopes(&["user:inference"])
                .to_json(),
            r#"{"claudeAiOauth":{"accessToken":"A","refreshToken":"R","expiresAt":4102444800000,"scopes":["user:inference"]}}"#
        );
        assert_eq!(
            ClaudeOauth::new("A", "r").expires_at_ms(1).to_json(),
            r#"{"claudeAiOauth":{"accessToken":"A","refreshToken":"r","expiresAt":1}}"#
        );
        let full = ClaudeOauth::new("A", "R")
            .scopes(&["user:inference", "user:profile"])
            .subscription_type("max")
            .to_json();
        let parsed: serde_json::Value = serde_json::from_str(&full).unwrap();
        assert_eq!(parsed["claudeAiOauth"]["subscriptionType"], "max");
        assert_eq!(parsed["claudeAiOauth"]["scopes"][1], "user:profile");
    }

    #[test]
    fn values_are_escaped_and_never_debugged() {
        let doc = ClaudeOauth::new("a\"b", "r");
        let parsed: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
        assert_eq!(parsed["claudeAiOauth"]["accessToken"], "a\"b");
        let secret = ClaudeOauth::new("tok-ACCESS", "tok-REFRESH");
        assert!(!format!("{secret:?}").contains("tok-"), "{secret:?}");
        let codex = CodexAuth::ApiKey("sk-proj-x".into());
        assert_eq!(codex.to_json(), r#"{"OPENAI_API_KEY":"sk-proj-x"}"#);
        assert!(!format!("{codex:?}").contains("sk-proj-x"));
        assert_eq!(
            CodexAuth::ChatGpt {
                id_token: "T".into()
            }
            .to_json(),
            r#"{"OPENAI_API_KEY":null,"tokens":{"id_token":"T"}}"#
        );
    }
}
