//! Concurrent updates of one secret or credential, on SQLite and PostgreSQL: each stores a
//! version of its own (issue 18, point 4: 20 parallel updates once all answered success while
//! the version rose by 17, and one version number was given to 6 different values).

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const B: &str = "/api/v0beta1";
const UPDATES: i64 = 24;

/// SQLite in a temp dir, then PostgreSQL when the test runs under `scripts/with-postgres.sh`.
async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(common::App) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    test(common::app().await).await;
    if let Some(db) = amika_testkit::FreshDatabase::for_test("concurrent_updates") {
        test(common::app_with(Some(db.url().to_string()), |_| {}).await).await;
    }
}

/// `UPDATES` PUTs of `path` at once, the i-th with `body(i)`; the version each answer names,
/// by i. Every one must succeed.
async fn update_all_at_once(
    app: &common::App,
    key: &str,
    path: &str,
    body: impl Fn(i64) -> Value,
) -> Vec<i64> {
    // All in flight at once: each request's reads and writes interleave with the others' at
    // every database round trip.
    let calls = (0..UPDATES).map(|i| app.call(Method::PUT, path, Some(key), Some(body(i))));
    let mut versions = Vec::new();
    for (status, answer) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{answer}");
        versions.push(answer["version"].as_i64().unwrap());
    }
    versions
}

/// The versions of the `action` events of the object named `name`, in the audit log.
async fn audited_versions(app: &common::App, key: &str, action: &str, name: &str) -> Vec<i64> {
    app.audit_events(key)
        .await
        .iter()
        .filter(|e| e["action"] == action && e["object_name"] == name)
        .map(|e| e["version"].as_i64().unwrap())
        .collect()
}

/// Every version from 2 to `UPDATES + 1`, each exactly once.
fn assert_one_each(versions: &[i64], what: &str) {
    let mut sorted = versions.to_vec();
    sorted.sort_unstable();
    let expected: Vec<i64> = (2..=UPDATES + 1).collect();
    assert_eq!(sorted, expected, "{what}: versions {versions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_secret_updates_each_get_a_version_of_their_own() {
    on_each_backend(|app| async move {
        let k = app.admin_key.clone();
        app.ok(
            Method::POST,
            &format!("{B}/secrets"),
            &k,
            Some(json!({"name": "RACE", "value": "value-0"})),
        )
        .await;
        let answers = update_all_at_once(
            &app,
            &k,
            &format!("{B}/secrets/RACE"),
            |i| json!({"value": format!("value-{}", i + 1)}),
        )
        .await;
        assert_one_each(&answers, "answers");
        assert_one_each(
            &audited_versions(&app, &k, "secret.updated", "RACE").await,
            "audit log",
        );
        let listed = app.ok(Method::GET, &format!("{B}/secrets"), &k, None).await;
        assert_eq!(listed[0]["version"], UPDATES + 1, "{listed}");
        // The stored value is the one of the update that was answered with the last version.
        let last = answers.iter().position(|v| *v == UPDATES + 1).unwrap();
        let revealed = app
            .ok(Method::POST, &format!("{B}/secrets/RACE/reveal"), &k, None)
            .await;
        assert_eq!(revealed["value"], format!("value-{}", last + 1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_credential_updates_each_get_a_version_of_their_own() {
    on_each_backend(|app| async move {
        let k = app.admin_key.clone();
        app.ok(
            Method::POST,
            &format!("{B}/secrets/claude"),
            &k,
            Some(json!({"name": "race", "type": "api_key", "value": "sk-ant-0"})),
        )
        .await;
        let answers = update_all_at_once(
            &app,
            &k,
            &format!("{B}/secrets/claude/race"),
            |i| json!({"value": format!("sk-ant-{}", i + 1)}),
        )
        .await;
        assert_one_each(&answers, "answers");
        assert_one_each(
            &audited_versions(&app, &k, "credential.updated", "race").await,
            "audit log",
        );
        let distinct: BTreeSet<i64> = answers.iter().copied().collect();
        assert_eq!(distinct.len() as i64, UPDATES);
        let last = answers.iter().position(|v| *v == UPDATES + 1).unwrap();
        let revealed = app
            .ok(
                Method::POST,
                &format!("{B}/secrets/claude/race/reveal"),
                &k,
                None,
            )
            .await;
        assert_eq!(revealed["value"], format!("sk-ant-{}", last + 1));
    })
    .await;
}
