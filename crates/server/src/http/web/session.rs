//! Sign-in, sessions and cross-site request protection.
//!
//! Sessions: signing in with an API key creates a random session id (256 bits) sent in the
//! cookie `amika_session` (`HttpOnly; SameSite=Strict; Path=/`, plus `Secure` when the request
//! came over TLS — a TLS-terminating proxy says so with `X-Forwarded-Proto: https`). The server
//! keeps sessions in memory only, keyed by a SHA-256 of the id, holding the caller (never the API
//! key) and an absolute expiry of [`SESSION_TTL`]; a restart signs everyone out. Every request
//! also checks that the API key used to sign in still exists, so deleting a key ends its sessions.
//!
//! Cross-site requests: the cookie is `SameSite=Strict`, every POST form carries the session's
//! CSRF token (checked by [`super::WebForm`], 403 otherwise), and a request the browser labels
//! `Sec-Fetch-Site: cross-site` is refused outright. The sign-in form, which has no session yet,
//! uses a double-submit token in a short-lived `amika_login` cookie.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::form::read_form;
use super::html::{self, escape};
use super::{error_page, html_response, see_other};
use crate::service::{Caller, Service, ServiceError};

/// How long a session lasts after sign-in, whatever the activity.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// How long a sign-in form stays usable.
const LOGIN_TTL_SECS: u32 = 60 * 60;

pub const SESSION_COOKIE: &str = "amika_session";
pub const LOGIN_COOKIE: &str = "amika_login";

struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
    /// A one-time notice for the next page (e.g. "Secret X added.").
    flash: Option<String>,
}

/// Server-side sessions, in memory.
#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.by_hash.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("Sessions").field("count", &n).finish()
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn session_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Compare tokens without an early exit on the first differing byte.
pub(super) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `caller`; returns its id (for the cookie only).
    fn create(&self, caller: Caller) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        map.insert(
            session_hash(&id),
            Session {
                caller,
                csrf: random_token(),
                expires: now + SESSION_TTL,
                flash: None,
            },
        );
        id
    }

    fn remove(&self, hash: &str) {
        self.lock().remove(hash);
    }

    fn set_flash(&self, hash: &str, message: String) {
        if let Some(s) = self.lock().get_mut(hash) {
            s.flash = Some(message);
        }
    }
}

/// The value of cookie `name` in the request, if any.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request reached us over TLS (directly, or via a proxy that says so).
fn is_tls(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with the attributes every amika cookie gets.
pub fn cookie_header(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

fn sessions_of(parts: &Parts) -> Arc<Sessions> {
    parts
        .extensions
        .get::<Arc<Sessions>>()
        .cloned()
        .expect("web routes carry the session store")
}

/// The signed-in user of a UI request. Without a valid session, pages redirect to `/login`.
pub struct WebSession {
    pub caller: Caller,
    pub csrf: String,
    /// The notice left by the previous request, taken (shown once).
    pub flash: Option<String>,
    hash: String,
    sessions: Arc<Sessions>,
}

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("user", &self.caller.user_name)
            .finish_non_exhaustive()
    }
}

impl WebSession {
    /// Leave a notice for the next page this session loads.
    pub fn flash(&self, message: impl Into<String>) {
        self.sessions.set_flash(&self.hash, message.into());
    }

    pub fn chrome(&self, nav: html::Nav) -> html::Chrome<'_> {
        html::Chrome {
            user_name: &self.caller.user_name,
            csrf: &self.csrf,
            nav,
            flash: self.flash.clone(),
        }
    }
}

/// Where to send a request that has no valid session.
fn to_login(parts: &Parts) -> Response {
    let path = parts.uri.path();
    if parts.method == Method::GET && path != "/" && safe_next(path) {
        Redirect::to(&format!(
            "/login?next={}",
            super::html::percent_encode(path, b"/")
        ))
        .into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<Service> for WebSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &Service) -> Result<Self, Response> {
        let sessions = sessions_of(parts);
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login(parts));
        };
        let hash = session_hash(id);
        let found = {
            let mut map = sessions.lock();
            match map.get_mut(&hash) {
                Some(s) if s.expires > Instant::now() => {
                    Some((s.caller.clone(), s.csrf.clone(), s.flash.take()))
                }
                Some(_) => {
                    map.remove(&hash);
                    None
                }
                None => None,
            }
        };
        let Some((caller, csrf, flash)) = found else {
            return Err(to_login(parts));
        };
        // The key that opened the session must still exist: deleting a key signs it out.
        match svc.list_api_keys(&caller).await {
            Ok(keys) if keys.data.iter().any(|k| k.id == caller.api_key_id) => {}
            Ok(_) => {
                sessions.remove(&hash);
                return Err(to_login(parts));
            }
            Err(e) => return Err(error_page(e)),
        }
        Ok(WebSession {
            caller,
            csrf,
            flash,
            hash,
            sessions,
        })
    }
}

pub(super) fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
}

pub(super) fn forbidden_form() -> Response {
    let body = html::bare_page(
        "Request refused",
        "<h1>Request refused</h1><p>This form was not sent from an amika page of your current session \
(its security token is missing or out of date). Go back, reload the page and try again.</p>\
<p><a class=\"button\" href=\"/sandboxes\">Back to amika</a></p>",
    );
    html_response(StatusCode::FORBIDDEN, body)
}

// ------------------------------------------------------------------ sign in / out

/// A `next` target is a local path: starts with one `/`, no scheme, no `//` or `\` tricks.
fn safe_next(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 512
        && next
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

fn login_form(token: &str, next: &str, error: Option<&str>, notice: Option<&str>) -> String {
    let notice = notice.map_or(String::new(), |n| {
        format!("<div class=\"notice\" role=\"status\">{}</div>", escape(n))
    });
    let key = html::Input {
        id: "api_key",
        name: "api_key",
        label: "API key",
        kind: "password",
        // Never echoed back.
        value: "",
        hint: Some("Starts with amk_. The first admin's key is in DATA_DIR/admin-api-key."),
        error,
        required: true,
        autofocus: true,
        extra: "autocomplete=\"current-password\" spellcheck=\"false\"",
    }
    .render();
    html::bare_page(
        "Sign in",
        &format!(
            "<section class=\"card\"><h1>Sign in</h1>{notice}\
<form method=\"post\" action=\"/login\" class=\"stack\">\
<input type=\"hidden\" name=\"_csrf\" value=\"{}\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
{key}<button type=\"submit\" class=\"button primary\">Sign in</button></form></section>",
            escape(token),
            escape(next)
        ),
    )
}

/// The sign-in page, with a fresh double-submit token.
fn login_response(
    status: StatusCode,
    secure: bool,
    next: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let token = random_token();
    let mut resp = html_response(status, login_form(&token, next, error, notice));
    if let Ok(v) = HeaderValue::from_str(&cookie_header(
        LOGIN_COOKIE,
        &token,
        "/login",
        LOGIN_TTL_SECS.into(),
        secure,
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub(super) async fn login_page(
    State(svc): State<Service>,
    Query(q): Query<LoginQuery>,
    req: Request,
) -> Response {
    let (mut parts, _) = req.into_parts();
    if WebSession::from_request_parts(&mut parts, &svc)
        .await
        .is_ok()
    {
        return see_other("/sandboxes");
    }
    let next = q.next.filter(|n| safe_next(n)).unwrap_or_default();
    let notice = q.signed_out.map(|_| "You are signed out.");
    login_response(StatusCode::OK, is_tls(&parts), &next, None, notice)
}

pub(super) async fn login(State(svc): State<Service>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let secure = is_tls(&parts);
    if cross_site(&parts.headers) {
        return forbidden_form();
    }
    let expected = cookie(&parts.headers, LOGIN_COOKIE).map(str::to_string);
    let sessions = sessions_of(&parts);
    let old = cookie(&parts.headers, SESSION_COOKIE).map(session_hash);
    let fields = match read_form(Request::from_parts(parts, Body::new(body))).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let next = Some(fields.get("next"))
        .filter(|n| safe_next(n))
        .unwrap_or("/sandboxes")
        .to_string();
    // Without a session there is no session token yet: the form's token must match the one
    // in the cookie that only a page of this server could have set.
    let token_ok = expected.is_some_and(|t| same_token(&t, fields.get("_csrf")));
    if !token_ok {
        return login_response(
            StatusCode::FORBIDDEN,
            secure,
            &next,
            Some("This sign-in form expired or was not sent from this site: enter the key again."),
            None,
        );
    }
    let key = fields.get("api_key").trim();
    if key.is_empty() {
        return login_response(
            StatusCode::BAD_REQUEST,
            secure,
            &next,
            Some("Enter an API key (it starts with amk_)."),
            None,
        );
    }
    match svc.authenticate(key).await {
        Ok(caller) => {
            if let Some(old) = old {
                sessions.remove(&old);
            }
            let id = sessions.create(caller);
            let mut resp = see_other(&next);
            let h = resp.headers_mut();
            for c in [
                cookie_header(SESSION_COOKIE, &id, "/", SESSION_TTL.as_secs(), secure),
                cookie_header(LOGIN_COOKIE, "", "/login", 0, secure),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(ServiceError::Unauthorized) => login_response(
            StatusCode::UNAUTHORIZED,
            secure,
            &next,
            Some("This API key was not accepted: check that it is complete and not deleted."),
            None,
        ),
        Err(e) => error_page(e),
    }
}

pub(super) async fn logout(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let secure = is_tls(&parts);
    if cross_site(&parts.headers) {
        return forbidden_form();
    }
    let sessions = sessions_of(&parts);
    let Some(hash) = cookie(&parts.headers, SESSION_COOKIE).map(session_hash) else {
        return see_other("/login");
    };
    let csrf = sessions.lock().get(&hash).map(|s| s.csrf.clone());
    let fields = match read_form(Request::from_parts(parts, body)).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    match csrf {
        Some(t) if same_token(&t, fields.get("_csrf")) => sessions.remove(&hash),
        // An unknown or expired session is signed out already.
        None => {}
        Some(_) => return forbidden_form(),
    }
    let mut resp = see_other("/login?signed_out=1");
    if let Ok(v) = HeaderValue::from_str(&cookie_header(SESSION_COOKIE, "", "/", 0, secure)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_strict_and_secure_only_over_tls() {
        let c = cookie_header(SESSION_COOKIE, "abc", "/", 43200, false);
        assert_eq!(
            c,
            "amika_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"
        );
        assert!(cookie_header(SESSION_COOKIE, "abc", "/", 1, true).ends_with("; Secure"));
    }

    #[test]
    fn tls_is_detected_from_the_forwarded_proto() {
        let req = |proto: Option<&str>| {
            let mut b = axum::http::Request::builder().uri("/login");
            if let Some(p) = proto {
                b = b.header("x-forwarded-proto", p);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert!(!is_tls(&req(None)));
        assert!(!is_tls(&req(Some("http"))));
        assert!(is_tls(&req(Some("https"))));
        assert!(is_tls(&req(Some("HTTPS, http"))));
    }

    #[test]
    fn next_targets_stay_on_this_site() {
        assert!(safe_next("/secrets"));
        assert!(safe_next("/sandboxes/dev-box"));
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "",
            "secrets",
            "/a?b",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "x"));
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }

    #[test]
    fn cookie_values_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; amika_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "amika"), None);
    }
}
