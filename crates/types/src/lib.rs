//! The wire contract of amika's REST API (`/api/v0beta1`).
//!
//! Everything that crosses HTTP is defined here once, shared by the server, the typed client,
//! the CLI and (through the generated OpenAPI document) the TypeScript SDK. Plain serde structs:
//! no I/O, no secret-holding types — a request that carries a secret value carries it as a
//! `String` only for the duration of (de)serialisation; the server moves it into a zeroizing type
//! at once.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Base path of every API route.
pub const API_BASE: &str = "/api/v0beta1";

/// Header carrying the per-request trace id.
pub const TRACE_HEADER: &str = "x-trace-id";

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident $what:literal { $($variant:ident => $s:literal $(| $alias:literal)*),+ $(,)? } expected $expected:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
        // utoipa does not see the variant renames below (their literals come from a macro
        // argument) and would document `ApiKey`; every wire spelling is the variant's snake_case,
        // which `rename_all` gives it. The openapi test checks the two agree.
        #[serde(rename_all = "snake_case")]
        pub enum $name { $(#[serde(rename = $s)] $variant),+ }

        impl $name {
            /// Every variant, in sort order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The canonical wire spelling.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// What a parse error lists as accepted.
            pub const EXPECTED: &'static str = $expected;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s $(| $alias)* => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {:?}: expected {}", $what, other, $expected)),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum!(
    /// Who can see a secret or credential: its owner only, or every member of the org.
    Scope "scope" { User => "user", Org => "org" } expected "user or org"
);

string_enum!(
    /// The kinds of provider credential amika keeps: the agents it gives credentials to
    /// (`claude`, `codex`) and `github`, whose token clones private repositories and is never
    /// injected as an agent credential.
    AgentKind "kind" { Claude => "claude", Codex => "codex", Github => "github" } expected "claude, codex or github"
);

/// An agent's name where only an agent fits (`claude` or `codex`): `github` and unknown kinds
/// are refused in those words.
fn agent_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<AgentKind>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    match s.parse::<AgentKind>() {
        Ok(kind) if kind.is_agent() => Ok(Some(kind)),
        _ => Err(serde::de::Error::custom(format!(
            "unknown agent {s:?}: expected claude or codex"
        ))),
    }
}

/// The kind of an `agent_credentials` entry: an unknown one is refused naming the agents
/// (`github` parses, for the resolver to say where a github credential goes instead).
fn agent_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AgentKind, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!("unknown agent {s:?}: expected claude or codex"))
    })
}

impl AgentKind {
    /// The agents: the kinds a sandbox resolves and injects (`agent_credentials`).
    pub const AGENTS: &'static [AgentKind] = &[AgentKind::Claude, AgentKind::Codex];

    /// Whether this kind is an agent (not `github`).
    pub fn is_agent(self) -> bool {
        self != AgentKind::Github
    }
}

string_enum!(
    /// How an agent credential authenticates. `api-key` is accepted as a spelling of `api_key`.
    CredentialType "credential type" { ApiKey => "api_key" | "api-key", Oauth => "oauth" } expected "oauth, api_key or api-key"
);

impl CredentialType {
    /// Default-order rank: OAuth is preferred over an API key.
    pub fn preference(self) -> u8 {
        match self {
            CredentialType::Oauth => 0,
            CredentialType::ApiKey => 1,
        }
    }
}

string_enum!(
    /// Lifecycle of a sandbox. `running` is the ready state clients wait for.
    SandboxState "sandbox state" {
        Deleting => "deleting",
        Failed => "failed",
        Initializing => "initializing",
        Running => "running",
        Snapshotting => "snapshotting",
        Stopped => "stopped",
        Stopping => "stopping",
    } expected "initializing, running, stopping, stopped, snapshotting, failed or deleting"
);

string_enum!(
    /// Network mode of a sandbox.
    NetworkMode "network mode" { Egress => "egress", Host => "host", None => "none" } expected "egress, none or host"
);

// After `string_enum!`, which it uses.
mod error;
pub use error::{AgentErrorCode, ErrorBody, ErrorCode, ErrorDetail};
mod sessions;
pub use sessions::{
    AgentDeltaKind, AgentJobState, AgentSendJobResponse, AgentSendRequest, AgentSendResponse,
    AgentSession, AgentSessionStatus, AgentSessionsList, AgentStreamDelta, AgentStreamEvent,
    AgentStreamStatus, AgentTurn, CreateSessionRequest, UpdateSessionRequest,
};
mod secret_batch;
pub use secret_batch::{
    SecretBatchAction, SecretBatchEntry, SecretBatchRequest, SecretBatchResponse, SecretBatchResult,
};
mod ssh;
pub use ssh::{
    RevokeSshRequest, SshAccess, SshAccessRequest, SshEndpoint, SshPublicKey, SshPublicKeyRequest,
};
mod snapshot;
pub use snapshot::{
    CreateSnapshotRequest, SandboxSnapshot, ScrubPreview, SnapshotList, SnapshotMode, SnapshotState,
};
mod preset;
pub use preset::{
    AgentPermission, Preset, PresetInstallEvent, PresetInstallEventKind, PresetList, PresetRemoval,
    PresetVersion, PresetVersionInUse,
};

/// `{"ok": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OkStatus {
    pub ok: bool,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

// ---------------------------------------------------------------- secrets

/// `POST /secrets`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecretRequest {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PUT /secrets/{id}`: every field optional; a new `value` stores a new version.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecretRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A generic secret, never with its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecretSummary {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    pub description: Option<String>,
    pub scope: Scope,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST .../reveal`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevealSecretResponse {
    pub value: String,
}

// ---------------------------------------------------------------- agent credentials

/// `POST /secrets/{kind}`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialRequest {
    pub name: String,
    pub value: String,
    #[serde(rename = "type")]
    pub credential_type: CredentialType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Make this the caller's default credential of its kind (user scope only).
    #[serde(default)]
    pub is_default: bool,
}

/// `PUT /secrets/{kind}/{id}` (ours): a new `value` stores a new version.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredentialRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<CredentialType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

/// An agent credential, never with its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CredentialSummary {
    pub id: String,
    pub kind: AgentKind,
    pub name: String,
    #[serde(rename = "type")]
    pub credential_type: CredentialType,
    pub scope: Scope,
    pub is_default: bool,
    pub org_id: String,
    pub user_id: String,
    pub version: i64,
    /// For OAuth credentials, the token's `expiresAt` when the document has one.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- api keys (camelCase as in the reference)

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySummary {
    pub id: String,
    pub name: String,
    pub obfuscated_value: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The one answer that carries a key's plaintext: its creation.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyWithValue {
    #[serde(flatten)]
    pub summary: ApiKeySummary,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub after: Option<String>,
    pub has_next_page: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListApiKeysResponse {
    pub data: Vec<ApiKeySummary>,
    pub page_info: PageInfo,
}

// ---------------------------------------------------------------- users and orgs (admin)

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user_id: String,
    pub user_name: String,
    pub org_id: String,
    pub org_name: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub name: String,
    /// Org name or id.
    pub org: String,
    #[serde(default)]
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub name: String,
    pub org_id: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

/// A new user with their first API key (shown once).
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub user: User,
    pub api_key: String,
}

// ---------------------------------------------------------------- audit

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    /// e.g. `secret.created`, `secret.revealed`, `credential.injected`, `sandbox.created`.
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub object_name: String,
    pub version: Option<i64>,
    pub sandbox_id: Option<String>,
    /// Non-secret detail (names, ids, versions); never a value.
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- sandboxes

/// One agent-credential reference of a create request: `{kind, name?, type?, none?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentCredentialRef {
    #[serde(deserialize_with = "agent_kind")]
    pub kind: AgentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<CredentialType>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub none: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `POST /sandboxes`. Every field a client of the public Amika API sends is accepted; fields of
/// the reference schema that amika has no use for are not (unknown fields are rejected with a 400
/// naming them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSandboxRequest {
    /// Unique among the caller's sandboxes; `""` or absent: a generated, readable name.
    #[serde(default)]
    pub name: String,
    /// Env var → secret name.
    #[serde(default)]
    pub secret_env_vars: BTreeMap<String, String>,
    #[serde(default)]
    pub agent_credentials: Vec<AgentCredentialRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkMode>,
    /// Memory limit in MiB (overrides the one `size` implies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Maximum number of processes (overrides the one `size` implies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// A repository the server clones into `~/workspace/<repo-name>`: `https://`, `http://`,
    /// `ssh://`, `git://`, `file:///` or `user@host:path`. `""` or absent: no repository (unless
    /// `workspace_upload` names one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// A repository the client uploaded (`POST /workspace-uploads`), used instead of `repo_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_upload: Option<String>,
    /// The branch to check out; default the repository's default branch (for an upload, its
    /// `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A new branch created from `branch` and checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_branch_name: Option<String>,
    /// The secret (or `github` credential) whose value is the clone's token over HTTPS. Default:
    /// the caller's default `github` credential, for the server's GitHub hosts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_credential: Option<String>,
    /// Plain env vars (not secrets: stored and shown as given).
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
    /// Env vars of the repository's `.amika/config.toml` to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_repo_env_var_names: Vec<String>,
    /// A script run inside the sandbox before it is `running` (instead of the repository's
    /// `setup_script`); `""` means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_script_text: Option<String>,
    /// Run no setup script at all.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_setup_script: bool,
    /// Seconds before a setup script still running is killed (default 1800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_timeout_secs: Option<u64>,
    /// A preset this server has (`GET /presets`); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// `xs`, `s`, `m`, `l` or `xl`: memory and process limits (see [`SandboxSize`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<SandboxSize>,
    /// Start from this snapshot (its name or id): home and workspace are the snapshot's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Minutes without exec or agent activity after which a running sandbox is stopped; 0 or
    /// absent: never. At most 10080 (a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_stop_interval: Option<f64>,
    /// Minutes without exec or agent activity after which the sandbox is deleted; -1, 0 or
    /// absent: never. At most 10080.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete_interval: Option<f64>,
}

string_enum!(
    /// A sandbox's size: its memory and process limits.
    /// `xs` 512 MiB / 256, `s` 1024 MiB / 512, `m` 2048 MiB / 1024, `l` 4096 MiB / 2048,
    /// `xl` 8192 MiB / 4096.
    SandboxSize "size" { Xs => "xs", S => "s", M => "m", L => "l", Xl => "xl" } expected "xs, s, m, l or xl"
);

impl SandboxSize {
    /// (memory in MiB, processes).
    pub fn limits(self) -> (u64, u64) {
        match self {
            SandboxSize::Xs => (512, 256),
            SandboxSize::S => (1024, 512),
            SandboxSize::M => (2048, 1024),
            SandboxSize::L => (4096, 2048),
            SandboxSize::Xl => (8192, 4096),
        }
    }
}

/// A repository's directory name under `~/workspace` (the `repo_name` of an upload): 1 to 100
/// letters, digits, `.`, `_` or `-`, not `.` or `..`. The error says what is expected.
pub fn check_repo_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid repository name {name:?}: expected 1 to 100 letters, digits, '.', '_' or '-'"
        ))
    }
}

/// The directory a repository URL names: `https://host/org/repo.git` → `repo`,
/// `git@host:org/repo` → `repo`; `None` when the last segment is no usable name
/// ([`check_repo_name`]).
pub fn repo_name_from_url(url: &str) -> Option<String> {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()?
        .trim_end_matches(".git");
    check_repo_name(last).ok().map(|()| last.to_string())
}

/// `POST /workspace-uploads`: a repository sent by a client (a `git bundle`), kept by the server
/// until a create uses it or it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceUpload {
    pub id: String,
    /// What the workspace directory will be called.
    pub repo_name: String,
    /// The repository's origin as the client knows it (shown on the sandbox; never cloned).
    pub origin_url: Option<String>,
    pub size_bytes: u64,
    pub expires_at: DateTime<Utc>,
}

/// What a repository's `.amika/config.toml` contributed to a sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoConfigApplied {
    /// Plain env vars it set (the request's own won where both named one).
    pub env_vars: Vec<String>,
    /// Env vars it mapped to secrets.
    pub secret_env_vars: Vec<String>,
    /// Kinds whose credential it chose.
    pub agent_credentials: Vec<AgentKind>,
    /// Its setup script, relative to the repository's root.
    pub setup_script: Option<String>,
}

string_enum!(
    /// Where a setup script stands.
    SetupState "setup state" {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        TimedOut => "timed_out",
        Skipped => "skipped",
    } expected "pending, running, succeeded, failed, timed_out or skipped"
);

/// A sandbox's setup script and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetupOutcome {
    /// `request` (`setup_script_text`) or `repo_config` (the repository's `setup_script`).
    pub source: String,
    /// The repository's script path, for `repo_config`.
    pub script: Option<String>,
    #[schema(value_type = String)]
    pub state: SetupState,
    pub exit_code: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Outcome of resolving one agent kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionOutcome {
    Resolved,
    Skipped,
}

/// One row of `resolved_agent_credentials` (DESIGN §4 table: exactly these strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResolvedAgentCredential {
    pub kind: AgentKind,
    pub outcome: ResolutionOutcome,
    /// The credential's name, `""` when skipped.
    pub name: String,
    /// `oauth` / `api_key`, `""` when skipped.
    #[serde(rename = "type")]
    pub credential_type: String,
    /// `request:name`, `request:type`, `repo_config`, `user_default`, `org_default` or
    /// `no-credential`.
    // Documented as a string, as it always was: the wire and the SDK's types stay as they are.
    #[schema(value_type = String)]
    pub source: ResolutionSource,
    pub reason: String,
}

string_enum!(
    /// Why a kind got the credential it got (DESIGN §4): the resolver's rule that decided, or
    /// `no-credential` when the kind was skipped. Serialized as exactly these strings. The
    /// OpenAPI document shows the field as a string: this type's derived schema would list the
    /// variants' snake_case (`request_name`), not these spellings.
    ResolutionSource "resolution source" {
        RequestName => "request:name",
        RequestType => "request:type",
        UserDefault => "user_default",
        RepoConfig => "repo_config",
        OrgDefault => "org_default",
        NoCredential => "no-credential",
    } expected "request:name, request:type, repo_config, user_default, org_default or no-credential"
);

/// A sandbox. Keys of the reference schema that do not apply are present and null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sandbox {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub org_id: String,
    pub provider: String,
    pub provider_sandbox_id: Option<String>,
    pub provider_url: Option<String>,
    pub amika_opencode_web: Option<String>,
    pub repo_name: Option<String>,
    pub repo_provider: Option<String>,
    pub repo_id: Option<String>,
    pub repo_url: Option<String>,
    pub branch: Option<String>,
    pub commit_hash: Option<String>,
    pub snapshot: Option<String>,
    pub current_session_id: Option<String>,
    pub services: Option<Vec<serde_json::Value>>,
    pub state: SandboxState,
    pub error_message: Option<String>,
    pub network: NetworkMode,
    pub memory_mib: Option<u64>,
    pub pids: Option<u64>,
    pub secret_names: Vec<String>,
    pub resolved_agent_credentials: Vec<ResolvedAgentCredential>,
    /// Plain env vars set in the sandbox (request and repo config), values as given.
    pub env_vars: BTreeMap<String, String>,
    pub preset: Option<String>,
    #[schema(value_type = Option<String>)]
    pub size: Option<SandboxSize>,
    pub auto_stop_interval: Option<f64>,
    pub auto_delete_interval: Option<f64>,
    /// What the repository's `.amika/config.toml` contributed; null without one.
    pub repo_config: Option<RepoConfigApplied>,
    /// The setup script and how it went; null when none ran.
    pub setup: Option<SetupOutcome>,
    /// Things the create did that may not be what was meant (on the create's answer only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /sandboxes/{id}/exec` (an extension of ours). Output is relayed redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// Working directory inside the sandbox; defaults to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Seconds before the command is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// One frame of the streamed exec answer (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "stream", rename_all = "snake_case")]
pub enum ExecFrame {
    Stdout { data: String },
    Stderr { data: String },
    Exit { code: i32 },
    Error { message: String },
}

/// `POST /sandboxes/resolve-preview`: what a create would resolve to, creating nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResolutionPreview {
    pub secret_names: Vec<String>,
    pub resolved_agent_credentials: Vec<ResolvedAgentCredential>,
    /// What the repository's `.amika/config.toml` would contribute; null without one.
    #[serde(default)]
    pub repo_config: Option<RepoConfigApplied>,
    /// Where an injection would not do what the report says (an env var beside a credential
    /// that implies it), as a create would warn.
    #[serde(default)]
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------- agent send (messages to the agent in a sandbox)

/// `Debug` for a type that carries a secret value: its other fields as usual, the named ones
/// as `[REDACTED]`, so a `{:?}` in a log or a panic never prints a value.
macro_rules! debug_hiding {
    ($ty:ident { $($field:ident),* } hides $($secret:ident),+) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    $(.field(stringify!($secret), &"[REDACTED]"))+
                    .finish()
            }
        }
    };
}

debug_hiding!(CreateSecretRequest { name, scope, description } hides value);
debug_hiding!(UpdateSecretRequest { name, scope, description } hides value);
debug_hiding!(RevealSecretResponse {} hides value);
debug_hiding!(CreateCredentialRequest { name, credential_type, scope, is_default } hides value);
debug_hiding!(UpdateCredentialRequest { credential_type, is_default } hides value);
debug_hiding!(ApiKeyWithValue { summary } hides value);
debug_hiding!(CreatedUser { user } hides api_key);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_spelling_is_accepted_and_output_is_api_key() {
        let t: CredentialType = serde_json::from_str("\"api-key\"").unwrap();
        assert_eq!(t, CredentialType::ApiKey);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"api_key\"");
        assert_eq!(
            "api_key".parse::<CredentialType>().unwrap(),
            CredentialType::ApiKey
        );
    }

    #[test]
    fn repository_names_come_from_the_url() {
        for (url, name) in [
            ("https://github.com/org/amika.git", Some("amika")),
            ("https://github.com/org/amika/", Some("amika")),
            ("git@github.com:org/my-repo.git", Some("my-repo")),
            ("ssh://git@host/org/r_1", Some("r_1")),
            ("file:///srv/git/repo.git", Some("repo")),
            ("https://host/", Some("host")),
            ("https://host/org/..", None),
            ("https://host/org/.git", None),
            ("https://host/a%20b", None),
        ] {
            assert_eq!(repo_name_from_url(url).as_deref(), name, "{url}");
        }
    }

    #[test]
    fn repo_names() {
        check_repo_name("amika").unwrap();
        check_repo_name("my_repo-2.0").unwrap();
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(101)] {
            assert!(check_repo_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_kind_names_what_is_expected() {
        let err = "gemini".parse::<AgentKind>().unwrap_err();
        assert!(
            err.contains("\"gemini\"") && err.contains("claude, codex or github"),
            "{err}"
        );
        let err = serde_json::from_str::<AgentKind>("\"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("claude, codex or github"), "{err}");
    }

    #[test]
    fn parse_errors_name_the_thing_in_words_not_the_rust_type() {
        // Was "unknown credentialtype \"password\"" (the lowercased type name).
        let err = "password".parse::<CredentialType>().unwrap_err();
        assert_eq!(
            err,
            "unknown credential type \"password\": expected oauth, api_key or api-key"
        );
        let err = "gemini".parse::<AgentKind>().unwrap_err();
        assert!(err.starts_with("unknown kind \"gemini\""), "{err}");
        let err = "bridge".parse::<NetworkMode>().unwrap_err();
        assert!(err.starts_with("unknown network mode \"bridge\""), "{err}");
    }

    #[test]
    fn create_sandbox_rejects_unknown_fields_by_name() {
        let err = serde_json::from_str::<CreateSandboxRequest>(r#"{"name":"a","colour":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn agent_credential_ref_round_trips_without_empty_fields() {
        let r = AgentCredentialRef {
            kind: AgentKind::Codex,
            name: None,
            credential_type: None,
            none: true,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"kind":"codex","none":true}"#
        );
    }

    #[test]
    fn resolution_sources_keep_their_wire_strings() {
        let wire = [
            (ResolutionSource::RequestName, "request:name"),
            (ResolutionSource::RequestType, "request:type"),
            (ResolutionSource::RepoConfig, "repo_config"),
            (ResolutionSource::UserDefault, "user_default"),
            (ResolutionSource::OrgDefault, "org_default"),
            (ResolutionSource::NoCredential, "no-credential"),
        ];
        assert_eq!(wire.len(), ResolutionSource::ALL.len());
        for (source, s) in wire {
            assert_eq!(serde_json::to_string(&source).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<ResolutionSource>(&format!("\"{s}\"")).unwrap(),
                source
            );
            assert_eq!((source.as_str(), source.to_string()), (s, s.to_string()));
            assert_eq!(s.parse::<ResolutionSource>(), Ok(source));
        }
        assert!("request_name".parse::<ResolutionSource>().is_err());
        assert!(serde_json::from_str::<ResolutionSource>("\"repo\"").is_err());
    }
}

#[cfg(test)]
mod agent_send_tests {
    use super::*;

    #[test]
    fn agent_send_request_rejects_unknown_fields_and_kinds_by_name() {
        let err = serde_json::from_str::<AgentSendRequest>(r#"{"message":"hi","sessionId":"s"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sessionId"), "{err}");
        let err = serde_json::from_str::<AgentSendRequest>(r#"{"message":"hi","agent":"gemini"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"gemini\"") && err.contains("claude or codex"),
            "{err}"
        );
        let err = serde_json::from_str::<AgentSendRequest>(r#"{"message":"hi","agent":"github"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown agent \"github\": expected claude or codex"),
            "{err}"
        );
    }

    #[test]
    fn a_reference_client_request_is_accepted() {
        // The reference schema's fields, nothing else.
        let req: AgentSendRequest = serde_json::from_str(
            r#"{"message":"add tests","agent":"codex","session_id":"ses_1","new_session":false}"#,
        )
        .unwrap();
        assert_eq!(req.agent, Some(AgentKind::Codex));
        assert_eq!(req.session_id.as_deref(), Some("ses_1"));
        assert_eq!(
            serde_json::to_string(&AgentSendRequest {
                message: "m".into(),
                ..Default::default()
            })
            .unwrap(),
            r#"{"message":"m"}"#
        );
    }

    #[test]
    fn job_states_have_their_wire_spellings() {
        assert_eq!(
            serde_json::to_string(&AgentJobState::Pending).unwrap(),
            "\"pending\""
        );
        assert_eq!("done".parse::<AgentJobState>(), Ok(AgentJobState::Done));
    }

    #[test]
    fn debug_of_value_carrying_types_never_prints_the_value() {
        let v = "sk-debug-must-not-show";
        let shown = [
            format!(
                "{:?}",
                CreateSecretRequest {
                    name: "N".into(),
                    value: v.into(),
                    scope: None,
                    description: None
                }
            ),
            format!(
                "{:?}",
                UpdateSecretRequest {
                    value: Some(v.into()),
                    ..Default::default()
                }
            ),
            format!("{:?}", RevealSecretResponse { value: v.into() }),
            format!(
                "{:?}",
                CreateCredentialRequest {
                    name: "c".into(),
                    value: v.into(),
                    credential_type: CredentialType::ApiKey,
                    scope: None,
                    is_default: false
                }
            ),
            format!(
                "{:?}",
                UpdateCredentialRequest {
                    value: Some(v.into()),
                    ..Default::default()
                }
            ),
        ];
        for s in &shown {
            assert!(!s.contains(v) && s.contains("[REDACTED]"), "{s}");
        }
        assert!(
            shown[0].contains("name: \"N\""),
            "other fields still show: {}",
            shown[0]
        );
    }
}
