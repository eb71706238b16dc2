//! The HTTP face of the service: the router (buildable without a socket, for `oneshot` tests),
//! trace ids, body limits, the OpenAPI document at `/openapi.json` and its browsable UI at `/docs`.

pub mod agents;
mod allow;
pub mod auth;
/// Benchmark-only routes, compiled in only with the `bench` feature: the benchmarks enable it,
/// the `amika` binary does not.
#[cfg(feature = "bench")]
pub mod bench;
#[cfg(not(feature = "bench"))]
mod bench {
    /// Without the `bench` feature there is nothing to mount.
    pub fn routes() -> axum::Router<crate::service::Service> {
        axum::Router::new()
    }
}
pub mod error;
pub mod handlers;
mod openapi_constraints;
mod openapi_errors;
mod openapi_kinds;
mod openapi_params;
pub mod paging;
pub mod presets;
pub mod snapshots;
pub mod ssh;
pub mod web;

use amika_types::ErrorCode;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use tracing::Instrument;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use crate::service::Service;
use error::{ApiError, TRACE_ID};
use handlers as h;
use openapi_constraints::Constraints;
use openapi_errors::StandardErrors;
use openapi_kinds::KindPaths;
use openapi_params::ParamConstraints;
use paging::PagingHeaders;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("amk_...")
                    .build(),
            ),
        );
    }
}

/// Where the API is: the server that serves the document (its paths carry `/api/v0beta1`).
struct Servers;

impl utoipa::Modify for Servers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.servers = Some(vec![utoipa::openapi::server::ServerBuilder::new()
            .url("/")
            .description(Some("the amika server that serves this document"))
            .build()]);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "amika API", description = "Sandboxes for AI coding agents with secrets and agent credentials injected from an encrypted vault."),
    modifiers(&BearerAuth, &StandardErrors, &Constraints, &ParamConstraints, &PagingHeaders, &KindPaths, &Servers),
    security(("bearer" = [])),
    paths(
        h::healthz, h::me, h::create_org, h::list_orgs, h::create_user,
        h::list_api_keys, h::create_api_key, h::delete_api_key,
        h::list_secrets, h::create_secret, h::push_secrets, h::update_secret, h::delete_secret, h::reveal_secret,
        h::list_credentials, h::create_credential, h::update_credential, h::delete_credential, h::reveal_credential,
        h::list_audit_events,
        h::list_sandboxes, h::create_sandbox, h::preview_sandbox, h::get_sandbox, h::delete_sandbox,
        h::start_sandbox, h::stop_sandbox, h::exec_sandbox, h::get_setup_log,
        h::create_workspace_upload,
        agents::agent_send, agents::agent_send_stream, agents::create_agent_send_job,
        agents::get_agent_send_job, agents::follow_agent_send_job,
        agents::list_agent_sessions, agents::get_agent_session, agents::create_agent_session,
        agents::latest_agent_session, agents::update_agent_session,
        presets::list_presets, presets::install_preset, presets::remove_preset,
        ssh::create_ssh_access, ssh::revoke_ssh_access, ssh::get_ssh_endpoint,
        ssh::list_ssh_public_keys, ssh::create_ssh_public_key, ssh::delete_ssh_public_key,
        snapshots::list_snapshots, snapshots::create_snapshot, snapshots::scrub_preview,
        snapshots::get_snapshot, snapshots::delete_snapshot,
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route of the server.
pub fn router(svc: Service) -> Router {
    let max_body = svc.config.max_body_bytes;
    let api = Router::new()
        .route("/me", get(h::me))
        .route("/admin/orgs", get(h::list_orgs).post(h::create_org))
        .route("/admin/users", post(h::create_user))
        .route("/api-keys", get(h::list_api_keys).post(h::create_api_key))
        .route("/api-keys/{id}", axum::routing::delete(h::delete_api_key))
        .route("/secrets", get(h::list_secrets).post(h::create_secret))
        .route(
            "/secrets/{id}",
            get(h::list_credentials)
                .post(h::create_credential)
                .put(h::update_secret)
                .delete(h::delete_secret),
        )
        .route("/secrets/{id}/reveal", post(h::reveal_secret))
        .route("/secret-batches", post(h::push_secrets))
        .route(
            "/secrets/{id}/{credential}",
            put(h::update_credential).delete(h::delete_credential),
        )
        .route(
            "/secrets/{id}/{credential}/reveal",
            post(h::reveal_credential),
        )
        .route("/audit-events", get(h::list_audit_events))
        .route("/sandboxes", get(h::list_sandboxes).post(h::create_sandbox))
        .route("/sandboxes/resolve-preview", post(h::preview_sandbox))
        .route(
            "/sandboxes/{id}",
            get(h::get_sandbox).delete(h::delete_sandbox),
        )
        .route("/sandboxes/{id}/start", post(h::start_sandbox))
        .route("/sandboxes/{id}/stop", post(h::stop_sandbox))
        .route("/sandboxes/{id}/exec", post(h::exec_sandbox))
        .route("/sandboxes/{id}/setup-log", get(h::get_setup_log))
        .route(
            "/workspace-uploads",
            // Its own limit (`max_upload_bytes`), checked while the bundle streams to disk.
            post(h::create_workspace_upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/sandboxes/{id}/agent-send", post(agents::agent_send))
        .route(
            "/sandboxes/{id}/agent-send/stream",
            post(agents::agent_send_stream),
        )
        .route(
            "/sandboxes/{id}/agent-send-jobs/{job_id}/events",
            get(agents::follow_agent_send_job),
        )
        .route(
            "/sandboxes/{id}/agent-send-jobs",
            post(agents::create_agent_send_job),
        )
        .route(
            "/sandboxes/{id}/agent-send-jobs/{job_id}",
            get(agents::get_agent_send_job),
        )
        .route(
            "/sandboxes/{id}/sessions",
            get(agents::list_agent_sessions).post(agents::create_agent_session),
        )
        .route(
            "/sandboxes/{id}/sessions/latest",
            get(agents::latest_agent_session),
        )
        .merge(snapshots::routes())
        .merge(ssh::routes())
        .route("/presets", get(presets::list_presets))
        .route(
            "/presets/{name}",
            axum::routing::delete(presets::remove_preset),
        )
        .route("/presets/{name}/install", post(presets::install_preset))
        .route(
            "/sandboxes/{id}/sessions/{session_id}",
            get(agents::get_agent_session).patch(agents::update_agent_session),
        );
    Router::new()
        .nest(amika_types::API_BASE, api)
        .route("/healthz", get(h::healthz))
        .merge(web::routes())
        .merge(bench::routes())
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        // Unknown paths: the web module's fallback (JSON under /api/, a page for a browser).
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(allow::documented_allow))
        .layer(middleware::from_fn(trace))
        .with_state(svc)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

/// Give each request a trace id (in the error body, the `x-trace-id` header and the log), and
/// run it in a `request` span that names its method, path and trace id, so that every log line
/// of the request (the service's operation spans nest inside) carries the trace id. The path
/// only, never the query or headers.
async fn trace(req: Request, next: Next) -> Response {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", %method, %path, %trace_id);
    let started = std::time::Instant::now();
    let mut resp = TRACE_ID
        .scope(trace_id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        resp.headers_mut().insert(amika_types::TRACE_HEADER, v);
    }
    // Method, path, status and time only: never headers or bodies (they carry keys and values).
    span.in_scope(|| {
        tracing::debug!(
            status = resp.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
    });
    resp
}
