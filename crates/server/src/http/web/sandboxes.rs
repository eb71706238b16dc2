//! Sandboxes: the list, the New sandbox form (env-var rows, one credential choice per agent
//! kind, a resolution preview from `Service::preview_sandbox`), the detail page with its
//! resolution table and agent message box (see [`super::agents`]), and delete with a confirm
//! page.
//!
//! The form never decides anything itself: it turns its fields into the API's
//! `CreateSandboxRequest` and lets the service validate and resolve, then shows each error next
//! to the field it names. The only checks here are about the form's own shape (a choice that is
//! not one of the options, one env var in two rows, which a JSON map cannot even express).

use std::collections::BTreeMap;

use amika_sandbox::lifecycle::is_transient;
use amika_types::{self as t, AgentKind, CredentialType, SandboxState, Scope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::agents::{conversation_card, load_conversation, message_box, SendDraft};
use super::html::{self, escape, Nav, Refresh};
use super::{error_in_page, html_response, see_other, FormErrors, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::{Service, ServiceError};

/// The name the preview runs with while the name field is still empty: a preview is about
/// resolution, and the real name is checked when the sandbox is created.
const PREVIEW_PLACEHOLDER_NAME: &str = "preview";

/// The link to a sandbox's page: by name, or by id for a sandbox called `new` (whose name
/// would reach the New sandbox form).
pub(super) fn sandbox_href(s: &t::Sandbox) -> String {
    let key = if s.name == "new" { &s.id } else { &s.name };
    format!("/sandboxes/{}", escape(key))
}

fn state_badge(state: SandboxState) -> String {
    format!(
        "<span class=\"badge state-{s}\">{s}</span>",
        s = escape(state.as_str())
    )
}

/// The resolution table of DESIGN §4: kind, outcome, name, type, source, reason.
fn resolution_table(caption: &str, rows: &[t::ResolvedAgentCredential]) -> String {
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
            let outcome = match r.outcome {
                t::ResolutionOutcome::Resolved => "resolved",
                t::ResolutionOutcome::Skipped => "skipped",
            };
            vec![
                escape(r.kind.as_str()),
                format!("<span class=\"badge outcome-{outcome}\">{outcome}</span>"),
                if r.name.is_empty() {
                    dash("")
                } else {
                    format!("<code>{}</code>", escape(&r.name))
                },
                dash(&r.credential_type),
                format!("<code>{}</code>", escape(r.source.as_str())),
                dash(&r.reason),
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

fn secret_names_list(names: &[String]) -> String {
    if names.is_empty() {
        return "<p class=\"empty\">None.</p>".into();
    }
    let items: String = names
        .iter()
        .map(|n| format!("<li><code>{}</code></li>", escape(n)))
        .collect();
    format!("<ul class=\"chips\" aria-label=\"Injected secrets\">{items}</ul>")
}

// ------------------------------------------------------------------ list

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
                html::date(&s.created_at),
            ]
        })
        .collect();
    let table = html::table(
        "Sandboxes",
        &["Name", "State", "Agent credentials", "Secrets", "Created"],
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

// ------------------------------------------------------------------ new sandbox form

/// The form's content as submitted (or empty), its errors, and the last preview.
#[derive(Debug, Default)]
struct Draft {
    name: String,
    /// (env var, secret name) per row, in order.
    rows: Vec<(String, String)>,
    /// The select value per agent kind: `default`, `name:N`, `type:T` or `none`.
    agents: BTreeMap<AgentKind, String>,
    errors: FormErrors,
    preview: Option<t::ResolutionPreview>,
    /// The kind of each `agent_credentials` entry of the request last built, in order: what
    /// an error about `agent_credentials[i]` is about.
    requested_kinds: Vec<AgentKind>,
}

impl Draft {
    fn agent(&self, kind: AgentKind) -> &str {
        self.agents.get(&kind).map_or("default", String::as_str)
    }

    fn from_fields(fields: &super::Fields) -> Draft {
        let envs = fields.all("env");
        let secrets = fields.all("secret");
        let n = envs.len().max(secrets.len());
        let rows = (0..n)
            .map(|i| {
                (
                    envs.get(i).map_or("", |s| s.trim()).to_string(),
                    secrets.get(i).copied().unwrap_or("").to_string(),
                )
            })
            .collect();
        let agents = AgentKind::AGENTS
            .iter()
            .map(|k| {
                let v = fields.get(&agent_field(*k));
                (*k, if v.is_empty() { "default" } else { v }.to_string())
            })
            .collect();
        Draft {
            name: fields.get("name").trim().to_string(),
            rows,
            agents,
            ..Draft::default()
        }
    }

    /// The API request this form stands for, or `None` with errors placed on the form.
    fn build_request(&mut self) -> Option<t::CreateSandboxRequest> {
        let mut secret_env_vars = BTreeMap::new();
        for (i, (env, secret)) in self.rows.iter().enumerate() {
            if env.is_empty() && secret.is_empty() {
                continue; // a blank row asks for nothing
            }
            if secret_env_vars.contains_key(env) {
                self.errors.on(
                    row_field(i),
                    format!("{env} is already mapped in an earlier row: keep one row per env var"),
                );
                continue;
            }
            secret_env_vars.insert(env.clone(), secret.clone());
        }
        let mut agent_credentials = Vec::new();
        for kind in AgentKind::AGENTS {
            let choice = self.agent(*kind).to_string();
            let mut r = t::AgentCredentialRef {
                kind: *kind,
                name: None,
                credential_type: None,
                none: false,
            };
            if choice == "none" {
                r.none = true;
            } else if let Some(ty) = choice.strip_prefix("type:") {
                match ty.parse::<CredentialType>() {
                    Ok(ty) => r.credential_type = Some(ty),
                    Err(e) => {
                        self.errors.on(agent_field(*kind), e);
                        continue;
                    }
                }
            } else if let Some(name) = choice.strip_prefix("name:") {
                r.name = Some(name.to_string());
            } else if choice != "default" {
                self.errors.on(
                    agent_field(*kind),
                    format!("unknown choice {choice:?}: pick one of the listed options"),
                );
                continue;
            }
            agent_credentials.push(r);
        }
        if !self.errors.is_empty() {
            return None;
        }
        self.requested_kinds = agent_credentials.iter().map(|r| r.kind).collect();
        Some(t::CreateSandboxRequest {
            name: self.name.clone(),
            secret_env_vars,
            agent_credentials,
            ..Default::default()
        })
    }

    /// Put a service error next to the input of the request field it names (or above the
    /// form when it names none); returns the status to answer with.
    fn place(&mut self, e: ServiceError) -> StatusCode {
        let answer = ApiError::from(e);
        match answer.field().and_then(|path| self.input_for(path)) {
            Some(input) => self.errors.on(input, answer.message),
            None => self.errors.general.push(answer.message),
        }
        answer.status
    }

    /// The input that shows the request field at `path`: the name field for `name`, the row of
    /// the env var for `secret_env_vars.VAR`, the kind's select for `agent_credentials[i]...`.
    fn input_for(&self, path: &str) -> Option<String> {
        if path == "name" {
            return Some("name".into());
        }
        if let Some(env) = path.strip_prefix("secret_env_vars.") {
            // The request holds the non-blank rows, one per env var (a repeat stops the form
            // before any request is made).
            return self
                .rows
                .iter()
                .position(|(e, secret)| e == env && !(e.is_empty() && secret.is_empty()))
                .map(row_field);
        }
        let (index, _) = path.strip_prefix("agent_credentials[")?.split_once(']')?;
        let kind = self.requested_kinds.get(index.parse::<usize>().ok()?)?;
        Some(agent_field(*kind))
    }
}

fn agent_field(kind: AgentKind) -> String {
    format!("agent_{kind}")
}

fn row_field(i: usize) -> String {
    format!("row-{i}")
}

/// What the form offers: visible secrets and each kind's credentials.
struct Choices {
    /// (name, label) of each visible secret, one per name (the caller's own wins).
    secrets: Vec<(String, String)>,
    /// (select value, label) per kind.
    agents: BTreeMap<AgentKind, Vec<(String, String)>>,
}

async fn load_choices(svc: &Service, session: &WebSession) -> Result<Choices, ServiceError> {
    let c = &session.caller;
    let mut listed = svc.list_secrets(c).await?;
    // The caller's own secret shadows an org secret of the same name, as in resolution.
    listed.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then((a.scope != Scope::User).cmp(&(b.scope != Scope::User)))
    });
    listed.dedup_by(|b, a| a.name == b.name);
    let secrets = listed
        .into_iter()
        .map(|s| {
            let label = match s.scope {
                Scope::User => s.name.clone(),
                Scope::Org => format!("{} (org)", s.name),
            };
            (s.name, label)
        })
        .collect();
    let mut agents = BTreeMap::new();
    for kind in AgentKind::AGENTS {
        let mut creds = svc.list_credentials(c, *kind).await?;
        creds.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then((a.scope != Scope::User).cmp(&(b.scope != Scope::User)))
        });
        creds.dedup_by(|b, a| a.name == b.name);
        let mut opts = vec![("default".to_string(), "Default (auto)".to_string())];
        for cr in creds {
            let mut label = format!("{} — {}", cr.name, cr.credential_type);
            if cr.scope == Scope::Org {
                label.push_str(" (org)");
            }
            if cr.is_default {
                label.push_str(" · default");
            }
            opts.push((format!("name:{}", cr.name), label));
        }
        opts.push(("type:oauth".into(), "Any oauth".into()));
        opts.push(("type:api_key".into(), "Any api_key".into()));
        opts.push(("none".into(), "None".into()));
        agents.insert(*kind, opts);
    }
    Ok(Choices { secrets, agents })
}

fn secret_options(choices: &Choices, current: &str) -> String {
    let mut items: Vec<(&str, &str)> = vec![("", "— choose a secret —")];
    items.extend(
        choices
            .secrets
            .iter()
            .map(|(v, l)| (v.as_str(), l.as_str())),
    );
    // Keep what was submitted even if it is no longer listed: nothing typed is lost.
    let missing;
    if !current.is_empty() && !choices.secrets.iter().any(|(v, _)| v == current) {
        missing = format!("{current} (not found)");
        items.push((current, &missing));
    }
    html::options(items, current)
}

fn env_row(i: usize, env: &str, secret: &str, choices: &Choices, error: Option<&str>) -> String {
    let id = row_field(i);
    let invalid = html::invalid_attrs(&id, error, true);
    format!(
        "<div class=\"env-row\" data-env-row>\
<div class=\"field\"><label for=\"env-{i}\">Env var</label>\
<input id=\"env-{i}\" name=\"env\" type=\"text\" value=\"{env}\" placeholder=\"DATABASE_URL\" autocomplete=\"off\" spellcheck=\"false\"{invalid}></div>\
<div class=\"field\"><label for=\"secret-{i}\">Secret</label>\
<select id=\"secret-{i}\" name=\"secret\"{invalid_select}>{opts}</select></div>\
<div class=\"row-actions\"><button type=\"submit\" name=\"remove_row\" value=\"{i}\" class=\"button ghost small\" data-remove-row formnovalidate>Remove<span class=\"visually-hidden\"> env var row</span></button></div>\
{err}</div>",
        env = escape(env),
        invalid_select = html::invalid_attrs(&id, error, false),
        opts = secret_options(choices, secret),
        err = html::field_error(&id, error),
    )
}

fn render_form(session: &WebSession, choices: &Choices, d: &Draft) -> String {
    let e = &d.errors;
    let name = html::Input {
        id: "name",
        name: "name",
        label: "Sandbox name",
        kind: "text",
        value: &d.name,
        hint: Some("Letters, digits, '-', '_' and '.', starting with a letter or digit."),
        error: e.get("name"),
        required: false,
        // Only on a clean form: with errors, the first invalid field takes the focus.
        autofocus: e.is_empty(),
        extra: "autocomplete=\"off\" spellcheck=\"false\" placeholder=\"dev-box\"",
    }
    .render();
    let rows: Vec<(String, String)> = if d.rows.is_empty() {
        vec![(String::new(), String::new())]
    } else {
        d.rows.clone()
    };
    let rows_html: String = rows
        .iter()
        .enumerate()
        .map(|(i, (env, secret))| env_row(i, env, secret, choices, e.get(&row_field(i))))
        .collect();
    // The row JS clones to add rows without a round trip; `__N__` becomes a fresh index.
    let template =
        env_row(usize::MAX, "", "", choices, None).replace(&usize::MAX.to_string(), "__N__");
    let agents: String = AgentKind::AGENTS
        .iter()
        .map(|k| {
            let opts = choices.agents.get(k).cloned().unwrap_or_default();
            let current = d.agent(*k);
            let mut items: Vec<(&str, &str)> =
                opts.iter().map(|(v, l)| (v.as_str(), l.as_str())).collect();
            let missing;
            if !opts.iter().any(|(v, _)| v == current) {
                missing = format!(
                    "{} (not found)",
                    current.strip_prefix("name:").unwrap_or(current)
                );
                items.push((current, &missing));
            }
            html::select(
                &agent_field(*k),
                &agent_field(*k),
                &format!("{} credential", k.as_str()),
                &html::options(items, current),
                e.get(&agent_field(*k)),
                true,
            )
        })
        .collect();
    let preview = match &d.preview {
        Some(p) => format!(
            "<section class=\"card preview\" aria-labelledby=\"preview-title\" id=\"preview\"><h2 id=\"preview-title\">Resolution preview</h2>\
<p class=\"hint\">What a create with the choices above resolves to now. Nothing has been created yet.</p>{}\
<h3>Secrets to inject</h3>{}</section>",
            resolution_table("Resolution preview", &p.resolved_agent_credentials),
            secret_names_list(&p.secret_names),
        ),
        None => String::new(),
    };
    format!(
        "<div class=\"page-head\"><h1>New sandbox</h1><p class=\"lead\">Map secrets to environment variables and choose the agent credentials to inject.</p></div>\
{general}<form method=\"post\" action=\"/sandboxes/new\" class=\"sandbox-form\" novalidate>{csrf}\
<button type=\"submit\" name=\"action\" value=\"create\" class=\"visually-hidden\" tabindex=\"-1\" aria-hidden=\"true\">Create sandbox</button>\
<section class=\"card\" aria-labelledby=\"basics-title\"><h2 id=\"basics-title\">Sandbox</h2>{name}</section>\
<section class=\"card\" aria-labelledby=\"env-title\"><h2 id=\"env-title\">Secrets as environment variables</h2>\
<p class=\"hint\">Each row injects a secret's value as an env var. Leave a row blank to skip it.</p>\
<div class=\"env-rows\" id=\"env-rows\">{rows_html}</div>\
<template id=\"env-row-template\">{template}</template>\
<button type=\"submit\" name=\"action\" value=\"add_row\" class=\"button secondary small\" id=\"add-row\" formnovalidate>Add env var</button></section>\
<section class=\"card\" aria-labelledby=\"agents-title\"><h2 id=\"agents-title\">Agent credentials</h2>\
<p class=\"hint\">Default (auto) picks your default credential, else your newest (oauth first), else your org's.</p>\
<div class=\"agents\">{agents}</div></section>\
{preview}\
<div class=\"actions sticky\"><button type=\"submit\" name=\"action\" value=\"preview\" class=\"button secondary\">Preview resolution</button>\
<button type=\"submit\" name=\"action\" value=\"create\" class=\"button primary\">Create sandbox</button>\
<a class=\"button ghost\" href=\"/sandboxes\">Cancel</a></div></form>",
        general = html::form_errors(&e.general),
        csrf = html::csrf_field(&session.csrf),
    )
}

async fn respond_form(
    svc: &Service,
    session: &WebSession,
    status: StatusCode,
    draft: &Draft,
) -> Response {
    let choices = match load_choices(svc, session).await {
        Ok(c) => c,
        Err(e) => return error_in_page(session, e),
    };
    html_response(
        status,
        html::page(
            "New sandbox",
            &session.chrome(Nav::NewSandbox),
            &render_form(session, &choices, draft),
            None,
        ),
    )
}

/// Run the preview for the draft; errors land on the form.
async fn preview(svc: &Service, session: &WebSession, draft: &mut Draft) -> StatusCode {
    let Some(mut req) = draft.build_request() else {
        return StatusCode::BAD_REQUEST;
    };
    if req.name.is_empty() {
        req.name = PREVIEW_PLACEHOLDER_NAME.into();
    }
    match svc.preview_sandbox(&session.caller, &req).await {
        Ok(p) => {
            draft.preview = Some(p);
            StatusCode::OK
        }
        Err(e) => draft.place(e),
    }
}

pub async fn new_form(State(svc): State<Service>, session: WebSession) -> Response {
    // Open with the preview of the defaults, so what "Default (auto)" means is visible at once.
    let mut draft = Draft::default();
    let _ = preview(&svc, &session, &mut draft).await;
    respond_form(&svc, &session, StatusCode::OK, &draft).await
}

pub async fn submit(State(svc): State<Service>, form: WebForm) -> Response {
    let WebForm { session, fields } = form;
    let mut draft = Draft::from_fields(&fields);
    if let Ok(i) = fields.get("remove_row").parse::<usize>() {
        if i < draft.rows.len() {
            draft.rows.remove(i);
        }
        return respond_form(&svc, &session, StatusCode::OK, &draft).await;
    }
    match fields.get("action") {
        "add_row" => {
            draft.rows.push((String::new(), String::new()));
            respond_form(&svc, &session, StatusCode::OK, &draft).await
        }
        "preview" => {
            let status = preview(&svc, &session, &mut draft).await;
            respond_form(&svc, &session, status, &draft).await
        }
        _ => {
            let Some(req) = draft.build_request() else {
                return respond_form(&svc, &session, StatusCode::BAD_REQUEST, &draft).await;
            };
            match svc.create_sandbox(&session.caller, req).await {
                Ok(s) => {
                    session.flash(format!("Sandbox {} created: {}.", s.name, s.state));
                    see_other(&sandbox_href(&s))
                }
                Err(e) => {
                    let status = draft.place(e);
                    respond_form(&svc, &session, status, &draft).await
                }
            }
        }
    }
}

// ------------------------------------------------------------------ detail and delete

pub async fn detail(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(name): ApiPath<String>,
) -> Response {
    detail_page(&svc, &session, &name, &SendDraft::default(), StatusCode::OK).await
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
    let conversation = match load_conversation(svc, &session.caller, &s.id).await {
        Ok(c) => c,
        Err(e) => return error_in_page(session, e),
    };
    let error = s.error_message.as_deref().map_or(String::new(), |m| {
        format!("<div class=\"alert\" role=\"alert\">{}</div>", escape(m))
    });
    let limits = format!(
        "{} · {}",
        s.memory_mib
            .map_or("no memory limit".into(), |m| format!("{m} MiB memory")),
        s.pids
            .map_or("no process limit".into(), |p| format!("{p} processes"))
    );
    let body = format!(
        "<div class=\"page-head row\"><div><p class=\"crumb\"><a href=\"/sandboxes\">Sandboxes</a> /</p><h1>{name}</h1></div>\
<a class=\"button danger\" href=\"{href}/delete\">Delete sandbox</a></div>{error}\
<section class=\"card\" aria-labelledby=\"overview-title\"><h2 id=\"overview-title\">Overview</h2><dl class=\"facts\">\
<div><dt>State</dt><dd id=\"sandbox-state\">{state}</dd></div>\
<div><dt>Provider</dt><dd>{provider}</dd></div>\
<div><dt>Network</dt><dd>{network}</dd></div>\
<div><dt>Limits</dt><dd>{limits}</dd></div>\
<div><dt>Created</dt><dd>{created}</dd></div>\
<div><dt>Id</dt><dd><code>{id}</code></dd></div></dl></section>\
{message_box}{conversation_card}\
<section class=\"card\" aria-labelledby=\"resolution-title\"><h2 id=\"resolution-title\">Agent credentials</h2>{table}</section>\
<section class=\"card\" aria-labelledby=\"injected-title\"><h2 id=\"injected-title\">Injected secrets</h2>{secrets}</section>",
        name = escape(&s.name),
        href = sandbox_href(&s),
        state = state_badge(s.state),
        provider = escape(&s.provider),
        network = escape(s.network.as_str()),
        limits = escape(&limits),
        created = html::date(&s.created_at),
        id = escape(&s.id),
        table = resolution_table("Resolved agent credentials", &s.resolved_agent_credentials),
        secrets = secret_names_list(&s.secret_names),
        message_box = message_box(session, &s, &conversation, draft),
        conversation_card = conversation_card(&s, &conversation),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(rows: &[(&str, &str)]) -> Draft {
        Draft {
            name: "box".into(),
            rows: rows
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Draft::default()
        }
    }

    #[test]
    fn choices_become_the_api_request() {
        let mut d = draft(&[("DB", "DATABASE_URL"), ("", ""), ("TOKEN", "gh")]);
        d.agents
            .insert(AgentKind::Claude, "name:personal-oauth".into());
        d.agents.insert(AgentKind::Codex, "none".into());
        let req = d.build_request().unwrap();
        assert_eq!(req.secret_env_vars.len(), 2, "blank rows ask for nothing");
        assert_eq!(req.secret_env_vars["DB"], "DATABASE_URL");
        assert_eq!(
            req.agent_credentials[0].name.as_deref(),
            Some("personal-oauth")
        );
        assert!(req.agent_credentials[1].none);

        let mut d = draft(&[]);
        d.agents.insert(AgentKind::Claude, "type:api-key".into());
        let req = d.build_request().unwrap();
        assert_eq!(
            req.agent_credentials[0].credential_type,
            Some(CredentialType::ApiKey)
        );
        assert_eq!(
            req.agent_credentials[1],
            t::AgentCredentialRef {
                kind: AgentKind::Codex,
                name: None,
                credential_type: None,
                none: false
            }
        );
    }

    #[test]
    fn form_shape_errors_land_on_their_field() {
        let mut d = draft(&[("DB", "a"), ("DB", "b")]);
        d.agents.insert(AgentKind::Codex, "bogus".into());
        assert!(d.build_request().is_none());
        assert!(d
            .errors
            .get("row-1")
            .unwrap()
            .contains("DB is already mapped"));
        assert!(d.errors.get("row-0").is_none());
        assert!(d.errors.get("agent_codex").unwrap().contains("bogus"));
    }

    /// Each error as the service builds it (validation, resolution, the create's own), placed
    /// by the request field it names.
    #[test]
    fn service_errors_are_placed_next_to_the_field_they_name() {
        use crate::service::resolver::ResolveError;
        use crate::service::validate;
        use amika_types::ErrorCode;
        let rows = [("DB", "x"), ("bad var", "y"), ("", "z")];
        let cases: Vec<(ServiceError, Option<&str>)> = vec![
            (validate::sandbox_name("a b").unwrap_err(), Some("name")),
            (
                ServiceError::conflict(
                    ErrorCode::SandboxExists,
                    "a sandbox named \"box\" already exists",
                )
                .at("name"),
                Some("name"),
            ),
            (
                ServiceError::unprocessable(
                    ErrorCode::SecretNotFound,
                    "env var DB: secret \"x\" not found",
                )
                .at("secret_env_vars.DB"),
                Some("row-0"),
            ),
            (validate::env_var("bad var").unwrap_err(), Some("row-1")),
            (validate::env_var("").unwrap_err(), Some("row-2")),
            (
                ResolveError::NotFound {
                    index: 1,
                    kind: AgentKind::Codex,
                    name: Some("x".into()),
                    credential_type: None,
                }
                .into(),
                Some("agent_codex"),
            ),
            (
                ResolveError::TypeMismatch {
                    index: 0,
                    kind: AgentKind::Claude,
                    name: "k".into(),
                    requested: CredentialType::Oauth,
                    actual: CredentialType::ApiKey,
                }
                .into(),
                Some("agent_claude"),
            ),
            (
                ServiceError::Unavailable("bubblewrap is missing".into()),
                None,
            ),
        ];
        for (e, want) in cases {
            let message = e.to_string();
            let mut d = draft(&rows);
            d.build_request().unwrap();
            d.place(e);
            match want {
                Some(input) => assert_eq!(d.errors.get(input), Some(message.as_str()), "{message}"),
                None => assert_eq!(d.errors.general, [message.as_str()], "{message}"),
            }
        }
    }

    /// Was: an env var named "sandbox name" had its error placed on the sandbox's name field,
    /// because the message contains the words "sandbox name".
    #[test]
    fn an_env_var_error_lands_on_its_row_whatever_its_message_says() {
        let mut d = draft(&[("OK", "a"), ("sandbox name", "b")]);
        d.build_request().unwrap();
        let e = crate::service::validate::env_var("sandbox name").unwrap_err();
        assert!(e.to_string().contains("sandbox name"), "{e}");
        d.place(e);
        assert!(d.errors.get("row-1").is_some(), "{:?}", d.errors);
        assert_eq!(d.errors.get("name"), None);
    }
}
