//! SSH access to sandboxes, on the service's side (no SSH protocol here: that is `crate::ssh`):
//! minting and revoking per-sandbox tokens, checking a token at login, and the audit of what
//! an SSH login does.
//!
//! A token is the SSH user name (`ssh -p PORT TOKEN@HOST`). It is random (192 bits), shown once
//! in the answer that mints it; the store keeps only its SHA-256, as for API keys. A token is
//! good for one sandbox of one user until it expires (default 1 h, at most 24 h) or is revoked.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use amika_store::{SandboxRow, SshTokenRow, StoreError};
use amika_types::{self as t, ErrorCode, SandboxState};
use rand::RngCore;
use serde_json::json;
use tokio::sync::watch;

use crate::service::audit::Subject;
use crate::service::auth::hash_api_key;
use crate::service::{new_id, now, Caller, Result, Service, ServiceError};

/// Every token starts with this (and 48 lowercase hex digits follow).
pub const SSH_TOKEN_PREFIX: &str = "amkssh_";
const TOKEN_HEX_LEN: usize = 48;
/// How long a token is good for when the request does not say.
pub const DEFAULT_SSH_TTL: Duration = Duration::from_secs(3600);
/// Bounds of a requested lifetime.
pub const MIN_SSH_TTL_SECS: u64 = 60;
pub const MAX_SSH_TTL_SECS: u64 = 24 * 3600;

/// The running SSH endpoint, as the API describes it.
#[derive(Debug, Clone)]
pub struct SshEndpointInfo {
    pub addr: std::net::SocketAddr,
    /// `ssh-ed25519 AAAA...`.
    pub host_key: String,
    /// `SHA256:...`.
    pub fingerprint: String,
}

/// The service's SSH state: the endpoint once it listens, and a switch per sandbox that ends
/// its SSH sessions (flipped when the sandbox stops or is deleted).
#[derive(Debug, Clone, Default)]
pub struct SshState {
    endpoint: Arc<OnceLock<SshEndpointInfo>>,
    ends: Arc<Mutex<std::collections::HashMap<String, watch::Sender<bool>>>>,
}

impl SshState {
    /// Record the endpoint (once, when it starts listening).
    pub fn set_endpoint(&self, info: SshEndpointInfo) {
        let _ = self.endpoint.set(info);
    }

    pub fn endpoint(&self) -> Option<&SshEndpointInfo> {
        self.endpoint.get()
    }

    /// A receiver that turns `true` when the sandbox's SSH sessions must end.
    pub fn watch_end(&self, sandbox_id: &str) -> watch::Receiver<bool> {
        let mut ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        ends.retain(|_, tx| tx.receiver_count() > 0);
        ends.entry(sandbox_id.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// End every SSH session of the sandbox.
    pub fn end_sessions(&self, sandbox_id: &str) {
        let ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = ends.get(sandbox_id) {
            let _ = tx.send(true);
        }
    }
}

/// Who logged in, to which sandbox, and with what.
#[derive(Debug, Clone)]
pub struct SshLogin {
    pub caller: Caller,
    pub sandbox_id: String,
    pub sandbox_name: String,
    pub via: SshLoginVia,
}

/// What a login was made with (its id goes into every audit event of the login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshLoginVia {
    /// A token minted by `POST /sandboxes/{id}/ssh` (its id).
    Token(String),
    /// A registered public key (its id).
    Key(String),
}

/// Why a login is refused. The SSH client is only told "permission denied"; the server logs
/// this.
#[derive(Debug, thiserror::Error)]
pub enum SshLoginRefused {
    #[error("malformed token")]
    Malformed,
    #[error("unknown token")]
    Unknown,
    #[error("token revoked")]
    Revoked,
    #[error("token expired")]
    Expired,
    #[error("public key not registered")]
    UnknownKey,
    #[error("the key's owner has no sandbox of that name")]
    UnknownSandbox,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Whether `token` has the form of a token (before any lookup).
pub fn is_well_formed_token(token: &str) -> bool {
    token.strip_prefix(SSH_TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == TOKEN_HEX_LEN
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_HEX_LEN / 2];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SSH_TOKEN_PREFIX}{}", hex::encode(bytes))
}

fn ssh_off() -> ServiceError {
    ServiceError::Unavailable(
        "the SSH endpoint is off: start the server with --ssh-listen ADDR (or `ssh_listen` in its config file)"
            .into(),
    )
}

/// The `409` for SSH access to a sandbox that is not running.
pub fn not_running_message(name: &str, state: SandboxState) -> String {
    format!("sandbox {name:?} is {state}: SSH needs it running (`amika sandbox start {name}`)")
}

impl Service {
    /// The server's SSH endpoint state.
    pub fn ssh(&self) -> &SshState {
        &self.ssh
    }

    /// Mint an SSH access token for a running sandbox of the caller's.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn create_ssh_access(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::SshAccessRequest,
    ) -> Result<t::SshAccess> {
        let ttl = match req.ttl_secs {
            None => DEFAULT_SSH_TTL,
            Some(s) if (MIN_SSH_TTL_SECS..=MAX_SSH_TTL_SECS).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                return Err(ServiceError::bad_request(format!(
                    "ttl_secs must be {MIN_SSH_TTL_SECS} to {MAX_SSH_TTL_SECS} (24 h), not {s}"
                ))
                .at("ttl_secs"))
            }
        };
        let endpoint = self.ssh.endpoint().cloned().ok_or_else(ssh_off)?;
        let row = self.find_sandbox(caller, id_or_name).await?;
        let row = self.observe_runtime(row).await?;
        if row.state != SandboxState::Running {
            return Err(ServiceError::conflict(
                ErrorCode::InvalidState,
                not_running_message(&row.name, row.state),
            ));
        }
        let token = new_token();
        let created_at = now();
        let expires_at =
            created_at + chrono::Duration::from_std(ttl).map_err(ServiceError::internal)?;
        let token_row = SshTokenRow {
            id: new_id("sst"),
            hash: hash_api_key(&token),
            user_id: caller.user_id.clone(),
            sandbox_id: row.id.clone(),
            created_at,
            expires_at,
            revoked_at: None,
        };
        self.store.insert_ssh_token(&token_row).await?;
        self.audit(
            caller,
            "ssh.token_created",
            sandbox_subject(&row),
            Some(&row.id),
            json!({"token_id": token_row.id, "expires_at": expires_at}),
        )
        .await?;
        Ok(t::SshAccess {
            ssh_destination: format!(
                "-p {} {token}@{}",
                endpoint.addr.port(),
                dest_host(&endpoint)
            ),
            token,
            expires_at,
            repo_name: repo_name(&row),
            host_key_fingerprint: endpoint.fingerprint,
            host_key: endpoint.host_key,
        })
    }

    /// Revoke a token of this sandbox and caller; `404` for any other token.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn revoke_ssh_access(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::RevokeSshRequest,
    ) -> Result<()> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        let not_found = || ServiceError::NotFound("ssh token".into());
        if !is_well_formed_token(&req.token) {
            return Err(not_found());
        }
        let hash = hash_api_key(&req.token);
        match self
            .store
            .revoke_ssh_token(&hash, &row.id, &caller.user_id, now())
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        }
        self.audit(
            caller,
            "ssh.token_revoked",
            sandbox_subject(&row),
            Some(&row.id),
            json!({}),
        )
        .await
    }

    /// Check a token presented as an SSH user name: who it is for and which sandbox. The
    /// sandbox's state is checked when a session starts (so that the refusal can say why).
    pub async fn ssh_login(&self, token: &str) -> Result<SshLogin, SshLoginRefused> {
        if !is_well_formed_token(token) {
            return Err(SshLoginRefused::Malformed);
        }
        let internal = |e: StoreError| SshLoginRefused::Internal(e.to_string());
        let row = match self.store.get_ssh_token_by_hash(&hash_api_key(token)).await {
            Ok(row) => row,
            Err(StoreError::NotFound(_)) => return Err(SshLoginRefused::Unknown),
            Err(e) => return Err(internal(e)),
        };
        if row.revoked_at.is_some() {
            return Err(SshLoginRefused::Revoked);
        }
        if row.expires_at <= now() {
            return Err(SshLoginRefused::Expired);
        }
        let user = self.store.get_user(&row.user_id).await.map_err(internal)?;
        let sandbox = match self.store.get_sandbox(&row.sandbox_id).await {
            Ok(s) if s.user_id == user.id => s,
            Ok(_) | Err(StoreError::NotFound(_)) => return Err(SshLoginRefused::Unknown),
            Err(e) => return Err(internal(e)),
        };
        Ok(SshLogin {
            caller: Caller::of_user(user),
            sandbox_id: sandbox.id,
            sandbox_name: sandbox.name,
            via: SshLoginVia::Token(row.id),
        })
    }

    /// The sandbox of a login, if it is running now; else the message that says why not.
    pub async fn ssh_sandbox_running(&self, login: &SshLogin) -> Result<(), String> {
        let row = match self.store.get_sandbox(&login.sandbox_id).await {
            Ok(row) => row,
            Err(StoreError::NotFound(_)) => {
                return Err(format!("sandbox {:?} was deleted", login.sandbox_name))
            }
            Err(e) => return Err(format!("internal error: {e}")),
        };
        let row = self
            .observe_runtime(row)
            .await
            .map_err(|e| format!("internal error: {e}"))?;
        if row.state == SandboxState::Running {
            Ok(())
        } else {
            Err(not_running_message(&row.name, row.state))
        }
    }

    /// The redaction set of a login's sandbox (for non-terminal output).
    pub(crate) async fn ssh_redactions(
        &self,
        login: &SshLogin,
    ) -> Result<Arc<crate::service::redaction::RedactionSet>> {
        let row = self.store.get_sandbox(&login.sandbox_id).await?;
        self.redactions_for(&row).await
    }

    /// Keeps the login's sandbox from counting as idle while a session runs.
    pub(crate) fn ssh_busy(&self, login: &SshLogin) -> super::Busy {
        self.busy(&login.sandbox_id)
    }

    /// Audit one thing an SSH login did (`ssh.login`, `ssh.command`, `ssh.shell`, `ssh.sftp`,
    /// `ssh.forward`), with `detail` (never content). A failure to write is logged, not fatal
    /// to the session (the session has already happened).
    pub async fn audit_ssh(&self, login: &SshLogin, action: &str, detail: serde_json::Value) {
        let subject = Subject {
            object_type: "sandbox",
            object_id: &login.sandbox_id,
            object_name: &login.sandbox_name,
            version: None,
        };
        let mut detail = detail;
        if let Some(map) = detail.as_object_mut() {
            let (field, id) = match &login.via {
                SshLoginVia::Token(id) => ("token_id", id),
                SshLoginVia::Key(id) => ("key_id", id),
            };
            map.insert(field.into(), id.clone().into());
        }
        if let Err(e) = self
            .audit(
                &login.caller,
                action,
                subject,
                Some(&login.sandbox_id),
                detail,
            )
            .await
        {
            tracing::warn!(sandbox = %login.sandbox_id, "cannot audit {action}: {e}");
        }
    }
}

fn sandbox_subject(row: &SandboxRow) -> Subject<'_> {
    Subject {
        object_type: "sandbox",
        object_id: &row.id,
        object_name: &row.name,
        version: None,
    }
}

fn repo_name(row: &SandboxRow) -> String {
    row.workspace
        .as_ref()
        .and_then(|w| w.repo.as_ref())
        .map(|r| r.name.clone())
        .unwrap_or_default()
}

/// The host clients connect to: the endpoint's address, or loopback when it listens on every
/// address (`0.0.0.0`, `::`).
pub fn dest_host(endpoint: &SshEndpointInfo) -> String {
    match endpoint.addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".into(),
        ip if ip.is_unspecified() => "::1".into(),
        ip => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_one_form() {
        let token = new_token();
        assert!(is_well_formed_token(&token), "{token}");
        assert_ne!(token, new_token());
        for bad in [
            "",
            "amkssh_",
            "root",
            &token[..token.len() - 1],
            &format!("{token}0"),
            &token.to_uppercase(),
            &token.replace("amkssh_", "amk_"),
            "amkssh_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            assert!(!is_well_formed_token(bad), "{bad:?}");
        }
    }
}
