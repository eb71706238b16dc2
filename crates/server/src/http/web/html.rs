//! HTML building blocks of the web UI: the one `escape()` every piece of user-supplied text goes
//! through, the page layout, form fields with their labels and inline errors, and tables that
//! turn into stacked cards on narrow screens.
//!
//! Pages are plain strings built with `format!`: the rule is that every `{}` that is not the
//! output of another function in this module takes `escape(..)` of its text.

use chrono::{DateTime, Utc};

/// Escape text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A timestamp for a table cell: readable, with the exact instant in `datetime`.
pub fn date(at: &DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        escape(&at.to_rfc3339()),
        escape(&at.format("%Y-%m-%d %H:%M UTC").to_string())
    )
}

/// Which nav entry is highlighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Sandboxes,
    NewSandbox,
    Snapshots,
    Secrets,
    Presets,
    Audit,
    None,
}

/// The signed-in frame of a page: who is signed in and the token for the sign-out form.
#[derive(Debug, Clone)]
pub struct Chrome<'a> {
    pub user_name: &'a str,
    pub csrf: &'a str,
    pub nav: Nav,
    /// A one-time notice (e.g. "Secret X added.") shown above the content.
    pub flash: Option<String>,
}

/// How a page follows something that is still changing on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Reload after this many seconds (a sandbox that is still starting).
    Always(u32),
    /// Reload after this many seconds only in a browser without scripts; with scripts, the
    /// page polls a JSON endpoint instead and keeps what the user is typing.
    WithoutScript(u32),
}

fn head(title: &str, refresh: Option<Refresh>) -> String {
    let refresh = match refresh {
        None => String::new(),
        // A script reload (app.js) rather than a meta refresh, which assistive technology
        // cannot pause (WCAG 2.2.1); the meta refresh remains where scripts do not run.
        Some(Refresh::Always(s)) => format!(
            "<meta name=\"amika-reload\" content=\"{s}\"><noscript><meta http-equiv=\"refresh\" content=\"{s}\"></noscript>"
        ),
        Some(Refresh::WithoutScript(s)) => {
            format!("<noscript><meta http-equiv=\"refresh\" content=\"{s}\"></noscript>")
        }
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
<title>{} · amika</title>\
<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">\
<link rel=\"stylesheet\" href=\"/static/app.css\">\
<script src=\"/static/app.js\" defer></script></head>",
        escape(title)
    )
}

/// A whole page for a signed-in user. `refresh` reloads it after that many seconds (a sandbox
/// that is still starting).
pub fn page(title: &str, chrome: &Chrome<'_>, body: &str, refresh: Option<u32>) -> String {
    page_with(title, chrome, body, refresh.map(Refresh::Always))
}

/// [`page`] with any kind of [`Refresh`].
pub fn page_with(title: &str, chrome: &Chrome<'_>, body: &str, refresh: Option<Refresh>) -> String {
    let link = |nav: Nav, href: &str, text: &str| {
        let current = if chrome.nav == nav {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{text}</a>")
    };
    let flash = chrome.flash.as_deref().map_or(String::new(), |f| {
        format!("<div class=\"notice\" role=\"status\">{}</div>", escape(f))
    });
    format!(
        "{head}<body><a class=\"skip\" href=\"#main\">Skip to content</a>\
<header class=\"top\"><div class=\"bar\"><a class=\"brand\" href=\"/sandboxes\"><span class=\"logo\" aria-hidden=\"true\"></span>amika</a>\
<nav aria-label=\"Main\">{}{}{}{}{}{}</nav>\
<div class=\"who\"><span class=\"user\" title=\"Signed in as\">{}</span>\
<form method=\"post\" action=\"/logout\">{}<button type=\"submit\" class=\"button ghost small\">Sign out</button></form></div>\
</div></header><main id=\"main\" class=\"wrap\">{flash}{body}</main></body></html>",
        link(Nav::Sandboxes, "/sandboxes", "Sandboxes"),
        link(Nav::NewSandbox, "/sandboxes/new", "New sandbox"),
        link(Nav::Snapshots, "/snapshots", "Snapshots"),
        link(Nav::Secrets, "/secrets", "Secrets"),
        link(Nav::Presets, "/presets", "Presets"),
        link(Nav::Audit, "/audit", "Audit"),
        escape(chrome.user_name),
        csrf_field(chrome.csrf),
        head = head(title, refresh),
    )
}

/// A page without the signed-in frame (sign-in, errors before a session exists).
pub fn bare_page(title: &str, body: &str) -> String {
    format!(
        "{}<body class=\"bare\"><main id=\"main\" class=\"narrow\">\
<p class=\"brand big\"><span class=\"logo\" aria-hidden=\"true\"></span>amika</p>{body}</main></body></html>",
        head(title, None)
    )
}

pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"_csrf\" value=\"{}\">",
        escape(token)
    )
}

/// The message under a field, tied to it by `aria-describedby`.
pub fn field_error(id: &str, error: Option<&str>) -> String {
    match error {
        Some(e) => format!(
            "<p class=\"field-error\" id=\"{}-error\">{}</p>",
            escape(id),
            escape(e)
        ),
        None => String::new(),
    }
}

/// Attributes that mark a field invalid and point at its message; the first invalid field of a
/// form also takes the focus, so a keyboard user lands on what to fix.
pub fn invalid_attrs(id: &str, error: Option<&str>, autofocus: bool) -> String {
    match error {
        Some(_) => format!(
            " aria-invalid=\"true\" aria-describedby=\"{}-error\"{}",
            escape(id),
            if autofocus { " autofocus" } else { "" }
        ),
        None => String::new(),
    }
}

/// A labelled text-like input. `kind` is the input type; `value` is echoed back escaped
/// (callers never pass secret values here: password fields always render empty).
pub struct Input<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub required: bool,
    /// Focus this field when the page opens (an invalid field always takes the focus).
    pub autofocus: bool,
    /// Extra attributes, trusted markup (e.g. `autocomplete="off"`).
    pub extra: &'a str,
}

impl Input<'_> {
    pub fn render(&self) -> String {
        let hint = self.hint.map_or(String::new(), |h| {
            format!(
                "<p class=\"hint\" id=\"{}-hint\">{}</p>",
                escape(self.id),
                escape(h)
            )
        });
        let described = match (self.hint.is_some(), self.error.is_some()) {
            (true, false) => format!(" aria-describedby=\"{}-hint\"", escape(self.id)),
            _ => String::new(),
        };
        format!(
            "<div class=\"field\"><label for=\"{id}\">{label}</label>{hint}\
<input id=\"{id}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\"{req}{auto}{invalid}{described} {extra}>{error}</div>",
            id = escape(self.id),
            label = escape(self.label),
            name = escape(self.name),
            kind = escape(self.kind),
            value = escape(self.value),
            req = if self.required { " required" } else { "" },
            auto = if self.autofocus && self.error.is_none() {
                " autofocus"
            } else {
                ""
            },
            invalid = invalid_attrs(self.id, self.error, true),
            extra = self.extra,
            error = field_error(self.id, self.error),
        )
    }
}

/// A labelled `<textarea>` whose `value` is echoed back escaped, with its hint and inline error
/// (callers never pass secret values here).
pub struct TextArea<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub rows: u8,
    /// Extra attributes, trusted markup (e.g. `placeholder="..."`).
    pub extra: &'a str,
}

impl TextArea<'_> {
    pub fn render(&self) -> String {
        let hint = self.hint.map_or(String::new(), |h| {
            format!(
                "<p class=\"hint\" id=\"{}-hint\">{}</p>",
                escape(self.id),
                escape(h)
            )
        });
        let described = match (self.hint.is_some(), self.error.is_some()) {
            (true, false) => format!(" aria-describedby=\"{}-hint\"", escape(self.id)),
            _ => String::new(),
        };
        // The parser drops one newline right after `<textarea>`: the one written here, so
        // that a value starting with a newline keeps it.
        format!(
            "<div class=\"field wide\"><label for=\"{id}\">{label}</label>{hint}\
<textarea id=\"{id}\" name=\"{name}\" rows=\"{rows}\" spellcheck=\"false\" autocomplete=\"off\"{invalid}{described} {extra}>\n{value}</textarea>{error}</div>",
            id = escape(self.id),
            label = escape(self.label),
            name = escape(self.name),
            rows = self.rows,
            invalid = invalid_attrs(self.id, self.error, true),
            extra = self.extra,
            value = escape(self.value),
            error = field_error(self.id, self.error),
        )
    }
}

/// `<option>`s from (value, label) pairs with `selected` on the one equal to `current`.
pub fn options<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>, current: &str) -> String {
    items
        .into_iter()
        .map(|(value, label)| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                escape(value),
                if value == current { " selected" } else { "" },
                escape(label)
            )
        })
        .collect()
}

/// A labelled `<select>`; `options` is markup from [`options`].
pub fn select(
    id: &str,
    name: &str,
    label: &str,
    options: &str,
    error: Option<&str>,
    autofocus: bool,
) -> String {
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label>\
<select id=\"{id}\" name=\"{name}\"{invalid}>{options}</select>{error}</div>",
        id = escape(id),
        name = escape(name),
        label = escape(label),
        invalid = invalid_attrs(id, error, autofocus),
        error = field_error(id, error),
    )
}

/// Messages that concern the whole form rather than one field.
pub fn form_errors(errors: &[String]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let items: String = errors
        .iter()
        .map(|e| format!("<li>{}</li>", escape(e)))
        .collect();
    format!("<div class=\"alert\" role=\"alert\"><ul>{items}</ul></div>")
}

/// The card of a confirm-before-delete page: `question` (markup), a `note` under it, a POST form
/// to `action` with the session's token, and a way back to `cancel` (both hrefs already escaped,
/// as `sandbox_href` gives them).
pub fn confirm_delete(
    title: &str,
    error: Option<&str>,
    question: &str,
    note: &str,
    action: &str,
    cancel: &str,
    csrf: &str,
) -> String {
    let error = error.map_or(String::new(), |e| form_errors(&[e.to_string()]));
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<p class=\"hint\">{}</p>", escape(note))
    };
    format!(
        "<section class=\"card narrow-card\"><h1>{}</h1>{error}<p>{question}</p>{note}\
<form method=\"post\" action=\"{}\" class=\"actions\">{}\
<button type=\"submit\" class=\"button danger\" autofocus>Delete</button>\
<a class=\"button ghost\" href=\"{}\">Cancel</a></form></section>",
        escape(title),
        action,
        csrf_field(csrf),
        cancel,
    )
}

/// A table whose rows become labelled cards on narrow screens. `rows` are cell texts already
/// rendered as markup; each cell gets its column header as `data-label`.
pub fn table(caption: &str, headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", escape(empty));
    }
    let head: String = headers
        .iter()
        .map(|h| format!("<th scope=\"col\">{}</th>", escape(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|cells| {
            let tds: String = cells
                .iter()
                .zip(headers)
                .map(|(c, h)| format!("<td data-label=\"{}\">{c}</td>", escape(h)))
                .collect();
            format!("<tr>{tds}</tr>")
        })
        .collect();
    format!(
        "<table class=\"cards\"><caption class=\"visually-hidden\">{}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        escape(caption)
    )
}

/// `text` percent-encoded for a URL: every byte but ASCII letters, digits, `-_.~` and those of
/// `keep` (e.g. `/` in a path).
pub(super) fn percent_encode(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_in_text_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain DATABASE_URL"), "plain DATABASE_URL");
        assert_eq!(escape("ünïcode — ok"), "ünïcode — ok");
    }

    #[test]
    fn fields_escape_values_labels_and_errors() {
        let html = Input {
            id: "name",
            name: "name",
            label: "Name <b>",
            kind: "text",
            value: "\"><script>x</script>",
            hint: None,
            error: Some("bad <i>name</i>"),
            required: true,
            autofocus: true,
            extra: "",
        }
        .render();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<i>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
        assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"name-error\" autofocus"));
        assert!(html.contains("<label for=\"name\">"));
    }

    #[test]
    fn text_areas_echo_what_was_typed_escaped_with_their_error() {
        let html = TextArea {
            id: "env_vars",
            name: "env_vars",
            label: "Plain <env>",
            value: "\nA=</textarea><script>x</script>",
            hint: Some("KEY=VALUE"),
            error: Some("line 1: bad <b>"),
            rows: 3,
            extra: "",
        }
        .render();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains(">\n\nA=&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>"),
            "{html}"
        );
        assert!(
            html.contains("aria-invalid=\"true\" aria-describedby=\"env_vars-error\" autofocus")
        );
        assert!(html
            .contains("<p class=\"field-error\" id=\"env_vars-error\">line 1: bad &lt;b&gt;</p>"));
        assert!(html.contains("<label for=\"env_vars\">Plain &lt;env&gt;</label>"));
    }

    #[test]
    fn options_escape_and_mark_the_current_choice() {
        let html = options([("a\"b", "A <1>"), ("c", "C")], "c");
        assert_eq!(
            html,
            "<option value=\"a&quot;b\">A &lt;1&gt;</option><option value=\"c\" selected>C</option>"
        );
    }

    #[test]
    fn table_cells_carry_their_column_for_narrow_layouts() {
        let html = table(
            "t",
            &["Name", "State"],
            &[vec!["a".into(), "b".into()]],
            "none",
        );
        assert!(html.contains("<td data-label=\"Name\">a</td><td data-label=\"State\">b</td>"));
        assert_eq!(
            table("t", &["Name"], &[], "Nothing <here>"),
            "<p class=\"empty\">Nothing &lt;here&gt;</p>"
        );
    }
}
