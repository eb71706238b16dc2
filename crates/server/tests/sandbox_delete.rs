//! Delete answers once the sandbox can no longer run anything and takes it apart in the
//! background (issue 19); the same name can be created again at once, and that create starts
//! only after the old sandbox is gone (real bwrap sandboxes, real store).

mod common;

use std::time::{Duration, Instant};

use amika_server::service::ServiceError;
use amika_types::{self as t, NetworkMode};
use common::snapshots::create_running;

/// Every host process whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_name_is_reused_at_once_and_only_after_the_old_sandbox_is_gone() {
    let app = common::app_with(None, |c| c.warm_sandboxes = 0).await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let req = || t::CreateSandboxRequest {
        name: "reused".into(),
        network: Some(NetworkMode::Egress),
        ..Default::default()
    };
    let old = create_running(svc, &caller, req()).await;
    let (code, _, err) = amika_testkit::exec_sh(
        svc,
        &caller,
        "reused",
        // 20,000 files make the removal take long enough to be seen racing a create.
        "mkdir ~/many && cd ~/many && seq 20000 | xargs touch && \
         setsid sleep 300 </dev/null >/dev/null 2>&1 &",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let old_dir = svc.config().data_dir.join("sandboxes").join(&old);
    assert!(old_dir.exists());
    assert!(!processes_mentioning(&old).is_empty());

    svc.delete_sandbox(&caller, "reused").await.unwrap();
    // Gone for the API at once: nothing can be run in it.
    assert!(matches!(
        svc.get_sandbox(&caller, &old).await,
        Err(ServiceError::NotFound(_))
    ));
    let exec = t::ExecRequest {
        command: vec!["true".into()],
        cwd: None,
        timeout_secs: None,
    };
    assert!(matches!(
        svc.exec_sandbox(&caller, &old, exec).await,
        Err(ServiceError::NotFound(_))
    ));

    // The same name at once: the create waits for the old sandbox's teardown, so when it
    // answers the old one's files and processes are gone.
    let started = Instant::now();
    let new = create_running(svc, &caller, req()).await;
    assert_ne!(new, old);
    assert!(
        !old_dir.exists(),
        "the name was reused before the old files went"
    );
    assert!(
        processes_mentioning(&old).is_empty(),
        "{:?}",
        processes_mentioning(&old)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let (code, out, _) = amika_testkit::exec_sh(svc, &caller, "reused", "echo fresh").await;
    assert_eq!((code, out.as_str()), (0, "fresh\n"));
}
