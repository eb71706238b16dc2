//! Snapshot helpers shared by the snapshot tests: start a sandbox and wait until it runs; take a
//! snapshot over the API and wait until its capture ends.

use std::time::{Duration, Instant};

use amika_server::service::Caller;
use amika_server::Service;
use amika_types::{self as t, SandboxState};
use axum::http::{Method, StatusCode};
use serde_json::Value;

const API: &str = "/api/v0beta1";

pub async fn create_running(
    svc: &Service,
    caller: &Caller,
    req: t::CreateSandboxRequest,
) -> String {
    let created = svc.create_sandbox(caller, req).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = svc.get_sandbox(caller, &created.id).await.unwrap();
        match s.state {
            SandboxState::Running => return created.id,
            SandboxState::Failed => panic!("the sandbox failed: {:?}", s.error_message),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the sandbox did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POST a snapshot and wait until it is no longer capturing: the final snapshot.
pub async fn snapshot(app: &super::App, key: &str, body: Value) -> Value {
    let (status, created) = app
        .call(
            Method::POST,
            &format!("{API}/sandbox-snapshots"),
            Some(key),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    assert_eq!(created["state"], "capturing", "{created}");
    let path = format!(
        "{API}/sandbox-snapshots/{}",
        created["snapshot"].as_str().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let snap = app.ok(Method::GET, &path, key, None).await;
        if snap["state"] != "capturing" {
            return snap;
        }
        assert!(Instant::now() < deadline, "the capture did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `key`'s caller neither sees snapshot `snap` (by `name` or id: 404 for get and delete, an
/// empty list) nor starts a sandbox from it (422 on `snapshot`).
pub async fn assert_hidden(app: &super::App, key: &str, snap: &Value, name: &str) {
    for path in [
        format!("{API}/sandbox-snapshots/{name}"),
        format!("{API}/sandbox-snapshots/{}", snap["id"].as_str().unwrap()),
    ] {
        let (status, _) = app.call(Method::GET, &path, Some(key), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.call(Method::DELETE, &path, Some(key), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let list = app
        .ok(Method::GET, &format!("{API}/sandbox-snapshots"), key, None)
        .await;
    assert_eq!(list, serde_json::json!({"items": []}));
    let (status, body) = app
        .call(
            Method::POST,
            &format!("{API}/sandboxes"),
            Some(key),
            Some(serde_json::json!({"name": "thief", "snapshot": snap["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["field"], "snapshot", "{body}");
}
