//! Sandboxes: create (resolve, decrypt, inject, start), get, list, start, stop, delete, exec,
//! and reconciliation with what really runs after a restart.
//!
//! A create resolves everything before it writes anything: an unknown secret, an unknown
//! credential, a type mismatch or a missing provider prerequisite leaves no row and no files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use amika_sandbox::lifecycle::{check_transition, reconcile, Operation, Reconcile};
use amika_sandbox::{
    ExecSpec, InjectedEnv, InjectedFile, Injection, KeyedLock, ProviderError, RuntimeStatus,
    SandboxSpec, SecretBytes,
};
use amika_store::{
    CredentialRow, InjectedCredentialRef, InjectedSecretRef, InjectionRecord, SandboxOptions,
    SandboxRow, SecretRow, StoreError,
};
use amika_types::{self as t, AgentKind, CredentialType, ErrorCode, NetworkMode, SandboxState};
use serde_json::json;

use super::audit::{audit_row, Subject};
use super::redaction::{RedactedExec, RedactionSet};
use super::resolver::{resolve_agent_credentials, Candidate};
use super::sealing::SecretString;
use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

/// How long a create or start waits for the provider before answering 202 with the sandbox
/// still `initializing` (the start goes on in the background).
const START_WAIT: Duration = Duration::from_secs(10);

/// Everything a start needs: the injection with its values, and what to redact.
struct Prepared {
    injection: Injection,
    redactions: RedactionSet,
    record: InjectionRecord,
}

fn state_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::conflict(ErrorCode::InvalidState, e.to_string())
}

/// The row as the API shows it. Its columns were decoded by the store, which fails a row that
/// does not decode rather than show defaults.
pub(crate) fn to_wire(r: &SandboxRow) -> t::Sandbox {
    t::Sandbox {
        id: r.id.clone(),
        name: r.name.clone(),
        user_id: r.user_id.clone(),
        org_id: r.org_id.clone(),
        provider: r.provider.clone(),
        provider_sandbox_id: Some(r.id.clone()),
        provider_url: None,
        amika_opencode_web: None,
        repo_name: None,
        repo_provider: None,
        repo_id: None,
        repo_url: None,
        branch: None,
        commit_hash: None,
        snapshot: None,
        current_session_id: None,
        services: None,
        state: r.state,
        error_message: r.error_message.clone(),
        network: r.options.network,
        memory_mib: r.options.memory_mib,
        pids: r.options.pids,
        secret_names: r.secret_names.clone(),
        resolved_agent_credentials: r.resolved_agent_credentials.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

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

fn secret_bytes(v: &SecretString) -> SecretBytes {
    SecretBytes::new(v.expose_secret().as_bytes().to_vec())
}

/// `~/.codex/auth.json` for an API key: `{"OPENAI_API_KEY":"<key>"}`, the key escaped as JSON.
/// Written into one zeroizing buffer sized for the worst case (every byte escaped as `\u00XX`)
/// so that it never grows: a growing buffer frees each smaller copy of the key unzeroized, and
/// so would a `serde_json::Value` or a `String` built on the way.
fn codex_api_key_auth_json(key: &SecretString) -> Result<SecretBytes> {
    const OPEN: &[u8] = br#"{"OPENAI_API_KEY":"#;
    let mut doc = zeroize::Zeroizing::new(Vec::with_capacity(OPEN.len() + 2 + 6 * key.len() + 1));
    let capacity = doc.capacity();
    doc.extend_from_slice(OPEN);
    serde_json::to_writer(&mut *doc, key.expose_secret()).map_err(ServiceError::internal)?;
    doc.push(b'}');
    debug_assert_eq!(doc.capacity(), capacity, "the buffer grew");
    // Moves the buffer (no copy); the emptied `Zeroizing` has nothing left to clear.
    Ok(SecretBytes::new(std::mem::take(&mut *doc)))
}

/// Add one credential to the injection, as DESIGN §5 lays out.
fn inject_credential(
    injection: &mut Injection,
    kind: AgentKind,
    ty: CredentialType,
    label: &str,
    value: &SecretString,
) -> Result<()> {
    let env = |name: &str| InjectedEnv {
        name: name.to_string(),
        value: secret_bytes(value),
        label: label.to_string(),
    };
    let file = |path: &str, contents: SecretBytes| InjectedFile {
        relative_path: path.to_string(),
        contents,
        label: label.to_string(),
    };
    match (kind, ty) {
        (AgentKind::Claude, CredentialType::ApiKey) => injection.env.push(env("ANTHROPIC_API_KEY")),
        (AgentKind::Claude, CredentialType::Oauth) => injection
            .files
            .push(file(".claude/.credentials.json", secret_bytes(value))),
        (AgentKind::Codex, CredentialType::ApiKey) => {
            injection.env.push(env("OPENAI_API_KEY"));
            let doc = codex_api_key_auth_json(value)?;
            injection.files.push(file(".codex/auth.json", doc));
        }
        (AgentKind::Codex, CredentialType::Oauth) => injection
            .files
            .push(file(".codex/auth.json", secret_bytes(value))),
    }
    Ok(())
}

impl Service {
    fn sandbox_lock(&self, id: &str) -> KeyedLock {
        self.locks.handle(id)
    }

    /// Every change of a sandbox's state goes through here: the lifecycle table says whether
    /// `op` is allowed in the state `row` was read in and where it leads, and the store writes
    /// the new state, `error` (as the error message) and `updated_at` only if the sandbox is
    /// still in that state (one statement, no read first). `Ok(None)`: it changed meanwhile,
    /// nothing was written.
    pub(crate) async fn transition(
        &self,
        row: &SandboxRow,
        op: Operation,
        error: Option<&str>,
    ) -> Result<Option<SandboxRow>> {
        let next = check_transition(row.state, op).map_err(state_error)?;
        let at = now();
        let written = self
            .store
            .transition_sandbox(&row.id, row.state, next, error, at)
            .await?;
        Ok(written.then(|| SandboxRow {
            state: next,
            error_message: error.map(str::to_owned),
            updated_at: at,
            ..row.clone()
        }))
    }

    /// The conflict to answer when a sandbox's state changed while `doing` (a transition found
    /// it in another state than the one it was read in).
    async fn changed_meanwhile(&self, row: &SandboxRow, doing: &str) -> ServiceError {
        let now_is = match self.store.get_sandbox(&row.id).await {
            Ok(r) => r.state.to_string(),
            Err(_) => "deleted".into(),
        };
        state_error(format!(
            "sandbox {} changed to {now_is} while {doing}",
            row.name
        ))
    }

    /// A sandbox of the caller's by id or name.
    pub async fn find_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<SandboxRow> {
        let not_found = || ServiceError::NotFound(format!("sandbox {id_or_name:?}"));
        // Only a string shaped like an id (`sbx_...`) can be one: a name skips that lookup.
        let by_id = if id_or_name.starts_with("sbx_") {
            self.store.get_sandbox(id_or_name).await
        } else {
            Err(StoreError::NotFound("sandbox"))
        };
        let found = match by_id {
            Ok(r) if r.user_id == caller.user_id => Ok(r),
            Ok(_) | Err(StoreError::NotFound(_)) => {
                self.store
                    .get_sandbox_by_name(&caller.user_id, id_or_name)
                    .await
            }
            Err(e) => Err(e),
        };
        match found {
            Ok(r) => Ok(r),
            Err(StoreError::NotFound(_)) => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<t::Sandbox> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        Ok(to_wire(&self.observe_runtime(row).await?))
    }

    pub async fn list_sandboxes(&self, caller: &Caller) -> Result<Vec<t::Sandbox>> {
        let mut out = Vec::new();
        for row in self.store.list_sandboxes(&caller.user_id).await? {
            out.push(to_wire(&self.observe_runtime(row).await?));
        }
        Ok(out)
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
    async fn observe_runtime(&self, row: SandboxRow) -> Result<SandboxRow> {
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

    /// Validate a create request and resolve its secrets and credentials, touching nothing.
    /// Also returns the rows of the credentials it considered, so that a create does not read
    /// the resolved ones again.
    async fn resolve_request(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
    ) -> Result<(
        Vec<(String, SecretRow)>,
        Vec<super::resolver::Resolution>,
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

    /// Decrypt what the record names, at the versions current now.
    fn prepare(
        &self,
        secrets: &[(String, SecretRow)],
        credentials: &[CredentialRow],
    ) -> Result<Prepared> {
        let mut injection = Injection::default();
        let mut redactions = RedactionSet::new();
        let mut record = InjectionRecord::default();
        for cred in credentials {
            let value = self.open_credential(cred)?;
            inject_credential(
                &mut injection,
                cred.kind,
                cred.credential_type,
                &cred.name,
                &value,
            )?;
            redactions.add(&cred.name, value.expose_secret().as_bytes());
            record.credentials.push(InjectedCredentialRef {
                kind: cred.kind,
                credential_id: cred.id.clone(),
                name: cred.name.clone(),
                credential_type: cred.credential_type,
                version: cred.version,
            });
        }
        for (env, row) in secrets {
            let value = self.open_secret(row)?;
            // An explicit `--secret env:VAR=...` wins over a credential's variable of the same name.
            injection.env.retain(|e| &e.name != env);
            injection.env.push(InjectedEnv {
                name: env.clone(),
                value: secret_bytes(&value),
                label: row.name.clone(),
            });
            redactions.add(&row.name, value.expose_secret().as_bytes());
            record.secrets.push(InjectedSecretRef {
                env: env.clone(),
                secret_id: row.id.clone(),
                name: row.name.clone(),
                version: row.version,
            });
        }
        Ok(Prepared {
            injection,
            redactions,
            record,
        })
    }

    /// Decrypt the resolved credentials (from the rows resolution read) and the secrets into an
    /// injection.
    fn prepare_resolved(
        &self,
        secrets: &[(String, SecretRow)],
        resolutions: &[super::resolver::Resolution],
        credential_rows: &[CredentialRow],
    ) -> Result<Prepared> {
        let mut credentials = Vec::new();
        for r in resolutions {
            if let Some(c) = &r.credential {
                let row = credential_rows
                    .iter()
                    .find(|row| row.id == c.id)
                    .ok_or_else(|| {
                        ServiceError::internal("resolved a credential it did not read")
                    })?;
                credentials.push(row.clone());
            }
        }
        self.prepare(secrets, &credentials)
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
    fn spec(row: &SandboxRow) -> SandboxSpec {
        SandboxSpec {
            id: row.id.clone(),
            network: row.options.network,
            memory_mib: row.options.memory_mib,
            pids: row.options.pids,
        }
    }

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
    async fn audit_injection(
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
    async fn start_in_background(
        &self,
        row: SandboxRow,
        prepared: Prepared,
    ) -> Option<Result<SandboxRow>> {
        let svc = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let lock = svc.sandbox_lock(&row.id);
            let _guard = lock.lock().await;
            let result = svc.run_start(&row, prepared).await;
            let _ = tx.send(result);
        });
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
            return Err(self.changed_meanwhile(row, "starting").await);
        };
        outcome?;
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id.clone(), Arc::new(redactions));
        Ok(current)
    }

    /// Start a stopped or failed sandbox, injecting the current values of what it was given.
    pub async fn start_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        let lock = self.sandbox_lock(&row.id);
        let guard = lock.lock().await;
        let mut row = self.store.get_sandbox(&row.id).await?;
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
        let prepared = self.prepare(&secrets, &credentials)?;
        // What this start injects, recorded first (not a state change: the row is written in
        // the state it was read in, under the sandbox's lock), then the transition.
        row.injection = prepared.record.clone();
        self.store.update_sandbox(&row).await?;
        let Some(row) = self.transition(&row, Operation::Start, None).await? else {
            return Err(self.changed_meanwhile(&row, "preparing its start").await);
        };
        self.audit_injection(caller, &row, &prepared.record, "sandbox.started")
            .await?;
        drop(guard);
        match self.start_in_background(row, prepared).await {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    pub async fn stop_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        let lock = self.sandbox_lock(&row.id);
        let _guard = lock.lock().await;
        let row = self.store.get_sandbox(&row.id).await?;
        let error = row.error_message.as_deref();
        let Some(row) = self.transition(&row, Operation::Stop, error).await? else {
            return Err(self.changed_meanwhile(&row, "stopping").await);
        };
        let result = self.provider.stop(&row.id).await;
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&row.id);
        let error = result.as_ref().err().map(|e| format!("stop: {e}"));
        let Some(row) = self
            .transition(&row, Operation::MarkStopped, error.as_deref())
            .await?
        else {
            return Err(self.changed_meanwhile(&row, "stopping").await);
        };
        let subject = Subject {
            object_type: "sandbox",
            object_id: &row.id,
            object_name: &row.name,
            version: None,
        };
        self.audit(caller, "sandbox.stopped", subject, Some(&row.id), json!({}))
            .await?;
        Ok(result?)
    }

    pub async fn delete_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        let lock = self.sandbox_lock(&row.id);
        let _guard = lock.lock().await;
        let mut row = match self.store.get_sandbox(&row.id).await {
            Ok(r) => r,
            // Deleted by a concurrent request while we waited: already done.
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if row.state != SandboxState::Deleting {
            let error = row.error_message.clone();
            row = match self
                .transition(&row, Operation::Delete, error.as_deref())
                .await?
            {
                Some(deleting) => deleting,
                None => return Err(self.changed_meanwhile(&row, "deleting").await),
            };
        }
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&row.id);
        if let Err(e) = self.provider.remove(&row.id).await {
            // Not a state change: the sandbox stays `deleting` (the next delete, or the
            // reconciliation at the next start, finishes it) and says why it is still there.
            row.error_message = Some(format!("delete: {e}"));
            self.store.update_sandbox(&row).await?;
            return Err(e.into());
        }
        self.store.delete_sandbox(&row.id).await?;
        let subject = Subject {
            object_type: "sandbox",
            object_id: &row.id,
            object_name: &row.name,
            version: None,
        };
        self.audit(caller, "sandbox.deleted", subject, Some(&row.id), json!({}))
            .await
    }

    /// Run a command in a running sandbox. Its output comes already redacted: every value
    /// injected into the sandbox is `[REDACTED:<name>]` in it. Dropping the stream kills the
    /// command.
    pub async fn exec_sandbox(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::ExecRequest,
    ) -> Result<RedactedExec> {
        if req.command.is_empty() || req.command[0].is_empty() {
            return Err(ServiceError::bad_request("command must not be empty").at("command"));
        }
        let row = self.find_sandbox(caller, id_or_name).await?;
        let row = self.observe_runtime(row).await?;
        check_transition(row.state, Operation::Exec).map_err(|_| {
            ServiceError::conflict(
                ErrorCode::InvalidState,
                format!(
                    "sandbox {:?} is {}{}: exec needs it running (`amika sandbox start {}`)",
                    row.name,
                    row.state,
                    row.error_message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default(),
                    row.name
                ),
            )
        })?;
        let redactions = self.redactions_for(&row).await?;
        let spec = ExecSpec {
            argv: req.command,
            cwd: req.cwd,
            timeout: req.timeout_secs.map(Duration::from_secs),
        };
        let handle = self
            .provider
            .exec(&row.id, spec)
            .await
            .map_err(|e| match e {
                // The provider names the sandbox by its id; the answer names it as the caller did.
                ProviderError::NotRunning(_) => ServiceError::conflict(
                    ErrorCode::InvalidState,
                    format!("sandbox {:?} is not running", row.name),
                ),
                e => e.into(),
            })?;
        Ok(RedactedExec::new(handle, &redactions))
    }

    /// The redaction set of a running sandbox; after a server restart it is rebuilt from the
    /// values recorded for the sandbox.
    pub(crate) async fn redactions_for(&self, row: &SandboxRow) -> Result<Arc<RedactionSet>> {
        if let Some(set) = self
            .redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&row.id)
        {
            return Ok(set.clone());
        }
        let record = &row.injection;
        // A row deleted since the start is skipped; any other store error is an error, not a
        // quietly smaller set (the set is cached for the sandbox's whole run).
        fn found<T>(r: Result<T, StoreError>) -> Result<Option<T>> {
            match r {
                Ok(row) => Ok(Some(row)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        let mut secrets = Vec::new();
        for s in &record.secrets {
            if let Some(secret) = found(self.store.get_secret(&s.secret_id).await)? {
                if secret.version != s.version {
                    tracing::warn!(sandbox = %row.id, secret = %s.name, "the secret changed since the sandbox started: its injected value cannot be redacted");
                }
                secrets.push((s.env.clone(), secret));
            }
        }
        let mut credentials = Vec::new();
        for c in &record.credentials {
            if let Some(cred) = found(self.store.get_credential(&c.credential_id).await)? {
                if cred.version != c.version {
                    tracing::warn!(sandbox = %row.id, credential = %c.name, "the credential changed since the sandbox started: its injected value cannot be redacted");
                }
                credentials.push(cred);
            }
        }
        // The same decryption and labels as the start's.
        let set = self.prepare(&secrets, &credentials)?.redactions;
        let set = Arc::new(set);
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id.clone(), set.clone());
        Ok(set)
    }

    /// After a restart: make every record match what runs, and remove what runs without a
    /// record. Returns a line per change, for the log.
    ///
    /// - a sandbox the provider has (files or processes) without a record: removed;
    /// - the rest as [`reconcile`] (the lifecycle module) says, each state through the
    ///   transition table: `deleting` is finished; `initializing` (the server died during its
    ///   start) has its processes killed and is `failed`; `running` or `stopping` with its
    ///   processes gone is `stopped`, with the reason; `stopping`, `stopped` or `failed` with
    ///   processes running is stopped.
    ///
    /// A provider error on one sandbox is logged as a change and does not keep the server from
    /// starting; the sandbox keeps its state, and a later stop or delete tries again.
    pub async fn reconcile_sandboxes(&self) -> Result<Vec<String>> {
        let mut changes = Vec::new();
        let rows = self.store.list_all_sandboxes().await?;
        let known: BTreeMap<&str, &SandboxRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
        for id in self.provider.list().await? {
            if !known.contains_key(id.as_str()) {
                changes.push(match self.provider.remove(&id).await {
                    Ok(()) => format!("removed orphaned sandbox files and processes {id}"),
                    Err(e) => format!("could not remove orphaned sandbox {id}: {e}"),
                });
            }
        }
        for row in &rows {
            match self.provider.status(&row.id).await {
                Ok(status) => changes.extend(self.reconcile_sandbox(row, status).await?),
                Err(e) => changes.push(format!("{}: cannot read its status: {e}", row.name)),
            }
        }
        Ok(changes)
    }

    /// Reconcile one sandbox with its runtime `status`: the change made, if any.
    async fn reconcile_sandbox(
        &self,
        row: &SandboxRow,
        status: RuntimeStatus,
    ) -> Result<Option<String>> {
        let (running, gone_because) = match status {
            RuntimeStatus::Running => (true, None),
            RuntimeStatus::NotRunning { reason } => (false, reason),
        };
        let op = match reconcile(row.state, running) {
            Reconcile::Keep => return Ok(None),
            Reconcile::FinishDelete => {
                if let Err(e) = self.provider.remove(&row.id).await {
                    return Ok(Some(format!(
                        "{}: could not finish deleting: {e}",
                        row.name
                    )));
                }
                self.store.delete_sandbox(&row.id).await?;
                return Ok(Some(format!("finished deleting {}", row.name)));
            }
            Reconcile::Record(op) => op,
        };
        let note = match op {
            Operation::ReconcileInterrupted => match self.provider.stop(&row.id).await {
                Ok(()) => "the server stopped while this sandbox was starting: start it again".to_string(),
                Err(e) => format!("the server stopped while this sandbox was starting, and stopping what it had started failed ({e}): delete it"),
            },
            Operation::ReconcileStrays => {
                if let Err(e) = self.provider.stop(&row.id).await {
                    return Ok(Some(format!("{}: could not stop it: {e}", row.name)));
                }
                "stopped on restart: it was recorded as not running".to_string()
            }
            // `ReconcileLost`: nothing runs; say why, when the provider knows.
            _ => format!(
                "its processes were gone when the server restarted{}",
                gone_because.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        };
        // Nothing else runs during reconciliation: a row that changed meanwhile is left as is.
        self.transition(row, op, Some(&note)).await?;
        Ok(Some(format!("{}: {note}", row.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_auth_json_is_what_serde_json_writes_and_never_regrows() {
        let keys = [
            "sk-proj-abc123".to_string(),
            "quote\" back\\slash \u{1} tab\t nl\n é 日本 \u{7f}".to_string(),
            "\u{0}".repeat(40),
        ];
        for key in keys {
            let expected = serde_json::to_vec(&json!({ "OPENAI_API_KEY": key })).unwrap();
            let built = codex_api_key_auth_json(&SecretString::new(key)).unwrap();
            assert_eq!(built.expose_secret(), expected.as_slice());
        }
    }

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
