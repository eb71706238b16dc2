//! placeholder
//!
//! `amika server ...`: the lead fills this in. `amika server --listen ADDR --data-dir DIR
//! [--database-url URL] [--no-reveal]` runs the server; `amika server rotate-key --data-dir DIR
//! [--database-url URL] [--new-key-file PATH]` re-wraps every data key under a new master key.

use std::path::PathBuf;

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

/// Options of `amika server` when it runs the server.
#[derive(Debug, clap::Args)]
pub struct ServerRunArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// Where the server keeps its database, key file and sandbox homes.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A database URL (sqlite://... or postgres://...) instead of the embedded SQLite file.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Disable the reveal endpoints (secret values can then never be read back).
    #[arg(long)]
    pub no_reveal: bool,
}

impl ServerRunArgs {
    pub fn allow_reveal(&self) -> bool {
        !self.no_reveal
    }
}

/// `amika server rotate-key`.
#[derive(Debug, clap::Args)]
pub struct RotateKeyArgs {
    /// The server's data directory (holds the current key file).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// A database URL instead of the embedded SQLite file in the data dir.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Where to write the new key (default: replace the key file in the data dir).
    #[arg(long)]
    pub new_key_file: Option<PathBuf>,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let _ = (args.command, args.run.allow_reveal());
    anyhow::bail!("not yet implemented")
}
