//! The error answers every operation of the OpenAPI document can give, added to each one where
//! its own annotation does not name them: what the authentication, the body extractor, the
//! path lookup and the error mapping (`error.rs`) answer for every route alike. Each comes with
//! the error envelope (`ErrorBody`, whose `code` is the `ErrorCode` enum). Public routes say so
//! with an empty `security`.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};

/// Routes that need no API key.
const PUBLIC: &[&str] = &["/healthz"];

pub(super) struct StandardErrors;

fn error(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| error(description).into());
}

/// The statuses every operation can answer, by what it takes: an API key, a JSON body, a path
/// parameter, a sandbox to run something in.
fn standard(path: &str, method: &str, op: &mut Operation) {
    if PUBLIC.contains(&path) {
        op.security = Some(Vec::new());
    } else {
        add(op, "401", "Missing or invalid API key (`unauthorized`).");
    }
    if op.request_body.is_some() {
        add(op, "400", "The body is malformed JSON (`malformed_json`) or a field is invalid (`invalid_request` and the more specific codes); `details` names the field.");
        add(
            op,
            "413",
            "The body is larger than the server's `max_body_bytes` (`payload_too_large`).",
        );
        add(
            op,
            "415",
            "The body was not sent as `Content-Type: application/json` (`unsupported_media_type`).",
        );
    }
    let has_query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    if has_query {
        add(
            op,
            "400",
            "A query parameter is malformed (`invalid_request`); `details` names it.",
        );
    }
    if path.contains('{') {
        add(
            op,
            "400",
            "A path parameter is malformed (`invalid_request`).",
        );
        add(
            op,
            "404",
            "No such object visible to the caller (`not_found`); another user's answers the same.",
        );
    }
    if method == "post" && path.starts_with("/api/v0beta1/sandboxes") {
        add(op, "503", "Sandboxes cannot start or run on this host right now (`provider_unavailable`): a prerequisite is missing or the host's file table is full.");
    }
    add(op, "500", "An internal error (`internal`, or `value_unreadable` for a stored value that failed its integrity check); the `trace_id` finds it in the server's log.");
}

impl utoipa::Modify for StandardErrors {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("put", item.put.as_mut()),
                ("patch", item.patch.as_mut()),
                ("delete", item.delete.as_mut()),
            ] {
                if let Some(op) = op {
                    standard(path, method, op);
                }
            }
        }
    }
}
