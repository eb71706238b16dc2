//! Creates that cannot succeed leave nothing behind and say what to fix — here, a host without
//! bubblewrap (the provider pointed at a bwrap that does not exist).

use std::sync::Arc;

use amika_sandbox::local::LocalProvider;
use amika_server::service::ServiceError;
use amika_types as t;

#[tokio::test]
async fn missing_bubblewrap_fails_the_create_with_what_to_install_and_leaves_nothing() {
    let server = amika_testkit::ServerBuilder::new()
        .provider(|data_dir| {
            Arc::new(
                LocalProvider::new(data_dir.join("sandboxes"))
                    .with_bwrap_path("/nonexistent/bwrap".into()),
            )
        })
        .open()
        .await
        .unwrap();
    let sandboxes = server.data_dir().join("sandboxes");
    let (svc, key) = (&server.service, &server.admin_key);
    let caller = svc.authenticate(key).await.unwrap();

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
        server
            .store()
            .await
            .list_all_sandboxes()
            .await
            .unwrap()
            .is_empty(),
        "no row left behind"
    );
    let leftover = std::fs::read_dir(&sandboxes)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftover, 0, "no files left behind");
}
