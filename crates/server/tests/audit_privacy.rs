//! What the audit log tells an org admin about members' private objects (issue 18, point 3).
//! Before: every event carried an HMAC of the value that depended only on the value, so an
//! admin who pushed guesses into their own secret and compared hashes found a member's 4-digit
//! value; and the admin saw the names of members' private secrets and sandboxes.

mod common;

use axum::http::Method;
use serde_json::{json, Value};

const B: &str = "/api/v0beta1";

fn hmacs(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["detail"]["value_hmac"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_learns_neither_a_members_private_values_nor_their_names() {
    let app = common::app_with(None, |c| c.warm_sandboxes = 0).await;
    let admin = app.admin_key.clone();
    let mia = app.user("mia", "default", false).await;
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &mia,
        Some(json!({"name": "mia-bank-pin", "value": "4711"})),
    )
    .await;
    app.ok(
        Method::POST,
        &format!("{B}/sandboxes"),
        &mia,
        Some(json!({"name": "mia-secret-project", "network": "none",
                    "secret_env_vars": {"PIN": "mia-bank-pin"}})),
    )
    .await;
    // The admin's guessing attack: every 4-digit value pushed as versions of their own secret.
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &admin,
        Some(json!({"name": "guess", "value": "0000"})),
    )
    .await;
    for pin in (4700..4720).map(|n| format!("{n:04}")) {
        app.ok(
            Method::PUT,
            &format!("{B}/secrets/guess"),
            &admin,
            Some(json!({"value": pin})),
        )
        .await;
    }

    // Mia sees her own events in full, fingerprint included.
    let hers = app.audit_events(&mia).await;
    let created = hers
        .iter()
        .find(|e| e["action"] == "secret.created")
        .unwrap();
    assert_eq!(created["object_name"], "mia-bank-pin");
    let mias_hmac = created["detail"]["value_hmac"]
        .as_str()
        .unwrap()
        .to_string();

    let seen = app.audit_events(&admin).await;
    // The right guess (4711) hashes differently: fingerprints are bound to their object.
    let admins = hmacs(&seen);
    assert_eq!(admins.len(), 21, "{seen:#?}");
    assert!(
        !admins.contains(&mias_hmac),
        "the guess matched the member's fingerprint"
    );
    // Mia's events are there, in outline: no name, id, sandbox, version or detail.
    let mia_id = created["user_id"].clone();
    let of_mia: Vec<&Value> = seen.iter().filter(|e| e["user_id"] == mia_id).collect();
    let actions: Vec<&str> = of_mia
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"secret.created"), "{actions:?}");
    assert!(actions.contains(&"sandbox.created"), "{actions:?}");
    assert!(actions.contains(&"secret.injected"), "{actions:?}");
    for e in &of_mia {
        assert_eq!(e["object_id"], "", "{e}");
        assert_eq!(e["object_name"], "", "{e}");
        assert_eq!(e["sandbox_id"], Value::Null, "{e}");
        assert_eq!(e["detail"], json!({"private": true}), "{e}");
    }
    let text = serde_json::to_string(&seen).unwrap();
    for name in ["mia-bank-pin", "mia-secret-project", "PIN"] {
        assert!(!text.contains(name), "{name} shown to the admin");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_about_what_the_org_shares_stay_whole_for_its_admins() {
    let app = common::app().await;
    let other_admin = app.user("ola", "default", true).await;
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &other_admin,
        Some(json!({"name": "shared-token", "value": "t0k", "scope": "org"})),
    )
    .await;
    let seen = app.audit_events(&app.admin_key).await;
    let created = seen
        .iter()
        .find(|e| e["action"] == "secret.created")
        .unwrap();
    assert_eq!(created["object_name"], "shared-token");
    assert_eq!(created["detail"]["scope"], "org");
    assert_eq!(created["detail"]["value_hmac"].as_str().unwrap().len(), 64);
}
