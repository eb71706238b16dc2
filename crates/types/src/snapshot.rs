//! Snapshots on the wire (`/sandbox-snapshots`, DESIGN §11): a sandbox's home and workspace
//! captured as an encrypted archive, to start new sandboxes from. The paths and fields are the
//! public Amika API's, so that its SDK and CLI work against amika unchanged.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

string_enum!(
    /// How a snapshot is taken. `scrub_and_delete` (the default) removes every injected
    /// credential file and env var, refuses to capture when any injected value is still found in
    /// what would be captured, and deletes the source sandbox once captured; `full` captures as
    /// is (unsafe: whatever the agent wrote down is kept) and keeps the source.
    SnapshotMode "snapshot mode" {
        Full => "full",
        ScrubAndDelete => "scrub_and_delete",
    } expected "scrub_and_delete or full"
);

string_enum!(
    /// Lifecycle of a snapshot: `capturing` until its archive is complete, then `active`;
    /// `failed` (with `error_message`) when the capture was refused or broke.
    SnapshotState "snapshot state" {
        Active => "active",
        Capturing => "capturing",
        Failed => "failed",
    } expected "capturing, active or failed"
);

/// A snapshot. Keys of the reference that do not apply here are present and null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxSnapshot {
    /// Its id (`snap_...`).
    pub id: String,
    /// Its slug: the name given at creation, unique per user (and, for org scope, per org);
    /// what `snapshot` of a sandbox create and `/sandbox-snapshots/{ref}` take (the id works
    /// too). By name, the caller's own snapshot wins over an org snapshot of the same name.
    pub snapshot: String,
    /// `user` (only its creator sees it) or `org` (every member of the org sees it and can start
    /// sandboxes from it; org admins create and delete it).
    pub scope: crate::Scope,
    pub provider: String,
    pub description: Option<String>,
    pub mode: SnapshotMode,
    pub source_sandbox_id: Option<String>,
    pub source_sandbox_name: Option<String>,
    pub repository_id: Option<String>,
    /// The repository's directory under `~/workspace`, when the source had one.
    pub repo_name: Option<String>,
    pub repo_url: Option<String>,
    pub branch: Option<String>,
    pub base_snapshot: Option<String>,
    pub sandbox_preset: Option<String>,
    pub sandbox_size: Option<String>,
    pub state: SnapshotState,
    pub error_message: Option<String>,
    /// Bytes of the encrypted archive (null until captured).
    pub size_bytes: Option<i64>,
    pub user_id: String,
    pub org_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /sandbox-snapshots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshotRequest {
    /// The sandbox to capture: its id or name.
    pub sandbox_ref: String,
    /// The snapshot's name: 1 to 63 characters, letters, digits, `-`, `_`, `.`, starting with a
    /// letter or digit.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default `scrub_and_delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SnapshotMode>,
    /// Default `user`. `org` shares the snapshot with every member of the org: org admins only,
    /// and only with `scrub_and_delete` (a `full` capture may hold the creator's secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::Scope>,
}

/// `GET /sandbox-snapshots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotList {
    pub items: Vec<SandboxSnapshot>,
}

/// `GET /sandbox-snapshots/scrub-preview?sandbox=REF`: what a `scrub_and_delete` capture of the
/// sandbox removes, by path and name only (never a value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScrubPreview {
    /// Injected credential files, as paths in the sandbox (`/home/amika/.claude/.credentials.json`).
    pub files: Vec<String>,
    /// Injected env vars (secrets and agent keys).
    pub env_vars: Vec<String>,
}
