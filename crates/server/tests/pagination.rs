//! Pagination of the lists over HTTP (issue 17): without `limit` and `cursor` a list answers the
//! whole plain array, as the public Amika API does; with them, a page and the next page's cursor
//! in `X-Next-Cursor` and `Link`. Walking the pages with secrets created between them answers
//! every secret that existed throughout exactly once. A malformed `limit` or `cursor` is a 400
//! that names the parameter. On SQLite, and on PostgreSQL under `scripts/with-postgres.sh`.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

/// `GET path` with the admin's key: status, the `X-Next-Cursor` and `Link` headers, the body.
async fn get(app: &common::App, path: &str) -> (StatusCode, Option<String>, Option<String>, Value) {
    let req = Request::get(path)
        .header("authorization", format!("Bearer {}", app.admin_key))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = app.raw(req).await;
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    (status, header("x-next-cursor"), header("link"), body)
}

async fn create_secret(app: &common::App, name: &str) {
    app.ok(
        Method::POST,
        "/api/v0beta1/secrets",
        &app.admin_key,
        Some(json!({"name": name, "value": "v"})),
    )
    .await;
}

fn names(body: &Value) -> Vec<String> {
    body.as_array()
        .expect("the body is a plain array")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

async fn pages_walk_every_secret_once(app: common::App) {
    let originals: Vec<String> = (0..23).map(|i| format!("p{:02}", i * 2)).collect();
    for name in &originals {
        create_secret(&app, name).await;
    }
    // Unpaged: the whole array and no paging header, as before.
    let (status, next, link, body) = get(&app, "/api/v0beta1/secrets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&body), originals);
    assert_eq!((next, link), (None, None));

    let mut seen = Vec::new();
    let mut path = "/api/v0beta1/secrets?limit=5".to_string();
    for round in 0.. {
        assert!(round < 50, "paging did not end");
        let (status, next, link, body) = get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = names(&body);
        assert!(page.len() <= 5, "{page:?}");
        seen.extend(page.clone());
        // Between pages: one before the position reached, one after it.
        create_secret(&app, &format!("p{:02}", round * 2 + 1)).await;
        create_secret(&app, &format!("q{round:02}")).await;
        let Some(cursor) = next else {
            assert_eq!(link, None, "Link without X-Next-Cursor");
            break;
        };
        let link = link.expect("Link beside X-Next-Cursor");
        assert_eq!(
            link,
            format!("</api/v0beta1/secrets?limit=5&cursor={cursor}>; rel=\"next\"")
        );
        path = format!("/api/v0beta1/secrets?limit=5&cursor={cursor}");
    }
    let originals_seen: Vec<String> = seen
        .iter()
        .filter(|n| originals.contains(n))
        .cloned()
        .collect();
    assert_eq!(originals_seen, originals, "every original once, in order");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, seen, "no secret twice, list order kept");
    assert!(
        seen.iter().any(|n| n.starts_with('q')),
        "inserts after the position show up"
    );
}

#[tokio::test]
async fn pages_walk_every_secret_once_on_sqlite() {
    pages_walk_every_secret_once(common::app().await).await;
}

#[tokio::test]
async fn pages_walk_every_secret_once_on_postgres() {
    let Some(database) = amika_testkit::FreshDatabase::for_test("amika_http_pages") else {
        eprintln!("skipped: AMIKA_SKIP_POSTGRES=1");
        return;
    };
    let app = common::app_with(Some(database.url().to_string()), |_| {}).await;
    pages_walk_every_secret_once(app).await;
    database.drop_database().unwrap();
}

#[tokio::test]
async fn malformed_limits_and_cursors_are_a_400_naming_the_parameter() {
    let app = common::app().await;
    let lists = [
        "/api/v0beta1/secrets",
        "/api/v0beta1/secrets/claude",
        "/api/v0beta1/sandboxes",
        "/api/v0beta1/secrets/ssh-public-keys",
    ];
    for list in lists {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("limit=-3", "limit"),
            ("cursor=xyz", "cursor"),
            ("cursor=ABCD", "cursor"),
            ("cursor=abc", "cursor"),
            ("limit=5&cursor=", "cursor"),
        ] {
            let path = format!("{list}?{query}");
            let (status, _, _, body) = get(&app, &path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert_eq!(body["code"], "invalid_request", "{path}: {body}");
            assert_eq!(body["details"][0]["field"], field, "{path}: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.starts_with(field), "{path}: {message}");
        }
        // A well-formed cursor the server never gave is a position, not an error.
        let (status, _, _, body) = get(&app, &format!("{list}?cursor=7a7a")).await;
        assert_eq!(status, StatusCode::OK, "{list}: {body}");
    }
}

/// The small lists page the same way (in memory, by their list's key).
#[tokio::test]
async fn sandboxes_ssh_keys_and_credentials_page_too() {
    let app = common::app().await;
    for i in 0..3 {
        app.ok(
            Method::POST,
            "/api/v0beta1/secrets/claude",
            &app.admin_key,
            Some(json!({"name": format!("c{i}"), "type": "api_key", "value": "sk-ant-x"})),
        )
        .await;
    }
    let (_, next, _, body) = get(&app, "/api/v0beta1/secrets/claude?limit=2").await;
    assert_eq!(names(&body), ["c0", "c1"]);
    let cursor = next.expect("a next page");
    let (_, next, _, body) = get(
        &app,
        &format!("/api/v0beta1/secrets/claude?cursor={cursor}"),
    )
    .await;
    assert_eq!(names(&body), ["c2"]);
    assert_eq!(next, None);
    let (status, next, _, body) = get(&app, "/api/v0beta1/sandboxes?limit=1").await;
    assert_eq!((status, next), (StatusCode::OK, None));
    assert_eq!(body, json!([]));
}
