//! The web UI: server-rendered pages over the same [`Service`] methods the REST API calls, so
//! every rule (validation, visibility, resolution) has one implementation.
//!
//! This module holds the router, the headers every page gets and the shared responses; sign-in,
//! sessions and CSRF live in [`session`], submitted forms and their errors in [`form`], and the
//! pages in `secrets`, `sandboxes` (with the New sandbox form in `sandbox_form` and the
//! repository, env and setup parts of both in `workspace`), `snapshots` (with the capture form
//! in `snapshot_capture`), `agents` and `presets`.
//!
//! Every page is sent with a strict Content-Security-Policy (scripts, styles and everything else
//! from this server only) and `X-Frame-Options: DENY`; the CSS and JS are embedded in the binary.

mod agent_stream;
mod agents;
mod audit;
#[cfg(test)]
mod flow_tests;
mod form;
mod html;
mod presets;
#[cfg(test)]
mod presets_flow_tests;
mod sandbox_checks;
mod sandbox_form;
mod sandboxes;
mod secret_edit;
mod secrets;
mod session;
mod snapshot_capture;
mod snapshots;
#[cfg(test)]
mod snapshots_flow_tests;
mod ssh;
#[cfg(test)]
mod ssh_flow_tests;
#[cfg(test)]
mod stream_tests;
mod workspace;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::error::ApiError;
use crate::service::{Service, ServiceError};
pub use form::{Fields, FormErrors, WebForm};
pub use html::escape;
pub use session::{cookie_header, Sessions, WebSession, LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL};
use session::{login, login_page, logout};

/// The policy sent with every UI response: nothing from any other origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");
const FAVICON: &str = include_str!("static/favicon.svg");

/// Every UI route. Merged into [`super::router`]; the session store is created here, one per
/// router.
pub fn routes() -> Router<Service> {
    let sessions = Arc::new(Sessions::default());
    Router::new()
        .route("/", get(|| async { Redirect::to("/sandboxes") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/secrets", get(secrets::page).post(secrets::create_secret))
        .route("/credentials", post(secrets::create_credential))
        .route(
            "/secrets/{id}/edit",
            get(secret_edit::edit).post(secret_edit::save),
        )
        .route(
            "/secrets/{id}/delete",
            get(secrets::confirm_delete_secret).post(secrets::delete_secret),
        )
        .route(
            "/credentials/{kind}/{id}/delete",
            get(secrets::confirm_delete_credential).post(secrets::delete_credential),
        )
        .route("/sandboxes", get(sandboxes::list))
        .route(
            "/sandboxes/new",
            get(sandbox_form::new_form).post(sandbox_form::submit),
        )
        .route("/sandboxes/{name}", get(sandboxes::detail))
        .route(
            "/sandboxes/{name}/agent-send",
            get(agents::send_page).post(agents::send),
        )
        .route(
            "/sandboxes/{name}/conversation",
            get(agents::conversation_json),
        )
        .route(
            "/sandboxes/{name}/agent-jobs/{job_id}/events",
            get(agent_stream::job_events),
        )
        .route(
            "/sandboxes/{name}/sessions/{session_id}/cancel",
            post(agent_stream::cancel),
        )
        .route(
            "/sandboxes/{name}/snapshot",
            get(snapshot_capture::capture_page).post(snapshot_capture::capture),
        )
        .route("/snapshots", get(snapshots::page))
        .route(
            "/snapshots/{id}/delete",
            get(snapshots::confirm_delete).post(snapshots::delete),
        )
        .route("/sandboxes/{name}/ssh", post(ssh::mint))
        .route("/sandboxes/{name}/ssh/revoke", post(ssh::revoke))
        .route("/sandboxes/{name}/stop", post(sandboxes::stop))
        .route("/sandboxes/{name}/start", post(sandboxes::start))
        .route("/audit", get(audit::page))
        .route(
            "/sandboxes/{name}/delete",
            get(sandboxes::confirm_delete).post(sandboxes::delete),
        )
        .route("/presets", get(presets::page))
        .route("/presets/{name}/install", post(presets::install))
        .route(
            "/presets/{name}/remove",
            get(presets::confirm_remove).post(presets::remove),
        )
        .route("/static/app.css", get(|| asset("text/css", APP_CSS)))
        .route("/static/app.js", get(|| asset("text/javascript", APP_JS)))
        .route(
            "/static/favicon.svg",
            get(|| asset("image/svg+xml", FAVICON)),
        )
        .fallback(not_found)
        .layer(Extension(sessions))
        .layer(Extension(Arc::new(presets::Installs::default())))
        .layer(middleware::from_fn(security_headers))
}

/// Any path no route has: under the API, or for a client that does not ask for a page, the
/// API's JSON 404; for a browser, a page in the UI's style (in the signed-in frame when there
/// is a session) with the way back.
async fn not_found(State(svc): State<Service>, req: Request) -> Response {
    let path = req.uri().path();
    let wants_page = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if path.starts_with("/api/") || !wants_page {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            amika_types::ErrorCode::NotFound,
            "no such route",
        )
        .into_response();
    }
    let body = format!(
        "<section class=\"card narrow-card\"><h1>Page not found</h1>\
<p>There is no page at <code>{}</code>. It may have been deleted, or the address mistyped.</p>\
<p class=\"actions\"><a class=\"button primary\" href=\"/sandboxes\">Sandboxes</a>\
<a class=\"button ghost\" href=\"/secrets\">Secrets</a><a class=\"button ghost\" href=\"/audit\">Audit</a></p></section>",
        escape(path)
    );
    let (mut parts, _) = req.into_parts();
    let session = WebSession::from_request_parts(&mut parts, &svc).await.ok();
    let page = match &session {
        Some(s) => html::page("Page not found", &s.chrome(html::Nav::None), &body, None),
        None => html::bare_page("Page not found", &body),
    };
    html_response(StatusCode::NOT_FOUND, page)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Headers on every UI response: the CSP, no framing, no sniffing, no referrer to other sites,
/// and no caching of pages (they list what a user holds).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

// ------------------------------------------------------------------ responses

pub fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A redirect after a successful POST (the browser then GETs the target).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A failure with no form to show it next to: its status and message on a page of its own.
pub fn error_page(e: ServiceError) -> Response {
    let api = ApiError::from(e);
    let title = match api.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_server_error() => "Something went wrong",
        _ => "Request failed",
    };
    let body = html::bare_page(
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a class=\"button\" href=\"/sandboxes\">Back to sandboxes</a></p>",
            escape(title),
            escape(&api.message)
        ),
    );
    html_response(api.status, body)
}

/// An error page inside the signed-in frame.
pub fn error_in_page(session: &WebSession, e: ServiceError) -> Response {
    let api = ApiError::from(e);
    let title = if api.status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Request failed"
    };
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a class=\"button\" href=\"/sandboxes\">Back to sandboxes</a></p>",
        escape(title),
        escape(&api.message)
    );
    html_response(
        api.status,
        html::page(title, &session.chrome(html::Nav::None), &body, None),
    )
}
