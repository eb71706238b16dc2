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
    /// Longest an agent send may run (a request may ask for less); then its processes are killed.
    pub agent_timeout: std::time::Duration,
}

impl ServerConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        ServerConfig {
            listen,
            data_dir,
            database_url: None,
            allow_reveal: true,
            default_memory_mib: Some(2048),
            default_pids: Some(1024),
            max_body_bytes: 1024 * 1024,
            agent_commands: crate::service::agents::default_agent_commands(),
            agent_timeout: crate::service::agents::DEFAULT_AGENT_TIMEOUT,
        }
    }

    /// The database URL in force: the configured one, else SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("amika.db").display()),
        }
    }
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
            .field("agent_timeout", &self.agent_timeout)
            .finish()
    }
}

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
