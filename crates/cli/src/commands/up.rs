//! `amika up`: start a server (embedded SQLite, local sandboxes) in the foreground and log the
//! CLI in to it — with the first admin's key on a fresh data dir, or with the key the first
//! start left in `DATA_DIR/admin-api-key`.

use std::path::PathBuf;

use super::server::{serve, server_config};
use crate::config;

/// `amika up`. `Debug` is written by hand below: a PostgreSQL URL may carry a password.
#[derive(clap::Args)]
pub struct UpArgs {
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

impl std::fmt::Debug for UpArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpArgs")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &super::server::masked_url(&self.database_url),
            )
            .finish()
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let config = server_config(&args.listen, args.data_dir, args.database_url, true)?;
    let key_file = config.data_dir.join("admin-api-key");
    serve(config, |url, first_key| {
        let key = match first_key {
            Some(k) => Some(k.to_string()),
            None => std::fs::read_to_string(&key_file).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()),
        };
        match key {
            Some(key) => {
                let path = config::save_login(url, &key)?;
                if first_key.is_some() {
                    eprintln!("Created the first admin user \"admin\" in org \"default\"; its API key is in {}", key_file.display());
                }
                eprintln!("Logged the CLI in ({})", path.display());
            }
            None => eprintln!("CLI config unchanged: log in with `amika auth login --url {url} --api-key ...`"),
        }
        crate::outln!("amika is running at {url} (Ctrl-C to stop)");
        Ok(())
    })
    .await
}
