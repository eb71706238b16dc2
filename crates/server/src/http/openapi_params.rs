//! Constraints the validators enforce on query parameters and on request fields whose whole
//! schema changes (a `$ref` to a wider enum, a nullable union), declared in the OpenAPI
//! document from the validators' own constants, so that a schema-valid request is accepted and
//! a schema-invalid one refused (the API fuzzer, `scripts/fuzz-api.sh`, checks both ways).

use serde_json::{json, Value};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

use crate::service::audit::AUDIT_LIMITS;
use crate::service::paging::{CURSOR_PATTERN, MAX_CURSOR_CHARS};
use crate::service::sandboxes::checks::MAX_INTERVAL_MINUTES;
use crate::service::sandboxes::ssh_access::{MAX_SSH_TTL_SECS, MIN_SSH_TTL_SECS};
use crate::service::validate::ENV_VAR;

pub(super) struct ParamConstraints;

/// A label (org, user and API key names): 1 to 64 characters, not all blank, no control
/// character (`validate::label`).
pub(super) const LABEL_PATTERN: &str =
    "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// The agent kinds a session or send can name (`github` is a credential kind, not an agent).
fn agents() -> Value {
    json!(["claude", "codex"])
}

/// (path, or "" for every path; query parameter; its schema).
fn query_rules() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "/api/v0beta1/audit-events",
            "limit",
            json!({"type": "integer", "minimum": AUDIT_LIMITS.start(), "maximum": AUDIT_LIMITS.end()}),
        ),
        (
            "/api/v0beta1/sandboxes/{id}/sessions",
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        (
            "/api/v0beta1/sandboxes/{id}/sessions",
            "status",
            json!({"type": "string", "enum": ["idle", "running", "completed", "failed", "cancelled"]}),
        ),
        (
            "/api/v0beta1/sandboxes/{id}/sessions/latest",
            "agent",
            json!({"type": "string", "enum": agents()}),
        ),
        (
            "",
            "by",
            json!({"type": "string", "enum": ["ref", "id", "name"]}),
        ),
        // Not blank: the server trims it.
        (
            "",
            "sandbox",
            json!({"type": "string", "minLength": 1, "pattern": "\\S"}),
        ),
        (
            "/api/v0beta1/sandboxes/{id}/sessions",
            "offset",
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
        ),
        (
            "/api/v0beta1/workspace-uploads",
            "origin_url",
            json!({"type": "string", "minLength": 1}),
        ),
        (
            "/api/v0beta1/workspace-uploads",
            "repo_name",
            // Not `.` or `..`: spelled without a lookahead, which not every generator supports.
            json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^(?:[A-Za-z0-9_-]|\\.[A-Za-z0-9_-]|\\.\\.[A-Za-z0-9._-])[A-Za-z0-9._-]*$"}),
        ),
        (
            "",
            "cursor",
            json!({"type": "string", "pattern": CURSOR_PATTERN, "maxLength": MAX_CURSOR_CHARS}),
        ),
    ]
}

/// (schema, property, its whole schema).
fn property_rules() -> Vec<(&'static str, &'static str, Value)> {
    let label =
        json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": LABEL_PATTERN});
    vec![
        ("CreateOrgRequest", "name", label.clone()),
        ("CreateUserRequest", "name", label.clone()),
        ("CreateApiKeyRequest", "name", label),
        (
            "CreateUserRequest",
            "org",
            json!({"type": "string", "minLength": 1, "description": "Org name or id."}),
        ),
        (
            "CreateSnapshotRequest",
            "sandbox_ref",
            json!({"type": "string", "minLength": 1, "pattern": "\\S", "description": "The sandbox to capture: its id or name."}),
        ),
        (
            "CreateSessionRequest",
            "agent_name",
            json!({"type": "string", "enum": agents(), "description": "`claude` or `codex`."}),
        ),
        (
            "UpdateSessionRequest",
            "status",
            json!({"type": ["string", "null"], "enum": ["idle", "completed", "failed", "cancelled", null], "description": "`idle`, `completed`, `failed` or `cancelled` (`running` is the server's to set)."}),
        ),
        (
            "AgentSendRequest",
            "message",
            json!({"type": "string", "minLength": 1, "description": "The prompt; passed to the agent as one argument, never through a shell."}),
        ),
        // The program (the first word) must not be empty; later arguments may be.
        (
            "ExecRequest",
            "command",
            json!({"type": "array", "prefixItems": [{"type": "string", "minLength": 1}], "items": {"type": "string"}, "minItems": 1}),
        ),
        (
            "ExecRequest",
            "timeout_secs",
            json!({"type": ["integer", "null"], "minimum": 0, "maximum": u64::MAX, "description": "Seconds before the command is killed."}),
        ),
        (
            "CreateSandboxRequest",
            "auto_stop_interval",
            json!({"type": ["number", "null"], "minimum": 0, "maximum": MAX_INTERVAL_MINUTES, "description": "Minutes without exec or agent use before the sandbox stops; 0 or absent: never."}),
        ),
        (
            "CreateSandboxRequest",
            "auto_delete_interval",
            json!({"oneOf": [{"type": "null"}, {"type": "number", "enum": [-1]}, {"type": "number", "minimum": 0, "maximum": MAX_INTERVAL_MINUTES}], "description": "Minutes without exec or agent use before the sandbox is deleted; 0, -1 or absent: never."}),
        ),
        (
            "SecretBatchRequest",
            "secrets",
            json!({"type": "array", "items": {"$ref": "#/components/schemas/SecretBatchEntry"}, "minItems": 1, "description": "At least one; a (name, scope) at most once."}),
        ),
        (
            "AgentSendRequest",
            "timeout_secs",
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": u64::MAX, "description": "Seconds before the agent is stopped; at most the server's deadline (default 600; over it is `422 over_limit`)."}),
        ),
        (
            "CreateSandboxRequest",
            "secret_env_vars",
            json!({"type": "object", "additionalProperties": {"type": "string", "minLength": 1}, "propertyNames": {"type": "string", "minLength": 1, "maxLength": ENV_VAR.max_chars, "pattern": ENV_VAR.pattern}, "description": "Env var → secret name."}),
        ),
        (
            "SshAccessRequest",
            "ttl_secs",
            json!({"type": ["integer", "null"], "minimum": MIN_SSH_TTL_SECS, "maximum": MAX_SSH_TTL_SECS, "description": "How long the token is valid, in seconds; default 3600."}),
        ),
    ]
}

fn schema(v: Value) -> RefOr<Schema> {
    serde_json::from_value(v).expect("a constraint is a valid schema")
}

impl utoipa::Modify for ParamConstraints {
    fn modify(&self, openapi: &mut OpenApi) {
        let queries = query_rules();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                for p in op.parameters.iter_mut().flatten() {
                    if !matches!(p.parameter_in, ParameterIn::Query) {
                        continue;
                    }
                    let rule = queries
                        .iter()
                        .find(|(at, name, _)| *name == p.name && *at == path)
                        .or_else(|| {
                            queries
                                .iter()
                                .find(|(at, name, _)| *name == p.name && at.is_empty())
                        });
                    if let Some((_, _, v)) = rule {
                        p.schema = Some(schema(v.clone()));
                    }
                }
            }
        }
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, property, v) in property_rules() {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                if object.properties.contains_key(property) {
                    object.properties.insert(property.to_string(), schema(v));
                }
            }
        }
    }
}
