//! One SSH `session` channel: its requests (`pty-req`, `window-change`, then one of `shell`,
//! `exec` or `subsystem sftp`), and the relay between the channel and the command that runs
//! in the sandbox.
//!
//! Redaction (see docs/threat-model.md, "SSH sessions"): a command without a terminal has its
//! stdout and stderr redacted byte-exactly, as exec's output is; a terminal session and SFTP
//! are relayed as they are.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amika_sandbox::{ByteFilter, SessionHandle, SessionSpec, TerminalSize, TerminalSpec};
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ChannelSlot;
use crate::service::sandboxes::ssh_access::SshLogin;
use crate::service::Service;

/// Where OpenSSH's SFTP server is (Debian's `openssh-sftp-server`); it runs inside the sandbox,
/// which sees the host's `/usr`.
const SFTP_SERVERS: &[&str] = &["/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server"];
/// After the command exited, how long its output may still drain to its end (a background
/// process that keeps the pipes open does not hold the channel open beyond this; what the pipes
/// hold by then is still sent).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// What a channel runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Shell,
    Command(String),
    Sftp,
}

impl Kind {
    fn action(&self) -> &'static str {
        match self {
            Kind::Shell => "ssh.shell",
            Kind::Command(_) => "ssh.command",
            Kind::Sftp => "ssh.sftp",
        }
    }
}

/// Serve one session channel until it closes.
pub(super) async fn run_session_channel(
    service: Service,
    login: Arc<SshLogin>,
    channel: Channel<Msg>,
    slot: ChannelSlot,
    handle: russh::server::Handle,
) {
    let id = channel.id();
    let (mut reader, writer) = channel.split();
    let mut terminal: Option<TerminalSpec> = None;
    let kind = loop {
        match reader.wait().await {
            None | Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) => return,
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            }) => {
                terminal = Some(TerminalSpec {
                    size: size(col_width, row_height),
                    term,
                });
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                if let Some(t) = terminal.as_mut() {
                    t.size = size(col_width, row_height);
                }
            }
            Some(ChannelMsg::RequestShell { .. }) => break Kind::Shell,
            Some(ChannelMsg::Exec { command, .. }) => {
                break Kind::Command(String::from_utf8_lossy(&command).into_owned())
            }
            Some(ChannelMsg::RequestSubsystem { name, .. }) if name == "sftp" => break Kind::Sftp,
            Some(ChannelMsg::RequestSubsystem { .. }) => {
                let _ = handle.channel_failure(id).await;
            }
            Some(_) => {}
        }
    };
    let started = Instant::now();
    let terminal = if kind == Kind::Sftp { None } else { terminal };
    let has_terminal = terminal.is_some();
    let outcome = match start(&service, &login, &kind, terminal).await {
        Ok(session) => {
            let _ = handle.channel_success(id).await;
            let _busy = service.ssh_busy(&login);
            let redact = match (&kind, has_terminal) {
                (Kind::Command(_), false) | (Kind::Shell, false) => {
                    match service.ssh_redactions(&login).await {
                        Ok(set) => Some(set),
                        Err(e) => {
                            tracing::warn!(sandbox = %login.sandbox_id, "ssh: no redaction set: {e}");
                            let _ = handle.channel_failure(id).await;
                            return;
                        }
                    }
                }
                _ => None,
            };
            let filters = redact.map(|set| (set.byte_filter(), set.byte_filter()));
            relay(session, reader, &writer, filters).await
        }
        Err(message) => {
            // Accepted, so the client shows why (a refused request only says "failed").
            let _ = handle.channel_success(id).await;
            let mut err = writer.make_writer_ext(Some(1));
            let _ = err
                .write_all(format!("amika: {message}\n").as_bytes())
                .await;
            let _ = err.flush().await;
            Outcome { code: 1 }
        }
    };
    let _ = writer.exit_status(outcome.code as u32).await;
    let _ = writer.eof().await;
    let _ = writer.close().await;
    drop(slot);
    service
        .audit_ssh(
            &login,
            kind.action(),
            json!({
                "terminal": has_terminal,
                "exit_code": outcome.code,
                "duration_ms": started.elapsed().as_millis() as u64,
            }),
        )
        .await;
}

fn size(cols: u32, rows: u32) -> TerminalSize {
    let clamp = |n: u32, default: u16| match u16::try_from(n) {
        Ok(0) => default,
        Ok(n) => n,
        Err(_) => u16::MAX,
    };
    TerminalSize {
        cols: clamp(cols, 80),
        rows: clamp(rows, 24),
    }
}

/// Start the channel's command in the sandbox, or say why not.
async fn start(
    service: &Service,
    login: &SshLogin,
    kind: &Kind,
    terminal: Option<TerminalSpec>,
) -> Result<SessionHandle, String> {
    service.ssh_sandbox_running(login).await?;
    let argv = match kind {
        Kind::Shell => vec![login_shell().into(), "-l".into()],
        Kind::Command(command) => vec![login_shell().into(), "-c".into(), command.clone()],
        Kind::Sftp => {
            let Some(server) = SFTP_SERVERS
                .iter()
                .find(|p| std::path::Path::new(p).exists())
            else {
                return Err("SFTP is not available on this server: install openssh-sftp-server (`apt-get install -y openssh-sftp-server`)".into());
            };
            vec![(*server).into()]
        }
    };
    let spec = SessionSpec {
        argv,
        cwd: None,
        terminal,
    };
    service
        .provider
        .session(&login.sandbox_id, spec)
        .await
        .map_err(|e| match e {
            amika_sandbox::ProviderError::NotRunning(_) => {
                format!("sandbox {:?} is not running", login.sandbox_name)
            }
            e => e.to_string(),
        })
}

/// The shell of SSH sessions: bash when the sandbox has it (it sees the host's `/usr`), else sh.
fn login_shell() -> &'static str {
    if std::path::Path::new("/usr/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    }
}

struct Outcome {
    code: i32,
}

/// Relay between the channel and the session until the command exited and its output is
/// drained; the command's exit code.
async fn relay(
    session: SessionHandle,
    mut reader: ChannelReadHalf,
    writer: &russh::ChannelWriteHalf<Msg>,
    filters: Option<(ByteFilter, ByteFilter)>,
) -> Outcome {
    // Moved out field by field: what stays in `session` (the guard that kills the command's
    // group) is dropped when this returns.
    let mut stdin = session.stdin;
    let (stdout, stderr, exit) = (session.stdout, session.stderr, session.exit);
    let resize = session.resize;
    let end_output = session.end_output;
    let (out_filter, err_filter) = match filters {
        Some((o, e)) => (Some(o), Some(e)),
        None => (None, None),
    };
    let out = tokio::spawn(pump(stdout, writer.make_writer(), out_filter));
    let err = stderr.map(|e| tokio::spawn(pump(e, writer.make_writer_ext(Some(1)), err_filter)));
    let input = async move {
        while let Some(msg) = reader.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    if stdin.write_all(&data).await.is_err() {
                        // The command closed its input; keep reading the channel for the rest.
                        continue;
                    }
                    let _ = stdin.flush().await;
                }
                ChannelMsg::Eof => {
                    let _ = stdin.shutdown().await;
                    // Dropping it closes the pipe: the command reads its end.
                    stdin = Box::new(tokio::io::sink());
                }
                ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                } => {
                    if let Some(resize) = &resize {
                        resize(size(col_width, row_height));
                    }
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    };
    // The client closing the channel ends the session (the guard kills the command).
    let code = tokio::select! {
        code = exit => code.unwrap_or(255),
        () = input => return Outcome { code: 255 },
    };
    // What is written so far reaches the client before the exit status, even a slow one.
    let drained = async {
        let _ = out.await;
        if let Some(err) = err {
            let _ = err.await;
        }
    };
    if end_output.drain_within(DRAIN_GRACE, drained).await {
        tracing::debug!("ssh: output still open after the command exited");
    }
    Outcome { code }
}

/// Copy one output stream to the channel, redacted when `filter` is set.
async fn pump(
    mut from: Box<dyn AsyncRead + Send + Unpin>,
    mut to: impl AsyncWrite + Unpin,
    mut filter: Option<ByteFilter>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = match filter.as_mut() {
            Some(f) => f.push(&buf[..n]),
            None => buf[..n].to_vec(),
        };
        if !chunk.is_empty() && to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    if let Some(f) = filter {
        let rest = f.finish();
        if !rest.is_empty() {
            let _ = to.write_all(&rest).await;
        }
    }
    let _ = to.flush().await;
}
