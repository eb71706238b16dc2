//! `amika sandbox shell NAME`: a login shell in a sandbox over the server's SSH endpoint, with
//! an SSH client built into the CLI (no `ssh` needed). Same path as `amika sandbox ssh`: a
//! short-lived token, the host key pinned from the API's answer, the token revoked at the end.
//! On a terminal it asks for a PTY of the terminal's size, puts the terminal in raw mode while
//! the shell runs and forwards resizes; otherwise it pipes stdin to a shell without a terminal.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use amika_types::SshAccess;
use anyhow::{bail, Context};
use russh::client;
use russh::ChannelMsg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::Ctx;

#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// The sandbox's name (or id).
    pub name: String,
}

pub async fn shell(ctx: &Ctx, args: ShellArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let access = client.create_ssh_access(&args.name, None).await?;
    let result = run(&access).await;
    if let Err(e) = client.revoke_ssh_access(&args.name, &access.token).await {
        eprintln!(
            "warning: could not revoke the SSH token (it expires at {}): {e}",
            access.expires_at
        );
    }
    let code = result?;
    // Not a return: tokio's stdin reader may still wait for a key on a blocking thread, which
    // would hold the runtime's shutdown until then.
    std::process::exit(code.min(255) as i32)
}

/// Trusts only the host key the API answered with.
struct Pinned(russh::keys::PublicKey);

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
        )
    }
}

/// The terminal in raw mode until dropped.
struct RawMode(rustix::termios::Termios);

impl RawMode {
    fn enter() -> anyhow::Result<RawMode> {
        let stdin = std::io::stdin();
        let saved =
            rustix::termios::tcgetattr(&stdin).context("cannot read the terminal's mode")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &self.0);
    }
}

fn terminal_size() -> (u32, u32) {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (w.ws_col.into(), w.ws_row.into()),
        _ => (80, 24),
    }
}

/// The shell's session: its exit status.
async fn run(access: &SshAccess) -> anyhow::Result<u32> {
    let parts: Vec<&str> = access.ssh_destination.split_whitespace().collect();
    let (port, host) = match parts.as_slice() {
        ["-p", port, user_host] => (
            port.parse::<u16>().context("the destination's port")?,
            user_host.rsplit('@').next().unwrap_or_default(),
        ),
        _ => bail!("the server answered an SSH destination of an unexpected form"),
    };
    let key = russh::keys::PublicKey::from_openssh(&access.host_key)
        .context("the server answered a host key that does not parse")?;
    let config = Arc::new(client::Config::default());
    let mut session = client::connect(config, (host, port), Pinned(key))
        .await
        .with_context(|| format!("cannot connect to the SSH endpoint {host}:{port}"))?;
    let auth = session.authenticate_none(access.token.as_str()).await?;
    if !matches!(auth, client::AuthResult::Success) {
        bail!("the SSH endpoint refused the token");
    }
    let mut channel = session.channel_open_session().await?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if tty {
        let (cols, rows) = terminal_size();
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into());
        channel
            .request_pty(false, &term, cols, rows, 0, 0, &[])
            .await?;
    }
    channel.request_shell(true).await?;
    let _raw = tty.then(RawMode::enter).transpose()?;
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let (mut stdin, mut stdout, mut stderr) =
        (tokio::io::stdin(), tokio::io::stdout(), tokio::io::stderr());
    let mut buf = vec![0u8; 8192];
    let (mut stdin_open, mut code) = (true, 255);
    loop {
        tokio::select! {
            n = stdin.read(&mut buf), if stdin_open => match n {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    channel.eof().await?;
                }
                Ok(n) => channel.data(&buf[..n]).await?,
            },
            _ = winch.recv(), if tty => {
                let (cols, rows) = terminal_size();
                channel.window_change(cols, rows, 0, 0).await?;
            }
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    stdout.write_all(&data).await?;
                    stdout.flush().await?;
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    stderr.write_all(&data).await?;
                    stderr.flush().await?;
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => code = exit_status,
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
        }
    }
    Ok(code)
}
