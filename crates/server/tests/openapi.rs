//! The OpenAPI contract: the document generated from the code is the one checked in at
//! `docs/openapi.json` (which the TypeScript SDK's types are generated from), the server serves
//! exactly that document, and every route the router serves is in it.
//!
//! After an intended API change, rewrite the file with
//! `AMIKA_UPDATE_OPENAPI=1 cargo test -p amika-server --test openapi`
//! and regenerate the SDK's types (`cd sdk/typescript && npm run generate`).

mod common;

use std::path::PathBuf;

use axum::http::Method;
use serde_json::Value;

const UPDATE_HINT: &str =
    "update it with `AMIKA_UPDATE_OPENAPI=1 cargo test -p amika-server --test openapi`, \
     then regenerate the SDK types with `cd sdk/typescript && npm run generate`";

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

/// The generated document in its checked-in form: pretty-printed, keys in a stable order
/// (serde_json's map is sorted; utoipa's path and component maps are B-trees), one final newline.
fn generated_text() -> String {
    let value = serde_json::to_value(amika_server::http::openapi()).expect("document serialises");
    let mut text = serde_json::to_string_pretty(&value).expect("document prints");
    text.push('\n');
    text
}

#[test]
fn checked_in_openapi_document_matches_the_generated_one() {
    let path = checked_in_path();
    let generated = generated_text();
    if std::env::var_os("AMIKA_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it: {UPDATE_HINT}",
            path.display()
        )
    });
    if on_disk != generated {
        let first_difference = on_disk
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  checked in: {a}\n  generated:  {b}", i + 1))
            .unwrap_or_else(|| {
                format!(
                    "lengths differ ({} lines checked in, {} generated)",
                    on_disk.lines().count(),
                    generated.lines().count()
                )
            });
        panic!(
            "docs/openapi.json differs from the document generated from the code; first difference at {first_difference}\n{UPDATE_HINT}"
        );
    }
}

#[tokio::test]
async fn served_openapi_document_is_the_generated_one() {
    let app = common::app().await;
    // The document is public: no API key needed to read it.
    let (status, served) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert!(status.is_success(), "GET /openapi.json: {status} {served}");
    let generated = serde_json::to_value(amika_server::http::openapi()).unwrap();
    assert_eq!(
        served, generated,
        "the served /openapi.json differs from amika_server::http::openapi()"
    );
}

/// Every route of `http::router` under `/api/v0beta1`, with its methods. Kept by hand on
/// purpose: a route added to the router but not to `ApiDoc` fails the test below, and a route
/// added here but not served fails the probe in the second test.
const ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["get"]),
    ("/api/v0beta1/presets", &["get"]),
    ("/api/v0beta1/presets/{name}", &["delete"]),
    ("/api/v0beta1/presets/{name}/install", &["post"]),
    ("/api/v0beta1/sandbox-snapshots", &["get", "post"]),
    ("/api/v0beta1/sandbox-snapshots/scrub-preview", &["get"]),
    ("/api/v0beta1/sandbox-snapshots/{ref}", &["get", "delete"]),
    ("/api/v0beta1/me", &["get"]),
    ("/api/v0beta1/sandboxes/{id}/ssh", &["post", "delete"]),
    ("/api/v0beta1/ssh", &["get"]),
    ("/api/v0beta1/secrets/ssh-public-keys", &["get", "post"]),
    ("/api/v0beta1/secrets/ssh-public-keys/{id}", &["delete"]),
    ("/api/v0beta1/admin/orgs", &["get", "post"]),
    ("/api/v0beta1/admin/users", &["post"]),
    ("/api/v0beta1/api-keys", &["get", "post"]),
    ("/api/v0beta1/api-keys/{id}", &["delete"]),
    ("/api/v0beta1/secrets", &["get", "post"]),
    ("/api/v0beta1/secrets/{id}", &["put", "delete"]),
    ("/api/v0beta1/secrets/{id}/reveal", &["post"]),
    ("/api/v0beta1/secret-batches", &["post"]),
    // One path per agent kind (a `{kind}` template would collide with `/secrets/{id}`).
    ("/api/v0beta1/secrets/claude", &["get", "post"]),
    ("/api/v0beta1/secrets/claude/{id}", &["put", "delete"]),
    ("/api/v0beta1/secrets/claude/{id}/reveal", &["post"]),
    ("/api/v0beta1/secrets/codex", &["get", "post"]),
    ("/api/v0beta1/secrets/codex/{id}", &["put", "delete"]),
    ("/api/v0beta1/secrets/codex/{id}/reveal", &["post"]),
    ("/api/v0beta1/secrets/github", &["get", "post"]),
    ("/api/v0beta1/secrets/github/{id}", &["put", "delete"]),
    ("/api/v0beta1/secrets/github/{id}/reveal", &["post"]),
    ("/api/v0beta1/audit-events", &["get"]),
    ("/api/v0beta1/sandboxes", &["get", "post"]),
    ("/api/v0beta1/sandboxes/resolve-preview", &["post"]),
    ("/api/v0beta1/sandboxes/{id}", &["get", "delete"]),
    ("/api/v0beta1/sandboxes/{id}/start", &["post"]),
    ("/api/v0beta1/sandboxes/{id}/stop", &["post"]),
    ("/api/v0beta1/sandboxes/{id}/exec", &["post"]),
    ("/api/v0beta1/sandboxes/{id}/setup-log", &["get"]),
    ("/api/v0beta1/workspace-uploads", &["post"]),
    ("/api/v0beta1/sandboxes/{id}/agent-send", &["post"]),
    ("/api/v0beta1/sandboxes/{id}/agent-send/stream", &["post"]),
    ("/api/v0beta1/sandboxes/{id}/agent-send-jobs", &["post"]),
    (
        "/api/v0beta1/sandboxes/{id}/agent-send-jobs/{job_id}",
        &["get"],
    ),
    (
        "/api/v0beta1/sandboxes/{id}/agent-send-jobs/{job_id}/events",
        &["get"],
    ),
    ("/api/v0beta1/sandboxes/{id}/sessions", &["get", "post"]),
    ("/api/v0beta1/sandboxes/{id}/sessions/latest", &["get"]),
    (
        "/api/v0beta1/sandboxes/{id}/sessions/{session_id}",
        &["get", "patch"],
    ),
];

#[test]
fn every_served_route_is_in_the_openapi_document() {
    let doc = serde_json::to_value(amika_server::http::openapi()).unwrap();
    let paths = doc["paths"].as_object().expect("document has paths");
    let mut missing = Vec::new();
    for (path, methods) in ROUTES {
        for m in *methods {
            if paths.get(*path).and_then(|p| p.get(*m)).is_none() {
                missing.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes served but missing from ApiDoc (add the handler to `paths(...)` in crates/server/src/http/mod.rs): {missing:?}"
    );
    // And the other way round: the document documents nothing that is not in the list.
    let listed: Vec<String> = ROUTES
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(move |m| format!("{m} {p}")))
        .collect();
    let mut unlisted = Vec::new();
    for (path, item) in paths {
        for m in ["get", "post", "put", "delete", "patch"] {
            if item.get(m).is_some() && !listed.contains(&format!("{m} {path}")) {
                unlisted.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "documented operations missing from ROUTES in this test: {unlisted:?}"
    );
    // Every schema a `$ref` points at exists (a missing `ToSchema` registration would not).
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut dangling = Vec::new();
    collect_dangling_refs(&doc, schemas, &mut dangling);
    assert!(dangling.is_empty(), "dangling $refs: {dangling:?}");
}

fn collect_dangling_refs(
    v: &Value,
    schemas: &serde_json::Map<String, Value>,
    out: &mut Vec<String>,
) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let name = r.trim_start_matches("#/components/schemas/");
                if !schemas.contains_key(name) {
                    out.push(r.clone());
                }
            }
            map.values()
                .for_each(|x| collect_dangling_refs(x, schemas, out));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|x| collect_dangling_refs(x, schemas, out)),
        _ => {}
    }
}

/// Each listed route is really served: a request without a key gets the 401 envelope (the route
/// exists and authenticates), not the router's 404/405 fallback.
#[tokio::test]
async fn every_listed_route_is_served_by_the_router() {
    let app = common::app().await;
    for (path, methods) in ROUTES {
        let concrete = path
            .replace("{id}", "x")
            .replace("{job_id}", "x")
            .replace("{session_id}", "x");
        for m in *methods {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let (status, body) = app.call(method, &concrete, None, None).await;
            let expected = if *path == "/healthz" { 200 } else { 401 };
            assert_eq!(
                status.as_u16(),
                expected,
                "{} {concrete}: {status} {body}",
                m.to_uppercase()
            );
        }
    }
}

/// String enums are documented with their wire spellings (`api_key`, not the Rust `ApiKey`), so
/// clients generated from the document send what the server accepts.
#[test]
fn enum_schemas_use_the_wire_spellings() {
    use amika_types::{AgentKind, CredentialType, ErrorCode, NetworkMode, SandboxState, Scope};
    fn spellings<T: Copy + std::fmt::Display>(all: &[T]) -> Vec<String> {
        let mut v: Vec<String> = all.iter().map(|x| x.to_string()).collect();
        v.sort();
        v
    }
    let doc = serde_json::to_value(amika_server::http::openapi()).unwrap();
    let cases = [
        ("AgentKind", spellings(AgentKind::ALL)),
        ("CredentialType", spellings(CredentialType::ALL)),
        ("Scope", spellings(Scope::ALL)),
        ("SandboxState", spellings(SandboxState::ALL)),
        ("NetworkMode", spellings(NetworkMode::ALL)),
        ("ErrorCode", spellings(ErrorCode::ALL)),
    ];
    for (name, expected) in cases {
        let mut documented: Vec<String> = doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("schema {name} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        documented.sort();
        assert_eq!(documented, expected, "enum values of schema {name}");
    }
}

/// Query parameters documented as path parameters make generated clients build wrong URLs.
#[test]
fn every_path_parameter_is_in_its_path_template() {
    let doc: Value = serde_json::from_str(&generated_text()).unwrap();
    let mut wrong = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or("");
                if p["in"] == "path" && !path.contains(&format!("{{{name}}}")) {
                    wrong.push(format!("{method} {path}: {name}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "path parameters missing from their templates (add #[into_params(parameter_in = Query)]?): {wrong:?}");
}

/// Every operation documents the errors every route can give (the 401 of the test above, the
/// body extractor's 400/413/415, a lookup's 404, the 500), each with the error envelope, and
/// the public route says it needs no key. Before, a client generated from the document treated
/// a 401 on any authenticated operation as unexpected.
#[test]
fn every_operation_documents_the_errors_every_route_can_give() {
    let doc: Value = serde_json::from_str(&generated_text()).unwrap();
    let error_ref = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().unwrap();
            let mut expected = vec!["500"];
            if path == "/healthz" {
                assert_eq!(op["security"], serde_json::json!([]), "{what}");
            } else {
                assert!(
                    op.get("security").is_none(),
                    "{what}: the document's bearer applies"
                );
                expected.push("401");
            }
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415"]);
            }
            if path.contains('{') {
                expected.push("404");
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{what} does not document {status}"
                );
            }
            for (status, response) in responses {
                if status.starts_with('2') || response.get("content").is_none() {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(schema, &error_ref, "{what} {status}");
            }
        }
    }
}

/// Request schemas declare what the validators enforce, from the same definitions: an empty or
/// malformed name, a bad env var name or an out-of-range limit is schema-invalid, not only
/// refused (before, an empty `name` was schema-valid and answered 400).
#[test]
fn request_schemas_declare_the_servers_constraints() {
    use amika_server::service::validate::{ENV_VAR, OBJECT_NAME, SANDBOX_NAME};
    let doc: Value = serde_json::from_str(&generated_text()).unwrap();
    let field = |schema: &str, property: &str| {
        doc["components"]["schemas"][schema]["properties"][property].clone()
    };
    for schema in [
        "CreateSecretRequest",
        "UpdateSecretRequest",
        "CreateCredentialRequest",
    ] {
        let name = field(schema, "name");
        assert_eq!(name["pattern"], OBJECT_NAME.pattern, "{schema}");
        assert_eq!(name["maxLength"], OBJECT_NAME.max_chars, "{schema}");
    }
    for schema in ["CreateSecretRequest", "CreateCredentialRequest"] {
        assert_eq!(field(schema, "value")["minLength"], 1, "{schema}");
    }
    let sandbox = field("CreateSandboxRequest", "name");
    assert_eq!(sandbox["pattern"], format!("^$|{}", SANDBOX_NAME.pattern));
    assert_eq!(sandbox["maxLength"], SANDBOX_NAME.max_chars);
    for map in ["env_vars", "secret_env_vars"] {
        let names = &field("CreateSandboxRequest", map)["propertyNames"];
        assert_eq!(names["pattern"], ENV_VAR.pattern, "{map}");
    }
    assert_eq!(field("CreateSandboxRequest", "pids")["maximum"], 4_194_304);
    assert_eq!(field("CreateSandboxRequest", "memory_mib")["minimum"], 32);
}
