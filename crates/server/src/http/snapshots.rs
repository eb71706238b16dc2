//! Handlers of the snapshots (`/sandbox-snapshots`, the public Amika API's paths): list,
//! create (202, the capture goes on in the background), scrub preview, get, delete. Thin
//! translations to `service::snapshots`.

use amika_types as t;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::auth::{ApiJson, ApiPath, ApiQuery, Auth};
use super::error::ApiResult;
use crate::service::{Service, ServiceError};

/// The snapshot routes, under the API's base path.
pub fn routes() -> Router<Service> {
    Router::new()
        .route(
            "/sandbox-snapshots",
            get(list_snapshots).post(create_snapshot),
        )
        .route("/sandbox-snapshots/scrub-preview", get(scrub_preview))
        .route(
            "/sandbox-snapshots/{ref}",
            get(get_snapshot).delete(delete_snapshot),
        )
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only snapshots of this source sandbox (its id or name).
    #[serde(default)]
    pub source_sandbox_id: Option<String>,
    /// Only snapshots of this repository (amika keeps no repository ids: none match).
    #[serde(default)]
    pub repository_id: Option<String>,
}

/// `by=ref` (what the public SDK sends): the path names the snapshot or sandbox by its slug,
/// which is what amika accepts anyway (ids work too).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ByQuery {
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// The sandbox (its name or id).
    pub sandbox: String,
    #[serde(default)]
    pub by: Option<String>,
}

fn check_by(by: Option<&str>) -> Result<(), ServiceError> {
    match by {
        None | Some("ref") | Some("id") | Some("name") => Ok(()),
        Some(other) => Err(ServiceError::bad_request(format!(
            "by {other:?}: expected ref, id or name"
        ))
        .at("by")),
    }
}

/// The caller's snapshots, newest first.
#[utoipa::path(get, path = "/api/v0beta1/sandbox-snapshots", tag = "snapshots", params(ListQuery),
    responses((status = 200, body = t::SnapshotList), (status = 400, body = t::ErrorBody)))]
pub async fn list_snapshots(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<t::SnapshotList>> {
    Ok(Json(
        svc.list_snapshots(
            &c,
            q.source_sandbox_id.as_deref().filter(|s| !s.is_empty()),
            q.repository_id.as_deref(),
        )
        .await?,
    ))
}

/// Capture a sandbox (202, state `capturing`; poll the snapshot until `active` or `failed`).
/// The sandbox is `snapshotting` meanwhile. `scrub_and_delete` (the default) refuses to
/// capture when an injected value is still in its files (the snapshot fails naming them) and
/// deletes the sandbox once captured; `full` keeps everything (unsafe) and keeps the sandbox.
#[utoipa::path(post, path = "/api/v0beta1/sandbox-snapshots", tag = "snapshots", request_body = t::CreateSnapshotRequest,
    responses((status = 202, body = t::SandboxSnapshot), (status = 400, body = t::ErrorBody), (status = 404, body = t::ErrorBody),
        (status = 409, body = t::ErrorBody), (status = 503, body = t::ErrorBody)))]
pub async fn create_snapshot(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<t::CreateSnapshotRequest>,
) -> ApiResult<(StatusCode, Json<t::SandboxSnapshot>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(svc.create_snapshot(&c, req).await?),
    ))
}

/// What a `scrub_and_delete` capture of the sandbox removes: its injected credential files and
/// env vars, by path and name (never a value).
#[utoipa::path(get, path = "/api/v0beta1/sandbox-snapshots/scrub-preview", tag = "snapshots", params(PreviewQuery),
    responses((status = 200, body = t::ScrubPreview), (status = 400, body = t::ErrorBody), (status = 404, body = t::ErrorBody)))]
pub async fn scrub_preview(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> ApiResult<Json<t::ScrubPreview>> {
    check_by(q.by.as_deref())?;
    Ok(Json(svc.scrub_preview(&c, &q.sandbox).await?))
}

/// Get a snapshot
#[utoipa::path(get, path = "/api/v0beta1/sandbox-snapshots/{ref}", tag = "snapshots",
    params(("ref" = String, Path, description = "snapshot name or id"), ByQuery),
    responses((status = 200, body = t::SandboxSnapshot), (status = 404, body = t::ErrorBody)))]
pub async fn get_snapshot(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(r): ApiPath<String>,
    ApiQuery(q): ApiQuery<ByQuery>,
) -> ApiResult<Json<t::SandboxSnapshot>> {
    check_by(q.by.as_deref())?;
    Ok(Json(svc.get_snapshot(&c, &r).await?))
}

/// Delete a snapshot and its archive (not while it is capturing).
#[utoipa::path(delete, path = "/api/v0beta1/sandbox-snapshots/{ref}", tag = "snapshots",
    params(("ref" = String, Path, description = "snapshot name or id"), ByQuery),
    responses((status = 200, body = t::OkStatus), (status = 404, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn delete_snapshot(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(r): ApiPath<String>,
    ApiQuery(q): ApiQuery<ByQuery>,
) -> ApiResult<Json<t::OkStatus>> {
    check_by(q.by.as_deref())?;
    svc.delete_snapshot(&c, &r).await?;
    Ok(Json(t::OkStatus { ok: true }))
}
