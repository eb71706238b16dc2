//! Snapshots (DESIGN §11, issue 16): a sandbox's home and workspace captured into an encrypted
//! archive in the data dir, to start new sandboxes from.
//!
//! - **Create** (`POST /sandbox-snapshots`) checks the request, records the snapshot as
//!   `capturing` and the source sandbox as `snapshotting`, answers, and captures in the
//!   background (`capture`): the sandbox is stopped — its env vars and its credential files,
//!   which only ever live in a tmpfs inside it, go with its processes — and its home is archived
//!   (zstd tar), encrypted under the snapshot's own data key (AAD: org, owner, snapshot id).
//! - **`scrub_and_delete`** (the default) searches every byte it archives for every value that
//!   was injected into the sandbox (raw, base64, URL-encoded, JSON-escaped; see
//!   `amika_sandbox::snapshot`). A hit fails the snapshot naming the files and the secrets
//!   (never a value) and leaves the sandbox as it was (restarted if it ran); otherwise the
//!   snapshot is `active` and the source sandbox deleted. **`full`** archives as is, keeps the
//!   source, and is audited as an unsafe capture.
//! - **Files**: `<data>/snapshots/<id>.snap`, written as `<id>.snap.partial` and renamed once
//!   complete and synced, before the row says `active`. A server killed during a capture leaves
//!   a `capturing` row and a partial file: reconciliation at the next start fails the row and
//!   removes the file ([`Service::reconcile_snapshots`]); the source sandbox is reconciled from
//!   `snapshotting` to `stopped` with the other sandboxes, its files untouched.
//! - **Tenancy**: a user-scope snapshot is its creator's; another user's is "not found", as a
//!   sandbox is. An org-scope snapshot (`scope: org`, org admins, `scrub_and_delete` only) is
//!   seen and started from by every member of its org, and deleted by its org admins.
//! - **Quotas** (`snapshot_quota_mib_per_user`, `..._per_org`): a capture starts only with room
//!   left, and stops, failing the snapshot and leaving the source as it was, once its archive
//!   outgrows what was left ([`capture`]).

mod capture;
mod quota;
mod restore;

pub(crate) use restore::check_snapshot_field;

use std::path::PathBuf;

use amika_sandbox::lifecycle::{check_transition, Operation};
use amika_store::{InjectionRecord, SandboxRow, SnapshotRow, StoreError};
use amika_types::{
    self as t, AgentKind, CredentialType, ErrorCode, SandboxState, Scope, SnapshotMode,
    SnapshotState,
};
use serde_json::json;

use super::audit::Subject;
use super::sandboxes::state_error;
use super::secrets::{forbid_org_write, visible, writable};
use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

/// Longest description accepted.
const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Where the sandbox user's home is, for the paths the scrub preview shows.
const HOME: &str = "/home/amika";

/// The snapshot as the API shows it.
pub(crate) fn snapshot_to_wire(r: &SnapshotRow) -> t::SandboxSnapshot {
    let repo = r.repo.as_ref();
    t::SandboxSnapshot {
        id: r.id.clone(),
        snapshot: r.name.clone(),
        scope: r.scope,
        provider: r.provider.clone(),
        description: r.description.clone(),
        mode: r.mode,
        source_sandbox_id: r.source_sandbox_id.clone(),
        source_sandbox_name: r.source_sandbox_name.clone(),
        repository_id: None,
        repo_name: repo.map(|r| r.name.clone()),
        repo_url: repo.and_then(|r| r.url.clone()),
        branch: repo.and_then(|r| r.branch.clone()),
        base_snapshot: None,
        sandbox_preset: r.preset.clone(),
        sandbox_size: r.size.clone(),
        state: r.state,
        error_message: r.error_message.clone(),
        size_bytes: r.size_bytes,
        user_id: r.user_id.clone(),
        org_id: r.org_id.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// What a sandbox was given, by place: credential files (home-relative) and env var names.
pub(crate) fn injected_places(record: &InjectionRecord) -> (Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    let mut env = Vec::new();
    for c in &record.credentials {
        match (c.kind, c.credential_type) {
            (AgentKind::Claude, CredentialType::ApiKey) => env.push("ANTHROPIC_API_KEY".into()),
            (AgentKind::Claude, CredentialType::Oauth) => {
                files.push(".claude/.credentials.json".into())
            }
            (AgentKind::Codex, CredentialType::ApiKey) => {
                env.push("OPENAI_API_KEY".into());
                files.push(".codex/auth.json".into());
            }
            (AgentKind::Codex, CredentialType::Oauth) => files.push(".codex/auth.json".into()),
            (AgentKind::Github, _) => {}
        }
    }
    env.extend(record.secrets.iter().map(|s| s.env.clone()));
    for list in [&mut files, &mut env] {
        list.sort();
        list.dedup();
    }
    (files, env)
}

/// A new `capturing` snapshot of `source` (its data key is added by the caller).
fn new_row(
    caller: &Caller,
    req: &t::CreateSnapshotRequest,
    source: &SandboxRow,
    mode: SnapshotMode,
) -> SnapshotRow {
    let at = now();
    SnapshotRow {
        id: new_id("snap"),
        org_id: caller.org_id.clone(),
        user_id: caller.user_id.clone(),
        name: req.name.clone(),
        description: req.description.clone().filter(|d| !d.is_empty()),
        scope: req.scope.unwrap_or(Scope::User),
        mode,
        state: SnapshotState::Capturing,
        error_message: None,
        provider: source.provider.clone(),
        source_sandbox_id: Some(source.id.clone()),
        source_sandbox_name: Some(source.name.clone()),
        repo: source.workspace.as_ref().and_then(|w| w.repo.clone()),
        preset: source.options.preset.clone(),
        size: source.options.size.map(|s| s.to_string()),
        size_bytes: None,
        sealed: Default::default(),
        created_at: at,
        updated_at: at,
    }
}

fn check_create(caller: &Caller, req: &t::CreateSnapshotRequest) -> Result<()> {
    if req.scope == Some(Scope::Org) {
        if req.mode == Some(SnapshotMode::Full) {
            return Err(ServiceError::bad_request(
                "an org-scope snapshot is taken with mode scrub_and_delete: a full capture may \
                 hold your secrets, and every member of the org could start a sandbox from it",
            )
            .at("mode"));
        }
        forbid_org_write(caller, Scope::Org, "snapshots").map_err(|e| e.at("scope"))?;
    }
    if req.sandbox_ref.trim().is_empty() {
        return Err(ServiceError::bad_request(
            "sandbox_ref must name the sandbox to capture (its name or id)",
        )
        .at("sandbox_ref"));
    }
    validate::sandbox_name(&req.name).map_err(|e| match e {
        ServiceError::BadRequest { code, message, .. } => {
            ServiceError::invalid(code, message.replace("sandbox name", "snapshot name")).at("name")
        }
        e => e,
    })?;
    if let Some(d) = &req.description {
        if d.chars().count() > MAX_DESCRIPTION_CHARS || d.contains('\0') {
            return Err(ServiceError::bad_request(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters, without NUL"
            ))
            .at("description"));
        }
    }
    Ok(())
}

impl Service {
    /// `<data>/snapshots`, where archives live.
    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.config.data_dir.join("snapshots")
    }

    /// The archive of snapshot `id`, and where it is written until complete.
    pub(crate) fn snapshot_paths(&self, id: &str) -> (PathBuf, PathBuf) {
        let dir = self.snapshots_dir();
        (
            dir.join(format!("{id}.snap")),
            dir.join(format!("{id}.snap.partial")),
        )
    }

    /// A snapshot the caller sees (their own, their org's org-scope ones) by id or name (their
    /// own first); another's is not found.
    pub(crate) async fn find_snapshot(&self, caller: &Caller, r: &str) -> Result<SnapshotRow> {
        let by_id = if r.starts_with("snap_") {
            match self.store.get_snapshot(r).await {
                Ok(row) if visible(caller, &row.org_id, &row.user_id, row.scope) => Some(row),
                Ok(_) | Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        match by_id {
            Some(row) => Ok(row),
            None => match self
                .store
                .find_visible_snapshot(&caller.org_id, &caller.user_id, r)
                .await
            {
                Ok(row) => Ok(row),
                Err(StoreError::NotFound(_)) => {
                    Err(ServiceError::NotFound(format!("snapshot {r:?}")))
                }
                Err(e) => Err(e.into()),
            },
        }
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn list_snapshots(
        &self,
        caller: &Caller,
        source_sandbox_id: Option<&str>,
        repository_id: Option<&str>,
    ) -> Result<t::SnapshotList> {
        let rows = self
            .store
            .list_visible_snapshots(&caller.org_id, &caller.user_id)
            .await?;
        let items = rows
            .iter()
            .filter(|r| {
                source_sandbox_id.is_none_or(|s| {
                    r.source_sandbox_id.as_deref() == Some(s)
                        || r.source_sandbox_name.as_deref() == Some(s)
                })
            })
            // No snapshot has a repository id (amika has no repository objects): a filter on
            // one matches none.
            .filter(|_| repository_id.is_none_or(str::is_empty))
            .map(snapshot_to_wire)
            .collect();
        Ok(t::SnapshotList { items })
    }

    pub async fn get_snapshot(&self, caller: &Caller, r: &str) -> Result<t::SandboxSnapshot> {
        Ok(snapshot_to_wire(&self.find_snapshot(caller, r).await?))
    }

    /// What a `scrub_and_delete` capture of the sandbox removes: credential files and env vars,
    /// by path and name.
    pub async fn scrub_preview(&self, caller: &Caller, sandbox: &str) -> Result<t::ScrubPreview> {
        // Blank in the document's sense (`\S` of ECMAScript, which U+0085 is not).
        if sandbox.chars().all(|c| c.is_ascii_whitespace()) {
            return Err(
                ServiceError::bad_request("sandbox must name a sandbox (its name or id)")
                    .at("sandbox"),
            );
        }
        let row = self.find_sandbox(caller, sandbox).await?;
        let (files, env_vars) = injected_places(&row.injection);
        Ok(t::ScrubPreview {
            files: files.iter().map(|f| format!("{HOME}/{f}")).collect(),
            env_vars,
        })
    }

    /// Start a capture: the snapshot is `capturing` and its source `snapshotting` when this
    /// answers; the capture goes on in the background (see `capture`).
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, snapshot = %req.name))]
    pub async fn create_snapshot(
        &self,
        caller: &Caller,
        req: t::CreateSnapshotRequest,
    ) -> Result<t::SandboxSnapshot> {
        check_create(caller, &req)?;
        let mode = req.mode.unwrap_or(SnapshotMode::ScrubAndDelete);
        let source = self
            .find_sandbox(caller, req.sandbox_ref.trim())
            .await
            .map_err(|e| e.at("sandbox_ref"))?;
        if self.provider.home_dir(&source.id).is_none() {
            return Err(ServiceError::Unavailable(format!(
                "the {} provider cannot take snapshots",
                self.provider.name()
            )));
        }
        check_transition(source.state, Operation::Snapshot).map_err(|e| {
            state_error(format!(
                "{e}: a snapshot is taken of a running or stopped sandbox"
            ))
            .at("sandbox_ref")
        })?;
        let mut row = new_row(caller, &req, &source, mode);
        self.make_room(caller, &row).await?;
        let budget = self.snapshot_budget(caller).await?;
        let (_, sealed) = self.new_snapshot_key(&row)?;
        row.sealed = sealed;
        self.store
            .insert_snapshot(&row)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => {
                    ServiceError::conflict(ErrorCode::SnapshotExists, m).at("name")
                }
                e => e.into(),
            })?;
        let (source, was_running) = match self.mark_snapshotting(&source).await {
            Ok(marked) => marked,
            Err(e) => {
                let _ = self.store.delete_snapshot(&row.id).await;
                return Err(e);
            }
        };
        let subject = Subject {
            object_type: "snapshot",
            object_id: &row.id,
            object_name: &row.name,
            version: None,
        };
        self.audit(
            caller,
            "snapshot.created",
            subject,
            Some(&source.id),
            json!({"mode": mode, "scope": row.scope, "unsafe": mode == SnapshotMode::Full}),
        )
        .await?;
        let wire = snapshot_to_wire(&row);
        let svc = self.clone();
        let caller = caller.clone();
        tokio::spawn(async move {
            svc.capture_in_background(caller, row, source, was_running, budget)
                .await
        });
        Ok(wire)
    }

    /// A failed snapshot of the caller's of the same name gives way (it is what a retry after a
    /// refused scrub asks for); another of theirs, or an org snapshot for a new org snapshot, is
    /// a conflict. (Another member's org snapshot of that name is only shadowed by a new
    /// user-scope one, as for secrets.)
    async fn make_room(&self, caller: &Caller, new: &SnapshotRow) -> Result<()> {
        let name = &new.name;
        let found = self
            .store
            .find_visible_snapshot(&caller.org_id, &caller.user_id, name)
            .await;
        match found {
            Ok(old) if old.user_id == caller.user_id && old.state == SnapshotState::Failed => {
                self.remove_snapshot(&old).await
            }
            Ok(old) if old.user_id != caller.user_id && new.scope == Scope::User => Ok(()),
            Ok(_) => Err(ServiceError::conflict(
                ErrorCode::SnapshotExists,
                format!(
                    "a snapshot named {name:?} already exists (yours, or in your org): pick another name or delete it first"
                ),
            )
            .at("name")),
            Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Mark the source `snapshotting`, under its lock: the row as marked, and whether it was
    /// running.
    async fn mark_snapshotting(&self, source: &SandboxRow) -> Result<(SandboxRow, bool)> {
        let lock = self.sandbox_lock(&source.id);
        let _guard = lock.lock().await;
        let current = self.store.get_sandbox(&source.id).await?;
        let was_running = current.state == SandboxState::Running;
        match self.transition(&current, Operation::Snapshot, None).await {
            Ok(Some(marked)) => Ok((marked, was_running)),
            Ok(None) => Err(state_error(format!(
                "sandbox {} changed while the snapshot began",
                source.name
            ))),
            Err(e) => Err(e.at("sandbox_ref")),
        }
    }

    /// Delete a snapshot and its archive. A snapshot still capturing cannot be deleted.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, snapshot = %r))]
    pub async fn delete_snapshot(&self, caller: &Caller, r: &str) -> Result<()> {
        let row = self.find_snapshot(caller, r).await?;
        if !writable(caller, &row.org_id, &row.user_id, row.scope) {
            return Err(ServiceError::Forbidden(format!(
                "snapshot {} is an org snapshot: only org admins delete it",
                row.name
            )));
        }
        if row.state == SnapshotState::Capturing {
            return Err(ServiceError::conflict(
                ErrorCode::InvalidState,
                format!(
                    "snapshot {} is still capturing: delete it once it is active or failed",
                    row.name
                ),
            ));
        }
        self.remove_snapshot(&row).await?;
        let subject = Subject {
            object_type: "snapshot",
            object_id: &row.id,
            object_name: &row.name,
            version: None,
        };
        self.audit(caller, "snapshot.deleted", subject, None, json!({}))
            .await
    }

    /// Remove a snapshot's files, then its row.
    async fn remove_snapshot(&self, row: &SnapshotRow) -> Result<()> {
        let (done, partial) = self.snapshot_paths(&row.id);
        for path in [done, partial] {
            match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ServiceError::internal(e))
                }
                _ => {}
            }
        }
        match self.store.delete_snapshot(&row.id).await {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// After a restart: a snapshot still `capturing` was cut short (its server stopped) and is
    /// `failed`; partial archives and archives without an active snapshot are removed. Returns
    /// a line per change, for the log.
    pub async fn reconcile_snapshots(&self) -> Result<Vec<String>> {
        let mut changes = Vec::new();
        let rows = self.store.list_all_snapshots().await?;
        for row in &rows {
            if row.state == SnapshotState::Capturing {
                let mut failed = row.clone();
                failed.state = SnapshotState::Failed;
                failed.error_message =
                    Some("the capture was interrupted: the server stopped during it".into());
                failed.updated_at = now();
                self.store.update_snapshot(&failed).await?;
                changes.push(format!("snapshot {} was capturing: failed", row.name));
            }
        }
        let entries = match std::fs::read_dir(self.snapshots_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(changes),
            Err(e) => return Err(ServiceError::internal(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = name.strip_suffix(".snap").is_some_and(|id| {
                rows.iter()
                    .any(|r| r.id == id && r.state == SnapshotState::Active)
            });
            if !keep {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => changes.push(format!("removed snapshot file {name}")),
                    Err(e) => changes.push(format!("could not remove snapshot file {name}: {e}")),
                }
            }
        }
        Ok(changes)
    }
}
