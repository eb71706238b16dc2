//! `amika server --listen ADDR --data-dir DIR [--database-url URL] [--no-reveal]
//! [--default-memory MiB] [--default-pids N]` runs the server in the foreground without touching
//! the CLI config; `amika server rotate-key` re-wraps every
//! data key under a new master key. Also the serving loop `amika up` shares.

use std::net::SocketAddr;
use std::path::PathBuf;

use amika_server::config::MAX_WARM_SANDBOXES;
use amika_server::ServerConfig;
use anyhow::Context;

use crate::output::OutputFormat;

/// `amika server [OPTIONS] [COMMAND]`: without a subcommand, runs the server.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    #[command(flatten)]
    pub run: ServerRunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum ServerCommand {
    /// Re-wrap every data key under a new master key (values are not touched).
    RotateKey(RotateKeyArgs),
}

/// Where a server listens and keeps its state: the options `amika server` and `amika up`
/// share. `Debug` is written by hand below: a PostgreSQL URL may carry a password.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// Where the server keeps its database, key file and sandbox homes.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A database URL (sqlite://... or postgres://...) instead of the embedded SQLite file.
    #[arg(long, env = "AMIKA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &masked_url(&self.database_url))
            .finish()
    }
}

impl ServeArgs {
    /// The server config these options describe: `--data-dir` defaults to
    /// [`default_data_dir`], an empty `--database-url` means the embedded SQLite file.
    pub fn config(&self, allow_reveal: bool) -> anyhow::Result<ServerConfig> {
        let listen = &self.listen;
        let listen: SocketAddr = listen.parse().with_context(|| {
            format!("invalid --listen {listen:?}: expected IP:PORT, e.g. 127.0.0.1:7070")
        })?;
        let data_dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => default_data_dir()?,
        };
        let mut config = ServerConfig::new(listen, data_dir);
        config.database_url = self.database_url.clone().filter(|u| !u.is_empty());
        config.allow_reveal = allow_reveal;
        Ok(config)
    }
}

/// Options of `amika server` when it runs the server.
#[derive(Debug, clap::Args)]
pub struct ServerRunArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Disable the reveal endpoints (secret values can then never be read back).
    #[arg(long)]
    pub no_reveal: bool,
    /// Memory limit of a sandbox whose create does not set one, in MiB (at least 32; 0: none).
    #[arg(long, value_name = "MiB", value_parser = parse_limit::<32>)]
    pub default_memory: Option<u64>,
    /// Process limit of a sandbox whose create does not set one (at least 8; 0: none).
    #[arg(long, value_name = "N", value_parser = parse_limit::<8>)]
    pub default_pids: Option<u64>,
    /// Sandboxes kept started, without secrets, for each recently used kind of create (network
    /// mode and credential kinds), so that a create only injects (0 to 16; 0: off) [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_warm)]
    pub warm_sandboxes: Option<usize>,
    /// A JSON server config file (policies, agent command templates; see docs/configuration.md).
    /// Flags given on the command line win over it.
    #[arg(long, value_name = "FILE", env = "AMIKA_SERVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Install this preset (e.g. coder: the real Claude Code and Codex CLIs, with the host's
    /// npm) before serving, unless its pinned version is installed. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub install_preset: Vec<String>,
    /// Run the SSH endpoint on this address (IP:PORT, e.g. 127.0.0.1:2222); off unless set.
    #[arg(long, value_name = "ADDR", value_parser = parse_ssh_listen)]
    pub ssh_listen: Option<std::net::SocketAddr>,
}

/// `--ssh-listen`: an IP:PORT.
fn parse_ssh_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    match amika_server::config::parse_ssh_listen(text)? {
        Some(addr) => Ok(addr),
        None => Err("expected IP:PORT, e.g. 127.0.0.1:2222".into()),
    }
}

/// A database URL for `Debug`: its password, if any, masked.
fn masked_url(url: &Option<String>) -> Option<String> {
    url.as_deref()
        .map(amika_server::config::redact_url_password)
}

/// A default limit: `0` (no limit) or at least `MIN`, the smallest value the API accepts.
fn parse_limit<const MIN: u64>(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n == 0 || n >= MIN => Ok(n),
        Ok(n) => Err(format!(
            "{n} is too small: expected 0 (no limit) or at least {MIN}"
        )),
        Err(_) => Err(format!(
            "{text:?} is not a number: expected 0 (no limit) or at least {MIN}"
        )),
    }
}

/// `--warm-sandboxes`: 0 to [`MAX_WARM_SANDBOXES`].
fn parse_warm(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_WARM_SANDBOXES => Ok(n),
        Ok(n) => Err(format!(
            "{n} is too many: expected 0 to {MAX_WARM_SANDBOXES}"
        )),
        Err(_) => Err(format!(
            "{text:?} is not a number: expected 0 to {MAX_WARM_SANDBOXES}"
        )),
    }
}

impl ServerRunArgs {
    pub fn allow_reveal(&self) -> bool {
        !self.no_reveal
    }

    /// Apply `--default-memory`, `--default-pids` and `--warm-sandboxes` (when given) to `config`.
    pub fn apply_flags(&self, config: &mut ServerConfig) {
        if let Some(m) = self.default_memory {
            config.default_memory_mib = (m > 0).then_some(m);
        }
        if let Some(p) = self.default_pids {
            config.default_pids = (p > 0).then_some(p);
        }
        if let Some(n) = self.warm_sandboxes {
            config.warm_sandboxes = n;
        }
        if let Some(addr) = self.ssh_listen {
            config.ssh_listen = Some(addr);
        }
        for name in &self.install_preset {
            if !config.install_presets.contains(name) {
                config.install_presets.push(name.clone());
            }
        }
    }
}

/// `amika server rotate-key`. `Debug` is written by hand below: a PostgreSQL URL may carry a
/// password.
#[derive(clap::Args)]
pub struct RotateKeyArgs {
    /// The server's data directory (holds the current key file).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// A database URL instead of the embedded SQLite file in the data dir.
    #[arg(long, env = "AMIKA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where to write the new key (default: replace the key file in the data dir).
    #[arg(long)]
    pub new_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for RotateKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateKeyArgs")
            .field("data_dir", &self.data_dir)
            .field("database_url", &masked_url(&self.database_url))
            .field("new_key_file", &self.new_key_file)
            .finish()
    }
}

pub async fn run(args: ServerArgs, output: OutputFormat) -> anyhow::Result<()> {
    match args.command {
        Some(ServerCommand::RotateKey(a)) => {
            let mut config = ServerConfig::new("127.0.0.1:0".parse()?, a.data_dir);
            config.database_url = a.database_url;
            let kek = amika_server::rotate_key(&config, a.new_key_file.as_deref()).await?;
            match output {
                OutputFormat::Json => crate::outln!("{}", serde_json::json!({"kek_id": kek})),
                OutputFormat::Text => {
                    crate::outln!("Rotated: every data key is now wrapped by {kek}")
                }
            }
            Ok(())
        }
        None => {
            let mut config = args.run.serve.config(args.run.allow_reveal())?;
            if let Some(file) = &args.run.config {
                config.apply_file(file).map_err(anyhow::Error::msg)?;
                if args.run.no_reveal {
                    config.allow_reveal = false;
                }
            }
            args.run.apply_flags(&mut config);
            serve(config, |url, _| {
                // The one line a supervisor or a test waits for.
                crate::outln!("amika server listening on {url}");
                Ok(())
            })
            .await
        }
    }
}

/// `$XDG_DATA_HOME/amika`, else `~/.local/share/amika`.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("amika"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("cannot find a data dir: set --data-dir, XDG_DATA_HOME or HOME")?;
    Ok(PathBuf::from(home).join(".local/share/amika"))
}

/// Open the server state, bind, call `on_ready(url, first_admin_key)`, and serve until
/// Ctrl-C or SIGTERM. Logs go to stderr (`RUST_LOG`, default `info`).
pub async fn serve(
    config: ServerConfig,
    on_ready: impl FnOnce(&str, Option<&str>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // The SSH library logs each login's user name at debug level, and an SSH user name is an
    // access token: its logs stop at info whatever RUST_LOG says.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into())
        .add_directive("russh=info".parse().expect("a valid directive"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let listen = config.listen;
    let data_dir = config.data_dir.clone();
    // Held until this server has stopped serving.
    let _lock = amika_server::lock_data_dir(&data_dir)?;
    let opened = amika_server::open(config).await?;
    if let Err(e) = opened.service.check_provider() {
        eprintln!("warning: sandboxes cannot start here: {e}");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(data_dir = %data_dir.display(), %url, "amika server ready");
    on_ready(&url, opened.first_admin_key.as_deref().map(|k| k.as_str()))?;
    amika_server::launch(opened.service, listener, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn run_args(args: &[&str]) -> Result<ServerRunArgs, String> {
        let argv = ["amika", "server"].iter().chain(args);
        match crate::commands::Cli::try_parse_from(argv) {
            Ok(cli) => match cli.command {
                crate::commands::Command::Server(a) => Ok(a.run),
                other => panic!("{other:?}"),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn default_limits_flags_set_and_clear_the_defaults() {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "/x".into());
        let (memory, pids) = (config.default_memory_mib, config.default_pids);
        run_args(&[]).unwrap().apply_flags(&mut config);
        assert_eq!(
            (config.default_memory_mib, config.default_pids),
            (memory, pids)
        );
        run_args(&["--default-memory", "512", "--default-pids", "0"])
            .unwrap()
            .apply_flags(&mut config);
        assert_eq!(
            (config.default_memory_mib, config.default_pids),
            (Some(512), None)
        );
    }

    #[test]
    fn warm_sandboxes_flag_sets_the_pool_size_within_bounds() {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "/x".into());
        run_args(&["--warm-sandboxes", "0"])
            .unwrap()
            .apply_flags(&mut config);
        assert_eq!(config.warm_sandboxes, 0);
        for (bad, needle) in [
            ("17", "17 is too many: expected 0 to 16"),
            ("some", "\"some\" is not a number: expected 0 to 16"),
        ] {
            let err = run_args(&["--warm-sandboxes", bad]).unwrap_err();
            assert!(
                err.contains("--warm-sandboxes") && err.contains(needle),
                "{err}"
            );
        }
    }

    #[test]
    fn ssh_listen_flag_sets_the_endpoint_and_rejects_non_addresses() {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "/x".into());
        run_args(&[]).unwrap().apply_flags(&mut config);
        assert_eq!(config.ssh_listen, None);
        run_args(&["--ssh-listen", "127.0.0.1:2222"])
            .unwrap()
            .apply_flags(&mut config);
        assert_eq!(config.ssh_listen, Some("127.0.0.1:2222".parse().unwrap()));
        for bad in ["2222", "localhost:2222", "", "127.0.0.1"] {
            let err = run_args(&["--ssh-listen", bad]).unwrap_err();
            assert!(
                err.contains("--ssh-listen") && err.contains("IP:PORT"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn default_limits_flags_reject_what_the_api_would() {
        let err = run_args(&["--default-memory", "16"]).unwrap_err();
        assert!(
            err.contains("--default-memory")
                && err.contains("16 is too small: expected 0 (no limit) or at least 32"),
            "{err}"
        );
        let err = run_args(&["--default-pids", "lots"]).unwrap_err();
        assert!(
            err.contains("--default-pids") && err.contains("\"lots\" is not a number"),
            "{err}"
        );
    }

    /// Argument structs that carry a value print it masked: a `{:?}` of the parsed command line
    /// (a panic message, a debug log) must not show it.
    #[test]
    fn value_carrying_arguments_print_no_value() {
        let pw = "hunter2-pw-0123";
        let url = format!("postgres://amika:{pw}@db:5432/amika");
        let lines: Vec<Vec<String>> = [
            vec!["auth", "login", "--api-key", "amk_SECRETKEY0123"],
            vec![
                "secret",
                "push",
                "API=sk-SECRETVALUE0123",
                "=sk-SECRETVALUE0123",
            ],
            vec!["secret", "claude", "push", "--name", "n", "--type", "oauth"]
                .into_iter()
                .chain(["--value", r#"{"t":"sk-SECRETVALUE0123"}"#])
                .collect(),
            vec!["server", "--database-url", url.as_str()],
            vec![
                "server",
                "rotate-key",
                "--data-dir",
                "/x",
                "--database-url",
                url.as_str(),
            ],
            vec!["up", "--database-url", url.as_str()],
        ]
        .into_iter()
        .map(|l| l.into_iter().map(String::from).collect())
        .collect();
        for line in lines {
            let argv = std::iter::once("amika".to_string()).chain(line.iter().cloned());
            let cli = crate::commands::Cli::try_parse_from(argv).unwrap();
            for shown in [format!("{cli:?}"), format!("{cli:#?}")] {
                for value in ["SECRETKEY0123", "SECRETVALUE0123", pw] {
                    assert!(!shown.contains(value), "{line:?} shows {value}: {shown}");
                }
            }
        }
        // What stays visible: names and the rest of the URL.
        let cli =
            crate::commands::Cli::try_parse_from(["amika", "secret", "push", "API=sk-x"]).unwrap();
        assert!(format!("{cli:?}").contains("API=[REDACTED]"));
        let cli =
            crate::commands::Cli::try_parse_from(["amika", "up", "--database-url", url.as_str()])
                .unwrap();
        assert!(format!("{cli:?}").contains("postgres://amika:***@db:5432/amika"));
    }
}
