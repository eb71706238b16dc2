//! Handlers of the presets: list, install (a stream of NDJSON progress lines), remove. Thin
//! translations to `service::presets`.

use amika_types as t;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::sync::mpsc;

use super::auth::{ApiPath, ApiQuery, Auth};
use super::error::ApiResult;
use crate::service::presets::{self, InstallProgress};
use crate::service::{error_chain, Service};

/// Every preset of this server: its pinned packages, whether its current version is installed,
/// the installed versions, and whether creates get it by default.
#[utoipa::path(get, path = "/api/v0beta1/presets", tag = "presets",
    responses((status = 200, body = t::PresetList)))]
pub async fn list_presets(State(svc): State<Service>, Auth(_c): Auth) -> Json<t::PresetList> {
    Json(svc.list_presets())
}

/// Installs the preset's pinned version (admins), unless it is installed: `npm install` on
/// the host into a new read-only layer beside the older versions (so this is also the
/// update). Answers 200 at once and streams newline-delimited [`t::PresetInstallEvent`]s:
/// `progress` lines, then one `done` (with the preset) or `error`. The install goes on if the
/// client goes away.
#[utoipa::path(post, path = "/api/v0beta1/presets/{name}/install", tag = "presets",
    params(("name" = String, Path, description = "preset name, e.g. coder")),
    responses((status = 200, description = "newline-delimited JSON PresetInstallEvent objects", content_type = "application/x-ndjson", body = t::PresetInstallEvent),
        (status = 403, body = t::ErrorBody),
        (status = 404, description = "unknown preset (the message lists them)", body = t::ErrorBody)))]
pub async fn install_preset(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let def = svc.check_preset_install(&c, &name)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let progress = InstallProgress::new(tx.clone());
    tokio::spawn(async move {
        let last = match svc.install_preset(&c, def, progress).await {
            Ok(preset) => t::PresetInstallEvent {
                event: t::PresetInstallEventKind::Done,
                step: presets::STEPS,
                steps: presets::STEPS,
                message: format!("{} {} is installed", preset.name, preset.current),
                preset: Some(preset),
            },
            Err(e) => {
                tracing::warn!(preset = %def.name, "preset install failed: {}", error_chain(&e));
                t::PresetInstallEvent {
                    event: t::PresetInstallEventKind::Error,
                    step: 0,
                    steps: presets::STEPS,
                    message: e.to_string(),
                    preset: None,
                }
            }
        };
        let _ = tx.send(last);
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::io::Error>(line), rx))
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
pub struct RemoveQuery {
    /// Remove only this version (404 if not installed); default: every version no sandbox uses.
    #[serde(default)]
    pub version: Option<String>,
}

/// Removes the preset's installed versions (admins) that no sandbox uses; versions in use are
/// kept and listed with their sandboxes (delete those first).
#[utoipa::path(delete, path = "/api/v0beta1/presets/{name}", tag = "presets",
    params(("name" = String, Path, description = "preset name, e.g. coder"), RemoveQuery),
    responses((status = 200, body = t::PresetRemoval),
        (status = 400, description = "an unknown query parameter", body = t::ErrorBody),
        (status = 403, body = t::ErrorBody),
        (status = 404, description = "unknown preset (the message lists them), or `version` not installed", body = t::ErrorBody)))]
pub async fn remove_preset(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RemoveQuery>,
) -> ApiResult<Json<t::PresetRemoval>> {
    Ok(Json(
        svc.remove_preset(&c, &name, q.version.as_deref()).await?,
    ))
}
