//! The web UI through the real router (real store, vault and provider on a temp dir), driven
//! in-process with `oneshot`: sign-in and its cookies, CSRF refusals, escaping, errors placed
//! next to their fields, and values that are never echoed back.
//!
//! The harness ([`Ui`], [`Answer`], [`form`]) is shared with the other pages' flow tests
//! (`presets_flow_tests`).

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{http::router, open, ServerConfig, Service};
use amika_types as t;

pub(super) struct Ui {
    pub(super) router: Router,
    pub(super) service: Service,
    pub(super) admin_key: String,
    _dir: tempfile::TempDir,
}

pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: String,
}

impl Answer {
    pub(super) fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
    /// The CSRF token of the first form on the page.
    pub(super) fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("page has a CSRF field")
            + "name=\"_csrf\" value=\"".len();
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

/// `a=1&b=2` with each part percent-encoded.
pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| super::html::percent_encode(s, b"");
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Ui {
    pub(super) async fn new() -> Ui {
        Ui::with(|_| {}).await
    }

    /// A UI on a server whose config `configure` adjusts first (e.g. its presets dir).
    pub(super) async fn with(configure: impl FnOnce(&mut ServerConfig)) -> Ui {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
        configure(&mut config);
        let opened = open(config).await.expect("server opens");
        Ui {
            router: router(opened.service.clone()),
            service: opened.service,
            admin_key: opened.first_admin_key.unwrap().to_string(),
            _dir: dir,
        }
    }

    pub(super) async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(super) async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    pub(super) async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::from(form(fields))).unwrap()).await
    }

    /// Sign in with `key`; returns the `Cookie` header value of the session.
    pub(super) async fn sign_in(&self, key: &str) -> String {
        let page = self.get("/login", None).await;
        let login_cookie = cookie_pair(&page.set_cookies(), super::LOGIN_COOKIE);
        let token = page.csrf();
        let a = self
            .post(
                "/login",
                Some(&login_cookie),
                &[("_csrf", &token), ("api_key", key), ("next", "")],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        cookie_pair(&a.set_cookies(), super::SESSION_COOKIE)
    }

    pub(super) async fn caller(&self) -> crate::service::Caller {
        self.service.authenticate(&self.admin_key).await.unwrap()
    }
}

/// `name=value` of the cookie `name` among `Set-Cookie` values.
/// A member (not an admin) of the admin's org named `dev`: their API key and, signed in, their
/// session cookie.
pub(super) async fn member(ui: &Ui) -> (zeroize::Zeroizing<String>, String) {
    let caller = ui.caller().await;
    let (_, key) = ui
        .service
        .create_user(
            &caller,
            t::CreateUserRequest {
                name: "dev".into(),
                org: "default".into(),
                is_admin: false,
            },
        )
        .await
        .unwrap();
    let cookie = ui.sign_in(&key).await;
    (key, cookie)
}

fn cookie_pair(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_cookie_without_the_key() {
    let ui = Ui::new().await;
    let page = ui.get("/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<label for=\"api_key\">API key</label>"));
    assert!(page.body.contains("type=\"password\""));
    let login_cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("amika_login="))
        .unwrap();
    assert!(
        login_cookie.contains("; HttpOnly; SameSite=Strict"),
        "{login_cookie}"
    );

    let token = page.csrf();
    let pair = cookie_pair(&page.set_cookies(), super::LOGIN_COOKIE);
    let a = ui
        .post(
            "/login",
            Some(&pair),
            &[
                ("_csrf", &token),
                ("api_key", &ui.admin_key),
                ("next", "/secrets"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location(), "/secrets");
    let session = a
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("amika_session="))
        .unwrap();
    assert!(
        session.ends_with("; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain HTTP: no Secure");
    assert!(
        !session.contains(&ui.admin_key[4..20]),
        "the key never goes into the cookie"
    );
    let id = session.split(';').next().unwrap()["amika_session=".len()..].to_string();
    assert_eq!(id.len(), 43, "256 random bits");

    // Over TLS (as a proxy reports it) the cookie is Secure.
    let page = ui.get("/login", None).await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .header(
            header::COOKIE,
            cookie_pair(&page.set_cookies(), super::LOGIN_COOKIE),
        )
        .body(Body::from(form(&[
            ("_csrf", &page.csrf()),
            ("api_key", &ui.admin_key),
        ])))
        .unwrap();
    let a = ui.send(req).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let session = a
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("amika_session="))
        .unwrap();
    assert!(session.ends_with("; Secure"), "{session}");
}

#[tokio::test]
async fn sign_in_refuses_a_wrong_key_and_a_form_from_elsewhere() {
    let ui = Ui::new().await;
    let page = ui.get("/login", None).await;
    let pair = cookie_pair(&page.set_cookies(), super::LOGIN_COOKIE);
    let token = page.csrf();

    let wrong = ui
        .post(
            "/login",
            Some(&pair),
            &[("_csrf", &token), ("api_key", "amk_nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("This API key was not accepted"));
    assert!(
        !wrong.body.contains("amk_nope"),
        "the typed key is not echoed"
    );
    assert!(wrong
        .set_cookies()
        .iter()
        .all(|c| !c.starts_with("amika_session=")));

    // A cross-site form has no login cookie (SameSite=Strict) and cannot know the token.
    let no_cookie = ui
        .post(
            "/login",
            None,
            &[("_csrf", &token), ("api_key", &ui.admin_key)],
        )
        .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    let wrong_token = ui
        .post(
            "/login",
            Some(&pair),
            &[("_csrf", "forged"), ("api_key", &ui.admin_key)],
        )
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    for a in [&no_cookie, &wrong_token] {
        assert!(a
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("amika_session=")));
    }
}

#[tokio::test]
async fn pages_need_a_session_and_carry_the_security_headers() {
    let ui = Ui::new().await;
    for path in ["/sandboxes", "/secrets", "/sandboxes/new", "/sandboxes/x"] {
        let a = ui.get(path, None).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(a.location(), format!("/login?next={path}"));
    }
    let a = ui.get("/secrets", Some("amika_session=made-up")).await;
    assert_eq!(a.location(), "/login?next=/secrets");
    let a = ui.get("/", None).await;
    assert_eq!(a.location(), "/sandboxes");

    let cookie = ui.sign_in(&ui.admin_key).await;
    for path in [
        "/sandboxes",
        "/secrets",
        "/sandboxes/new",
        "/login",
        "/static/app.css",
        "/static/app.js",
    ] {
        let a = ui.get(path, Some(&cookie)).await;
        let csp = a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.starts_with("default-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(a.headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        if path.starts_with("/static") {
            assert_eq!(a.status, StatusCode::OK);
        } else if path == "/login" {
            assert_eq!(a.location(), "/sandboxes", "signed in already");
        } else {
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
            assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
            // Nothing on a page comes from another host.
            assert!(
                !a.body.contains("http://") && !a.body.contains("https://"),
                "{path}"
            );
        }
    }
    assert!(
        ui.get("/static/app.js", None).await.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );

    // The API and the meta routes are untouched; unknown paths keep the JSON envelope.
    assert_eq!(ui.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(ui.get("/openapi.json", None).await.status, StatusCode::OK);
    let api = ui.get("/api/v0beta1/me", Some(&cookie)).await;
    assert_eq!(
        api.status,
        StatusCode::UNAUTHORIZED,
        "a session cookie is no API credential"
    );
    let unknown = ui.get("/nowhere", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("\"code\":\"not_found\""));
}

#[tokio::test]
async fn posts_without_the_session_csrf_token_are_refused_and_change_nothing() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/secrets", Some(&cookie)).await.csrf();
    let fields = |csrf: &'static str| {
        vec![
            ("_csrf", csrf),
            ("name", "DATABASE_URL"),
            ("value", "postgres://u:pw@db/x"),
            ("scope", "user"),
        ]
    };
    let missing = ui.post("/secrets", Some(&cookie), &fields("")[1..]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let forged = ui.post("/secrets", Some(&cookie), &fields("forged")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Another session's token does not fit this session.
    let other = ui.sign_in(&ui.admin_key).await;
    let other_token = ui.get("/secrets", Some(&other)).await.csrf();
    assert_ne!(other_token, token);
    let mut f = fields("");
    f[0].1 = &other_token;
    assert_eq!(
        ui.post("/secrets", Some(&cookie), &f).await.status,
        StatusCode::FORBIDDEN
    );
    // The browser says the form came from another site: refused even with the right token.
    let mut f = fields("");
    f[0].1 = &token;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/secrets")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(form(&f)))
        .unwrap();
    assert_eq!(ui.send(req).await.status, StatusCode::FORBIDDEN);
    // Sign-out needs the token too.
    assert_eq!(
        ui.post("/logout", Some(&cookie), &[("_csrf", "forged")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let caller = ui.caller().await;
    assert!(ui.service.list_secrets(&caller).await.unwrap().is_empty());

    // With the token, the same form works.
    let ok = ui.post("/secrets", Some(&cookie), &f).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ui.service.list_secrets(&caller).await.unwrap().len(), 1);
    let page = ui.get("/secrets", Some(&cookie)).await;
    assert!(page
        .body
        .contains("Secret DATABASE_URL added (user scope)."));
    assert!(!page.body.contains("pw@db"), "values are never shown");
}

#[tokio::test]
async fn user_text_is_escaped_on_every_page() {
    let ui = Ui::new().await;
    let caller = ui.caller().await;
    ui.service
        .create_secret(
            &caller,
            t::CreateSecretRequest {
                name: "API_TOKEN".into(),
                value: "v".into(),
                scope: None,
                description: Some("<script>alert('x')</script> & \"quoted\"".into()),
            },
        )
        .await
        .unwrap();
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/secrets", Some(&cookie)).await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(page
        .body
        .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"));

    // A hostile sandbox name comes back in the name field and in the error, escaped both times.
    let token = page.csrf();
    let evil = "<script>alert(1)</script>";
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("action", "create"),
                ("name", evil),
                ("env", "\"><img src=x>"),
                ("secret", "API_TOKEN"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.body.contains("<script>alert(1)"), "{}", a.body);
    assert!(!a.body.contains("<img src=x>"));
    assert!(a
        .body
        .contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
    assert!(a
        .body
        .contains("invalid sandbox name &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
}

#[tokio::test]
async fn secret_values_are_never_echoed_back_into_a_form() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/secrets", Some(&cookie)).await.csrf();
    let value = "sup3r-s3cret-value-1234";
    let a = ui
        .post(
            "/secrets",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("name", "bad name"),
                ("description", "kept description"),
                ("value", value),
                ("scope", "org"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.body.contains(value), "the value is not written back");
    assert!(a
        .body
        .contains("id=\"secret-name-error\">invalid secret name"));
    assert!(a.body.contains("value=\"bad name\""));
    assert!(a.body.contains("value=\"kept description\""));
    assert!(a.body.contains("<option value=\"org\" selected>"));
    assert!(a.body.contains("enter it again"));

    // A credential whose OAuth JSON does not parse: error next to the value, nothing echoed.
    let json = "{\"claudeAiOauth\": {\"accessToken\": \"sk-ant-oat-secret\"";
    let a = ui
        .post(
            "/credentials",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("kind", "claude"),
                ("name", "personal-oauth"),
                ("type", "oauth"),
                ("scope", "user"),
                ("is_default", "true"),
                ("value", ""),
                ("value_json", json),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.body.contains("sk-ant-oat-secret"));
    assert!(a.body.contains("id=\"cred-value-error\""));
    assert!(a.body.contains("claude oauth value is not valid JSON"));
    assert!(a.body.contains("value=\"personal-oauth\""));
    assert!(a
        .body
        .contains("id=\"cred-default\" name=\"is_default\" value=\"true\" checked"));

    // A duplicate name lands on the name field.
    let ok = ui
        .post(
            "/credentials",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("kind", "claude"),
                ("name", "work-key"),
                ("type", "api_key"),
                ("value", "sk-ant-api-1"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let dup = ui
        .post(
            "/credentials",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("kind", "claude"),
                ("name", "work-key"),
                ("type", "api_key"),
                ("value", "sk-ant-api-2"),
            ],
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.body.contains("id=\"cred-name-error\">a user-scoped claude credential named &quot;work-key&quot; already exists"));
    assert!(!dup.body.contains("sk-ant-api-2"));
}

#[tokio::test]
async fn new_sandbox_form_previews_and_places_each_error_next_to_its_field() {
    let ui = Ui::new().await;
    let caller = ui.caller().await;
    ui.service
        .create_credential(
            &caller,
            t::AgentKind::Claude,
            t::CreateCredentialRequest {
                name: "work-key".into(),
                value: "sk-ant-api".into(),
                credential_type: t::CredentialType::ApiKey,
                scope: None,
                is_default: false,
            },
        )
        .await
        .unwrap();
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/new", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    for option in [
        "<option value=\"default\" selected>Default (auto)</option>",
        "<option value=\"name:work-key\">work-key — api_key</option>",
        "<option value=\"type:oauth\">Any oauth</option>",
        "<option value=\"type:api_key\">Any api_key</option>",
        "<option value=\"none\">None</option>",
    ] {
        assert!(page.body.contains(option), "{option}");
    }
    // The defaults are previewed at once: claude's only credential, nothing for codex.
    assert!(page.body.contains("Resolution preview"));
    assert!(page
        .body
        .contains("<span class=\"source\" title=\"user_default\">your default</span>"));
    let token = page.csrf();

    let submit = |action: &'static str, name: &'static str, claude: &'static str| {
        let token = token.clone();
        let cookie = cookie.clone();
        let ui = &ui;
        async move {
            ui.post(
                "/sandboxes/new",
                Some(&cookie),
                &[
                    ("_csrf", &token),
                    ("action", action),
                    ("name", name),
                    ("env", "DB"),
                    ("secret", "DATABASE_URL"),
                    ("agent_claude", claude),
                    ("agent_codex", "none"),
                ],
            )
            .await
        }
    };
    // Unknown secret: next to its row, and everything else kept.
    let a = submit("preview", "dev-box", "name:work-key").await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body
            .contains("id=\"row-0-error\">env var DB: secret &quot;DATABASE_URL&quot; not found"),
        "{}",
        a.body
    );
    assert!(a
        .body
        .contains("id=\"env-0\" name=\"env\" type=\"text\" value=\"DB\""));
    assert!(a
        .body
        .contains("<option value=\"DATABASE_URL\" selected>DATABASE_URL (not found)</option>"));
    assert!(a.body.contains("<option value=\"name:work-key\" selected>"));
    assert!(a.body.contains("value=\"dev-box\""));

    ui.service
        .create_secret(
            &caller,
            t::CreateSecretRequest {
                name: "DATABASE_URL".into(),
                value: "postgres://x".into(),
                scope: None,
                description: None,
            },
        )
        .await
        .unwrap();
    // Pinned credential that is not there: next to claude's select.
    let a = submit("preview", "dev-box", "name:gone").await;
    assert!(a.body.contains("id=\"agent_claude-error\">agent credential for claude: no credential named &quot;gone&quot;"), "{}", a.body);
    assert!(a
        .body
        .contains("<option value=\"name:gone\" selected>gone (not found)</option>"));
    // Type mismatch is impossible from the form's options; "Any oauth" with none stored is not.
    let a = submit("preview", "dev-box", "type:oauth").await;
    assert!(a
        .body
        .contains("id=\"agent_claude-error\">agent credential for claude: no oauth credential"));

    // A good preview: the exact rows the create will store.
    let a = submit("preview", "", "name:work-key").await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "an empty name does not block a preview"
    );
    assert!(a.body.contains("<td data-label=\"Kind\">claude</td><td data-label=\"Outcome\"><span class=\"badge outcome-resolved\">resolved</span></td><td data-label=\"Name\"><code>work-key</code></td><td data-label=\"Type\">api_key</td><td data-label=\"Source\"><span class=\"source\" title=\"request:name\">pinned by name</span></td>"), "{}", a.body);
    assert!(a.body.contains("<td data-label=\"Kind\">codex</td><td data-label=\"Outcome\"><span class=\"badge outcome-skipped\">skipped</span></td>"));
    assert!(a.body.contains("you chose None"));
    assert!(a.body.contains("<li><code>DB</code> <span aria-label=\"from\">←</span> <code>DATABASE_URL</code> <span class=\"muted\">(user scope)</span></li>"), "{}", a.body);

    // Bad name on create: next to the name field; nothing created.
    let a = submit("create", "bad name!", "name:work-key").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a
        .body
        .contains("id=\"name-error\">invalid sandbox name &quot;bad name!&quot;"));
    assert!(a
        .body
        .contains("aria-invalid=\"true\" aria-describedby=\"name-error\" autofocus"));
    assert!(ui.service.list_sandboxes(&caller).await.unwrap().is_empty());
}

/// Was: errors were placed by reading their message, and the one for an env var called
/// "sandbox name" mentions a sandbox name, so it landed on the sandbox's name field.
#[tokio::test]
async fn an_env_var_error_sits_on_its_row_whatever_its_message_mentions() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes/new", Some(&cookie)).await.csrf();
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("action", "create"),
                ("name", "dev-box"),
                ("env", "OK"),
                ("secret", "S"),
                ("env", "sandbox name"),
                ("secret", "S"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .contains("id=\"row-1-error\">invalid env var name &quot;sandbox name&quot;: expected"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("id=\"name-error\""), "{}", a.body);
    // Every error at once: the other row's missing secret too, in plain words.
    assert!(
        a.body.contains("id=\"row-0-error\">env var OK: secret &quot;S&quot; not found (add it on the Secrets page)</p>"),
        "{}",
        a.body
    );
}

/// A create with three bad fields (the name, a missing secret, a pinned credential that is
/// not there): one answer of the service, every error next to its input, nothing created.
#[tokio::test]
async fn a_create_with_three_bad_fields_shows_all_three_at_once() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes/new", Some(&cookie)).await.csrf();
    for action in ["create", "preview"] {
        let a = ui
            .post(
                "/sandboxes/new",
                Some(&cookie),
                &[
                    ("_csrf", &token),
                    ("action", action),
                    ("name", "bad name!"),
                    ("env", "DB"),
                    ("secret", "MISSING"),
                    ("agent_claude", "name:gone"),
                    ("agent_codex", "none"),
                ],
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{action}: the first error's status"
        );
        for needle in [
            "id=\"name-error\">invalid sandbox name &quot;bad name!&quot;",
            "id=\"row-0-error\">env var DB: secret &quot;MISSING&quot; not found (add it on the Secrets page)",
            "id=\"agent_claude-error\">agent credential for claude: no credential named &quot;gone&quot;",
        ] {
            assert!(a.body.contains(needle), "{action}: {needle} in {}", a.body);
        }
    }
    let caller = ui.caller().await;
    assert!(ui.service.list_sandboxes(&caller).await.unwrap().is_empty());
}

#[tokio::test]
async fn env_rows_can_be_added_and_removed_without_javascript() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes/new", Some(&cookie)).await.csrf();
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("name", "box"),
                ("env", "A"),
                ("secret", ""),
                ("action", "add_row"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a
        .body
        .contains("id=\"env-0\" name=\"env\" type=\"text\" value=\"A\""));
    assert!(a
        .body
        .contains("id=\"env-1\" name=\"env\" type=\"text\" value=\"\""));
    assert!(!a.body.contains("id=\"env-2\""));
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("name", "box"),
                ("env", "A"),
                ("secret", ""),
                ("env", "B"),
                ("secret", ""),
                ("remove_row", "0"),
            ],
        )
        .await;
    assert!(a
        .body
        .contains("id=\"env-0\" name=\"env\" type=\"text\" value=\"B\""));
    assert!(!a.body.contains("id=\"env-1\""));
    assert!(a.body.contains("value=\"box\""));
}

#[tokio::test]
async fn sign_out_and_deleting_the_key_end_the_session() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes", Some(&cookie)).await.csrf();
    let a = ui
        .post("/logout", Some(&cookie), &[("_csrf", &token)])
        .await;
    assert_eq!(a.location(), "/login?signed_out=1");
    assert!(a
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("amika_session=;") && c.contains("Max-Age=0")));
    assert_eq!(
        ui.get("/sandboxes", Some(&cookie)).await.location(),
        "/login?next=/sandboxes"
    );
    assert!(ui
        .get("/login?signed_out=1", None)
        .await
        .body
        .contains("You are signed out."));

    // A session opened with a key that is then deleted ends with it.
    let caller = ui.caller().await;
    let (_, key) = ui
        .service
        .create_api_key(&caller, t::CreateApiKeyRequest { name: "ui".into() })
        .await
        .unwrap();
    let cookie = ui.sign_in(&key).await;
    assert_eq!(
        ui.get("/secrets", Some(&cookie)).await.status,
        StatusCode::OK
    );
    let keys = ui.service.list_api_keys(&caller).await.unwrap();
    let id = &keys.data.iter().find(|k| k.name == "ui").unwrap().id;
    ui.service.delete_api_key(&caller, id).await.unwrap();
    assert_eq!(
        ui.get("/secrets", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn deletes_go_through_a_confirm_page() {
    let ui = Ui::new().await;
    let caller = ui.caller().await;
    let s = ui
        .service
        .create_secret(
            &caller,
            t::CreateSecretRequest {
                name: "OLD".into(),
                value: "v".into(),
                scope: None,
                description: None,
            },
        )
        .await
        .unwrap();
    let cookie = ui.sign_in(&ui.admin_key).await;
    let confirm = ui
        .get(&format!("/secrets/{}/delete", s.id), Some(&cookie))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Delete the user secret OLD?"));
    assert_eq!(
        ui.service.list_secrets(&caller).await.unwrap().len(),
        1,
        "GET deletes nothing"
    );
    let a = ui
        .post(
            &format!("/secrets/{}/delete", s.id),
            Some(&cookie),
            &[("_csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(a.location(), "/secrets");
    assert!(ui.service.list_secrets(&caller).await.unwrap().is_empty());
    let missing = ui.get("/sandboxes/nope", Some(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("sandbox &quot;nope&quot; not found"));
}

// ------------------------------------------------------------------ agent message box

/// The test agent of the CLI's end-to-end tests (not the real Claude Code): it echoes the
/// message, prints a SHA-256 of the credential it was given, and sleeps or prints its raw
/// credential when the message asks it to.
pub(super) const FAKE_CLAUDE: &str = include_str!("../../../../cli/tests/fixtures/fake-claude.sh");
pub(super) const AGENT_KEY: &str = "sk-ant-api03-FLOWTEST-5eC7e7a1b2";

/// A running sandbox `name` whose claude credential is the api key `work-key` (codex skipped),
/// with the test agent installed as `claude`.
pub(super) async fn agent_sandbox(ui: &Ui, name: &str) {
    let caller = ui.caller().await;
    ui.service
        .create_credential(
            &caller,
            t::AgentKind::Claude,
            t::CreateCredentialRequest {
                name: "work-key".into(),
                value: AGENT_KEY.into(),
                credential_type: t::CredentialType::ApiKey,
                scope: None,
                is_default: false,
            },
        )
        .await
        .unwrap();
    let s = ui
        .service
        .create_sandbox(
            &caller,
            t::CreateSandboxRequest {
                name: name.into(),
                agent_credentials: vec![
                    t::AgentCredentialRef {
                        kind: t::AgentKind::Claude,
                        name: Some("work-key".into()),
                        credential_type: None,
                        none: false,
                    },
                    t::AgentCredentialRef {
                        kind: t::AgentKind::Codex,
                        name: None,
                        credential_type: None,
                        none: true,
                    },
                ],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s.state, t::SandboxState::Running);
    // The script travels as an argument ($1), so nothing in it is read by a shell.
    let install = "mkdir -p \"$HOME/.local/bin\" && printf '%s' \"$1\" > \"$HOME/.local/bin/claude\" && chmod 755 \"$HOME/.local/bin/claude\"";
    let mut exec = ui
        .service
        .exec_sandbox(
            &caller,
            name,
            t::ExecRequest {
                command: ["sh", "-c", install, "install-test-agent", FAKE_CLAUDE]
                    .map(String::from)
                    .to_vec(),
                cwd: None,
                timeout_secs: Some(30),
            },
        )
        .await
        .unwrap();
    let mut code = None;
    while let Some(frame) = exec.next().await {
        if let t::ExecFrame::Exit { code: c } = frame {
            code = Some(c);
        }
    }
    assert_eq!(code, Some(0), "the test agent is installed");
}

/// The conversation JSON once no reply is pending.
async fn settled_conversation(ui: &Ui, cookie: &str, name: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let a = ui
            .get(&format!("/sandboxes/{name}/conversation"), Some(cookie))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        if v["in_flight"] == false {
            return v;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no reply in 30 s: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(super) async fn sessions(ui: &Ui, name: &str) -> t::AgentSessionsList {
    let caller = ui.caller().await;
    ui.service
        .list_agent_sessions(&caller, name, None, None, None)
        .await
        .unwrap()
}

pub(super) async fn delete_sandbox(ui: &Ui, name: &str) {
    let caller = ui.caller().await;
    ui.service.delete_sandbox(&caller, name).await.unwrap();
}

#[tokio::test]
async fn agent_send_from_the_sandbox_page_needs_the_session_csrf_token() {
    let ui = Ui::new().await;
    agent_sandbox(&ui, "csrf-box").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/csrf-box", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let path = "/sandboxes/csrf-box/agent-send";
    async fn post(ui: &Ui, cookie: &str, csrf: Option<&str>) -> Answer {
        let mut fields = vec![("message", "hello"), ("agent", "claude")];
        if let Some(t) = csrf {
            fields.push(("_csrf", t));
        }
        ui.post("/sandboxes/csrf-box/agent-send", Some(cookie), &fields)
            .await
    }
    assert_eq!(
        post(&ui, &cookie, None).await.status,
        StatusCode::FORBIDDEN,
        "no token"
    );
    assert_eq!(
        post(&ui, &cookie, Some("forged")).await.status,
        StatusCode::FORBIDDEN
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(form(&[
            ("_csrf", &token),
            ("message", "hello"),
            ("agent", "claude"),
        ])))
        .unwrap();
    assert_eq!(ui.send(req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        ui.post(path, None, &[("_csrf", &token), ("message", "hello")])
            .await
            .location(),
        "/login",
        "no session: no send"
    );
    assert_eq!(sessions(&ui, "csrf-box").await.total, 0, "nothing was sent");

    // With the token the same form sends, and the browser is sent back to the page.
    let ok = post(&ui, &cookie, Some(&token)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location(), "/sandboxes/csrf-box#conversation");
    assert_eq!(sessions(&ui, "csrf-box").await.total, 1);
    let v = settled_conversation(&ui, &cookie, "csrf-box").await;
    assert!(v["html"].as_str().unwrap().contains("echo: hello"), "{v}");
    // The conversation endpoint is a page of the signed-in UI like the others.
    let a = ui.get("/sandboxes/csrf-box/conversation", None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    delete_sandbox(&ui, "csrf-box").await;
}

#[tokio::test]
async fn agent_send_errors_sit_next_to_their_field_and_keep_the_message() {
    let ui = Ui::new().await;
    agent_sandbox(&ui, "err-box").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/err-box", Some(&cookie)).await;
    let token = page.csrf();
    // The first resolved kind is chosen; a skipped kind is shown, disabled, with its reason.
    assert!(page.body.contains("<label for=\"message\">Message</label>"));
    assert!(page
        .body
        .contains("<option value=\"claude\" selected>claude — work-key (api_key)</option>"));
    assert!(
        page.body.contains("<option value=\"codex\" disabled>codex — unavailable (skipped at create: no-agent-credential flag)</option>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(
        "<input type=\"checkbox\" id=\"new_session\" name=\"new_session\" value=\"true\">"
    ));
    assert!(page.body.contains("No messages yet"));
    let path = "/sandboxes/err-box/agent-send";

    // An empty message: next to the message field, the other choices kept.
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("message", "  \n "),
                ("agent", "claude"),
                ("new_session", "true"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .contains("id=\"message-error\">message must not be empty"),
        "{}",
        a.body
    );
    assert!(a.body.contains(
        "aria-invalid=\"true\" aria-describedby=\"message-error\" autofocus>\n  \n </textarea>"
    ));
    assert!(a.body.contains("value=\"true\" checked>"));

    // A skipped kind (only a hand-made form can pick it): the service's error next to the
    // select, the message kept as typed (escaped).
    let typed = "keep <b>this</b> & \"that\"\nsecond line";
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[("_csrf", &token), ("message", typed), ("agent", "codex")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body.contains("id=\"agent-error\">sandbox &quot;err-box&quot; has no codex credential: it was skipped when the sandbox was created (no-agent-credential flag)"),
        "{}",
        a.body
    );
    assert!(a
        .body
        .contains("<option value=\"codex\" selected disabled>"));
    assert!(a.body.contains(
        ">\nkeep &lt;b&gt;this&lt;/b&gt; &amp; &quot;that&quot;\nsecond line</textarea>"
    ));
    assert!(!a.body.contains("<b>this"));
    assert_eq!(sessions(&ui, "err-box").await.total, 0, "nothing ran");

    // A reply that takes long: the page shows it pending and follows it (script or reload).
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[("_csrf", &token), ("message", "simulate-sleep please")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = ui.get("/sandboxes/err-box", Some(&cookie)).await;
    // No green "sent" notice (the conversation shows how the send goes), and Send is off
    // while the reply runs.
    assert!(!page.body.contains("class=\"notice\""), "{}", page.body);
    assert!(page.body.contains("id=\"send\" disabled"), "{}", page.body);
    assert!(
        page.body.contains("Waiting for claude's reply…"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("data-poll=\"/sandboxes/err-box/conversation?session=ses_"));
    assert!(page
        .body
        .contains("<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>"));
    let v: serde_json::Value = serde_json::from_str(
        &ui.get("/sandboxes/err-box/conversation", Some(&cookie))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(v["in_flight"], true);

    // The session is busy: said for the whole box, the message kept.
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[("_csrf", &token), ("message", "are you there?")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(
        a.body.contains("The agent is still answering your previous message: wait for its reply (or cancel it), or tick New session"),
        "{}",
        a.body
    );
    assert!(a.body.contains(">\nare you there?</textarea>"));

    // Stopping the sandbox ends the send with an error reply, shown as such.
    let caller = ui.caller().await;
    ui.service.stop_sandbox(&caller, "err-box").await.unwrap();
    let v = settled_conversation(&ui, &cookie, "err-box").await;
    let html = v["html"].as_str().unwrap();
    assert!(html.contains("bubble agent error"), "{html}");
    assert!(
        html.contains("error <code>sandbox_stopped</code>"),
        "{html}"
    );
    assert!(html.contains("the sandbox stopped while the agent was running"));

    // A stopped sandbox: refused for the whole box, with the state; Start offered, not Send.
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[("_csrf", &token), ("message", "still there?")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(
        a.body.contains("<div class=\"alert\" role=\"alert\"><ul><li>sandbox &quot;err-box&quot; is stopped: agent-send needs it running"),
        "{}",
        a.body
    );
    assert!(a
        .body
        .contains("This sandbox is stopped: start it with the Start button"));
    assert!(
        !a.body.contains("id=\"send\""),
        "no Send on a stopped sandbox"
    );
    assert!(
        a.body.contains("id=\"sandbox-start\""),
        "Start offered instead"
    );
    assert!(!a.body.contains("<noscript><meta"), "nothing pending");
    delete_sandbox(&ui, "err-box").await;
}

#[tokio::test]
async fn agent_replies_are_escaped_and_redacted_on_the_sandbox_page() {
    use sha2::{Digest, Sha256};
    let ui = Ui::new().await;
    agent_sandbox(&ui, "chat-box").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes/chat-box", Some(&cookie)).await.csrf();
    let path = "/sandboxes/chat-box/agent-send";
    let hostile = "<script>alert(1)</script> echo-credential";
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[("_csrf", &token), ("message", hostile)],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let v = settled_conversation(&ui, &cookie, "chat-box").await;
    let page = ui.get("/sandboxes/chat-box", Some(&cookie)).await;
    let hash = hex::encode(Sha256::digest(AGENT_KEY.as_bytes()));
    for html in [v["html"].as_str().unwrap(), page.body.as_str()] {
        assert!(!html.contains("<script>alert"), "{html}");
        // Both the message and the agent's echo of it are text.
        assert!(html.contains(
            "<div class=\"text\">&lt;script&gt;alert(1)&lt;/script&gt; echo-credential</div>"
        ));
        assert!(
            html.contains("echo: &lt;script&gt;alert(1)&lt;/script&gt; echo-credential\ncredential: env ANTHROPIC_API_KEY sha256="),
            "{html}"
        );
        assert!(html.contains(&hash), "the agent got work-key");
        assert!(html.contains("raw credential: [REDACTED:work-key]"));
        assert!(!html.contains(AGENT_KEY), "redacted");
        assert!(html.contains("1 message ·"));
    }
    assert!(!page.body.contains("data-poll"), "nothing pending");
    let first_session = sessions(&ui, "chat-box").await.sessions[0].clone();
    assert!(page.body.contains(&format!(
        "<code id=\"session-id\">{}</code>",
        first_session.id
    )));

    // A follow-up continues the same session (the agent is resumed).
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("message", "and now?"),
                ("agent", "claude"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let v = settled_conversation(&ui, &cookie, "chat-box").await;
    let html = v["html"].as_str().unwrap();
    assert!(html.contains("2 messages ·"), "{html}");
    assert!(html.contains("echo: and now?"));
    let resumed = html.split("resumed: ").nth(2).unwrap_or("");
    assert!(
        !resumed.starts_with("none"),
        "the second send resumes: {html}"
    );
    let list = sessions(&ui, "chat-box").await;
    assert_eq!(list.total, 1);

    // "New session" starts another; the page shows the new one.
    let a = ui
        .post(
            path,
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("message", "fresh start"),
                ("agent", "claude"),
                ("new_session", "true"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let v = settled_conversation(&ui, &cookie, "chat-box").await;
    let html = v["html"].as_str().unwrap();
    assert!(html.contains("1 message ·"), "{html}");
    assert!(html.contains("resumed: none"));
    assert!(html.contains("the latest of 2 sessions"));
    assert!(!html.contains(&first_session.id));
    // Every session stays reachable from the page: listed, each shown by its link.
    let page = ui.get("/sandboxes/chat-box", Some(&cookie)).await;
    assert!(page
        .body
        .contains("aria-label=\"Sessions of this sandbox\"><h3>All sessions (2)</h3>"));
    let link = format!("/sandboxes/chat-box?session={}", first_session.id);
    assert!(
        page.body.contains(&format!("href=\"{link}#conversation\"")),
        "{}",
        page.body
    );
    let older = ui.get(&link, Some(&cookie)).await;
    assert!(older.body.contains(&format!(
        "<code id=\"session-id\">{}</code>",
        first_session.id
    )));
    assert!(older
        .body
        .contains("an earlier session: a message sent above continues the latest one"));
    delete_sandbox(&ui, "chat-box").await;
}

// ------------------------------------------------------------------ repositories, env, setup

/// `git` in `dir`, with no user or system config in the way; its trimmed stdout.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A bare repository `<name>.git` under `root` whose `main` holds `files`, with a branch
/// `feature` one commit ahead; its `file://` URL and the commit of `feature`.
fn bare_repo(root: &std::path::Path, name: &str, files: &[(&str, &str)]) -> (String, String) {
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "main\n").unwrap();
    for (path, text) in files {
        let path = work.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "main"]);
    git(&work, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(work.join("README.md"), "feature\n").unwrap();
    git(&work, &["commit", "-q", "-am", "feature"]);
    let feature = git(&work, &["rev-parse", "HEAD"]);
    let bare = root.join(format!("{name}.git"));
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    (format!("file://{}", bare.display()), feature)
}

const REPO_CONFIG: &str = "[env]\nNODE_ENV = \"development\"\nFROM_REPO = \"repo-value\"\n[lifecycle]\nsetup_script = \"scripts/setup.sh\"\n";
const DB_VALUE: &str = "postgres://app:flow-s3cret@db.internal/app";

#[tokio::test]
async fn the_form_creates_a_sandbox_from_a_repository_with_env_lines_and_a_setup_script() {
    let ui = Ui::new().await;
    let repos = tempfile::tempdir().unwrap();
    let (url, feature) = bare_repo(
        repos.path(),
        "app",
        &[
            (".amika/config.toml", REPO_CONFIG),
            ("scripts/setup.sh", "#!/bin/sh\necho repo script ran\n"),
        ],
    );
    let caller = ui.caller().await;
    ui.service
        .create_secret(
            &caller,
            t::CreateSecretRequest {
                name: "db".into(),
                value: DB_VALUE.into(),
                scope: None,
                description: None,
            },
        )
        .await
        .unwrap();
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes/new", Some(&cookie)).await.csrf();
    // The browser sends a textarea's lines with CRLF; the script must still run.
    let script = "echo \"setup: $GREETING|$NODE_ENV|$FROM_REPO|$DATABASE_URL\"\r\necho '<b>to stderr</b>' >&2\r\ngit rev-parse --abbrev-ref HEAD\r\n";
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("action", "create"),
                ("name", "repo-box"),
                ("repo_url", &url),
                ("branch", "feature"),
                ("new_branch_name", "work-1"),
                ("git_credential", ""),
                ("env", "DATABASE_URL"),
                ("secret", "db"),
                (
                    "env_vars",
                    "GREETING=hello <world>\r\n\r\n# a comment\r\nFROM_REPO=request-wins",
                ),
                ("setup_script_text", script),
                ("size", "xs"),
                ("auto_stop_interval", "30"),
                ("auto_delete_interval", ""),
                ("agent_claude", "none"),
                ("agent_codex", "none"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location(), "/sandboxes/repo-box");

    let page = ui.get("/sandboxes/repo-box", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    assert!(b.contains("Sandbox repo-box created: running."), "{b}");
    for want in [
        format!("<dd id=\"sandbox-repo\"><code>{url}</code></dd>"),
        "<dd id=\"sandbox-dir\"><code>~/workspace/app</code></dd>".to_string(),
        "<dd id=\"sandbox-branch\"><code>work-1</code></dd>".to_string(),
        format!(
            "<dd id=\"sandbox-commit\"><code title=\"{feature}\">{}</code></dd>",
            &feature[..12]
        ),
        "<dd id=\"sandbox-size\">xs — 512 MiB, 256 processes</dd>".to_string(),
        "<dd id=\"sandbox-auto-stop\">after 30 min idle</dd>".to_string(),
        "<dd id=\"sandbox-auto-delete\">never</dd>".to_string(),
        // What the repository's config applied: NODE_ENV (FROM_REPO was the request's).
        "<div><dt>Plain env vars</dt><dd><code>NODE_ENV</code></dd></div>".to_string(),
        "<div><dt>Setup script</dt><dd><code>scripts/setup.sh</code></dd></div>".to_string(),
        // Plain env vars with their values as given (escaped) and where they came from.
        "<td data-label=\"Name\"><code>GREETING</code></td><td data-label=\"Value\"><code>hello &lt;world&gt;</code></td><td data-label=\"From\">request</td>".to_string(),
        "<td data-label=\"Name\"><code>FROM_REPO</code></td><td data-label=\"Value\"><code>request-wins</code></td><td data-label=\"From\">request</td>".to_string(),
        "<td data-label=\"Name\"><code>NODE_ENV</code></td><td data-label=\"Value\"><code>development</code></td><td data-label=\"From\">.amika/config.toml</td>".to_string(),
        // The setup: the form's script (not the repository's), and its log, escaped.
        "<dd id=\"setup-script\">given at create</dd>".to_string(),
        "<dd id=\"setup-state\"><span class=\"badge setup-succeeded\">succeeded</span></dd>"
            .to_string(),
        "<dd id=\"setup-exit\">0</dd>".to_string(),
        "setup: hello &lt;world&gt;|development|request-wins|[REDACTED:db]\n".to_string(),
        "<span class=\"stderr\">&lt;b&gt;to stderr&lt;/b&gt;\n</span>".to_string(),
        // (stdout and stderr are read apart: only their own order is certain)
        "work-1\n".to_string(),
        "<span class=\"log-note\">[exit 0]</span>\n</pre>".to_string(),
    ] {
        assert!(b.contains(&want), "missing {want}\n{b}");
    }
    assert!(
        !b.contains("repo script ran"),
        "the form's script replaced the repository's"
    );
    assert!(
        !b.contains(DB_VALUE),
        "the secret's value is never on the page"
    );
    assert!(!b.contains("<b>to stderr"), "log output is text");

    let list = ui.get("/sandboxes", Some(&cookie)).await;
    assert!(list
        .body
        .contains("<td data-label=\"Repository\"><code>app</code> · <code>work-1</code></td>"));
    let s = ui.service.get_sandbox(&caller, "repo-box").await.unwrap();
    assert_eq!(s.env_vars["GREETING"], "hello <world>");
    assert_eq!(s.size, Some(t::SandboxSize::Xs));
    assert_eq!(s.auto_stop_interval, Some(30.0));
    delete_sandbox(&ui, "repo-box").await;
}

#[tokio::test]
async fn bad_env_lines_are_reported_next_to_their_field_and_everything_typed_is_kept() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes/new", Some(&cookie)).await.csrf();
    let script = "echo \"<keep me>\"\nexit 0\n";
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("action", "create"),
                ("name", "kept-box"),
                ("repo_url", "file:///nowhere/app.git"),
                ("branch", "feature"),
                ("new_branch_name", "work-2"),
                ("git_credential", "gh"),
                ("env_vars", "GOOD=1\nno equals here\n1BAD=x\nGOOD=2"),
                ("setup_script_text", script),
                ("skip_setup_script", "true"),
                ("size", "m"),
                ("auto_stop_interval", "soon"),
                ("auto_delete_interval", "-1"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let b = &a.body;
    let env_error = format!(
        "id=\"env_vars-error\">line 2: &quot;no equals here&quot; has no &quot;=&quot;: write each variable as KEY=VALUE; line 3: {}; line 4: GOOD is already set on line 1: keep one line per variable</p>",
        super::escape(&crate::service::validate::env_var("1BAD").unwrap_err().to_string())
    );
    assert!(b.contains(&env_error), "{b}");
    assert!(b.contains(
        "aria-invalid=\"true\" aria-describedby=\"env_vars-error\" placeholder=\"NODE_ENV=development\">\nGOOD=1\nno equals here\n1BAD=x\nGOOD=2</textarea>"
    ));
    assert!(b.contains(
        "id=\"auto_stop_interval-error\">&quot;soon&quot; is not a number of minutes: enter e.g. 60 (0 or empty: never)</p>"
    ));
    // Everything else as typed.
    for kept in [
        "value=\"kept-box\"",
        "id=\"repo_url\" name=\"repo_url\" type=\"text\" value=\"file:///nowhere/app.git\"",
        "id=\"branch\" name=\"branch\" type=\"text\" value=\"feature\"",
        "id=\"new_branch_name\" name=\"new_branch_name\" type=\"text\" value=\"work-2\"",
        "id=\"git_credential\" name=\"git_credential\" type=\"text\" value=\"gh\"",
        ">\necho &quot;&lt;keep me&gt;&quot;\nexit 0\n</textarea>",
        "name=\"skip_setup_script\" value=\"true\" checked>",
        "<option value=\"m\" selected>m — 2048 MiB, 1024 processes</option>",
        "id=\"auto_delete_interval\" name=\"auto_delete_interval\" type=\"text\" value=\"-1\"",
    ] {
        assert!(b.contains(kept), "lost {kept}\n{b}");
    }

    // A line that is fine for the form but not for the request: the service's error, placed
    // on the same field (a plain variable that is also a secret row).
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("action", "create"),
                ("name", "kept-box"),
                ("env", "DB"),
                ("secret", "some-secret"),
                ("env_vars", "DB=plain"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains("id=\"env_vars-error\">env var DB is given twice, as a plain value and as a secret: give it once</p>"),
        "{}",
        a.body
    );
    assert!(a.body.contains(">\nDB=plain</textarea>"));
    let caller = ui.caller().await;
    assert!(ui.service.list_sandboxes(&caller).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_preview_lists_what_the_repository_config_contributes_in_words() {
    let ui = Ui::new().await;
    let caller = ui.caller().await;
    ui.service
        .create_secret(
            &caller,
            t::CreateSecretRequest {
                name: "staging-db".into(),
                value: DB_VALUE.into(),
                scope: None,
                description: None,
            },
        )
        .await
        .unwrap();
    ui.service
        .create_credential(
            &caller,
            t::AgentKind::Claude,
            t::CreateCredentialRequest {
                name: "team-key".into(),
                value: "sk-ant-api-team".into(),
                credential_type: t::CredentialType::ApiKey,
                scope: None,
                is_default: false,
            },
        )
        .await
        .unwrap();
    let repos = tempfile::tempdir().unwrap();
    let config = "[env]\nNODE_ENV = \"development\"\nDATABASE_URL = { secret = \"staging-db\" }\n[agent_credentials]\nclaude = { name = \"team-key\" }\ncodex = { none = true }\n[lifecycle]\nsetup_script = \"scripts/setup.sh\"\n";
    let (url, _) = bare_repo(repos.path(), "svc", &[(".amika/config.toml", config)]);
    let (bad_url, _) = bare_repo(
        repos.path(),
        "bad",
        &[(".amika/config.toml", "[env]\nOK = \"1\"\nBROKEN = 42\n")],
    );
    let (plain_url, _) = bare_repo(repos.path(), "plain", &[]);
    let cookie = ui.sign_in(&ui.admin_key).await;
    let token = ui.get("/sandboxes/new", Some(&cookie)).await.csrf();
    let preview = |repo: String, claude: &'static str, script: &'static str| {
        let (token, cookie, ui) = (token.clone(), cookie.clone(), &ui);
        async move {
            ui.post(
                "/sandboxes/new",
                Some(&cookie),
                &[
                    ("_csrf", &token),
                    ("action", "preview"),
                    ("repo_url", &repo),
                    ("agent_claude", claude),
                    ("agent_codex", "default"),
                    ("setup_script_text", script),
                ],
            )
            .await
        }
    };

    let a = preview(url.clone(), "default", "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = &a.body;
    for want in [
        "<h3>From the repository's .amika/config.toml</h3>",
        "<div><dt>Plain env vars</dt><dd><code>NODE_ENV</code></dd></div>",
        "<div><dt>Env vars from secrets</dt><dd><code>DATABASE_URL</code></dd></div>",
        "<div><dt>Agent credentials</dt><dd><code>claude</code> <code>codex</code></dd></div>",
        "<div><dt>Setup script</dt><dd><code>scripts/setup.sh</code></dd></div>",
        // The resolution rows, and the same in words.
        "<td data-label=\"Name\"><code>team-key</code></td><td data-label=\"Type\">api_key</td><td data-label=\"Source\"><span class=\"source\" title=\"repo_config\">the repository&#39;s .amika/config.toml</span></td>",
        "<li>claude: <code>team-key</code> (api_key), chosen by the repository's .amika/config.toml.</li>",
        "<li>codex: no credential, as the repository's .amika/config.toml says (none = true).</li>",
        "<li>Setup: the repository's <code>scripts/setup.sh</code> runs in its directory before the sandbox is ready.</li>",
        "<li><code>staging-db</code> <span class=\"muted\">(mapped by the repository's config)</span></li>",
    ] {
        assert!(b.contains(want), "missing {want}\n{b}");
    }
    assert!(!b.contains(DB_VALUE));

    // The page's own choices come first, in words too.
    let a = preview(url.clone(), "type:api_key", "make setup").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("<li>claude: your choice on this page comes first; the repository's entry is not used.</li>"), "{}", a.body);
    assert!(a.body.contains("<li>Setup: your script runs before the sandbox is ready, instead of the repository's <code>scripts/setup.sh</code>.</li>"));
    assert!(a
        .body
        .contains("<span class=\"source\" title=\"request:type\">chosen by type</span>"));

    // A repository without the file, and one whose file is bad: the error names file and
    // line, next to the repository field, with what was typed kept.
    let a = preview(plain_url, "default", "").await;
    assert!(a.body.contains("id=\"preview-repo-config\">The repository has no .amika/config.toml: it adds nothing.</p>"), "{}", a.body);
    let a = preview(bad_url.clone(), "default", "").await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(
        a.body
            .contains("id=\"repo_url-error\">.amika/config.toml:3: an [env] value must be a string or { secret = &quot;NAME&quot; }</p>"),
        "{}",
        a.body
    );
    assert!(a.body.contains(&format!("value=\"{bad_url}\"")));
    assert!(ui.service.list_sandboxes(&caller).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_github_credential_is_pushed_listed_and_deleted_from_the_secrets_page() {
    let ui = Ui::new().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/secrets", Some(&cookie)).await;
    assert!(page
        .body
        .contains("<option value=\"github\">github — token for cloning repositories</option>"));
    let token = page.csrf();
    let gh_token = "ghp_FlowTestToken0123456789abcdefABCD";
    let push = |ty: &'static str, value: &'static str| {
        let (token, cookie, ui) = (token.clone(), cookie.clone(), &ui);
        async move {
            ui.post(
                "/credentials",
                Some(&cookie),
                &[
                    ("_csrf", &token),
                    ("kind", "github"),
                    ("name", "gh"),
                    ("type", ty),
                    ("scope", "user"),
                    ("is_default", "true"),
                    ("value", value),
                    ("value_json", ""),
                ],
            )
            .await
        }
    };
    // oauth is refused for github, next to the type, and the value is not written back.
    let a = push("oauth", "ghp_FlowTestToken0123456789abcdefABCD").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.body.contains(
            "id=\"cred-type-error\">a github credential is a token: push it with type api_key</p>"
        ),
        "{}",
        a.body
    );
    assert!(a.body.contains("<option value=\"github\" selected>"));
    assert!(!a.body.contains(gh_token));

    let a = push("api_key", "ghp_FlowTestToken0123456789abcdefABCD").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = ui.get("/secrets", Some(&cookie)).await;
    assert!(page
        .body
        .contains("github credential gh added (api_key, user scope, default)."));
    assert!(page.body.contains("<td data-label=\"Kind\">github</td><td data-label=\"Name\"><code>gh</code></td><td data-label=\"Type\">api_key</td>"), "{}", page.body);
    assert!(!page.body.contains(gh_token));

    // The New sandbox form suggests it as the git credential; its agent selects stay claude
    // and codex only.
    let form_page = ui.get("/sandboxes/new", Some(&cookie)).await;
    assert!(form_page.body.contains(
        "<datalist id=\"git-credential-options\"><option value=\"gh\"></option></datalist>"
    ));
    assert!(form_page.body.contains("id=\"agent_claude\""));
    assert!(form_page.body.contains("id=\"agent_codex\""));
    assert!(!form_page.body.contains("agent_github"));

    let caller = ui.caller().await;
    let id = ui
        .service
        .list_credentials(&caller, t::AgentKind::Github)
        .await
        .unwrap()[0]
        .id
        .clone();
    let confirm = ui
        .get(&format!("/credentials/github/{id}/delete"), Some(&cookie))
        .await;
    assert!(confirm
        .body
        .contains("Delete the user github credential gh (api_key)?"));
    assert!(confirm
        .body
        .contains("Repositories already cloned stay as they are"));
    let a = ui
        .post(
            &format!("/credentials/github/{id}/delete"),
            Some(&cookie),
            &[("_csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(a.location(), "/secrets");
    assert!(ui
        .service
        .list_credentials(&caller, t::AgentKind::Github)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_preview_warns_when_a_plain_env_var_replaces_a_credentials_key() {
    let ui = Ui::new().await;
    let caller = ui.caller().await;
    ui.service
        .create_credential(
            &caller,
            t::AgentKind::Claude,
            t::CreateCredentialRequest {
                name: "work-key".into(),
                value: "sk-ant-api-warn-0123456789".into(),
                credential_type: t::CredentialType::ApiKey,
                scope: None,
                is_default: false,
            },
        )
        .await
        .unwrap();
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/new", Some(&cookie)).await;
    assert!(
        !page.body.contains("<h3>Warnings</h3>"),
        "no warning by default"
    );
    let token = page.csrf();
    let a = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &token),
                ("action", "preview"),
                ("name", "warn-box"),
                ("env_vars", "ANTHROPIC_API_KEY=mine"),
                ("agent_claude", "name:work-key"),
                ("agent_codex", "none"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.body.contains("<h3>Warnings</h3>")
            && a.body.contains(
                "env var ANTHROPIC_API_KEY (a plain value) replaces the key of the claude credential &quot;work-key&quot;"
            ),
        "{}",
        a.body
    );
}
