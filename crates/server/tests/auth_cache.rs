//! Authentication without a database round trip on every request (issue 19): a key that
//! authenticated is taken at its word for `AUTH_CACHE_TTL`, and a deleted key stops working at
//! once on the server that deleted it and within 1 s on every other server sharing the
//! PostgreSQL database. Counted: the requests a revoked key still gets through.

use std::time::{Duration, Instant};

use amika_server::service::auth::AUTH_CACHE_TTL;
use amika_server::ServerConfig;
use amika_vault::MasterKey;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

const B: &str = "/api/v0beta1";

async fn call(
    router: &Router,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A new user's key on `a`, its id, and the key warmed into every router's cache.
async fn warmed_user_key(a: &Router, admin: &str, routers: &[&Router]) -> (String, String) {
    let (status, user) = call(
        a,
        "POST",
        &format!("{B}/admin/users"),
        admin,
        Some(json!({"name": "una", "org": "default"})),
    )
    .await;
    assert!(status.is_success(), "{user}");
    let key = user["api_key"].as_str().unwrap().to_string();
    for router in routers {
        let (status, _) = call(router, "GET", &format!("{B}/me"), &key, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, keys) = call(a, "GET", &format!("{B}/api-keys"), &key, None).await;
    let id = keys["data"][0]["id"].as_str().unwrap().to_string();
    (key, id)
}

/// Requests with `key` on `router` from now for `for_`: when the last one that got through was
/// sent, after the start, or `None`; and how many got through.
async fn last_pass(router: &Router, key: &str, for_: Duration) -> (Option<Duration>, usize) {
    let start = Instant::now();
    let (mut last, mut passed) = (None, 0);
    while start.elapsed() < for_ {
        let sent = start.elapsed();
        let (status, _) = call(router, "GET", &format!("{B}/me"), key, None).await;
        if status == StatusCode::OK {
            last = Some(sent);
            passed += 1;
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (last, passed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_key_stops_at_once_on_its_server() {
    let a = amika_testkit::ServerBuilder::new().open().await.unwrap();
    let router = a.router();
    let (key, id) = warmed_user_key(&router, &a.admin_key, &[&router]).await;
    let (status, body) = call(&router, "DELETE", &format!("{B}/api-keys/{id}"), &key, None).await;
    assert!(status.is_success(), "{body}");
    let (last, passed) = last_pass(&router, &key, Duration::from_millis(300)).await;
    assert_eq!((last, passed), (None, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_deleted_on_one_server_stops_within_a_second_on_another() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("auth_cache") else {
        return; // PostgreSQL only: servers share a database there.
    };
    let master = MasterKey::generate();
    let a = amika_testkit::ServerBuilder::new()
        .database_url(Some(db.url().to_string()))
        .master_key(master.clone())
        .open()
        .await
        .unwrap();
    // The second server: its own data dir, the same database and master key.
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
    config.database_url = Some(db.url().to_string());
    std::fs::create_dir_all(&config.data_dir).unwrap();
    amika_vault::write_key_file(&amika_vault::key_file_path(&config.data_dir), &master).unwrap();
    let b = amika_server::open(config).await.unwrap();
    assert!(b.first_admin_key.is_none(), "one database, one first admin");
    let (ra, rb) = (a.router(), amika_server::http::router(b.service.clone()));

    let (key, id) = warmed_user_key(&ra, &a.admin_key, &[&ra, &rb]).await;
    let (status, body) = call(&ra, "DELETE", &format!("{B}/api-keys/{id}"), &key, None).await;
    assert!(status.is_success(), "{body}");
    let (on_a, on_b) = tokio::join!(
        last_pass(&ra, &key, Duration::from_millis(1500)),
        last_pass(&rb, &key, Duration::from_millis(1500)),
    );
    eprintln!(
        "requests the revoked key got through: {} on its server, {} on the other (last after {:?})",
        on_a.1, on_b.1, on_b.0
    );
    assert_eq!(on_a, (None, 0));
    assert!(
        on_b.0.is_none_or(|last| last < Duration::from_secs(1)),
        "{on_b:?}"
    );
    assert!(on_b.0.is_none_or(|last| last <= AUTH_CACHE_TTL), "{on_b:?}");
}
