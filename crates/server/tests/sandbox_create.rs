//! Creates that cannot succeed leave nothing behind and say what to fix — here, a host without
//! bubblewrap (the provider pointed at a bwrap that does not exist).

use std::sync::Arc;

use amika_sandbox::local::LocalProvider;
use amika_server::service::{Service, ServiceError};
use amika_server::ServerConfig;
use amika_types as t;

#[tokio::test]
async fn missing_bubblewrap_fails_the_create_with_what_to_install_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let store = amika_store::connect(&format!(
        "sqlite://{}",
        dir.path().join("db.sqlite").display()
    ))
    .await
    .unwrap();
    let vault = Arc::new(amika_vault::Vault::new(amika_vault::MasterKey::generate()));
    let sandboxes = dir.path().join("sandboxes");
    let provider = Arc::new(
        LocalProvider::new(sandboxes.clone()).with_bwrap_path("/nonexistent/bwrap".into()),
    );
    let svc = Service::new(store, vault, provider, Arc::new(config));
    let key = svc
        .bootstrap_first_admin()
        .await
        .unwrap()
        .expect("fresh database");
    let caller = svc.authenticate(&key).await.unwrap();

    let req = t::CreateSandboxRequest {
        name: "dev-box".into(),
        ..Default::default()
    };
    match svc.create_sandbox(&caller, req).await {
        Err(ServiceError::Unavailable(msg)) => {
            assert!(msg.contains("apt-get install -y bubblewrap"), "{msg}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        svc.store.list_all_sandboxes().await.unwrap().is_empty(),
        "no row left behind"
    );
    let leftover = std::fs::read_dir(&sandboxes)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftover, 0, "no files left behind");
}
