//! REST handlers under `/api/v0beta1`: thin translations between HTTP and the service layer.

use amika_types as t;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::{ApiJson, ApiPath, ApiQuery, Auth, KindPath};
use super::error::ApiResult;
use super::paging::{self, PageQuery};
use crate::service::credentials::parse_agent_kind;
use crate::service::Service;

/// Health check
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = t::Health)))]
pub async fn healthz() -> Json<t::Health> {
    Json(t::Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Who the API key belongs to
#[utoipa::path(get, path = "/api/v0beta1/me", tag = "auth", responses((status = 200, body = t::Me), (status = 401, body = t::ErrorBody)))]
pub async fn me(State(svc): State<Service>, Auth(c): Auth) -> ApiResult<Json<t::Me>> {
    Ok(Json(svc.me(&c).await?))
}

// ------------------------------------------------------------------ admin

/// Create an org (admins)
#[utoipa::path(post, path = "/api/v0beta1/admin/orgs", tag = "admin", request_body = t::CreateOrgRequest,
    responses((status = 201, body = t::Org), (status = 403, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn create_org(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<t::Org>)> {
    Ok((StatusCode::CREATED, Json(svc.create_org(&c, req).await?)))
}

/// List orgs (admins: their own org)
#[utoipa::path(get, path = "/api/v0beta1/admin/orgs", tag = "admin", responses((status = 200, body = Vec<t::Org>)))]
pub async fn list_orgs(State(svc): State<Service>, Auth(c): Auth) -> ApiResult<Json<Vec<t::Org>>> {
    Ok(Json(svc.list_orgs(&c).await?))
}

/// Create a user with their first API key (admins)
#[utoipa::path(post, path = "/api/v0beta1/admin/users", tag = "admin", request_body = t::CreateUserRequest,
    responses((status = 201, body = t::CreatedUser), (status = 403, body = t::ErrorBody), (status = 409, body = t::ErrorBody),
        (status = 422, description = "no such org (`org_not_found`)", body = t::ErrorBody)))]
pub async fn create_user(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<t::CreatedUser>)> {
    let (user, key) = svc.create_user(&c, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(t::CreatedUser {
            user,
            api_key: key.to_string(),
        }),
    ))
}

// ------------------------------------------------------------------ api keys

/// List your API keys
#[utoipa::path(get, path = "/api/v0beta1/api-keys", tag = "api-keys", responses((status = 200, body = t::ListApiKeysResponse)))]
pub async fn list_api_keys(
    State(svc): State<Service>,
    Auth(c): Auth,
) -> ApiResult<Json<t::ListApiKeysResponse>> {
    Ok(Json(svc.list_api_keys(&c).await?))
}

/// Create an API key
#[utoipa::path(post, path = "/api/v0beta1/api-keys", tag = "api-keys", request_body = t::CreateApiKeyRequest, responses((status = 201, body = t::ApiKeyWithValue)))]
pub async fn create_api_key(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<t::ApiKeyWithValue>)> {
    let (summary, key) = svc.create_api_key(&c, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(t::ApiKeyWithValue {
            summary,
            value: key.to_string(),
        }),
    ))
}

/// Delete an API key
#[utoipa::path(delete, path = "/api/v0beta1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)), responses((status = 204), (status = 404, body = t::ErrorBody)))]
pub async fn delete_api_key(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    svc.delete_api_key(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ secrets

/// List your secrets and your org's
#[utoipa::path(get, path = "/api/v0beta1/secrets", tag = "secrets", params(PageQuery), responses((status = 200, body = Vec<t::SecretSummary>)))]
pub async fn list_secrets(
    State(svc): State<Service>,
    Auth(c): Auth,
    uri: OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<t::SecretSummary>>)> {
    let page = q.request()?;
    let listed = svc.list_secrets_page(&c, &page).await?;
    Ok(paging::answer(listed, &uri, &page))
}

/// Create a secret
#[utoipa::path(post, path = "/api/v0beta1/secrets", tag = "secrets", request_body = t::CreateSecretRequest,
    responses((status = 201, body = t::SecretSummary), (status = 400, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn create_secret(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::CreateSecretRequest>,
) -> ApiResult<(StatusCode, Json<t::SecretSummary>)> {
    Ok((StatusCode::CREATED, Json(svc.create_secret(&c, req).await?)))
}

/// Many secrets at once, all or nothing. Not under `/secrets/`: `/secrets/{x}` names a secret
/// there, and a secret may be called `batch`.
#[utoipa::path(post, path = "/api/v0beta1/secret-batches", tag = "secrets", request_body = t::SecretBatchRequest,
    description = "Create or update (a new version of) many secrets in one transaction: every entry is checked first and every error is answered at once (`details[].field` like `secrets[3].name`); then all are stored, or none. Each is audited as a single push is. The body is bounded by the server's `max_body_bytes`.",
    responses((status = 200, body = t::SecretBatchResponse), (status = 400, body = t::ErrorBody),
        (status = 403, body = t::ErrorBody), (status = 409, body = t::ErrorBody), (status = 413, body = t::ErrorBody)))]
pub async fn push_secrets(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::SecretBatchRequest>,
) -> ApiResult<Json<t::SecretBatchResponse>> {
    Ok(Json(svc.push_secrets(&c, req).await?))
}

/// `/secrets/{x}` serves both secrets by id (PUT, DELETE) and credential kinds (GET, POST).
#[utoipa::path(put, path = "/api/v0beta1/secrets/{id}", tag = "secrets", params(("id" = String, Path, description = "secret id or name")),
    request_body = t::UpdateSecretRequest, responses((status = 200, body = t::SecretSummary), (status = 404, body = t::ErrorBody),
        (status = 409, description = "a rename or scope change collides with a secret of that name (`secret_exists`)", body = t::ErrorBody)))]
pub async fn update_secret(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<t::UpdateSecretRequest>,
) -> ApiResult<Json<t::SecretSummary>> {
    Ok(Json(svc.update_secret(&c, &id, req).await?))
}

/// Delete a secret
#[utoipa::path(delete, path = "/api/v0beta1/secrets/{id}", tag = "secrets", params(("id" = String, Path, description = "secret id or name")),
    responses((status = 204), (status = 404, body = t::ErrorBody)))]
pub async fn delete_secret(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    svc.delete_secret(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reveal a secret's value
#[utoipa::path(post, path = "/api/v0beta1/secrets/{id}/reveal", tag = "secrets", params(("id" = String, Path, description = "secret id or name")),
    responses((status = 200, body = t::RevealSecretResponse), (status = 403, body = t::ErrorBody), (status = 404, body = t::ErrorBody)))]
pub async fn reveal_secret(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<t::RevealSecretResponse>> {
    let v = svc.reveal_secret(&c, &id).await?;
    Ok(Json(t::RevealSecretResponse {
        value: v.expose_secret().to_string(),
    }))
}

// ------------------------------------------------------------------ agent credentials

/// List agent credentials of a kind
#[utoipa::path(get, path = "/api/v0beta1/secrets/{kind}", tag = "credentials", params(("kind" = String, Path, description = "claude or codex"), PageQuery),
    responses((status = 200, body = Vec<t::CredentialSummary>), (status = 400, body = t::ErrorBody)))]
pub async fn list_credentials(
    State(svc): State<Service>,
    Auth(c): Auth,
    KindPath(kind): KindPath,
    uri: OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<t::CredentialSummary>>)> {
    let page = q.request()?;
    let all = svc.list_credentials(&c, kind).await?;
    let listed = page.apply(all, |c| vec![c.name.clone(), c.scope.as_str().to_string()]);
    Ok(paging::answer(listed, &uri, &page))
}

/// Create an agent credential
#[utoipa::path(post, path = "/api/v0beta1/secrets/{kind}", tag = "credentials", params(("kind" = String, Path, description = "claude or codex")),
    request_body = t::CreateCredentialRequest, responses((status = 201, body = t::CredentialSummary), (status = 400, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn create_credential(
    State(svc): State<Service>,
    Auth(c): Auth,
    KindPath(kind): KindPath,
    ApiJson(req): ApiJson<t::CreateCredentialRequest>,
) -> ApiResult<(StatusCode, Json<t::CredentialSummary>)> {
    Ok((
        StatusCode::CREATED,
        Json(svc.create_credential(&c, kind, req).await?),
    ))
}

/// Update an agent credential
#[utoipa::path(put, path = "/api/v0beta1/secrets/{kind}/{id}", tag = "credentials", params(("kind" = String, Path), ("id" = String, Path, description = "credential id or name")),
    request_body = t::UpdateCredentialRequest, responses((status = 200, body = t::CredentialSummary), (status = 404, body = t::ErrorBody)))]
pub async fn update_credential(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath((k, id)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<t::UpdateCredentialRequest>,
) -> ApiResult<Json<t::CredentialSummary>> {
    let kind = parse_agent_kind(&k)?;
    Ok(Json(svc.update_credential(&c, kind, &id, req).await?))
}

/// Delete an agent credential
#[utoipa::path(delete, path = "/api/v0beta1/secrets/{kind}/{id}", tag = "credentials", params(("kind" = String, Path), ("id" = String, Path, description = "credential id or name")),
    responses((status = 204), (status = 404, body = t::ErrorBody)))]
pub async fn delete_credential(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath((k, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    svc.delete_credential(&c, parse_agent_kind(&k)?, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reveal an agent credential's value
#[utoipa::path(post, path = "/api/v0beta1/secrets/{kind}/{id}/reveal", tag = "credentials", params(("kind" = String, Path), ("id" = String, Path, description = "credential id or name")),
    responses((status = 200, body = t::RevealSecretResponse), (status = 403, body = t::ErrorBody), (status = 404, body = t::ErrorBody)))]
pub async fn reveal_credential(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath((k, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<t::RevealSecretResponse>> {
    let v = svc
        .reveal_credential(&c, parse_agent_kind(&k)?, &id)
        .await?;
    Ok(Json(t::RevealSecretResponse {
        value: v.expose_secret().to_string(),
    }))
}

// ------------------------------------------------------------------ audit

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many events, newest first (1..=1000, default 100).
    // Taken as text so that a non-number gets the same 400 as an out-of-range number.
    #[param(nullable, value_type = Option<i64>)]
    pub limit: Option<String>,
}

/// List audit events, newest first
#[utoipa::path(get, path = "/api/v0beta1/audit-events", tag = "audit", params(AuditQuery), responses((status = 200, body = Vec<t::AuditEvent>)))]
pub async fn list_audit_events(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<t::AuditEvent>>> {
    let limit = match q.limit.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err(crate::service::audit::invalid_audit_limit().into()),
    };
    Ok(Json(svc.list_audit_events(&c, limit).await?))
}

// ------------------------------------------------------------------ sandboxes

/// List your sandboxes
#[utoipa::path(get, path = "/api/v0beta1/sandboxes", tag = "sandboxes", params(PageQuery), responses((status = 200, body = Vec<t::Sandbox>)))]
pub async fn list_sandboxes(
    State(svc): State<Service>,
    Auth(c): Auth,
    uri: OriginalUri,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<t::Sandbox>>)> {
    let page = q.request()?;
    let all = svc.list_sandboxes(&c).await?;
    let listed = page.apply(all, |s| vec![s.name.clone()]);
    Ok(paging::answer(listed, &uri, &page))
}

/// Create a sandbox
#[utoipa::path(post, path = "/api/v0beta1/sandboxes", tag = "sandboxes", request_body = t::CreateSandboxRequest,
    responses((status = 202, body = t::Sandbox), (status = 400, body = t::ErrorBody), (status = 409, body = t::ErrorBody), (status = 422, body = t::ErrorBody), (status = 503, body = t::ErrorBody)))]
pub async fn create_sandbox(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::CreateSandboxRequest>,
) -> ApiResult<(StatusCode, Json<t::Sandbox>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(svc.create_sandbox(&c, req).await?),
    ))
}

/// Preview what a sandbox create would resolve
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/resolve-preview", tag = "sandboxes", request_body = t::CreateSandboxRequest,
    responses((status = 200, body = t::ResolutionPreview), (status = 400, body = t::ErrorBody), (status = 422, body = t::ErrorBody)))]
pub async fn preview_sandbox(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::CreateSandboxRequest>,
) -> ApiResult<Json<t::ResolutionPreview>> {
    Ok(Json(svc.preview_sandbox(&c, &req).await?))
}

/// Get a sandbox
#[utoipa::path(get, path = "/api/v0beta1/sandboxes/{id}", tag = "sandboxes", params(("id" = String, Path, description = "sandbox id or name")),
    responses((status = 200, body = t::Sandbox), (status = 404, body = t::ErrorBody)))]
pub async fn get_sandbox(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<t::Sandbox>> {
    Ok(Json(svc.get_sandbox(&c, &id).await?))
}

/// Delete a sandbox
#[utoipa::path(delete, path = "/api/v0beta1/sandboxes/{id}", tag = "sandboxes", params(("id" = String, Path, description = "sandbox id or name")),
    responses((status = 200, body = t::OkStatus), (status = 404, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn delete_sandbox(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<t::OkStatus>> {
    svc.delete_sandbox(&c, &id).await?;
    Ok(Json(t::OkStatus { ok: true }))
}

/// Start a stopped sandbox
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/start", tag = "sandboxes", params(("id" = String, Path, description = "sandbox id or name")),
    responses((status = 202, body = t::OkStatus), (status = 404, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn start_sandbox(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<t::OkStatus>)> {
    svc.start_sandbox(&c, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(t::OkStatus { ok: true })))
}

/// Stop a sandbox
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/stop", tag = "sandboxes", params(("id" = String, Path, description = "sandbox id or name")),
    responses((status = 202, body = t::OkStatus), (status = 404, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn stop_sandbox(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<t::OkStatus>)> {
    svc.stop_sandbox(&c, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(t::OkStatus { ok: true })))
}

/// Streams newline-delimited [`t::ExecFrame`]s as the command writes, with every injected
/// value replaced by `[REDACTED:<name>]`. Closing the connection kills the command.
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/exec", tag = "sandboxes", params(("id" = String, Path, description = "sandbox id or name")),
    request_body = t::ExecRequest,
    responses((status = 200, description = "newline-delimited JSON ExecFrame objects", content_type = "application/x-ndjson", body = t::ExecFrame),
        (status = 404, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn exec_sandbox(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<t::ExecRequest>,
) -> ApiResult<Response> {
    // Already redacted by the service; this only frames it. The body stream owns the command:
    // when the client goes away, the server drops the body, and dropping the stream kills the
    // command at once (even one that prints nothing).
    let exec = svc.exec_sandbox(&c, &id, req).await?;
    let body = futures::stream::unfold(exec, |mut exec| async move {
        let frame = exec.next().await?;
        Some((Ok::<_, std::io::Error>(ndjson(&frame)), exec))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response())
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SetupLogQuery {
    /// Keep the answer open until the script ends (default false: what there is now).
    #[serde(default)]
    pub follow: bool,
}

/// A sandbox's setup script output as newline-delimited [`t::ExecFrame`]s, redacted like exec
/// output, ending with the script's `exit` frame. With `follow`, live until the script ends.
#[utoipa::path(get, path = "/api/v0beta1/sandboxes/{id}/setup-log", tag = "sandboxes",
    params(("id" = String, Path, description = "sandbox id or name"), SetupLogQuery),
    responses((status = 200, description = "newline-delimited JSON ExecFrame objects", content_type = "application/x-ndjson", body = t::ExecFrame),
        (status = 404, body = t::ErrorBody)))]
pub async fn get_setup_log(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SetupLogQuery>,
) -> ApiResult<Response> {
    let log = svc.setup_log(&c, &id, q.follow).await?;
    let body = futures::stream::unfold(log, |mut log| async move {
        let frame = log.next().await?;
        Some((Ok::<_, std::io::Error>(ndjson(&frame)), log))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response())
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The workspace directory's name (`~/workspace/<repo_name>`).
    pub repo_name: String,
    /// The repository's origin, shown on the sandbox (never cloned; no credentials).
    #[serde(default)]
    pub origin_url: Option<String>,
}

/// Send a local repository as a `git bundle` (the body, `application/octet-stream`), for a
/// create to name in `workspace_upload` within the hour.
#[utoipa::path(post, path = "/api/v0beta1/workspace-uploads", tag = "sandboxes", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "a git bundle"),
    responses((status = 201, body = t::WorkspaceUpload), (status = 400, body = t::ErrorBody), (status = 413, body = t::ErrorBody)))]
pub async fn create_workspace_upload(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<t::WorkspaceUpload>)> {
    let upload = svc
        .create_workspace_upload(
            &c,
            &q.repo_name,
            q.origin_url.as_deref(),
            body.into_data_stream(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(upload)))
}

/// A frame as one line of newline-delimited JSON.
fn ndjson(frame: &t::ExecFrame) -> Vec<u8> {
    match serde_json::to_vec(frame) {
        Ok(mut line) => {
            line.push(b'\n');
            line
        }
        Err(_) => Vec::new(),
    }
}
