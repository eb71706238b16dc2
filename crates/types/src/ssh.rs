//! SSH access to a sandbox (`POST`/`DELETE /sandboxes/{id}/ssh`): the wire of the public Amika
//! API's `getSSH`/`revokeSSH`, plus fields of ours (the host key's fingerprint, the port).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Optional body of `POST /sandboxes/{id}/ssh` (the public API sends none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshAccessRequest {
    /// How long the token is valid, in seconds: 60 to 86400 (24 h); default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// A new SSH access token for one sandbox. `Debug` hides the token.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SshAccess {
    /// `ssh` arguments, split on whitespace: `-p PORT TOKEN@HOST`.
    pub ssh_destination: String,
    /// The token (the SSH user name). Shown once: only its hash is stored.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// The sandbox's repository directory under `~/workspace` ("" without one).
    pub repo_name: String,
    /// The SSH endpoint's host key, as `ssh-keygen -lf` shows it (`SHA256:...`).
    pub host_key_fingerprint: String,
    /// The host key itself (`ssh-ed25519 AAAA...`), for a `known_hosts` line.
    pub host_key: String,
}

impl fmt::Debug for SshAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshAccess")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("repo_name", &self.repo_name)
            .field("host_key_fingerprint", &self.host_key_fingerprint)
            .finish_non_exhaustive()
    }
}

/// Body of `DELETE /sandboxes/{id}/ssh`. `Debug` hides the token.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeSshRequest {
    pub token: String,
}

impl fmt::Debug for RevokeSshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RevokeSshRequest { token: [REDACTED] }")
    }
}

/// The SSH endpoint of a server (`GET /ssh`): whether it runs, where, and its host key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SshEndpoint {
    pub enabled: bool,
    /// `HOST:PORT` it listens on (null when off).
    pub listen: Option<String>,
    /// The host and port clients connect to (loopback when it listens on every address): with
    /// a registered public key, `ssh -p PORT SANDBOX_NAME@HOST`.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub host_key_fingerprint: Option<String>,
    pub host_key: Option<String>,
}

/// Body of `POST /secrets/ssh-public-keys`: register a public key, to log in to your sandboxes
/// as `ssh -p PORT SANDBOX_NAME@HOST`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshPublicKeyRequest {
    /// Your name for the key (letters, digits, `.`, `_`, `-`), unique among your keys.
    pub name: String,
    /// One OpenSSH public key line, as in `~/.ssh/id_ed25519.pub`: `ssh-ed25519 AAAA... comment`.
    /// Ed25519, ECDSA, and RSA of 2048 bits or more.
    pub public_key: String,
}

// `Debug` shows the key's length only: a private key pasted by mistake must not reach a log.
impl fmt::Debug for SshPublicKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshPublicKeyRequest")
            .field("name", &self.name)
            .field("public_key_len", &self.public_key.len())
            .finish()
    }
}

/// A registered SSH public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SshPublicKey {
    pub id: String,
    pub name: String,
    /// The key's algorithm, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// `SHA256:...`, as `ssh-keygen -lf` shows it.
    pub fingerprint: String,
    /// The key without its comment: `ssh-ed25519 AAAA...`.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_request_never_shows_its_key() {
        let req = SshPublicKeyRequest {
            name: "laptop".into(),
            public_key: "-----BEGIN OPENSSH PRIVATE KEY-----b3BlbnNzaC1rZXk".into(),
        };
        let shown = format!("{req:?}");
        assert!(
            shown.contains("laptop") && shown.contains("public_key_len"),
            "{shown}"
        );
        assert!(!shown.contains("b3BlbnNzaC1rZXk"), "{shown}");
    }
}
