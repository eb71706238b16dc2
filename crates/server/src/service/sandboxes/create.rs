//! Creating a sandbox: the request validated and resolved before anything is written, the
//! row, the audit of what is injected, and the provider's start, which goes on in the
//! background when it takes longer than a request should wait.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use amika_sandbox::lifecycle::Operation;
use amika_sandbox::{Injection, SandboxSpec};
use amika_store::{
    CredentialRow, InjectionRecord, SandboxOptions, SandboxRow, SecretRow, WorkspaceRecord,
};
use amika_types::{self as t, AgentKind, ErrorCode, NetworkMode, SandboxState, SetupState};
use serde_json::json;
use tracing::Instrument;

use super::checks::{after, check_request, gather};
use super::count::Reservation;
use super::injection::{injection_warnings, Prepared};
use super::setup::{SetupPlan, DEFAULT_SETUP_TIMEOUT};
use super::to_wire;
use super::workspace::Staged;
use crate::service::audit::{audit_row, Subject};
use crate::service::presets;
use crate::service::repo_config::{self, EnvValue, RepoConfig};
use crate::service::resolver::{
    resolve_each_agent_credential, Candidate, Resolution, ResolveError,
};
use crate::service::{new_id, now, Caller, Result, Service, ServiceError};

/// The sandbox user's workspace, where repositories land.
const WORKSPACE: &str = "/home/amika/workspace";

pub(super) fn name_taken(name: &str) -> ServiceError {
    ServiceError::conflict(
        ErrorCode::SandboxExists,
        format!("a sandbox named {name:?} already exists: pick another name or delete it first"),
    )
    .at("name")
}

/// How long a create or start waits for the provider before answering 202 with the sandbox
/// still `initializing` (the start goes on in the background).
const START_WAIT: Duration = Duration::from_secs(10);

pub(super) fn candidate(row: &CredentialRow) -> Candidate {
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

/// What a create resolved: secrets per env var, credentials, plain env vars, and what the
/// repository's config contributed.
pub(super) struct Resolved {
    secrets: Vec<(String, SecretRow)>,
    resolutions: Vec<Resolution>,
    credential_rows: Vec<CredentialRow>,
    env_vars: BTreeMap<String, String>,
    applied: Option<t::RepoConfigApplied>,
}

impl Resolved {
    /// The names of the secrets it maps, sorted, each once.
    fn secret_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.secrets.iter().map(|(_, r)| r.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// [`injection_warnings`] of what this create resolved.
    fn injection_warnings(&self) -> Vec<String> {
        let credentials = self.resolutions.iter().filter_map(|r| {
            let c = r.credential.as_ref()?;
            Some((c.kind, c.credential_type, c.name.as_str()))
        });
        injection_warnings(
            |var| {
                let secret = self.secrets.iter().find(|(env, _)| env == var);
                secret.map(|(_, row)| row.name.as_str())
            },
            |var| self.env_vars.contains_key(var),
            credentials,
        )
    }
}

/// Where a mapped secret was asked for: the request, or a line of the repository's config.
enum Origin {
    Request,
    RepoConfig(Option<usize>),
}

/// The setup script a create runs (the request's, else the repository's), and the outcome to
/// record before it runs (`skipped` with `skip_setup_script`).
fn plan_setup(
    req: &t::CreateSandboxRequest,
    config: Option<&(RepoConfig, String)>,
    staged: Option<&Staged>,
) -> (Option<SetupPlan>, Option<t::SetupOutcome>) {
    let repo_script = config.and_then(|(c, _)| c.setup_script.as_deref());
    let cwd = match staged {
        Some(s) => format!("{WORKSPACE}/{}", s.repo.name),
        None => WORKSPACE.to_string(),
    };
    let timeout = req
        .setup_timeout_secs
        .map_or(DEFAULT_SETUP_TIMEOUT, Duration::from_secs);
    // `""` (or only blanks) is no script, as clients of the public API send it.
    let text = req
        .setup_script_text
        .as_deref()
        .filter(|t| !t.trim().is_empty());
    match SetupPlan::new(text, repo_script, cwd, timeout) {
        Some(plan) if req.skip_setup_script => {
            let mut skipped = plan.pending();
            skipped.state = SetupState::Skipped;
            (None, Some(skipped))
        }
        Some(plan) => {
            let pending = plan.pending();
            (Some(plan), Some(pending))
        }
        None => (None, None),
    }
}

/// The error of a mapped secret that the caller cannot see, naming where it was asked for.
fn secret_not_found(env: &str, name: &str, origin: &Origin) -> ServiceError {
    let (message, field) = match origin {
        Origin::Request => (
            format!("env var {env}: secret {name:?} not found (push it with `amika secret push {name}=...`)"),
            format!("secret_env_vars.{env}"),
        ),
        Origin::RepoConfig(line) => (
            format!(
                "{}{}: [env] {env}: secret {name:?} not found (push it with `amika secret push {name}=...`)",
                repo_config::PATH,
                line.map(|l| format!(":{l}")).unwrap_or_default()
            ),
            repo_config::PATH.to_string(),
        ),
    };
    ServiceError::unprocessable(ErrorCode::SecretNotFound, message).at(field)
}

/// A resolution error, naming the line of the repository's config when the config's entry is
/// what did not resolve.
fn at_config_line(e: ResolveError, repo: Option<&(RepoConfig, String)>) -> ServiceError {
    let line = match (&e, repo) {
        (ResolveError::InRepoConfig { .. }, Some((_, text))) => {
            repo_config::find_line(text, e.kind().as_str())
        }
        _ => None,
    };
    let mut error = ServiceError::from(e);
    if let (Some(line), ServiceError::Unprocessable { message, .. }) = (line, &mut error) {
        let at = format!("{}:{line}", repo_config::PATH);
        *message = message.replacen(repo_config::PATH, &at, 1);
    }
    error
}

impl Service {
    /// Resolve a checked request's secrets and credentials, with the repository's config
    /// (`repo`: parsed, and its text for error lines) below the request's own fields, touching
    /// nothing. Also returns the rows of the credentials it considered, so that a create does
    /// not read the resolved ones again.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn resolve_request(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
        repo: Option<&(RepoConfig, String)>,
    ) -> Result<Resolved> {
        let mut env_vars = req.env_vars.clone();
        let mut mapped: BTreeMap<String, (String, Origin)> = req
            .secret_env_vars
            .iter()
            .map(|(env, name)| (env.clone(), (name.clone(), Origin::Request)))
            .collect();
        let mut applied = None;
        if let Some((config, text)) = repo {
            let mut contributed = t::RepoConfigApplied {
                setup_script: config.setup_script.clone(),
                agent_credentials: config.agent_credentials.keys().copied().collect(),
                ..Default::default()
            };
            for (env, value) in &config.env {
                let taken = req.env_vars.contains_key(env)
                    || req.secret_env_vars.contains_key(env)
                    || req.disabled_repo_env_var_names.contains(env);
                if taken {
                    continue;
                }
                match value {
                    EnvValue::Plain(v) => {
                        env_vars.insert(env.clone(), v.clone());
                        contributed.env_vars.push(env.clone());
                    }
                    EnvValue::Secret(name) => {
                        let line = repo_config::find_line(text, env);
                        mapped.insert(env.clone(), (name.clone(), Origin::RepoConfig(line)));
                        contributed.secret_env_vars.push(env.clone());
                    }
                }
            }
            applied = Some(contributed);
        }
        let mut kinds: Vec<AgentKind> = req.agent_credentials.iter().map(|r| r.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds.retain(|k| k.is_agent());
        // One query for every mapped name, not one per env var; one per credential kind; all
        // at the same time.
        let names: Vec<String> = mapped.values().map(|(name, _)| name.clone()).collect();
        let (found, per_kind) = futures::try_join!(
            self.store
                .find_visible_secrets(&caller.org_id, &caller.user_id, &names),
            futures::future::try_join_all(kinds.iter().map(|kind| {
                self.store
                    .list_visible_credentials(&caller.org_id, &caller.user_id, *kind)
            })),
        )?;
        // Every secret that is not found and every credential that does not resolve, at once.
        let mut errors = Vec::new();
        let mut secrets = Vec::new();
        for (env, (name, origin)) in &mapped {
            match found.iter().find(|r| &r.name == name) {
                Some(row) => secrets.push((env.clone(), row.clone())),
                None => errors.push(secret_not_found(env, name, origin)),
            }
        }
        let credential_rows: Vec<CredentialRow> = per_kind.into_iter().flatten().collect();
        let candidates: Vec<Candidate> = credential_rows.iter().map(candidate).collect();
        let empty = BTreeMap::new();
        let from_repo = repo.map_or(&empty, |(c, _)| &c.agent_credentials);
        let resolutions = resolve_each_agent_credential(
            &req.agent_credentials,
            from_repo,
            &candidates,
            chrono::Utc::now(),
        )
        .unwrap_or_else(|each| {
            errors.extend(each.into_iter().map(|e| at_config_line(e, repo)));
            Vec::new()
        });
        ServiceError::all(errors)?;
        Ok(Resolved {
            secrets,
            resolutions,
            credential_rows,
            env_vars,
            applied,
        })
    }

    /// What a create would resolve to, creating nothing (the web UI's preview). A repository
    /// is cloned to read its `.amika/config.toml`, then removed.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %req.name))]
    pub async fn preview_sandbox(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
    ) -> Result<t::ResolutionPreview> {
        let mut errors = Vec::new();
        gather(&mut errors, check_request(req, self.provider.name()));
        let plan = gather(&mut errors, self.plan_workspace(caller, req).await).flatten();
        // A repository is cloned (for its config) only when nothing else is wrong.
        let staged = match plan.filter(|_| errors.is_empty()) {
            Some(plan) => {
                let id = new_id("preview");
                let staged = self.stage_repository(&id, &plan).await;
                self.discard_staged(&id).await;
                gather(&mut errors, staged)
            }
            None => None,
        };
        let config = staged.as_ref().and_then(|s| s.config.as_ref());
        let resolved = after(errors, self.resolve_request(caller, req, config).await)?;
        let secret_names = resolved.secret_names();
        let mut warnings = resolved.injection_warnings();
        // A preset that is not installed: the create would warn the same.
        self.choose_preset(req, &mut warnings)?;
        Ok(t::ResolutionPreview {
            secret_names,
            resolved_agent_credentials: resolved.resolutions.into_iter().map(|r| r.entry).collect(),
            repo_config: resolved.applied,
            warnings,
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
        check_request(req, self.provider.name())?;
        let r = self.resolve_request(caller, req, None).await?;
        Ok(self
            .prepare_resolved(&r.env_vars, &r.secrets, &r.resolutions, &r.credential_rows)?
            .injection)
    }

    /// The provider's spec from the stored options. Unreadable options never get here: the
    /// store fails the row (`StoreError::Corrupt`) rather than fall back to defaults, since a
    /// default network mode could open a `none` sandbox.
    pub(super) fn spec(row: &SandboxRow, presets_dir: &std::path::Path) -> SandboxSpec {
        SandboxSpec {
            id: row.id.clone(),
            network: row.options.network,
            memory_mib: row.options.memory_mib,
            pids: row.options.pids,
            preset: row
                .options
                .preset
                .as_deref()
                .and_then(|p| presets::stored_layer(presets_dir, p)),
        }
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %req.name))]
    pub async fn create_sandbox(
        &self,
        caller: &Caller,
        mut req: t::CreateSandboxRequest,
    ) -> Result<t::Sandbox> {
        // Every error of the request at once, before a clone that could take minutes.
        let mut errors = Vec::new();
        let mut warnings =
            gather(&mut errors, check_request(&req, self.provider.name())).unwrap_or_default();
        // The sandbox count after the other ceilings; the reservation counts this create
        // against it until its row is in (see `count`).
        let reservation = match gather(&mut errors, self.check_ceilings(caller, &req).await) {
            Some(()) => gather(&mut errors, self.reserve_sandbox(caller).await),
            None => None,
        };
        // An unknown preset is already among the errors.
        let preset = if errors.is_empty() {
            gather(&mut errors, self.choose_preset(&req, &mut warnings)).flatten()
        } else {
            None
        };
        let mut plan = gather(&mut errors, self.plan_workspace(caller, &req).await).flatten();
        if req.name.is_empty() {
            if errors.is_empty() {
                let repo = plan.as_ref().map(|p| p.repo_name());
                req.name = self.generate_name(caller, repo).await?;
            }
        } else if self
            .store
            .get_sandbox_head_by_name(&caller.user_id, &req.name)
            .await
            .is_ok()
        {
            // The insert checks again.
            errors.push(name_taken(&req.name));
        }
        if !errors.is_empty() {
            // The secrets and credentials too (without the repository's config, which only a
            // clone could read: it adds no error, only fills bare entries).
            after(errors, self.resolve_request(caller, &req, None).await)?;
        }
        self.provider.check()?;
        // Had a ceiling or the count refused, its error was returned just above.
        let Some(reservation) = reservation else {
            return Err(ServiceError::internal(
                "a create passed without its reservation",
            ));
        };
        let id = new_id("sbx");
        req.snapshot = req.snapshot.filter(|s| !s.is_empty());
        let from_snapshot = self.restore_for_create(caller, &req, &id).await?;
        let staged = match plan.as_mut() {
            Some(plan) => {
                plan.claim_upload(&id)?;
                let staged = self.stage_repository(&id, plan).await;
                plan.consume_upload();
                Some(staged?)
            }
            None => (from_snapshot.as_ref().and_then(|s| s.repo.clone()))
                .map(|repo| Staged { repo, config: None }),
        };
        let made = self
            .create_staged(caller, req, (id.clone(), reservation), staged, preset)
            .await;
        match made {
            Ok(mut sandbox) => {
                // The request's own warnings first, then those of what it resolved to.
                warnings.append(&mut sandbox.warnings);
                sandbox.warnings = warnings;
                Ok(sandbox)
            }
            Err(e) => {
                // Whatever the failure, nothing staged stays (a started sandbox was already
                // removed with its files, and removing twice is harmless).
                if plan.is_some() {
                    self.discard_staged(&id).await;
                }
                if from_snapshot.is_some() {
                    let _ = self.provider.remove(&id).await;
                }
                Err(e)
            }
        }
    }

    /// The create after its repository (if any) is staged under `id`.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_staged(
        &self,
        caller: &Caller,
        req: t::CreateSandboxRequest,
        (id, reservation): (String, Reservation),
        staged: Option<Staged>,
        preset: Option<String>,
    ) -> Result<t::Sandbox> {
        let config = staged.as_ref().and_then(|s| s.config.as_ref());
        let resolved = self.resolve_request(caller, &req, config).await?;
        let injection_warnings = resolved.injection_warnings();
        let prepared = self.prepare_resolved(
            &resolved.env_vars,
            &resolved.secrets,
            &resolved.resolutions,
            &resolved.credential_rows,
        )?;
        let (setup, outcome) = plan_setup(&req, config, staged.as_ref());
        let kept = staged.is_some() || outcome.is_some() || req.snapshot.is_some();
        let workspace = kept.then(|| WorkspaceRecord {
            snapshot: req.snapshot.clone(),
            repo: staged.map(|s| s.repo),
            repo_config: resolved.applied.clone(),
            setup: outcome,
        });

        let secret_names = resolved.secret_names();
        let (size_memory, size_pids) = req.size.map(|s| s.limits()).unzip();
        let options = SandboxOptions {
            network: req.network.unwrap_or(NetworkMode::Egress),
            memory_mib: req
                .memory_mib
                .or(size_memory)
                .or(self.config.default_memory_mib)
                .or(self.config.ceilings.max_memory_mib),
            pids: req
                .pids
                .or(size_pids)
                .or(self.config.default_pids)
                .or(self.config.ceilings.max_pids),
            env_vars: resolved.env_vars.clone(),
            preset,
            size: req.size,
            auto_stop_interval: req.auto_stop_interval.filter(|m| *m > 0.0),
            auto_delete_interval: req.auto_delete_interval.filter(|m| *m > 0.0),
        };
        let at = now();
        let row = SandboxRow {
            id,
            org_id: caller.org_id.clone(),
            user_id: caller.user_id.clone(),
            name: req.name.clone(),
            provider: self.provider.name().to_string(),
            state: SandboxState::Initializing,
            error_message: None,
            secret_env_vars: resolved
                .secrets
                .iter()
                .map(|(env, r)| (env.clone(), r.name.clone()))
                .collect(),
            agent_credentials: req.agent_credentials.clone(),
            resolved_agent_credentials: resolved.resolutions.into_iter().map(|r| r.entry).collect(),
            secret_names,
            injection: prepared.record.clone(),
            options,
            workspace,
            created_at: at,
            updated_at: at,
        };
        self.insert_within_ceiling(caller, &row, reservation)
            .await?;
        if setup.is_some() {
            self.live_setup_log(&row.id);
        }
        self.watch_idle(&row);
        // The audit events are written while the sandbox starts; if they cannot be, the
        // sandbox goes again (an unaudited create must not stay).
        let record = prepared.record.clone();
        let (audited, started) = tokio::join!(
            self.audit_injection(caller, &row, &record, "sandbox.created"),
            self.start_in_background(row.clone(), prepared, setup),
        );
        // Unaudited, or started and failed at once: leave nothing behind.
        let outcome = audited.and(started.transpose());
        let mut sandbox = match outcome {
            Ok(Some(running)) => to_wire(&running),
            Ok(None) => to_wire(&self.store.get_sandbox(&row.id).await?),
            Err(e) => {
                self.undo_create(caller, &row, &e).await?;
                return Err(e);
            }
        };
        sandbox.warnings = injection_warnings;
        Ok(sandbox)
    }

    /// The preset layer a create mounts, stored as `name@version`: the request's (`""`: none),
    /// else the server's `default_preset`; `None`, with a warning when one was asked for, if
    /// it is not installed.
    fn choose_preset(
        &self,
        req: &t::CreateSandboxRequest,
        warnings: &mut Vec<String>,
    ) -> Result<Option<String>> {
        match req.preset.as_deref() {
            Some("") => Ok(None),
            Some(name) => {
                let chosen = self.resolve_preset(name)?;
                if chosen.is_none() {
                    warnings.push(format!(
                        "preset {name} is not installed on this server: the sandbox has no agent CLIs of its own (an admin installs it with `amika preset install {name}`)"
                    ));
                }
                Ok(chosen)
            }
            None => match &self.config.default_preset {
                Some(name) => self.resolve_preset(name),
                None => Ok(None),
            },
        }
    }

    /// Remove a sandbox whose create failed after its row was written, and audit that.
    async fn undo_create(
        &self,
        caller: &Caller,
        row: &SandboxRow,
        error: &ServiceError,
    ) -> Result<()> {
        // After the start task, which holds the sandbox's lock until it is done.
        let lock = self.sandbox_lock(&row.id);
        let _guard = lock.lock().await;
        let _ = self.provider.remove(&row.id).await;
        self.unwatch_idle(&row.id);
        self.remove_setup_log(&row.id).await;
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
            json!({"error": error.to_string()}),
        )
        .await
    }

    /// The sandbox's event and one per injected credential and secret, written at once.
    #[tracing::instrument(level = "debug", skip_all)]
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

    /// Start the provider in a task that outlives the request, then run the setup script if
    /// there is one; wait up to [`START_WAIT`] for both. `None`: still starting (the task will
    /// record the outcome on the row). `Some(Ok(row))`: running, as recorded.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn start_in_background(
        &self,
        row: SandboxRow,
        prepared: Prepared,
        setup: Option<SetupPlan>,
    ) -> Option<Result<SandboxRow>> {
        let svc = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(
            async move {
                let result = svc.run_start(&row, prepared, setup).await;
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

    /// Start the sandbox (under its lock), run its setup script (without the lock, so that a
    /// stop or delete can end a script that hangs), and record the outcome.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn run_start(
        &self,
        row: &SandboxRow,
        prepared: Prepared,
        setup: Option<SetupPlan>,
    ) -> Result<SandboxRow> {
        let Prepared {
            injection,
            redactions,
            ..
        } = prepared;
        let redactions = Arc::new(redactions);
        let lock = self.sandbox_lock(&row.id);
        let guard = lock.lock().await;
        let outcome = self
            .provider
            .start(&Self::spec(row, &self.config.presets_dir), injection)
            .await;
        if let Err(e) = &outcome {
            let _ = self.provider.stop(&row.id).await;
            self.abandon_setup_log(&row.id, &e.to_string());
        } else {
            self.redactions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(row.id.clone(), redactions.clone());
        }
        let mut failure = outcome.as_ref().err().map(|e| e.to_string());
        let mut row = row.clone();
        let guard = match (setup, &outcome) {
            (Some(plan), Ok(())) => {
                drop(guard);
                failure = self.run_setup(&row, plan, &redactions).await?;
                // The setup's outcome is on the stored row now, not on this copy: the answer
                // must not say `pending` for a script that ran. (A row deleted meanwhile is
                // found by the transition below.)
                if let Ok(stored) = self.store.get_sandbox(&row.id).await {
                    row.workspace = stored.workspace;
                }
                let guard = lock.lock().await;
                if failure.is_some() {
                    let _ = self.provider.stop(&row.id).await;
                }
                guard
            }
            _ => guard,
        };
        let op = match failure {
            None => Operation::MarkRunning,
            Some(_) => Operation::MarkFailed,
        };
        // Only if nobody stopped or deleted it meanwhile.
        let Some(current) = self.transition(&row, op, failure.as_deref()).await? else {
            // Do not resurrect it.
            let _ = self.provider.stop(&row.id).await;
            return Err(self.changed_meanwhile(&row.head(), "starting").await);
        };
        drop(guard);
        outcome?;
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
            workspace: None,
            created_at: at,
            updated_at: at,
        }
    }

    // Unreadable options can no longer reach `spec`: the store fails such a row, and
    // `tests/corrupt_rows.rs` checks that a start (and a get, and a list) then fails.
    #[test]
    fn the_spec_takes_network_and_limits_from_the_stored_options() {
        let dir = std::path::Path::new("/data/presets");
        let mut r = row(SandboxOptions::new(NetworkMode::None, Some(64), None));
        let spec = Service::spec(&r, dir);
        assert_eq!(
            (spec.id.as_str(), spec.network, spec.memory_mib, spec.pids),
            ("sbx_1", NetworkMode::None, Some(64), None)
        );
        assert_eq!(spec.preset, None);
        r.options.preset = Some("coder@0123456789ab".into());
        assert_eq!(
            Service::spec(&r, dir).preset,
            Some("/data/presets/coder/0123456789ab".into())
        );
        // A stored value that is not `name@id` of a known preset is never a path.
        for bad in [
            "coder@../../etc",
            "coder",
            "nope@0123456789ab",
            "coder@0123456789AB",
        ] {
            r.options.preset = Some(bad.into());
            assert_eq!(Service::spec(&r, dir).preset, None, "{bad}");
        }
    }
}
