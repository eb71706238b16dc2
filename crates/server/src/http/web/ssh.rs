//! SSH access from the sandbox's page: the "SSH access" card (when the server runs its SSH
//! endpoint), a one-hour token minted on request and shown once as the `ssh` command to copy,
//! with its expiry, and revoked from the same page; plus the token-free command for users who
//! registered a public key (`amika secret ssh-key push`).

use amika_types::{self as t, SandboxState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::html::{self, escape, Nav};
use super::sandboxes::sandbox_href;
use super::{error_in_page, html_response, see_other, WebForm, WebSession};
use crate::http::auth::ApiPath;
use crate::service::sandboxes::ssh_access::dest_host;
use crate::service::Service;

/// The card on a sandbox's page; empty when the server has no SSH endpoint.
pub(super) async fn ssh_card(svc: &Service, session: &WebSession, s: &t::Sandbox) -> String {
    let Some(endpoint) = svc.ssh().endpoint() else {
        return String::new();
    };
    let body = if s.state == SandboxState::Running {
        let keys = svc
            .list_ssh_public_keys(&session.caller)
            .await
            .unwrap_or_default();
        let with_key = if keys.is_empty() {
            "<p class=\"hint\">Or register your public key once (<code>amika secret ssh-key push</code>) and log in without a token.</p>".to_string()
        } else {
            format!(
                "<p>With your registered key ({}):</p><pre class=\"log\" id=\"ssh-key-command\"><code>ssh -p {} {}@{}</code></pre>",
                escape(&keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")),
                endpoint.addr.port(),
                escape(&s.name),
                escape(&dest_host(endpoint)),
            )
        };
        format!(
            "<p>A command that opens a shell in this sandbox, with a token valid for one hour.</p>\
<form method=\"post\" action=\"{href}/ssh\">{csrf}<button type=\"submit\" class=\"button ghost\" id=\"ssh-mint\">Get an SSH command</button></form>{with_key}",
            href = sandbox_href(s),
            csrf = html::csrf_field(&session.csrf),
        )
    } else {
        "<p class=\"hint\">SSH needs the sandbox running: start it first.</p>".to_string()
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"ssh-title\"><h2 id=\"ssh-title\">SSH access</h2>{body}\
<p class=\"hint\">Host key <code>{}</code></p></section>",
        escape(&endpoint.fingerprint)
    )
}

/// `POST /sandboxes/{name}/ssh`: mint a token and show the command, once (the page is not
/// cached, and only the token's hash is kept).
pub async fn mint(
    State(svc): State<Service>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let minted = async {
        let s = svc.get_sandbox(&session.caller, &name).await?;
        let access = svc
            .create_ssh_access(&session.caller, &s.id, t::SshAccessRequest::default())
            .await?;
        Ok((s, access))
    };
    let (s, access) = match minted.await {
        Ok(minted) => minted,
        Err(e) => return error_in_page(&session, e),
    };
    let minutes = (access.expires_at - Utc::now()).num_minutes().max(0);
    let href = sandbox_href(&s);
    let body = format!(
        "<div class=\"page-head\"><p class=\"crumb\"><a href=\"/sandboxes\">Sandboxes</a> / <a href=\"{href}\">{name}</a> /</p><h1>SSH command</h1></div>\
<section class=\"card\" aria-labelledby=\"ssh-command-title\"><h2 id=\"ssh-command-title\">Open a shell in {name}</h2>\
<p>Run this in a terminal. It is shown once: copy it now.</p>\
<pre class=\"log\" id=\"ssh-command\"><code>ssh {dest}</code></pre>\
<p id=\"ssh-expiry\">Valid until {expires} (in {minutes} minutes), or until you revoke it.</p>\
<p class=\"hint\">The server's host key is <code>{fingerprint}</code>; <code>ssh</code> asks you to confirm it the first time.</p>\
<form method=\"post\" action=\"{href}/ssh/revoke\">{csrf}<input type=\"hidden\" name=\"token\" value=\"{token}\">\
<p class=\"actions\"><button type=\"submit\" class=\"button danger\" id=\"ssh-revoke\">Revoke now</button><a class=\"button ghost\" href=\"{href}\">Back to the sandbox</a></p></form></section>",
        name = escape(&s.name),
        dest = escape(&access.ssh_destination),
        expires = html::date(&access.expires_at),
        fingerprint = escape(&access.host_key_fingerprint),
        csrf = html::csrf_field(&session.csrf),
        token = escape(&access.token),
    );
    html_response(
        StatusCode::OK,
        html::page("SSH command", &session.chrome(Nav::Sandboxes), &body, None),
    )
}

/// `POST /sandboxes/{name}/ssh/revoke`: revoke the token the command page showed.
pub async fn revoke(
    State(svc): State<Service>,
    ApiPath(name): ApiPath<String>,
    form: WebForm,
) -> Response {
    let session = form.session;
    let req = t::RevokeSshRequest {
        token: form.fields.get("token").to_string(),
    };
    let revoked = async {
        let s = svc.get_sandbox(&session.caller, &name).await?;
        svc.revoke_ssh_access(&session.caller, &s.id, req).await?;
        Ok(s)
    };
    match revoked.await {
        Ok(s) => {
            session.flash("The SSH command was revoked: it logs in no more.");
            see_other(&sandbox_href(&s))
        }
        Err(e) => error_in_page(&session, e),
    }
}
