//! The error envelope every non-2xx answer carries, and the codes it can hold.
//!
//! Its own module because the codes are many and the envelope's rules (one code in two keys,
//! fields named by JSON path) are a contract of their own, read by the client, the CLI, the web
//! UI and the TypeScript SDK.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

string_enum!(
    /// The machine-readable `code` of an error answer (and of each of its `details`). Clients
    /// branch on it, never on the message, which is for people and may be reworded.
    ///
    /// `over_limit` (422): a create asks for more than a ceiling of the server's config allows
    /// (memory, processes, sandboxes per user, a network mode for the caller's role); the
    /// message names the ceiling and its value.
    /// `sandbox_limit_reached` (409): a limit of the sandbox is full (its processes), so
    /// nothing new can start in it until some of what runs there ends.
    ///
    /// `value_unreadable` (500): a stored secret's or credential's ciphertext failed its
    /// integrity check (changed outside amika); the message names which, and pushing it again
    /// repairs it.
    ErrorCode "error code" {
        AgentAuthFailed => "agent_auth_failed",
        AgentCredentialNotFound => "agent_credential_not_found",
        AgentCredentialSkipped => "agent_credential_skipped",
        AgentCredentialTypeMismatch => "agent_credential_type_mismatch",
        AgentMismatch => "agent_mismatch",
        Conflict => "conflict",
        CredentialExists => "credential_exists",
        Forbidden => "forbidden",
        Internal => "internal",
        InvalidAgentCredentials => "invalid_agent_credentials",
        InvalidName => "invalid_name",
        InvalidOauthJson => "invalid_oauth_json",
        InvalidRepoConfig => "invalid_repo_config",
        InvalidRequest => "invalid_request",
        InvalidState => "invalid_state",
        InvalidValue => "invalid_value",
        MalformedJson => "malformed_json",
        MethodNotAllowed => "method_not_allowed",
        NotFound => "not_found",
        OrgNotFound => "org_not_found",
        OverLimit => "over_limit",
        PayloadTooLarge => "payload_too_large",
        ProviderUnavailable => "provider_unavailable",
        RepositoryUnavailable => "repository_unavailable",
        SandboxExists => "sandbox_exists",
        SandboxLimitReached => "sandbox_limit_reached",
        SecretExists => "secret_exists",
        SecretNotFound => "secret_not_found",
        SecretsInSnapshot => "secrets_in_snapshot",
        SessionBusy => "session_busy",
        SnapshotExists => "snapshot_exists",
        Unauthorized => "unauthorized",
        UnknownKind => "unknown_kind",
        UnsupportedMediaType => "unsupported_media_type",
        ValueUnreadable => "value_unreadable",
    } expected "one of the codes of the ErrorCode schema"
);

string_enum!(
    /// Why an agent send (a turn) failed: the `error_code` of its answer and of the turn in its
    /// session's transcript (null on success). Not an [`ErrorCode`]: the send itself succeeded
    /// (200), and it is the agent that failed.
    ///
    /// - `agent_auth_failed`: the agent's provider refused its credential.
    /// - `agent_bad_output`: the agent exited 0 but printed something other than its reply format.
    /// - `agent_cancelled`: the request was dropped (its client went away); the agent was stopped.
    /// - `agent_crashed`: the agent exited with a failure, or could not be started.
    /// - `agent_error`: the agent ran and reported an error of its own.
    /// - `agent_lost`: the server that ran the send stopped before it ended.
    /// - `agent_timeout`: the deadline passed; the agent's processes were killed.
    /// - `agent_unreachable`: the agent could not reach its provider over the network (DNS, a
    ///   refused connection, no route; a sandbox with network `none` has no way out). Also
    ///   when the deadline killed an agent whose output so far showed such failures. Never
    ///   reported as `agent_auth_failed`, whatever else the output says.
    /// - `sandbox_stopped`: the sandbox stopped or was deleted under the agent.
    AgentErrorCode "agent error code" {
        AgentAuthFailed => "agent_auth_failed",
        AgentBadOutput => "agent_bad_output",
        AgentCancelled => "agent_cancelled",
        AgentCrashed => "agent_crashed",
        AgentError => "agent_error",
        AgentLost => "agent_lost",
        AgentTimeout => "agent_timeout",
        AgentUnreachable => "agent_unreachable",
        SandboxStopped => "sandbox_stopped",
    } expected "one of the codes of the AgentErrorCode schema"
);

/// One field of the request that an error concerns, with the error's code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The field as a JSON path into the request body: `name`, `message`,
    /// `secret_env_vars.DATABASE_URL` (everything after the first `.` is the map's key),
    /// `agent_credentials[1].type`; or the name of a query parameter (`limit`).
    pub field: String,
    // An `ErrorCode` in the schema, a `String` here: see `ErrorBody::code`.
    #[schema(value_type = ErrorCode)]
    pub code: String,
    pub message: String,
}

/// The error envelope of every non-2xx answer.
///
/// `error_code` repeats `code` for clients of the reference API, which names the field that way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    // The schema says `ErrorCode`; this type keeps the code a `String` so that a client meeting
    // a code added after it was built still reads the message and trace id
    // (`ErrorBody::error_code` parses it). The server writes it from an `ErrorCode` only
    // (`ErrorBody::new`).
    #[schema(value_type = ErrorCode)]
    pub code: String,
    #[schema(value_type = ErrorCode)]
    pub error_code: String,
    pub message: String,
    /// The request fields the error concerns, when it concerns particular ones.
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    pub trace_id: String,
}

impl ErrorBody {
    /// The envelope of an error: `code` and `error_code` always the same.
    pub fn new(
        code: ErrorCode,
        message: impl Into<String>,
        details: Vec<ErrorDetail>,
        trace_id: impl Into<String>,
    ) -> Self {
        ErrorBody {
            kind: "error".into(),
            code: code.as_str().into(),
            error_code: code.as_str().into(),
            message: message.into(),
            details,
            trace_id: trace_id.into(),
        }
    }

    /// The code as an [`ErrorCode`]; `None` for a code this build does not know.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent error codes the server wrote as string literals before `AgentErrorCode`
    /// existed, each exactly: the enum must not change the wire or what is stored.
    #[test]
    fn agent_error_codes_serialize_as_the_strings_the_server_always_sent() {
        use AgentErrorCode::*;
        let table = [
            (AgentAuthFailed, "agent_auth_failed"),
            (AgentBadOutput, "agent_bad_output"),
            (AgentCancelled, "agent_cancelled"),
            (AgentCrashed, "agent_crashed"),
            (AgentError, "agent_error"),
            (AgentLost, "agent_lost"),
            (AgentTimeout, "agent_timeout"),
            (AgentUnreachable, "agent_unreachable"),
            (SandboxStopped, "sandbox_stopped"),
        ];
        assert_eq!(table.len(), AgentErrorCode::ALL.len());
        for (code, wire) in table {
            assert_eq!(code.as_str(), wire);
            assert_eq!(serde_json::to_value(code).unwrap(), wire);
            assert_eq!(wire.parse::<AgentErrorCode>(), Ok(code));
            let read: AgentErrorCode = serde_json::from_value(wire.into()).unwrap();
            assert_eq!(read, code);
        }
    }

    /// The codes the server sent as string literals before `ErrorCode` existed, each exactly:
    /// the enum must not change the wire.
    #[test]
    fn error_codes_serialize_as_the_strings_the_server_always_sent() {
        use ErrorCode::*;
        let table = [
            (AgentAuthFailed, "agent_auth_failed"),
            (AgentCredentialNotFound, "agent_credential_not_found"),
            (AgentCredentialSkipped, "agent_credential_skipped"),
            (
                AgentCredentialTypeMismatch,
                "agent_credential_type_mismatch",
            ),
            (AgentMismatch, "agent_mismatch"),
            (Conflict, "conflict"),
            (CredentialExists, "credential_exists"),
            (Forbidden, "forbidden"),
            (Internal, "internal"),
            (InvalidAgentCredentials, "invalid_agent_credentials"),
            (InvalidName, "invalid_name"),
            (InvalidOauthJson, "invalid_oauth_json"),
            (InvalidRepoConfig, "invalid_repo_config"),
            (InvalidRequest, "invalid_request"),
            (InvalidState, "invalid_state"),
            (InvalidValue, "invalid_value"),
            (MalformedJson, "malformed_json"),
            (MethodNotAllowed, "method_not_allowed"),
            (NotFound, "not_found"),
            (OrgNotFound, "org_not_found"),
            (OverLimit, "over_limit"),
            (PayloadTooLarge, "payload_too_large"),
            (ProviderUnavailable, "provider_unavailable"),
            (RepositoryUnavailable, "repository_unavailable"),
            (SandboxExists, "sandbox_exists"),
            (SandboxLimitReached, "sandbox_limit_reached"),
            (SecretExists, "secret_exists"),
            (SecretNotFound, "secret_not_found"),
            (SecretsInSnapshot, "secrets_in_snapshot"),
            (SessionBusy, "session_busy"),
            (SnapshotExists, "snapshot_exists"),
            (Unauthorized, "unauthorized"),
            (UnknownKind, "unknown_kind"),
            (UnsupportedMediaType, "unsupported_media_type"),
            (ValueUnreadable, "value_unreadable"),
        ];
        let listed: std::collections::BTreeSet<ErrorCode> = table.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            listed.into_iter().collect::<Vec<_>>(),
            ErrorCode::ALL,
            "every variant, once"
        );
        for (code, wire) in table {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(wire));
            assert_eq!(code.as_str(), wire);
            assert_eq!(code.to_string(), wire);
            assert_eq!(wire.parse::<ErrorCode>(), Ok(code));
            assert_eq!(
                serde_json::from_value::<ErrorCode>(serde_json::json!(wire)).unwrap(),
                code
            );
        }
    }

    #[test]
    fn the_envelope_repeats_its_code_and_lists_fields_in_details() {
        let body = ErrorBody::new(
            ErrorCode::SecretNotFound,
            "env var DB: secret \"X\" not found",
            vec![ErrorDetail {
                field: "secret_env_vars.DB".into(),
                code: ErrorCode::SecretNotFound.as_str().into(),
                message: "env var DB: secret \"X\" not found".into(),
            }],
            "t-1",
        );
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "type": "error",
                "code": "secret_not_found",
                "error_code": "secret_not_found",
                "message": "env var DB: secret \"X\" not found",
                "details": [{
                    "field": "secret_env_vars.DB",
                    "code": "secret_not_found",
                    "message": "env var DB: secret \"X\" not found",
                }],
                "trace_id": "t-1",
            })
        );
        assert_eq!(body.error_code(), Some(ErrorCode::SecretNotFound));
        // A code from a newer server is still an envelope, just not a known code.
        let newer: ErrorBody = serde_json::from_str(
            r#"{"type":"error","code":"brand_new","error_code":"brand_new","message":"m","trace_id":"t"}"#,
        )
        .unwrap();
        assert_eq!((newer.error_code(), newer.details.len()), (None, 0));
    }
}
