//! A sandbox's state changes after its create: the one [`Service::transition`] every state
//! write goes through, start, stop and delete, and the death of a running sandbox noticed
//! when it is read.

use amika_sandbox::lifecycle::{check_transition, Operation};
use amika_sandbox::RuntimeStatus;
use amika_store::{InjectionRecord, SandboxHead, SandboxRow, StoreError};
use amika_types::{ErrorCode, SandboxState};
use serde_json::json;

use super::state_error;
use crate::service::audit::Subject;
use crate::service::{now, Caller, Result, Service, ServiceError};

impl Service {
    /// Every change of a sandbox's state goes through here (or through
    /// [`Service::transition_head`], its form for a sandbox read without its JSON columns, or
    /// `transition_to_start`, its form that also records what a start injects): the
    /// lifecycle table says whether `op` is allowed in the state `row` was read in and where it
    /// leads, and the store writes the new state, `error` (as the error message) and
    /// `updated_at` only if the sandbox is still in that state (one statement, no read first).
    /// `Ok(None)`: it changed meanwhile, nothing was written.
    pub(crate) async fn transition(
        &self,
        row: &SandboxRow,
        op: Operation,
        error: Option<&str>,
    ) -> Result<Option<SandboxRow>> {
        let written = self.transition_head(&row.head(), op, error).await?;
        Ok(written.map(|head| SandboxRow {
            state: head.state,
            error_message: head.error_message,
            updated_at: head.updated_at,
            ..row.clone()
        }))
    }

    /// [`Service::transition`] for a sandbox known by its identity and state only: what
    /// reconciliation and delete read, so a row whose other columns do not decode can still
    /// be stopped and removed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn transition_head(
        &self,
        head: &SandboxHead,
        op: Operation,
        error: Option<&str>,
    ) -> Result<Option<SandboxHead>> {
        let next = check_transition(head.state, op).map_err(state_error)?;
        let at = now();
        let written = self
            .store
            .transition_sandbox(&head.id, head.state, next, error, at)
            .await?;
        Ok(written.then(|| SandboxHead {
            state: next,
            error_message: error.map(str::to_owned),
            updated_at: at,
            ..head.clone()
        }))
    }

    /// [`Service::transition`] for [`Operation::Start`], recording what this start injects
    /// in the same statement: a start that finds the state changed meanwhile writes nothing,
    /// so the record never describes a start that did not happen.
    async fn transition_to_start(
        &self,
        row: &SandboxRow,
        injection: &InjectionRecord,
    ) -> Result<Option<SandboxRow>> {
        let next = check_transition(row.state, Operation::Start).map_err(state_error)?;
        let at = now();
        let written = self
            .store
            .start_sandbox(&row.id, row.state, next, injection, at)
            .await?;
        Ok(written.then(|| SandboxRow {
            state: next,
            error_message: None,
            injection: injection.clone(),
            updated_at: at,
            ..row.clone()
        }))
    }

    /// The conflict to answer when a sandbox's state changed while `doing` (a transition found
    /// it in another state than the one it was read in).
    pub(super) async fn changed_meanwhile(&self, head: &SandboxHead, doing: &str) -> ServiceError {
        let now_is = match self.store.get_sandbox_head(&head.id).await {
            Ok(r) => r.state.to_string(),
            Err(_) => "deleted".into(),
        };
        state_error(format!(
            "sandbox {} changed to {now_is} while {doing}",
            head.name
        ))
    }

    /// A sandbox recorded as `running` whose processes are gone — its init was killed by the
    /// OOM killer, or died some other way — becomes `failed`, with the provider's reason
    /// ("killed by the OOM killer") in `error_message`, and what is left of it is cleaned up.
    ///
    /// Checked whenever a sandbox is read (get, list, an exec that finds it gone) rather than by
    /// a background watcher: a provider status is one small file read and a `/proc` lookup, a
    /// client that waits on a sandbox polls get anyway, and nothing runs when nobody looks.
    /// (After a server restart, reconciliation does the same for every sandbox, calling one
    /// whose processes are gone `stopped`: there, a reboot is the usual cause.)
    pub(super) async fn observe_runtime(&self, row: SandboxRow) -> Result<SandboxRow> {
        if row.state != SandboxState::Running {
            return Ok(row);
        }
        let dead = |status: amika_sandbox::Result<RuntimeStatus>| match status {
            Ok(RuntimeStatus::NotRunning { reason }) => Some(reason),
            Ok(RuntimeStatus::Running) => None,
            Err(e) => {
                tracing::warn!(sandbox = %row.id, error = %e, "cannot read sandbox status");
                None
            }
        };
        if dead(self.provider.status(&row.id).await).is_none() {
            return Ok(row);
        }
        // An operation under way (stop, delete) decides the state itself.
        let lock = self.sandbox_lock(&row.id);
        let Ok(_guard) = lock.try_lock() else {
            return Ok(row);
        };
        let current = match self.store.get_sandbox(&row.id).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Ok(row),
            Err(e) => return Err(e.into()),
        };
        if current.state != SandboxState::Running {
            return Ok(current);
        }
        let Some(reason) = dead(self.provider.status(&row.id).await) else {
            return Ok(current);
        };
        let reason = reason.unwrap_or_else(|| "its processes are gone".into());
        if let Err(e) = self.provider.stop(&row.id).await {
            tracing::warn!(sandbox = %row.id, error = %e, "cleaning up a dead sandbox failed");
        }
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&row.id);
        let died = format!("the sandbox died: {reason}");
        let Some(failed) = self
            .transition(&current, Operation::MarkFailed, Some(&died))
            .await?
        else {
            return Ok(self.store.get_sandbox(&row.id).await?);
        };
        tracing::info!(sandbox = %row.id, %reason, "sandbox died");
        Ok(failed)
    }

    /// Start a stopped or failed sandbox, injecting the current values of what it was given.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn start_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        let lock = self.sandbox_lock(&row.id);
        let guard = lock.lock().await;
        let row = self.store.get_sandbox(&row.id).await?;
        check_transition(row.state, Operation::Start).map_err(state_error)?;
        self.provider.check()?;
        let record = row.injection.clone();
        let mut secrets = Vec::new();
        for s in &record.secrets {
            let current = match self.store.get_secret(&s.secret_id).await {
                Ok(r) => r,
                Err(StoreError::NotFound(_)) => self.store.find_visible_secret(&caller.org_id, &caller.user_id, &s.name).await.map_err(|_| ServiceError::unprocessable(
                    ErrorCode::SecretNotFound,
                    format!("env var {}: secret {:?} no longer exists: push it again or recreate the sandbox", s.env, s.name),
                ))?,
                Err(e) => return Err(e.into()),
            };
            secrets.push((s.env.clone(), current));
        }
        let mut credentials = Vec::new();
        for c in &record.credentials {
            credentials.push(self.store.get_credential(&c.credential_id).await.map_err(
                |e| match e {
                    StoreError::NotFound(_) => ServiceError::unprocessable(
                        ErrorCode::AgentCredentialNotFound,
                        format!(
                            "{} credential {:?} no longer exists: recreate the sandbox",
                            c.kind, c.name
                        ),
                    ),
                    e => e.into(),
                },
            )?);
        }
        let prepared = self.prepare(&row.options.env_vars, &secrets, &credentials)?;
        let Some(row) = self.transition_to_start(&row, &prepared.record).await? else {
            return Err(self
                .changed_meanwhile(&row.head(), "preparing its start")
                .await);
        };
        self.audit_injection(caller, &row, &prepared.record, "sandbox.started")
            .await?;
        drop(guard);
        self.watch_idle(&row);
        match self.start_in_background(row, prepared, None).await {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn stop_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        self.stop_sandbox_because(caller, id_or_name, None).await
    }

    /// Stop a sandbox; `why`, when the server stops it on its own, becomes its error message
    /// and is audited.
    pub(crate) async fn stop_sandbox_because(
        &self,
        caller: &Caller,
        id_or_name: &str,
        why: Option<&str>,
    ) -> Result<()> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        let lock = self.sandbox_lock(&row.id);
        let _guard = lock.lock().await;
        let row = self.store.get_sandbox(&row.id).await?;
        let error = row.error_message.as_deref();
        let Some(row) = self.transition(&row, Operation::Stop, error).await? else {
            return Err(self.changed_meanwhile(&row.head(), "stopping").await);
        };
        self.ssh.end_sessions(&row.id);
        let result = self.provider.stop(&row.id).await;
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&row.id);
        let error = match &result {
            Err(e) => Some(format!("stop: {e}")),
            Ok(()) => why.map(str::to_string),
        };
        let Some(row) = self
            .transition(&row, Operation::MarkStopped, error.as_deref())
            .await?
        else {
            return Err(self.changed_meanwhile(&row.head(), "stopping").await);
        };
        let subject = Subject {
            object_type: "sandbox",
            object_id: &row.id,
            object_name: &row.name,
            version: None,
        };
        let detail = why.map_or_else(|| json!({}), |why| json!({ "reason": why }));
        self.audit(caller, "sandbox.stopped", subject, Some(&row.id), detail)
            .await?;
        Ok(result?)
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn delete_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        // By its identity and state only: a row whose other columns no longer decode (it cannot
        // be shown or started) can still be deleted.
        let head = self.find_sandbox_head(caller, id_or_name).await?;
        let lock = self.sandbox_lock(&head.id);
        let _guard = lock.lock().await;
        let mut head = match self.store.get_sandbox_head(&head.id).await {
            Ok(h) => h,
            // Deleted by a concurrent request while we waited: already done.
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if head.state != SandboxState::Deleting {
            let error = head.error_message.clone();
            head = match self
                .transition_head(&head, Operation::Delete, error.as_deref())
                .await?
            {
                Some(deleting) => deleting,
                None => return Err(self.changed_meanwhile(&head, "deleting").await),
            };
        }
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&head.id);
        self.unwatch_idle(&head.id);
        self.ssh.end_sessions(&head.id);
        // Halted, nothing runs in it any more: the answer need not wait for the kernel and the
        // file system to take it apart (see `teardown`).
        if let Err(e) = self.provider.halt(&head.id).await {
            // Not a state change: the sandbox stays `deleting` (the next delete, or the
            // reconciliation at the next start, finishes it) and says why it is still there.
            let why = format!("delete: {e}");
            self.store
                .set_sandbox_error(&head.id, head.state, Some(&why), now())
                .await?;
            return Err(e.into());
        }
        self.store.delete_sandbox(&head.id).await?;
        self.tear_down_in_background(&head);
        self.remove_setup_log(&head.id).await;
        let subject = Subject {
            object_type: "sandbox",
            object_id: &head.id,
            object_name: &head.name,
            version: None,
        };
        self.audit(
            caller,
            "sandbox.deleted",
            subject,
            Some(&head.id),
            json!({}),
        )
        .await
    }
}
