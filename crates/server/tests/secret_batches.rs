//! `POST /secret-batches` writes all or nothing, on SQLite and PostgreSQL (issue 18, point 6: a
//! CLI killed 2 s into a 10,000-secret push once left 2,062 stored).

mod common;

use std::time::Instant;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const B: &str = "/api/v0beta1";

/// SQLite in a temp dir, then PostgreSQL when the test runs under `scripts/with-postgres.sh`.
async fn on_each_backend<F, Fut>(tweak: fn(&mut amika_server::ServerConfig), test: F)
where
    F: Fn(common::App, &'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    test(common::app_with(None, tweak).await, "sqlite").await;
    if let Some(db) = amika_testkit::FreshDatabase::for_test("secret_batches") {
        test(
            common::app_with(Some(db.url().to_string()), tweak).await,
            "postgres",
        )
        .await;
    }
}

fn value_of(i: usize) -> String {
    format!("batch-value-{i:05}-0123456789abcdef")
}

fn entries(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"name": format!("SECRET_{i:05}"), "value": value_of(i)}))
        .collect()
}

async fn secrets(app: &common::App, key: &str) -> Vec<Value> {
    let listed = app
        .ok(Method::GET, &format!("{B}/secrets"), key, None)
        .await;
    listed.as_array().unwrap().clone()
}

#[tokio::test]
async fn one_bad_entry_among_a_thousand_stores_nothing_and_every_error_names_its_index() {
    on_each_backend(
        |_| {},
        |app, _| async move {
            let k = app.admin_key.clone();
            let mut batch = entries(1000);
            batch[3]["name"] = json!("bad name");
            batch[700]["value"] = json!("");
            batch[901]["name"] = json!("SECRET_00005"); // the name of entry 5 again
            let (status, body) = app
                .call(
                    Method::POST,
                    &format!("{B}/secret-batches"),
                    Some(&k),
                    Some(json!({"secrets": batch})),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let fields: Vec<&str> = body["details"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["field"].as_str().unwrap())
                .collect();
            assert_eq!(
                fields,
                ["secrets[3].name", "secrets[700].value", "secrets[901].name"],
                "{body}"
            );
            assert!(
                body["message"].as_str().unwrap().starts_with("3 errors"),
                "{body}"
            );
            assert!(body.to_string().contains("secrets[5]"), "{body}");
            assert!(!body.to_string().contains("batch-value-"), "{body}");
            assert!(secrets(&app, &k).await.is_empty());
            let events = app.audit_events(&k).await;
            assert!(
                events.iter().all(|e| e["object_type"] != "secret"),
                "{events:?}"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn a_batch_creates_and_updates_every_entry_and_audits_each_without_its_value() {
    on_each_backend(
        |_| {},
        |app, backend| async move {
            let k = app.admin_key.clone();
            app.ok(
                Method::POST,
                &format!("{B}/secrets"),
                &k,
                Some(json!({"name": "SECRET_09998", "value": "old-value"})),
            )
            .await;
            // 10,000 entries of a 12-character name and a 34-character value fit the default
            // `max_body_bytes` (1 MiB).
            let body = json!({"secrets": entries(10_000)});
            let bytes = body.to_string().len();
            assert!(bytes < 1024 * 1024, "{bytes}");
            let started = Instant::now();
            let answer = app
                .ok(Method::POST, &format!("{B}/secret-batches"), &k, Some(body))
                .await;
            eprintln!(
                "{backend}: 10,000 secrets, {bytes} bytes of JSON, stored in {:?} (debug build)",
                started.elapsed()
            );
            let results = answer["secrets"].as_array().unwrap();
            assert_eq!(results.len(), 10_000);
            assert_eq!(results[0]["action"], "created");
            assert_eq!(results[0]["secret"]["name"], "SECRET_00000");
            assert_eq!(results[9998]["action"], "updated");
            assert_eq!(results[9998]["secret"]["version"], 2);
            assert!(!answer.to_string().contains("batch-value-"));
            assert_eq!(secrets(&app, &k).await.len(), 10_000);
            let revealed = app
                .ok(
                    Method::POST,
                    &format!("{B}/secrets/SECRET_09998/reveal"),
                    &k,
                    None,
                )
                .await;
            assert_eq!(revealed["value"], value_of(9998));
            // Audited per secret, as single pushes are (the newest 1,000 shown), never the value.
            let events = app.audit_events(&k).await;
            assert!(events.iter().any(|e| e["action"] == "secret.updated"
                && e["object_name"] == "SECRET_09998"
                && e["version"] == 2));
            let created = events
                .iter()
                .filter(|e| e["action"] == "secret.created")
                .count();
            assert!(created >= 998, "{created}");
            assert!(!serde_json::to_string(&events)
                .unwrap()
                .contains("batch-value-"));
        },
    )
    .await;
}

#[tokio::test]
async fn a_member_cannot_batch_org_secrets_and_nothing_is_stored() {
    on_each_backend(
        |_| {},
        |app, _| async move {
            let member = app.user("mia", "default", false).await;
            let mut batch = entries(3);
            batch[1]["scope"] = json!("org");
            let (status, body) = app
                .call(
                    Method::POST,
                    &format!("{B}/secret-batches"),
                    Some(&member),
                    Some(json!({"secrets": batch})),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("secrets[1]"),
                "{body}"
            );
            assert!(secrets(&app, &member).await.is_empty());
            let (status, body) = app
                .call(
                    Method::POST,
                    &format!("{B}/secret-batches"),
                    Some(&member),
                    Some(json!({"secrets": []})),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["details"][0]["field"], "secrets", "{body}");
        },
    )
    .await;
}

#[tokio::test]
async fn a_batch_over_max_body_bytes_is_413_and_stores_nothing() {
    on_each_backend(
        |c| c.max_body_bytes = 4096,
        |app, _| async move {
            let k = app.admin_key.clone();
            let (status, body) = app
                .call(
                    Method::POST,
                    &format!("{B}/secret-batches"),
                    Some(&k),
                    Some(json!({"secrets": entries(200)})),
                )
                .await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
            assert!(secrets(&app, &k).await.is_empty());
        },
    )
    .await;
}

/// A push cut off while its body is being sent (the CLI killed) stores nothing; the next one
/// is served as usual.
#[tokio::test]
async fn a_request_cut_off_midway_stores_nothing() {
    for url in [
        None,
        amika_testkit::FreshDatabase::for_test("secret_batches"),
    ] {
        let server = amika_testkit::ServerBuilder::new()
            .database_url(url.as_ref().map(|db| db.url().to_string()))
            .open()
            .await
            .unwrap()
            .serve()
            .await
            .unwrap();
        let key = server.admin_key().to_string();
        let addr = server.url.trim_start_matches("http://").to_string();
        let body = json!({"secrets": entries(2000)}).to_string();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {B}/secret-batches HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
            .write_all(&body.as_bytes()[..body.len() / 2])
            .await
            .unwrap();
        stream.flush().await.unwrap();
        drop(stream);

        let client = reqwest::Client::new();
        let push = client
            .post(format!("{}{B}/secret-batches", server.url))
            .bearer_auth(&key)
            .json(&json!({"secrets": [{"name": "AFTER", "value": "after-value"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(push.status(), StatusCode::OK);
        let listed: Vec<Value> = client
            .get(format!("{}{B}/secrets", server.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = listed.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["AFTER"]);
        server.stop().await;
    }
}
