//! The agent message box on a sandbox's page and the conversation under it.
//!
//! A send from the page uses the job form of agent-send (`Service::create_agent_send_job`, the
//! same method as `POST /api/v0beta1/sandboxes/{id}/agent-send-jobs`): the POST starts the job
//! and redirects to the sandbox's page (post/redirect/get), which shows the message with a
//! "waiting" reply and a Cancel button. A small script follows the send's events
//! ([`super::agent_stream`]), showing the reply as it comes, then swaps in the server-rendered
//! conversation from [`conversation_json`] (which it polls instead where the events fail);
//! without scripts, the page reloads itself while a reply is pending. Why not a synchronous send: an agent may work for up to the server's deadline (10
//! minutes by default), a browser request that long is fragile, and a synchronous send is
//! cancelled — its agent killed — when its request goes away (a closed tab, a click elsewhere).
//! A job outlives the page.
//!
//! Nothing here decides anything: empty messages, skipped agent kinds, a stopped sandbox and a
//! busy session are the service's errors, placed next to the field they concern. The
//! conversation is the sandbox's latest session (`list_agent_sessions` + `get_agent_session`),
//! whose texts the service has already redacted; they are still escaped like any other text.

use amika_types::{self as t, AgentJobState, AgentKind, SandboxState};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::html::{self, escape};
use super::sandboxes::{detail_page, sandbox_href};
use super::{error_in_page, see_other, Fields, FormErrors, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::agents::usable_credential;
use crate::service::{Caller, Service, ServiceError};

/// The message box as submitted (or empty) and its errors.
#[derive(Debug, Default)]
pub struct SendDraft {
    pub message: String,
    /// The agent select's value: a kind, or empty for the server's default.
    pub agent: String,
    pub new_session: bool,
    pub errors: FormErrors,
    /// A refusal about the sandbox as a whole (a Stop or Start that failed), shown at the top.
    pub page_error: Option<String>,
    /// The session the page shows (`?session=`), else the latest.
    pub view_session: Option<String>,
}

/// Field ids of the message box (also the keys of its errors).
const MESSAGE_FIELD: &str = "message";
const AGENT_FIELD: &str = "agent";
const NEW_SESSION_FIELD: &str = "new_session";

impl SendDraft {
    fn from_fields(fields: &Fields) -> SendDraft {
        SendDraft {
            // Kept exactly as typed: the service decides what an empty message is.
            message: fields.get(MESSAGE_FIELD).to_string(),
            agent: fields.get(AGENT_FIELD).trim().to_string(),
            new_session: !fields.get(NEW_SESSION_FIELD).is_empty(),
            errors: FormErrors::default(),
            page_error: None,
            view_session: None,
        }
    }

    /// The API request this form stands for, or `None` with the error on the agent select.
    fn request(&mut self) -> Option<t::AgentSendRequest> {
        let agent = if self.agent.is_empty() {
            None
        } else {
            match self.agent.parse::<AgentKind>() {
                Ok(k) => Some(k),
                Err(e) => {
                    self.errors.on(AGENT_FIELD, e);
                    return None;
                }
            }
        };
        Some(t::AgentSendRequest {
            message: self.message.clone(),
            agent,
            session_id: None,
            new_session: self.new_session,
            timeout_secs: None,
            workdir: None,
        })
    }

    /// Put a service error next to the field it concerns; returns the status to answer with.
    fn place(&mut self, e: ServiceError) -> StatusCode {
        let mut answer = ApiError::from(e);
        if answer.code == amika_types::ErrorCode::SessionBusy {
            answer.message = "The agent is still answering your previous message: wait for its reply (or cancel it), or tick New session to start another conversation.".into();
        }
        match input_for(answer.field()) {
            Some(input) => self.errors.on(input, answer.message),
            None => self.errors.general.push(answer.message),
        }
        answer.status
    }
}

/// Which input of the message box shows an error about the request field `path`; `None` for
/// the box as a whole (a sandbox that is not running, a session still answering).
fn input_for(path: Option<&str>) -> Option<&'static str> {
    match path? {
        "message" => Some(MESSAGE_FIELD),
        "agent" => Some(AGENT_FIELD),
        "new_session" => Some(NEW_SESSION_FIELD),
        _ => None,
    }
}

/// The sandbox's latest session with its transcript, and how many sessions it has.
#[derive(Debug, Default)]
pub struct Conversation {
    pub session: Option<t::AgentSession>,
    pub total: u64,
    /// The newest sessions, newest first (without transcripts).
    pub sessions: Vec<t::AgentSession>,
    /// The id of the latest session.
    pub latest: Option<String>,
    /// How long the server lets an agent answer (its default deadline).
    pub deadline: std::time::Duration,
}

impl Conversation {
    /// Whether a reply is still to come.
    pub fn in_flight(&self) -> bool {
        self.session.as_ref().is_some_and(|s| {
            s.transcript
                .iter()
                .flatten()
                .any(|turn| pending(turn.state))
        })
    }
}

fn pending(state: AgentJobState) -> bool {
    matches!(state, AgentJobState::Pending | AgentJobState::Running)
}

/// How many sessions the sandbox page lists.
const SESSIONS_LISTED: u64 = 50;

/// The sandbox's session `chosen` (when it is one of its newest [`SESSIONS_LISTED`]), else its
/// latest, with the list of its sessions.
pub async fn load_conversation(
    svc: &Service,
    caller: &Caller,
    sandbox: &str,
    chosen: Option<&str>,
) -> Result<Conversation, ServiceError> {
    let list = svc
        .list_agent_sessions(caller, sandbox, None, Some(SESSIONS_LISTED), None)
        .await?;
    let pick = chosen
        .and_then(|id| list.sessions.iter().find(|s| s.id == id))
        .or(list.sessions.first());
    let session = match pick {
        Some(s) => Some(svc.get_agent_session(caller, sandbox, &s.id).await?),
        None => None,
    };
    let latest = list.sessions.first().map(|s| s.id.clone());
    Ok(Conversation {
        session,
        total: list.total,
        sessions: list.sessions,
        latest,
        deadline: svc.config.agent_timeout,
    })
}

impl Conversation {
    /// Whether the shown session is not the latest (sending continues the latest).
    fn shows_older(&self) -> bool {
        self.session.as_ref().map(|s| &s.id) != self.latest.as_ref()
    }
}

/// The sandbox's sessions, newest first, each a link that shows it; the shown one marked.
fn sessions_nav(s: &t::Sandbox, conv: &Conversation) -> String {
    if conv.sessions.len() < 2 {
        return String::new();
    }
    let shown = conv.session.as_ref().map(|x| x.id.as_str());
    let items: String = conv
        .sessions
        .iter()
        .map(|x| {
            format!(
                "<li><a href=\"{href}?session={id}#conversation\"{current}>{agent} · {n} message{pl} · started {started}</a></li>",
                href = sandbox_href(s),
                id = escape(&x.id),
                current = if Some(x.id.as_str()) == shown { " aria-current=\"true\"" } else { "" },
                agent = escape(x.agent_name.as_str()),
                n = x.turn_count,
                pl = if x.turn_count == 1 { "" } else { "s" },
                started = html::date(&x.started_at),
            )
        })
        .collect();
    format!(
        "<nav class=\"sessions\" aria-label=\"Sessions of this sandbox\"><h3>All sessions ({})</h3><ul>{items}</ul></nav>",
        conv.total
    )
}

/// Why a kind cannot be chosen for this sandbox, or `None` when it holds a credential (the
/// service's own rule, [`usable_credential`]).
fn unavailable(s: &t::Sandbox, kind: AgentKind) -> Option<String> {
    usable_credential(&s.resolved_agent_credentials, kind)
        .err()
        .map(unavailable_text)
}

fn unavailable_text(skipped: Option<&str>) -> String {
    match skipped {
        Some(why) => format!("skipped at create: {why}"),
        None => "not requested at create".into(),
    }
}

/// The kind the select starts on: what was submitted, else the shown conversation's agent,
/// else the first kind resolved for the sandbox (the API's own default order).
fn chosen_agent(s: &t::Sandbox, conv: &Conversation, draft: &SendDraft) -> String {
    if !draft.agent.is_empty() {
        return draft.agent.clone();
    }
    let usable = |k: &AgentKind| unavailable(s, *k).is_none();
    conv.session
        .as_ref()
        .map(|c| c.agent_name)
        .filter(usable)
        .or_else(|| AgentKind::AGENTS.iter().copied().find(usable))
        .map(|k| k.as_str().to_string())
        .unwrap_or_default()
}

/// The message box: message, agent, new-session, Send.
pub fn message_box(
    session: &WebSession,
    s: &t::Sandbox,
    conv: &Conversation,
    draft: &SendDraft,
) -> String {
    let e = &draft.errors;
    let current = chosen_agent(s, conv, draft);
    let mut any_unavailable = false;
    let options: String = AgentKind::AGENTS
        .iter()
        .map(|k| {
            let value = k.as_str();
            let (label, disabled) = match usable_credential(&s.resolved_agent_credentials, *k) {
                Ok(r) => (format!("{value} — {} ({})", r.name, r.credential_type), ""),
                Err(skipped) => {
                    any_unavailable = true;
                    (
                        format!("{value} — unavailable ({})", unavailable_text(skipped)),
                        " disabled",
                    )
                }
            };
            format!(
                "<option value=\"{}\"{}{disabled}>{}</option>",
                escape(value),
                if value == current { " selected" } else { "" },
                escape(&label)
            )
        })
        .collect();
    // A value that is not a kind at all (only a hand-made form sends one) is kept, as typed.
    let unknown = if !current.is_empty() && current.parse::<AgentKind>().is_err() {
        format!(
            "<option value=\"{v}\" selected>{v} (unknown)</option>",
            v = escape(&current)
        )
    } else {
        String::new()
    };
    let agent_error = e.get(AGENT_FIELD);
    let agent_hint = if any_unavailable && agent_error.is_none() {
        "<p class=\"hint\" id=\"agent-hint\">An agent whose credential was skipped when the sandbox was created cannot be used here: create a sandbox with a credential for it.</p>"
    } else {
        ""
    };
    let agent = format!(
        "<div class=\"field\"><label for=\"agent\">Agent</label>\
<select id=\"agent\" name=\"agent\"{invalid}{described}>{options}{unknown}</select>{agent_hint}{error}</div>",
        invalid = html::invalid_attrs(AGENT_FIELD, agent_error, e.get(MESSAGE_FIELD).is_none()),
        described = if agent_hint.is_empty() {
            ""
        } else {
            " aria-describedby=\"agent-hint\""
        },
        error = html::field_error(AGENT_FIELD, agent_error),
    );
    let message_error = e.get(MESSAGE_FIELD);
    if s.state != SandboxState::Running {
        return not_running_box(s.state, &e.general);
    }
    format!(
        "<section class=\"card\" aria-labelledby=\"agent-title\" id=\"agent-box\"><h2 id=\"agent-title\">Message an agent</h2>\
<p class=\"hint\">The agent runs inside this sandbox with the credential resolved for it. Any injected value in its reply is shown as [REDACTED:name].</p>\
<form method=\"post\" action=\"{href}/agent-send\" class=\"message-form\" id=\"message-form\" novalidate>{csrf}{general}\
<div class=\"field\"><label for=\"message\">Message</label>\
<textarea id=\"message\" name=\"message\" rows=\"4\" maxlength=\"{max}\" aria-keyshortcuts=\"Control+Enter\"{invalid}>\n{message}</textarea>{message_error}</div>\
<div class=\"message-options\">{agent}\
<div class=\"field check\"><input type=\"checkbox\" id=\"new_session\" name=\"new_session\" value=\"true\"{checked}{ns_invalid}><label for=\"new_session\">New session</label>{ns_error}</div>\
<div class=\"actions\"><button type=\"submit\" class=\"button primary\" id=\"send\"{busy}>Send</button></div></div>{busy_hint}</form></section>",
        busy = if conv.in_flight() { " disabled aria-describedby=\"send-busy\"" } else { "" },
        busy_hint = if conv.in_flight() {
            "<p class=\"hint\" id=\"send-busy\">Send is off while the agent answers your last message (or cancel it below).</p>"
        } else {
            ""
        },
        href = sandbox_href(s),
        max = super::form::limits::MESSAGE,
        csrf = html::csrf_field(&session.csrf),
        general = html::form_errors(&e.general),
        // The newline after <textarea> is dropped by the HTML parser, so a message that starts
        // with a newline keeps it.
        message = escape(&draft.message),
        invalid = html::invalid_attrs(MESSAGE_FIELD, message_error, true),
        message_error = html::field_error(MESSAGE_FIELD, message_error),
        checked = if draft.new_session { " checked" } else { "" },
        ns_invalid = html::invalid_attrs(NEW_SESSION_FIELD, e.get(NEW_SESSION_FIELD), false),
        ns_error = html::field_error(NEW_SESSION_FIELD, e.get(NEW_SESSION_FIELD)),
    )
}

/// The message box of a sandbox that is not running: no form (an agent cannot answer), but what
/// to do about it, and any refusal of a send that raced a stop.
fn not_running_box(state: SandboxState, errors: &[String]) -> String {
    let what = match state {
        SandboxState::Initializing => {
            "the message box appears here once it runs (this page reloads itself)."
        }
        SandboxState::Stopped | SandboxState::Failed => {
            "start it with the Start button at the top of this page to message an agent."
        }
        _ => "no agent can answer until it runs again.",
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"agent-title\" id=\"agent-box\"><h2 id=\"agent-title\">Message an agent</h2>{}\
<p class=\"hint warn\" id=\"not-running\">This sandbox is {}: {}</p></section>",
        html::form_errors(errors),
        escape(state.as_str()),
        escape(what),
    )
}

/// The deadline as the pending reply states it: `10 min`, `90 s`.
fn deadline_text(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// A duration in milliseconds as the pending reply shows it: `42 s`, `3 min 5 s`.
fn elapsed_text(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

/// A failed reply's badge and the sentence above its message, in plain words: what happened,
/// not only the error code (a timed-out or unreachable agent is not a refused credential).
fn failure_words(turn: &t::AgentTurn) -> (&'static str, String) {
    let took = turn
        .finished_at
        .map(|at| elapsed_text((at - turn.created_at).num_milliseconds()));
    match turn.error_code.as_deref() {
        Some("agent_timeout") => (
            "timed out",
            format!(
                "Timed out: the agent did not answer within the server's deadline and was stopped{}.",
                took.map_or(String::new(), |t| format!(" after {t}"))
            ),
        ),
        Some("agent_unreachable") => (
            "unreachable",
            "The agent could not reach its service over the network: the credential was not the problem."
                .into(),
        ),
        Some("agent_auth_failed") => (
            "sign-in failed",
            "The agent's service refused its credential: it may have expired or been revoked."
                .into(),
        ),
        Some("agent_cancelled") => ("cancelled", "Cancelled: the agent was stopped.".into()),
        _ => ("failed", "The agent failed:".into()),
    }
}

/// A turn of the conversation. A pending one shows how long it has run and `cancel`, the form
/// that stops it (empty where there is none).
fn turn_html(
    agent: AgentKind,
    turn: &t::AgentTurn,
    cancel: &str,
    deadline: std::time::Duration,
) -> String {
    let you = format!(
        "<div class=\"bubble you\"><p class=\"who\">You · {}</p><div class=\"text\">{}</div></div>",
        html::date(&turn.created_at),
        escape(&turn.message)
    );
    let reply = if pending(turn.state) {
        let ms = (chrono::Utc::now() - turn.created_at).num_milliseconds();
        format!(
            "<div class=\"bubble agent pending\" aria-busy=\"true\"><p class=\"who\">{agent}</p>\
<p class=\"waiting\"><span class=\"spinner\" aria-hidden=\"true\"></span><span>Waiting for {agent}'s reply… (<span class=\"turn-state\">{state}</span>, \
<span class=\"elapsed\" data-elapsed-ms=\"{ms}\">{elapsed}</span>; stopped after {limit} at most)</span></p>\
<div class=\"stream\" aria-live=\"polite\" hidden></div>{cancel}</div>",
            agent = escape(agent.as_str()),
            state = escape(turn.state.as_str()),
            elapsed = elapsed_text(ms),
            limit = escape(&deadline_text(deadline)),
        )
    } else {
        let when = turn
            .finished_at
            .as_ref()
            .map_or(String::new(), |at| format!(" · {}", html::date(at)));
        let (error, headline) = if turn.is_error {
            let mut what = vec![match &turn.error_code {
                Some(c) => format!("error <code>{}</code>", escape(c)),
                None => "error".to_string(),
            }];
            if let Some(code) = turn.exit_code {
                what.push(format!("exit status {code}"));
            }
            let (badge, headline) = failure_words(turn);
            (
                format!(
                    " · <span class=\"badge state-failed\">{badge}</span> {}",
                    what.join(" · ")
                ),
                format!("<p class=\"failure\">{}</p>", escape(&headline)),
            )
        } else {
            (String::new(), String::new())
        };
        format!(
            "<div class=\"bubble agent{cls}\"><p class=\"who\">{agent}{when}{error}</p>{headline}<div class=\"text\">{text}</div></div>",
            cls = if turn.is_error { " error" } else { "" },
            agent = escape(agent.as_str()),
            text = escape(turn.response.as_deref().unwrap_or("")),
        )
    };
    format!(
        "<li class=\"turn\" id=\"turn-{}\">{you}{reply}</li>",
        escape(&turn.id)
    )
}

/// The pending send's job in the shown conversation, if one runs.
fn in_flight_job(conv: &Conversation) -> Option<(&t::AgentSession, &t::AgentTurn)> {
    let session = conv.session.as_ref()?;
    let turn = session
        .transcript
        .iter()
        .flatten()
        .rev()
        .find(|turn| pending(turn.state))?;
    Some((session, turn))
}

/// The inside of the conversation card (also what the poll answers with); `csrf` goes into the
/// Cancel form of a pending reply. Links use the sandbox's id, which every route accepts.
fn conversation_inner(conv: &Conversation, csrf: &str) -> String {
    let Some(session) = &conv.session else {
        return "<p class=\"empty\">No messages yet: send one above.</p>".into();
    };
    let cancel = format!(
        "<form method=\"post\" action=\"/sandboxes/{sandbox}/sessions/{id}/cancel\" class=\"cancel-form\">{csrf}\
<button type=\"submit\" class=\"button small danger\" id=\"cancel\">Cancel</button></form>",
        sandbox = escape(&session.sandbox_id),
        id = escape(&session.id),
        csrf = html::csrf_field(csrf),
    );
    let turns = session.transcript.as_deref().unwrap_or_default();
    let credential = session
        .server_metadata
        .get("credential")
        .and_then(|c| c.as_str())
        .map_or(String::new(), |c| {
            format!(" · credential <code>{}</code>", escape(c))
        });
    let others = if conv.shows_older() {
        " · an earlier session: a message sent above continues the latest one".to_string()
    } else if conv.total > 1 {
        format!(" · the latest of {} sessions in this sandbox", conv.total)
    } else {
        String::new()
    };
    let items: String = turns
        .iter()
        .map(|turn| turn_html(session.agent_name, turn, &cancel, conv.deadline))
        .collect();
    format!(
        "<p class=\"session-meta\">Session <code id=\"session-id\">{id}</code> · {agent}{credential} · {n} message{s} · started {started}{others}</p>\
<ol class=\"turns\" aria-label=\"Messages and replies, oldest first\">{items}</ol>",
        id = escape(&session.id),
        agent = escape(session.agent_name.as_str()),
        n = turns.len(),
        s = if turns.len() == 1 { "" } else { "s" },
        started = html::date(&session.started_at),
    )
}

/// The conversation card; while a reply is pending it carries the URLs the page script follows
/// (the send's events, [`super::agent_stream::job_events`]) and polls (where events fail).
pub fn conversation_card(s: &t::Sandbox, conv: &Conversation, csrf: &str) -> String {
    let poll = match in_flight_job(conv) {
        Some((session, turn)) => format!(
            " data-poll=\"{href}/conversation?session={session}\" data-in-flight=\"true\" data-events=\"/sandboxes/{sandbox}/agent-jobs/{job}/events\"",
            href = sandbox_href(s),
            session = escape(&session.id),
            sandbox = escape(&session.sandbox_id),
            job = escape(&turn.id),
        ),
        None => String::new(),
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"conversation-title\" id=\"conversation\"{poll}>\
<h2 id=\"conversation-title\">Conversation</h2><div id=\"conversation-body\">{}</div>\
<p id=\"conversation-status\" class=\"hint\" aria-live=\"polite\"></p>{}</section>",
        conversation_inner(conv, csrf),
        sessions_nav(s, conv)
    )
}

// ------------------------------------------------------------------ handlers

/// `POST /sandboxes/{name}/agent-send`: start the send as a job, then back to the page.
pub async fn send(
    State(svc): State<Service>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    let WebForm { session, fields } = form;
    let mut draft = SendDraft::from_fields(&fields);
    let Some(req) = draft.request() else {
        return detail_page(&svc, &session, &name, &draft, StatusCode::BAD_REQUEST).await;
    };
    match svc.create_agent_send_job(&session.caller, &name, req).await {
        Ok(_) => match svc.get_sandbox(&session.caller, &name).await {
            // No notice: the conversation shows the message and how its reply goes (a green
            // "sent" above a reply that then fails would contradict it).
            Ok(s) => see_other(&format!("{}#conversation", sandbox_href(&s))),
            Err(e) => error_in_page(&session, e),
        },
        Err(e) => {
            let status = draft.place(e);
            detail_page(&svc, &session, &name, &draft, status).await
        }
    }
}

/// `?session=ID`: the session a sandbox page (or its poll) shows, instead of the latest.
#[derive(Debug, Default, serde::Deserialize)]
pub struct WhichSession {
    pub session: Option<String>,
}

/// `GET /sandboxes/{name}/agent-send` (a reload after a refused send): the sandbox's page.
pub async fn send_page(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(name): ApiPath<String>,
) -> Response {
    match svc.get_sandbox(&session.caller, &name).await {
        Ok(s) => see_other(&sandbox_href(&s)),
        Err(e) => error_in_page(&session, e),
    }
}

/// `GET /sandboxes/{name}/conversation`: what the page script polls while a reply is pending —
/// `{"in_flight": bool, "html": "..."}`, the conversation card's inside rendered (and escaped)
/// here, so the page has one renderer.
pub async fn conversation_json(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(name): ApiPath<String>,
    Query(which): Query<WhichSession>,
) -> Response {
    let chosen = which.session.as_deref();
    let (status, body) = match load_conversation(&svc, &session.caller, &name, chosen).await {
        Ok(conv) => (
            StatusCode::OK,
            serde_json::json!({
                "in_flight": conv.in_flight(),
                "html": conversation_inner(&conv, &session.csrf),
            }),
        ),
        Err(e) => {
            let answer = ApiError::from(e);
            (
                answer.status,
                serde_json::json!({"error": {"code": answer.code, "message": answer.message}}),
            )
        }
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The send's errors as the service builds them (`service::agents`), placed by the request
    /// field they name.
    #[test]
    fn service_errors_land_next_to_the_field_they_concern() {
        use crate::service::agents::check_send_request;
        use amika_types::ErrorCode;
        let refused = |req: t::AgentSendRequest| {
            check_send_request(&req, std::time::Duration::from_secs(600)).unwrap_err()
        };
        let send = |message: &str| t::AgentSendRequest {
            message: message.into(),
            ..Default::default()
        };
        let cases = [
            (refused(send("  \n ")), Some("message")),
            (refused(send(&"x".repeat(200_000))), Some("message")),
            (refused(send("a\0b")), Some("message")),
            (
                refused(t::AgentSendRequest {
                    session_id: Some("ses_1".into()),
                    new_session: true,
                    ..send("hi")
                }),
                Some("new_session"),
            ),
            (
                ServiceError::unprocessable(
                    ErrorCode::AgentCredentialSkipped,
                    "sandbox \"b\" has no codex credential: ...",
                )
                .at("agent"),
                Some("agent"),
            ),
            (
                ServiceError::invalid(
                    ErrorCode::AgentMismatch,
                    "session ses_1 is a claude session: leave out agent, or pass claude",
                )
                .at("agent"),
                Some("agent"),
            ),
            (
                ServiceError::conflict(
                    ErrorCode::InvalidState,
                    "sandbox \"b\" is stopped: agent-send needs it running",
                ),
                None,
            ),
            (
                ServiceError::conflict(
                    ErrorCode::SessionBusy,
                    "session ses_1 is still answering an earlier message (job j): wait for it, or start another session with new_session",
                ),
                None,
            ),
        ];
        for (e, want) in cases {
            let busy = e.code() == ErrorCode::SessionBusy;
            let message = if busy {
                "The agent is still answering your previous message: wait for its reply (or cancel it), or tick New session to start another conversation.".to_string()
            } else {
                e.to_string()
            };
            let mut d = SendDraft::default();
            d.place(e);
            match want {
                Some(input) => assert_eq!(d.errors.get(input), Some(message.as_str()), "{message}"),
                None => assert_eq!(d.errors.general, [message.as_str()], "{message}"),
            }
        }
    }

    #[test]
    fn an_unknown_agent_is_refused_on_the_select_and_kept() {
        let mut d = SendDraft {
            message: "hi".into(),
            agent: "gemini".into(),
            ..SendDraft::default()
        };
        assert!(d.request().is_none());
        assert!(d.errors.get("agent").unwrap().contains("gemini"));
        let mut d = SendDraft {
            message: "hi".into(),
            agent: String::new(),
            new_session: true,
            ..SendDraft::default()
        };
        let req = d.request().unwrap();
        assert_eq!(req.agent, None, "empty: the server's default agent");
        assert!(req.new_session);
    }
}
