//! Rows as the store keeps them. Secret material appears only as [`Sealed`] ciphertext.

use std::collections::BTreeMap;

use amika_types::{
    AgentCredentialRef, AgentKind, CredentialType, NetworkMode, RepoConfigApplied,
    ResolvedAgentCredential, SandboxSize, SandboxState, Scope, SetupOutcome,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Envelope ciphertext of one value: the vault's own type, kept on rows as it is. The store
/// depends on the vault for this type only (it never seals or opens), so there is one `Sealed`
/// and no copy between two.
pub use amika_vault::Sealed;

/// The three columns of a [`Sealed`] value, as every sealed table names them; rows decode
/// through it (`#[sqlx(flatten, try_from = "SealedColumns")]`) since `Sealed` is the vault's.
#[derive(sqlx::FromRow)]
pub(crate) struct SealedColumns {
    kek_id: String,
    wrapped_key: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl From<SealedColumns> for Sealed {
    fn from(c: SealedColumns) -> Self {
        Sealed {
            kek_id: c.kek_id,
            wrapped_key: c.wrapped_key,
            ciphertext: c.ciphertext,
        }
    }
}

/// Which table a sealed value lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    Secret,
    Credential,
    Canary,
    /// A snapshot archive's data key (the archive stays on disk, untouched by a rotation).
    Snapshot,
}

/// A sealed value with what is needed to rebuild its AAD (key rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRef {
    pub table: SealedTable,
    /// The credential's kind (part of its AAD); `None` outside the credentials table.
    pub kind: Option<AgentKind>,
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub version: i64,
    pub sealed: Sealed,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// Hex SHA-256 of the plaintext key; the plaintext is never stored.
    pub hash: String,
    /// e.g. `amk_ab…wxyz`, safe to show.
    pub obfuscated: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    pub id: String,
    pub org_id: String,
    /// The creator; for user scope, the owner.
    pub user_id: String,
    pub name: String,
    pub description: Option<String>,
    pub scope: Scope,
    pub version: i64,
    pub sealed: Sealed,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub kind: AgentKind,
    pub credential_type: CredentialType,
    pub name: String,
    pub scope: Scope,
    pub is_default: bool,
    pub version: i64,
    /// OAuth `expiresAt`, kept in clear so the resolver can pass over expired tokens without
    /// decrypting (it is not secret).
    pub expires_at: Option<DateTime<Utc>>,
    pub sealed: Sealed,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A sandbox. The JSON columns are decoded once, by the store: a row whose column does not
/// decode is [`crate::StoreError::Corrupt`], never a default.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    pub provider: String,
    pub state: SandboxState,
    pub error_message: Option<String>,
    /// Env var → secret name, as requested.
    pub secret_env_vars: BTreeMap<String, String>,
    /// The `agent_credentials` refs as requested (re-resolved ids live in `injection`).
    pub agent_credentials: Vec<AgentCredentialRef>,
    /// The resolution as returned on the wire.
    pub resolved_agent_credentials: Vec<ResolvedAgentCredential>,
    /// Secret names injected, sorted.
    pub secret_names: Vec<String>,
    /// What was injected, so a restart can inject current values again.
    pub injection: InjectionRecord,
    /// Network mode and limits, for the provider.
    pub options: SandboxOptions,
    /// The repository, its config and the setup script; `None` for an empty workspace.
    pub workspace: Option<WorkspaceRecord>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A sandbox's identity and state, read without its JSON columns: what reconciling or deleting
/// a sandbox needs, so a row whose other columns do not decode can still be stopped and
/// removed (everything that shows or starts it still fails with
/// [`crate::StoreError::Corrupt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxHead {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    pub state: SandboxState,
    pub error_message: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl SandboxRow {
    /// Its identity and state.
    pub fn head(&self) -> SandboxHead {
        SandboxHead {
            id: self.id.clone(),
            org_id: self.org_id.clone(),
            user_id: self.user_id.clone(),
            name: self.name.clone(),
            state: self.state,
            error_message: self.error_message.clone(),
            updated_at: self.updated_at,
        }
    }
}

/// What went into a sandbox: ids and versions, never values. Stored on the row so a restart
/// can inject the current values again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectionRecord {
    pub secrets: Vec<InjectedSecretRef>,
    pub credentials: Vec<InjectedCredentialRef>,
}

/// A secret injected as an env var, at the version it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedSecretRef {
    pub env: String,
    pub secret_id: String,
    pub name: String,
    pub version: i64,
}

/// An agent credential injected, at the version it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedCredentialRef {
    pub kind: AgentKind,
    pub credential_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub credential_type: CredentialType,
    pub version: i64,
}

/// A sandbox's provider options. No `Default`: a missing or unreadable network mode must never
/// become `egress` for a sandbox created with `none`. Fields added later default when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxOptions {
    pub network: NetworkMode,
    pub memory_mib: Option<u64>,
    pub pids: Option<u64>,
    /// Plain env vars (request and repo config), set in every process of the sandbox.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_vars: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<SandboxSize>,
    /// Minutes without activity before the sandbox is stopped / deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_stop_interval: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete_interval: Option<f64>,
}

impl SandboxOptions {
    /// Options with these provider settings and nothing else.
    pub fn new(network: NetworkMode, memory_mib: Option<u64>, pids: Option<u64>) -> Self {
        SandboxOptions {
            network,
            memory_mib,
            pids,
            env_vars: BTreeMap::new(),
            preset: None,
            size: None,
            auto_stop_interval: None,
            auto_delete_interval: None,
        }
    }
}

/// Where a sandbox's workspace came from and what was done to it before it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    /// The snapshot the sandbox was started from (as the create named it), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The repository, when the workspace holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_config: Option<RepoConfigApplied>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<SetupOutcome>,
}

/// A repository in a sandbox's workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRecord {
    /// What was cloned (or the uploaded repository's origin); `None` for an upload without one.
    pub url: Option<String>,
    /// Its directory under `~/workspace`.
    pub name: String,
    pub branch: Option<String>,
    pub commit: Option<String>,
}

/// A snapshot: its archive lives in the data dir, encrypted under its own data key, stored
/// here wrapped (`sealed.wrapped_key`; `sealed.ciphertext` stays empty).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    pub description: Option<String>,
    pub scope: amika_types::Scope,
    pub mode: amika_types::SnapshotMode,
    pub state: amika_types::SnapshotState,
    pub error_message: Option<String>,
    pub provider: String,
    pub source_sandbox_id: Option<String>,
    pub source_sandbox_name: Option<String>,
    pub repo: Option<RepoRecord>,
    pub preset: Option<String>,
    pub size: Option<String>,
    pub size_bytes: Option<i64>,
    pub sealed: Sealed,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Bytes of snapshot archives a user holds, and their whole org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotUsage {
    pub user_bytes: u64,
    pub org_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub object_name: String,
    pub version: Option<i64>,
    pub sandbox_id: Option<String>,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A conversation with one agent in one sandbox. Goes with its sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSessionRow {
    pub id: String,
    pub sandbox_id: String,
    pub org_id: String,
    pub user_id: String,
    pub agent: AgentKind,
    /// The agent's own id of the conversation (`--resume` takes it); `None` until it gave one.
    pub agent_session_id: Option<String>,
    /// The credential the agent ran with (its name, never its value).
    pub credential_name: String,
    /// Its recorded status (a send in flight shows as `running` whatever is stored).
    pub status: amika_types::AgentSessionStatus,
    /// When a client marked it `completed`, `failed` or `cancelled`.
    pub ended_at: Option<DateTime<Utc>>,
    /// The client's own metadata (a JSON object, already redacted).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One send to an agent (a message and what came back; the job API calls it a job). Every text
/// is stored redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTurnRow {
    pub id: String,
    pub session_id: String,
    pub sandbox_id: String,
    pub state: amika_types::AgentJobState,
    pub message: String,
    pub response: Option<String>,
    pub is_error: bool,
    pub error_code: Option<String>,
    pub exit_code: Option<i32>,
    pub is_new_session: bool,
    pub agent_session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub duration_ms: Option<i64>,
    /// Past this, a turn still pending or running is given up for lost (its server stopped).
    pub deadline_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
