//! `{id}` in the sandbox routes is an id or a name. A name skips the lookup by id (a request by
//! name costs one query, not two), which must not lose a sandbox whose *name* looks like an id,
//! nor let a caller reach another user's sandbox by its id.

use amika_server::service::ServiceError;
use amika_types as t;

#[tokio::test]
async fn sandboxes_are_found_by_id_and_by_name_even_a_name_shaped_like_an_id() {
    let server = amika_testkit::ServerBuilder::new().open().await.unwrap();
    let svc = &server.service;
    let admin = svc.authenticate(&server.admin_key).await.unwrap();
    let create = |name: &str| t::CreateSandboxRequest {
        name: name.into(),
        network: Some(t::NetworkMode::None),
        ..Default::default()
    };

    let plain = svc.create_sandbox(&admin, create("dev-box")).await.unwrap();
    let tricky = svc
        .create_sandbox(&admin, create("sbx_not-an-id"))
        .await
        .unwrap();
    for (sandbox, name) in [(&plain, "dev-box"), (&tricky, "sbx_not-an-id")] {
        assert_eq!(svc.get_sandbox(&admin, name).await.unwrap().id, sandbox.id);
        assert_eq!(
            svc.get_sandbox(&admin, &sandbox.id).await.unwrap().name,
            name
        );
    }

    // Another user reaches neither by id nor by name.
    let (_, key) = svc
        .create_user(
            &admin,
            t::CreateUserRequest {
                name: "bob".into(),
                org: admin.org_id.clone(),
                is_admin: false,
            },
        )
        .await
        .unwrap();
    let bob = svc.authenticate(&key).await.unwrap();
    for id_or_name in [plain.id.as_str(), "dev-box", "sbx_not-an-id"] {
        assert!(
            matches!(
                svc.get_sandbox(&bob, id_or_name).await,
                Err(ServiceError::NotFound(_))
            ),
            "{id_or_name}"
        );
    }

    for sandbox in [plain, tricky] {
        svc.delete_sandbox(&admin, &sandbox.id).await.unwrap();
    }
}
