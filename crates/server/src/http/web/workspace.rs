//! A sandbox's workspace in the web UI: the New sandbox form's repository, plain env vars, setup
//! script, size and idle fields (kept as typed, turned into the request's fields, their errors
//! placed next to them), what the preview says the repository's `.amika/config.toml`
//! contributes, and the sandbox page's workspace, env and setup cards with the setup log.
//!
//! As everywhere in the UI, nothing is decided here: the service clones, validates and resolves.
//! The only checks are the form's own shape: a line of the env box that is not `KEY=VALUE`, one
//! variable on two lines, minutes that are not a number.

use std::collections::BTreeMap;

use amika_types::{self as t, ResolutionOutcome, ResolutionSource, SandboxSize, SetupState};

use super::form::{Fields, FormErrors};
use super::html::{self, escape};
use crate::service::resolver::REASON_REPO_NONE;
use crate::service::{repo_config, validate, Caller, Service, ServiceError};

// Input ids and names: the request's field names, so that an error's field finds its input.
const REPO_URL: &str = "repo_url";
const BRANCH: &str = "branch";
const NEW_BRANCH: &str = "new_branch_name";
const GIT_CREDENTIAL: &str = "git_credential";
const ENV_VARS: &str = "env_vars";
const SETUP_SCRIPT: &str = "setup_script_text";
const SKIP_SETUP: &str = "skip_setup_script";
const SIZE: &str = "size";
const AUTO_STOP: &str = "auto_stop_interval";
const AUTO_DELETE: &str = "auto_delete_interval";

/// The workspace fields of the New sandbox form, as typed.
#[derive(Debug, Default, Clone)]
pub(super) struct WorkspaceDraft {
    pub repo_url: String,
    pub branch: String,
    pub new_branch: String,
    pub git_credential: String,
    /// Plain env vars, `KEY=VALUE` per line.
    pub env_text: String,
    pub setup_script: String,
    pub skip_setup: bool,
    /// `""` (the server's default limits) or a size.
    pub size: String,
    pub auto_stop: String,
    pub auto_delete: String,
}

impl WorkspaceDraft {
    pub fn from_fields(fields: &Fields) -> WorkspaceDraft {
        let trimmed = |name: &str| fields.get(name).trim().to_string();
        WorkspaceDraft {
            repo_url: trimmed(REPO_URL),
            branch: trimmed(BRANCH),
            new_branch: trimmed(NEW_BRANCH),
            git_credential: trimmed(GIT_CREDENTIAL),
            env_text: fields.get(ENV_VARS).replace("\r\n", "\n"),
            // Browsers send a textarea's lines with CRLF; a shell reads `exit 3\r` as an error.
            setup_script: fields.get(SETUP_SCRIPT).replace("\r\n", "\n"),
            skip_setup: fields.get(SKIP_SETUP) == "true",
            size: trimmed(SIZE),
            auto_stop: trimmed(AUTO_STOP),
            auto_delete: trimmed(AUTO_DELETE),
        }
    }

    /// Fill the workspace fields of `req`; what does not fit the form's shape goes on `errors`.
    pub fn apply(&self, req: &mut t::CreateSandboxRequest, errors: &mut FormErrors) {
        let given = |s: &str| (!s.is_empty()).then(|| s.to_string());
        req.repo_url = given(&self.repo_url);
        req.branch = given(&self.branch);
        req.new_branch_name = given(&self.new_branch);
        req.git_credential = given(&self.git_credential);
        match parse_env_lines(&self.env_text) {
            Ok(vars) => req.env_vars = vars,
            Err(problems) => errors.on(ENV_VARS, problems.join("; ")),
        }
        req.setup_script_text =
            (!self.setup_script.trim().is_empty()).then(|| self.setup_script.clone());
        req.skip_setup_script = self.skip_setup;
        if !self.size.is_empty() {
            match self.size.parse::<SandboxSize>() {
                Ok(size) => req.size = Some(size),
                Err(e) => errors.on(SIZE, e),
            }
        }
        req.auto_stop_interval = minutes(&self.auto_stop, AUTO_STOP, "0 or empty", errors);
        req.auto_delete_interval =
            minutes(&self.auto_delete, AUTO_DELETE, "-1, 0 or empty", errors);
    }

    /// The input that shows the request field at `path`, when it is one of the workspace's.
    /// An error in the repository's `.amika/config.toml` (its message names the file and the
    /// line) goes next to the repository field.
    pub fn input_for(path: &str) -> Option<&'static str> {
        Some(match path {
            REPO_URL | "workspace_upload" | repo_config::PATH => REPO_URL,
            BRANCH => BRANCH,
            NEW_BRANCH => NEW_BRANCH,
            GIT_CREDENTIAL => GIT_CREDENTIAL,
            SETUP_SCRIPT | "setup_timeout_secs" => SETUP_SCRIPT,
            SIZE | "memory_mib" | "pids" => SIZE,
            AUTO_STOP => AUTO_STOP,
            AUTO_DELETE => AUTO_DELETE,
            "disabled_repo_env_var_names" => ENV_VARS,
            p if p.starts_with("env_vars.") => ENV_VARS,
            _ => return None,
        })
    }
}

/// `KEY=VALUE` per line: the value is everything after the first `=`, as typed. Blank lines and
/// lines starting with `#` are skipped. Every bad line is reported, by its number.
fn parse_env_lines(text: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut vars = BTreeMap::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            problems.push(format!(
                "line {n}: {:?} has no \"=\": write each variable as KEY=VALUE",
                line.trim()
            ));
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            problems.push(format!(
                "line {n}: there is no name before \"=\": write each variable as KEY=VALUE"
            ));
            continue;
        }
        if let Err(e) = validate::env_var(key) {
            problems.push(format!("line {n}: {e}"));
            continue;
        }
        if let Some(earlier) = first_line.get(key) {
            problems.push(format!(
                "line {n}: {key} is already set on line {earlier}: keep one line per variable"
            ));
            continue;
        }
        first_line.insert(key.to_string(), n);
        vars.insert(key.to_string(), value.to_string());
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(problems)
    }
}

/// Minutes typed into `field`: empty is `None`; anything else must be a number (the service
/// checks its range).
fn minutes(text: &str, field: &str, never: &str, errors: &mut FormErrors) -> Option<f64> {
    if text.is_empty() {
        return None;
    }
    match text.parse::<f64>() {
        Ok(m) if m.is_finite() => Some(m),
        _ => {
            errors.on(
                field,
                format!("{text:?} is not a number of minutes: enter e.g. 60 ({never}: never)"),
            );
            None
        }
    }
}

/// Minutes as the pages show them: `30`, `1.5`.
fn show_minutes(m: f64) -> String {
    if m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m}")
    }
}

fn size_label(size: SandboxSize) -> String {
    let (memory, pids) = size.limits();
    format!("{size} — {memory} MiB, {pids} processes")
}

// ------------------------------------------------------------------ the form's sections

fn input<'a>(
    id: &'a str,
    label: &'a str,
    value: &'a str,
    hint: Option<&'a str>,
    error: Option<&'a str>,
    extra: &'a str,
) -> String {
    html::Input {
        id,
        name: id,
        label,
        kind: "text",
        value,
        hint,
        error,
        required: false,
        autofocus: false,
        extra,
    }
    .render()
}

/// The Repository card of the form. `git_credentials`: names to suggest (github credentials
/// and secrets); `github_hosts`: where the default github credential is used.
pub(super) fn repository_card(
    d: &WorkspaceDraft,
    e: &FormErrors,
    git_credentials: &[String],
    github_hosts: &[String],
) -> String {
    let credential_hint = format!(
        "A github credential or secret whose value is a token for HTTPS clones. Empty: your default github credential, for repositories on {}.",
        if github_hosts.is_empty() {
            "no host (none is configured)".to_string()
        } else {
            github_hosts.join(", ")
        }
    );
    let suggestions: String = git_credentials
        .iter()
        .map(|n| format!("<option value=\"{}\"></option>", escape(n)))
        .collect();
    format!(
        "<section class=\"card\" aria-labelledby=\"repo-title\"><h2 id=\"repo-title\">Repository</h2>\
<p class=\"hint\">The server clones it into <code>~/workspace/&lt;name&gt;</code> and applies its <code>.amika/config.toml</code> under the choices on this page. Leave it empty for an empty workspace.</p>\
<div class=\"grid-form\"><div class=\"wide\">{repo}</div>{branch}{new_branch}<div class=\"wide\">{credential}</div></div>\
<datalist id=\"git-credential-options\">{suggestions}</datalist></section>",
        repo = input(
            REPO_URL,
            "Repository URL",
            &d.repo_url,
            Some("An https, ssh or git URL, host:path as in git@github.com:org/repo.git, or a file URL (admins only)."),
            e.get(REPO_URL),
            "autocomplete=\"off\" spellcheck=\"false\" placeholder=\"git@github.com:org/repo.git\"",
        ),
        branch = input(
            BRANCH,
            "Branch",
            &d.branch,
            Some("Default: the repository's default branch."),
            e.get(BRANCH),
            "autocomplete=\"off\" spellcheck=\"false\" placeholder=\"main\"",
        ),
        new_branch = input(
            NEW_BRANCH,
            "New branch",
            &d.new_branch,
            Some("Created from the branch and checked out."),
            e.get(NEW_BRANCH),
            "autocomplete=\"off\" spellcheck=\"false\" placeholder=\"agent/fix-parser\"",
        ),
        credential = input(
            GIT_CREDENTIAL,
            "Git credential",
            &d.git_credential,
            Some(&credential_hint),
            e.get(GIT_CREDENTIAL),
            "autocomplete=\"off\" spellcheck=\"false\" list=\"git-credential-options\"",
        ),
    )
}

/// The plain env vars card of the form.
pub(super) fn plain_env_card(d: &WorkspaceDraft, e: &FormErrors) -> String {
    let area = html::TextArea {
        id: ENV_VARS,
        name: ENV_VARS,
        label: "Variables, one KEY=VALUE per line",
        value: &d.env_text,
        hint: Some("The value is everything after the first =, as typed. Not secrets: they are stored and shown as given. They win over the repository's [env]."),
        error: e.get(ENV_VARS),
        rows: 4,
        extra: "placeholder=\"NODE_ENV=development\"",
    }
    .render();
    format!(
        "<section class=\"card\" aria-labelledby=\"plain-env-title\"><h2 id=\"plain-env-title\">Plain environment variables</h2>{area}</section>"
    )
}

/// The setup, size and idle card of the form.
pub(super) fn setup_card(d: &WorkspaceDraft, e: &FormErrors) -> String {
    let script = html::TextArea {
        id: SETUP_SCRIPT,
        name: SETUP_SCRIPT,
        label: "Setup script",
        value: &d.setup_script,
        hint: Some("Run by /bin/sh inside the sandbox, as its user, in the repository's directory, with every variable and credential in place, before the sandbox is ready. Replaces the repository's setup_script. A non-zero exit fails the sandbox."),
        error: e.get(SETUP_SCRIPT),
        rows: 5,
        extra: "placeholder=\"npm ci\"",
    }
    .render();
    let skip = format!(
        "<div class=\"field check wide\"><input type=\"checkbox\" id=\"{SKIP_SETUP}\" name=\"{SKIP_SETUP}\" value=\"true\"{}>\
<label for=\"{SKIP_SETUP}\">Skip setup scripts (this one and the repository's)</label></div>",
        if d.skip_setup { " checked" } else { "" }
    );
    let sizes: Vec<(String, String)> =
        std::iter::once((String::new(), "Default (the server's limits)".to_string()))
            .chain(
                SandboxSize::ALL
                    .iter()
                    .map(|s| (s.as_str().to_string(), size_label(*s))),
            )
            .collect();
    let mut items: Vec<(&str, &str)> = sizes
        .iter()
        .map(|(v, l)| (v.as_str(), l.as_str()))
        .collect();
    // Keep what was submitted, even if it is not an option: nothing typed is lost.
    let unknown = format!("{} (unknown)", d.size);
    if !sizes.iter().any(|(v, _)| *v == d.size) {
        items.push((&d.size, &unknown));
    }
    let size = html::select(
        SIZE,
        SIZE,
        "Size",
        &html::options(items, &d.size),
        e.get(SIZE),
        true,
    );
    let numeric = "autocomplete=\"off\" inputmode=\"decimal\"";
    format!(
        "<section class=\"card\" aria-labelledby=\"setup-title\"><h2 id=\"setup-title\">Setup, size and lifetime</h2>\
<div class=\"grid-form\">{script}{skip}<div class=\"wide\">{size}</div>{stop}{delete}</div></section>",
        stop = input(
            AUTO_STOP,
            "Auto-stop after (minutes idle)",
            &d.auto_stop,
            Some("Stopped after this long without exec or agent activity. Empty or 0: never."),
            e.get(AUTO_STOP),
            numeric,
        ),
        delete = input(
            AUTO_DELETE,
            "Auto-delete after (minutes idle)",
            &d.auto_delete,
            Some("Deleted after this long without exec or agent activity. Empty, 0 or -1: never."),
            e.get(AUTO_DELETE),
            numeric,
        ),
    )
}

// ------------------------------------------------------------------ what the repository adds

fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        return "<span class=\"muted\">none</span>".into();
    }
    items
        .iter()
        .map(|i| format!("<code>{}</code>", escape(i)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a repository's `.amika/config.toml` contributes, as facts (`id` names the list).
fn repo_config_facts(id: &str, rc: &t::RepoConfigApplied) -> String {
    let kinds: Vec<String> = rc
        .agent_credentials
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    format!(
        "<dl class=\"facts\" id=\"{id}\">\
<div><dt>Plain env vars</dt><dd>{}</dd></div>\
<div><dt>Env vars from secrets</dt><dd>{}</dd></div>\
<div><dt>Agent credentials</dt><dd>{}</dd></div>\
<div><dt>Setup script</dt><dd>{}</dd></div></dl>",
        code_list(&rc.env_vars),
        code_list(&rc.secret_env_vars),
        code_list(&kinds),
        code_list(rc.setup_script.as_slice()),
        id = escape(id),
    )
}

/// One sentence per kind the repository's config names, saying what came of its entry.
fn credential_notes(p: &t::ResolutionPreview, rc: &t::RepoConfigApplied) -> Vec<String> {
    rc.agent_credentials
        .iter()
        .map(|kind| {
            let entry = p.resolved_agent_credentials.iter().find(|r| r.kind == *kind);
            match entry {
                Some(r) if r.source == ResolutionSource::RepoConfig => format!(
                    "{kind}: <code>{}</code> ({}), chosen by the repository's .amika/config.toml.",
                    escape(&r.name),
                    escape(&r.credential_type)
                ),
                Some(r)
                    if r.outcome == ResolutionOutcome::Skipped && r.reason == REASON_REPO_NONE =>
                {
                    format!("{kind}: no credential, as the repository's .amika/config.toml says (none = true).")
                }
                _ => format!(
                    "{kind}: your choice on this page comes first; the repository's entry is not used."
                ),
            }
        })
        .collect()
}

fn setup_note(d: &WorkspaceDraft, rc: Option<&t::RepoConfigApplied>) -> Option<String> {
    let repo_script = rc.and_then(|rc| rc.setup_script.as_deref());
    let has_text = !d.setup_script.trim().is_empty();
    if d.skip_setup && (has_text || repo_script.is_some()) {
        return Some("Setup: no script runs (skip is checked).".into());
    }
    match (has_text, repo_script) {
        (true, Some(path)) => Some(format!(
            "Setup: your script runs before the sandbox is ready, instead of the repository's <code>{}</code>.",
            escape(path)
        )),
        (true, None) => Some("Setup: your script runs before the sandbox is ready.".into()),
        (false, Some(path)) => Some(format!(
            "Setup: the repository's <code>{}</code> runs in its directory before the sandbox is ready.",
            escape(path)
        )),
        (false, None) => None,
    }
}

/// The preview's part about the repository: what its `.amika/config.toml` contributes, what
/// came of its credential entries, and which setup script runs.
pub(super) fn preview_part(d: &WorkspaceDraft, p: &t::ResolutionPreview) -> String {
    let mut out = String::new();
    let mut notes = Vec::new();
    match &p.repo_config {
        Some(rc) => {
            out.push_str("<h3>From the repository's .amika/config.toml</h3>");
            out.push_str(&repo_config_facts("preview-repo-config", rc));
            notes.extend(credential_notes(p, rc));
        }
        None if !d.repo_url.is_empty() => out.push_str(
            "<h3>From the repository</h3><p class=\"empty\" id=\"preview-repo-config\">The repository has no .amika/config.toml: it adds nothing.</p>",
        ),
        None => {}
    }
    notes.extend(setup_note(d, p.repo_config.as_ref()));
    if !notes.is_empty() {
        let items: String = notes.iter().map(|n| format!("<li>{n}</li>")).collect();
        out.push_str(&format!(
            "<ul class=\"notes\" id=\"preview-notes\">{items}</ul>"
        ));
    }
    out
}

// ------------------------------------------------------------------ the sandbox page

fn fact(label: &str, id: &str, value: &str) -> String {
    format!(
        "<div><dt>{}</dt><dd id=\"{}\">{value}</dd></div>",
        escape(label),
        escape(id)
    )
}

/// Size and idle intervals, for the sandbox's overview.
pub(super) fn lifetime_facts(s: &t::Sandbox) -> String {
    let after = |m: Option<f64>| match m {
        Some(m) => format!("after {} min idle", show_minutes(m)),
        None => "never".into(),
    };
    format!(
        "{}{}{}",
        fact(
            "Size",
            "sandbox-size",
            &s.size
                .map_or("<span class=\"muted\">—</span>".into(), |z| escape(
                    &size_label(z)
                ))
        ),
        fact(
            "Auto-stop",
            "sandbox-auto-stop",
            &escape(&after(s.auto_stop_interval))
        ),
        fact(
            "Auto-delete",
            "sandbox-auto-delete",
            &escape(&after(s.auto_delete_interval))
        ),
    )
}

fn workspace_card(s: &t::Sandbox) -> String {
    let Some(repo_name) = &s.repo_name else {
        return "<section class=\"card\" aria-labelledby=\"workspace-title\"><h2 id=\"workspace-title\">Workspace</h2>\
<p class=\"empty\">No repository: the workspace started empty.</p></section>"
            .into();
    };
    let code = |v: &str| format!("<code>{}</code>", escape(v));
    let dash = "<span class=\"muted\">—</span>".to_string();
    let repo = s.repo_url.as_deref().map_or(dash.clone(), code);
    let branch = s
        .branch
        .as_deref()
        .map_or("<span class=\"muted\">detached</span>".into(), code);
    let commit = s.commit_hash.as_deref().map_or(dash, |c| {
        format!(
            "<code title=\"{}\">{}</code>",
            escape(c),
            escape(&c.chars().take(12).collect::<String>())
        )
    });
    let config = match &s.repo_config {
        Some(rc) => repo_config_facts("sandbox-repo-config", rc),
        None => "<p class=\"empty\" id=\"sandbox-repo-config\">The repository has no .amika/config.toml.</p>".into(),
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"workspace-title\"><h2 id=\"workspace-title\">Workspace</h2><dl class=\"facts\">{}{}{}{}</dl>\
<h3>Applied from .amika/config.toml</h3>{config}</section>",
        fact("Repository", "sandbox-repo", &repo),
        fact(
            "Directory",
            "sandbox-dir",
            &code(&format!("~/workspace/{repo_name}"))
        ),
        fact("Branch", "sandbox-branch", &branch),
        fact("Commit", "sandbox-commit", &commit),
    )
}

fn env_card(s: &t::Sandbox) -> String {
    let from_repo = |k: &String| {
        s.repo_config
            .as_ref()
            .is_some_and(|rc| rc.env_vars.contains(k))
    };
    let rows: Vec<Vec<String>> = s
        .env_vars
        .iter()
        .map(|(k, v)| {
            vec![
                format!("<code>{}</code>", escape(k)),
                format!("<code>{}</code>", escape(v)),
                if from_repo(k) {
                    ".amika/config.toml".into()
                } else {
                    "request".into()
                },
            ]
        })
        .collect();
    format!(
        "<section class=\"card\" aria-labelledby=\"plain-env-title\"><h2 id=\"plain-env-title\">Plain environment variables</h2>{}</section>",
        html::table(
            "Plain environment variables",
            &["Name", "Value", "From"],
            &rows,
            "None: only secrets and credentials were injected."
        )
    )
}

/// The setup log as text: output escaped (already redacted by the service), stderr marked,
/// the exit status and errors as notes.
fn log_html(frames: &[t::ExecFrame]) -> String {
    frames
        .iter()
        .map(|f| match f {
            t::ExecFrame::Stdout { data } => escape(data),
            t::ExecFrame::Stderr { data } => {
                format!("<span class=\"stderr\">{}</span>", escape(data))
            }
            t::ExecFrame::Exit { code } => {
                format!("<span class=\"log-note\">[exit {code}]</span>\n")
            }
            t::ExecFrame::Error { message } => {
                format!("<span class=\"log-note\">[{}]</span>\n", escape(message))
            }
        })
        .collect()
}

/// What the setup script has written so far, or why there is nothing to show.
async fn setup_log(svc: &Service, caller: &Caller, id: &str) -> String {
    let mut follow = match svc.setup_log(caller, id, false).await {
        Ok(f) => f,
        Err(ServiceError::NotFound(_)) => {
            return "<p class=\"empty\" id=\"setup-log\">No output was kept.</p>".into()
        }
        Err(e) => {
            return format!(
                "<p class=\"empty\" id=\"setup-log\">The output cannot be read: {}</p>",
                escape(&e.to_string())
            )
        }
    };
    let mut frames = Vec::new();
    while let Some(frame) = follow.next().await {
        frames.push(frame);
    }
    if frames.is_empty() {
        return "<p class=\"empty\" id=\"setup-log\">No output yet.</p>".into();
    }
    format!(
        "<pre class=\"log\" id=\"setup-log\" tabindex=\"0\" aria-label=\"Setup script output\">{}</pre>",
        log_html(&frames)
    )
}

async fn setup_outcome_card(svc: &Service, caller: &Caller, s: &t::Sandbox) -> String {
    let Some(setup) = &s.setup else {
        return String::new();
    };
    let script = match &setup.script {
        Some(path) => format!("the repository's <code>{}</code>", escape(path)),
        None => "given at create".into(),
    };
    let state = format!(
        "<span class=\"badge setup-{s}\">{s}</span>",
        s = escape(setup.state.as_str())
    );
    let dash = || "<span class=\"muted\">—</span>".to_string();
    let log = match setup.state {
        SetupState::Skipped => {
            "<p class=\"empty\" id=\"setup-log\">Skipped: the create asked for no setup script.</p>"
                .into()
        }
        SetupState::Pending => "<p class=\"empty\" id=\"setup-log\">Not started yet.</p>".into(),
        _ => setup_log(svc, caller, &s.id).await,
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"setup-title\"><h2 id=\"setup-title\">Setup script</h2><dl class=\"facts\">{}{}{}{}{}</dl>\
<h3>Output</h3>{log}</section>",
        fact("Script", "setup-script", &script),
        fact("Outcome", "setup-state", &state),
        fact(
            "Exit code",
            "setup-exit",
            &setup.exit_code.map_or_else(dash, |c| c.to_string())
        ),
        fact(
            "Started",
            "setup-started",
            &setup.started_at.as_ref().map_or_else(dash, html::date)
        ),
        fact(
            "Ended",
            "setup-ended",
            &setup.ended_at.as_ref().map_or_else(dash, html::date)
        ),
    )
}

/// The sandbox page's workspace, plain env and setup cards.
pub(super) async fn detail_cards(svc: &Service, caller: &Caller, s: &t::Sandbox) -> String {
    format!(
        "{}{}{}",
        workspace_card(s),
        env_card(s),
        setup_outcome_card(svc, caller, s).await
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_are_key_value_pairs_with_every_bad_line_named() {
        let vars = parse_env_lines("A=1\n\n# a comment\nB= two = 2 \nEMPTY=\n").unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], " two = 2 ", "the value is kept as typed");
        assert_eq!(vars["EMPTY"], "");
        let problems = parse_env_lines("A=1\nno equals\n=x\n1X=y\nA=2\n").unwrap_err();
        assert_eq!(
            problems,
            [
                "line 2: \"no equals\" has no \"=\": write each variable as KEY=VALUE",
                "line 3: there is no name before \"=\": write each variable as KEY=VALUE",
                &format!("line 4: {}", validate::env_var("1X").unwrap_err()),
                "line 5: A is already set on line 1: keep one line per variable",
            ]
        );
    }

    #[test]
    fn the_draft_becomes_the_request_and_bad_fields_are_named() {
        let mut d = WorkspaceDraft {
            repo_url: "https://example.com/org/app.git".into(),
            branch: "main".into(),
            env_text: "NODE_ENV=dev".into(),
            setup_script: "npm ci\n".into(),
            size: "xs".into(),
            auto_stop: "30".into(),
            auto_delete: "-1".into(),
            ..WorkspaceDraft::default()
        };
        let mut req = t::CreateSandboxRequest::default();
        let mut errors = FormErrors::default();
        d.apply(&mut req, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            req.repo_url.as_deref(),
            Some("https://example.com/org/app.git")
        );
        assert_eq!(req.branch.as_deref(), Some("main"));
        assert_eq!(req.new_branch_name, None, "empty fields ask for nothing");
        assert_eq!(req.env_vars["NODE_ENV"], "dev");
        assert_eq!(req.setup_script_text.as_deref(), Some("npm ci\n"));
        assert_eq!(req.size, Some(SandboxSize::Xs));
        assert_eq!(req.auto_stop_interval, Some(30.0));
        assert_eq!(req.auto_delete_interval, Some(-1.0));

        d.size = "huge".into();
        d.auto_stop = "soon".into();
        d.env_text = "oops".into();
        d.setup_script = "  \n".into();
        let mut req = t::CreateSandboxRequest::default();
        let mut errors = FormErrors::default();
        d.apply(&mut req, &mut errors);
        assert!(errors.get(SIZE).unwrap().contains("unknown size \"huge\""));
        assert!(errors
            .get(AUTO_STOP)
            .unwrap()
            .contains("\"soon\" is not a number of minutes"));
        assert!(errors.get(ENV_VARS).unwrap().starts_with("line 1:"));
        assert_eq!(req.setup_script_text, None, "a blank script is none");
    }

    #[test]
    fn request_fields_map_to_their_inputs() {
        for (path, input) in [
            ("repo_url", REPO_URL),
            (".amika/config.toml", REPO_URL),
            ("branch", BRANCH),
            ("new_branch_name", NEW_BRANCH),
            ("git_credential", GIT_CREDENTIAL),
            ("env_vars.NODE_ENV", ENV_VARS),
            ("setup_script_text", SETUP_SCRIPT),
            ("size", SIZE),
            ("auto_stop_interval", AUTO_STOP),
            ("auto_delete_interval", AUTO_DELETE),
        ] {
            assert_eq!(WorkspaceDraft::input_for(path), Some(input), "{path}");
        }
        assert_eq!(WorkspaceDraft::input_for("name"), None);
        assert_eq!(WorkspaceDraft::input_for("secret_env_vars.X"), None);
    }

    #[test]
    fn setup_logs_are_escaped_with_stderr_and_exit_marked() {
        let html = log_html(&[
            t::ExecFrame::Stdout {
                data: "<b>out</b>\n".into(),
            },
            t::ExecFrame::Stderr {
                data: "err & co\n".into(),
            },
            t::ExecFrame::Exit { code: 3 },
        ]);
        assert_eq!(
            html,
            "&lt;b&gt;out&lt;/b&gt;\n<span class=\"stderr\">err &amp; co\n</span><span class=\"log-note\">[exit 3]</span>\n"
        );
    }
}
