//! placeholder
//!
//! `amika up`: the lead fills this in (start a server on embedded SQLite with local sandboxes,
//! create the first admin and org, and log the CLI in via `crate::config::save_login`).

use std::path::PathBuf;

/// `amika up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// Where the server keeps its database, key file and sandbox homes.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A database URL (sqlite://... or postgres://...) instead of the embedded SQLite file.
    #[arg(long)]
    pub database_url: Option<String>,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not yet implemented")
}
