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

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    // A server (`amika server`, `amika up`) gets a worker thread per core. A client command
    // waits on one request at a time: one thread, and no worker threads to start nor cgroup CPU
    // quota to look up for their count (together most of the CLI's own start-up).
    let mut runtime = if cli.command.serves() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", commands::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
