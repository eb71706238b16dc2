//! `amika up`: start a server (embedded SQLite, local sandboxes) in the foreground and log the
//! CLI in to it — with the first admin's key on a fresh data dir, or with the key the first
//! start left in `DATA_DIR/admin-api-key`.

use super::server::{serve, ServeArgs};
use crate::config;

/// `amika up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let config = args.serve.config(true)?;
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
