//! Creating a sandbox: the request validated and resolved before anything is written, the
//! row, the audit of what is injected, and the provider's start, which goes on in the
//! background when it takes longer than a request should wait.

use std::sync::Arc;
use std::time::Duration;

use amika_sandbox::lifecycle::Operation;
use amika_sandbox::{Injection, SandboxSpec};
use amika_store::{
    CredentialRow, InjectionRecord, SandboxOptions, SandboxRow, SecretRow, StoreError,
};
use amika_types::{self as t, AgentKind, ErrorCode, NetworkMode, SandboxState};
use serde_json::json;
use tracing::Instrument;

use super::injection::Prepared;
use super::to_wire;
use crate::service::audit::{audit_row, Subject};
use crate::service::resolver::{resolve_agent_credentials, Candidate};
use crate::service::{new_id, now, validate, Caller, Result, Service, ServiceError};

/// How long a create or start waits for the provider before answering 202 with the sandbox
/// still `initializing` (the start goes on in the background).
const START_WAIT: Duration = Duration::from_secs(10);

fn candidate(row: &CredentialRow) -> Candidate {
    Candidate {
        id: row.id.clone(),
        name: row.name.clone(),
        kind: row.kind,
        credential_type: row.credential_type,
        scope: row.scope,
        is_default: row.is_default,
        version: row.version,
        updated_at: row.updated_at,
        expires_at: row.expires_at,
    }
}

impl Service {
    /// Validate a create request and resolve its secrets and credentials, touching nothing.
    /// Also returns the rows of the credentials it considered, so that a create does not read
    /// the resolved ones again.
    async fn resolve_request(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
    ) -> Result<(
        Vec<(String, SecretRow)>,
        Vec<crate::service::resolver::Resolution>,
        Vec<CredentialRow>,
    )> {
        validate::sandbox_name(&req.name)?;
        if let Some(p) = &req.provider {
            if p != self.provider.name() {
                return Err(ServiceError::bad_request(format!(
                    "unknown provider {p:?}: this server runs {:?}",
                    self.provider.name()
                ))
                .at("provider"));
            }
        }
        if req.memory_mib.is_some_and(|m| m < 32) {
            return Err(
                ServiceError::bad_request("memory_mib must be at least 32").at("memory_mib")
            );
        }
        if req.pids.is_some_and(|p| p < 8) {
            return Err(ServiceError::bad_request("pids must be at least 8").at("pids"));
        }
        for (env, name) in &req.secret_env_vars {
            validate::env_var(env)?;
            if name.is_empty() {
                return Err(ServiceError::bad_request(format!(
                    "secret_env_vars.{env}: secret name must not be empty"
                ))
                .at(format!("secret_env_vars.{env}")));
            }
        }
        let mut kinds: Vec<AgentKind> = req.agent_credentials.iter().map(|r| r.kind).collect();
        kinds.sort();
        kinds.dedup();
        // One query for every mapped name, not one per env var; one per credential kind; all
        // at the same time.
        let names: Vec<String> = req.secret_env_vars.values().cloned().collect();
        let (found, per_kind) = futures::try_join!(
            self.store
                .find_visible_secrets(&caller.org_id, &caller.user_id, &names),
            futures::future::try_join_all(kinds.iter().map(|kind| {
                self.store
                    .list_visible_credentials(&caller.org_id, &caller.user_id, *kind)
            })),
        )?;
        let mut secrets = Vec::new();
        for (env, name) in &req.secret_env_vars {
            match found.iter().find(|r| &r.name == name) {
                Some(row) => secrets.push((env.clone(), row.clone())),
                None => {
                    return Err(ServiceError::unprocessable(
                        ErrorCode::SecretNotFound,
                        format!("env var {env}: secret {name:?} not found (push it with `amika secret push {name}=...`)"),
                    )
                    .at(format!("secret_env_vars.{env}")))
                }
            }
        }
        let credential_rows: Vec<CredentialRow> = per_kind.into_iter().flatten().collect();
        let candidates: Vec<Candidate> = credential_rows.iter().map(candidate).collect();
        let resolutions =
            resolve_agent_credentials(&req.agent_credentials, &candidates, chrono::Utc::now())?;
        Ok((secrets, resolutions, credential_rows))
    }

    /// What a create would resolve to, creating nothing (the web UI's preview).
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %req.name))]
    pub async fn preview_sandbox(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
    ) -> Result<t::ResolutionPreview> {
        let (secrets, resolutions, _) = self.resolve_request(caller, req).await?;
        let mut secret_names: Vec<String> = secrets.iter().map(|(_, r)| r.name.clone()).collect();
        secret_names.sort();
        secret_names.dedup();
        Ok(t::ResolutionPreview {
            secret_names,
            resolved_agent_credentials: resolutions.into_iter().map(|r| r.entry).collect(),
        })
    }

    /// What a create would inject, writing nothing: resolution, decryption of every value it
    /// names, and the provider's [`Injection`] — the work a create does before its first write.
    /// Public for the in-process benchmark of resolution, decryption and injection
    /// (`bench/src/bin/injection.rs`).
    pub async fn prepare_injection(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
    ) -> Result<Injection> {
        let (secrets, resolutions, credential_rows) = self.resolve_request(caller, req).await?;
        Ok(self
            .prepare_resolved(&secrets, &resolutions, &credential_rows)?
            .injection)
    }

    /// The provider's spec from the stored options. Unreadable options never get here: the
    /// store fails the row (`StoreError::Corrupt`) rather than fall back to defaults, since a
    /// default network mode could open a `none` sandbox.
    pub(super) fn spec(row: &SandboxRow) -> SandboxSpec {
        SandboxSpec {
            id: row.id.clone(),
            network: row.options.network,
            memory_mib: row.options.memory_mib,
            pids: row.options.pids,
        }
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %req.name))]
    pub async fn create_sandbox(
        &self,
        caller: &Caller,
        req: t::CreateSandboxRequest,
    ) -> Result<t::Sandbox> {
        let (secrets, resolutions, credential_rows) = self.resolve_request(caller, &req).await?;
        self.provider.check()?;
        let prepared = self.prepare_resolved(&secrets, &resolutions, &credential_rows)?;

        let mut secret_names: Vec<String> = secrets.iter().map(|(_, r)| r.name.clone()).collect();
        secret_names.sort();
        secret_names.dedup();
        let resolved: Vec<t::ResolvedAgentCredential> =
            resolutions.into_iter().map(|r| r.entry).collect();
        let options = SandboxOptions {
            network: req.network.unwrap_or(NetworkMode::Egress),
            memory_mib: req.memory_mib.or(self.config.default_memory_mib),
            pids: req.pids.or(self.config.default_pids),
        };
        let at = now();
        let row = SandboxRow {
            id: new_id("sbx"),
            org_id: caller.org_id.clone(),
            user_id: caller.user_id.clone(),
            name: req.name.clone(),
            provider: self.provider.name().to_string(),
            state: SandboxState::Initializing,
            error_message: None,
            secret_env_vars: req.secret_env_vars.clone(),
            agent_credentials: req.agent_credentials.clone(),
            resolved_agent_credentials: resolved,
            secret_names,
            injection: prepared.record.clone(),
            options,
            created_at: at,
            updated_at: at,
        };
        self.store.insert_sandbox(&row).await.map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::conflict(
                ErrorCode::SandboxExists,
                format!(
                    "a sandbox named {:?} already exists: pick another name or delete it first",
                    row.name
                ),
            )
            .at("name"),
            e => e.into(),
        })?;
        // The audit events are written while the sandbox starts; if they cannot be, the
        // sandbox goes again (an unaudited create must not stay).
        let record = prepared.record.clone();
        let (audited, started) = tokio::join!(
            self.audit_injection(caller, &row, &record, "sandbox.created"),
            self.start_in_background(row.clone(), prepared),
        );
        // Unaudited, or started and failed at once: leave nothing behind.
        let outcome = audited.and(started.transpose());
        match outcome {
            Ok(Some(running)) => Ok(to_wire(&running)),
            Ok(None) => Ok(to_wire(&self.store.get_sandbox(&row.id).await?)),
            Err(e) => {
                // After the start task, which holds the sandbox's lock until it is done.
                let lock = self.sandbox_lock(&row.id);
                let _guard = lock.lock().await;
                let _ = self.provider.remove(&row.id).await;
                self.store.delete_sandbox(&row.id).await?;
                let subject = Subject {
                    object_type: "sandbox",
                    object_id: &row.id,
                    object_name: &row.name,
                    version: None,
                };
                self.audit(
                    caller,
                    "sandbox.create_failed",
                    subject,
                    Some(&row.id),
                    json!({"error": e.to_string()}),
                )
                .await?;
                Err(e)
            }
        }
    }

    /// The sandbox's event and one per injected credential and secret, written at once.
    pub(super) async fn audit_injection(
        &self,
        caller: &Caller,
        row: &SandboxRow,
        record: &InjectionRecord,
        action: &str,
    ) -> Result<()> {
        let subject = Subject {
            object_type: "sandbox",
            object_id: &row.id,
            object_name: &row.name,
            version: None,
        };
        let mut events = vec![audit_row(
            caller,
            action,
            subject,
            Some(&row.id),
            json!({"secrets": record.secrets, "credentials": record.credentials}),
        )];
        for c in &record.credentials {
            let subject = Subject {
                object_type: "credential",
                object_id: &c.credential_id,
                object_name: &c.name,
                version: Some(c.version),
            };
            events.push(audit_row(
                caller,
                "credential.injected",
                subject,
                Some(&row.id),
                json!({"kind": c.kind, "type": c.credential_type}),
            ));
        }
        for s in &record.secrets {
            let subject = Subject {
                object_type: "secret",
                object_id: &s.secret_id,
                object_name: &s.name,
                version: Some(s.version),
            };
            events.push(audit_row(
                caller,
                "secret.injected",
                subject,
                Some(&row.id),
                json!({"env": s.env}),
            ));
        }
        self.audit_all(caller, events).await
    }

    /// Start the provider in a task that outlives the request; wait up to [`START_WAIT`] for
    /// it. `None`: still starting (the task will record the outcome on the row).
    /// `Some(Ok(row))`: running, as recorded.
    pub(super) async fn start_in_background(
        &self,
        row: SandboxRow,
        prepared: Prepared,
    ) -> Option<Result<SandboxRow>> {
        let svc = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(
            async move {
                let lock = svc.sandbox_lock(&row.id);
                let _guard = lock.lock().await;
                let result = svc.run_start(&row, prepared).await;
                let _ = tx.send(result);
            }
            // The request's span goes with the start, so that its log lines keep the trace id.
            .in_current_span(),
        );
        tokio::time::timeout(START_WAIT, rx)
            .await
            .ok()
            .map(|r| r.unwrap_or_else(|_| Err(ServiceError::internal("start task ended"))))
    }

    async fn run_start(&self, row: &SandboxRow, prepared: Prepared) -> Result<SandboxRow> {
        let Prepared {
            injection,
            redactions,
            ..
        } = prepared;
        let outcome = self.provider.start(&Self::spec(row), injection).await;
        if outcome.is_err() {
            let _ = self.provider.stop(&row.id).await;
        }
        let (op, error) = match &outcome {
            Ok(()) => (Operation::MarkRunning, None),
            Err(e) => (Operation::MarkFailed, Some(e.to_string())),
        };
        // Only if nobody stopped or deleted it meanwhile.
        let Some(current) = self.transition(row, op, error.as_deref()).await? else {
            // Do not resurrect it.
            let _ = self.provider.stop(&row.id).await;
            return Err(self.changed_meanwhile(&row.head(), "starting").await);
        };
        outcome?;
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id.clone(), Arc::new(redactions));
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn row(options: SandboxOptions) -> SandboxRow {
        let at = now();
        SandboxRow {
            id: "sbx_1".into(),
            org_id: "o".into(),
            user_id: "u".into(),
            name: "n".into(),
            provider: "local".into(),
            state: SandboxState::Stopped,
            error_message: None,
            secret_env_vars: BTreeMap::new(),
            agent_credentials: vec![],
            resolved_agent_credentials: vec![],
            secret_names: vec![],
            injection: InjectionRecord::default(),
            options,
            created_at: at,
            updated_at: at,
        }
    }

    // Unreadable options can no longer reach `spec`: the store fails such a row, and
    // `tests/corrupt_rows.rs` checks that a start (and a get, and a list) then fails.
    #[test]
    fn the_spec_takes_network_and_limits_from_the_stored_options() {
        let spec = Service::spec(&row(SandboxOptions {
            network: NetworkMode::None,
            memory_mib: Some(64),
            pids: None,
        }));
        assert_eq!(
            (spec.id.as_str(), spec.network, spec.memory_mib, spec.pids),
            ("sbx_1", NetworkMode::None, Some(64), None)
        );
    }
}
