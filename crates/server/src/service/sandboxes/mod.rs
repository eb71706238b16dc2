//! Sandboxes: create (resolve, decrypt, inject, start), get, list, start, stop, delete, exec,
//! and reconciliation with what really runs after a restart.
//!
//! A create resolves everything before it writes anything: an unknown secret, an unknown
//! credential, a type mismatch or a missing provider prerequisite leaves no row and no files.
//!
//! One file per operation, as youki keeps one container operation per file: [`create`],
//! [`lifecycle`] (start, stop, delete and every state write), [`limits`] (the server's ceilings
//! on what a create asks for), [`exec`], [`reconcile`], and
//! [`injection`] (what a start decrypts and injects, and what is redacted). Here: finding a
//! sandbox and showing it.

pub(crate) mod checks;
mod count;
mod create;
mod disk;
mod exec;
mod idle;
mod injection;
pub(crate) use injection::recorded_injection_warnings;
mod lifecycle;
mod limits;
pub(crate) use limits::{MEMORY_MIB_RANGE, PIDS_RANGE};
mod reconcile;
pub(crate) mod setup;
pub mod ssh_access;
mod teardown;
mod workspace;

pub(crate) use count::Creating;
pub(crate) use teardown::Teardowns;

pub(crate) use idle::{Busy, IdleTable};
pub use setup::SetupFollow;
pub(crate) use setup::SetupLog;

use amika_sandbox::KeyedLock;
use std::future::Future;

use amika_store::{SandboxHead, SandboxRow, StoreError};
use amika_types::{self as t, ErrorCode};

use super::{Caller, Result, Service, ServiceError};

pub(super) fn state_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::conflict(ErrorCode::InvalidState, e.to_string())
}

/// The row as the API shows it. Its columns were decoded by the store, which fails a row that
/// does not decode rather than show defaults.
pub(crate) fn to_wire(r: &SandboxRow) -> t::Sandbox {
    let workspace = r.workspace.clone().unwrap_or_default();
    let repo = workspace.repo.as_ref();
    t::Sandbox {
        id: r.id.clone(),
        name: r.name.clone(),
        user_id: r.user_id.clone(),
        org_id: r.org_id.clone(),
        provider: r.provider.clone(),
        provider_sandbox_id: Some(r.id.clone()),
        provider_url: None,
        amika_opencode_web: None,
        repo_name: repo.map(|r| r.name.clone()),
        repo_provider: None,
        repo_id: None,
        repo_url: repo.and_then(|r| r.url.clone()),
        branch: repo.and_then(|r| r.branch.clone()),
        commit_hash: repo.and_then(|r| r.commit.clone()),
        snapshot: workspace.snapshot.clone(),
        current_session_id: None,
        services: None,
        state: r.state,
        error_message: r.error_message.clone(),
        network: r.options.network,
        memory_mib: r.options.memory_mib,
        pids: r.options.pids,
        secret_names: r.secret_names.clone(),
        resolved_agent_credentials: r.resolved_agent_credentials.clone(),
        env_vars: r.options.env_vars.clone(),
        preset: r.options.preset.clone(),
        size: r.options.size,
        auto_stop_interval: r.options.auto_stop_interval,
        auto_delete_interval: r.options.auto_delete_interval,
        repo_config: workspace.repo_config,
        setup: workspace.setup,
        warnings: Vec::new(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// The caller's sandbox named by `id_or_name`: by id when it is one of theirs, else by name.
/// Only a string shaped like an id (`sbx_...`) can be one: a name skips that lookup (the
/// futures do nothing until awaited).
async fn find_owned<T>(
    caller: &Caller,
    id_or_name: &str,
    by_id: impl Future<Output = amika_store::Result<T>>,
    by_name: impl Future<Output = amika_store::Result<T>>,
    owner: impl Fn(&T) -> &str,
) -> Result<T> {
    let by_id = if id_or_name.starts_with("sbx_") {
        by_id.await
    } else {
        Err(StoreError::NotFound("sandbox"))
    };
    let found = match by_id {
        Ok(r) if owner(&r) == caller.user_id => Ok(r),
        Ok(_) | Err(StoreError::NotFound(_)) => by_name.await,
        Err(e) => Err(e),
    };
    match found {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound(_)) => {
            Err(ServiceError::NotFound(format!("sandbox {id_or_name:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

impl Service {
    pub(super) fn sandbox_lock(&self, id: &str) -> KeyedLock {
        self.locks.handle(id)
    }

    /// A sandbox of the caller's by id or name.
    pub async fn find_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<SandboxRow> {
        let by_id = self.store.get_sandbox(id_or_name);
        let by_name = self.store.get_sandbox_by_name(&caller.user_id, id_or_name);
        find_owned(caller, id_or_name, by_id, by_name, |r| &r.user_id).await
    }

    /// [`Service::find_sandbox`] without decoding the JSON columns (delete).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn find_sandbox_head(
        &self,
        caller: &Caller,
        id_or_name: &str,
    ) -> Result<SandboxHead> {
        let by_id = self.store.get_sandbox_head(id_or_name);
        let by_name = self
            .store
            .get_sandbox_head_by_name(&caller.user_id, id_or_name);
        find_owned(caller, id_or_name, by_id, by_name, |r| &r.user_id).await
    }

    /// Shows a sandbox: the row from the store's memory when it has it (`Store::show_sandbox`:
    /// fresh after every write), since showing decides nothing. What acts on a sandbox finds it
    /// with [`Service::find_sandbox`], from the database.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn get_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<t::Sandbox> {
        let by_id = self.store.show_sandbox(id_or_name);
        let by_name = self.store.show_sandbox_by_name(&caller.user_id, id_or_name);
        let row = find_owned(caller, id_or_name, by_id, by_name, |r| &r.user_id).await?;
        Ok(to_wire(&self.observe_runtime(row).await?))
    }

    /// Shows the caller's sandboxes, from the store's memory as [`Service::get_sandbox`].
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn list_sandboxes(&self, caller: &Caller) -> Result<Vec<t::Sandbox>> {
        let rows = self.store.show_sandboxes(&caller.user_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.iter() {
            out.push(to_wire(&self.observe_runtime(row.clone()).await?));
        }
        Ok(out)
    }
}
