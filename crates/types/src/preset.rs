//! Presets on the wire: `GET /presets`, the NDJSON lines of `POST /presets/{name}/install`, and
//! what `DELETE /presets/{name}` removed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A preset this server knows: a named set of tools installed into a versioned, read-only
/// layer, mounted into sandboxes created with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Preset {
    pub name: String,
    pub description: String,
    /// The npm packages this server pins, with their exact versions.
    pub packages: BTreeMap<String, String>,
    /// Commands the layer puts on the sandbox's `PATH`.
    pub bin: Vec<String>,
    /// The version id of the pinned packages (what an install or update installs).
    pub current: String,
    /// Whether the current version is installed.
    pub installed: bool,
    /// Whether a create without `preset` gets this one (server config `default_preset`).
    pub default: bool,
    /// Every installed version, newest first; sandboxes keep the version they were created
    /// with.
    pub versions: Vec<PresetVersion>,
}

/// One installed version of a preset (a layer in the data dir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresetVersion {
    pub id: String,
    pub packages: BTreeMap<String, String>,
    pub installed_at: DateTime<Utc>,
    /// The Node.js that runs the packages' scripts (the host's `/usr/bin/node`), as
    /// `node --version` printed it at install time.
    pub node: String,
    /// Whether this is the version of the pinned packages.
    pub current: bool,
}

/// `GET /presets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresetList {
    pub presets: Vec<Preset>,
    /// How each agent is allowed to act when `agent-send` runs it (server config
    /// `agent_permissions`).
    pub agent_permissions: Vec<AgentPermission>,
}

/// An agent's permission policy: what it may do without asking, in a sandbox where nobody is
/// there to approve (`agent-send` runs it non-interactively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentPermission {
    pub agent: crate::AgentKind,
    /// Claude Code's `--permission-mode` (`default`, `acceptEdits`, `plan`,
    /// `bypassPermissions`, `dontAsk`) or Codex's `--sandbox` (`read-only`,
    /// `workspace-write`, `danger-full-access`).
    pub mode: String,
    /// The arguments the agent's command gets for it (where its template has
    /// `{permissions}`).
    pub args: Vec<String>,
}

/// What a line of an install's progress stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresetInstallEventKind {
    /// A step started, or a line of npm's output.
    Progress,
    /// The last line of an install that succeeded (or found the preset installed).
    Done,
    /// The last line of an install that failed; its `message` says why.
    Error,
}

/// One line of `POST /presets/{name}/install` (NDJSON): `progress` lines, then exactly one
/// `done` (with the preset) or `error` (with a message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresetInstallEvent {
    pub event: PresetInstallEventKind,
    /// The step running (1-based) out of `steps`.
    pub step: u32,
    pub steps: u32,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
}

/// A version a removal kept because sandboxes use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresetVersionInUse {
    pub id: String,
    /// Names of the sandboxes that use it.
    pub sandboxes: Vec<String>,
}

/// `DELETE /presets/{name}`: the versions removed and those kept (in use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresetRemoval {
    pub removed: Vec<String>,
    pub kept: Vec<PresetVersionInUse>,
}
