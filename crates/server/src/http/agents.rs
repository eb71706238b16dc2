//! Handlers of `agent-send` (synchronous), its job form and the sessions of a sandbox: thin
//! translations to `service::agents`.
//!
//! The synchronous send runs inside the request's future: when the client goes away, the
//! server drops that future, which kills the agent and records the send as cancelled.

use std::convert::Infallible;

use amika_types::{self as t, AgentStreamEvent};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use serde::Deserialize;

use super::auth::{ApiJson, ApiPath, ApiQuery, Auth};
use super::error::{current_trace_id, ApiError, ApiResult};
use crate::service::agents::{send_outcome, SendFollow};
use crate::service::Service;

/// Sends a message to the agent running in the sandbox and waits for its reply (at most the
/// server's agent deadline, 10 minutes by default, or `timeout_secs`). The agent's failures —
/// a crash, the deadline — are answers with `is_error: true`, except an authentication
/// failure, which is a 422 `agent_auth_failed` whose `details` carry the agent's message.
/// Closing the connection stops the agent.
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/agent-send", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name")),
    request_body = t::AgentSendRequest,
    responses((status = 200, body = t::AgentSendResponse),
        (status = 400, body = t::ErrorBody), (status = 404, body = t::ErrorBody),
        (status = 409, description = "the sandbox is not running, or the session is answering another message", body = t::ErrorBody),
        (status = 422, description = "`agent_credential_skipped`: the sandbox holds no credential for that agent; `agent_auth_failed`: the agent's provider refused its credential", body = t::ErrorBody)))]
pub async fn agent_send(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<t::AgentSendRequest>,
) -> ApiResult<Json<t::AgentSendResponse>> {
    Ok(Json(svc.agent_send(&c, &id, req).await?))
}

/// Sends a message to the agent and streams its progress as server-sent events
/// (`text/event-stream`): `status` (`pending`, then `running`), `delta`s (text, thinking, tool
/// calls and their results, redacted), then one `done` (the answer as `agent-send` gives it) or
/// `error` (the error envelope: `agent_auth_failed` as `agent-send` answers it, or a send the
/// server lost). Each event's data is the JSON of `AgentStreamEvent`. Closing the connection
/// stops the agent. Errors before the agent starts are plain JSON answers, as for `agent-send`.
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/agent-send/stream", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name")),
    request_body = t::AgentSendRequest,
    responses((status = 200, description = "server-sent events, each one's data an `AgentStreamEvent`", content_type = "text/event-stream", body = t::AgentStreamEvent),
        (status = 400, body = t::ErrorBody), (status = 404, body = t::ErrorBody),
        (status = 409, description = "the sandbox is not running, or the session is answering another message", body = t::ErrorBody),
        (status = 422, description = "`agent_credential_skipped`: the sandbox holds no credential for that agent", body = t::ErrorBody)))]
pub async fn agent_send_stream(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<t::AgentSendRequest>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    Ok(send_events(svc.agent_send_stream(&c, &id, req).await?))
}

/// Follows a send (a job, started by any form of `agent-send`) as server-sent events, from its
/// `status` to its `done` or `error`, as `agent-send/stream` gives them. A follower that comes
/// late gets the progress so far first (the last MiB of it); one on another server than the
/// send's gets its `status` and `done` only. Closing the connection leaves the send running.
#[utoipa::path(get, path = "/api/v0beta1/sandboxes/{id}/agent-send-jobs/{job_id}/events", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name"), ("job_id" = String, Path)),
    responses((status = 200, description = "server-sent events, each one's data an `AgentStreamEvent`", content_type = "text/event-stream", body = t::AgentStreamEvent),
        (status = 404, body = t::ErrorBody)))]
pub async fn follow_agent_send_job(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath((id, job_id)): ApiPath<(String, String)>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    Ok(send_events(
        svc.follow_agent_send_job(&c, &id, &job_id).await?,
    ))
}

/// A send's events as SSE. A `done` whose agent could not authenticate becomes the `error`
/// that `agent-send` answers with. The stream ends after its last event; dropping it drops the
/// follower. Also what the web UI's job events route answers with (`web::agent_stream`).
pub(crate) fn send_events(
    follow: SendFollow,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let trace_id = current_trace_id();
    let stream = futures::stream::unfold(Some(follow), move |follow| {
        let trace_id = trace_id.clone();
        async move {
            let mut follow = follow?;
            let event = match follow.next().await? {
                AgentStreamEvent::Done(done) => match send_outcome(done) {
                    Ok(done) => AgentStreamEvent::Done(done),
                    Err(e) => AgentStreamEvent::Error(ApiError::from(e).body(trace_id)),
                },
                AgentStreamEvent::Error(mut body) => {
                    body.trace_id = trace_id;
                    AgentStreamEvent::Error(body)
                }
                other => other,
            };
            let sse = Event::default()
                .event(event.name())
                .json_data(&event)
                .unwrap_or_else(|_| Event::default().event("error"));
            let next = (!event.is_end()).then_some(follow);
            Some((Ok(sse), next))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Starts a send in the background and answers at once with its job; poll
/// `GET .../agent-send-jobs/{job_id}` until its state is `done` or `failed`.
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/agent-send-jobs", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name")),
    request_body = t::AgentSendRequest,
    responses((status = 202, body = t::AgentSendJobResponse),
        (status = 400, body = t::ErrorBody), (status = 404, body = t::ErrorBody),
        (status = 409, body = t::ErrorBody), (status = 422, body = t::ErrorBody)))]
pub async fn create_agent_send_job(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<t::AgentSendRequest>,
) -> ApiResult<(StatusCode, Json<t::AgentSendJobResponse>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(svc.create_agent_send_job(&c, &id, req).await?),
    ))
}

/// Get an agent-send job
#[utoipa::path(get, path = "/api/v0beta1/sandboxes/{id}/agent-send-jobs/{job_id}", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name"), ("job_id" = String, Path)),
    responses((status = 200, body = t::AgentSendJobResponse), (status = 404, body = t::ErrorBody)))]
pub async fn get_agent_send_job(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath((id, job_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<t::AgentSendJobResponse>> {
    Ok(Json(svc.get_agent_send_job(&c, &id, &job_id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Only sessions in this status: `idle`, `running`, `completed`, `failed` or `cancelled`.
    pub status: Option<String>,
    /// At most this many sessions (1..=1000, default 100), most recently used first.
    pub limit: Option<u64>,
    /// Skip this many first.
    pub offset: Option<u64>,
}

/// List a sandbox's agent sessions
#[utoipa::path(get, path = "/api/v0beta1/sandboxes/{id}/sessions", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name"), SessionsQuery),
    responses((status = 200, body = t::AgentSessionsList), (status = 400, body = t::ErrorBody), (status = 404, body = t::ErrorBody)))]
pub async fn list_agent_sessions(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SessionsQuery>,
) -> ApiResult<Json<t::AgentSessionsList>> {
    Ok(Json(
        svc.list_agent_sessions(&c, &id, q.status.as_deref(), q.limit, q.offset)
            .await?,
    ))
}

/// A session with its transcript: every message and reply, oldest first, redacted.
#[utoipa::path(get, path = "/api/v0beta1/sandboxes/{id}/sessions/{session_id}", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name"), ("session_id" = String, Path)),
    responses((status = 200, body = t::AgentSession), (status = 404, body = t::ErrorBody)))]
pub async fn get_agent_session(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath((id, session_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<t::AgentSession>> {
    Ok(Json(svc.get_agent_session(&c, &id, &session_id).await?))
}

/// Starts a session with no sends yet: the first send to it (`session_id`) starts the agent's
/// conversation. `metadata` is the client's own object (at most 16 KiB as JSON).
#[utoipa::path(post, path = "/api/v0beta1/sandboxes/{id}/sessions", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name")),
    request_body = t::CreateSessionRequest,
    responses((status = 201, body = t::AgentSession),
        (status = 400, body = t::ErrorBody), (status = 404, body = t::ErrorBody),
        (status = 422, description = "`agent_credential_skipped`: the sandbox holds no credential for that agent", body = t::ErrorBody)))]
pub async fn create_agent_session(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<t::CreateSessionRequest>,
) -> ApiResult<(StatusCode, Json<t::AgentSession>)> {
    Ok((
        StatusCode::CREATED,
        Json(svc.create_agent_session(&c, &id, req).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LatestSessionQuery {
    /// Only sessions of this agent: `claude` or `codex`.
    pub agent: Option<String>,
}

/// The sandbox's most recently used session (created, sent to or updated), without its
/// transcript; 404 when it has none.
#[utoipa::path(get, path = "/api/v0beta1/sandboxes/{id}/sessions/latest", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name"), LatestSessionQuery),
    responses((status = 200, body = t::AgentSession), (status = 400, body = t::ErrorBody),
        (status = 404, description = "no such sandbox, or no session in it", body = t::ErrorBody)))]
pub async fn latest_agent_session(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LatestSessionQuery>,
) -> ApiResult<Json<t::AgentSession>> {
    Ok(Json(
        svc.latest_agent_session(&c, &id, q.agent.as_deref())
            .await?,
    ))
}

/// Changes a session's status (`idle`, `completed`, `failed`, `cancelled`) and merges into its
/// metadata (RFC 7386). 409 while a send runs in it and `status` is given.
#[utoipa::path(patch, path = "/api/v0beta1/sandboxes/{id}/sessions/{session_id}", tag = "agents",
    params(("id" = String, Path, description = "sandbox id or name"), ("session_id" = String, Path)),
    request_body = t::UpdateSessionRequest,
    responses((status = 200, body = t::AgentSession), (status = 400, body = t::ErrorBody),
        (status = 404, body = t::ErrorBody), (status = 409, body = t::ErrorBody)))]
pub async fn update_agent_session(
    State(svc): State<Service>,
    Auth(c): Auth,
    ApiPath((id, session_id)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<t::UpdateSessionRequest>,
) -> ApiResult<Json<t::AgentSession>> {
    Ok(Json(
        svc.update_agent_session(&c, &id, &session_id, req).await?,
    ))
}
