//! The harness itself: each option of the server builder takes effect, a served server answers
//! on its port, and a fresh PostgreSQL database is really created and really dropped.

use std::io::{Read, Write};
use std::sync::Arc;

use amika_sandbox::local::LocalProvider;
use amika_testkit::{FreshDatabase, ServerBuilder};

/// `GET path` over a bare TCP connection; the status code.
fn get_status(url: &str, path: &str) -> u16 {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_is_tweaked_and_the_server_answers_on_its_port() {
    let server = ServerBuilder::new()
        .configure(|c| c.allow_reveal = false)
        .open()
        .await
        .unwrap();
    assert!(!server.config().allow_reveal);
    assert!(server.data_dir().starts_with(server.dir.path()));
    server
        .service
        .authenticate(&server.admin_key)
        .await
        .expect("the admin key is the first admin's");

    let running = server.serve().await.unwrap();
    let url = running.url.clone();
    let status = tokio::task::spawn_blocking(move || get_status(&url, "/healthz"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    running.stop().await;
}

/// `TestServer` derived `Debug` and printed the admin key; the builder printed the database
/// URL with its password.
#[tokio::test]
async fn debug_of_the_harness_masks_the_admin_key_and_the_database_password() {
    let builder =
        ServerBuilder::new().database_url(Some("postgres://amika:pw-Secret-123@h:1/db".into()));
    let shown = format!("{builder:?}");
    assert!(!shown.contains("pw-Secret-123"), "{shown}");
    assert!(shown.contains("postgres://amika:***@h:1/db"), "{shown}");

    let server = ServerBuilder::new().open().await.unwrap();
    let shown = format!("{server:?}");
    assert!(!shown.contains(&server.admin_key), "{shown}");
    let running = server.serve().await.unwrap();
    let shown = format!("{running:?}");
    assert!(!shown.contains(running.admin_key()), "{shown}");
    running.stop().await;
}

#[tokio::test]
async fn a_chosen_master_key_is_the_one_in_force() {
    let key = amika_vault::MasterKey::generate();
    let id = key.id().to_string();
    let server = ServerBuilder::new().master_key(key).open().await.unwrap();
    assert_eq!(server.service.kek_id(), id);
}

#[tokio::test]
async fn a_chosen_provider_is_the_one_the_service_uses() {
    let server = ServerBuilder::new()
        .provider(|data_dir| {
            Arc::new(
                LocalProvider::new(data_dir.join("sandboxes"))
                    .with_bwrap_path("/nonexistent/bwrap".into()),
            )
        })
        .open()
        .await
        .unwrap();
    let err = server.service.check_provider().unwrap_err().to_string();
    assert!(err.contains("bubblewrap"), "{err}");
    assert_eq!(server.store().await.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn a_fresh_postgres_database_is_created_used_and_dropped() {
    let Some(db) = FreshDatabase::for_test("amika_testkit") else {
        return;
    };
    let server = ServerBuilder::new()
        .database_url(Some(db.url().to_string()))
        .open()
        .await
        .unwrap();
    assert_eq!(server.store().await.count_users().await.unwrap(), 1);
    let url = db.url().to_string();
    drop(server);
    db.drop_database().unwrap();
    assert!(
        amika_store::connect(&url).await.is_err(),
        "the database is gone"
    );
}
