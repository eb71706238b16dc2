//! Typed async HTTP client for amika's REST API (`/api/v0beta1`).
//!
//! One method per endpoint, taking and returning the wire types of `amika_types`, so the CLI and
//! the end-to-end tests speak to the server through exactly one definition of every route. Errors
//! are typed: the server's error envelope becomes [`ClientError::Api`]; a server that cannot be
//! reached becomes [`ClientError::Connect`] with a message that tells the user what to do.
//!
//! The API key is held privately and never appears in `Debug` output or in any error.

mod agents;
mod paging;
mod presets;
mod secret_batch;
mod snapshots;
mod ssh;
mod stream;

use std::fmt;
use std::time::{Duration, Instant};

use amika_types::{
    AgentKind, ApiKeyWithValue, AuditEvent, CreateApiKeyRequest, CreateCredentialRequest,
    CreateOrgRequest, CreateSandboxRequest, CreateSecretRequest, CreateUserRequest, CreatedUser,
    CredentialSummary, ErrorBody, ErrorCode, ErrorDetail, ExecRequest, Health, ListApiKeysResponse,
    Me, OkStatus, Org, ResolutionPreview, RevealSecretResponse, Sandbox, SandboxState,
    SecretSummary, UpdateCredentialRequest, UpdateSecretRequest, WorkspaceUpload, API_BASE,
    TRACE_HEADER,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

pub use paging::{Page, NEXT_CURSOR_HEADER, PAGE_SIZE};
use serde::de::DeserializeOwned;
use serde::Serialize;
pub use stream::{AgentEventStream, ExecStream};

/// How long an ordinary (non-streaming) request may take before it is abandoned.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a create (or its preview) may take: the server clones the repository first, and
/// gives a clone up to 30 minutes.
const CLONE_REQUEST_TIMEOUT: Duration = Duration::from_secs(35 * 60);
/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a non-envelope error body that is quoted in an error message.
const MAX_QUOTED_BODY: usize = 200;

/// Everything that can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status; `code` is the envelope's machine-readable code
    /// (`unauthorized`, `secret_not_found`, ...), or `http_<status>` when the body had none.
    #[error("{message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
        trace_id: Option<String>,
        /// The request fields the error is about (`field` is a JSON path such as
        /// `secret_env_vars.DB`); empty when it is about none in particular.
        details: Vec<ErrorDetail>,
    },
    /// Nothing answered at the configured address.
    #[error("cannot reach the amika server at {url}: is it running? (`amika up`)")]
    Connect {
        url: String,
        /// The transport's own explanation (e.g. "Connection refused"); kept out of `Display`
        /// so the user sees one actionable line.
        reason: String,
    },
    /// The request failed in transport after connecting (timeout, reset, bad body, ...).
    #[error("request to {url} failed: {reason}")]
    Http { url: String, reason: String },
    /// The server answered 2xx with a body that is not what the contract says.
    #[error("unexpected response from {url}: {reason}")]
    Decode { url: String, reason: String },
    /// The configured base URL is not a usable http(s) URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A wait for a sandbox state gave up.
    #[error("timed out after {secs}s waiting for sandbox {sandbox:?} (last state: {state})")]
    Timeout {
        sandbox: String,
        state: SandboxState,
        secs: u64,
    },
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The envelope's error code of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The envelope's code as an [`ErrorCode`]; `None` for other errors and for a code this
    /// client does not know (a newer server's, or `http_<status>`).
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code()?.parse().ok()
    }

    /// Whether this is an API error with the given code.
    pub fn is_code(&self, wanted: ErrorCode) -> bool {
        self.code() == Some(wanted.as_str())
    }

    /// The request field an API error is about (the first of its details), if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { details, .. } => details.first().map(|d| d.field.as_str()),
            _ => None,
        }
    }
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters is escaped,
/// so a name with `/`, `?`, `#`, `%` or spaces addresses exactly that name.
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A client for one amika server, optionally authenticated with an API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Scheme, host and port (and any prefix), without a trailing slash.
    base_url: String,
    api_key: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:7070`). The URL is checked
    /// when the first request is made, so a bad one surfaces as [`ClientError::InvalidUrl`].
    pub fn new(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("amika-client/", env!("CARGO_PKG_VERSION")))
            .build()
            // Building only fails when a TLS backend cannot initialise; this client has none.
            .unwrap_or_else(|_| reqwest::Client::new());
        let base_url = base_url.into().trim().trim_end_matches('/').to_string();
        Client {
            http,
            base_url,
            api_key,
        }
    }

    /// The server's base URL as configured (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether the client sends an API key.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    // ------------------------------------------------------------ plumbing

    fn check_base_url(&self) -> Result<(), ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: self.base_url.clone(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(&self.base_url).map_err(|e| {
            invalid(&format!(
                "{e}: expected http://HOST:PORT, e.g. http://127.0.0.1:7070"
            ))
        })?;
        match parsed.scheme() {
            "http" => Ok(()),
            "https" => Err(invalid(
                "https is not supported by this build; use http:// (e.g. behind a local proxy)",
            )),
            other => Err(invalid(&format!(
                "unsupported scheme {other:?}; use http://"
            ))),
        }
    }

    /// `base_url + API_BASE + path`; `path` starts with `/` and has its segments encoded.
    fn api_url(&self, path: &str) -> String {
        format!("{}{}{}", self.base_url, API_BASE, path)
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    fn transport_error(&self, url: &str, err: reqwest::Error) -> ClientError {
        if err.is_connect() {
            ClientError::Connect {
                url: self.base_url.clone(),
                reason: root_cause(&err),
            }
        } else if err.is_timeout() {
            ClientError::Http {
                url: url.to_string(),
                reason: "the server did not answer in time".to_string(),
            }
        } else {
            ClientError::Http {
                url: url.to_string(),
                reason: root_cause(&err),
            }
        }
    }

    /// Sends a request and returns the response if its status is a success; an error status
    /// becomes [`ClientError::Api`].
    async fn send(&self, builder: RequestBuilder, url: &str) -> Result<Response, ClientError> {
        self.check_base_url()?;
        let response = builder
            .send()
            .await
            .map_err(|e| self.transport_error(url, e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ClientError> {
        let url = self.api_url(path);
        let response = self.send_json(method, &url, body).await?;
        decode(response, &url).await
    }

    /// [`Client::call`] for a request that clones a repository before it answers: bounded by
    /// [`CLONE_REQUEST_TIMEOUT`] instead of [`REQUEST_TIMEOUT`].
    async fn call_slow<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, ClientError> {
        let url = self.api_url(path);
        let builder = self
            .request(method, &url)
            .timeout(CLONE_REQUEST_TIMEOUT)
            .json(body);
        let response = self.send(builder, &url).await?;
        decode(response, &url).await
    }

    async fn call_no_content(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<(), ClientError> {
        let url = self.api_url(path);
        self.send_json(method, &url, body).await?;
        Ok(())
    }

    async fn send_json(
        &self,
        method: Method,
        url: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Response, ClientError> {
        let mut builder = self.request(method, url).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        self.send(builder, url).await
    }

    // ------------------------------------------------------------ health and identity

    /// `GET /healthz` (no auth, outside the API base).
    pub async fn health(&self) -> Result<Health, ClientError> {
        let url = format!("{}/healthz", self.base_url);
        let builder = self.http.get(&url).timeout(REQUEST_TIMEOUT);
        let response = self.send(builder, &url).await?;
        decode(response, &url).await
    }

    /// `GET /me`: who the API key belongs to.
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.call(Method::GET, "/me", NO_BODY).await
    }

    // ------------------------------------------------------------ admin

    /// `POST /admin/orgs` (admin only).
    pub async fn create_org(&self, req: &CreateOrgRequest) -> Result<Org, ClientError> {
        self.call(Method::POST, "/admin/orgs", Some(req)).await
    }

    /// `GET /admin/orgs` (admin only).
    pub async fn list_orgs(&self) -> Result<Vec<Org>, ClientError> {
        self.call(Method::GET, "/admin/orgs", NO_BODY).await
    }

    /// `POST /admin/users` (admin only): the new user with their first API key.
    pub async fn create_user(&self, req: &CreateUserRequest) -> Result<CreatedUser, ClientError> {
        self.call(Method::POST, "/admin/users", Some(req)).await
    }

    // ------------------------------------------------------------ api keys

    /// `GET /api-keys`: the caller's keys, obfuscated.
    pub async fn list_api_keys(&self) -> Result<ListApiKeysResponse, ClientError> {
        self.call(Method::GET, "/api-keys", NO_BODY).await
    }

    /// `POST /api-keys`: a new key for the caller; the only answer that carries its value.
    pub async fn create_api_key(
        &self,
        req: &CreateApiKeyRequest,
    ) -> Result<ApiKeyWithValue, ClientError> {
        self.call(Method::POST, "/api-keys", Some(req)).await
    }

    /// `DELETE /api-keys/{id}`.
    pub async fn delete_api_key(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/api-keys/{}", encode_path_segment(id));
        self.call_no_content(Method::DELETE, &path, NO_BODY).await
    }

    // ------------------------------------------------------------ generic secrets

    /// `GET /secrets`: the caller's secrets and the org's, without values.
    pub async fn list_secrets(&self) -> Result<Vec<SecretSummary>, ClientError> {
        self.list_all("/secrets").await
    }

    /// `POST /secrets` (409 `secret_exists` when the caller already has the name in that scope).
    pub async fn create_secret(
        &self,
        req: &CreateSecretRequest,
    ) -> Result<SecretSummary, ClientError> {
        self.call(Method::POST, "/secrets", Some(req)).await
    }

    /// `PUT /secrets/{id}` (`id_or_name`: an id or a name).
    pub async fn update_secret(
        &self,
        id_or_name: &str,
        req: &UpdateSecretRequest,
    ) -> Result<SecretSummary, ClientError> {
        let path = format!("/secrets/{}", encode_path_segment(id_or_name));
        self.call(Method::PUT, &path, Some(req)).await
    }

    /// `DELETE /secrets/{id}`.
    pub async fn delete_secret(&self, id_or_name: &str) -> Result<(), ClientError> {
        let path = format!("/secrets/{}", encode_path_segment(id_or_name));
        self.call_no_content(Method::DELETE, &path, NO_BODY).await
    }

    /// `POST /secrets/{id}/reveal` (audited).
    pub async fn reveal_secret(
        &self,
        id_or_name: &str,
    ) -> Result<RevealSecretResponse, ClientError> {
        let path = format!("/secrets/{}/reveal", encode_path_segment(id_or_name));
        self.call(Method::POST, &path, NO_BODY).await
    }

    // ------------------------------------------------------------ agent credentials

    /// `GET /secrets/{kind}`.
    pub async fn list_credentials(
        &self,
        kind: AgentKind,
    ) -> Result<Vec<CredentialSummary>, ClientError> {
        let path = format!("/secrets/{}", kind.as_str());
        self.list_all(&path).await
    }

    /// `POST /secrets/{kind}` (409 on a duplicate name in that scope).
    pub async fn create_credential(
        &self,
        kind: AgentKind,
        req: &CreateCredentialRequest,
    ) -> Result<CredentialSummary, ClientError> {
        let path = format!("/secrets/{}", kind.as_str());
        self.call(Method::POST, &path, Some(req)).await
    }

    /// `PUT /secrets/{kind}/{id}`.
    pub async fn update_credential(
        &self,
        kind: AgentKind,
        id_or_name: &str,
        req: &UpdateCredentialRequest,
    ) -> Result<CredentialSummary, ClientError> {
        let path = format!(
            "/secrets/{}/{}",
            kind.as_str(),
            encode_path_segment(id_or_name)
        );
        self.call(Method::PUT, &path, Some(req)).await
    }

    /// `DELETE /secrets/{kind}/{id}`.
    pub async fn delete_credential(
        &self,
        kind: AgentKind,
        id_or_name: &str,
    ) -> Result<(), ClientError> {
        let path = format!(
            "/secrets/{}/{}",
            kind.as_str(),
            encode_path_segment(id_or_name)
        );
        self.call_no_content(Method::DELETE, &path, NO_BODY).await
    }

    /// `POST /secrets/{kind}/{id}/reveal` (audited).
    pub async fn reveal_credential(
        &self,
        kind: AgentKind,
        id_or_name: &str,
    ) -> Result<RevealSecretResponse, ClientError> {
        let path = format!(
            "/secrets/{}/{}/reveal",
            kind.as_str(),
            encode_path_segment(id_or_name)
        );
        self.call(Method::POST, &path, NO_BODY).await
    }

    // ------------------------------------------------------------ audit

    /// `GET /audit-events?limit=N`, newest first.
    pub async fn list_audit_events(
        &self,
        limit: Option<u32>,
    ) -> Result<Vec<AuditEvent>, ClientError> {
        let path = match limit {
            Some(n) => format!("/audit-events?limit={n}"),
            None => "/audit-events".to_string(),
        };
        self.call(Method::GET, &path, NO_BODY).await
    }

    // ------------------------------------------------------------ sandboxes

    /// `GET /sandboxes`.
    pub async fn list_sandboxes(&self) -> Result<Vec<Sandbox>, ClientError> {
        self.list_all("/sandboxes").await
    }

    /// `POST /sandboxes` → 202: the sandbox, possibly still `initializing`
    /// (see [`Client::wait_for_sandbox`]).
    pub async fn create_sandbox(&self, req: &CreateSandboxRequest) -> Result<Sandbox, ClientError> {
        self.call_slow(Method::POST, "/sandboxes", req).await
    }

    /// `GET /sandboxes/{id}` (`id_or_name`: an id or a name).
    pub async fn get_sandbox(&self, id_or_name: &str) -> Result<Sandbox, ClientError> {
        let path = format!("/sandboxes/{}", encode_path_segment(id_or_name));
        self.call(Method::GET, &path, NO_BODY).await
    }

    /// `DELETE /sandboxes/{id}`.
    pub async fn delete_sandbox(&self, id_or_name: &str) -> Result<OkStatus, ClientError> {
        let path = format!("/sandboxes/{}", encode_path_segment(id_or_name));
        self.call(Method::DELETE, &path, NO_BODY).await
    }

    /// `POST /sandboxes/{id}/start` → 202.
    pub async fn start_sandbox(&self, id_or_name: &str) -> Result<OkStatus, ClientError> {
        let path = format!("/sandboxes/{}/start", encode_path_segment(id_or_name));
        self.call(Method::POST, &path, NO_BODY).await
    }

    /// `POST /sandboxes/{id}/stop` → 202.
    pub async fn stop_sandbox(&self, id_or_name: &str) -> Result<OkStatus, ClientError> {
        let path = format!("/sandboxes/{}/stop", encode_path_segment(id_or_name));
        self.call(Method::POST, &path, NO_BODY).await
    }

    /// `POST /sandboxes/resolve-preview`: what a create would resolve to; creates nothing.
    pub async fn resolve_preview(
        &self,
        req: &CreateSandboxRequest,
    ) -> Result<ResolutionPreview, ClientError> {
        self.call_slow(Method::POST, "/sandboxes/resolve-preview", req)
            .await
    }

    /// Polls `GET /sandboxes/{id}` every `interval` until its state is one of `until`, or
    /// `failed` (always a stop condition), and returns it; gives up after `timeout`.
    pub async fn wait_for_sandbox(
        &self,
        id_or_name: &str,
        until: &[SandboxState],
        interval: Duration,
        timeout: Duration,
    ) -> Result<Sandbox, ClientError> {
        let started = Instant::now();
        loop {
            let sandbox = self.get_sandbox(id_or_name).await?;
            if sandbox.state == SandboxState::Failed || until.contains(&sandbox.state) {
                return Ok(sandbox);
            }
            if started.elapsed() >= timeout {
                return Err(ClientError::Timeout {
                    sandbox: id_or_name.to_string(),
                    state: sandbox.state,
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// `POST /sandboxes/{id}/exec`: runs a command and streams its output as it happens.
    pub async fn exec(
        &self,
        id_or_name: &str,
        req: &ExecRequest,
    ) -> Result<ExecStream, ClientError> {
        let url = self.api_url(&format!(
            "/sandboxes/{}/exec",
            encode_path_segment(id_or_name)
        ));
        // No overall timeout: a command may legitimately run for a long time; the request's own
        // `timeout_secs` bounds it on the server.
        let builder = self.request(Method::POST, &url).json(req);
        let response = self.send(builder, &url).await?;
        Ok(ExecStream::new(response, url))
    }

    /// `GET /sandboxes/{id}/setup-log`: the setup script's output as frames, ending with its
    /// `exit` frame; with `follow`, live until the script ends. A 404 means no script ran.
    pub async fn setup_log(
        &self,
        id_or_name: &str,
        follow: bool,
    ) -> Result<ExecStream, ClientError> {
        let url = self.api_url(&format!(
            "/sandboxes/{}/setup-log?follow={follow}",
            encode_path_segment(id_or_name)
        ));
        // No overall timeout: a followed script may run for as long as its own deadline.
        let builder = self.request(Method::GET, &url);
        let response = self.send(builder, &url).await?;
        Ok(ExecStream::new(response, url))
    }

    /// `POST /workspace-uploads?repo_name=..&origin_url=..` → 201: sends a local repository
    /// (a `git bundle` of `len` bytes, read from `bundle` as it is sent) for a create to name in
    /// `workspace_upload`. `progress(sent, len)` is called after every chunk read.
    pub async fn upload_workspace(
        &self,
        repo_name: &str,
        origin_url: Option<&str>,
        bundle: tokio::fs::File,
        len: u64,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<WorkspaceUpload, ClientError> {
        let mut path = format!(
            "/workspace-uploads?repo_name={}",
            encode_path_segment(repo_name)
        );
        if let Some(origin) = origin_url {
            path.push_str(&format!("&origin_url={}", encode_path_segment(origin)));
        }
        let url = self.api_url(&path);
        // No overall timeout: a large repository over a slow link takes as long as it takes;
        // the server bounds the size.
        let builder = self
            .request(Method::POST, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(upload_body(bundle, len, progress));
        let response = self.send(builder, &url).await?;
        decode(response, &url).await
    }
}

/// Bytes read per chunk of an upload.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// A request body that reads `file` chunk by chunk as the request is sent, reporting progress.
fn upload_body(
    file: tokio::fs::File,
    len: u64,
    progress: impl FnMut(u64, u64) + Send + 'static,
) -> reqwest::Body {
    reqwest::Body::wrap_stream(upload_chunks(file, len, progress))
}

/// `file`'s bytes as a stream of chunks; `progress(sent, len)` after each.
fn upload_chunks(
    file: tokio::fs::File,
    len: u64,
    progress: impl FnMut(u64, u64) + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some((file, 0u64, progress)), move |state| async move {
        let (mut file, sent, mut progress) = state?;
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                let sent = sent + n as u64;
                progress(sent, len);
                Some((Ok(buf), Some((file, sent, progress))))
            }
            // The error ends the body (and so the request); nothing is read after it.
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// `None` for the body parameter of body-less requests.
const NO_BODY: Option<&()> = None;

/// Reads a 2xx body as `T`.
async fn decode<T: DeserializeOwned>(response: Response, url: &str) -> Result<T, ClientError> {
    let bytes = response.bytes().await.map_err(|e| ClientError::Http {
        url: url.to_string(),
        reason: root_cause(&e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// Turns an error response into [`ClientError::Api`], from the envelope when there is one.
async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let header_trace = response
        .headers()
        .get(TRACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.bytes().await.unwrap_or_default();
    parse_error_body(status, header_trace, &body)
}

/// The pure part of [`api_error`], for tests.
fn parse_error_body(status: StatusCode, header_trace: Option<String>, body: &[u8]) -> ClientError {
    if let Ok(envelope) = serde_json::from_slice::<ErrorBody>(body) {
        let code = if envelope.code.is_empty() {
            envelope.error_code
        } else {
            envelope.code
        };
        let trace_id = Some(envelope.trace_id)
            .filter(|t| !t.is_empty())
            .or(header_trace);
        return ClientError::Api {
            status: status.as_u16(),
            code,
            message: envelope.message,
            trace_id,
            details: envelope.details,
        };
    }
    // Not our envelope (a proxy, or a body-size limit answered before our handlers ran).
    let reason = status.canonical_reason().unwrap_or("error");
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("HTTP {} {}", status.as_u16(), reason)
    } else {
        let quoted: String = text.chars().take(MAX_QUOTED_BODY).collect();
        format!(
            "HTTP {} {}: {}",
            status.as_u16(),
            reason,
            quoted.replace('\n', " ")
        )
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge.as_str().to_string(),
        other => format!("http_{}", other.as_u16()),
    };
    ClientError::Api {
        status: status.as_u16(),
        code,
        message,
        trace_id: header_trace,
        details: Vec::new(),
    }
}

/// The innermost cause of an error, which is usually the one a person can act on
/// ("Connection refused" rather than "error sending request").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_path_segment("dev-box_1.x~"), "dev-box_1.x~");
        assert_eq!(encode_path_segment("a/b c?d#e%f"), "a%2Fb%20c%3Fd%23e%25f");
        assert_eq!(encode_path_segment("é"), "%C3%A9");
        assert_eq!(encode_path_segment(".."), "..");
    }

    #[test]
    fn debug_never_prints_the_api_key() {
        let client = Client::new("http://127.0.0.1:7070/", Some("amk_supersecret".into()));
        let debug = format!("{client:?}");
        assert!(!debug.contains("supersecret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert_eq!(client.base_url(), "http://127.0.0.1:7070");
    }

    #[test]
    fn error_envelope_becomes_an_api_error() {
        let body = br#"{"type":"error","code":"secret_not_found","error_code":"secret_not_found",
            "message":"secret \"x\" not found","details":[],"trace_id":"t-1"}"#;
        let err = parse_error_body(StatusCode::UNPROCESSABLE_ENTITY, None, body);
        match &err {
            ClientError::Api {
                status,
                code,
                message,
                trace_id,
                ..
            } => {
                assert_eq!(*status, 422);
                assert_eq!(code, "secret_not_found");
                assert_eq!(message, "secret \"x\" not found");
                assert_eq!(trace_id.as_deref(), Some("t-1"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.to_string(), "secret \"x\" not found (secret_not_found)");
        assert!(err.is_code(ErrorCode::SecretNotFound));
        assert_eq!(err.error_code(), Some(ErrorCode::SecretNotFound));
        assert_eq!(err.status(), Some(422));
    }

    #[test]
    fn an_error_names_its_field_and_a_newer_code_still_reads() {
        let body = br#"{"type":"error","code":"secret_not_found","error_code":"secret_not_found",
            "message":"m","details":[{"field":"secret_env_vars.DB","code":"secret_not_found","message":"m"}],
            "trace_id":"t-1"}"#;
        let err = parse_error_body(StatusCode::UNPROCESSABLE_ENTITY, None, body);
        assert_eq!(err.field(), Some("secret_env_vars.DB"));
        let body = br#"{"type":"error","code":"from_the_future","error_code":"from_the_future",
            "message":"newer","trace_id":"t-1"}"#;
        let err = parse_error_body(StatusCode::BAD_REQUEST, None, body);
        assert_eq!(err.code(), Some("from_the_future"));
        assert_eq!((err.error_code(), err.field()), (None, None));
        assert_eq!(err.to_string(), "newer (from_the_future)");
    }

    #[test]
    fn non_envelope_error_bodies_still_give_a_clear_error() {
        let err = parse_error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("t-2".into()),
            b"length limit exceeded",
        );
        assert!(err.is_code(ErrorCode::PayloadTooLarge), "{err:?}");
        assert_eq!(
            err.to_string(),
            "HTTP 413 Payload Too Large: length limit exceeded (payload_too_large)"
        );
        let err = parse_error_body(StatusCode::BAD_GATEWAY, None, b"");
        assert_eq!(err.to_string(), "HTTP 502 Bad Gateway (http_502)");
    }

    #[tokio::test]
    async fn an_upload_streams_the_whole_file_in_chunks_and_reports_progress() {
        use futures::StreamExt;
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo.bundle");
        let data: Vec<u8> = (0..(UPLOAD_CHUNK * 2 + 1000))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let len = data.len() as u64;
        let chunks: Vec<Vec<u8>> = upload_chunks(file, len, move |sent, total| {
            log.lock().unwrap().push((sent, total))
        })
        .map(Result::unwrap)
        .collect()
        .await;
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.len() <= UPLOAD_CHUNK));
        assert_eq!(chunks.concat(), data);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), chunks.len());
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
        assert!(seen.iter().all(|(_, total)| *total == len));
        assert_eq!(seen.last(), Some(&(len, len)));
    }

    #[tokio::test]
    async fn unreachable_server_is_a_connect_error_with_advice() {
        // A port that was just free: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Client::new(format!("http://127.0.0.1:{port}"), None);
        let err = client.health().await.unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("cannot reach the amika server at http://127.0.0.1:{port}: is it running? (`amika up`)")
        );
    }

    #[tokio::test]
    async fn invalid_base_url_is_reported() {
        let client = Client::new("not a url", None);
        let err = client.me().await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidUrl { .. }), "{err:?}");
        let err = Client::new("127.0.0.1:7070", None)
            .check_base_url()
            .unwrap_err();
        assert!(
            err.to_string().contains("expected http://HOST:PORT"),
            "{err}"
        );
        let client = Client::new("https://example.invalid", None);
        let err = client.me().await.unwrap_err();
        assert!(err.to_string().contains("https is not supported"), "{err}");
    }
}
