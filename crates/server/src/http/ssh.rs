//! Handlers of SSH access: mint and revoke a sandbox's SSH token (the public Amika API's
//! `getSSH`/`revokeSSH`), describe the server's SSH endpoint, and register public keys. Thin
//! translations to `service::sandboxes::ssh_access` and `service::ssh_keys`.

use amika_types as t;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::auth::{ApiJson, ApiPath, ApiQuery, Auth};
use super::error::ApiResult;
use super::paging::PageQuery;
use crate::service::sandboxes::ssh_access::dest_host;
use crate::service::{Service, ServiceError};

/// The SSH routes: tokens, the endpoint, registered public keys (the static
/// `/secrets/ssh-public-keys` wins over `/secrets/{id}`).
pub fn routes() -> Router<Service> {
    Router::new()
        .route(
            "/sandboxes/{id}/ssh",
            post(create_ssh_access).delete(revoke_ssh_access),
        )
        .route("/ssh", get(get_ssh_endpoint))
        .route(
            "/secrets/ssh-public-keys",
            get(list_ssh_public_keys).post(create_ssh_public_key),
        )
        .route(
            "/secrets/ssh-public-keys/{id}",
            delete(delete_ssh_public_key),
        )
}

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
        // `null` is the document's "no body" too (the body schema is nullable).
        let bad = |e: serde_json::Error| {
            ServiceError::bad_request(format!("invalid SSH access request: {e}"))
        };
        let mut value: serde_json::Value = serde_json::from_slice(&body).map_err(bad)?;
        if !(value.is_object() || value.is_null()) {
            return Err(ServiceError::bad_request(
                "invalid SSH access request: the body must be a JSON object (`{\"ttl_secs\": N}`), null or empty",
            )
            .into());
        }
        super::auth::integral_floats_as_integers(&mut value);
        serde_json::from_value::<Option<t::SshAccessRequest>>(value)
            .map_err(bad)?
            .unwrap_or_default()
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
        host: endpoint.map(dest_host),
        port: endpoint.map(|e| e.addr.port()),
        host_key_fingerprint: endpoint.map(|e| e.fingerprint.clone()),
        host_key: endpoint.map(|e| e.host_key.clone()),
    })
}

/// Your registered SSH public keys.
#[utoipa::path(get, path = "/api/v0beta1/secrets/ssh-public-keys", tag = "secrets", params(PageQuery),
    responses((status = 200, body = Vec<t::SshPublicKey>)))]
pub async fn list_ssh_public_keys(
    State(svc): State<Service>,
    Auth(c): Auth,
    uri: OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<t::SshPublicKey>>)> {
    let page = q.request()?;
    let all = svc.list_ssh_public_keys(&c).await?;
    let listed = page.apply(all, |k| vec![k.name.clone()]);
    Ok(super::paging::answer(listed, &uri, &page))
}

/// Registers a public key: you can then log in to any running sandbox of yours as `ssh -p
/// PORT SANDBOX_NAME@HOST` with the matching private key. A key is unique across the server.
#[utoipa::path(post, path = "/api/v0beta1/secrets/ssh-public-keys", tag = "secrets",
    request_body = t::SshPublicKeyRequest,
    responses((status = 201, body = t::SshPublicKey), (status = 400, body = t::ErrorBody),
        (status = 409, description = "the key is already registered, or you have a key of that name", body = t::ErrorBody)))]
pub async fn create_ssh_public_key(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::SshPublicKeyRequest>,
) -> ApiResult<(StatusCode, Json<t::SshPublicKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(svc.create_ssh_public_key(&c, req).await?),
    ))
}

/// Removes a registered public key of yours (by id or name); logins with it are refused from
/// now on.
#[utoipa::path(delete, path = "/api/v0beta1/secrets/ssh-public-keys/{id}", tag = "secrets",
    params(("id" = String, Path, description = "key id or name")),
    responses((status = 204), (status = 404, body = t::ErrorBody)))]
pub async fn delete_ssh_public_key(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    svc.delete_ssh_public_key(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
