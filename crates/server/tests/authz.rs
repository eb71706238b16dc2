//! Authorization on every endpoint: a second user of the same org and an admin of a second org
//! never read, use or change what is not theirs.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

const B: &str = "/api/v0beta1";

#[tokio::test]
async fn every_endpoint_keeps_users_and_orgs_apart() {
    let app = common::app().await;
    let alice = app.admin_key.clone(); // admin of org "default"
    let bob = app.user("bob", "default", false).await; // same org, not admin
    app.ok(
        Method::POST,
        &format!("{B}/admin/orgs"),
        &alice,
        Some(json!({"name": "other"})),
    )
    .await;
    let carol = app.user("carol", "other", true).await; // admin of another org

    // Alice's objects: a user-scoped and an org-scoped secret and credential.
    let s_user = app
        .ok(
            Method::POST,
            &format!("{B}/secrets"),
            &alice,
            Some(json!({"name": "ALICE_ONLY", "value": "alice-private-value"})),
        )
        .await;
    let s_org = app
        .ok(
            Method::POST,
            &format!("{B}/secrets"),
            &alice,
            Some(json!({"name": "TEAM", "value": "team-value", "scope": "org"})),
        )
        .await;
    let c_user = app
        .ok(
            Method::POST,
            &format!("{B}/secrets/claude"),
            &alice,
            Some(json!({"name": "alice-key", "value": "sk-alice", "type": "api_key"})),
        )
        .await;
    let c_org = app
        .ok(
            Method::POST,
            &format!("{B}/secrets/codex"),
            &alice,
            Some(
                json!({"name": "team-key", "value": "sk-team", "type": "api_key", "scope": "org"}),
            ),
        )
        .await;
    let (su, so, cu, co) = (
        s_user["id"].as_str().unwrap(),
        s_org["id"].as_str().unwrap(),
        c_user["id"].as_str().unwrap(),
        c_org["id"].as_str().unwrap(),
    );

    // Lists: bob sees the org's, not alice's own; carol sees nothing of this org.
    let names = |v: serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            app.ok(Method::GET, &format!("{B}/secrets"), &bob, None)
                .await
        ),
        vec!["TEAM"]
    );
    assert!(names(
        app.ok(Method::GET, &format!("{B}/secrets"), &carol, None)
            .await
    )
    .is_empty());
    assert!(names(
        app.ok(Method::GET, &format!("{B}/secrets/claude"), &bob, None)
            .await
    )
    .is_empty());
    assert_eq!(
        names(
            app.ok(Method::GET, &format!("{B}/secrets/codex"), &bob, None)
                .await
        ),
        vec!["team-key"]
    );
    assert!(names(
        app.ok(Method::GET, &format!("{B}/secrets/codex"), &carol, None)
            .await
    )
    .is_empty());

    // Alice's user-scoped objects do not exist for bob or carol, by id or by name.
    for key in [&bob, &carol] {
        for (m, path, body) in [
            (
                Method::PUT,
                format!("{B}/secrets/{su}"),
                Some(json!({"value": "x"})),
            ),
            (Method::DELETE, format!("{B}/secrets/{su}"), None),
            (Method::POST, format!("{B}/secrets/{su}/reveal"), None),
            (Method::POST, format!("{B}/secrets/ALICE_ONLY/reveal"), None),
            (
                Method::PUT,
                format!("{B}/secrets/claude/{cu}"),
                Some(json!({"value": "x"})),
            ),
            (Method::DELETE, format!("{B}/secrets/claude/{cu}"), None),
            (
                Method::POST,
                format!("{B}/secrets/claude/{cu}/reveal"),
                None,
            ),
            (
                Method::POST,
                format!("{B}/secrets/claude/alice-key/reveal"),
                None,
            ),
        ] {
            let (status, body) = app.call(m.clone(), &path, Some(key), body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{m} {path}: {body}");
        }
    }
    // The org's objects: carol (other org) cannot see them; bob sees but may not change or reveal.
    for (m, path) in [
        (Method::POST, format!("{B}/secrets/{so}/reveal")),
        (Method::DELETE, format!("{B}/secrets/{so}")),
        (Method::POST, format!("{B}/secrets/codex/{co}/reveal")),
    ] {
        assert_eq!(
            app.call(m.clone(), &path, Some(&carol), None).await.0,
            StatusCode::NOT_FOUND,
            "{m} {path}"
        );
        assert_eq!(
            app.call(m.clone(), &path, Some(&bob), None).await.0,
            StatusCode::FORBIDDEN,
            "{m} {path}"
        );
    }
    assert_eq!(
        app.call(
            Method::PUT,
            &format!("{B}/secrets/{so}"),
            Some(&bob),
            Some(json!({"value": "hijack"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::POST,
            &format!("{B}/secrets"),
            Some(&bob),
            Some(json!({"name": "X", "value": "v", "scope": "org"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // Nothing changed: alice still reveals her values.
    assert_eq!(
        app.ok(
            Method::POST,
            &format!("{B}/secrets/{su}/reveal"),
            &alice,
            None
        )
        .await["value"],
        "alice-private-value"
    );
    assert_eq!(
        app.ok(
            Method::POST,
            &format!("{B}/secrets/{so}/reveal"),
            &alice,
            None
        )
        .await["value"],
        "team-value"
    );

    // Sandboxes resolve only what the caller may use: bob cannot inject alice's secret.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("{B}/sandboxes/resolve-preview"),
            Some(&bob),
            Some(json!({"name": "b", "secret_env_vars": {"X": "ALICE_ONLY"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "secret_not_found");
    let (status, body) = app.call(Method::POST, &format!("{B}/sandboxes/resolve-preview"), Some(&bob), Some(json!({"name": "b", "agent_credentials": [{"kind": "claude", "name": "alice-key"}]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "agent_credential_not_found");
    let preview = app
        .ok(
            Method::POST,
            &format!("{B}/sandboxes/resolve-preview"),
            &bob,
            Some(
                json!({"name": "b", "agent_credentials": [{"kind": "claude"}, {"kind": "codex"}]}),
            ),
        )
        .await;
    assert_eq!(
        preview["resolved_agent_credentials"][0]["outcome"], "skipped",
        "{preview}"
    );
    assert_eq!(preview["resolved_agent_credentials"][1]["name"], "team-key");
    assert_eq!(
        preview["resolved_agent_credentials"][1]["source"],
        "org_default"
    );
    let preview = app
        .ok(
            Method::POST,
            &format!("{B}/sandboxes/resolve-preview"),
            &carol,
            Some(json!({"name": "c", "agent_credentials": [{"kind": "codex"}]})),
        )
        .await;
    assert_eq!(
        preview["resolved_agent_credentials"][0]["reason"],
        "no stored credential"
    );

    // API keys: one user cannot list or delete another's.
    let keys = app
        .ok(Method::GET, &format!("{B}/api-keys"), &alice, None)
        .await;
    let alice_key_id = keys["data"][0]["id"].as_str().unwrap().to_string();
    assert!(app
        .ok(Method::GET, &format!("{B}/api-keys"), &bob, None)
        .await["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["id"] != alice_key_id.as_str()));
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("{B}/api-keys/{alice_key_id}"),
            Some(&bob),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Admin endpoints need an admin, and no admin can add people to another populated org.
    assert_eq!(
        app.call(
            Method::POST,
            &format!("{B}/admin/orgs"),
            Some(&bob),
            Some(json!({"name": "x"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::POST,
            &format!("{B}/admin/users"),
            Some(&bob),
            Some(json!({"name": "x", "org": "default"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::POST,
            &format!("{B}/admin/users"),
            Some(&carol),
            Some(json!({"name": "mole", "org": "default"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Audit: carol sees nothing of the other org; bob sees only his own events.
    let carol_events = app
        .ok(Method::GET, &format!("{B}/audit-events"), &carol, None)
        .await;
    assert!(carol_events
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["org_id"] != s_user["org_id"]));
    let bob_events = app
        .ok(Method::GET, &format!("{B}/audit-events"), &bob, None)
        .await;
    assert!(bob_events
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["object_id"] != su));
    // ... and the refused reveals were audited for alice's org.
    let events = app
        .ok(
            Method::GET,
            &format!("{B}/audit-events?limit=1000"),
            &alice,
            None,
        )
        .await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "secret.reveal_denied"),
        "{events}"
    );

    // Without a key or with a wrong one: 401 everywhere.
    for path in [
        "/secrets",
        "/secrets/claude",
        "/sandboxes",
        "/api-keys",
        "/audit-events",
        "/me",
    ] {
        assert_eq!(
            app.call(Method::GET, &format!("{B}{path}"), None, None)
                .await
                .0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            app.call(Method::GET, &format!("{B}{path}"), Some("amk_wrong"), None)
                .await
                .0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
}

#[tokio::test]
async fn reveal_can_be_switched_off_and_is_always_audited() {
    let app = common::app_with(None, |c| c.allow_reveal = false).await;
    let key = app.admin_key.clone();
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &key,
        Some(json!({"name": "S", "value": "v1"})),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("{B}/secrets/S/reveal"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("switched off"),
        "{body}"
    );
    let events = app
        .ok(Method::GET, &format!("{B}/audit-events"), &key, None)
        .await;
    assert_eq!(events[0]["action"], "secret.reveal_denied", "{events}");
}

/// The audit listing filtered after its `LIMIT`: a member of an org where others wrote the
/// newest events got fewer of their own than asked for (none at all here).
#[tokio::test]
async fn a_member_of_a_busy_org_gets_limit_of_their_own_events() {
    let app = common::app().await;
    let admin = app.admin_key.clone();
    let bob = app.user("bob", "default", false).await;
    let bob_id = app.ok(Method::GET, &format!("{B}/me"), &bob, None).await["user_id"].clone();
    let push = |key: String, name: String| {
        let app = &app;
        async move {
            app.ok(
                Method::POST,
                &format!("{B}/secrets"),
                &key,
                Some(json!({"name": name, "value": "v"})),
            )
            .await;
        }
    };
    for i in 0..5 {
        push(bob.clone(), format!("BOB_{i}")).await;
    }
    // Then the admin writes many more, all newer than bob's.
    for i in 0..30 {
        push(admin.clone(), format!("ADMIN_{i}")).await;
    }
    for limit in [1, 3, 5] {
        let events = app
            .ok(
                Method::GET,
                &format!("{B}/audit-events?limit={limit}"),
                &bob,
                None,
            )
            .await;
        let events = events.as_array().unwrap();
        assert_eq!(events.len(), limit, "limit={limit}: {events:?}");
        assert!(events.iter().all(|e| e["user_id"] == bob_id), "{events:?}");
    }
    let newest = app
        .ok(
            Method::GET,
            &format!("{B}/audit-events?limit=1"),
            &bob,
            None,
        )
        .await;
    assert_eq!(newest[0]["object_name"], "BOB_4", "{newest}");
    // The admin still sees the whole org, newest first.
    let events = app
        .ok(
            Method::GET,
            &format!("{B}/audit-events?limit=3"),
            &admin,
            None,
        )
        .await;
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ADMIN_29", "ADMIN_28", "ADMIN_27"]);
}
