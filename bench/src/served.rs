//! A benchmark's server in a child process of its own, so that what the server holds (its
//! memory, descriptors, threads) is measured apart from the load's clients.
//!
//! The benchmark binary runs itself again with [`SERVE_FLAG`]: the child starts a [`Server`]
//! as every benchmark does, prints `URL KEY` on one line of stdout, then answers each `settle`
//! line on stdin with `settled` once its background work is done; when its stdin closes it
//! stops the server (removing every sandbox) and exits.

use std::process::Stdio;

use amika_client::Client;
use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::{Backend, Server};

/// The hidden flag that makes a benchmark binary the server of [`Served::spawn`].
pub const SERVE_FLAG: &str = "--serve-only";

/// The child's side: serve until stdin closes.
pub async fn serve(backend: Backend) -> anyhow::Result<()> {
    let server = Server::start(backend).await?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("{} {}\n", server.url, server.admin_key).as_bytes())
        .await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim() == "settle" {
            server.settle().await;
            out.write_all(b"settled\n").await?;
            out.flush().await?;
        }
    }
    server.stop().await
}

/// The parent's side: the running child, and a client of its server.
#[derive(Debug)]
pub struct Served {
    pub url: String,
    pub admin_key: String,
    pub client: Client,
    /// The child's pid: the server process to measure.
    pub pid: u32,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Served {
    /// Run this binary again as the server (`args` are passed on, e.g. the backend).
    pub async fn spawn(args: &[&str]) -> anyhow::Result<Served> {
        let exe = std::env::current_exe().context("cannot find this benchmark's binary")?;
        let mut child = tokio::process::Command::new(exe)
            .arg(SERVE_FLAG)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server's process")?;
        let pid = child.id().context("the server's process ended at once")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let first = stdout.next_line().await?.unwrap_or_default();
        let Some((url, key)) = first.split_once(' ') else {
            bail!("the server's process did not print `URL KEY` (it printed {first:?})");
        };
        let (url, admin_key) = (url.to_string(), key.to_string());
        let client = Client::new(url.clone(), Some(admin_key.clone()));
        client.health().await?;
        Ok(Served {
            url,
            admin_key,
            client,
            pid,
            child,
            stdin,
            stdout,
        })
    }

    /// Wait until the server's background work (warm sandboxes being started) is done.
    pub async fn settle(&mut self) -> anyhow::Result<()> {
        self.stdin.write_all(b"settle\n").await?;
        self.stdin.flush().await?;
        match self.stdout.next_line().await? {
            Some(line) if line == "settled" => Ok(()),
            other => bail!("the server's process answered {other:?} to `settle`"),
        }
    }

    /// Stop the server (its sandboxes removed) and wait for its process.
    pub async fn stop(self) -> anyhow::Result<()> {
        let Served {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = child.wait().await?;
        if !status.success() {
            bail!("the server's process ended with {status}");
        }
        Ok(())
    }
}
