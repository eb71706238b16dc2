//! Failures that answered a bare `500 internal` (issue 18, point 7), each now with its own code
//! and a message that says what happened, through the HTTP API with real sandboxes: an exec
//! while the sandbox's process limit is full, an exec argument over the kernel's 128 KiB, an
//! out-of-range `pids` or `memory_mib` on a server without ceilings, a tampered ciphertext, and
//! a NUL byte in a value mapped to an environment variable.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const B: &str = "/api/v0beta1";

/// A server without ceilings (what an admin may configure), no warm sandboxes.
async fn app() -> common::App {
    common::app_with(None, |c| {
        c.ceilings.max_memory_mib = None;
        c.ceilings.max_pids = None;
        c.warm_sandboxes = 0;
    })
    .await
}

async fn post(app: &common::App, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("{B}{path}"),
        Some(&app.admin_key),
        Some(body),
    )
    .await
}

fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str, needles: &[&str]) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap();
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

/// The exec's NDJSON frames, as one string.
async fn exec(app: &common::App, sandbox: &str, command: &[&str]) -> (StatusCode, Value) {
    post(
        app,
        &format!("/sandboxes/{sandbox}/exec"),
        json!({ "command": command }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_out_of_the_kernels_range_are_refused_naming_the_range() {
    let app = app().await;
    for (body, field, needle) in [
        (
            json!({"pids": 4_000_000_000u64}),
            "pids",
            "pids must be from 8 to 4194304",
        ),
        (
            json!({"pids": u64::MAX}),
            "pids",
            "pids must be from 8 to 4194304",
        ),
        (
            json!({"memory_mib": 1u64 << 40}),
            "memory_mib",
            "memory_mib must be from 32 to 16777216",
        ),
    ] {
        let mut body = body;
        body["name"] = json!("huge");
        body["network"] = json!("none");
        let answer = post(&app, "/sandboxes", body.clone()).await;
        assert_error(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &[needle],
        );
        assert_eq!(answer.1["details"][0]["field"], field, "{body}");
    }
    // Nothing was made.
    let list = app
        .ok(Method::GET, &format!("{B}/sandboxes"), &app.admin_key, None)
        .await;
    assert_eq!(list, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exec_that_cannot_start_says_why() {
    let app = app().await;
    let created = post(
        &app,
        "/sandboxes",
        json!({"name": "small", "network": "none", "pids": 8}),
    )
    .await;
    assert!(created.0.is_success(), "{}", created.1);

    // One argument over the kernel's limit per argument (MAX_ARG_STRLEN, 128 KiB with its NUL).
    let long = "x".repeat(128 * 1024);
    let answer = exec(&app, "small", &["echo", "short", &long]).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &["argument 3 is 131072 bytes", "at most 131071"],
    );
    assert_eq!(answer.1["details"][0]["field"], "command");
    // At the limit it runs.
    let at = "x".repeat(128 * 1024 - 1);
    let (status, out) = exec(&app, "small", &["sh", "-c", "echo ${#1}", "sh", &at]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(out.to_string().contains("131071"), "{out}");

    // Fill the sandbox's 8 processes, then exec once more. A shell cannot fill them all (it
    // holds a slot while it forks and frees it when it exits), so a detached filler keeps
    // taking every slot that frees, retrying without forking.
    const FILLER: &str = "import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            time.sleep(300)\n            os._exit(0)\n    except OSError:\n        time.sleep(0.01)\n";
    let (status, out) = exec(
        &app,
        "small",
        &[
            "sh",
            "-c",
            "setsid python3 -c \"$1\" >/dev/null 2>&1 & echo filled",
            "sh",
            FILLER,
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert!(out.to_string().contains("filled"), "{out}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let answer = exec(&app, "small", &["true"]).await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "sandbox_limit_reached",
        &["process limit", "pids 8"],
    );
    app.ok(
        Method::DELETE,
        &format!("{B}/sandboxes/small"),
        &app.admin_key,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_byte_in_a_value_for_an_env_var_is_refused_naming_the_variable() {
    let app = app().await;
    // Stored: a secret's value may be any bytes of text until it is mapped to a variable.
    let pushed = post(
        &app,
        "/secrets",
        json!({"name": "with-nul", "value": "a\u{0}b"}),
    )
    .await;
    assert!(pushed.0.is_success(), "{}", pushed.1);
    let answer = post(
        &app,
        "/sandboxes",
        json!({"name": "nul", "network": "none", "secret_env_vars": {"TOKEN": "with-nul"}}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
        &["TOKEN", "with-nul", "NUL byte"],
    );
    // A plain env var with a NUL: a malformed request.
    let answer = post(
        &app,
        "/sandboxes",
        json!({"name": "nul", "network": "none", "env_vars": {"PLAIN": "a\u{0}b"}}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &["env_vars.PLAIN", "without NUL"],
    );
    let list = app
        .ok(Method::GET, &format!("{B}/sandboxes"), &app.admin_key, None)
        .await;
    assert_eq!(list, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_ciphertext_is_named_and_never_used() {
    use sqlx::Connection;
    let app = app().await;
    let pushed = post(
        &app,
        "/secrets",
        json!({"name": "tampered", "value": "abc123"}),
    )
    .await;
    assert!(pushed.0.is_success(), "{}", pushed.1);
    // Changed outside amika: every byte of the stored ciphertext flipped.
    let url = app.service.config().effective_database_url();
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let changed = sqlx::query(
        "UPDATE secrets SET ciphertext = zeroblob(length(ciphertext)) WHERE name = 'tampered'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);

    let answer = post(
        &app,
        "/sandboxes",
        json!({"name": "t", "network": "none", "secret_env_vars": {"TOKEN": "tampered"}}),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "value_unreadable",
        &[
            "secret \"tampered\"",
            "failed its integrity check",
            "push the secret again",
        ],
    );
    let list = app
        .ok(Method::GET, &format!("{B}/sandboxes"), &app.admin_key, None)
        .await;
    assert_eq!(list, json!([]));
}
