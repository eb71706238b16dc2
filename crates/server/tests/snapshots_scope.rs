//! Org-scope snapshots and snapshot quotas (issue 16), on real bwrap sandboxes, a real store and
//! vault: an org admin shares a scrubbed snapshot with the org, whose members see it and start
//! sandboxes from it but cannot delete it, while another org sees nothing; members cannot share,
//! and nobody shares a `full` capture; a capture that outgrows the quota's room fails and leaves
//! its source as it was and no file behind; with no room left a capture is refused up front.

mod common;

use amika_server::service::Caller;
use amika_server::Service;
use amika_types::{self as t, NetworkMode};
use axum::http::{Method, StatusCode};
use common::snapshots::{assert_hidden, create_running, snapshot};
use serde_json::{json, Value};

const API: &str = "/api/v0beta1";
const DB_URL: &str = "postgres://app:SCOPE-TEST-PASSWORD-0042@db/app";

async fn sandbox(svc: &Service, caller: &Caller, name: &str, secret: bool) -> String {
    let secret_env_vars = if secret {
        [("DATABASE_URL".to_string(), "db-url".to_string())].into()
    } else {
        Default::default()
    };
    create_running(
        svc,
        caller,
        t::CreateSandboxRequest {
            name: name.into(),
            secret_env_vars,
            network: Some(NetworkMode::None),
            ..Default::default()
        },
    )
    .await
}

async fn sh(svc: &Service, caller: &Caller, sandbox: &str, script: &str) -> String {
    let (code, out, err) = amika_testkit::exec_sh(svc, caller, sandbox, script).await;
    assert_eq!(code, 0, "{script}: {err}");
    out
}

async fn post_snapshot(app: &common::App, key: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("{API}/sandbox-snapshots"),
        Some(key),
        Some(body),
    )
    .await
}

fn snapshot_files(app: &common::App) -> Vec<String> {
    match std::fs::read_dir(app.service.config().data_dir.join("snapshots")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_snapshot_is_shared_with_the_org_only_and_deleted_by_its_admins_only() {
    let app = common::app_with(None, |c| c.warm_sandboxes = 0).await;
    let svc = &app.service;
    let admin = svc.authenticate(&app.admin_key).await.unwrap();
    svc.create_secret(
        &admin,
        t::CreateSecretRequest {
            name: "db-url".into(),
            value: DB_URL.into(),
            scope: None,
            description: None,
        },
    )
    .await
    .unwrap();
    sandbox(svc, &admin, "base", true).await;
    sh(svc, &admin, "base", "echo prepared > ~/ready.txt").await;
    let bob_key = app.user("bob", "default", false).await;
    let bob = svc.authenticate(&bob_key).await.unwrap();
    app.ok(
        Method::POST,
        &format!("{API}/admin/orgs"),
        &app.admin_key,
        Some(json!({"name": "other-org"})),
    )
    .await;
    let carol_key = app.user("carol", "other-org", true).await;

    // A member cannot share; nobody shares a full capture.
    sandbox(svc, &bob, "bobs", false).await;
    let (status, body) = post_snapshot(
        &app,
        &bob_key,
        json!({"sandbox_ref": "bobs", "name": "team-env", "scope": "org"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("org admins"),
        "{body}"
    );
    let (status, body) = post_snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "base", "name": "team-env", "scope": "org", "mode": "full"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"][0]["field"], "mode", "{body}");
    assert!(
        svc.get_sandbox(&admin, "base").await.is_ok(),
        "nothing changed"
    );

    let snap = snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "base", "name": "team-env", "scope": "org"}),
    )
    .await;
    assert_eq!(snap["state"], "active", "{snap}");
    assert_eq!(snap["scope"], "org", "{snap}");
    let by_id = format!("{API}/sandbox-snapshots/{}", snap["id"].as_str().unwrap());
    let by_name = format!("{API}/sandbox-snapshots/team-env");

    // A member of the org sees it and starts a sandbox from it, scrubbed.
    let list = app
        .ok(
            Method::GET,
            &format!("{API}/sandbox-snapshots"),
            &bob_key,
            None,
        )
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team-env"], "{list}");
    assert_eq!(
        app.ok(Method::GET, &by_name, &bob_key, None).await["id"],
        snap["id"]
    );
    create_running(
        svc,
        &bob,
        t::CreateSandboxRequest {
            name: "from-team".into(),
            snapshot: Some("team-env".into()),
            network: Some(NetworkMode::None),
            ..Default::default()
        },
    )
    .await;
    let out = sh(
        svc,
        &bob,
        "from-team",
        "cat ~/ready.txt; echo \"[${DATABASE_URL:-unset}]\"",
    )
    .await;
    assert_eq!(out, "prepared\n[unset]\n");
    let (status, body) = app
        .call(Method::DELETE, &by_name, Some(&bob_key), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Another org sees nothing, by name or id, and cannot start from it.
    assert_hidden(&app, &carol_key, &snap, "team-env").await;

    // A member's own snapshot of the same name shadows the org's, for them only; a second org
    // snapshot of that name is a conflict.
    let own = snapshot(
        &app,
        &bob_key,
        json!({"sandbox_ref": "bobs", "name": "team-env", "mode": "full"}),
    )
    .await;
    assert_eq!(own["state"], "active", "{own}");
    let seen = app.ok(Method::GET, &by_name, &bob_key, None).await;
    assert_eq!((&seen["id"], &seen["scope"]), (&own["id"], &json!("user")));
    let seen = app.ok(Method::GET, &by_name, &app.admin_key, None).await;
    assert_eq!(seen["id"], snap["id"]);
    sandbox(svc, &admin, "base2", false).await;
    let (status, body) = post_snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "base2", "name": "team-env", "scope": "org"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = app
        .call(Method::DELETE, &by_id, Some(&app.admin_key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = app.ok(Method::GET, &by_name, &bob_key, None).await;
    assert_eq!(seen["id"], own["id"], "the org's is gone, bob's own stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_over_the_quota_fails_keeps_the_source_and_leaves_no_file() {
    let app = common::app_with(None, |c| {
        c.warm_sandboxes = 0;
        c.ceilings.snapshot_quota_mib_per_user = Some(1);
    })
    .await;
    let svc = &app.service;
    let admin = svc.authenticate(&app.admin_key).await.unwrap();
    sandbox(svc, &admin, "big", false).await;
    // Random bytes do not compress: 3 MiB stays 3 MiB in the archive.
    sh(
        svc,
        &admin,
        "big",
        "head -c 3145728 /dev/urandom > ~/noise.bin",
    )
    .await;
    let snap = snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "big", "name": "too-big"}),
    )
    .await;
    assert_eq!(snap["state"], "failed", "{snap}");
    let message = snap["error_message"].as_str().unwrap();
    assert!(
        message.contains("snapshot_quota_mib_per_user = 1 MiB")
            && message.contains("left as it was"),
        "{message}"
    );
    assert!(
        snapshot_files(&app).is_empty(),
        "{:?}",
        snapshot_files(&app)
    );
    // The source is kept (not deleted as a scrub_and_delete capture would) and runs again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = svc.get_sandbox(&admin, "big").await.unwrap();
        if s.state == t::SandboxState::Running {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", s.state);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        sh(svc, &admin, "big", "wc -c < ~/noise.bin").await,
        "3145728\n"
    );

    // Small enough: captured.
    sh(
        svc,
        &admin,
        "big",
        "rm ~/noise.bin; echo small > ~/note.txt",
    )
    .await;
    let small = snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "big", "name": "small", "mode": "full"}),
    )
    .await;
    assert_eq!(small["state"], "active", "{small}");

    // No room left (as after the quota was lowered): refused before anything starts.
    let store = amika_testkit::open_store(svc).await;
    let mut row = store
        .get_snapshot(small["id"].as_str().unwrap())
        .await
        .unwrap();
    row.size_bytes = Some(2 * 1024 * 1024);
    store.update_snapshot(&row).await.unwrap();
    let (status, body) = post_snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "big", "name": "one-more", "mode": "full"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "over_limit", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("your snapshots hold 2 MiB")
            && message.contains("snapshot_quota_mib_per_user = 1 MiB"),
        "{message}"
    );
    let list = app
        .ok(
            Method::GET,
            &format!("{API}/sandbox-snapshots"),
            &app.admin_key,
            None,
        )
        .await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "no row was added"
    );
    let s = svc.get_sandbox(&admin, "big").await.unwrap();
    assert_eq!(
        s.state,
        t::SandboxState::Running,
        "the source was not touched"
    );
}
