//! Server configuration: where state lives and which policies are on.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `launch` needs. Holds no secret: the master key is loaded by the vault from the
/// environment or the data dir, never carried here.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Holds the SQLite database, the master key file, `admin-api-key` and sandbox homes.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// Whether reveal endpoints answer at all (they are always audited).
    pub allow_reveal: bool,
    /// Default memory limit of a sandbox in MiB (None: unlimited).
    pub default_memory_mib: Option<u64>,
    /// Default process limit of a sandbox (None: unlimited).
    pub default_pids: Option<u64>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How each agent is run inside a sandbox by `agent-send` (argv templates).
    pub agent_commands: crate::service::agents::AgentCommands,
    /// Each agent's permission mode (Claude's `--permission-mode`, Codex's `--sandbox`), put
    /// where its command template has `{permissions}`.
    pub agent_permissions: crate::service::agents::AgentPermissions,
    /// Longest an agent send may run (a request may ask for less); then its processes are killed.
    pub agent_timeout: std::time::Duration,
    /// On SIGTERM or Ctrl-C: how long running execs and agent sends may go on finishing after
    /// the listener closed; then they are ended (and the server exits soon after, whatever
    /// still hangs).
    pub shutdown_grace: std::time::Duration,
    /// Sandboxes kept started (without secrets) per recently used shape, so that a create
    /// only injects; 0 turns them off.
    pub warm_sandboxes: usize,
    /// Hosts whose HTTPS repositories are cloned with the caller's default `github` credential
    /// when a create names no `git_credential`.
    pub github_hosts: Vec<String>,
    /// Largest repository upload (`POST /workspace-uploads`) accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Where preset layers live (default `<data_dir>/presets`).
    pub presets_dir: PathBuf,
    /// npm's cache for preset installs, shared by data dirs (default `$AMIKA_NPM_CACHE`, else
    /// `~/.cache/amika-npm`).
    pub npm_cache_dir: PathBuf,
    /// Presets installed when the server starts (`amika server --install-preset`).
    pub install_presets: Vec<String>,
    /// The preset a create without `preset` gets, when installed.
    pub default_preset: Option<String>,
    /// What a create may ask for at most, whoever asks (see [`Ceilings`]).
    pub ceilings: Ceilings,
    /// Where the SSH endpoint listens (`--ssh-listen`); `None`: no SSH endpoint.
    pub ssh_listen: Option<SocketAddr>,
    /// How long an SSH connection may take to log in before it is closed (OpenSSH's
    /// `LoginGraceTime`): a client that stalls before then holds nothing for long.
    pub ssh_login_grace: std::time::Duration,
}

/// Server-side ceilings on sandboxes: a create over one is refused (`422 over_limit`, naming
/// the ceiling). They hold for admins too; only `allowed_networks` differs by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceilings {
    /// Largest memory limit in MiB (`None`: no ceiling). A sandbox that would have no memory
    /// limit (no default) gets this one.
    pub max_memory_mib: Option<u64>,
    /// Largest process limit (`None`: no ceiling); likewise the limit of a sandbox without one.
    pub max_pids: Option<u64>,
    /// Most sandboxes one user may have, in any state (`None`: no ceiling).
    pub max_sandboxes_per_user: Option<u64>,
    /// Most MiB one sandbox's home and workspace may take on the host's disk (`None`: no
    /// limit); a running sandbox over it is stopped by the server's disk watch.
    pub max_disk_mib: Option<u64>,
    /// The network modes each role may ask for.
    pub allowed_networks: AllowedNetworks,
    /// Most MiB of snapshot archives one user may hold (`None`: no quota).
    pub snapshot_quota_mib_per_user: Option<u64>,
    /// Most MiB of snapshot archives one org's users may hold together (`None`: no quota).
    pub snapshot_quota_mib_per_org: Option<u64>,
}

impl Default for Ceilings {
    /// 8 GiB and 4096 processes: the `xl` size, the largest the API names.
    fn default() -> Self {
        Ceilings {
            max_memory_mib: Some(8192),
            max_pids: Some(4096),
            max_sandboxes_per_user: Some(50),
            max_disk_mib: Some(20480),
            allowed_networks: AllowedNetworks::default(),
            snapshot_quota_mib_per_user: Some(20480),
            snapshot_quota_mib_per_org: Some(102400),
        }
    }
}

/// Network modes per role. `host` is for admins only by default: a sandbox on the host's
/// network reaches every service listening on the host's loopback (the amika server itself,
/// databases, metadata endpoints).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedNetworks {
    pub admin: Vec<amika_types::NetworkMode>,
    pub user: Vec<amika_types::NetworkMode>,
}

impl Default for AllowedNetworks {
    fn default() -> Self {
        use amika_types::NetworkMode::{Egress, Host, None};
        AllowedNetworks {
            admin: vec![None, Egress, Host],
            user: vec![None, Egress],
        }
    }
}

impl AllowedNetworks {
    /// The modes a caller of this role may ask for, and the role's name in the config.
    pub fn for_role(&self, is_admin: bool) -> (&[amika_types::NetworkMode], &'static str) {
        if is_admin {
            (&self.admin, "admin")
        } else {
            (&self.user, "user")
        }
    }
}

impl ServerConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        ServerConfig {
            listen,
            data_dir: data_dir.clone(),
            database_url: None,
            allow_reveal: true,
            default_memory_mib: Some(2048),
            default_pids: Some(1024),
            max_body_bytes: 1024 * 1024,
            agent_commands: crate::service::agents::default_agent_commands(),
            agent_permissions: crate::service::agents::default_agent_permissions(),
            agent_timeout: crate::service::agents::DEFAULT_AGENT_TIMEOUT,
            shutdown_grace: std::time::Duration::from_secs(10),
            warm_sandboxes: amika_sandbox::local::DEFAULT_WARM,
            github_hosts: vec!["github.com".into()],
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
            presets_dir: data_dir.join("presets"),
            npm_cache_dir: crate::service::presets::default_npm_cache(),
            install_presets: Vec::new(),
            default_preset: None,
            ceilings: Ceilings::default(),
            ssh_listen: None,
            ssh_login_grace: std::time::Duration::from_secs(30),
        }
    }

    /// Whether the defaults fit under the ceilings: a default over its ceiling would refuse
    /// every create that relies on it. The error names both settings.
    pub fn check_ceilings(&self) -> Result<(), String> {
        for (default, default_name, max, max_name) in [
            (
                self.default_memory_mib,
                "default_memory_mib",
                self.ceilings.max_memory_mib,
                "max_memory_mib",
            ),
            (
                self.default_pids,
                "default_pids",
                self.ceilings.max_pids,
                "max_pids",
            ),
        ] {
            if let (Some(d), Some(m)) = (default, max) {
                if d > m {
                    return Err(format!(
                        "{default_name} ({d}) is over {max_name} ({m}): lower {default_name} or raise {max_name}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The database URL in force: the configured one, else SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("amika.db").display()),
        }
    }
}

/// An SSH listen address (`--ssh-listen`, `ssh_listen`): `IP:PORT`, or `""` for none.
pub fn parse_ssh_listen(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        format!("{text:?} is not an address: expected IP:PORT, e.g. 127.0.0.1:2222 (or \"\" for no SSH endpoint)")
    })
}

impl std::fmt::Debug for ServerConfig {
    // Written by hand: a PostgreSQL URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url_password),
            )
            .field("allow_reveal", &self.allow_reveal)
            .field("default_memory_mib", &self.default_memory_mib)
            .field("default_pids", &self.default_pids)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("agent_commands", &self.agent_commands)
            .field("agent_permissions", &self.agent_permissions)
            .field("agent_timeout", &self.agent_timeout)
            .field("warm_sandboxes", &self.warm_sandboxes)
            .field("github_hosts", &self.github_hosts)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("presets_dir", &self.presets_dir)
            .field("npm_cache_dir", &self.npm_cache_dir)
            .field("install_presets", &self.install_presets)
            .field("default_preset", &self.default_preset)
            .field("ceilings", &self.ceilings)
            .field("ssh_listen", &self.ssh_listen)
            .field("ssh_login_grace", &self.ssh_login_grace)
            .finish()
    }
}

/// The server config file (`amika server --config FILE`, JSON): policies and the agents'
/// command templates. Every field is optional; unknown fields are an error.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub allow_reveal: Option<bool>,
    /// MiB; 0 means no limit.
    pub default_memory_mib: Option<u64>,
    /// 0 means no limit.
    pub default_pids: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub agent_timeout_secs: Option<u64>,
    /// See [`ServerConfig::shutdown_grace`].
    pub shutdown_grace_secs: Option<u64>,
    /// Warm sandboxes per shape; 0 turns them off.
    pub warm_sandboxes: Option<usize>,
    /// Per agent kind, `{"new_session": [...], "resume": [...]}` argv templates with
    /// `{message}` and `{session}` placeholders; kinds not listed keep their defaults.
    pub agent_commands: Option<crate::service::agents::AgentCommands>,
    /// Per agent kind, its permission mode: `{"claude": "acceptEdits", "codex":
    /// "workspace-write"}`; kinds not listed keep their defaults.
    pub agent_permissions: Option<crate::service::agents::AgentPermissions>,
    /// Hosts whose HTTPS repositories are cloned with the caller's default github credential.
    pub github_hosts: Option<Vec<String>>,
    /// Largest repository upload in bytes.
    pub max_upload_bytes: Option<u64>,
    /// Where preset layers live (default `<data_dir>/presets`).
    pub presets_dir: Option<PathBuf>,
    /// npm's cache for preset installs.
    pub npm_cache_dir: Option<PathBuf>,
    /// Presets to install when the server starts, e.g. `["coder"]`.
    pub install_presets: Option<Vec<String>>,
    /// The preset a create without `preset` gets, when installed, e.g. `"coder"`.
    pub default_preset: Option<String>,
    /// Ceiling of a sandbox's memory limit in MiB; 0 means no ceiling.
    pub max_memory_mib: Option<u64>,
    /// Ceiling of a sandbox's process limit; 0 means no ceiling.
    pub max_pids: Option<u64>,
    /// Most sandboxes per user; 0 means no ceiling.
    pub max_sandboxes_per_user: Option<u64>,
    /// Most MiB of one sandbox's home and workspace; 0 means no limit.
    pub max_disk_mib: Option<u64>,
    /// Most MiB of snapshots per user; 0 means no quota.
    pub snapshot_quota_mib_per_user: Option<u64>,
    /// Most MiB of snapshots per org; 0 means no quota.
    pub snapshot_quota_mib_per_org: Option<u64>,
    /// Network modes per role: `{"admin": [...], "user": [...]}`, both required.
    pub allowed_networks: Option<AllowedNetworks>,
    /// Where the SSH endpoint listens, `IP:PORT`; `""`: off (the default).
    pub ssh_listen: Option<String>,
}

impl ServerConfig {
    /// Apply a config file on top of the defaults. The error names the file and what is wrong.
    pub fn apply_file(&mut self, path: &std::path::Path) -> Result<(), ConfigFileError> {
        let shown = || path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: shown(),
            source,
        })?;
        let file: ConfigFile =
            serde_json::from_str(&text).map_err(|source| ConfigFileError::Parse {
                path: shown(),
                source,
            })?;
        if let Some(v) = file.allow_reveal {
            self.allow_reveal = v;
        }
        if let Some(addr) = &file.ssh_listen {
            self.ssh_listen =
                parse_ssh_listen(addr).map_err(|problem| ConfigFileError::SshListen {
                    path: shown(),
                    problem,
                })?;
        }
        if let Some(m) = file.default_memory_mib {
            self.default_memory_mib = (m > 0).then_some(m);
        }
        if let Some(p) = file.default_pids {
            self.default_pids = (p > 0).then_some(p);
        }
        self.apply_ceilings(&file)
            .map_err(|problem| ConfigFileError::Ceiling {
                path: shown(),
                problem,
            })?;
        if let Some(b) = file.max_body_bytes {
            self.max_body_bytes = b;
        }
        if let Some(secs) = file.shutdown_grace_secs {
            self.shutdown_grace = std::time::Duration::from_secs(secs);
        }
        if let Some(hosts) = file.github_hosts {
            self.github_hosts = hosts;
        }
        if let Some(b) = file.max_upload_bytes {
            self.max_upload_bytes = b;
        }
        if let Some(dir) = file.presets_dir {
            self.presets_dir = dir;
        }
        if let Some(dir) = file.npm_cache_dir {
            self.npm_cache_dir = dir;
        }
        for name in (file.install_presets.iter().flatten())
            .chain(file.default_preset.iter().filter(|n| !n.is_empty()))
        {
            crate::service::presets::find(name).map_err(|e| ConfigFileError::Preset {
                path: shown(),
                problem: e.to_string(),
            })?;
        }
        if let Some(names) = file.install_presets {
            self.install_presets = names;
        }
        if let Some(name) = file.default_preset {
            self.default_preset = Some(name).filter(|n| !n.is_empty());
        }
        if let Some(n) = file.warm_sandboxes {
            if n > MAX_WARM_SANDBOXES {
                return Err(ConfigFileError::TooManyWarmSandboxes { path: shown() });
            }
            self.warm_sandboxes = n;
        }
        if let Some(secs) = file.agent_timeout_secs {
            if secs == 0 {
                return Err(ConfigFileError::NoAgentTimeout { path: shown() });
            }
            self.agent_timeout = std::time::Duration::from_secs(secs);
        }
        for (kind, command) in file.agent_commands.unwrap_or_default() {
            command
                .validate(kind)
                .map_err(|problem| ConfigFileError::AgentCommand {
                    path: shown(),
                    problem,
                })?;
            self.agent_commands.insert(kind, command);
        }
        for (kind, mode) in file.agent_permissions.unwrap_or_default() {
            crate::service::agents::permission_args(kind, &mode).map_err(|problem| {
                ConfigFileError::AgentPermission {
                    path: shown(),
                    kind,
                    problem,
                }
            })?;
            self.agent_permissions.insert(kind, mode);
        }
        Ok(())
    }
}

impl ServerConfig {
    /// The file's ceilings, checked: each at least what a sandbox needs to start, every role
    /// with a network, and the defaults under the ceilings.
    fn apply_ceilings(&mut self, file: &ConfigFile) -> Result<(), String> {
        for (value, name, min, slot) in [
            (
                file.max_memory_mib,
                "max_memory_mib",
                32,
                &mut self.ceilings.max_memory_mib,
            ),
            (file.max_pids, "max_pids", 8, &mut self.ceilings.max_pids),
            (
                file.max_sandboxes_per_user,
                "max_sandboxes_per_user",
                1,
                &mut self.ceilings.max_sandboxes_per_user,
            ),
            (
                file.max_disk_mib,
                "max_disk_mib",
                1,
                &mut self.ceilings.max_disk_mib,
            ),
            (
                file.snapshot_quota_mib_per_user,
                "snapshot_quota_mib_per_user",
                1,
                &mut self.ceilings.snapshot_quota_mib_per_user,
            ),
            (
                file.snapshot_quota_mib_per_org,
                "snapshot_quota_mib_per_org",
                1,
                &mut self.ceilings.snapshot_quota_mib_per_org,
            ),
        ] {
            match value {
                Some(0) => *slot = None,
                Some(v) if v < min => {
                    return Err(format!(
                        "{name} must be at least {min} (or 0 for no ceiling), not {v}"
                    ))
                }
                Some(v) => *slot = Some(v),
                None => {}
            }
        }
        if let Some(networks) = &file.allowed_networks {
            for (role, modes) in [("admin", &networks.admin), ("user", &networks.user)] {
                if modes.is_empty() {
                    return Err(format!(
                        "allowed_networks.{role} must name at least one of none, egress, host"
                    ));
                }
            }
            self.ceilings.allowed_networks = networks.clone();
        }
        self.check_ceilings()
    }
}

/// Why a config file was refused; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("config file {path}: warm_sandboxes must be at most {MAX_WARM_SANDBOXES}")]
    TooManyWarmSandboxes { path: String },
    #[error("config file {path}: {problem}")]
    Preset { path: String, problem: String },
    #[error("config file {path}: {problem}")]
    Ceiling { path: String, problem: String },
    #[error("config file {path}: ssh_listen: {problem}")]
    SshListen { path: String, problem: String },
    #[error("config file {path}: agent_timeout_secs must be at least 1")]
    NoAgentTimeout { path: String },
    #[error("config file {path}: agent_permissions.{kind}: {problem}")]
    AgentPermission {
        path: String,
        kind: amika_types::AgentKind,
        problem: String,
    },
    #[error("config file {path}: agent_commands.{}: {problem}", problem.kind)]
    AgentCommand {
        path: String,
        problem: crate::service::agents::AgentCommandError,
    },
}

/// The most warm sandboxes per shape a server may keep.
pub const MAX_WARM_SANDBOXES: usize = 16;

/// `postgres://user:pw@host/db` → `postgres://user:***@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(json: &str) -> Result<ServerConfig, ConfigFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.json");
        std::fs::write(&path, json).unwrap();
        let mut c = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/x".into());
        c.apply_file(&path).map(|_| c)
    }

    #[test]
    fn config_file_sets_policies_and_agent_templates() {
        let c = apply(
            r#"{"allow_reveal": false, "default_memory_mib": 0, "default_pids": 64, "agent_timeout_secs": 30,
                "agent_commands": {"claude": {"new_session": ["my-claude", "{message}"], "resume": ["my-claude", "--resume", "{session}", "{message}"]}}}"#,
        )
        .unwrap();
        assert!(!c.allow_reveal);
        assert_eq!((c.default_memory_mib, c.default_pids), (None, Some(64)));
        assert_eq!(c.agent_timeout, std::time::Duration::from_secs(30));
        assert_eq!(c.warm_sandboxes, amika_sandbox::local::DEFAULT_WARM);
        assert_eq!(apply(r#"{"warm_sandboxes": 0}"#).unwrap().warm_sandboxes, 0);
        assert_eq!(c.shutdown_grace, std::time::Duration::from_secs(10));
        let no_grace = apply(r#"{"shutdown_grace_secs": 0}"#).unwrap();
        assert_eq!(no_grace.shutdown_grace, std::time::Duration::ZERO);
        assert_eq!(
            c.agent_commands[&amika_types::AgentKind::Claude].new_session,
            vec!["my-claude", "{message}"]
        );
        assert_eq!(
            c.agent_commands[&amika_types::AgentKind::Codex],
            crate::service::agents::default_agent_commands()[&amika_types::AgentKind::Codex]
        );
    }

    #[test]
    fn config_file_sets_the_presets() {
        let c = apply(
            r#"{"install_presets": ["coder"], "default_preset": "coder", "presets_dir": "/srv/p", "npm_cache_dir": "/srv/npm"}"#,
        )
        .unwrap();
        assert_eq!(c.install_presets, ["coder"]);
        assert_eq!(c.default_preset.as_deref(), Some("coder"));
        assert_eq!(c.presets_dir, std::path::Path::new("/srv/p"));
        assert_eq!(c.npm_cache_dir, std::path::Path::new("/srv/npm"));
        let defaults = apply(r#"{"default_preset": ""}"#).unwrap();
        assert_eq!(defaults.default_preset, None);
        assert_eq!(defaults.presets_dir, std::path::Path::new("/tmp/x/presets"));
        for json in [
            r#"{"install_presets": ["gamer"]}"#,
            r#"{"default_preset": "gamer"}"#,
        ] {
            let err = apply(json).unwrap_err().to_string();
            assert!(
                err.contains("server.json")
                    && err.contains("unknown preset \"gamer\": this server has coder"),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn bad_config_files_name_the_file_and_the_problem() {
        for (json, needle) in [
            ("{not json", "server.json"),
            (r#"{"colour": 1}"#, "unknown field `colour`"),
            (r#"{"agent_timeout_secs": 0}"#, "at least 1"),
            (
                r#"{"warm_sandboxes": 17}"#,
                "warm_sandboxes must be at most 16",
            ),
            (r#"{"warm_sandboxes": -1}"#, "invalid value: integer `-1`"),
            (
                r#"{"shutdown_grace_secs": "10s"}"#,
                "invalid type: string \"10s\", expected u64",
            ),
            (
                r#"{"agent_commands": {"gemini": {"new_session": [], "resume": []}}}"#,
                "unknown kind \"gemini\"",
            ),
            (
                r#"{"agent_commands": {"github": {"new_session": ["git", "{message}"], "resume": ["git", "{session}", "{message}"]}}}"#,
                "expected claude or codex",
            ),
            (
                r#"{"agent_commands": {"claude": {"new_session": ["claude"], "resume": ["claude", "{session}", "{message}"]}}}"#,
                "agent_commands.claude",
            ),
        ] {
            let err = apply(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
        // Typed, so a caller can tell the problems apart without reading the message.
        let err = apply(
            r#"{"agent_commands": {"codex": {"new_session": ["codex", "{message}"], "resume": ["codex", "{message}"]}}}"#,
        );
        assert!(
            matches!(
                &err,
                Err(ConfigFileError::AgentCommand { problem, .. })
                    if problem.problem == crate::service::agents::TemplateProblem::NoSession
                        && problem.name == "resume"
            ),
            "{err:?}"
        );
    }

    #[test]
    fn debug_never_shows_a_database_password() {
        let mut c = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/x".into());
        c.database_url = Some("postgres://amika:hunter2-pw@db:5432/amika".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-pw"), "{shown}");
        assert!(
            shown.contains("postgres://amika:***@db:5432/amika"),
            "{shown}"
        );
    }
}
