//! The service layer: every rule of amika that is not HTTP. Authorization, the vault's use,
//! resolution, sandbox lifecycles and audit live here, so the API and the web UI share one
//! implementation. It holds `Arc<dyn Store>` and `Arc<dyn Provider>` and knows nothing of axum.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod credentials;
pub mod redaction;
pub mod resolver;
pub mod sandboxes;
pub mod sealing;
pub mod secrets;
pub mod validate;

#[cfg(test)]
mod lifecycle_tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use amika_sandbox::{KeyedLocks, Provider, ProviderError};
use amika_store::{Store, StoreError};

use crate::config::ServerConfig;
use sealing::{Sealing, Vault};

/// The authenticated user a request acts for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub user_name: String,
    pub org_id: String,
    pub is_admin: bool,
    pub api_key_id: String,
}

/// What went wrong, in terms the API maps to a status and a code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400: the request is malformed; `code` is machine-readable.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 422: well-formed but refers to something that does not fit (unknown secret, ...).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 503: a prerequisite of the host is missing; the message says what to install.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged once with its cause; clients get a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ServiceError::BadRequest {
            code: "invalid_request",
            message: message.into(),
        }
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ServiceError::Internal(cause.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what.to_string()),
            StoreError::Conflict(message) => ServiceError::Conflict {
                code: "conflict",
                message,
            },
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// The one mapping of provider failures to answers: a missing prerequisite is 503 with the
/// provider's words, a sandbox that is not running is a 409 `invalid_state`, a command that
/// cannot run is a 400; a failed start or an I/O error is internal.
impl From<ProviderError> for ServiceError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Unavailable(message) => ServiceError::Unavailable(message),
            ProviderError::NotRunning(_) => ServiceError::Conflict {
                code: "invalid_state",
                message: e.to_string(),
            },
            ProviderError::InvalidCommand(message) => ServiceError::bad_request(message),
            ProviderError::StartFailed { .. } | ProviderError::Io(_) => ServiceError::internal(e),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Shared state of one server: cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    /// The vault, reachable only through `sealing`'s methods.
    sealing: Sealing,
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) config: Arc<ServerConfig>,
    /// Values injected into each running sandbox, for redacting what it prints. In memory
    /// only; rebuilt from the vault at start.
    redactions: Arc<Mutex<HashMap<String, Arc<redaction::RedactionSet>>>>,
    /// Serialises lifecycle operations per sandbox (create/start/stop/delete) and sends per
    /// agent session; an entry lives only while someone holds or waits for it.
    locks: KeyedLocks,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        provider: Arc<dyn Provider>,
        config: Arc<ServerConfig>,
    ) -> Self {
        Service {
            store,
            sealing: Sealing::new(vault),
            provider,
            config,
            redactions: Default::default(),
            locks: Default::default(),
        }
    }

    /// The configuration this service runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether sandboxes can start on this machine; the error says what to install.
    pub fn check_provider(&self) -> amika_sandbox::Result<()> {
        self.provider.check()
    }

    /// Whether the provider's background work (warm sandboxes being started) is done, so that
    /// a benchmark can keep it out of a measurement. Only with the `bench` feature.
    #[cfg(feature = "bench")]
    pub fn is_settled(&self) -> bool {
        self.provider.is_settled()
    }
}

/// A fresh id with a readable prefix, e.g. `sec_0190...`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    // Microsecond precision: what both SQLite (text) and PostgreSQL (timestamptz) keep.
    let t = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
