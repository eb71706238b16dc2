//! A sandbox row the store cannot decode fails every operation on it loudly — it is never shown
//! or started with defaults. Before the store decoded its columns, unreadable options showed up
//! as `network: egress` (and unreadable lists as `[]`).

use std::sync::Arc;

use amika_sandbox::local::LocalProvider;
use amika_server::service::{error_chain, Caller, Service};
use amika_server::ServerConfig;
use amika_store::{InjectionRecord, SandboxOptions, SandboxRow, Store};
use amika_types::{NetworkMode, SandboxState};
use sqlx::Connection;

fn stopped_sandbox(caller: &Caller) -> SandboxRow {
    let at = chrono::Utc::now();
    SandboxRow {
        id: "sbx_0000corrupt".into(),
        org_id: caller.org_id.clone(),
        user_id: caller.user_id.clone(),
        name: "offline".into(),
        provider: "local".into(),
        state: SandboxState::Stopped,
        error_message: None,
        secret_env_vars: Default::default(),
        agent_credentials: vec![],
        resolved_agent_credentials: vec![],
        secret_names: vec![],
        injection: InjectionRecord::default(),
        options: SandboxOptions::new(NetworkMode::None, Some(64), None),
        workspace: None,
        created_at: at,
        updated_at: at,
    }
}

#[tokio::test]
async fn unreadable_options_fail_the_start_instead_of_defaulting_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let store: Arc<dyn Store> = amika_store::connect(&url).await.unwrap();
    let vault = Arc::new(amika_vault::Vault::new(amika_vault::MasterKey::generate()));
    // No bubblewrap: nothing can start, and a start that got as far as the provider would say
    // so (Unavailable) rather than fail on the row.
    let provider = Arc::new(
        LocalProvider::new(dir.path().join("sandboxes"))
            .with_bwrap_path("/nonexistent/bwrap".into()),
    );
    let svc = Service::new(store.clone(), vault, provider, Arc::new(config));
    let key = svc.bootstrap_first_admin().await.unwrap().unwrap();
    let caller = svc.authenticate(&key).await.unwrap();
    let row = stopped_sandbox(&caller);
    store.insert_sandbox(&row).await.unwrap();

    // The rows are rewritten under the server (a raw connection), which a server never
    // expects: a row it has shown it may show again from memory (issue 19's cache), so nothing
    // is shown before the corrupt spellings are (a row that does not decode is never kept).
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let set_options = |text: &'static str| {
        sqlx::query("UPDATE sandboxes SET options = $1 WHERE id = $2")
            .bind(text)
            .bind("sbx_0000corrupt")
    };

    // No network mode, or one that is not a mode: never `egress`, and never a start.
    for corrupt in [
        r#"{"memory_mib": 64}"#,
        r#"{"network": "sideways"}"#,
        "{not json",
    ] {
        set_options(corrupt).execute(&mut raw).await.unwrap();
        let failures = [
            svc.get_sandbox(&caller, "offline")
                .await
                .map(|s| format!("{s:?}")),
            svc.get_sandbox(&caller, &row.id)
                .await
                .map(|s| format!("{s:?}")),
            svc.list_sandboxes(&caller).await.map(|s| format!("{s:?}")),
            svc.start_sandbox(&caller, "offline")
                .await
                .map(|()| "started".into()),
        ];
        for result in failures {
            let err = match result {
                Ok(shown) => panic!("{corrupt}: answered {shown}"),
                Err(e) => error_chain(&e),
            };
            assert!(
                err.contains("corrupt row")
                    && err.contains("sbx_0000corrupt")
                    && err.contains("column options"),
                "{corrupt}: {err}"
            );
            assert!(!err.contains("sideways"), "the value leaked: {err}");
        }
    }

    // Options as an older writer may have spelled them still read.
    set_options(r#"{"network": "none", "memory_mib": 64, "pids": null}"#)
        .execute(&mut raw)
        .await
        .unwrap();
    let shown = svc.get_sandbox(&caller, "offline").await.unwrap();
    assert_eq!(
        (shown.network, shown.memory_mib, shown.pids),
        (NetworkMode::None, Some(64), None)
    );
}

/// Before reconciliation read sandboxes by their identity and state only, one row whose JSON
/// column did not decode made `list_all_sandboxes` fail, so `open` failed and the server would
/// not start; and delete decoded the row first, so the row could not be removed either.
#[tokio::test]
async fn a_corrupt_sandbox_row_neither_stops_the_server_starting_nor_resists_delete() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let url = config.effective_database_url();
    let opened = amika_server::open(config.clone()).await.unwrap();
    let svc = opened.service;
    let caller = svc
        .authenticate(&opened.first_admin_key.unwrap())
        .await
        .unwrap();
    let store: Arc<dyn Store> = amika_store::connect(&url).await.unwrap();
    // Recorded as running (its processes are gone: nothing runs in this test), with options
    // that do not decode; and one whose very state does not decode.
    let running = SandboxRow {
        state: SandboxState::Running,
        ..stopped_sandbox(&caller)
    };
    store.insert_sandbox(&running).await.unwrap();
    let unknown_state = SandboxRow {
        id: "sbx_0000badstate".into(),
        name: "bad-state".into(),
        ..stopped_sandbox(&caller)
    };
    store.insert_sandbox(&unknown_state).await.unwrap();
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (column, id, text) in [
        ("options", "sbx_0000corrupt", "{not json"),
        ("state", "sbx_0000badstate", "sideways"),
    ] {
        sqlx::query(&format!("UPDATE sandboxes SET {column} = $1 WHERE id = $2"))
            .bind(text)
            .bind(id)
            .execute(&mut raw)
            .await
            .unwrap();
    }
    drop(svc);

    let svc = amika_server::open(config).await.unwrap().service;
    // Reconciled through the transition table like any other row: its processes are gone.
    let head = store.get_sandbox_head("sbx_0000corrupt").await.unwrap();
    assert_eq!(head.state, SandboxState::Stopped, "{head:?}");
    // The one whose state does not decode is left as it was.
    let err = store
        .get_sandbox_head("sbx_0000badstate")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("column state"), "{err}");

    // Showing the sandboxes still fails loudly: never a default.
    let err = error_chain(&svc.list_sandboxes(&caller).await.unwrap_err());
    assert!(err.contains("corrupt row"), "{err}");

    // But the row can be deleted, by name or by id.
    svc.delete_sandbox(&caller, "offline").await.unwrap();
    assert!(matches!(
        store.get_sandbox_head("sbx_0000corrupt").await,
        Err(amika_store::StoreError::NotFound(_))
    ));
    sqlx::query("UPDATE sandboxes SET state = 'stopped', options = '{not json' WHERE id = $1")
        .bind("sbx_0000badstate")
        .execute(&mut raw)
        .await
        .unwrap();
    svc.delete_sandbox(&caller, "sbx_0000badstate")
        .await
        .unwrap();
    assert!(svc.list_sandboxes(&caller).await.unwrap().is_empty());
}
