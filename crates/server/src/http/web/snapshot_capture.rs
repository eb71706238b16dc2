//! The capture page of a sandbox (`/sandboxes/{name}/snapshot`): the scrub preview (the env
//! vars and credential files a scrubbed snapshot leaves out, by name only: a value is never on
//! a page), then a form with the snapshot's name, description and mode. `full` is offered with
//! the risk in plain words and needs its confirmation box ticked; the form refuses it
//! otherwise, before asking the service. Org admins may share the snapshot with their org
//! (a scrubbed one only: the service refuses `full` with org scope and says why).
//!
//! The service answers a create at once (`capturing`) and captures in the background. Small
//! homes take well under a second, so the page waits a little ([`SETTLE`]) for the outcome: a
//! refused scrub (a secret's value found in a file) comes back on the form, in plain words and
//! with what was typed, ready to fix and submit again (the failed snapshot of that name gives
//! way to the retry). A longer capture goes on and the Snapshots page follows it.

use std::time::Duration;

use amika_sandbox::lifecycle::{check_transition, is_transient, Operation};
use amika_types::{self as t, SnapshotMode, SnapshotState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tokio::time::{sleep, Instant};

use super::form::limits;
use super::html::{self, escape, Nav};
use super::sandbox_checks::plain;
use super::sandboxes::sandbox_href;
use super::snapshots::plain_refusal;
use super::{error_in_page, html_response, see_other, FormErrors, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::{Caller, Service, ServiceError};

/// How long a submit waits for the capture to end before leaving it to the Snapshots page.
const SETTLE: Duration = Duration::from_secs(15);
/// The field whose ticked box confirms a full snapshot.
const CONFIRM_FULL: &str = "confirm_full";
/// The field whose ticked box shares the snapshot with the org.
const SHARE: &str = "scope";

/// The form as submitted (or empty) and its errors.
#[derive(Debug, Default)]
struct Draft {
    name: String,
    description: String,
    /// The mode radio's value, as sent.
    mode: String,
    confirm_full: bool,
    /// Org scope asked for.
    share: bool,
    errors: FormErrors,
}

impl Draft {
    fn from_fields(fields: &super::Fields) -> Draft {
        Draft {
            name: fields.get("name").trim().to_string(),
            description: fields.get("description").trim().to_string(),
            mode: fields.get("mode").to_string(),
            confirm_full: fields.get(CONFIRM_FULL) == "yes",
            share: fields.get(SHARE) == "org",
            errors: FormErrors::default(),
        }
    }

    /// The request for `sandbox_id`, or `None` with the form's own errors placed: a mode that
    /// is not one of the two, or `full` without its confirmation.
    fn build_request(&mut self, sandbox_id: &str) -> Option<t::CreateSnapshotRequest> {
        let mode = match self.mode.as_str() {
            "" => SnapshotMode::ScrubAndDelete,
            m => match m.parse::<SnapshotMode>() {
                Ok(mode) => mode,
                Err(e) => {
                    self.errors.on("mode", e);
                    return None;
                }
            },
        };
        if mode == SnapshotMode::Full && !self.confirm_full {
            self.errors.on(
                CONFIRM_FULL,
                "a full snapshot keeps any secret written into a file: tick this box to confirm, or choose Scrub and delete",
            );
            return None;
        }
        Some(t::CreateSnapshotRequest {
            sandbox_ref: sandbox_id.to_string(),
            name: self.name.clone(),
            description: (!self.description.is_empty()).then(|| self.description.clone()),
            mode: Some(mode),
            scope: self.share.then_some(t::Scope::Org),
        })
    }

    /// A service error next to the field it names, or above the form.
    fn place(&mut self, e: ServiceError) -> StatusCode {
        let answer = ApiError::from(e);
        let message = plain(&answer.message);
        match answer.field() {
            Some(f @ ("name" | "description" | "mode" | "scope")) => self.errors.on(f, message),
            // Forbidden (not an org admin) names no field.
            None if self.share && answer.status == StatusCode::FORBIDDEN => {
                self.errors.on(SHARE, message)
            }
            _ => self.errors.general.push(message),
        }
        answer.status
    }

    fn is_full(&self) -> bool {
        self.mode == SnapshotMode::Full.as_str()
    }
}

/// The scrub preview: env var names and file paths, never a value.
fn scrub_card(preview: &t::ScrubPreview) -> String {
    let list = |id: &str, items: &[String], none: &str| {
        if items.is_empty() {
            return format!("<p class=\"empty\" id=\"{id}\">{}</p>", escape(none));
        }
        let lis: String = items
            .iter()
            .map(|i| format!("<li><code>{}</code></li>", escape(i)))
            .collect();
        format!("<ul class=\"chips\" id=\"{id}\">{lis}</ul>")
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"scrub-title\" id=\"scrub-preview\"><h2 id=\"scrub-title\">What a scrubbed snapshot leaves out</h2>\
<p class=\"hint\">What was injected into this sandbox, by name: the values are never shown.</p>\
<h3>Env vars</h3>{env}<h3>Credential files</h3>{files}\
<p class=\"hint\">Every file is also searched for each injected value (as is, base64, URL-encoded and JSON-escaped): one found anywhere stops the capture and names the file.</p></section>",
        env = list("scrub-env", &preview.env_vars, "No env var was injected."),
        files = list("scrub-files", &preview.files, "No credential file was injected."),
    )
}

/// One mode radio with its label and hint.
fn mode_choice(id: &str, value: SnapshotMode, checked: bool, label: &str, hint: &str) -> String {
    format!(
        "<div class=\"choice\"><input type=\"radio\" id=\"{id}\" name=\"mode\" value=\"{v}\"{c} aria-describedby=\"{id}-hint\">\
<label for=\"{id}\">{label}</label><p class=\"hint\" id=\"{id}-hint\">{hint}</p></div>",
        v = value.as_str(),
        c = if checked { " checked" } else { "" },
    )
}

/// The mode radios, the full mode's warning and its confirmation box.
fn mode_fieldset(d: &Draft) -> String {
    let confirm_error = d.errors.get(CONFIRM_FULL);
    format!(
        "<fieldset class=\"modes\"><legend>Mode</legend>{scrub}{full}{mode_error}</fieldset>\
<div class=\"full-warning\" id=\"full-warning\"><p><strong>Full mode captures secrets.</strong> A secret's value that the agent or you wrote into a file (a <code>.env</code>, a shell history, a config file) is stored in the snapshot, and every sandbox started from it gets that value. Choose it only when the sandbox holds nothing secret.</p>\
<div class=\"field check\"><input type=\"checkbox\" id=\"{CONFIRM_FULL}\" name=\"{CONFIRM_FULL}\" value=\"yes\"{checked}{invalid}>\
<label for=\"{CONFIRM_FULL}\">I understand that a full snapshot may contain secret values</label></div>{error}</div>",
        scrub = mode_choice(
            "mode-scrub",
            SnapshotMode::ScrubAndDelete,
            !d.is_full(),
            "Scrub and delete (recommended)",
            "Leaves out everything listed above, refuses to capture if a secret's value is found in any file, then deletes this sandbox.",
        ),
        full = mode_choice(
            "mode-full",
            SnapshotMode::Full,
            d.is_full(),
            "Full (unsafe)",
            "Captures every file as it is and keeps this sandbox.",
        ),
        mode_error = html::field_error("mode", d.errors.get("mode")),
        checked = if d.confirm_full { " checked" } else { "" },
        invalid = html::invalid_attrs(CONFIRM_FULL, confirm_error, true),
        error = html::field_error(CONFIRM_FULL, confirm_error),
    )
}

/// The org-sharing box, for org admins.
fn share_field(d: &Draft) -> String {
    let error = d.errors.get(SHARE);
    format!(
        "<div class=\"field check\"><input type=\"checkbox\" id=\"{SHARE}\" name=\"{SHARE}\" value=\"org\"{checked}{invalid} aria-describedby=\"{SHARE}-hint\">\
<label for=\"{SHARE}\">Share with my org</label>\
<p class=\"hint\" id=\"{SHARE}-hint\">Every member of your org sees it and starts sandboxes from it; only org admins delete it. Scrub and delete only.</p></div>{error}",
        checked = if d.share { " checked" } else { "" },
        invalid = html::invalid_attrs(SHARE, error, true),
        error = html::field_error(SHARE, error),
    )
}

fn render(s: &t::Sandbox, preview: &t::ScrubPreview, session: &WebSession, d: &Draft) -> String {
    let csrf = &session.csrf;
    // Offered to org admins; shown again with its error to whoever sent it anyway.
    let share = if session.caller.is_admin || d.share {
        share_field(d)
    } else {
        String::new()
    };
    let href = sandbox_href(s);
    let e = &d.errors;
    let name = html::Input {
        id: "name",
        name: "name",
        label: "Snapshot name",
        kind: "text",
        value: &d.name,
        hint: Some("Letters, digits, '-', '_' and '.', starting with a letter or digit: what a new sandbox names to start from it."),
        error: e.get("name"),
        required: true,
        autofocus: e.is_empty(),
        extra: &format!(
            "autocomplete=\"off\" spellcheck=\"false\" placeholder=\"node-ready\" maxlength=\"{}\"",
            limits::SANDBOX_NAME
        ),
    }
    .render();
    let description = html::Input {
        id: "description",
        name: "description",
        label: "Description",
        kind: "text",
        value: &d.description,
        hint: Some("Optional: what is prepared in it."),
        error: e.get("description"),
        required: false,
        autofocus: false,
        extra: &format!(
            "autocomplete=\"off\" maxlength=\"{}\"",
            limits::SNAPSHOT_DESCRIPTION
        ),
    }
    .render();
    let state_note = match check_transition(s.state, Operation::Snapshot) {
        Ok(_) => String::new(),
        Err(_) => format!(
            "<div class=\"alert\" role=\"alert\">This sandbox is {}: a snapshot is taken of a running or stopped sandbox.</div>",
            escape(s.state.as_str())
        ),
    };
    format!(
        "<div class=\"page-head\"><p class=\"crumb\"><a href=\"/sandboxes\">Sandboxes</a> / <a href=\"{href}\">{sandbox}</a> /</p><h1>Snapshot of {sandbox}</h1>\
<p class=\"lead\">Its home and workspace, captured to start new sandboxes from. The sandbox is stopped while it is captured.</p></div>\
{state_note}{general}{scrub}\
<form method=\"post\" action=\"{href}/snapshot\" novalidate>{csrf}\
<section class=\"card\" aria-labelledby=\"capture-title\"><h2 id=\"capture-title\">New snapshot</h2>\
<div class=\"grid-form\">{name}{description}</div>{modes}{share}\
<p class=\"actions\"><button type=\"submit\" class=\"button primary\" id=\"take-snapshot\">Take snapshot</button>\
<a class=\"button ghost\" href=\"{href}\">Cancel</a></p></section></form>",
        sandbox = escape(&s.name),
        general = html::form_errors(&e.general),
        scrub = scrub_card(preview),
        csrf = html::csrf_field(csrf),
        modes = mode_fieldset(d),
    )
}

async fn respond(
    svc: &Service,
    session: &WebSession,
    name: &str,
    d: &Draft,
    status: StatusCode,
) -> Response {
    let loaded = async {
        let s = svc.get_sandbox(&session.caller, name).await?;
        let preview = svc.scrub_preview(&session.caller, &s.id).await?;
        Ok::<_, ServiceError>((s, preview))
    };
    let (s, preview) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return error_in_page(session, e),
    };
    let title = format!("Snapshot of {}", s.name);
    html_response(
        status,
        html::page(
            &title,
            &session.chrome(Nav::Sandboxes),
            &render(&s, &preview, session, d),
            None,
        ),
    )
}

/// `GET /sandboxes/{name}/snapshot`.
pub async fn capture_page(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(name): ApiPath<String>,
) -> Response {
    respond(&svc, &session, &name, &Draft::default(), StatusCode::OK).await
}

/// `POST /sandboxes/{name}/snapshot`: start the capture, wait a little for its outcome, then
/// the Snapshots page (or the form again with what went wrong).
pub async fn capture(
    State(svc): State<Service>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    let WebForm { session, fields } = form;
    let mut d = Draft::from_fields(&fields);
    let s = match svc.get_sandbox(&session.caller, &name).await {
        Ok(s) => s,
        Err(e) => return error_in_page(&session, e),
    };
    let Some(req) = d.build_request(&s.id) else {
        return respond(&svc, &session, &s.id, &d, StatusCode::BAD_REQUEST).await;
    };
    let snap = match svc.create_snapshot(&session.caller, req).await {
        Ok(snap) => snap,
        Err(e) => {
            let status = d.place(e);
            return respond(&svc, &session, &s.id, &d, status).await;
        }
    };
    let settled = settle(&svc, &session.caller, &snap.id, &s.id).await;
    match settled
        .as_ref()
        .map(|x| (x.state, x.error_message.as_deref()))
    {
        Some((SnapshotState::Failed, message)) => {
            d.errors.general.push(plain_refusal(
                message.unwrap_or("the capture failed: the Snapshots page has it"),
            ));
            respond(&svc, &session, &s.id, &d, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Some((SnapshotState::Active, _)) => {
            session.flash(match snap.mode {
                SnapshotMode::ScrubAndDelete => format!(
                    "Snapshot {} captured, scrubbed; the sandbox {} was deleted.",
                    snap.snapshot, s.name
                ),
                SnapshotMode::Full => format!(
                    "Snapshot {} captured in full mode: it may hold secret values. The sandbox {} was kept.",
                    snap.snapshot, s.name
                ),
            });
            see_other("/snapshots")
        }
        _ => {
            session.flash(format!(
                "Snapshot {} is capturing: this page shows when it is done.",
                snap.snapshot
            ));
            see_other("/snapshots")
        }
    }
}

/// The snapshot once its capture ended and its source sandbox settled (deleted, or back as it
/// was: stopped, or running again, so that the form shown again can be submitted again at
/// once), or as it is after [`SETTLE`]; `None` when it cannot be read.
async fn settle(
    svc: &Service,
    caller: &Caller,
    snapshot_id: &str,
    sandbox_id: &str,
) -> Option<t::SandboxSnapshot> {
    let deadline = Instant::now() + SETTLE;
    let mut snap = svc.get_snapshot(caller, snapshot_id).await.ok()?;
    loop {
        let source_busy = match svc.get_sandbox(caller, sandbox_id).await {
            Ok(source) => is_transient(source.state),
            Err(_) => false,
        };
        if (snap.state != SnapshotState::Capturing && !source_busy) || Instant::now() >= deadline {
            return Some(snap);
        }
        sleep(Duration::from_millis(100)).await;
        snap = svc.get_snapshot(caller, snapshot_id).await.ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(mode: &str, confirm: bool) -> Draft {
        Draft {
            name: "snap".into(),
            mode: mode.into(),
            confirm_full: confirm,
            ..Draft::default()
        }
    }

    #[test]
    fn the_mode_defaults_to_scrub_and_full_needs_its_box_ticked() {
        let req = draft("", false).build_request("sbx_1").unwrap();
        assert_eq!(req.mode, Some(SnapshotMode::ScrubAndDelete));
        assert_eq!(req.sandbox_ref, "sbx_1");
        assert_eq!(req.description, None);

        let mut d = draft("full", false);
        assert!(d.build_request("sbx_1").is_none());
        assert!(d
            .errors
            .get(CONFIRM_FULL)
            .unwrap()
            .contains("tick this box"));

        let req = draft("full", true).build_request("sbx_1").unwrap();
        assert_eq!(req.mode, Some(SnapshotMode::Full));

        let mut d = draft("everything", true);
        assert!(d.build_request("sbx_1").is_none());
        assert!(d
            .errors
            .get("mode")
            .unwrap()
            .contains("scrub_and_delete or full"));
    }
}
