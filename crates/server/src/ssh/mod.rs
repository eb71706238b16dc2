//! The SSH endpoint: an SSH server inside the server process (`russh`), off unless
//! `--ssh-listen` (or `ssh_listen` in the config file) is set.
//!
//! - **Login.** Either the SSH user name is a token minted by `POST /sandboxes/{id}/ssh` (see
//!   `service::sandboxes::ssh_access`), checked with the `none` method: the token is the
//!   credential, as in the public Amika API's `ssh TOKEN@HOST`; or the user name is a sandbox
//!   name and the client signs with a key its owner registered (`publickey`, see
//!   `service::ssh_keys`). Passwords and keyboard-interactive are never accepted. A refusal tells the client only "permission
//!   denied"; the server logs why.
//! - **Sessions** (`session` channels: a shell, a command, the `sftp` subsystem) run inside the
//!   sandbox exactly as exec does, through the provider's `session` (see `channel`).
//! - **Local port forwarding** (`direct-tcpip`) connects from inside the sandbox's network
//!   namespace, to an IP address or `localhost` only (a host name would be resolved by the
//!   server, not the sandbox).
//! - Stopping or deleting the sandbox disconnects its SSH connections
//!   (`SshState::end_sessions`).
//! - Every login, command, shell, SFTP session and forward is audited, never with content.

mod channel;
mod grace;
mod hostkey;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelOpenFailure, MethodKind, MethodSet};
use serde_json::json;
use tokio::sync::oneshot;

use crate::service::sandboxes::ssh_access::{SshEndpointInfo, SshLogin, SshLoginRefused};
use crate::service::Service;

pub use hostkey::{load_or_create_host_key, HOST_KEY_FILE};

/// Channels one connection may have open at once (OpenSSH's `MaxSessions` is 10); more are
/// refused, so a client opening hundreds costs the server nothing beyond the refusals.
pub const MAX_CHANNELS_PER_CONNECTION: usize = 32;
/// How long a refused login waits (the same for every refusal).
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(300);

/// Make the endpoint ready to serve on `listener`: load (or create) the host key in the data
/// dir and record the endpoint in the service, so that the API answers with it from now on.
pub fn prepare_ssh(
    service: &Service,
    listener: &tokio::net::TcpListener,
) -> std::io::Result<Arc<russh::server::Config>> {
    let key = load_or_create_host_key(&service.config().data_dir)?;
    let public = key.public_key();
    service.ssh().set_endpoint(SshEndpointInfo {
        addr: listener.local_addr()?,
        host_key: public.to_openssh().map_err(std::io::Error::other)?,
        fingerprint: public.fingerprint(russh::keys::HashAlg::Sha256).to_string(),
    });
    Ok(Arc::new(russh::server::Config {
        methods: MethodSet::from(&[MethodKind::None, MethodKind::PublicKey][..]),
        auth_rejection_time: AUTH_REJECTION_TIME,
        auth_rejection_time_initial: Some(AUTH_REJECTION_TIME),
        keys: vec![key],
        // Interactive shells may sit idle for long; dead peers are found by keepalives.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 4,
        nodelay: true,
        max_auth_attempts: 6,
        ..Default::default()
    }))
}

/// Serve SSH on `listener` (after [`prepare_ssh`]) until `shutdown` completes, then
/// disconnect every client. Each connection must log in within the login grace time
/// (`ServerConfig::ssh_login_grace`, see `grace`).
pub async fn serve_ssh(
    service: Service,
    listener: tokio::net::TcpListener,
    config: Arc<russh::server::Config>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = service.config().ssh_login_grace;
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            () = &mut shutdown => {
                let _ = stop.send(());
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: the listener stays; try again shortly.
                Err(e) => {
                    tracing::warn!("ssh: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let logged_in = Arc::new(AtomicBool::new(false));
        let handler = Connection::new(service.clone(), peer, logged_in.clone());
        let stream = grace::GraceStream::new(socket, grace, logged_in);
        let config = config.clone();
        let mut stop = stop.subscribe();
        tokio::spawn(async move {
            let session = match russh::server::run_stream(config, stream, handler).await {
                Ok(session) => session,
                Err(e) => {
                    tracing::debug!(?peer, "ssh connection setup failed: {e}");
                    return;
                }
            };
            let handle = session.handle();
            tokio::select! {
                result = session => {
                    if let Err(e) = result {
                        tracing::debug!(?peer, "ssh connection ended: {e}");
                    }
                }
                _ = stop.recv() => {
                    let _ = handle
                        .disconnect(
                            russh::Disconnect::ByApplication,
                            "the amika server is shutting down".into(),
                            "en".into(),
                        )
                        .await;
                }
            }
        });
    }
}

/// One SSH connection.
pub(crate) struct Connection {
    service: Service,
    peer: Option<SocketAddr>,
    login: Option<Arc<SshLogin>>,
    /// Set once logged in: ends the login grace time (`grace::GraceStream`).
    logged_in: Arc<AtomicBool>,
    /// Channels open now (see [`MAX_CHANNELS_PER_CONNECTION`]).
    channels: Arc<AtomicUsize>,
    /// Dropped with the connection: ends its watcher of the sandbox's end switch.
    _alive: Option<oneshot::Sender<()>>,
}

/// Counts a channel as open until dropped.
pub(crate) struct ChannelSlot(Arc<AtomicUsize>);

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connection {
    fn new(service: Service, peer: SocketAddr, logged_in: Arc<AtomicBool>) -> Self {
        Connection {
            service,
            peer: Some(peer),
            login: None,
            logged_in,
            channels: Arc::new(AtomicUsize::new(0)),
            _alive: None,
        }
    }

    /// A slot for a new channel, or `None` when the connection has its maximum open.
    fn channel_slot(&self) -> Option<ChannelSlot> {
        let open = self.channels.fetch_add(1, Ordering::SeqCst);
        let slot = ChannelSlot(self.channels.clone());
        (open < MAX_CHANNELS_PER_CONNECTION).then_some(slot)
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        match self.service.ssh_login(user).await {
            Ok(login) => {
                self.login = Some(Arc::new(login));
                Ok(Auth::Accept)
            }
            // OpenSSH tries `none` first whatever the login: a sandbox name (a key login
            // to come) is not worth a line at info.
            Err(SshLoginRefused::Malformed) => {
                tracing::debug!(peer = ?self.peer, "ssh login with none refused: not a token");
                Ok(Auth::reject())
            }
            Err(why) => {
                tracing::info!(peer = ?self.peer, "ssh login refused: {why}");
                Ok(Auth::reject())
            }
        }
    }

    /// A key is worth a signature only if it can log in: registered, and its owner has a
    /// sandbox named `user`.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(
            match self.service.ssh_key_login(user, offer.public_key).await {
                Ok(_) => Auth::Accept,
                Err(why) => {
                    tracing::info!(peer = ?self.peer, "ssh key refused: {why}");
                    Auth::reject()
                }
            },
        )
    }

    /// The client has proved it holds the key: look it up again (it may have been deleted
    /// in between).
    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.service.ssh_key_login(user, key.public_key).await {
            Ok(login) => {
                self.login = Some(Arc::new(login));
                Ok(Auth::Accept)
            }
            Err(why) => {
                tracing::info!(peer = ?self.peer, "ssh login refused: {why}");
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            return Ok(());
        };
        self.logged_in.store(true, Ordering::Release);
        tracing::info!(peer = ?self.peer, sandbox = %login.sandbox_id, user = %login.caller.user_id, "ssh login");
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        self.service
            .audit_ssh(&login, "ssh.login", json!({"peer": peer}))
            .await;
        // Disconnect when the sandbox stops or goes, or stop watching when the connection does.
        let mut end = self.service.ssh().watch_end(&login.sandbox_id);
        let (alive, gone) = oneshot::channel();
        self._alive = Some(alive);
        let handle = session.handle();
        tokio::spawn(async move {
            let ended = async {
                while !*end.borrow_and_update() {
                    if end.changed().await.is_err() {
                        return *end.borrow();
                    }
                }
                true
            };
            tokio::select! {
                true = ended => {
                    let _ = handle
                        .disconnect(
                            russh::Disconnect::ByApplication,
                            "the sandbox was stopped or deleted".into(),
                            "en".into(),
                        )
                        .await;
                }
                _ = gone => {}
            }
        });
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(login), Some(slot)) = (self.login.clone(), self.channel_slot()) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        reply.accept().await;
        let service = self.service.clone();
        let handle = session.handle();
        tokio::spawn(channel::run_session_channel(
            service, login, channel, slot, handle,
        ));
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(login), Some(slot)) = (self.login.clone(), self.channel_slot()) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let (Some(ip), Ok(port)) = (
            forward_host(host_to_connect),
            u16::try_from(port_to_connect),
        ) else {
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 1,
                    reason: "only IP addresses and localhost can be forwarded to".into(),
                })
                .await;
            return Ok(());
        };
        if let Err(why) = self.service.ssh_sandbox_running(&login).await {
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 2,
                    reason: why,
                })
                .await;
            return Ok(());
        }
        let stream = match self
            .service
            .provider
            .connect_tcp(&login.sandbox_id, ip, port)
            .await
        {
            Ok(stream) => stream,
            Err(e) => {
                tracing::info!(sandbox = %login.sandbox_id, port, "ssh forward refused: {e}");
                reply
                    .reject(ChannelOpenFailure::Other {
                        code: 2,
                        reason: e.to_string(),
                    })
                    .await;
                return Ok(());
            }
        };
        reply.accept().await;
        let service = self.service.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut stream = stream;
            let mut channel = channel.into_stream();
            let copied = tokio::io::copy_bidirectional(&mut channel, &mut stream).await;
            let (to_sandbox, from_sandbox) = copied.unwrap_or_default();
            drop(slot);
            service
                .audit_ssh(
                    &login,
                    "ssh.forward",
                    json!({
                        "port": port,
                        "bytes_in": to_sandbox,
                        "bytes_out": from_sandbox,
                        "duration_ms": started.elapsed().as_millis() as u64,
                    }),
                )
                .await;
        });
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: russh::ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The channel's task takes the terminal's size from the same request.
        session.channel_success(channel)
    }
}

/// Where a forward may connect: an IP address, or `localhost` (the sandbox's loopback).
fn forward_host(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_go_to_addresses_only() {
        assert_eq!(
            forward_host("localhost"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(forward_host("10.0.2.2"), "10.0.2.2".parse().ok());
        assert_eq!(forward_host("[::1]"), "::1".parse().ok());
        assert_eq!(forward_host("example.com"), None);
        assert_eq!(forward_host(""), None);
    }
}
