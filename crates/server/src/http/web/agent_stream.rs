//! The live side of the agent message box: a running send's events for the page script, and
//! Cancel.
//!
//! `GET /sandboxes/{name}/agent-jobs/{job_id}/events` is the API's
//! `GET .../agent-send-jobs/{job_id}/events` for a signed-in browser: the same
//! `Service::follow_agent_send_job` and the same server-sent events
//! ([`send_events`](crate::http::agents::send_events): `status`, redacted `delta`s, then `done`
//! or `error`), authorized by the session cookie. Closing it leaves the send running, so a
//! closed tab never stops an agent. The page script (`static/app.js`) opens it with
//! `EventSource` when the conversation has a reply in flight; without scripts the page reloads
//! itself instead (see `sandboxes::detail_page`).
//!
//! `POST /sandboxes/{name}/sessions/{session_id}/cancel` (a CSRF-checked form, so it also works
//! without scripts) is the API's `PATCH .../sessions/{session_id}` with `status: cancelled`:
//! the service stops the session's running send (recorded `agent_cancelled`) and marks the
//! session cancelled; the next message continues it.

use amika_types::{self as t, AgentSessionStatus};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::sandboxes::sandbox_href;
use super::{error_in_page, see_other, WebForm, WebSession};
use crate::http::agents::send_events;
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::Service;

/// `GET /sandboxes/{name}/agent-jobs/{job_id}/events`: the send's events as SSE; a job that is
/// not the signed-in user's (or does not exist) is a JSON 404, which `EventSource` reports as a
/// failure and the page script answers by polling instead.
pub async fn job_events(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath((name, job_id)): ApiPath<(String, String)>,
) -> Response {
    match svc
        .follow_agent_send_job(&session.caller, &name, &job_id)
        .await
    {
        Ok(follow) => send_events(follow).into_response(),
        Err(e) => {
            let answer = ApiError::from(e);
            let body = serde_json::json!({
                "error": {"code": answer.code, "message": answer.message}
            });
            (
                answer.status,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// `POST /sandboxes/{name}/sessions/{session_id}/cancel`: stop the session's running send,
/// then back to the sandbox's conversation.
pub async fn cancel(
    State(svc): State<Service>,
    ApiPath((name, session_id)): ApiPath<(String, String)>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let s = match svc.get_sandbox(&session.caller, &name).await {
        Ok(s) => s,
        Err(e) => return error_in_page(&session, e),
    };
    let req = t::UpdateSessionRequest {
        status: Some(AgentSessionStatus::Cancelled),
        metadata: None,
    };
    match svc
        .update_agent_session(&session.caller, &s.id, &session_id, req)
        .await
    {
        Ok(cancelled) => {
            session.flash(format!(
                "Session {} cancelled: a reply still running in it was stopped.",
                cancelled.id
            ));
            see_other(&format!("{}#conversation", sandbox_href(&s)))
        }
        Err(e) => error_in_page(&session, e),
    }
}
