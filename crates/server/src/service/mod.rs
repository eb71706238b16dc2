//! The service layer: every rule of amika that is not HTTP. Authorization, the vault's use,
//! resolution, sandbox lifecycles and audit live here, so the API and the web UI share one
//! implementation. It holds `Arc<dyn Store>` and `Arc<dyn Provider>` and knows nothing of axum.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod credentials;
pub(crate) mod feed;
pub mod paging;
pub mod presets;
pub mod redaction;
pub mod repo_config;
pub mod resolver;
pub mod sandboxes;
pub mod sealing;
pub mod secret_batch;
pub mod secrets;
pub mod snapshots;
pub mod ssh_keys;
pub mod validate;

#[cfg(test)]
mod lifecycle_tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use amika_sandbox::{KeyedLocks, Provider, ProviderError};
use amika_store::{Store, StoreError};
use amika_types::ErrorCode;

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

impl Caller {
    /// A user acting without an API key (an SSH login).
    pub fn of_user(user: amika_store::UserRow) -> Self {
        Caller {
            user_id: user.id,
            user_name: user.name,
            org_id: user.org_id,
            is_admin: user.is_admin,
            api_key_id: String::new(),
        }
    }
}

/// What went wrong, in terms the API maps to a status and a code.
///
/// Errors about one field of a request name it in `field`, as a JSON path into the request body
/// (`name`, `secret_env_vars.DATABASE_URL`, `agent_credentials[1].type`) or a query parameter's
/// name (`limit`): the API lists it in the envelope's `details`, and the web UI shows the
/// message next to that field.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400: the request is malformed.
    #[error("{message}")]
    BadRequest {
        code: ErrorCode,
        message: String,
        field: Option<String>,
    },
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        code: ErrorCode,
        message: String,
        field: Option<String>,
    },
    /// 422: well-formed but refers to something that does not fit (unknown secret, ...).
    #[error("{message}")]
    Unprocessable {
        code: ErrorCode,
        message: String,
        field: Option<String>,
    },
    /// 413: a body (an upload) larger than the server accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 503: a prerequisite of the host is missing; the message says what to install.
    #[error("{0}")]
    Unavailable(String),
    /// 500 `value_unreadable`: a stored value failed its integrity check (changed outside
    /// amika); the message names it, never its content.
    #[error("{0}")]
    Unreadable(String),
    /// Several errors of one request, each about its own field (the entries of a batch): the
    /// answer has the first one's status and code, and every one in its `details`.
    #[error("{} errors; the first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Several(Vec<ServiceError>),
    /// 500: a failure that is not the caller's. The HTTP layer logs it once, with its whole
    /// source chain, and answers with a generic message.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ServiceError {
    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::invalid(ErrorCode::InvalidRequest, message)
    }
    /// 400 with a code of its own (`invalid_name`, `invalid_value`, ...).
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }
    /// 409.
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            code,
            message: message.into(),
            field: None,
        }
    }
    /// 422.
    pub fn unprocessable(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::Unprocessable {
            code,
            message: message.into(),
            field: None,
        }
    }
    /// 500, keeping `cause` (and its own sources) for the log.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ServiceError::Internal(cause.into())
    }

    /// The same error, about the request field at `path` (a JSON path: `name`,
    /// `secret_env_vars.DB`, `agent_credentials[0].name`). Only 400, 409 and 422 errors concern
    /// a field; on any other the path is dropped.
    pub fn at(mut self, path: impl Into<String>) -> Self {
        if let ServiceError::BadRequest { field, .. }
        | ServiceError::Conflict { field, .. }
        | ServiceError::Unprocessable { field, .. } = &mut self
        {
            *field = Some(path.into());
        }
        self
    }

    /// Every error of a request at once: none is `Ok`, one is itself, more are
    /// [`ServiceError::Several`] (in order, a nested `Several` flattened into it).
    pub fn all(errors: Vec<ServiceError>) -> std::result::Result<(), ServiceError> {
        let mut flat: Vec<ServiceError> = errors.into_iter().flat_map(ServiceError::each).collect();
        match flat.len() {
            0 => Ok(()),
            1 => Err(flat.remove(0)),
            _ => Err(ServiceError::Several(flat)),
        }
    }

    /// The errors this one stands for: those of a [`ServiceError::Several`], else itself.
    pub fn each(self) -> Vec<ServiceError> {
        match self {
            ServiceError::Several(errors) => {
                errors.into_iter().flat_map(ServiceError::each).collect()
            }
            e => vec![e],
        }
    }

    /// The request field this error concerns, if it concerns one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::BadRequest { field, .. }
            | ServiceError::Conflict { field, .. }
            | ServiceError::Unprocessable { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The machine-readable code the API answers this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::BadRequest { code, .. }
            | ServiceError::Conflict { code, .. }
            | ServiceError::Unprocessable { code, .. } => *code,
            ServiceError::Unauthorized => ErrorCode::Unauthorized,
            ServiceError::Forbidden(_) => ErrorCode::Forbidden,
            ServiceError::NotFound(_) => ErrorCode::NotFound,
            ServiceError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ServiceError::Unavailable(_) => ErrorCode::ProviderUnavailable,
            ServiceError::Unreadable(_) => ErrorCode::ValueUnreadable,
            ServiceError::Internal(_) => ErrorCode::Internal,
            ServiceError::Several(errors) => errors
                .first()
                .map_or(ErrorCode::InvalidRequest, ServiceError::code),
        }
    }
}

/// An error and its sources on one line, `outer: inner: innermost`. A source whose text its
/// outer error already ends with (`database error: {0}` over the sqlx error) is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// An internal cause with what was being done when it happened (`vault: ...`).
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
struct Context {
    context: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what.to_string()),
            StoreError::Conflict(message) => ServiceError::conflict(ErrorCode::Conflict, message),
            other => ServiceError::internal(other),
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
            ProviderError::NotRunning(_) => {
                ServiceError::conflict(ErrorCode::InvalidState, e.to_string())
            }
            ProviderError::InvalidCommand(message) => ServiceError::bad_request(message),
            ProviderError::Repository(message) => {
                ServiceError::unprocessable(ErrorCode::RepositoryUnavailable, message)
            }
            ProviderError::RepoConfig(message) => {
                ServiceError::unprocessable(ErrorCode::InvalidRepoConfig, message)
            }
            ProviderError::LimitReached(message) => {
                ServiceError::conflict(ErrorCode::SandboxLimitReached, message)
            }
            ProviderError::Io(io)
                if matches!(io.raw_os_error(), Some(libc::ENFILE | libc::EMFILE)) =>
            {
                ServiceError::Unavailable(host_files_full(&io))
            }
            ProviderError::StartFailed { .. } | ProviderError::Io(_) => ServiceError::internal(e),
        }
    }
}

/// The message of a failure for want of file descriptors: the host's table (`ENFILE`) or this
/// server's own limit (`EMFILE`).
fn host_files_full(e: &std::io::Error) -> String {
    let which = if e.raw_os_error() == Some(libc::ENFILE) {
        "the host's table of open files is full (ENFILE, fs.file-max)"
    } else {
        "the amika server has as many files open as its limit allows (EMFILE, its RLIMIT_NOFILE)"
    };
    format!("{which}: nothing could be started; try again once files are closed")
}

impl From<resolver::ResolveError> for ServiceError {
    /// A request that cannot be resolved is malformed (400) when it contradicts itself, and
    /// unprocessable (422) when it names what the caller does not have; either way the error
    /// names the entry of `agent_credentials` it concerns.
    fn from(e: resolver::ResolveError) -> Self {
        use resolver::ResolveError as R;
        let (code, malformed) = match &e {
            R::DuplicateKind { .. } | R::NoneWithSelector { .. } | R::NotAnAgent { .. } => {
                (ErrorCode::InvalidAgentCredentials, true)
            }
            R::InRepoConfig { .. } => (ErrorCode::InvalidRepoConfig, false),
            R::NotFound { .. } => (ErrorCode::AgentCredentialNotFound, false),
            R::TypeMismatch { .. } => (ErrorCode::AgentCredentialTypeMismatch, false),
        };
        let field = e.field();
        let message = e.to_string();
        let error = if malformed {
            ServiceError::invalid(code, message)
        } else {
            ServiceError::unprocessable(code, message)
        };
        error.at(field)
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
    /// Setup scripts' output while they run (see `sandboxes::setup`).
    setup_logs: Arc<Mutex<HashMap<String, Arc<sandboxes::SetupLog>>>>,
    /// Sandboxes with an idle interval and when each was last used (see `sandboxes::idle`).
    idle: Arc<Mutex<sandboxes::IdleTable>>,
    /// Agent sends running on this server: their stream events and cancel switches (see
    /// `agents::live`).
    live_sends: agents::LiveSends,
    /// Keys that authenticated lately (see `auth::AUTH_CACHE_TTL`).
    auth_cache: Arc<auth::AuthCache>,
    /// Set once when the server ends what still runs (see [`Service::end_running`]).
    ending: Arc<tokio::sync::watch::Sender<bool>>,
    /// The SSH endpoint, once it listens, and the switches that end sandboxes' SSH sessions.
    ssh: sandboxes::ssh_access::SshState,
    /// Deleted sandboxes being taken apart (see `sandboxes::teardown`).
    teardowns: sandboxes::Teardowns,
    /// Creates between their sandbox count and their insert (see `sandboxes::count`).
    creating: sandboxes::Creating,
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
            setup_logs: Default::default(),
            idle: Default::default(),
            live_sends: Default::default(),
            ending: Arc::new(tokio::sync::watch::channel(false).0),
            auth_cache: Default::default(),
            ssh: Default::default(),
            teardowns: Default::default(),
            creating: Default::default(),
        }
    }

    /// End everything that runs on this server for a client (the last step of a shutdown):
    /// each exec gets an error frame saying so and its processes are killed; each agent send
    /// ends as cancelled, recorded with the same reason. Execs started after this end at once.
    pub fn end_running(&self) {
        self.ending.send_replace(true);
        self.cancel_all_sends(
            "the server shut down while the agent was running; the agent was stopped",
        );
    }

    /// The configuration this service runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether sandboxes can start on this machine; the error says what to install.
    pub fn check_provider(&self) -> amika_sandbox::Result<()> {
        self.provider.check()
    }

    /// Whether background work (warm sandboxes being started, deleted ones taken apart) is
    /// done, so that a benchmark can keep it out of a measurement. Only with the `bench` feature.
    #[cfg(feature = "bench")]
    pub fn is_settled(&self) -> bool {
        self.provider.is_settled() && self.teardowns.is_empty()
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
