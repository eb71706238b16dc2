//! The server's ceilings on sandboxes, through the HTTP API with real bubblewrap sandboxes:
//! memory, processes, sandboxes per user and network modes per role. Before them, a non-admin
//! created a sandbox with 1,000,000 MiB and 4,000,000 processes, and any user could put a
//! sandbox on the host's network (which reaches the host's loopback services).

mod common;

use amika_server::config::ConfigFileError;
use amika_server::ServerConfig;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const B: &str = "/api/v0beta1";

/// A server with small ceilings: 1024 MiB, 256 processes, 2 sandboxes per user.
async fn small_app() -> common::App {
    common::app_with(None, |c| {
        c.ceilings.max_memory_mib = Some(1024);
        c.ceilings.max_pids = Some(256);
        c.ceilings.max_sandboxes_per_user = Some(2);
        c.default_memory_mib = Some(512);
        c.default_pids = Some(128);
        c.warm_sandboxes = 0;
    })
    .await
}

async fn create(app: &common::App, key: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("{B}/sandboxes"),
        Some(key),
        Some(body),
    )
    .await
}

/// A 422 `over_limit` about `field` whose message names `ceiling`.
fn assert_over(answer: &(StatusCode, Value), field: Option<&str>, ceiling: &str) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "over_limit", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(ceiling), "{ceiling} not named: {message}");
    match field {
        Some(field) => assert_eq!(body["details"][0]["field"], field, "{body}"),
        None => assert_eq!(body["details"], json!([]), "{body}"),
    }
}

async fn delete(app: &common::App, key: &str, name: &str) {
    app.ok(Method::DELETE, &format!("{B}/sandboxes/{name}"), key, None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_over_a_ceiling_are_refused_naming_it_and_requests_at_it_pass() {
    let app = small_app().await;
    let bob = app.user("bob", "default", false).await;
    // The attack's request, and each limit one over its ceiling (given, or through `size`).
    let attack = create(
        &app,
        &bob,
        json!({"name": "big", "network": "none", "memory_mib": 1_000_000, "pids": 4_000_000}),
    )
    .await;
    assert_over(&attack, Some("memory_mib"), "max_memory_mib = 1024");
    for (body, field, ceiling) in [
        (
            json!({"name": "m", "network": "none", "memory_mib": 1025}),
            "memory_mib",
            "max_memory_mib = 1024",
        ),
        (
            json!({"name": "p", "network": "none", "pids": 257}),
            "pids",
            "max_pids = 256",
        ),
        (
            json!({"name": "s", "network": "none", "size": "xl"}),
            "size",
            "max_memory_mib = 1024",
        ),
        (
            json!({"name": "s", "network": "none", "size": "s", "pids": 300}),
            "pids",
            "max_pids = 256",
        ),
    ] {
        assert_over(&create(&app, &bob, body).await, Some(field), ceiling);
    }
    // Admins are bound by the same ceilings.
    let admin_over = create(
        &app,
        &app.admin_key,
        json!({"name": "a", "network": "none", "pids": 257}),
    )
    .await;
    assert_over(&admin_over, Some("pids"), "max_pids = 256");
    let listed = app
        .ok(Method::GET, &format!("{B}/sandboxes"), &bob, None)
        .await;
    assert_eq!(listed, json!([]), "a refused create leaves nothing");

    // At the ceilings: created, with those limits.
    let (status, body) = create(
        &app,
        &bob,
        json!({"name": "at", "network": "none", "memory_mib": 1024, "pids": 256}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["memory_mib"].clone(), body["pids"].clone()),
        (json!(1024), json!(256))
    );
    // `size` within the ceilings.
    let (status, body) = create(
        &app,
        &bob,
        json!({"name": "sized", "network": "none", "size": "s", "pids": 200}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The third sandbox of a user is over max_sandboxes_per_user; another user's are not.
    let third = create(&app, &bob, json!({"name": "third", "network": "none"})).await;
    assert_over(&third, None, "max_sandboxes_per_user = 2");
    let (status, body) = create(
        &app,
        &app.admin_key,
        json!({"name": "admins", "network": "none"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Deleting one makes room again.
    delete(&app, &bob, "sized").await;
    let (status, body) = create(&app, &bob, json!({"name": "third", "network": "none"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    for name in ["at", "third"] {
        delete(&app, &bob, name).await;
    }
    delete(&app, &app.admin_key, "admins").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_network_is_for_admins_by_default() {
    let app = small_app().await;
    let bob = app.user("bob", "default", false).await;
    let refused = create(&app, &bob, json!({"name": "h", "network": "host"})).await;
    assert_over(&refused, Some("network"), "allowed_networks.user");
    let message = refused.1["message"].as_str().unwrap();
    assert!(
        message.contains("network \"host\" is not allowed for users")
            && message.contains("[none, egress]")
            && message.contains("loopback"),
        "{message}"
    );
    let (status, body) = create(
        &app,
        &app.admin_key,
        json!({"name": "h", "network": "host"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["network"], "host");
    delete(&app, &app.admin_key, "h").await;

    // A server that lets users have `none` only.
    let strict = common::app_with(None, |c| {
        c.ceilings.allowed_networks.user = vec![amika_types::NetworkMode::None];
        c.warm_sandboxes = 0;
    })
    .await;
    let carol = strict.user("carol", "default", false).await;
    // The default mode (egress) is refused too, naming it.
    let refused = create(&strict, &carol, json!({"name": "e"})).await;
    assert_over(&refused, Some("network"), "allowed_networks.user is [none]");
    assert!(refused.1["message"]
        .as_str()
        .unwrap()
        .contains("\"egress\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_creates_cannot_pass_the_sandbox_count_together() {
    // Without the per-user lock around count and insert, 3 to 12 of these 20 got through.
    let app = small_app().await;
    let bob = app.user("bob", "default", false).await;
    let answers = futures::future::join_all((0..20).map(|i| {
        create(
            &app,
            &bob,
            json!({"name": format!("par-{i}"), "network": "none"}),
        )
    }))
    .await;
    let made: Vec<usize> = (0..20)
        .filter(|i| answers[*i].0 == StatusCode::ACCEPTED)
        .collect();
    // Removed before asserting, so that a failure leaves no sandbox running.
    for i in &made {
        delete(&app, &bob, &format!("par-{i}")).await;
    }
    let messages: Vec<&str> = answers
        .iter()
        .filter_map(|(_, body)| body["message"].as_str())
        .collect();
    assert_eq!(
        made.len(),
        2,
        "{} created; refusals: {messages:?}",
        made.len()
    );
    for (status, body) in &answers {
        if *status != StatusCode::ACCEPTED {
            assert_over(&(*status, body.clone()), None, "max_sandboxes_per_user = 2");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_the_defaults_leave_unlimited_gets_the_ceilings() {
    let app = common::app_with(None, |c| {
        c.default_memory_mib = None;
        c.default_pids = None;
        c.ceilings.max_memory_mib = Some(768);
        c.ceilings.max_pids = Some(96);
        c.warm_sandboxes = 0;
    })
    .await;
    let (status, body) = create(
        &app,
        &app.admin_key,
        json!({"name": "d", "network": "none"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["memory_mib"].clone(), body["pids"].clone()),
        (json!(768), json!(96))
    );
    delete(&app, &app.admin_key, "d").await;
}

fn apply(json: &str) -> Result<ServerConfig, ConfigFileError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.json");
    std::fs::write(&path, json).unwrap();
    let mut c = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().into());
    c.apply_file(&path).map(|_| c)
}

#[test]
fn the_config_file_sets_the_ceilings() {
    let defaults = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/x".into());
    assert_eq!(defaults.ceilings.max_memory_mib, Some(8192));
    assert_eq!(defaults.ceilings.max_pids, Some(4096));
    assert_eq!(defaults.ceilings.max_disk_mib, Some(20480));
    assert_eq!(defaults.ceilings.snapshot_quota_mib_per_user, Some(20480));
    assert_eq!(defaults.ceilings.snapshot_quota_mib_per_org, Some(102400));
    let c =
        apply(r#"{"snapshot_quota_mib_per_user": 0, "snapshot_quota_mib_per_org": 500}"#).unwrap();
    assert_eq!(
        (
            c.ceilings.snapshot_quota_mib_per_user,
            c.ceilings.snapshot_quota_mib_per_org
        ),
        (None, Some(500))
    );
    assert_eq!(
        apply(r#"{"max_disk_mib": 0}"#)
            .unwrap()
            .ceilings
            .max_disk_mib,
        None
    );
    assert_eq!(
        apply(r#"{"max_disk_mib": 100}"#)
            .unwrap()
            .ceilings
            .max_disk_mib,
        Some(100)
    );
    assert_eq!(
        defaults.ceilings.allowed_networks.user,
        [
            amika_types::NetworkMode::None,
            amika_types::NetworkMode::Egress
        ]
    );
    let c = apply(
        r#"{"max_memory_mib": 16384, "max_pids": 0, "max_sandboxes_per_user": 3,
            "allowed_networks": {"admin": ["none", "egress"], "user": ["none", "egress", "host"]}}"#,
    )
    .unwrap();
    assert_eq!(c.ceilings.max_memory_mib, Some(16384));
    assert_eq!(c.ceilings.max_pids, None);
    assert_eq!(c.ceilings.max_sandboxes_per_user, Some(3));
    assert!(c
        .ceilings
        .allowed_networks
        .user
        .contains(&amika_types::NetworkMode::Host));
}

#[test]
fn malformed_ceilings_name_the_file_and_the_key() {
    for (json, needle) in [
        (r#"{"max_memory_mib": -1}"#, "invalid value: integer `-1`"),
        (r#"{"max_disk_mib": "10G"}"#, "invalid type: string \"10G\""),
        (
            r#"{"snapshot_quota_mib_per_user": -5}"#,
            "invalid value: integer `-5`",
        ),
        (
            r#"{"snapshot_quota_mib_per_org": "1T"}"#,
            "invalid type: string \"1T\"",
        ),
        (
            r#"{"max_memory_mib": "lots"}"#,
            "invalid type: string \"lots\"",
        ),
        (
            r#"{"max_memory_mib": 31}"#,
            "max_memory_mib must be at least 32",
        ),
        (r#"{"max_pids": 7}"#, "max_pids must be at least 8"),
        (r#"{"max_pids": 1.5}"#, "invalid type: floating point"),
        (
            r#"{"max_memory_mib": 1024}"#,
            "default_memory_mib (2048) is over max_memory_mib (1024)",
        ),
        (
            r#"{"default_pids": 5000}"#,
            "default_pids (5000) is over max_pids (4096)",
        ),
        (
            r#"{"allowed_networks": {"user": ["none"]}}"#,
            "missing field `admin`",
        ),
        (
            r#"{"allowed_networks": {"admin": ["host"], "user": ["lan"]}}"#,
            "egress, none or host",
        ),
        (
            r#"{"allowed_networks": {"admin": ["host"], "user": []}}"#,
            "allowed_networks.user must name at least one",
        ),
        (
            r#"{"allowed_networks": {"admin": ["host"], "user": ["none"], "guest": []}}"#,
            "unknown field `guest`",
        ),
        (r#"{"max_sandboxes": 3}"#, "unknown field `max_sandboxes`"),
    ] {
        let err = apply(json).unwrap_err().to_string();
        assert!(
            err.contains("server.json") && err.contains(needle),
            "{json}: {err}"
        );
    }
}

#[tokio::test]
async fn a_server_whose_defaults_are_over_its_ceilings_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().into());
    config.default_pids = Some(10_000);
    let err = amika_server::open(config).await.unwrap_err().to_string();
    assert!(
        err.contains("default_pids (10000) is over max_pids (4096)"),
        "{err}"
    );
}

/// A sandbox whose home and workspace grow over `max_disk_mib` is stopped by the disk watch,
/// its error message saying why, while one under the limit runs on. Before, nothing bounded
/// them: a sandbox could fill the filesystem of the data dir (and the database with it).
#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_over_the_disk_limit_is_stopped_saying_why() {
    let app = common::app_with(None, |c| {
        c.ceilings.max_disk_mib = Some(40);
        c.warm_sandboxes = 0;
    })
    .await;
    let key = app.admin_key.clone();
    for name in ["big", "small"] {
        let (status, body) = create(&app, &key, json!({"name": name, "network": "none"})).await;
        assert!(status.is_success(), "{body}");
    }
    // The watch runs in the background (every 5 s): "big" may be stopped while it writes.
    let write = |name: &str, mib: u32| {
        let script = format!(
            "dd if=/dev/zero of=$HOME/workspace/{name} bs=1M count={mib} 2>/dev/null; sync; echo written"
        );
        json!({ "command": ["sh", "-c", script] })
    };
    for (name, mib) in [("small", 10), ("big", 60)] {
        let (status, out) = app
            .call(
                Method::POST,
                &format!("{B}/sandboxes/{name}/exec"),
                Some(&key),
                Some(write(name, mib)),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let out = out.to_string();
        assert!(out.contains("written") || name == "big", "{out}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let big = app
            .ok(Method::GET, &format!("{B}/sandboxes/big"), &key, None)
            .await;
        if big["state"] == "stopped" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not stopped: {big}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let big = app
        .ok(Method::GET, &format!("{B}/sandboxes/big"), &key, None)
        .await;
    assert_eq!(big["state"], "stopped", "{big}");
    let message = big["error_message"].as_str().unwrap();
    assert!(
        message.contains("over this server's max_disk_mib = 40"),
        "{message}"
    );
    assert!(message.contains("took 6"), "{message}");
    let small = app
        .ok(Method::GET, &format!("{B}/sandboxes/small"), &key, None)
        .await;
    assert_eq!(small["state"], "running", "{small}");
    // Audited with the reason; nothing more to stop.
    let events = app
        .ok(Method::GET, &format!("{B}/audit-events"), &key, None)
        .await;
    let stop = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "sandbox.stopped")
        .unwrap();
    assert!(stop["detail"]["reason"]
        .as_str()
        .unwrap()
        .contains("max_disk_mib"));
    assert!(app
        .service
        .stop_over_disk_limit(40)
        .await
        .unwrap()
        .is_empty());
    for name in ["big", "small"] {
        delete(&app, &key, name).await;
    }
}
