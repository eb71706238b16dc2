//! The sandbox lifecycle as the service enforces it, against a real store and a fake provider
//! that records what it is asked: every state write through the transition table
//! (reconciliation included), provider failures answered as they always were, and per-id locks
//! that do not outlive their use.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use amika_sandbox::lifecycle::{check_transition, reconcile, Operation, Reconcile};
use amika_sandbox::{
    ExecHandle, ExecSpec, Injection, Provider, ProviderError, RuntimeStatus, SandboxSpec,
};
use amika_store::{SandboxRow, Store};
use amika_types::{self as t, SandboxState};
use amika_vault::{MasterKey, Vault};
use async_trait::async_trait;
use axum::http::StatusCode;

use super::{Caller, Service, ServiceError};
use crate::http::error::ApiError;
use crate::ServerConfig;

/// A state change another request makes while an operation runs: on `store`, sandbox `id`
/// from one state to another.
type Meanwhile = (Arc<dyn Store>, String, SandboxState, SandboxState);

/// Sandboxes that "run" while their id is in `running`.
#[derive(Debug, Default)]
struct FakeProvider {
    running: Mutex<HashSet<String>>,
    /// Made (once) during the next stop.
    during_stop: Mutex<Option<Meanwhile>>,
}

impl FakeProvider {
    fn set_running(&self, id: &str, running: bool) {
        let mut set = self.running.lock().unwrap();
        if running {
            set.insert(id.to_owned());
        } else {
            set.remove(id);
        }
    }

    fn is_running(&self, id: &str) -> bool {
        self.running.lock().unwrap().contains(id)
    }
}

#[async_trait]
impl Provider for FakeProvider {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn check(&self) -> amika_sandbox::Result<()> {
        Ok(())
    }
    async fn start(&self, spec: &SandboxSpec, _: Injection) -> amika_sandbox::Result<()> {
        self.set_running(&spec.id, true);
        Ok(())
    }
    async fn stop(&self, id: &str) -> amika_sandbox::Result<()> {
        self.set_running(id, false);
        let meanwhile = self.during_stop.lock().unwrap().take();
        if let Some((store, id, from, to)) = meanwhile {
            let at = chrono::Utc::now();
            assert!(store
                .transition_sandbox(&id, from, to, None, at)
                .await
                .unwrap());
        }
        Ok(())
    }
    async fn remove(&self, id: &str) -> amika_sandbox::Result<()> {
        self.set_running(id, false);
        Ok(())
    }
    async fn stage_workspace(
        &self,
        _: &str,
        _: &amika_sandbox::WorkspaceSpec<'_>,
    ) -> amika_sandbox::Result<amika_sandbox::StagedWorkspace> {
        Err(ProviderError::Repository("no repositories here".into()))
    }
    async fn exec(&self, id: &str, _: ExecSpec) -> amika_sandbox::Result<ExecHandle> {
        Err(ProviderError::NotRunning(id.to_owned()))
    }
    async fn status(&self, id: &str) -> amika_sandbox::Result<RuntimeStatus> {
        Ok(if self.is_running(id) {
            RuntimeStatus::Running
        } else {
            RuntimeStatus::NotRunning {
                reason: Some("gone".into()),
            }
        })
    }
    async fn list(&self) -> amika_sandbox::Result<Vec<String>> {
        Ok(self.running.lock().unwrap().iter().cloned().collect())
    }
}

struct Fixture {
    svc: Service,
    provider: Arc<FakeProvider>,
    caller: Caller,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let store = amika_store::connect(&config.effective_database_url())
        .await
        .unwrap();
    let provider = Arc::new(FakeProvider::default());
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    let svc = Service::new(store, vault, provider.clone(), Arc::new(config));
    let key = svc.bootstrap_first_admin().await.unwrap().unwrap();
    let caller = svc.authenticate(&key).await.unwrap();
    Fixture {
        svc,
        provider,
        caller,
        _dir: dir,
    }
}

impl Fixture {
    /// A running sandbox named `name`, as the store has it.
    async fn running(&self, name: &str) -> SandboxRow {
        let req = t::CreateSandboxRequest {
            name: name.into(),
            ..Default::default()
        };
        let created = self.svc.create_sandbox(&self.caller, req).await.unwrap();
        assert_eq!(created.state, SandboxState::Running);
        self.svc.store.get_sandbox(&created.id).await.unwrap()
    }

    /// Force a sandbox's recorded state (what a crash mid-operation leaves).
    async fn force(&self, row: &SandboxRow, to: SandboxState) -> SandboxRow {
        let store = &self.svc.store;
        assert!(store
            .transition_sandbox(&row.id, row.state, to, None, row.updated_at)
            .await
            .unwrap());
        store.get_sandbox(&row.id).await.unwrap()
    }
}

/// Reconciliation wrote `failed -> stopped` and `stopped -> stopped` straight to the store, a
/// transition the table forbade. Now every sandbox it touches ends in the state the table gives
/// for the operation [`reconcile`] names, for every recorded state and either runtime status.
#[tokio::test]
async fn reconciliation_writes_every_state_through_the_table() {
    let f = fixture().await;
    let mut cases = Vec::new();
    for (i, &state) in SandboxState::ALL.iter().enumerate() {
        for running in [false, true] {
            let row = f.running(&format!("s{i}-{running}")).await;
            let row = f.force(&row, state).await;
            f.provider.set_running(&row.id, running);
            cases.push((row, running));
        }
    }
    let changes = f.svc.reconcile_sandboxes().await.unwrap();
    for (row, running) in &cases {
        let after = f.svc.store.get_sandbox(&row.id).await;
        let what = format!("{} running={running}: {changes:?}", row.state);
        match reconcile(row.state, *running) {
            Reconcile::Keep => assert_eq!(after.unwrap().state, row.state, "{what}"),
            Reconcile::FinishDelete => assert!(after.is_err(), "{what}"),
            Reconcile::Record(op) => {
                let after = after.unwrap();
                assert_eq!(Ok(after.state), check_transition(row.state, op), "{what}");
                assert!(after.error_message.is_some(), "{what}: says why");
                assert!(!f.provider.is_running(&row.id), "{what}: processes stopped");
            }
        }
    }
}

/// Reconciliation ignored a transition that found the sandbox changed meanwhile (`Ok(None)`)
/// and logged the change it had not written.
#[tokio::test]
async fn reconciliation_does_not_log_a_change_it_did_not_write() {
    let f = fixture().await;
    // Recorded as stopped with its processes running: reconciliation stops them, and
    // meanwhile a delete moves the sandbox on.
    let row = f.running("raced").await;
    let row = f.force(&row, SandboxState::Stopped).await;
    let store = f.svc.store.clone();
    let meanwhile = (store, row.id.clone(), row.state, SandboxState::Deleting);
    *f.provider.during_stop.lock().unwrap() = Some(meanwhile);
    let changes = f.svc.reconcile_sandboxes().await.unwrap();
    let after = f.svc.store.get_sandbox(&row.id).await.unwrap();
    assert_eq!(after.state, SandboxState::Deleting);
    assert_eq!(
        changes,
        [
            "raced: changed meanwhile, left as it is (not recorded: stopped on restart: it was \
          recorded as not running)"
        ]
    );
}

#[tokio::test]
async fn a_transition_the_table_forbids_is_refused_and_a_stale_one_writes_nothing() {
    let f = fixture().await;
    let row = f.running("t").await;
    let refused = f.svc.transition(&row, Operation::Start, None).await;
    let refused = ApiError::from(refused.unwrap_err());
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code.as_str(), "invalid_state");
    assert_eq!(refused.message, "cannot start sandbox in state running");
    // Stopped behind this row's back: a transition from what it read writes nothing.
    let stopped = f.force(&row, SandboxState::Stopped).await;
    let stale = f.svc.transition(&row, Operation::Stop, None).await.unwrap();
    assert!(stale.is_none());
    let now = f.svc.store.get_sandbox(&row.id).await.unwrap();
    assert_eq!(now.state, SandboxState::Stopped);
    assert_eq!(now.updated_at, stopped.updated_at);
}

/// The per-sandbox lock map kept one entry per sandbox ever created.
#[tokio::test]
async fn the_lock_map_does_not_grow_over_create_and_delete_cycles() {
    let f = fixture().await;
    for i in 0..20 {
        let row = f.running(&format!("cycle{i}")).await;
        f.svc.stop_sandbox(&f.caller, &row.id).await.unwrap();
        f.svc.start_sandbox(&f.caller, &row.id).await.unwrap();
        f.svc.get_sandbox(&f.caller, &row.id).await.unwrap();
        f.svc.delete_sandbox(&f.caller, &row.id).await.unwrap();
    }
    assert_eq!(f.svc.locks.len(), 0);
}

/// One `From<ProviderError>` answers as the three hand mappings did.
#[test]
fn provider_errors_keep_their_answers() {
    let answer = |e: ProviderError| {
        let api = ApiError::from(ServiceError::from(e));
        (api.status, api.code.as_str().to_string(), api.message)
    };
    let unavailable = "bubblewrap (bwrap) is not installed: run `apt-get install -y bubblewrap`";
    assert_eq!(
        answer(ProviderError::Unavailable(unavailable.into())),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable".into(),
            unavailable.into()
        )
    );
    assert_eq!(
        answer(ProviderError::InvalidCommand("the command is empty".into())),
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "the command is empty".into()
        )
    );
    assert_eq!(
        answer(ProviderError::NotRunning("sbx_1".into())),
        (
            StatusCode::CONFLICT,
            "invalid_state".into(),
            "sandbox sbx_1 is not running".into()
        )
    );
    for internal in [
        ProviderError::start_failed("sbx_1", "it is already running"),
        ProviderError::Io(std::io::Error::other("disk")),
    ] {
        let (status, code, message) = answer(internal);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(code, "internal");
        assert!(!message.contains("already running") && !message.contains("disk"));
    }
}
