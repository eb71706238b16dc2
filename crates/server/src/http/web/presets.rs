//! The presets page (`/presets`): each preset of the server with its pinned packages, whether
//! they are installed, and the installed versions. Admins install a preset (in the background:
//! the page shows the step it is at while it runs, then its result) and remove its versions
//! after a confirmation; everyone else sees the same list without the buttons. Also the preset
//! choice of the New sandbox form ([`preset_select`], [`preset_request`]).
//!
//! Installs started here are followed in [`Installs`], one per router like the sessions. The
//! service runs one install at a time, so an install started meanwhile from the CLI waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use amika_types as t;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::html::{self, escape, Nav, Refresh};
use super::{error_in_page, html_response, see_other, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::http::error::ApiError;
use crate::service::presets::{self, InstallProgress};
use crate::service::{Service, ServiceError};

/// Where the last install of a preset started from this UI stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum InstallStatus {
    Running {
        step: u32,
        steps: u32,
        /// The step's description, or npm's last output line.
        message: String,
        by: String,
        since: DateTime<Utc>,
    },
    Succeeded {
        version: String,
        by: String,
        at: DateTime<Utc>,
    },
    Failed {
        message: String,
        by: String,
        at: DateTime<Utc>,
    },
}

/// The installs started from the web UI, by preset name (the last one of each).
#[derive(Debug, Default)]
pub struct Installs {
    by_name: Mutex<HashMap<String, InstallStatus>>,
}

impl Installs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, InstallStatus>> {
        self.by_name.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, name: &str) -> Option<InstallStatus> {
        self.lock().get(name).cloned()
    }

    /// Mark `name` as installing; `false` when an install of it is running already.
    fn begin(&self, name: &str, by: &str) -> bool {
        let mut map = self.lock();
        if matches!(map.get(name), Some(InstallStatus::Running { .. })) {
            return false;
        }
        let status = InstallStatus::Running {
            step: 0,
            steps: presets::STEPS,
            message: "waiting for the server to start the install".into(),
            by: by.into(),
            since: Utc::now(),
        };
        map.insert(name.into(), status);
        true
    }

    fn progress(&self, name: &str, event: &t::PresetInstallEvent) {
        if let Some(InstallStatus::Running {
            step,
            steps,
            message,
            ..
        }) = self.lock().get_mut(name)
        {
            (*step, *steps, *message) = (event.step, event.steps, event.message.clone());
        }
    }

    fn set(&self, name: &str, status: InstallStatus) {
        self.lock().insert(name.into(), status);
    }

    fn forget(&self, name: &str) {
        self.lock().remove(name);
    }
}

// ------------------------------------------------------------------ the page

pub async fn page(
    State(svc): State<Service>,
    Extension(installs): Extension<Arc<Installs>>,
    session: WebSession,
) -> Response {
    let list = svc.list_presets();
    let statuses: Vec<Option<InstallStatus>> =
        list.presets.iter().map(|p| installs.get(&p.name)).collect();
    let running = statuses
        .iter()
        .any(|s| matches!(s, Some(InstallStatus::Running { .. })));
    let cards: String = list
        .presets
        .iter()
        .zip(&statuses)
        .map(|(p, s)| preset_card(p, s.as_ref(), &session))
        .collect();
    let who = if session.caller.is_admin {
        "Install a preset once; sandboxes created with it get its tools read-only, on their PATH."
    } else {
        "Sandboxes created with an installed preset get its tools read-only, on their PATH. Only admins install and remove presets."
    };
    let body = format!(
        "<div class=\"page-head\"><h1>Presets</h1><p class=\"lead\">{}</p></div>{cards}",
        escape(who)
    );
    // While an install runs the page follows it; the result stays until the next one.
    let refresh = running.then_some(Refresh::Always(2));
    html_response(
        StatusCode::OK,
        html::page_with("Presets", &session.chrome(Nav::Presets), &body, refresh),
    )
}

/// One preset: packages, facts, installed versions, the last install from here, the buttons.
fn preset_card(p: &t::Preset, status: Option<&InstallStatus>, session: &WebSession) -> String {
    let admin = session.caller.is_admin;
    let running = matches!(status, Some(InstallStatus::Running { .. }));
    let badge = if p.installed {
        "<span class=\"badge state-running\">installed</span>"
    } else {
        "<span class=\"badge\">not installed</span>"
    };
    let actions = if admin && !running {
        actions(p, &session.csrf)
    } else {
        String::new()
    };
    format!(
        "<section class=\"card preset\" id=\"preset-{id}\" aria-labelledby=\"preset-{id}-title\">\
<div class=\"page-head row\"><h2 id=\"preset-{id}-title\">{name}</h2>{badge}</div>\
<p>{description}</p>{packages}\
<dl class=\"facts\"><div><dt>Commands on PATH</dt><dd>{bin}</dd></div>\
<div><dt>Pinned version id</dt><dd><code>{current}</code></dd></div>\
<div><dt>Default for new sandboxes</dt><dd>{default}</dd></div></dl>\
{versions}{status}{actions}</section>",
        id = escape(&p.name),
        name = escape(&p.name),
        description = escape(&p.description),
        packages = packages_table(p),
        bin = escape(&p.bin.join(", ")),
        current = escape(&p.current),
        default = if p.default { "yes" } else { "no" },
        versions = versions_table(p),
        status = status.map_or(String::new(), |s| status_block(&p.name, s, admin)),
    )
}

/// Each pinned package, its version, and whether the layer of that version is installed.
fn packages_table(p: &t::Preset) -> String {
    let newest = p.versions.first();
    let rows: Vec<Vec<String>> = p
        .packages
        .iter()
        .map(|(pkg, ver)| {
            let installed = match newest.and_then(|v| v.packages.get(pkg)) {
                _ if p.installed => "yes".to_string(),
                Some(older) => format!("no ({older} is installed)"),
                None => "no".to_string(),
            };
            vec![
                format!("<code>{}</code>", escape(pkg)),
                escape(ver),
                escape(&installed),
            ]
        })
        .collect();
    html::table(
        &format!("Pinned packages of {}", p.name),
        &["Package", "Pinned version", "Installed"],
        &rows,
        "This preset pins no package.",
    )
}

/// The installed versions, newest first (nothing when none is).
fn versions_table(p: &t::Preset) -> String {
    if p.versions.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = p
        .versions
        .iter()
        .map(|v| {
            let packages: Vec<String> =
                v.packages.iter().map(|(k, v)| format!("{k}@{v}")).collect();
            vec![
                format!("<code>{}</code>", escape(&v.id)),
                escape(&packages.join(" ")),
                html::date(&v.installed_at),
                escape(&v.node),
                if v.current { "pinned" } else { "older" }.into(),
            ]
        })
        .collect();
    format!(
        "<h3>Installed versions</h3>{}",
        html::table(
            &format!("Installed versions of {}", p.name),
            &["Version", "Packages", "Installed", "Node.js", "Kind"],
            &rows,
            "",
        )
    )
}

/// The last install from this UI: its step while it runs (npm's output for admins only), then
/// its outcome.
pub(super) fn status_block(name: &str, status: &InstallStatus, admin: bool) -> String {
    match status {
        InstallStatus::Running {
            step,
            steps,
            message,
            by,
            since,
        } => {
            let detail = if admin {
                format!("<p class=\"hint install-step\">{}</p>", escape(message))
            } else {
                String::new()
            };
            format!(
                "<div class=\"install-status\" role=\"status\"><p class=\"waiting\"><span class=\"spinner\" aria-hidden=\"true\"></span>\
<span>Installing {name} (started by {by}, {since}): step {step} of {steps}.</span></p>\
<progress max=\"{steps}\" value=\"{step}\" aria-label=\"Install of {name}: step {step} of {steps}\"></progress>{detail}</div>",
                name = escape(name),
                by = escape(by),
                since = html::date(since),
            )
        }
        InstallStatus::Succeeded { version, by, at } => format!(
            "<div class=\"notice\" role=\"status\">Installed {} version <code>{}</code> ({}, by {}).</div>",
            escape(name),
            escape(version),
            html::date(at),
            escape(by)
        ),
        InstallStatus::Failed { message, by, at } => {
            let detail = if admin {
                format!("<pre class=\"log\">{}</pre>", escape(message))
            } else {
                String::new()
            };
            format!(
                "<div class=\"alert\" role=\"alert\"><p>The install of {} failed ({}, by {}).</p>{detail}</div>",
                escape(name),
                html::date(at),
                escape(by)
            )
        }
    }
}

/// An admin's buttons: install (or update, beside older versions) and remove.
fn actions(p: &t::Preset, csrf: &str) -> String {
    let install = if p.installed {
        String::new()
    } else {
        let label = if p.versions.is_empty() {
            "Install"
        } else {
            "Install the pinned versions"
        };
        format!(
            "<form method=\"post\" action=\"/presets/{name}/install\">{csrf}\
<button type=\"submit\" class=\"button primary\">{label}<span class=\"visually-hidden\"> {name}</span></button></form>",
            name = escape(&p.name),
            csrf = html::csrf_field(csrf),
        )
    };
    let remove = if p.versions.is_empty() {
        String::new()
    } else {
        format!(
            "<a class=\"button danger\" href=\"/presets/{name}/remove\">Remove<span class=\"visually-hidden\"> {name}</span></a>",
            name = escape(&p.name)
        )
    };
    let hint = if p.installed {
        ""
    } else {
        "<p class=\"hint\">The server runs npm to fetch the pinned packages: a few minutes on a machine that has never installed them.</p>"
    };
    format!("{hint}<div class=\"actions\">{install}{remove}</div>")
}

// ------------------------------------------------------------------ install and remove

/// `POST /presets/{name}/install` (admins): start the install in the background and go back to
/// the page, which follows it.
pub async fn install(
    State(svc): State<Service>,
    Extension(installs): Extension<Arc<Installs>>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let def = match svc.check_preset_install(&session.caller, &name) {
        Ok(def) => def,
        Err(e) => return error_in_page(&session, e),
    };
    let by = session.caller.user_name.clone();
    if !installs.begin(&def.name, &by) {
        session.flash(format!("An install of {} is running already.", def.name));
        return see_other("/presets");
    }
    let caller = session.caller.clone();
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let follow = {
            let installs = installs.clone();
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    installs.progress(&def.name, &event);
                }
            })
        };
        let outcome = svc
            .install_preset(&caller, def, InstallProgress::new(tx))
            .await;
        // Every progress line is in before the outcome replaces them.
        let _ = follow.await;
        let status = match outcome {
            Ok(preset) => InstallStatus::Succeeded {
                version: preset.current,
                by,
                at: Utc::now(),
            },
            Err(e) => {
                tracing::warn!(preset = %def.name, "preset install from the web UI failed: {e}");
                InstallStatus::Failed {
                    message: e.to_string(),
                    by,
                    at: Utc::now(),
                }
            }
        };
        installs.set(&def.name, status);
    });
    session.flash(format!(
        "Installing {}: this page follows it until it is done.",
        def.name
    ));
    see_other("/presets")
}

fn confirm_page(
    session: &WebSession,
    p: &t::Preset,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let ids: Vec<&str> = p.versions.iter().map(|v| v.id.as_str()).collect();
    let question = format!(
        "Remove the installed versions of the preset <strong>{}</strong> ({})?",
        escape(&p.name),
        escape(&ids.join(", "))
    );
    let body = html::confirm_delete(
        "Remove preset",
        error,
        &question,
        "Versions that sandboxes use are kept (the page says which). New sandboxes get this preset again once it is installed again.",
        &format!("/presets/{}/remove", escape(&p.name)),
        "/presets",
        &session.csrf,
    );
    html_response(
        status,
        html::page("Remove preset", &session.chrome(Nav::Presets), &body, None),
    )
}

/// The preset `name` names, for an admin (404 for an unknown name, else 403 for a member).
fn admin_preset(
    svc: &Service,
    session: &WebSession,
    name: &str,
) -> Result<t::Preset, ServiceError> {
    let def = presets::find_named(name)?;
    presets::require_admin(&session.caller)?;
    Ok(svc.describe_preset(def))
}

/// `GET /presets/{name}/remove` (admins): the confirmation.
pub async fn confirm_remove(
    State(svc): State<Service>,
    session: WebSession,
    ApiPath(name): ApiPath<String>,
) -> Response {
    match admin_preset(&svc, &session, &name) {
        Ok(p) => confirm_page(&session, &p, None, StatusCode::OK),
        Err(e) => error_in_page(&session, e),
    }
}

/// `POST /presets/{name}/remove` (admins): remove every version no sandbox uses.
pub async fn remove(
    State(svc): State<Service>,
    Extension(installs): Extension<Arc<Installs>>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let p = match admin_preset(&svc, &session, &name) {
        Ok(p) => p,
        Err(e) => return error_in_page(&session, e),
    };
    match svc.remove_preset(&session.caller, &p.name, None).await {
        Ok(removal) => {
            if !matches!(installs.get(&p.name), Some(InstallStatus::Running { .. })) {
                installs.forget(&p.name);
            }
            session.flash(removal_notice(&p.name, &removal));
            see_other("/presets")
        }
        Err(e) => {
            let answer = ApiError::from(e);
            confirm_page(&session, &p, Some(&answer.message), answer.status)
        }
    }
}

/// What a removal did, in words.
fn removal_notice(name: &str, removal: &t::PresetRemoval) -> String {
    let mut notice = if removal.removed.is_empty() {
        format!("No version of {name} was removed.")
    } else {
        format!("Removed {name} version {}.", removal.removed.join(", "))
    };
    for kept in &removal.kept {
        notice.push_str(&format!(
            " Kept version {}: sandboxes {} use it (delete them, then remove again).",
            kept.id,
            kept.sandboxes.join(", ")
        ));
    }
    notice
}

// ------------------------------------------------------------------ the New sandbox form

/// The form's preset choice as the create request's `preset`: `default` is none given (the
/// server's default preset applies), `none` is `""` (no preset), anything else a preset's name
/// (the service refuses names it does not know, next to this field).
pub(super) fn preset_request(choice: &str) -> Option<String> {
    match choice {
        "" | "default" => None,
        "none" => Some(String::new()),
        name => Some(name.to_string()),
    }
}

/// The New sandbox form's preset select: the server's default, none, or each preset (marked
/// when it is not installed: a create with it then has no preset, with a warning).
pub(super) fn preset_select(list: &t::PresetList, current: &str, error: Option<&str>) -> String {
    let default = match list.presets.iter().find(|p| p.default) {
        Some(p) if p.installed || !p.versions.is_empty() => format!("Server default ({})", p.name),
        Some(p) => format!("Server default (none: {} is not installed)", p.name),
        None => "Server default (none)".to_string(),
    };
    let labels: Vec<(String, String)> = list
        .presets
        .iter()
        .map(|p| {
            let installed = p.installed || !p.versions.is_empty();
            let note = if installed { "" } else { " (not installed)" };
            (
                p.name.clone(),
                format!("{}: {}{note}", p.name, p.description),
            )
        })
        .collect();
    let mut items: Vec<(&str, &str)> = vec![("default", default.as_str()), ("none", "None")];
    items.extend(labels.iter().map(|(v, l)| (v.as_str(), l.as_str())));
    let current = if current.is_empty() {
        "default"
    } else {
        current
    };
    // Keep what was submitted even if it is not listed, so the error next to it makes sense.
    let missing;
    if !items.iter().any(|(v, _)| *v == current) {
        missing = format!("{current} (not found)");
        items.push((current, &missing));
    }
    // The hint sits between the label and the control, as every field's does; an error
    // replaces it as the control's description.
    let described = if error.is_none() {
        " aria-describedby=\"preset-hint\""
    } else {
        ""
    };
    format!(
        "<div class=\"field\"><label for=\"preset\">Preset</label>\
<p class=\"hint\" id=\"preset-hint\">Tools the server installed once (see <a href=\"/presets\">Presets</a>), mounted read-only with their commands on the sandbox's PATH.</p>\
<select id=\"preset\" name=\"preset\"{described}{invalid}>{options}</select>{error}</div>",
        invalid = html::invalid_attrs("preset", error, true),
        options = html::options(items, current),
        error = html::field_error("preset", error),
    )
}
