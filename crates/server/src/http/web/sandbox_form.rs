//! The New sandbox form: a preset choice ([`super::presets::preset_select`]), the snapshot to
//! start from ([`super::snapshots::snapshot_select`], preselected by `?snapshot=`), env-var rows
//! mapping secrets, one credential choice per agent kind,
//! the workspace fields of [`super::workspace`] (repository, plain env vars, setup script, size,
//! idle intervals), and a resolution preview from `Service::preview_sandbox`, which also says what
//! the repository's `.amika/config.toml` contributes.
//!
//! The form never decides anything itself: it turns its fields into the API's
//! `CreateSandboxRequest` and lets the service validate and resolve, then shows each error next
//! to the field it names. The only checks here are about the form's own shape (a choice that is
//! not one of the options, one env var in two rows, which a JSON map cannot even express).

use std::collections::BTreeMap;

use amika_types::{self as t, AgentKind, CredentialType, Scope};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{self, escape, Nav};
use super::presets;
use super::sandbox_checks::{check_all, plain};
use super::sandboxes::{expired_credentials, resolution_table, sandbox_href, secret_mapping_list};
use super::snapshots::{self, SNAPSHOT_FIELD};
use super::workspace::{self, WorkspaceDraft};
use super::{error_in_page, html_response, see_other, FormErrors, WebForm, WebSession};
use crate::http::error::ApiError;
use crate::service::{Service, ServiceError};

/// The name the preview runs with while the name field is still empty: a preview is about
/// resolution, and the real name is checked when the sandbox is created.
const PREVIEW_PLACEHOLDER_NAME: &str = "preview";

/// The form's content as submitted (or empty), its errors, and the last preview.
#[derive(Debug, Default)]
struct Draft {
    name: String,
    /// The preset select's value: `default`, `none` or a preset's name.
    preset: String,
    /// (env var, secret name) per row, in order.
    rows: Vec<(String, String)>,
    /// The select value per agent kind: `default`, `name:N`, `type:T` or `none`.
    agents: BTreeMap<AgentKind, String>,
    errors: FormErrors,
    preview: Option<t::ResolutionPreview>,
    /// The kind of each `agent_credentials` entry of the request last built, in order: what
    /// an error about `agent_credentials[i]` is about.
    requested_kinds: Vec<AgentKind>,
    /// Repository, plain env vars, setup script, size and idle intervals.
    workspace: WorkspaceDraft,
    /// The request without the fields the form itself refused (see `check_rest`).
    partial: Option<t::CreateSandboxRequest>,
    /// The snapshot select's value: `""` (none) or a snapshot's name.
    snapshot: String,
    /// The snapshot the last preview starts from.
    snapshot_info: Option<t::SandboxSnapshot>,
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
            preset: fields.get("preset").to_string(),
            snapshot: fields.get(SNAPSHOT_FIELD).trim().to_string(),
            rows,
            agents,
            workspace: WorkspaceDraft::from_fields(fields),
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
        let mut req = t::CreateSandboxRequest {
            name: self.name.clone(),
            preset: presets::preset_request(&self.preset),
            secret_env_vars,
            agent_credentials,
            snapshot: (!self.snapshot.is_empty()).then(|| self.snapshot.clone()),
            ..Default::default()
        };
        self.workspace.apply(&mut req, &mut self.errors);
        self.requested_kinds = req.agent_credentials.iter().map(|r| r.kind).collect();
        if !self.errors.is_empty() {
            // What the form could make of the rest, for the service's errors about it.
            self.partial = Some(req);
            return None;
        }
        Some(req)
    }

    /// After a form whose own shape was wrong: the service's errors about the rest of it too,
    /// so that every error shows at once.
    async fn check_rest(&mut self, svc: &Service, caller: &crate::service::Caller) {
        let Some(mut req) = self.partial.take() else {
            return;
        };
        if req.name.is_empty() {
            req.name = PREVIEW_PLACEHOLDER_NAME.into();
        }
        if let Err(errors) = check_all(svc, caller, &req).await {
            self.place_all(errors);
        }
    }

    /// Put a service error next to the input of the request field it names (or above the
    /// form when it names none); returns the status to answer with.
    fn place(&mut self, e: ServiceError) -> StatusCode {
        let answer = ApiError::from(e);
        let message = plain(&answer.message);
        match answer.field().and_then(|path| self.input_for(path)) {
            Some(input) => self.errors.on(input, message),
            None if self.errors.general.contains(&message) => {}
            None => self.errors.general.push(message),
        }
        answer.status
    }

    /// [`Draft::place`] each error; the status of the first.
    fn place_all(&mut self, errors: Vec<ServiceError>) -> StatusCode {
        let mut status = None;
        for e in errors {
            let s = self.place(e);
            status.get_or_insert(s);
        }
        status.unwrap_or(StatusCode::BAD_REQUEST)
    }

    /// The input that shows the request field at `path`: the name field for `name`, the row of
    /// the env var for `secret_env_vars.VAR`, the kind's select for `agent_credentials[i]...`.
    fn input_for(&self, path: &str) -> Option<String> {
        if path == "name" || path == "preset" || path == SNAPSHOT_FIELD {
            return Some(path.into());
        }
        if let Some(input) = WorkspaceDraft::input_for(path) {
            return Some(input.into());
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
    /// (name, scope) of the same secrets.
    scopes: Vec<(String, Scope)>,
    /// (select value, label) per kind.
    agents: BTreeMap<AgentKind, Vec<(String, String)>>,
    /// What the git credential field suggests: the github credentials, then the secrets.
    git_credentials: Vec<String>,
    /// Where the caller's default github credential is used for clones.
    github_hosts: Vec<String>,
    presets: t::PresetList,
    /// The caller's active snapshots, to start from.
    snapshots: Vec<t::SandboxSnapshot>,
    /// The caller's credentials that have expired, which the preview marks.
    expired: Vec<(AgentKind, String, chrono::DateTime<chrono::Utc>)>,
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
    let scopes = listed.iter().map(|s| (s.name.clone(), s.scope)).collect();
    let secrets: Vec<(String, String)> = listed
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
    let mut git_credentials: Vec<String> = svc
        .list_credentials(c, AgentKind::Github)
        .await?
        .into_iter()
        .map(|cr| cr.name)
        .collect();
    git_credentials.extend(secrets.iter().map(|(name, _)| name.clone()));
    git_credentials.dedup();
    Ok(Choices {
        secrets,
        scopes,
        agents,
        git_credentials,
        github_hosts: svc.config.github_hosts.clone(),
        presets: svc.list_presets(),
        snapshots: snapshots::startable(svc, c).await?,
        expired: expired_credentials(svc, c).await,
    })
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
<input id=\"env-{i}\" name=\"env\" type=\"text\" value=\"{env}\" placeholder=\"DATABASE_URL\" maxlength=\"{max}\" autocomplete=\"off\" spellcheck=\"false\"{invalid}></div>\
<div class=\"field\"><label for=\"secret-{i}\">Secret</label>\
<select id=\"secret-{i}\" name=\"secret\"{invalid_select}>{opts}</select></div>\
<div class=\"row-actions\"><button type=\"submit\" name=\"remove_row\" value=\"{i}\" class=\"button ghost small\" data-remove-row formnovalidate>Remove<span class=\"visually-hidden\"> env var row</span></button></div>\
{err}</div>",
        env = escape(env),
        max = super::form::limits::ENV_VAR,
        invalid_select = html::invalid_attrs(&id, error, false),
        opts = secret_options(choices, secret),
        err = html::field_error(&id, error),
    )
}

/// One select per agent kind, with the kind's options (and a submitted choice no longer
/// listed, marked as such).
fn agent_selects(choices: &Choices, d: &Draft) -> String {
    AgentKind::AGENTS
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
                d.errors.get(&agent_field(*k)),
                true,
            )
        })
        .collect()
}

/// The form's env var rows as (env var, secret, scope), the scope of the secret the name finds
/// (the caller's own before the org's).
fn row_mapping(d: &Draft, choices: &Choices) -> Vec<(String, String, String)> {
    d.rows
        .iter()
        .filter(|(env, secret)| !env.is_empty() && !secret.is_empty())
        .map(|(env, secret)| {
            let scope = choices
                .scopes
                .iter()
                .find(|(n, _)| n == secret)
                .map_or("not found".to_string(), |(_, s)| format!("{s} scope"));
            (env.clone(), secret.clone(), scope)
        })
        .collect()
}

/// The last preview: the resolution table, the secrets, and what the repository contributes;
/// where the form has errors, the list of them instead (the page script keeps the last good
/// preview on screen, marked out of date).
fn preview_card(d: &Draft, choices: &Choices) -> String {
    let inner = match &d.preview {
        Some(p) => format!(
            "<p class=\"hint\">What a create with the choices above resolves to now. Nothing has been created yet.</p>{}{}\
<h3>Secrets to inject</h3>{}{}{}",
            d.snapshot_info.as_ref().map_or(String::new(), snapshots::preview_part),
            resolution_table("Resolution preview", &p.resolved_agent_credentials, &choices.expired),
            secret_mapping_list(&row_mapping(d, choices), &p.secret_names),
            workspace::preview_part(&d.workspace, p),
            warnings_list(&p.warnings),
        ),
        None if d.errors.is_empty() => return String::new(),
        None => "<p class=\"hint\" id=\"preview-blocked\">No preview until the errors marked on the form are fixed.</p>".to_string(),
    };
    format!(
        "<section class=\"card preview\" aria-labelledby=\"preview-title\" id=\"preview\"><h2 id=\"preview-title\">Resolution preview</h2>{inner}</section>"
    )
}

/// What would not do what the report says, as the create would warn; nothing when all is well.
fn warnings_list(warnings: &[String]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let items: String = warnings
        .iter()
        .map(|w| format!("<li>{}</li>", escape(w)))
        .collect();
    format!("<h3>Warnings</h3><ul class=\"warnings\" role=\"status\">{items}</ul>")
}

fn render_form(session: &WebSession, choices: &Choices, d: &Draft) -> String {
    let e = &d.errors;
    let name = html::Input {
        id: "name",
        name: "name",
        label: "Sandbox name",
        kind: "text",
        value: &d.name,
        hint: Some("Letters, digits, '-', '_' and '.', starting with a letter or digit. Empty: a readable name is made up (from the repository's name, if any)."),
        error: e.get("name"),
        required: false,
        // Only on a clean form: with errors, the first invalid field takes the focus.
        autofocus: e.is_empty(),
        extra: &format!(
            "autocomplete=\"off\" spellcheck=\"false\" placeholder=\"dev-box\" maxlength=\"{}\"",
            super::form::limits::SANDBOX_NAME
        ),
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
    format!(
        "<div class=\"page-head\"><h1>New sandbox</h1><p class=\"lead\">Pick a repository to work in, map secrets to environment variables and choose the agent credentials to inject.</p></div>\
{general}<form method=\"post\" action=\"/sandboxes/new\" class=\"sandbox-form\" novalidate>{csrf}\
<button type=\"submit\" name=\"action\" value=\"create\" class=\"visually-hidden\" tabindex=\"-1\" aria-hidden=\"true\">Create sandbox</button>\
<section class=\"card\" aria-labelledby=\"basics-title\"><h2 id=\"basics-title\">Sandbox</h2>{name}{preset}{snapshot}</section>\
{repository}\
<section class=\"card\" aria-labelledby=\"env-title\"><h2 id=\"env-title\">Secrets as environment variables</h2>\
<p class=\"hint\">Each row injects a secret's value as an env var. Leave a row blank to skip it.</p>\
<div class=\"env-rows\" id=\"env-rows\">{rows_html}</div>\
<template id=\"env-row-template\">{template}</template>\
<button type=\"submit\" name=\"action\" value=\"add_row\" class=\"button secondary small\" id=\"add-row\" formnovalidate>Add env var</button></section>\
{plain_env}\
<section class=\"card\" aria-labelledby=\"agents-title\"><h2 id=\"agents-title\">Agent credentials</h2>\
<p class=\"hint\">Default (auto) takes the repository's .amika/config.toml entry for the kind, else your default credential, else your newest (oauth first), else your org's.</p>\
<div class=\"agents\">{agents}</div></section>\
{setup}{preview}\
<div class=\"actions sticky\"><button type=\"submit\" name=\"action\" value=\"preview\" class=\"button secondary\">Preview resolution</button>\
<button type=\"submit\" name=\"action\" value=\"create\" class=\"button primary\">Create sandbox</button>\
<a class=\"button ghost\" href=\"/sandboxes\">Cancel</a></div></form>",
        general = html::form_errors(&e.general),
        csrf = html::csrf_field(&session.csrf),
        preset = presets::preset_select(&choices.presets, &d.preset, e.get("preset")),
        snapshot = snapshots::snapshot_select(&choices.snapshots, &d.snapshot, e.get(SNAPSHOT_FIELD)),
        repository = workspace::repository_card(
            &d.workspace,
            e,
            &choices.git_credentials,
            &choices.github_hosts
        ),
        plain_env = workspace::plain_env_card(&d.workspace, e),
        agents = agent_selects(choices, d),
        setup = workspace::setup_card(&d.workspace, e),
        preview = preview_card(d, choices),
    )
}

/// With every error shown, each invalid field asks for the focus: the first one gets it.
fn first_autofocus_only(html: &str) -> String {
    match html.find(" autofocus") {
        Some(i) => {
            let (head, tail) = html.split_at(i + " autofocus".len());
            format!("{head}{}", tail.replace(" autofocus", ""))
        }
        None => html.to_string(),
    }
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
            &first_autofocus_only(&render_form(session, &choices, draft)),
            None,
        ),
    )
}

/// Run the preview for the draft; errors land on the form.
async fn preview(svc: &Service, session: &WebSession, draft: &mut Draft) -> StatusCode {
    let Some(mut req) = draft.build_request() else {
        draft.check_rest(svc, &session.caller).await;
        return StatusCode::BAD_REQUEST;
    };
    if req.name.is_empty() {
        req.name = PREVIEW_PLACEHOLDER_NAME.into();
    }
    let checked = check_all(svc, &session.caller, &req).await;
    // The service's preview checks the snapshot field's form only; whether it names an active
    // snapshot of the caller's is asked here, so the preview says what a create would.
    let snapshot = match req.snapshot.as_deref() {
        Some(name) => Some(snapshots::chosen(svc, &session.caller, name).await),
        None => None,
    };
    match (checked, snapshot) {
        (Ok(_), Some(Err(message))) => {
            draft.errors.on(SNAPSHOT_FIELD, message);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        (Ok(p), snapshot) => {
            draft.preview = Some(p);
            draft.snapshot_info = snapshot.and_then(Result::ok);
            StatusCode::OK
        }
        (Err(errors), snapshot) => {
            let status = draft.place_all(errors);
            if let Some(Err(message)) = snapshot {
                draft.errors.on(SNAPSHOT_FIELD, message);
            }
            status
        }
    }
}

/// The New sandbox form's query: `?snapshot=NAME` chooses the snapshot to start from (the
/// Snapshots page's "New sandbox" links).
#[derive(Debug, Default, serde::Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    snapshot: Option<String>,
}

pub async fn new_form(
    State(svc): State<Service>,
    session: WebSession,
    query: Result<Query<NewQuery>, QueryRejection>,
) -> Response {
    // Open with the preview of the defaults, so what "Default (auto)" means is visible at once.
    let mut draft = Draft {
        snapshot: query
            .ok()
            .and_then(|Query(q)| q.snapshot)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        ..Draft::default()
    };
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
                draft.check_rest(&svc, &session.caller).await;
                return respond_form(&svc, &session, StatusCode::BAD_REQUEST, &draft).await;
            };
            match svc.create_sandbox(&session.caller, req).await {
                Ok(s) => {
                    let mut flash = format!("Sandbox {} created: {}.", s.name, s.state);
                    for w in &s.warnings {
                        flash.push_str(&format!(" Note: {w}."));
                    }
                    session.flash(flash);
                    see_other(&sandbox_href(&s))
                }
                Err(e) => {
                    // The service reports every refused field at once.
                    let status = draft.place_all(e.each());
                    respond_form(&svc, &session, status, &draft).await
                }
            }
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
            let message = plain(&e.to_string());
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
