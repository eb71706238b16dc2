//! The audit page: the events the caller may see (an admin's whole org, a member's own, as
//! `Service::list_audit_events` decides), newest first, with filters on the action, the kind of
//! object and its name, and times shown relative to now (the exact instant on hover and in
//! `datetime`).
//!
//! The filters are a GET form, so a filtered view is a link. They apply to the newest
//! [`SCANNED`] events; the page says so when that many were read.

use amika_types as t;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::html::{self, escape, Nav};
use super::{error_in_page, html_response, WebSession};
use crate::service::audit::AUDIT_LIMITS;
use crate::service::Service;

/// How many of the newest events the filters look through.
const SCANNED: i64 = *AUDIT_LIMITS.end();
/// How many matching events one page shows.
const SHOWN: usize = 200;
/// The longest filter text kept (longer input is cut, never an error).
pub const FILTER_MAX: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct AuditFilter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    object_type: String,
    #[serde(default)]
    q: String,
}

impl AuditFilter {
    fn cut(mut self) -> Self {
        for f in [&mut self.action, &mut self.object_type, &mut self.q] {
            *f = f.trim().chars().take(FILTER_MAX).collect();
        }
        self
    }

    fn matches(&self, e: &t::AuditEvent) -> bool {
        let q = self.q.to_lowercase();
        (self.action.is_empty() || e.action == self.action)
            && (self.object_type.is_empty() || e.object_type == self.object_type)
            && (q.is_empty()
                || e.object_name.to_lowercase().contains(&q)
                || e.object_id.to_lowercase().contains(&q)
                || e.sandbox_id.as_deref().is_some_and(|s| s.contains(&q)))
    }
}

/// "just now", "5 min ago", "3 h ago", "2 days ago": how long before `now` `at` was.
pub fn ago(at: &DateTime<Utc>, now: &DateTime<Utc>) -> String {
    let secs = (*now - *at).num_seconds();
    match secs {
        s if s < 45 => "just now".into(),
        s if s < 3600 => format!("{} min ago", ((s + 30) / 60).max(1)),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s if s < 2 * 86_400 => "yesterday".into(),
        s => format!("{} days ago", s / 86_400),
    }
}

/// A relative time with the exact instant in `datetime` and `title`.
pub fn relative_time(at: &DateTime<Utc>, now: &DateTime<Utc>) -> String {
    let exact = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        escape(&at.to_rfc3339()),
        escape(&exact),
        escape(&ago(at, now))
    )
}

/// A select of the distinct `values`, plus "any"; `current` selected (kept even when no event
/// has it any more).
fn filter_select(id: &str, label: &str, values: &[&str], current: &str) -> String {
    let mut items: Vec<&str> = values.to_vec();
    if !current.is_empty() && !items.contains(&current) {
        items.push(current);
    }
    items.sort_unstable();
    items.dedup();
    let options = html::options(
        std::iter::once(("", "any")).chain(items.iter().map(|v| (*v, *v))),
        current,
    );
    html::select(id, id, label, &options, None, false)
}

/// The event's non-secret detail, as compact JSON, cut at 300 characters.
fn detail_cell(e: &t::AuditEvent) -> String {
    let text = match &e.detail {
        serde_json::Value::Object(m) if m.is_empty() => return String::new(),
        serde_json::Value::Null => return String::new(),
        v => v.to_string(),
    };
    let mut shown: String = text.chars().take(300).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("<code class=\"detail\">{}</code>", escape(&shown))
}

fn row(e: &t::AuditEvent, now: &DateTime<Utc>) -> Vec<String> {
    let version = e.version.map_or(String::new(), |v| {
        format!(" <span class=\"muted\">v{v}</span>")
    });
    let sandbox = e.sandbox_id.as_deref().map_or(String::new(), |id| {
        format!(
            "<br><span class=\"muted\">in sandbox</span> <a href=\"/sandboxes/{id}\"><code>{id}</code></a>",
            id = escape(id)
        )
    });
    vec![
        relative_time(&e.created_at, now),
        format!("<code>{}</code>", escape(&e.action)),
        format!(
            "{} <strong>{}</strong>{version}{sandbox}",
            escape(&e.object_type),
            escape(&e.object_name)
        ),
        format!("<code>{}</code>", escape(&e.user_id)),
        detail_cell(e),
    ]
}

/// `GET /audit`.
pub async fn page(
    State(svc): State<Service>,
    session: WebSession,
    filter: Result<Query<AuditFilter>, QueryRejection>,
) -> Response {
    // A hand-made query the form cannot send (a repeated field): no filter rather than an error.
    let filter = filter.map(|Query(f)| f).unwrap_or_default().cut();
    let events = match svc.list_audit_events(&session.caller, Some(SCANNED)).await {
        Ok(e) => e,
        Err(e) => return error_in_page(&session, e),
    };
    let now = Utc::now();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.object_type.as_str()).collect();
    let matching: Vec<&t::AuditEvent> = events.iter().filter(|e| filter.matches(e)).collect();
    let rows: Vec<Vec<String>> = matching.iter().take(SHOWN).map(|e| row(e, &now)).collect();
    let empty = if events.is_empty() {
        "Nothing has happened yet."
    } else {
        "No event matches these filters."
    };
    let table = html::table(
        "Audit events, newest first",
        &["When", "Action", "Object", "By", "Detail"],
        &rows,
        empty,
    );
    let count = match (matching.len(), events.len() as i64 >= SCANNED) {
        (n, _) if n > SHOWN => format!("The newest {SHOWN} of {n} matching events."),
        (n, true) => format!("{n} matching among the newest {SCANNED} events."),
        (n, false) => format!("{n} event{}.", if n == 1 { "" } else { "s" }),
    };
    let whose = if session.caller.is_admin {
        "Everything that happened in your organisation"
    } else {
        "Everything you did"
    };
    let search = html::Input {
        id: "q",
        name: "q",
        label: "Name or id contains",
        kind: "search",
        value: &filter.q,
        hint: None,
        error: None,
        required: false,
        autofocus: false,
        extra: &format!("maxlength=\"{FILTER_MAX}\""),
    }
    .render();
    let body = format!(
        "<div class=\"page-head\"><h1>Audit</h1><p class=\"lead\">{whose}: who did what to which secret, credential or sandbox, and when. Never a value.</p></div>\
<section class=\"card\" aria-labelledby=\"filter-title\"><h2 id=\"filter-title\">Filter</h2>\
<form method=\"get\" action=\"/audit\" class=\"filters\">{action}{object}{search}\
<div class=\"actions\"><button type=\"submit\" class=\"button primary\">Apply</button>\
<a class=\"button ghost\" href=\"/audit\">Clear</a></div></form></section>\
<section class=\"card\" aria-labelledby=\"events-title\"><h2 id=\"events-title\">Events</h2>\
<p class=\"hint\" id=\"audit-count\">{count}</p>{table}</section>",
        action = filter_select("action", "Action", &actions, &filter.action),
        object = filter_select("object_type", "Object", &types, &filter.object_type),
        count = escape(&count),
    );
    html_response(
        StatusCode::OK,
        html::page("Audit", &session.chrome(Nav::Audit), &body, None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn times_read_as_how_long_ago() {
        let now = Utc::now();
        let cases = [
            (Duration::seconds(3), "just now"),
            (Duration::seconds(50), "1 min ago"),
            (Duration::minutes(5), "5 min ago"),
            (Duration::minutes(59), "59 min ago"),
            (Duration::hours(3), "3 h ago"),
            (Duration::hours(30), "yesterday"),
            (Duration::days(9), "9 days ago"),
        ];
        for (back, want) in cases {
            assert_eq!(ago(&(now - back), &now), want, "{back:?}");
        }
        let html = relative_time(&(now - Duration::minutes(5)), &now);
        assert!(html.contains(">5 min ago</time>"), "{html}");
        assert!(html.contains("title=\""), "{html}");
    }

    #[test]
    fn filters_match_exactly_on_action_and_type_and_by_substring_on_names() {
        let e = t::AuditEvent {
            id: "evt_1".into(),
            org_id: "org".into(),
            user_id: "usr".into(),
            action: "secret.created".into(),
            object_type: "secret".into(),
            object_id: "sec_1".into(),
            object_name: "DATABASE_URL".into(),
            version: Some(1),
            sandbox_id: None,
            detail: serde_json::json!({}),
            created_at: Utc::now(),
        };
        let f = |action: &str, object_type: &str, q: &str| AuditFilter {
            action: action.into(),
            object_type: object_type.into(),
            q: q.into(),
        };
        assert!(f("", "", "").matches(&e));
        assert!(f("secret.created", "secret", "database").matches(&e));
        assert!(!f("secret.updated", "", "").matches(&e));
        assert!(!f("", "sandbox", "").matches(&e));
        assert!(!f("", "", "OPENAI").matches(&e));
        let long = f(&"a".repeat(5000), "", "").cut();
        assert_eq!(long.action.len(), FILTER_MAX);
    }
}
