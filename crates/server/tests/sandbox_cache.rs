//! Sandboxes are shown from memory (issue 19: `GET /sandboxes/{id}` and `GET /sandboxes`
//! without a database round trip), and never stale: a write through a server is seen by the
//! next read through it at once, and on PostgreSQL by a read through another server sharing the
//! database within a bound (its notification), also when the other server's listener lost its
//! connection meanwhile (it serves nothing until it listens again).

use std::time::{Duration, Instant};

use amika_server::service::{Caller, Service, ServiceError};
use amika_types::{self as t, SandboxState};

/// How long another server may show a sandbox as it was before a write.
const BOUND: Duration = Duration::from_secs(1);

fn request(name: &str) -> t::CreateSandboxRequest {
    t::CreateSandboxRequest {
        name: name.into(),
        network: Some(t::NetworkMode::None),
        ..Default::default()
    }
}

/// The state `svc` shows for `name` by name, by id (`id`) and in its list; `None` for gone
/// (all three must agree).
async fn shown(svc: &Service, caller: &Caller, name: &str, id: &str) -> Option<SandboxState> {
    let by_name = match svc.get_sandbox(caller, name).await {
        Ok(s) => Some(s.state),
        Err(ServiceError::NotFound(_)) => None,
        Err(e) => panic!("{e}"),
    };
    let by_id = match svc.get_sandbox(caller, id).await {
        Ok(s) => Some(s.state),
        Err(ServiceError::NotFound(_)) => None,
        Err(e) => panic!("{e}"),
    };
    let listed = svc.list_sandboxes(caller).await.unwrap();
    let in_list = listed.iter().find(|s| s.id == id).map(|s| s.state);
    assert_eq!((by_name, by_id), (in_list, in_list), "{name}");
    in_list
}

/// Every kind of write (create, stop, start, delete, a create of the same name), each followed
/// at once by reads through the same server.
async fn each_write_is_seen_by_the_next_read(server: &amika_testkit::TestServer) {
    let svc = &server.service;
    let caller = &svc.authenticate(&server.admin_key).await.unwrap();
    let box1 = svc
        .create_sandbox(caller, request("cache-box"))
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            shown(svc, caller, "cache-box", &box1.id).await,
            Some(SandboxState::Running)
        );
    }
    svc.stop_sandbox(caller, "cache-box").await.unwrap();
    assert_eq!(
        shown(svc, caller, "cache-box", &box1.id).await,
        Some(SandboxState::Stopped)
    );
    svc.start_sandbox(caller, &box1.id).await.unwrap();
    assert_eq!(
        shown(svc, caller, "cache-box", &box1.id).await,
        Some(SandboxState::Running)
    );

    // A create shows in the list read just before it.
    let box2 = svc
        .create_sandbox(caller, request("cache-two"))
        .await
        .unwrap();
    let names: Vec<_> = svc
        .list_sandboxes(caller)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["cache-box", "cache-two"]);

    svc.delete_sandbox(caller, "cache-box").await.unwrap();
    assert_eq!(shown(svc, caller, "cache-box", &box1.id).await, None);
    // The name again, a new sandbox: never the old one's row.
    let again = svc
        .create_sandbox(caller, request("cache-box"))
        .await
        .unwrap();
    assert_ne!(again.id, box1.id);
    assert_eq!(
        svc.get_sandbox(caller, "cache-box").await.unwrap().id,
        again.id
    );
    assert_eq!(
        shown(svc, caller, "cache-box", &again.id).await,
        Some(SandboxState::Running)
    );
    for s in [again, box2] {
        svc.delete_sandbox(caller, &s.id).await.unwrap();
    }
    assert!(svc.list_sandboxes(caller).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn on_sqlite_a_write_is_seen_by_the_next_read() {
    let server = amika_testkit::ServerBuilder::new().open().await.unwrap();
    each_write_is_seen_by_the_next_read(&server).await;
}

/// A sandbox shown as running, from memory, whose init then dies, is shown failed at once: the
/// row may come from memory, its processes are looked at on every read.
#[tokio::test(flavor = "multi_thread")]
async fn a_shown_sandbox_whose_processes_died_is_shown_failed() {
    let server = amika_testkit::ServerBuilder::new().open().await.unwrap();
    let (svc, caller) = (
        &server.service,
        server
            .service
            .authenticate(&server.admin_key)
            .await
            .unwrap(),
    );
    let created = svc
        .create_sandbox(&caller, request("doomed"))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            shown(svc, &caller, "doomed", &created.id).await,
            Some(SandboxState::Running)
        );
    }
    let state = server
        .data_dir()
        .join("sandboxes")
        .join(&created.id)
        .join("state.json");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let init = record["init"]["pid"].as_i64().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &init.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let shown_now = loop {
        let s = svc.get_sandbox(&caller, "doomed").await.unwrap();
        if s.state != SandboxState::Running || start.elapsed() > Duration::from_secs(5) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(shown_now.state, SandboxState::Failed, "{shown_now:?}");
    assert!(shown_now
        .error_message
        .unwrap()
        .contains("the sandbox died"));
    assert_eq!(
        shown(svc, &caller, "doomed", &created.id).await,
        Some(SandboxState::Failed)
    );
    svc.delete_sandbox(&caller, "doomed").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgres_a_write_is_seen_by_the_next_read() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("sandbox_cache") else {
        return;
    };
    let server = amika_testkit::ServerBuilder::new()
        .database_url(Some(db.url().to_string()))
        .open()
        .await
        .unwrap();
    each_write_is_seen_by_the_next_read(&server).await;
}

/// Two servers on one PostgreSQL database, sharing the data dir too (a running sandbox is
/// looked at by the server that shows it: both must see its processes).
async fn two_servers(db: &amika_testkit::FreshDatabase) -> (amika_testkit::TestServer, Service) {
    let a = amika_testkit::ServerBuilder::new()
        .database_url(Some(db.url().to_string()))
        .configure(|c| c.warm_sandboxes = 0)
        .open()
        .await
        .unwrap();
    let b = amika_server::open(a.config().clone()).await.unwrap();
    assert!(b.first_admin_key.is_none(), "one database, one first admin");
    (a, b.service)
}

/// Read through `svc` until it shows `want` for `name`; how long that took (panics after 10 s).
async fn until_shown(
    svc: &Service,
    caller: &Caller,
    (name, id): (&str, &str),
    want: Option<SandboxState>,
) -> Duration {
    let start = Instant::now();
    while shown(svc, caller, name, id).await != want {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name} never showed {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_through_one_server_is_seen_through_another_within_a_second() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("sandbox_cache_two") else {
        return; // PostgreSQL only: servers share a database there.
    };
    let (a, b) = two_servers(&db).await;
    let (svc_a, on_a) = (
        &a.service,
        a.service.authenticate(&a.admin_key).await.unwrap(),
    );
    let on_b = b.authenticate(&a.admin_key).await.unwrap();
    let created = svc_a
        .create_sandbox(&on_a, request("shared-box"))
        .await
        .unwrap();
    let key = ("shared-box", created.id.as_str());
    // B has it in memory: shown twice.
    for _ in 0..2 {
        assert_eq!(
            shown(&b, &on_b, key.0, key.1).await,
            Some(SandboxState::Running)
        );
    }

    let mut seen = Vec::new();
    svc_a.stop_sandbox(&on_a, "shared-box").await.unwrap();
    seen.push((
        "stop",
        until_shown(&b, &on_b, key, Some(SandboxState::Stopped)).await,
    ));
    svc_a.start_sandbox(&on_a, "shared-box").await.unwrap();
    seen.push((
        "start",
        until_shown(&b, &on_b, key, Some(SandboxState::Running)).await,
    ));
    svc_a.delete_sandbox(&on_a, "shared-box").await.unwrap();
    seen.push(("delete", until_shown(&b, &on_b, key, None).await));
    eprintln!("server B showed server A's writes after: {seen:?}");
    for (write, after) in seen {
        assert!(after < BOUND, "{write} seen on B after {after:?}");
    }
}

/// Run `sql` on the cluster's own database (not the test's), off the runtime.
async fn on_cluster(sql: String) {
    let cluster = amika_testkit::postgres::test_cluster_url().unwrap();
    tokio::task::spawn_blocking(move || amika_testkit::postgres::execute(&cluster, sql))
        .await
        .unwrap()
        .unwrap();
}

/// A write made while a server's listener is disconnected (here: its backend terminated, and
/// new connections to the database refused so that it cannot listen again) is never missed:
/// the server reads from the database until it listens again, and then serves from memory
/// again, evictions included.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_whose_listener_is_down_reads_the_database() {
    let Some(db) = amika_testkit::FreshDatabase::for_test("sandbox_cache_down") else {
        return;
    };
    let (a, b) = two_servers(&db).await;
    let on_b = b.authenticate(&a.admin_key).await.unwrap();
    let created = b.create_sandbox(&on_b, request("quiet-box")).await.unwrap();
    b.stop_sandbox(&on_b, "quiet-box").await.unwrap();
    // A connection of the test's own, opened while connections are allowed.
    let mut raw = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .unwrap();
    let set_error = async |raw: &mut sqlx::PgConnection, text: &str| {
        sqlx::query("UPDATE sandboxes SET error_message = $1 WHERE id = $2")
            .bind(text)
            .bind(&created.id)
            .execute(raw)
            .await
            .unwrap();
    };
    let error_shown = async || {
        b.get_sandbox(&on_b, "quiet-box")
            .await
            .unwrap()
            .error_message
    };
    assert_eq!(error_shown().await, None);
    assert_eq!(error_shown().await, None); // in B's memory now
                                           // Until B shows `error`, within BOUND.
    let shown_within_bound = async |error: &str, failure: &str| {
        let start = Instant::now();
        while error_shown().await.as_deref() != Some(error) {
            assert!(start.elapsed() < BOUND, "{failure}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };

    let name = db.name();
    on_cluster(format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
    ))
    .await;
    on_cluster(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND query LIKE 'LISTEN%'"
    ))
    .await;
    set_error(&mut raw, "written while nobody listened").await;
    shown_within_bound(
        "written while nobody listened",
        "B still shows the row from before the write",
    )
    .await;

    // Listening again, B serves from memory again: a write made with the notifying trigger off
    // (which only this test does) goes unseen for a while. Then, trigger on, writes show again.
    on_cluster(format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")).await;
    let trigger = async |raw: &mut sqlx::PgConnection, on: &str| {
        sqlx::query(&format!(
            "ALTER TABLE sandboxes {on} TRIGGER sandboxes_notify"
        ))
        .execute(raw)
        .await
        .unwrap();
    };
    let start = Instant::now();
    loop {
        // The listener retries at most 5 s apart.
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "B never caches again"
        );
        set_error(&mut raw, "before").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        error_shown().await;
        trigger(&mut raw, "DISABLE").await;
        set_error(&mut raw, "unheard").await;
        let cached = error_shown().await.as_deref() == Some("before");
        trigger(&mut raw, "ENABLE").await;
        if cached {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "B served from memory again {:?} after connections were allowed",
        start.elapsed()
    );
    set_error(&mut raw, "heard").await;
    shown_within_bound("heard", "a write after the listener is back went unseen").await;
    b.delete_sandbox(&on_b, "quiet-box").await.unwrap();
}
