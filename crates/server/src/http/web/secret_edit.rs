//! Editing a secret: its description, and a new value (a rotation: the next version). The
//! value is never shown or written back; leaving it empty keeps the current one. Org secrets
//! are editable by org admins only, as the service decides (its refusal is shown on the form).

use amika_types::{self as t, Scope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::form::limits;
use super::html::{self, escape, Input, Nav};
use super::{error_in_page, html_response, see_other, FormErrors, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::Service;

/// A scope in words, as the Secrets page shows it.
pub fn scope_words(scope: Scope) -> &'static str {
    match scope {
        Scope::User => "user · only you",
        Scope::Org => "org · shared with your org",
    }
}

fn edit_page(
    session: &WebSession,
    s: &t::SecretSummary,
    description: &str,
    errors: &FormErrors,
    status: StatusCode,
) -> Response {
    let description = Input {
        id: "edit-description",
        name: "description",
        label: "Description",
        kind: "text",
        value: description,
        hint: None,
        error: errors.get("description"),
        required: false,
        autofocus: false,
        extra: "autocomplete=\"off\"",
    }
    .render();
    let value = Input {
        id: "edit-value",
        name: "value",
        label: "New value (optional)",
        kind: "password",
        value: "",
        hint: Some("Leave empty to keep the current value. A new value becomes the next version; sandboxes get it when they next start."),
        error: errors.get("value"),
        required: false,
        autofocus: true,
        extra: &format!(
            "autocomplete=\"new-password\" spellcheck=\"false\" maxlength=\"{}\"",
            limits::VALUE
        ),
    }
    .render();
    let body = format!(
        "<p class=\"crumb\"><a href=\"/secrets\">Secrets</a> /</p>\
<section class=\"card narrow-card\" id=\"edit-secret\" aria-labelledby=\"edit-title\"><h1 id=\"edit-title\">Edit secret <code>{name}</code></h1>\
<dl class=\"facts\"><div><dt>Scope</dt><dd><span class=\"badge scope-{scope}\">{scope_words}</span></dd></div>\
<div><dt>Version</dt><dd id=\"secret-version\">{version}</dd></div><div><dt>Updated</dt><dd>{updated}</dd></div></dl>{general}\
<form method=\"post\" action=\"/secrets/{id}/edit\" class=\"stack\" data-keep-values=\"edit-secret\" data-done=\"/secrets\">{csrf}{value}{description}\
<div class=\"actions\"><button type=\"submit\" class=\"button primary\">Save</button><a class=\"button ghost\" href=\"/secrets\">Cancel</a></div></form></section>",
        name = escape(&s.name),
        scope = escape(s.scope.as_str()),
        scope_words = escape(scope_words(s.scope)),
        version = s.version,
        updated = html::date(&s.updated_at),
        general = html::form_errors(&errors.general),
        id = escape(&s.id),
        csrf = html::csrf_field(&session.csrf),
    );
    html_response(
        status,
        html::page("Edit secret", &session.chrome(Nav::Secrets), &body, None),
    )
}

async fn summary(
    svc: &Service,
    session: &WebSession,
    id: &str,
) -> Result<t::SecretSummary, Response> {
    match svc.list_secrets(&session.caller).await {
        Ok(list) => list.into_iter().find(|s| s.id == id).ok_or_else(|| {
            error_in_page(
                session,
                crate::service::ServiceError::NotFound(format!("secret {id:?}")),
            )
        }),
        Err(e) => Err(error_in_page(session, e)),
    }
}

/// `GET /secrets/{id}/edit`.
pub async fn edit(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(id): ApiPath<String>,
) -> Response {
    match summary(&svc, &session, &id).await {
        Ok(s) => {
            let description = s.description.clone().unwrap_or_default();
            edit_page(
                &session,
                &s,
                &description,
                &FormErrors::default(),
                StatusCode::OK,
            )
        }
        Err(r) => r,
    }
}

/// `POST /secrets/{id}/edit`: the description, and the value when one was entered.
pub async fn save(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<String>,
    form: WebForm,
) -> Response {
    let WebForm {
        session,
        mut fields,
    } = form;
    let s = match summary(&svc, &session, &id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let description = fields.get("description").trim().to_string();
    let value = fields.take("value");
    let req = t::UpdateSecretRequest {
        value: (!value.is_empty()).then_some(value),
        description: Some(description.clone()),
        ..Default::default()
    };
    match svc.update_secret(&session.caller, &s.id, req).await {
        Ok(updated) => {
            session.flash(if updated.version > s.version {
                format!(
                    "Secret {} updated: its value is now version {}.",
                    updated.name, updated.version
                )
            } else {
                format!("Secret {} updated.", updated.name)
            });
            see_other("/secrets")
        }
        Err(e) => {
            let answer = ApiError::from(e);
            let mut errors = FormErrors::default();
            match answer.field() {
                Some("value") => errors.on("value", answer.message),
                _ => errors.general.push(answer.message),
            }
            edit_page(&session, &s, &description, &errors, answer.status)
        }
    }
}
