//! `POST /secret-batches`: many secrets written all or nothing, in one transaction (a `.env`
//! file pushed at once). Its own module: the entries carry values, and their `Debug` hides them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Scope, SecretSummary};

/// `POST /secret-batches`: every entry is checked before anything is written, and either all
/// are stored or none. An entry whose name the caller already has in that scope gets a new
/// version, as `PUT /secrets/{id}` would give it; the others are created.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBatchRequest {
    /// At least one; a (name, scope) at most once.
    pub secrets: Vec<SecretBatchEntry>,
}

/// One secret of a [`SecretBatchRequest`].
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBatchEntry {
    pub name: String,
    pub value: String,
    /// `user` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Stored with the secret; an existing secret keeps its own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

string_enum!(
    /// What a batch did to one secret.
    SecretBatchAction "secret batch action" { Created => "created", Updated => "updated" }
        expected "created or updated"
);

/// The answer of `POST /secret-batches`: one result per entry, in the request's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecretBatchResponse {
    pub secrets: Vec<SecretBatchResult>,
}

/// What a batch did to one of its entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecretBatchResult {
    pub action: SecretBatchAction,
    pub secret: SecretSummary,
}

impl fmt::Debug for SecretBatchRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBatchRequest")
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl fmt::Debug for SecretBatchEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBatchEntry")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("description", &self.description)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_value() {
        let req = SecretBatchRequest {
            secrets: vec![SecretBatchEntry {
                name: "DB".into(),
                value: "hunter2-value".into(),
                scope: None,
                description: None,
            }],
        };
        let shown = format!("{req:?}");
        assert!(
            shown.contains("DB") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
