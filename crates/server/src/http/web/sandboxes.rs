//! Sandboxes: the list, the detail page (overview, workspace, env and setup cards from
//! [`super::workspace`], the agent message box of [`super::agents`], the resolution table) and
//! delete with a confirm page. The New sandbox form is in [`super::sandbox_form`].

use amika_sandbox::lifecycle::{check_transition, is_transient, Operation};
use amika_store::SandboxRow;
use amika_types::{self as t, SandboxState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::agents::{conversation_card, load_conversation, message_box, SendDraft, WhichSession};
use super::html::{self, escape, Nav, Refresh};
use super::workspace;
use super::{error_in_page, html_response, see_other, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::sandboxes::recorded_injection_warnings;
use crate::service::Service;

/// The link to a sandbox's page: by name, or by id for a sandbox called `new` (whose name
/// would reach the New sandbox form).
pub(super) fn sandbox_href(s: &t::Sandbox) -> String {
    let key = if s.name == "new" { &s.id } else { &s.name };
    format!("/sandboxes/{}", escape(key))
}

pub(super) fn state_badge(state: SandboxState) -> String {
    format!(
        "<span class=\"badge state-{s}\">{s}</span>",
        s = escape(state.as_str())
    )
}

/// A resolution source in words.
fn source_words(source: t::ResolutionSource) -> &'static str {
    use t::ResolutionSource as S;
    match source {
        S::RequestName => "pinned by name",
        S::RequestType => "chosen by type",
        S::RepoConfig => "the repository's .amika/config.toml",
        S::UserDefault => "your default",
        S::OrgDefault => "your org's default",
        S::NoCredential => "none found",
    }
}

/// The (kind, name, expiry) of every credential the caller can use that has expired: what the
/// resolution table marks instead of a green "resolved".
pub(super) async fn expired_credentials(
    svc: &Service,
    caller: &crate::service::Caller,
) -> Vec<(t::AgentKind, String, chrono::DateTime<chrono::Utc>)> {
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for kind in t::AgentKind::AGENTS {
        for c in svc
            .list_credentials(caller, *kind)
            .await
            .unwrap_or_default()
        {
            if let Some(at) = c.expires_at.filter(|at| *at <= now) {
                out.push((*kind, c.name, at));
            }
        }
    }
    out
}

/// The resolution table of DESIGN §4: kind, outcome, name, type, source (in words), reason. A
/// credential in `expired` is never shown as a plain green "resolved".
pub(super) fn resolution_table(
    caption: &str,
    rows: &[t::ResolvedAgentCredential],
    expired: &[(t::AgentKind, String, chrono::DateTime<chrono::Utc>)],
) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "<span class=\"muted\" aria-label=\"none\">—</span>".to_string()
        } else {
            escape(s)
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let lapsed = expired.iter().find(|(k, n, _)| {
                *k == r.kind && *n == r.name && r.outcome == t::ResolutionOutcome::Resolved
            });
            let reason_words = match r.reason.as_str() {
                "no-agent-credential flag" => "you chose None",
                other => other,
            };
            let expired_at_resolution = r.reason.starts_with("oauth token expired");
            let (outcome, reason) = match (r.outcome, lapsed) {
                (t::ResolutionOutcome::Resolved, _) if expired_at_resolution => (
                    "<span class=\"badge expired\">resolved, expired</span>".to_string(),
                    format!(
                        "{}: the agent may fail to sign in. Sign in again and add the new credential file.",
                        escape(&r.reason)
                    ),
                ),
                (t::ResolutionOutcome::Resolved, Some((_, _, at))) => (
                    "<span class=\"badge expired\">resolved, expired</span>".to_string(),
                    format!(
                        "Its login expired {}: the agent may fail to sign in. Sign in again and add the new credential file.{}",
                        escape(&at.format("%Y-%m-%d %H:%M UTC").to_string()),
                        if r.reason.is_empty() { String::new() } else { format!(" {}", escape(&r.reason)) }
                    ),
                ),
                (t::ResolutionOutcome::Resolved, None) => (
                    "<span class=\"badge outcome-resolved\">resolved</span>".to_string(),
                    dash(reason_words),
                ),
                (t::ResolutionOutcome::Skipped, _) => (
                    "<span class=\"badge outcome-skipped\">skipped</span>".to_string(),
                    dash(reason_words),
                ),
            };
            vec![
                escape(r.kind.as_str()),
                outcome,
                if r.name.is_empty() {
                    dash("")
                } else {
                    format!("<code>{}</code>", escape(&r.name))
                },
                dash(&r.credential_type),
                format!(
                    "<span class=\"source\" title=\"{}\">{}</span>",
                    escape(r.source.as_str()),
                    escape(source_words(r.source))
                ),
                reason,
            ]
        })
        .collect();
    let t = html::table(
        caption,
        &["Kind", "Outcome", "Name", "Type", "Source", "Reason"],
        &cells,
        "No agent kind was requested.",
    );
    t.replacen(
        "<table class=\"cards\">",
        "<table class=\"cards resolution\">",
        1,
    )
}

/// Secrets as the env vars they land in: `VAR ← secret (scope)`, one per line. `mapped` is
/// (env var, secret name, scope) where known; a secret name not among them (one the
/// repository's config maps) is listed on its own.
pub(super) fn secret_mapping_list(mapped: &[(String, String, String)], names: &[String]) -> String {
    let mut items: Vec<String> = mapped
        .iter()
        .map(|(env, name, scope)| {
            format!(
                "<li><code>{}</code> <span aria-label=\"from\">←</span> <code>{}</code> <span class=\"muted\">({})</span></li>",
                escape(env),
                escape(name),
                escape(scope)
            )
        })
        .collect();
    for n in names {
        if !mapped.iter().any(|(_, name, _)| name == n) {
            items.push(format!(
                "<li><code>{}</code> <span class=\"muted\">(mapped by the repository's config)</span></li>",
                escape(n)
            ));
        }
    }
    if items.is_empty() {
        return "<p class=\"empty\">None.</p>".into();
    }
    format!(
        "<ul class=\"mapping\" aria-label=\"Secrets injected, as env var from secret\">{}</ul>",
        items.concat()
    )
}

/// The sandbox's injected secrets with the env var each went to and its scope now ("deleted"
/// when it no longer exists).
async fn injected_mapping(
    svc: &Service,
    session: &WebSession,
    s: &t::Sandbox,
    row: Option<&SandboxRow>,
) -> String {
    let secrets = svc.list_secrets(&session.caller).await.unwrap_or_default();
    let mapped: Vec<(String, String, String)> = match row {
        Some(row) => row
            .injection
            .secrets
            .iter()
            .map(|r| {
                let scope = secrets
                    .iter()
                    .find(|x| x.id == r.secret_id)
                    .map_or("deleted".to_string(), |x| {
                        format!("{} scope, version {}", x.scope, r.version)
                    });
                (r.env.clone(), r.name.clone(), scope)
            })
            .collect(),
        None => Vec::new(),
    };
    secret_mapping_list(&mapped, &s.secret_names)
}

/// Where an env var given to the sandbox overrides (or stands beside) what one of its agent
/// credentials injects, as the create warned: a card of its own near the top of the page, for
/// as long as the sandbox lives. Nothing when there is none.
fn injection_warnings_card(row: Option<&SandboxRow>) -> String {
    let warnings = row.map(recorded_injection_warnings).unwrap_or_default();
    if warnings.is_empty() {
        return String::new();
    }
    let items: String = warnings
        .iter()
        .map(|w| format!("<li>{}</li>", escape(&capitalized(w))))
        .collect();
    format!(
        "<section class=\"card warnings-card\" aria-labelledby=\"warnings-title\" id=\"warnings\"><h2 id=\"warnings-title\">Warnings</h2>\
<p class=\"hint\">An env var of this sandbox collides with what an agent credential injects, so the agent may not use the credential shown below:</p>\
<ul class=\"warnings\">{items}</ul></section>"
    )
}

/// `text` with its first letter in upper case (the service's messages start in lower case).
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ------------------------------------------------------------------ list

/// A list row's repository: its name and branch.
fn repository_cell(s: &t::Sandbox) -> String {
    match (&s.repo_name, &s.branch) {
        (Some(repo), Some(branch)) => format!(
            "<code>{}</code> · <code>{}</code>",
            escape(repo),
            escape(branch)
        ),
        (Some(repo), None) => format!("<code>{}</code>", escape(repo)),
        (None, _) => "<span class=\"muted\">—</span>".into(),
    }
}

pub async fn list(State(svc): State<Service>, session: WebSession) -> Response {
    let sandboxes = match svc.list_sandboxes(&session.caller).await {
        Ok(s) => s,
        Err(e) => return error_in_page(&session, e),
    };
    let rows: Vec<Vec<String>> = sandboxes
        .iter()
        .map(|s| {
            let creds: Vec<String> = s
                .resolved_agent_credentials
                .iter()
                .map(|r| match r.outcome {
                    t::ResolutionOutcome::Resolved => {
                        format!(
                            "{}: <code>{}</code>",
                            escape(r.kind.as_str()),
                            escape(&r.name)
                        )
                    }
                    t::ResolutionOutcome::Skipped => {
                        format!(
                            "{}: <span class=\"muted\">none</span>",
                            escape(r.kind.as_str())
                        )
                    }
                })
                .collect();
            vec![
                format!(
                    "<a href=\"{}\"><strong>{}</strong></a>",
                    sandbox_href(s),
                    escape(&s.name)
                ),
                state_badge(s.state),
                if creds.is_empty() {
                    "<span class=\"muted\">—</span>".into()
                } else {
                    creds.join("<br>")
                },
                if s.secret_names.is_empty() {
                    "<span class=\"muted\">—</span>".into()
                } else {
                    s.secret_names
                        .iter()
                        .map(|n| format!("<code>{}</code>", escape(n)))
                        .collect::<Vec<_>>()
                        .join(" ")
                },
                repository_cell(s),
                html::date(&s.created_at),
            ]
        })
        .collect();
    let table = html::table(
        "Sandboxes",
        &[
            "Name",
            "State",
            "Agent credentials",
            "Secrets",
            "Repository",
            "Created",
        ],
        &rows,
        "No sandboxes yet.",
    );
    let body = format!(
        "<div class=\"page-head row\"><div><h1>Sandboxes</h1><p class=\"lead\">Each sandbox gets the secrets and agent credentials resolved when it was created.</p></div>\
<a class=\"button primary\" href=\"/sandboxes/new\">New sandbox</a></div>\
<section class=\"card\" aria-label=\"Sandbox list\">{table}</section>"
    );
    let refresh = sandboxes.iter().any(|s| is_transient(s.state)).then_some(3);
    html_response(
        StatusCode::OK,
        html::page("Sandboxes", &session.chrome(Nav::Sandboxes), &body, refresh),
    )
}

// ------------------------------------------------------------------ detail and delete

pub async fn detail(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(name): ApiPath<String>,
    which: Result<Query<WhichSession>, QueryRejection>,
) -> Response {
    let draft = SendDraft {
        view_session: which.ok().and_then(|Query(w)| w.session),
        ..SendDraft::default()
    };
    detail_page(&svc, &session, &name, &draft, StatusCode::OK).await
}

/// The sandbox's page: overview, the agent message box (with `draft`, as submitted, and its
/// errors) and conversation, the resolution table and the injected secrets.
pub(super) async fn detail_page(
    svc: &Service,
    session: &WebSession,
    name: &str,
    draft: &SendDraft,
    status: StatusCode,
) -> Response {
    let s = match svc.get_sandbox(&session.caller, name).await {
        Ok(s) => s,
        Err(e) => return error_in_page(session, e),
    };
    // The row's record of what was injected (for the env var of each secret, and warnings).
    let row = svc.find_sandbox(&session.caller, &s.id).await.ok();
    let chosen = draft.view_session.as_deref();
    let conversation = match load_conversation(svc, &session.caller, &s.id, chosen).await {
        Ok(c) => c,
        Err(e) => return error_in_page(session, e),
    };
    let error: String = [draft.page_error.as_deref(), s.error_message.as_deref()]
        .into_iter()
        .flatten()
        .map(|m| format!("<div class=\"alert\" role=\"alert\">{}</div>", escape(m)))
        .collect();
    let limits = format!(
        "{} · {}",
        s.memory_mib
            .map_or("no memory limit".into(), |m| format!("{m} MiB memory")),
        s.pids
            .map_or("no process limit".into(), |p| format!("{p} processes"))
    );
    let body = format!(
        "<div class=\"page-head row\"><div><p class=\"crumb\"><a href=\"/sandboxes\">Sandboxes</a> /</p><h1>{name}</h1></div>\
{actions}</div>{error}\
<section class=\"card\" aria-labelledby=\"overview-title\"><h2 id=\"overview-title\">Overview</h2><dl class=\"facts\">\
<div><dt>State</dt><dd id=\"sandbox-state\">{state}</dd></div>\
<div><dt>Provider</dt><dd>{provider}</dd></div>\
<div><dt>Network</dt><dd>{network}</dd></div>\
<div><dt>Limits</dt><dd>{limits}</dd></div>{lifetime}{snapshot}\
<div><dt>Created</dt><dd>{created}</dd></div>\
<div><dt>Id</dt><dd><code>{id}</code></dd></div></dl></section>{warnings}\
{workspace}{ssh_card}{message_box}{conversation_card}\
<section class=\"card\" aria-labelledby=\"resolution-title\"><h2 id=\"resolution-title\">Agent credentials</h2>{table}</section>\
<section class=\"card\" aria-labelledby=\"injected-title\"><h2 id=\"injected-title\">Injected secrets</h2>{secrets}</section>",
        name = escape(&s.name),
        actions = lifecycle_actions(&s, &session.csrf),
        state = state_badge(s.state),
        provider = escape(&s.provider),
        network = escape(s.network.as_str()),
        limits = escape(&limits),
        lifetime = workspace::lifetime_facts(&s),
        snapshot = s.snapshot.as_deref().map_or(String::new(), |n| format!(
            "<div><dt>Started from</dt><dd id=\"sandbox-snapshot-name\">snapshot <a href=\"/snapshots\"><code>{}</code></a></dd></div>",
            escape(n)
        )),
        workspace = workspace::detail_cards(svc, &session.caller, &s).await,
        ssh_card = super::ssh::ssh_card(svc, session, &s).await,
        created = html::date(&s.created_at),
        id = escape(&s.id),
        table = resolution_table(
            "Resolved agent credentials",
            &s.resolved_agent_credentials,
            &expired_credentials(svc, &session.caller).await
        ),
        secrets = injected_mapping(svc, session, &s, row.as_ref()).await,
        warnings = injection_warnings_card(row.as_ref()),
        message_box = message_box(session, &s, &conversation, draft),
        conversation_card = conversation_card(&s, &conversation, &session.csrf),
    );
    // A starting sandbox reloads the page; a pending reply is polled by the page's script
    // (which keeps what is being typed), or reloads it where scripts do not run.
    let refresh = if is_transient(s.state) {
        Some(Refresh::Always(2))
    } else if conversation.in_flight() {
        Some(Refresh::WithoutScript(3))
    } else {
        None
    };
    html_response(
        status,
        html::page_with(&s.name, &session.chrome(Nav::Sandboxes), &body, refresh),
    )
}

/// The buttons of a sandbox's page head: Stop (running or starting), Start (stopped or failed),
/// Snapshot… (running or stopped) and Delete, each offered only where the lifecycle allows it.
fn lifecycle_actions(s: &t::Sandbox, csrf: &str) -> String {
    let href = sandbox_href(s);
    let post = |op: &str, label: &str, class: &str| {
        format!(
            "<form method=\"post\" action=\"{href}/{op}\">{}<button type=\"submit\" class=\"button {class}\" id=\"sandbox-{op}\">{label}</button></form>",
            html::csrf_field(csrf)
        )
    };
    let mut out = String::new();
    if check_transition(s.state, Operation::Stop).is_ok() {
        out.push_str(&post("stop", "Stop", "ghost"));
    }
    if check_transition(s.state, Operation::Start).is_ok() {
        out.push_str(&post("start", "Start", "primary"));
    }
    if check_transition(s.state, Operation::Snapshot).is_ok() {
        out.push_str(&format!(
            "<a class=\"button ghost\" href=\"{href}/snapshot\" id=\"sandbox-snapshot\">Snapshot…</a>"
        ));
    }
    if check_transition(s.state, Operation::Delete).is_ok() {
        out.push_str(&format!(
            "<a class=\"button danger\" href=\"{href}/delete\" id=\"sandbox-delete\">Delete sandbox</a>"
        ));
    }
    format!("<div class=\"actions lifecycle\" aria-label=\"Sandbox actions\" role=\"group\">{out}</div>")
}

/// `POST /sandboxes/{name}/stop` and `/start`: the service's stop or start, then back to the
/// sandbox's page with what happened; a refusal (a sandbox already stopped meanwhile) is shown
/// on the page.
async fn lifecycle(svc: Service, name: String, form: WebForm, start: bool) -> Response {
    let session = form.session;
    let s = match svc.get_sandbox(&session.caller, &name).await {
        Ok(s) => s,
        Err(e) => return error_in_page(&session, e),
    };
    let result = if start {
        svc.start_sandbox(&session.caller, &s.id).await
    } else {
        svc.stop_sandbox(&session.caller, &s.id).await
    };
    match result {
        Ok(()) => {
            session.flash(if start {
                format!("Sandbox {} is starting.", s.name)
            } else {
                format!("Sandbox {} stopped.", s.name)
            });
            see_other(&sandbox_href(&s))
        }
        Err(e) => {
            let draft = SendDraft {
                page_error: Some(ApiError::from(e).message),
                ..SendDraft::default()
            };
            detail_page(&svc, &session, &s.id, &draft, StatusCode::CONFLICT).await
        }
    }
}

pub async fn stop(
    State(svc): State<Service>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    lifecycle(svc, name, form, false).await
}

pub async fn start(
    State(svc): State<Service>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    lifecycle(svc, name, form, true).await
}

fn confirm_page(
    session: &WebSession,
    s: &t::Sandbox,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let href = sandbox_href(s);
    let body = html::confirm_delete(
        "Delete sandbox",
        error,
        &format!(
            "Delete the sandbox <strong>{}</strong>? Its processes are killed and its home directory and workspace are removed.",
            escape(&s.name)
        ),
        "",
        &format!("{href}/delete"),
        &href,
        &session.csrf,
    );
    html_response(
        status,
        html::page(
            "Delete sandbox",
            &session.chrome(Nav::Sandboxes),
            &body,
            None,
        ),
    )
}

pub async fn confirm_delete(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(name): ApiPath<String>,
) -> Response {
    match svc.get_sandbox(&session.caller, &name).await {
        Ok(s) => confirm_page(&session, &s, None, StatusCode::OK),
        Err(e) => error_in_page(&session, e),
    }
}

pub async fn delete(
    State(svc): State<Service>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let s = match svc.get_sandbox(&session.caller, &name).await {
        Ok(s) => s,
        Err(e) => return error_in_page(&session, e),
    };
    match svc.delete_sandbox(&session.caller, &s.id).await {
        Ok(()) => {
            session.flash(format!("Sandbox {} deleted.", s.name));
            see_other("/sandboxes")
        }
        Err(e) => {
            let answer = ApiError::from(e);
            confirm_page(&session, &s, Some(&answer.message), answer.status)
        }
    }
}
