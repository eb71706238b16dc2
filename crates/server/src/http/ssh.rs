//! Handlers of SSH access: mint and revoke a sandbox's SSH token (the public Amika API's
//! `getSSH`/`revokeSSH`), and describe the server's SSH endpoint. Thin translations to
//! `service::sandboxes::ssh_access`.

use amika_types as t;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::{ApiJson, ApiPath, Auth};
use super::error::ApiResult;
use crate::service::{Service, ServiceError};

/// Mints a short-lived SSH token for a running sandbox of the caller's: `ssh
/// <ssh_destination>` (split on whitespace) opens a shell in it. The body is optional (the
/// public API sends none); `ttl_secs` sets the token's lifetime (default 1 h, at most 24 h).
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/ssh", tag = "sandboxes",
    params(("id" = String, Path, description = "sandbox id or name")),
    request_body(content = Option<t::SshAccessRequest>, description = "optional"),
    responses((status = 200, body = t::SshAccess), (status = 400, body = t::ErrorBody),
        (status = 404, body = t::ErrorBody), (status = 409, description = "the sandbox is not running", body = t::ErrorBody),
        (status = 503, description = "the server has no SSH endpoint", body = t::ErrorBody)))]
pub async fn create_ssh_access(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<t::SshAccess>> {
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        t::SshAccessRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ServiceError::bad_request(format!("invalid SSH access request: {e}")))?
    };
    Ok(Json(svc.create_ssh_access(&c, &id, req).await?))
}

/// Revokes an SSH token of this sandbox (logins with it are refused from now on).
#[utoipa::path(delete, path = "/api/v0beta1/sandboxes/{id}/ssh", tag = "sandboxes",
    params(("id" = String, Path, description = "sandbox id or name")),
    request_body = t::RevokeSshRequest,
    responses((status = 204), (status = 404, description = "no such sandbox, or no such token of it", body = t::ErrorBody)))]
pub async fn revoke_ssh_access(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<t::RevokeSshRequest>,
) -> ApiResult<StatusCode> {
    svc.revoke_ssh_access(&c, &id, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The server's SSH endpoint: whether it runs, where, and its host key's fingerprint.
#[utoipa::path(get, path = "/api/v0beta1/ssh", tag = "sandboxes",
    responses((status = 200, body = t::SshEndpoint)))]
pub async fn get_ssh_endpoint(State(svc): State<Service>, Auth(_c): Auth) -> Json<t::SshEndpoint> {
    let endpoint = svc.ssh().endpoint();
    Json(t::SshEndpoint {
        enabled: endpoint.is_some(),
        listen: endpoint.map(|e| e.addr.to_string()),
        host_key_fingerprint: endpoint.map(|e| e.fingerprint.clone()),
        host_key: endpoint.map(|e| e.host_key.clone()),
    })
}
