//! The sandbox rows a store shows from memory (`show_sandbox`, `show_sandbox_by_name`,
//! `show_sandboxes`, issue 19) are never stale after a write through the same store: every
//! kind of sandbox write, each made with all three warm, is seen by the very next read. On both
//! backends (`sandbox_cache_postgres` needs `scripts/with-postgres.sh`, see story.rs).

use std::sync::Arc;

use amika_store::{
    InjectionRecord, OrgRow, SandboxOptions, SandboxRow, Store, StoreError, UserRow,
};
use amika_types::{NetworkMode, SandboxState};
use chrono::{SubsecRound, Utc};

fn sandbox(id: &str, user: &UserRow, name: &str) -> SandboxRow {
    let at = Utc::now().trunc_subsecs(6);
    SandboxRow {
        id: id.into(),
        org_id: user.org_id.clone(),
        user_id: user.id.clone(),
        name: name.into(),
        provider: "local".into(),
        state: SandboxState::Stopped,
        error_message: None,
        secret_env_vars: Default::default(),
        agent_credentials: vec![],
        resolved_agent_credentials: vec![],
        secret_names: vec![],
        injection: InjectionRecord::default(),
        options: SandboxOptions::new(NetworkMode::None, None, None),
        workspace: None,
        created_at: at,
        updated_at: at,
    }
}

/// What the store shows of the user's sandbox `id` (by id, by `name`, in the list) — read
/// twice, so that the second read is from memory when it can be — against the database.
async fn check(store: &dyn Store, user: &UserRow, id: &str, name: &str, step: &str) {
    for _ in 0..2 {
        let by_id = store.show_sandbox(id).await.ok();
        let by_name = store.show_sandbox_by_name(&user.id, name).await.ok();
        let listed = store.show_sandboxes(&user.id).await.unwrap();
        assert_eq!(by_id, store.get_sandbox(id).await.ok(), "{step}: by id");
        assert_eq!(
            by_name,
            store.get_sandbox_by_name(&user.id, name).await.ok(),
            "{step}: by name"
        );
        assert_eq!(
            *listed,
            store.list_sandboxes(&user.id).await.unwrap(),
            "{step}: list"
        );
    }
}

async fn each_write_is_seen_at_once(store: Arc<dyn Store>) {
    let org = OrgRow {
        id: "o_cache".into(),
        name: "cache".into(),
        created_at: Utc::now(),
    };
    store.create_org(&org).await.unwrap();
    let user = UserRow {
        id: "u_cache".into(),
        org_id: org.id.clone(),
        name: "cache".into(),
        is_admin: false,
        created_at: Utc::now(),
    };
    store.create_user(&user).await.unwrap();
    let s = store.as_ref();
    let row = sandbox("sbx_cache1", &user, "one");
    check(s, &user, &row.id, "one", "nothing yet").await;

    s.insert_sandbox(&row).await.unwrap();
    check(s, &user, &row.id, "one", "insert").await;
    s.insert_sandbox(&sandbox("sbx_cache2", &user, "two"))
        .await
        .unwrap();
    check(s, &user, &row.id, "one", "insert of another").await;

    let later = Utc::now().trunc_subsecs(6);
    let started = s
        .start_sandbox(
            &row.id,
            SandboxState::Stopped,
            SandboxState::Initializing,
            &row.injection,
            later,
        )
        .await
        .unwrap();
    assert!(started);
    check(s, &user, &row.id, "one", "start").await;
    let moved = s
        .transition_sandbox(
            &row.id,
            SandboxState::Initializing,
            SandboxState::Running,
            None,
            later,
        )
        .await
        .unwrap();
    assert!(moved);
    check(s, &user, &row.id, "one", "transition").await;
    assert!(s
        .set_sandbox_error(&row.id, SandboxState::Running, Some("trouble"), later)
        .await
        .unwrap());
    check(s, &user, &row.id, "one", "set error").await;
    assert_eq!(
        s.show_sandbox(&row.id)
            .await
            .unwrap()
            .error_message
            .as_deref(),
        Some("trouble")
    );

    let renamed = SandboxRow {
        name: "uno".into(),
        ..s.get_sandbox(&row.id).await.unwrap()
    };
    s.update_sandbox(&renamed).await.unwrap();
    check(s, &user, &row.id, "one", "update: the old name").await;
    check(s, &user, &row.id, "uno", "update: the new name").await;
    assert!(matches!(
        s.show_sandbox_by_name(&user.id, "one").await,
        Err(StoreError::NotFound(_))
    ));

    s.delete_sandbox(&row.id).await.unwrap();
    check(s, &user, &row.id, "uno", "delete").await;
    assert!(matches!(
        s.show_sandbox(&row.id).await,
        Err(StoreError::NotFound(_))
    ));
    // The name again, another sandbox.
    s.insert_sandbox(&sandbox("sbx_cache3", &user, "uno"))
        .await
        .unwrap();
    check(s, &user, "sbx_cache3", "uno", "insert of the name again").await;
    assert_eq!(
        s.show_sandbox_by_name(&user.id, "uno").await.unwrap().id,
        "sbx_cache3"
    );
}

#[tokio::test]
async fn sandbox_cache_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("amika.db").display());
    each_write_is_seen_at_once(amika_store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn sandbox_cache_postgres() {
    let Some(database) = amika_testkit::FreshDatabase::for_test("amika_cache") else {
        eprintln!("sandbox_cache_postgres skipped: AMIKA_SKIP_POSTGRES=1");
        return;
    };
    each_write_is_seen_at_once(amika_store::connect(database.url()).await.unwrap()).await;
    database.drop_database().unwrap();
}
