//! The master key at start and in rotation: a wrong key stops the server before it serves, a
//! rotation re-wraps every data key and every value still decrypts, and a ciphertext moved to
//! another row does not open.

mod common;

use amika_server::{open, rotate_key, ServerConfig, StartError};
use axum::http::{Method, StatusCode};
use serde_json::json;

const B: &str = "/api/v0beta1";

fn config(app: &common::App) -> ServerConfig {
    app.service.config().clone()
}

#[tokio::test]
async fn a_wrong_or_missing_key_stops_the_server_with_a_clear_message() {
    let app = common::app().await;
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &app.admin_key,
        Some(json!({"name": "S", "value": "keep-me"})),
    )
    .await;
    let cfg = config(&app);
    let key_file = cfg.data_dir.join("master.key");
    let original = std::fs::read(&key_file).unwrap();

    amika_vault::write_key_file(&key_file, &amika_vault::MasterKey::generate()).unwrap();
    let err = open(cfg.clone()).await.unwrap_err();
    assert!(matches!(err, StartError::KeyMismatch(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("not the key that encrypted this database")
            && msg.contains("AMIKA_MASTER_KEY"),
        "{msg}"
    );

    std::fs::remove_file(&key_file).unwrap();
    let msg = open(cfg.clone()).await.unwrap_err().to_string();
    assert!(
        msg.contains("master.key") && msg.contains("AMIKA_MASTER_KEY"),
        "{msg}"
    );
    assert!(
        !key_file.exists(),
        "a missing key is never silently replaced for a database with data"
    );

    // The right key opens it again and the value is intact.
    std::fs::write(&key_file, &original).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let reopened = open(cfg).await.unwrap();
    assert!(reopened.first_admin_key.is_none());
}

#[tokio::test]
async fn rotation_rewraps_every_data_key_and_values_still_decrypt() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &k,
        Some(json!({"name": "A", "value": "alpha-value"})),
    )
    .await;
    app.ok(
        Method::PUT,
        &format!("{B}/secrets/A"),
        &k,
        Some(json!({"value": "alpha-v2"})),
    )
    .await;
    app.ok(
        Method::POST,
        &format!("{B}/secrets"),
        &k,
        Some(json!({"name": "O", "value": "org-value", "scope": "org"})),
    )
    .await;
    app.ok(
        Method::POST,
        &format!("{B}/secrets/codex"),
        &k,
        Some(json!({"name": "ck", "value": "sk-codex", "type": "api_key"})),
    )
    .await;
    let old_kek = app.service.kek_id().to_string();
    let cfg = config(&app);
    drop(app.router);

    let new_kek = rotate_key(&cfg, None).await.unwrap();
    assert_ne!(new_kek, old_kek);
    let opened = open(cfg.clone()).await.unwrap();
    assert_eq!(opened.service.kek_id(), new_kek);
    assert_eq!(
        amika_testkit::open_store(&opened.service)
            .await
            .kek_ids_in_use()
            .await
            .unwrap(),
        vec![new_kek.clone()]
    );
    let router = amika_server::http::router(opened.service.clone());
    let app2 = common::App {
        router,
        admin_key: k.clone(),
        dir: app.dir,
        service: opened.service,
    };
    assert_eq!(
        app2.ok(Method::POST, &format!("{B}/secrets/A/reveal"), &k, None)
            .await["value"],
        "alpha-v2"
    );
    assert_eq!(
        app2.ok(Method::POST, &format!("{B}/secrets/O/reveal"), &k, None)
            .await["value"],
        "org-value"
    );
    assert_eq!(
        app2.ok(
            Method::POST,
            &format!("{B}/secrets/codex/ck/reveal"),
            &k,
            None
        )
        .await["value"],
        "sk-codex"
    );
    assert!(!cfg.data_dir.join("master.new").exists());
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_does_not_open() {
    let app = common::app().await;
    let k = app.admin_key.clone();
    let a = app
        .ok(
            Method::POST,
            &format!("{B}/secrets"),
            &k,
            Some(json!({"name": "A", "value": "value-of-a"})),
        )
        .await;
    let b = app
        .ok(
            Method::POST,
            &format!("{B}/secrets"),
            &k,
            Some(json!({"name": "B", "value": "value-of-b"})),
        )
        .await;
    let store = amika_testkit::open_store(&app.service).await;
    let row_a = store.get_secret(a["id"].as_str().unwrap()).await.unwrap();
    let mut row_b = store.get_secret(b["id"].as_str().unwrap()).await.unwrap();
    row_b.sealed = row_a.sealed.clone();
    assert!(store.update_secret(&row_b, &row_b).await.unwrap());
    let (status, body) = app
        .call(
            Method::POST,
            &format!("{B}/secrets/B/reveal"),
            Some(&k),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.to_string().contains("value-of-a"), "{body}");
    // Tampering with a byte also fails, and the untouched row still opens.
    let mut row_a2 = row_a.clone();
    let last = row_a2.sealed.ciphertext.len() - 1;
    row_a2.sealed.ciphertext[last] ^= 1;
    assert!(store.update_secret(&row_a2, &row_a).await.unwrap());
    assert_eq!(
        app.call(
            Method::POST,
            &format!("{B}/secrets/A/reveal"),
            Some(&k),
            None
        )
        .await
        .0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(store.update_secret(&row_a, &row_a2).await.unwrap());
    assert_eq!(
        app.ok(Method::POST, &format!("{B}/secrets/A/reveal"), &k, None)
            .await["value"],
        "value-of-a"
    );
}
