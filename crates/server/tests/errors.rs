//! Bad input gets a clear 4xx in the error envelope, with a trace id, and changes nothing.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

const B: &str = "/api/v0beta1";

fn post(path: &str, key: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("{B}{path}"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn malformed_requests_are_4xx_envelopes_that_name_the_problem() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    let cases: Vec<(Request<Body>, StatusCode, &str, &str)> = vec![
        (
            post("/secrets", &k, "{not json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "malformed JSON",
        ),
        (
            post("/secrets", &k, r#"{"name":"A","value":"v","colour":"red"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "colour",
        ),
        (
            post("/secrets", &k, r#"{"name":"A"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "value",
        ),
        (
            post("/secrets", &k, r#"{"name":"","value":"v"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "must not be empty",
        ),
        (
            post("/secrets", &k, r#"{"name":"a b","value":"v"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "invalid secret name",
        ),
        (
            post("/secrets", &k, r#"{"name":"A","value":""}"#),
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "must not be empty",
        ),
        (
            post("/secrets", &k, r#"{"name":"A","value":"v","scope":"team"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "user or org",
        ),
        (
            post(
                "/secrets",
                &k,
                format!(
                    r#"{{"name":"A","value":"{}"}}"#,
                    "x".repeat(2 * 1024 * 1024)
                ),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "too large",
        ),
        (
            post(
                "/secrets/claude",
                &k,
                r#"{"name":"c","value":"{not json","type":"oauth"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_oauth_json",
            "not valid JSON",
        ),
        (
            post(
                "/secrets/claude",
                &k,
                r#"{"name":"c","value":"k","type":"password"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "oauth, api_key or api-key",
        ),
        (
            post(
                "/secrets/gemini",
                &k,
                r#"{"name":"c","value":"k","type":"api_key"}"#,
            ),
            // `/secrets/gemini` is a secret's URL, which takes only PUT and DELETE.
            StatusCode::METHOD_NOT_ALLOWED,
            "unknown_kind",
            "claude, codex or github",
        ),
        (
            post(
                "/sandboxes",
                &k,
                r#"{"name":"x","agent_credentials":[{"kind":"gemini"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "claude or codex",
        ),
        (
            post(
                "/sandboxes",
                &k,
                r#"{"name":"x","agent_credentials":[{"kind":"claude"},{"kind":"claude"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_agent_credentials",
            "claude",
        ),
        (
            post(
                "/sandboxes",
                &k,
                r#"{"name":"x","agent_credentials":[{"kind":"codex","none":true,"name":"a"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_agent_credentials",
            "codex",
        ),
        (
            post("/sandboxes", &k, r#"{"name":"x","initial_prompt":"hi"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "initial_prompt",
        ),
        (
            post("/sandboxes", &k, r#"{"name":"Bad Name!"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "sandbox name",
        ),
        (
            post(
                "/sandboxes",
                &k,
                r#"{"name":"x","secret_env_vars":{"1BAD":"S"}}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "env var",
        ),
        (
            post(
                "/sandboxes",
                &k,
                r#"{"name":"x","secret_env_vars":{"DB":"MISSING"}}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "secret_not_found",
            "env var DB: secret \"MISSING\"",
        ),
        (
            post(
                "/sandboxes",
                &k,
                r#"{"name":"x","agent_credentials":[{"kind":"codex","name":"nope"}]}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "agent_credential_not_found",
            "codex",
        ),
        (
            post(
                "/sandboxes",
                &k,
                r#"{"name":"x","agent_credentials":[{"kind":"codex","type":"oauth"}]}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "agent_credential_not_found",
            "codex",
        ),
    ];
    for (req, status, code, needle) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let (got, headers, body) = app.raw(req).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["type"], "error", "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
        assert_eq!(body["error_code"], code, "{what}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
        let trace = body["trace_id"].as_str().unwrap();
        assert!(
            !trace.is_empty() && headers["x-trace-id"] == trace,
            "{what}: trace id"
        );
    }
    // None of it stored anything or created a sandbox.
    assert_eq!(
        app.ok(Method::GET, &format!("{B}/secrets"), &k, None).await,
        json!([])
    );
    assert_eq!(
        app.ok(Method::GET, &format!("{B}/secrets/claude"), &k, None)
            .await,
        json!([])
    );
    assert_eq!(
        app.ok(Method::GET, &format!("{B}/sandboxes"), &k, None)
            .await,
        json!([])
    );
}

#[tokio::test]
async fn duplicate_names_conflict_and_keep_the_first_value() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &k,
        Some(json!({"name": "DUP", "value": "first"})),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("{B}/secrets"),
            Some(&k),
            Some(json!({"name": "DUP", "value": "second"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "secret_exists");
    // The same name in org scope is another secret; the user's own wins on lookup.
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &k,
        Some(json!({"name": "DUP", "value": "org-one", "scope": "org"})),
    )
    .await;
    assert_eq!(
        app.ok(Method::POST, &format!("{B}/secrets/DUP/reveal"), &k, None)
            .await["value"],
        "first"
    );
    app.ok(
        Method::POST,
        &format!("{B}/secrets/claude"),
        &k,
        Some(json!({"name": "c", "value": "k1", "type": "api_key"})),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("{B}/secrets/claude"),
            Some(&k),
            Some(json!({"name": "c", "value": "{}", "type": "oauth"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "credential_exists");
    // Kinds are separate namespaces.
    app.ok(
        Method::POST,
        &format!("{B}/secrets/codex"),
        &k,
        Some(json!({"name": "c", "value": "k2", "type": "api_key"})),
    )
    .await;
    assert_eq!(
        app.ok(
            Method::POST,
            &format!("{B}/secrets/claude/c/reveal"),
            &k,
            None
        )
        .await["value"],
        "k1"
    );
}

#[tokio::test]
async fn updates_store_new_versions_and_defaults_move() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    let s = app
        .ok(
            Method::POST,
            &format!("{B}/secrets"),
            &k,
            Some(json!({"name": "V", "value": "one"})),
        )
        .await;
    assert_eq!(s["version"], 1);
    let s = app
        .ok(
            Method::PUT,
            &format!("{B}/secrets/V"),
            &k,
            Some(json!({"value": "two"})),
        )
        .await;
    assert_eq!(s["version"], 2);
    assert_eq!(
        app.ok(Method::POST, &format!("{B}/secrets/V/reveal"), &k, None)
            .await["value"],
        "two"
    );
    app.ok(
        Method::POST,
        &format!("{B}/secrets/claude"),
        &k,
        Some(json!({"name": "a", "value": "k1", "type": "api_key", "is_default": true})),
    )
    .await;
    app.ok(
        Method::POST,
        &format!("{B}/secrets/claude"),
        &k,
        Some(json!({"name": "b", "value": "k2", "type": "api_key", "is_default": true})),
    )
    .await;
    let list = app
        .ok(Method::GET, &format!("{B}/secrets/claude"), &k, None)
        .await;
    let defaults: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["is_default"] == true)
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(defaults, vec![json!("b")]);
    // Unknown routes and methods answer in the envelope too.
    let (status, body) = app
        .call(Method::GET, "/api/v0beta1/nope", Some(&k), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

/// `limit` out of 1..=1000 was clamped silently (0 gave one event, 5000 gave 1000); a
/// non-number was a 400 that did not say what is allowed.
#[tokio::test]
async fn a_bad_audit_limit_is_a_400_naming_limit_and_its_range() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    for limit in ["0", "1001", "-1", "abc", "", "1.5", "99999999999999999999"] {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{B}/audit-events?limit={limit}"))
            .header("authorization", format!("Bearer {k}"))
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = app.raw(req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={limit}: {body}");
        assert_eq!(body["type"], "error", "limit={limit}: {body}");
        assert_eq!(body["code"], "invalid_request", "limit={limit}: {body}");
        assert_eq!(
            body["error_code"], "invalid_request",
            "limit={limit}: {body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("limit") && message.contains("1..=1000"),
            "limit={limit}: {body}"
        );
        // Named in `details` like every other error about one field (it had none).
        assert_eq!(
            body["details"],
            json!([{"field": "limit", "code": "invalid_request", "message": message}]),
            "limit={limit}"
        );
        let trace = body["trace_id"].as_str().unwrap();
        assert!(!trace.is_empty() && headers["x-trace-id"] == trace);
    }
    // The edges of the range, and no limit at all, are fine.
    for path in ["?limit=1", "?limit=1000", ""] {
        app.ok(Method::GET, &format!("{B}/audit-events{path}"), &k, None)
            .await;
    }
}

/// An error about one field of the request names it in `details`, as a JSON path, with the
/// answer's own code and message; an error about no field in particular has no details.
#[tokio::test]
async fn details_name_the_request_field_an_error_is_about() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    let cases: Vec<(&str, serde_json::Value, StatusCode, &str, &str)> = vec![
        (
            "unknown secret in secret_env_vars",
            json!({"name": "x", "secret_env_vars": {"DB": "MISSING"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "secret_not_found",
            "secret_env_vars.DB",
        ),
        (
            "a second entry of one kind",
            json!({"name": "x", "agent_credentials": [{"kind": "codex"}, {"kind": "claude"}, {"kind": "codex", "none": true}]}),
            StatusCode::BAD_REQUEST,
            "invalid_agent_credentials",
            "agent_credentials[2].kind",
        ),
        (
            "name and none together",
            json!({"name": "x", "agent_credentials": [{"kind": "claude"}, {"kind": "codex", "none": true, "name": "a"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_agent_credentials",
            "agent_credentials[1].none",
        ),
        (
            "a pinned credential that does not exist",
            json!({"name": "x", "agent_credentials": [{"kind": "codex", "name": "nope"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "agent_credential_not_found",
            "agent_credentials[0].name",
        ),
        (
            "an invalid env var name",
            json!({"name": "x", "secret_env_vars": {"1BAD": "S"}}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "secret_env_vars.1BAD",
        ),
        (
            // (An empty or absent name is no error: the server generates one.)
            "a sandbox name with a space",
            json!({"name": "a b"}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "name",
        ),
    ];
    for (case, body, status, code, field) in cases {
        let (got, answer) = app
            .call(
                Method::POST,
                &format!("{B}/sandboxes"),
                Some(&k),
                Some(body),
            )
            .await;
        assert_eq!(got, status, "{case}: {answer}");
        assert_eq!(answer["code"], code, "{case}: {answer}");
        assert_eq!(
            answer["details"],
            json!([{"field": field, "code": code, "message": answer["message"]}]),
            "{case}"
        );
    }

    // Other requests name their fields the same way.
    let (status, answer) = app
        .call(
            Method::POST,
            &format!("{B}/secrets"),
            Some(&k),
            Some(json!({"name": "A", "value": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["details"][0]["field"], "value", "{answer}");
    // A type change the stored value does not fit is about the type: the request has no value
    // (its error named `value`).
    app.ok(
        Method::POST,
        &format!("{B}/secrets/claude"),
        &k,
        Some(json!({"name": "plain", "value": "sk-plain", "type": "api_key"})),
    )
    .await;
    let (status, answer) = app
        .call(
            Method::PUT,
            &format!("{B}/secrets/claude/plain"),
            Some(&k),
            Some(json!({"type": "oauth"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "invalid_oauth_json", "{answer}");
    assert_eq!(answer["details"][0]["field"], "type", "{answer}");
    assert!(!answer.to_string().contains("sk-plain"), "{answer}");
    // A query parameter is named by its name.
    let (status, answer) = app
        .call(
            Method::GET,
            &format!("{B}/sandboxes/any/sessions?limit=0"),
            Some(&k),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["details"][0]["field"], "limit", "{answer}");
    // Errors about no field in particular: no details.
    let (status, answer) = app
        .call(Method::GET, &format!("{B}/sandboxes/nope"), Some(&k), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["details"], json!([]), "{answer}");
    assert_eq!(
        app.ok(Method::GET, &format!("{B}/sandboxes"), &k, None)
            .await,
        json!([]),
        "none of it created a sandbox"
    );
}

/// Was: a create (and its preview) stopped at the first bad field, so a client fixed one field
/// per round trip (and the web form asked the preview again and again). Every field's error
/// comes at once now, each in `details`, the first one's status and code on top.
#[tokio::test]
async fn a_create_with_three_bad_fields_names_all_three_at_once() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    let body = json!({
        "name": "a b",
        "secret_env_vars": {"DB": "MISSING", "1BAD": "ALSO_MISSING"},
        "agent_credentials": [{"kind": "codex", "name": "nope"}],
    });
    for path in ["/sandboxes", "/sandboxes/resolve-preview"] {
        let (status, answer) = app
            .call(
                Method::POST,
                &format!("{B}{path}"),
                Some(&k),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["code"], "invalid_name", "{path}: {answer}");
        let details = answer["details"].as_array().unwrap();
        let fields: Vec<&str> = details
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "secret_env_vars.1BAD",
                "secret_env_vars.DB",
                "agent_credentials[0].name"
            ],
            "{path}: one error per field, the invalid env var name not also 'not found'"
        );
        let codes: Vec<&str> = details
            .iter()
            .map(|d| d["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            [
                "invalid_name",
                "invalid_name",
                "secret_not_found",
                "agent_credential_not_found"
            ]
        );
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(details[0]["message"].as_str().unwrap()),
            "{path}: the first error on top: {message}"
        );
        assert!(details[2]["message"]
            .as_str()
            .unwrap()
            .contains("secret \"MISSING\" not found"));
    }
    // One bad field is one error, as before.
    let (_, answer) = app
        .call(
            Method::POST,
            &format!("{B}/sandboxes"),
            Some(&k),
            Some(json!({"name": "a b"})),
        )
        .await;
    assert_eq!(answer["details"].as_array().unwrap().len(), 1, "{answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid sandbox name"));
    assert_eq!(
        app.ok(Method::GET, &format!("{B}/sandboxes"), &k, None)
            .await,
        json!([]),
        "nothing created"
    );
}
