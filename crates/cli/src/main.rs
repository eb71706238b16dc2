//! `amika`: the command-line interface to an amika server.
//!
//! Thin: parse the command line, run it, and turn any failure into one `error: ...` line on
//! stderr with exit code 1 (never a backtrace). The commands live in `commands/`.

mod commands;
mod config;
mod dotenv;
mod output;
mod prompt;
mod repo;
mod sandbox_flags;
mod spinner;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli).await {
        Ok(code) => code,
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", commands::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
