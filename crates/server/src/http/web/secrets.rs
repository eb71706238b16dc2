//! The Secrets page: env secrets and provider credentials (the agents' `claude` and `codex`, and
//! `github`, a token for cloning private repositories) listed by name, scope, type, default mark
//! and dates (never values), the forms that add them, and delete with a confirm page.
//!
//! A form that fails is shown again with every field as it was typed, except the value: a
//! secret value is never written back into HTML, and the message next to it says so.

use amika_types::{self as t, AgentKind, CredentialType, ErrorCode, Scope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::form::limits;
use super::html::{self, escape, Input, Nav};
use super::secret_edit::scope_words;
use super::{error_in_page, html_response, see_other, FormErrors, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::credentials::parse_agent_kind;
use crate::service::{Service, ServiceError};

/// The longest value the forms accept, as the service's own limit (`validate::value`).
const VALUE_MAX_CHARS: usize = limits::VALUE;

const VALUE_NOT_KEPT: &str =
    "The value was not kept, for its safety: enter it again before you resubmit.";

/// What the add-secret form holds when it is shown again.
#[derive(Debug, Default)]
struct SecretDraft {
    name: String,
    description: String,
    scope: String,
    errors: FormErrors,
}

/// What the add-credential form holds when it is shown again.
#[derive(Debug, Default)]
struct CredentialDraft {
    kind: String,
    name: String,
    credential_type: String,
    scope: String,
    is_default: bool,
    errors: FormErrors,
}

fn scope_options(current: &str) -> String {
    html::options(
        [
            ("user", "user — only you"),
            ("org", "org — every member of your org"),
        ],
        if current.is_empty() { "user" } else { current },
    )
}

fn scope_badge(scope: Scope) -> String {
    format!(
        "<span class=\"badge scope-{s}\">{s}</span>",
        s = escape(scope.as_str())
    )
}

fn secrets_table(secrets: &[t::SecretSummary]) -> String {
    let rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|s| {
            vec![
                format!("<code>{}</code>", escape(&s.name)),
                escape(s.description.as_deref().unwrap_or("")),
                "env".to_string(),
                format!(
                    "<span class=\"badge scope-{}\">{}</span>",
                    escape(s.scope.as_str()),
                    escape(scope_words(s.scope))
                ),
                s.version.to_string(),
                html::date(&s.created_at),
                html::date(&s.updated_at),
                format!(
                    "<span class=\"row-buttons\"><a class=\"button ghost small\" href=\"/secrets/{id}/edit\">Edit<span class=\"visually-hidden\"> {scope} secret {name}</span></a>\
<a class=\"button danger small\" href=\"/secrets/{id}/delete\">Delete<span class=\"visually-hidden\"> {scope} secret {name}</span></a></span>",
                    id = escape(&s.id),
                    scope = escape(s.scope.as_str()),
                    name = escape(&s.name)
                ),
            ]
        })
        .collect();
    html::table(
        "Environment secrets",
        &[
            "Name",
            "Description",
            "Type",
            "Scope",
            "Version",
            "Created",
            "Updated",
            "",
        ],
        &rows,
        "No secrets yet: add one below.",
    )
}

/// When an OAuth credential expires, with an "expired" badge once it has.
pub(super) fn expiry_cell(at: Option<&chrono::DateTime<chrono::Utc>>) -> String {
    match at {
        None => String::new(),
        Some(at) if *at <= chrono::Utc::now() => format!(
            "<span class=\"badge expired\">expired</span> {}",
            html::date(at)
        ),
        Some(at) => html::date(at),
    }
}

fn credentials_table(credentials: &[t::CredentialSummary]) -> String {
    let rows: Vec<Vec<String>> = credentials
        .iter()
        .map(|c| {
            vec![
                escape(c.kind.as_str()),
                format!("<code>{}</code>", escape(&c.name)),
                escape(c.credential_type.as_str()),
                scope_badge(c.scope),
                if c.is_default {
                    "<span class=\"badge default\">default</span>".into()
                } else {
                    String::new()
                },
                expiry_cell(c.expires_at.as_ref()),
                html::date(&c.created_at),
                html::date(&c.updated_at),
                format!(
                    "<a class=\"button danger small\" href=\"/credentials/{}/{}/delete\">Delete<span class=\"visually-hidden\"> {} credential {}</span></a>",
                    escape(c.kind.as_str()),
                    escape(&c.id),
                    escape(c.kind.as_str()),
                    escape(&c.name)
                ),
            ]
        })
        .collect();
    html::table(
        "Credentials",
        &[
            "Kind", "Name", "Type", "Scope", "Default", "Expires", "Created", "Updated", "",
        ],
        &rows,
        "No credentials yet: add one below.",
    )
}

fn secret_form(csrf: &str, d: &SecretDraft) -> String {
    let e = &d.errors;
    let name = Input {
        id: "secret-name",
        name: "name",
        label: "Name",
        kind: "text",
        value: &d.name,
        hint: Some("Letters, digits, '_', '-' and '.', e.g. DATABASE_URL."),
        error: e.get("name"),
        required: true,
        autofocus: false,
        extra: &format!(
            "autocomplete=\"off\" spellcheck=\"false\" maxlength=\"{}\"",
            limits::OBJECT_NAME
        ),
    }
    .render();
    let description = Input {
        id: "secret-description",
        name: "description",
        label: "Description (optional)",
        kind: "text",
        value: &d.description,
        hint: None,
        error: e.get("description"),
        required: false,
        autofocus: false,
        extra: "autocomplete=\"off\"",
    }
    .render();
    let value = Input {
        id: "secret-value",
        name: "value",
        label: "Value",
        kind: "password",
        value: "",
        hint: Some("Stored encrypted; never shown again on these pages."),
        error: e.get("value"),
        required: true,
        autofocus: false,
        extra: &format!(
            "autocomplete=\"new-password\" spellcheck=\"false\" maxlength=\"{}\"",
            limits::VALUE
        ),
    }
    .render();
    // Marked so that the page script, which puts the value back, can take the note away.
    let value = if e.get("value") == Some(VALUE_NOT_KEPT) {
        value.replace(
            "<p class=\"field-error\" id=\"secret-value-error\">",
            "<p class=\"field-error value-not-kept\" id=\"secret-value-error\">",
        )
    } else {
        value
    };
    let scope = html::select(
        "secret-scope",
        "scope",
        "Scope",
        &scope_options(&d.scope),
        e.get("scope"),
        true,
    );
    format!(
        "<section class=\"card\" aria-labelledby=\"add-secret-title\" id=\"add-secret\"><h2 id=\"add-secret-title\">Add a secret</h2>{}\
<form method=\"post\" action=\"/secrets\" class=\"grid-form\" id=\"secret-form\" data-keep-values=\"add-secret\">{}{name}{value}{scope}{description}\
<div class=\"actions\"><button type=\"submit\" class=\"button primary\">Add secret</button></div></form></section>",
        html::form_errors(&e.general),
        html::csrf_field(csrf),
    )
}

/// The credential form's value box of each type (the one not chosen hidden) and the message
/// under them.
fn value_boxes(credential_type: &str, value_error: Option<&str>) -> (String, String, String) {
    // One value box, the one of the chosen type: the other is hidden and disabled (so not
    // sent); the page script swaps them when the type changes. Without scripts the shown box
    // is sent whatever the type, and the server checks the value against the type.
    let oauth = credential_type != "api_key";
    let (key_hidden, json_hidden) = if oauth {
        (" hidden", "")
    } else {
        ("", " hidden")
    };
    let invalid = |shown: bool| {
        if shown && value_error.is_some() {
            " aria-invalid=\"true\""
        } else {
            ""
        }
    };
    let api_key = format!(
        "<div class=\"field wide\" data-value-for=\"api_key\"{key_hidden}><label for=\"cred-value\">API key or token</label>\
<p class=\"hint\" id=\"cred-value-hint\">The key itself, e.g. sk-ant-api03-… for claude, sk-… for codex, ghp_… for github.</p>\
<input id=\"cred-value\" name=\"value\" type=\"password\" value=\"\" maxlength=\"{max}\" autocomplete=\"new-password\" spellcheck=\"false\" \
aria-describedby=\"cred-value-hint{err}\"{inv}{dis}></div>",
        max = VALUE_MAX_CHARS,
        err = if value_error.is_some() { " cred-value-error" } else { "" },
        inv = invalid(!oauth),
        dis = if oauth { " disabled" } else { "" },
    );
    let json = format!(
        "<div class=\"field wide\" data-value-for=\"oauth\"{json_hidden}><label for=\"cred-json\">OAuth credential JSON</label>\
<p class=\"hint\" id=\"cred-json-hint\">Paste the agent's whole credential file: ~/.claude/.credentials.json for claude, ~/.codex/auth.json for codex.</p>\
<textarea id=\"cred-json\" name=\"value_json\" rows=\"5\" maxlength=\"{max}\" spellcheck=\"false\" autocomplete=\"off\" aria-describedby=\"cred-json-hint{err}\"{inv}{dis}></textarea></div>",
        max = VALUE_MAX_CHARS,
        err = if value_error.is_some() { " cred-value-error" } else { "" },
        inv = invalid(oauth),
        dis = if oauth { "" } else { " disabled" },
    );
    let value_msg = value_error.map_or(String::new(), |m| {
        format!(
            "<p class=\"field-error wide{}\" id=\"cred-value-error\" role=\"alert\">{}</p>",
            if m == VALUE_NOT_KEPT {
                " value-not-kept"
            } else {
                ""
            },
            escape(m)
        )
    });
    (api_key, json, value_msg)
}

fn credential_form(csrf: &str, d: &CredentialDraft) -> String {
    let e = &d.errors;
    let kind = html::select(
        "cred-kind",
        "kind",
        "Kind",
        &html::options(
            AgentKind::ALL.iter().map(|k| {
                let label = match k {
                    AgentKind::Claude => "claude — Claude Code",
                    AgentKind::Codex => "codex — Codex",
                    AgentKind::Github => "github — token for cloning repositories",
                };
                (k.as_str(), label)
            }),
            &d.kind,
        ),
        e.get("kind"),
        true,
    );
    let name = Input {
        id: "cred-name",
        name: "name",
        label: "Credential name",
        kind: "text",
        value: &d.name,
        hint: Some("e.g. personal-oauth, work-key or gh."),
        error: e.get("name"),
        required: true,
        autofocus: false,
        extra: &format!(
            "autocomplete=\"off\" spellcheck=\"false\" maxlength=\"{}\"",
            limits::OBJECT_NAME
        ),
    }
    .render();
    let ty = html::select(
        "cred-type",
        "type",
        "Type",
        &html::options(
            [
                ("oauth", "oauth — credential JSON"),
                ("api_key", "api_key — a key or token"),
            ],
            &d.credential_type,
        ),
        e.get("type"),
        true,
    );
    let scope = html::select(
        "cred-scope",
        "scope",
        "Scope",
        &scope_options(&d.scope),
        e.get("scope"),
        true,
    );
    let default = format!(
        "<div class=\"field check\"><input type=\"checkbox\" id=\"cred-default\" name=\"is_default\" value=\"true\"{}>\
<label for=\"cred-default\">Use as my default of this kind</label></div>",
        if d.is_default { " checked" } else { "" }
    );
    let (api_key, json, value_msg) = value_boxes(&d.credential_type, e.get("value"));
    format!(
        "<section class=\"card\" aria-labelledby=\"add-credential-title\" id=\"add-credential\"><h2 id=\"add-credential-title\">Add a credential</h2>\
<p class=\"hint\">claude and codex credentials are given to the agents in sandboxes; a github token clones private repositories over HTTPS and is never injected.</p>{}\
<form method=\"post\" action=\"/credentials\" class=\"grid-form\" id=\"credential-form\" data-keep-values=\"add-credential\">{}{kind}{name}{ty}{scope}{default}{api_key}{json}{value_msg}\
<div class=\"actions\"><button type=\"submit\" class=\"button primary\">Add credential</button></div></form></section>",
        html::form_errors(&e.general),
        html::csrf_field(csrf),
    )
}

/// The whole Secrets page, with the two forms in the given state.
async fn render(
    svc: &Service,
    session: &WebSession,
    status: StatusCode,
    secret: &SecretDraft,
    credential: &CredentialDraft,
) -> Response {
    let c = &session.caller;
    let listed = async {
        let secrets = svc.list_secrets(c).await?;
        let mut credentials = Vec::new();
        for kind in AgentKind::ALL {
            credentials.extend(svc.list_credentials(c, *kind).await?);
        }
        Ok::<_, ServiceError>((secrets, credentials))
    };
    let (secrets, credentials) = match listed.await {
        Ok(x) => x,
        Err(e) => return error_in_page(session, e),
    };
    let body = format!(
        "<div class=\"page-head\"><h1>Secrets</h1><p class=\"lead\">Values are stored encrypted and are only ever injected into sandboxes; these pages never show them.</p>\
<p class=\"jump\"><a class=\"button secondary small\" href=\"#add-secret\">Add a secret</a><a class=\"button secondary small\" href=\"#add-credential\">Add a credential</a></p></div>\
<section class=\"card\" aria-labelledby=\"secrets-title\"><h2 id=\"secrets-title\">Environment secrets</h2>{}</section>\
<section class=\"card\" aria-labelledby=\"credentials-title\"><h2 id=\"credentials-title\">Agent and GitHub credentials</h2>{}</section>\
<div class=\"two\">{}{}</div>",
        secrets_table(&secrets),
        credentials_table(&credentials),
        secret_form(&session.csrf, secret),
        credential_form(&session.csrf, credential),
    );
    html_response(
        status,
        html::page("Secrets", &session.chrome(Nav::Secrets), &body, None),
    )
}

pub async fn page(State(svc): State<Service>, session: WebSession) -> Response {
    render(
        &svc,
        &session,
        StatusCode::OK,
        &SecretDraft::default(),
        &CredentialDraft::default(),
    )
    .await
}

fn parse_scope(raw: &str, errors: &mut FormErrors) -> Option<Scope> {
    match raw {
        "" => None,
        s => match s.parse() {
            Ok(s) => Some(s),
            Err(e) => {
                errors.on("scope", e);
                None
            }
        },
    }
}

/// Put a service error next to the field it concerns: the request field it names (`name`,
/// `value`, `type`; the forms call their inputs so), else by its code — a refused scope is
/// `forbidden`, a name taken is a `conflict`. `value_entered`: whether a secret value was
/// submitted and so has to be typed again.
fn place_error(e: ServiceError, value_entered: bool, errors: &mut FormErrors) -> StatusCode {
    let answer = ApiError::from(e);
    let field = match (answer.field(), answer.code) {
        (Some(field @ ("name" | "value" | "type")), _) => Some(field.to_string()),
        (_, ErrorCode::Forbidden) => Some("scope".into()),
        (_, ErrorCode::Conflict) => Some("name".into()),
        _ => None,
    };
    match field {
        Some(field) => errors.on(field, answer.message),
        None => errors.general.push(answer.message),
    }
    if value_entered {
        errors.on("value", VALUE_NOT_KEPT);
    }
    answer.status
}

pub async fn create_secret(State(svc): State<Service>, form: WebForm) -> Response {
    let WebForm {
        session,
        mut fields,
    } = form;
    let mut draft = SecretDraft {
        name: fields.get("name").trim().to_string(),
        description: fields.get("description").to_string(),
        scope: fields.get("scope").to_string(),
        errors: FormErrors::default(),
    };
    let value = fields.take("value");
    let value_entered = !value.is_empty();
    let scope = parse_scope(&draft.scope, &mut draft.errors);
    let status = if draft.errors.is_empty() {
        let req = t::CreateSecretRequest {
            name: draft.name.clone(),
            value,
            scope,
            description: Some(draft.description.trim().to_string()).filter(|d| !d.is_empty()),
        };
        match svc.create_secret(&session.caller, req).await {
            Ok(s) => {
                session.flash(format!("Secret {} added ({} scope).", s.name, s.scope));
                return see_other("/secrets");
            }
            Err(e) => place_error(e, value_entered, &mut draft.errors),
        }
    } else {
        if value_entered {
            draft.errors.on("value", VALUE_NOT_KEPT);
        }
        StatusCode::BAD_REQUEST
    };
    render(&svc, &session, status, &draft, &CredentialDraft::default()).await
}

pub async fn create_credential(State(svc): State<Service>, form: WebForm) -> Response {
    let WebForm {
        session,
        mut fields,
    } = form;
    let mut draft = CredentialDraft {
        kind: fields.get("kind").to_string(),
        name: fields.get("name").trim().to_string(),
        credential_type: fields.get("type").to_string(),
        scope: fields.get("scope").to_string(),
        is_default: fields.get("is_default") == "true",
        errors: FormErrors::default(),
    };
    let key = fields.take("value");
    let json = fields.take("value_json");
    let value_entered = !key.is_empty() || !json.trim().is_empty();
    let kind = draft
        .kind
        .parse::<AgentKind>()
        .map_err(|e| draft.errors.on("kind", e))
        .ok();
    let ty = draft
        .credential_type
        .parse::<CredentialType>()
        .map_err(|e| draft.errors.on("type", e))
        .ok();
    let scope = parse_scope(&draft.scope, &mut draft.errors);
    // The box of the chosen type; the other one only where that is empty (a browser without
    // scripts sends the box it showed). The service then checks the value against the type.
    let value = match (ty, key.is_empty(), json.trim().is_empty()) {
        (Some(CredentialType::ApiKey), false, _) | (_, false, true) => key,
        _ => json,
    };
    let status = match (kind, ty) {
        (Some(kind), Some(credential_type)) if draft.errors.is_empty() => {
            let req = t::CreateCredentialRequest {
                name: draft.name.clone(),
                value,
                credential_type,
                scope,
                is_default: draft.is_default,
            };
            match svc.create_credential(&session.caller, kind, req).await {
                Ok(c) => {
                    session.flash(format!(
                        "{} credential {} added ({}, {} scope{}).",
                        c.kind,
                        c.name,
                        c.credential_type,
                        c.scope,
                        if c.is_default { ", default" } else { "" }
                    ));
                    return see_other("/secrets");
                }
                Err(e) => place_error(e, value_entered, &mut draft.errors),
            }
        }
        _ => {
            if value_entered {
                draft.errors.on("value", VALUE_NOT_KEPT);
            }
            StatusCode::BAD_REQUEST
        }
    };
    render(&svc, &session, status, &SecretDraft::default(), &draft).await
}

/// A confirm page: what will be deleted, a POST form to do it, and a way back.
fn confirm(
    session: &WebSession,
    title: &str,
    question: &str,
    note: &str,
    action: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let body = html::confirm_delete(
        title,
        error,
        &escape(question),
        note,
        &escape(action),
        "/secrets",
        &session.csrf,
    );
    html_response(
        status,
        html::page(title, &session.chrome(Nav::Secrets), &body, None),
    )
}

pub async fn confirm_delete_secret(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let secrets = match svc.list_secrets(&session.caller).await {
        Ok(s) => s,
        Err(e) => return error_in_page(&session, e),
    };
    let Some(s) = secrets.into_iter().find(|s| s.id == id) else {
        return error_in_page(&session, ServiceError::NotFound(format!("secret {id:?}")));
    };
    confirm(
        &session,
        "Delete secret",
        &format!("Delete the {} secret {}?", s.scope, s.name),
        "Sandboxes that already run keep the value they were given; new sandboxes that map it will fail to create.",
        &format!("/secrets/{}/delete", s.id),
        None,
        StatusCode::OK,
    )
}

pub async fn delete_secret(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<String>,
    form: WebForm,
) -> Response {
    let session = form.session;
    match svc.delete_secret(&session.caller, &id).await {
        Ok(()) => {
            session.flash("Secret deleted.");
            see_other("/secrets")
        }
        Err(e @ ServiceError::Forbidden(_)) => {
            let answer = ApiError::from(e);
            confirm(
                &session,
                "Delete secret",
                "This secret was not deleted.",
                "",
                &format!("/secrets/{id}/delete"),
                Some(&answer.message),
                answer.status,
            )
        }
        Err(e) => error_in_page(&session, e),
    }
}

pub async fn confirm_delete_credential(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> Response {
    let kind = match parse_agent_kind(&kind) {
        Ok(k) => k,
        Err(e) => return error_in_page(&session, e),
    };
    let credentials = match svc.list_credentials(&session.caller, kind).await {
        Ok(c) => c,
        Err(e) => return error_in_page(&session, e),
    };
    let Some(c) = credentials.into_iter().find(|c| c.id == id) else {
        return error_in_page(
            &session,
            ServiceError::NotFound(format!("{kind} credential {id:?}")),
        );
    };
    let note = if c.kind.is_agent() {
        "Sandboxes that already run keep what they were given; new sandboxes that pin it by name will fail to create."
    } else {
        "Repositories already cloned stay as they are; new sandboxes that name it as their git credential will fail to create."
    };
    confirm(
        &session,
        "Delete credential",
        &format!(
            "Delete the {} {} credential {} ({})?",
            c.scope, c.kind, c.name, c.credential_type
        ),
        note,
        &format!("/credentials/{}/{}/delete", c.kind, c.id),
        None,
        StatusCode::OK,
    )
}

pub async fn delete_credential(
    State(svc): State<Service>,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let kind = match parse_agent_kind(&kind) {
        Ok(k) => k,
        Err(e) => return error_in_page(&session, e),
    };
    match svc.delete_credential(&session.caller, kind, &id).await {
        Ok(()) => {
            session.flash(format!("{kind} credential deleted."));
            see_other("/secrets")
        }
        Err(e @ ServiceError::Forbidden(_)) => {
            let answer = ApiError::from(e);
            confirm(
                &session,
                "Delete credential",
                "This credential was not deleted.",
                "",
                &format!("/credentials/{kind}/{id}/delete"),
                Some(&answer.message),
                answer.status,
            )
        }
        Err(e) => error_in_page(&session, e),
    }
}
