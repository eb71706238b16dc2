//! The Snapshots page: the caller's snapshots (name, source sandbox, mode, state with the
//! error of a failed capture, size, age) with "New sandbox from snapshot" and Delete (behind a
//! confirm page), reloading itself while a capture runs. Also the New sandbox form's snapshot
//! choice and its line in the form's preview. The capture form is in
//! [`super::snapshot_capture`].

use amika_types::{self as t, SnapshotMode, SnapshotState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::audit::relative_time;
use super::html::{self, escape, Nav};
use super::{error_in_page, html_response, see_other, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::{Caller, Service, ServiceError};

/// The form field (and select id) of the New sandbox form's snapshot choice.
pub(super) const SNAPSHOT_FIELD: &str = "snapshot";

/// The link that opens the New sandbox form with `name` chosen.
pub(super) fn new_sandbox_href(name: &str) -> String {
    // Names are plain, but a link never trusts that.
    format!(
        "/sandboxes/new?snapshot={}",
        escape(&html::percent_encode(name, b""))
    )
}

/// A size in bytes for people: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.2 GiB`.
pub(super) fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub(super) fn state_badge(state: SnapshotState) -> String {
    format!(
        "<span class=\"badge snapshot-{s}\">{s}</span>",
        s = escape(state.as_str())
    )
}

/// A mode in words: the unsafe one says so.
pub(super) fn mode_words(mode: SnapshotMode) -> &'static str {
    match mode {
        SnapshotMode::ScrubAndDelete => "scrubbed",
        SnapshotMode::Full => "full (may hold secrets)",
    }
}

/// The state cell: the badge, and under it why a capture failed.
fn state_cell(s: &t::SandboxSnapshot) -> String {
    let why = match (&s.state, &s.error_message) {
        (SnapshotState::Failed, Some(m)) => {
            format!(
                "<p class=\"field-error snapshot-error\">{}</p>",
                escape(&plain_refusal(m))
            )
        }
        (SnapshotState::Capturing, _) => {
            "<p class=\"hint\">Capturing: this page reloads until it is done.</p>".into()
        }
        _ => String::new(),
    };
    format!("{}{why}", state_badge(s.state))
}

/// A refused capture's message with the CLI's flag put in the page's words.
pub(super) fn plain_refusal(message: &str) -> String {
    message.replace(
        "take the snapshot with --mode full, which keeps them",
        "take the snapshot in Full mode, which keeps them",
    )
}

fn row(s: &t::SandboxSnapshot, now: &chrono::DateTime<Utc>, caller: &Caller) -> Vec<String> {
    let name = escape(&s.snapshot);
    let mut description = s.description.as_deref().map_or(String::new(), |d| {
        format!("<br><span class=\"muted\">{}</span>", escape(d))
    });
    let shared = s.scope == t::Scope::Org;
    if shared {
        description.push_str("<br><span class=\"badge\">shared with your org</span>");
    }
    // Who may delete it: its owner, or for an org snapshot the org's admins (the service's rule).
    let deletable = if shared {
        caller.is_admin
    } else {
        s.user_id == caller.user_id
    };
    let source = s
        .source_sandbox_name
        .as_deref()
        .map_or("<span class=\"muted\">—</span>".to_string(), |n| {
            format!("<code>{}</code>", escape(n))
        });
    let repo = match (&s.repo_name, &s.branch) {
        (Some(r), Some(b)) => format!(
            "<br><code>{}</code> · <code>{}</code>",
            escape(r),
            escape(b)
        ),
        (Some(r), None) => format!("<br><code>{}</code>", escape(r)),
        _ => String::new(),
    };
    let size = s
        .size_bytes
        .map_or("<span class=\"muted\">—</span>".to_string(), |b| {
            format!(
                "<span title=\"{b} bytes\">{}</span>",
                escape(&human_bytes(b))
            )
        });
    let mut buttons = String::new();
    if s.state == SnapshotState::Active {
        buttons.push_str(&format!(
            "<a class=\"button secondary small\" href=\"{}\">New sandbox<span class=\"visually-hidden\"> from snapshot {name}</span></a>",
            new_sandbox_href(&s.snapshot)
        ));
    }
    if s.state != SnapshotState::Capturing && deletable {
        buttons.push_str(&format!(
            "<a class=\"button danger small\" href=\"/snapshots/{}/delete\">Delete<span class=\"visually-hidden\"> snapshot {name}</span></a>",
            escape(&s.id)
        ));
    }
    vec![
        format!("<strong>{name}</strong>{description}"),
        format!("{source}{repo}"),
        escape(mode_words(s.mode)),
        state_cell(s),
        size,
        relative_time(&s.created_at, now),
        format!("<span class=\"row-buttons\">{buttons}</span>"),
    ]
}

/// `GET /snapshots`.
pub async fn page(State(svc): State<Service>, session: WebSession) -> Response {
    let list = match svc.list_snapshots(&session.caller, None, None).await {
        Ok(l) => l.items,
        Err(e) => return error_in_page(&session, e),
    };
    let now = Utc::now();
    let rows: Vec<Vec<String>> = list.iter().map(|s| row(s, &now, &session.caller)).collect();
    let table = html::table(
        "Snapshots",
        &["Name", "Source", "Mode", "State", "Size", "Created", ""],
        &rows,
        "No snapshots yet. Take one from a sandbox's page with its Snapshot button.",
    );
    let body = format!(
        "<div class=\"page-head\"><h1>Snapshots</h1><p class=\"lead\">A snapshot is a sandbox's home and workspace, captured to start new sandboxes from. Each new sandbox gets its own secrets and credentials.</p></div>\
<section class=\"card\" aria-label=\"Snapshot list\" id=\"snapshots\">{table}</section>"
    );
    let capturing = list.iter().any(|s| s.state == SnapshotState::Capturing);
    html_response(
        StatusCode::OK,
        html::page(
            "Snapshots",
            &session.chrome(Nav::Snapshots),
            &body,
            capturing.then_some(3),
        ),
    )
}

fn confirm_page(
    session: &WebSession,
    s: &t::SandboxSnapshot,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let body = html::confirm_delete(
        "Delete snapshot",
        error,
        &format!(
            "Delete the snapshot <strong>{}</strong>? Its archive is removed; sandboxes started from it keep their files.",
            escape(&s.snapshot)
        ),
        "",
        &format!("/snapshots/{}/delete", escape(&s.id)),
        "/snapshots",
        &session.csrf,
    );
    html_response(
        status,
        html::page(
            "Delete snapshot",
            &session.chrome(Nav::Snapshots),
            &body,
            None,
        ),
    )
}

/// `GET /snapshots/{ref}/delete`: the confirm page.
pub async fn confirm_delete(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(r): ApiPath<String>,
) -> Response {
    match svc.get_snapshot(&session.caller, &r).await {
        Ok(s) => confirm_page(&session, &s, None, StatusCode::OK),
        Err(e) => error_in_page(&session, e),
    }
}

/// `POST /snapshots/{ref}/delete`.
pub async fn delete(
    State(svc): State<Service>,
    ApiPath(r): ApiPath<String>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let s = match svc.get_snapshot(&session.caller, &r).await {
        Ok(s) => s,
        Err(e) => return error_in_page(&session, e),
    };
    match svc.delete_snapshot(&session.caller, &s.id).await {
        Ok(()) => {
            session.flash(format!("Snapshot {} deleted.", s.snapshot));
            see_other("/snapshots")
        }
        Err(e) => {
            let answer = ApiError::from(e);
            confirm_page(&session, &s, Some(&answer.message), answer.status)
        }
    }
}

// ------------------------------------------------------------------ the New sandbox form

/// The caller's active snapshots: what a sandbox can start from.
pub(super) async fn startable(
    svc: &Service,
    caller: &Caller,
) -> Result<Vec<t::SandboxSnapshot>, ServiceError> {
    let mut items = svc.list_snapshots(caller, None, None).await?.items;
    items.retain(|s| s.state == SnapshotState::Active);
    Ok(items)
}

/// The New sandbox form's snapshot select: none, or one of `snapshots` (a submitted name no
/// longer listed is kept, marked as such).
pub(super) fn snapshot_select(
    snapshots: &[t::SandboxSnapshot],
    current: &str,
    error: Option<&str>,
) -> String {
    let labels: Vec<(String, String)> = snapshots
        .iter()
        .map(|s| {
            let from = s
                .source_sandbox_name
                .as_deref()
                .map_or(String::new(), |n| format!(" (from {n})"));
            (s.snapshot.clone(), format!("{}{from}", s.snapshot))
        })
        .collect();
    let mut items: Vec<(&str, &str)> = vec![("", "None: a fresh home")];
    items.extend(labels.iter().map(|(v, l)| (v.as_str(), l.as_str())));
    let missing;
    if !current.is_empty() && !labels.iter().any(|(v, _)| v == current) {
        missing = format!("{current} (not found)");
        items.push((current, &missing));
    }
    // As the preset select: the hint between the label and the control, replaced by an error
    // as the control's description.
    let described = if error.is_none() {
        " aria-describedby=\"snapshot-hint\""
    } else {
        ""
    };
    format!(
        "<div class=\"field\"><label for=\"{SNAPSHOT_FIELD}\">Start from snapshot</label>\
<p class=\"hint\" id=\"snapshot-hint\">The new sandbox starts with the snapshot's home and workspace (with its repository and branch: leave Repository empty), and gets the secrets and credentials chosen here. See <a href=\"/snapshots\">Snapshots</a>.</p>\
<select id=\"{SNAPSHOT_FIELD}\" name=\"{SNAPSHOT_FIELD}\"{described}{invalid}>{options}</select>{error}</div>",
        invalid = html::invalid_attrs(SNAPSHOT_FIELD, error, true),
        options = html::options(items, current),
        error = html::field_error(SNAPSHOT_FIELD, error),
    )
}

/// The snapshot a form names, checked as a create would (it must be the caller's and active),
/// or the error to show next to the select.
pub(super) async fn chosen(
    svc: &Service,
    caller: &Caller,
    name: &str,
) -> Result<t::SandboxSnapshot, String> {
    // The create's own check (found, the caller's or their org's, active), in the page's words.
    svc.snapshot_to_start_from(caller, name)
        .await
        .map(|row| crate::service::snapshots::snapshot_to_wire(&row))
        .map_err(|e| {
            ApiError::from(e).message.replace(
                "`amika snapshot list` shows yours",
                "the Snapshots page lists yours",
            )
        })
}

/// The preview's line about the snapshot the sandbox starts from.
pub(super) fn preview_part(s: &t::SandboxSnapshot) -> String {
    let from = s.source_sandbox_name.as_deref().map_or(String::new(), |n| {
        format!(", captured from <code>{}</code>", escape(n))
    });
    let repo = match (&s.repo_name, &s.branch) {
        (Some(r), Some(b)) => format!(
            " with the repository <code>{}</code> on <code>{}</code>",
            escape(r),
            escape(b)
        ),
        (Some(r), None) => format!(" with the repository <code>{}</code>", escape(r)),
        _ => String::new(),
    };
    format!(
        "<h3>Starts from</h3><p id=\"preview-snapshot\">Snapshot <code>{}</code>{from}: its home and workspace{repo}.</p>",
        escape(&s.snapshot)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn the_new_sandbox_link_encodes_the_name() {
        assert_eq!(
            new_sandbox_href("node-ready"),
            "/sandboxes/new?snapshot=node-ready"
        );
        assert_eq!(
            new_sandbox_href("a&b\"c"),
            "/sandboxes/new?snapshot=a%26b%22c"
        );
    }
}
