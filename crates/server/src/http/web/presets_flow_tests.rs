//! The presets page and the New sandbox form's preset choice through the real router (the
//! harness of `flow_tests`): what admins and members see, the refusals, a real install started
//! from the page (npm into the server's own empty presets dir, from the npm cache every test
//! shares, so only a machine's first run downloads) followed to its result, a failed one, and
//! removal through its confirmation.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::flow_tests::{Answer, Ui};
use super::presets::{preset_request, preset_select, InstallStatus};
use crate::service::presets as service_presets;
use amika_types as t;

const REFRESH: &str = "<meta name=\"amika-reload\" content=\"2\">";

/// The presets page once no install started from it is running.
async fn settled_page(ui: &Ui, cookie: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(15 * 60);
    loop {
        let page = ui.get("/presets", Some(cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if !page.body.contains("Installing coder") {
            return page;
        }
        assert!(Instant::now() < deadline, "the install did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn coder() -> &'static service_presets::PresetDef {
    service_presets::find("coder").unwrap()
}

#[tokio::test]
async fn every_user_sees_the_presets_and_only_admins_get_the_buttons() {
    let ui = Ui::new().await;
    let admin = ui.sign_in(&ui.admin_key).await;
    let member = super::flow_tests::member(&ui).await.1;

    let page = ui.get("/presets", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    assert!(b.contains("<a href=\"/presets\" aria-current=\"page\">Presets</a>"));
    assert!(
        b.contains("<h2 id=\"preset-coder-title\">coder</h2>"),
        "{b}"
    );
    for (pkg, version) in &coder().packages {
        assert!(
            b.contains(&format!(
                "<td data-label=\"Package\"><code>{pkg}</code></td><td data-label=\"Pinned version\">{version}</td><td data-label=\"Installed\">no</td>"
            )),
            "{pkg}: {b}"
        );
    }
    assert!(b.contains("<span class=\"badge\">not installed</span>"));
    assert!(b.contains(&format!("<code>{}</code>", coder().version_id())));
    assert!(b.contains("<dd>claude, codex</dd>"));
    assert!(b.contains("<form method=\"post\" action=\"/presets/coder/install\">"));
    assert!(!b.contains("/presets/coder/remove"), "nothing to remove");
    assert!(!b.contains(REFRESH));

    let page = ui.get("/presets", Some(&member)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains("<h2 id=\"preset-coder-title\">coder</h2>"));
    assert!(page
        .body
        .contains("Only admins install and remove presets."));
    assert!(
        !page.body.contains("/presets/coder/install"),
        "{}",
        page.body
    );

    // A member's post (with a valid token) is refused by the service; so is the confirm page.
    let csrf = page.csrf();
    let refused = ui
        .post("/presets/coder/install", Some(&member), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused
        .body
        .contains("only admins may install or remove presets"));
    let refused = ui.get("/presets/coder/remove", Some(&member)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = ui
        .post("/presets/coder/remove", Some(&member), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // An admin's post without the session's token starts nothing.
    let refused = ui.post("/presets/coder/install", Some(&admin), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Request refused"));
    assert!(!ui
        .get("/presets", Some(&admin))
        .await
        .body
        .contains("Installing coder"));

    let csrf = ui.get("/presets", Some(&admin)).await.csrf();
    let unknown = ui
        .post(
            "/presets/gam%3Cer/install",
            Some(&admin),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown
            .body
            .contains("preset &quot;gam&lt;er&quot; (this server has coder) not found"),
        "{}",
        unknown.body
    );

    let signed_out = ui.get("/presets", None).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_out.location(), "/login?next=/presets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_from_the_page_shows_its_step_then_its_result_and_removal_keeps_what_is_used() {
    let ui = Ui::with(|c| c.warm_sandboxes = 0).await;
    let admin = ui.sign_in(&ui.admin_key).await;
    let member = super::flow_tests::member(&ui).await.1;
    let id = coder().version_id();

    let csrf = ui.get("/presets", Some(&admin)).await.csrf();
    let started = ui
        .post("/presets/coder/install", Some(&admin), &[("_csrf", &csrf)])
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert_eq!(started.location(), "/presets");
    // npm takes seconds even from its cache: the page shows the running install and follows it.
    let running = ui.get("/presets", Some(&admin)).await;
    assert!(running
        .body
        .contains("Installing coder: this page follows it"));
    assert!(
        running.body.contains("Installing coder (started by admin"),
        "{}",
        running.body
    );
    assert!(running.body.contains(REFRESH));
    assert!(running.body.contains("<progress max=\"4\""));
    assert!(running.body.contains("class=\"hint install-step\""));
    assert!(
        !running.body.contains("/presets/coder/install\">"),
        "no second install button"
    );
    let seen_by_member = ui.get("/presets", Some(&member)).await;
    assert!(seen_by_member
        .body
        .contains("Installing coder (started by admin"));
    assert!(
        !seen_by_member.body.contains("install-step"),
        "npm's output is for admins"
    );
    let again = ui
        .post("/presets/coder/install", Some(&admin), &[("_csrf", &csrf)])
        .await;
    assert_eq!(again.location(), "/presets");
    assert!(ui
        .get("/presets", Some(&admin))
        .await
        .body
        .contains("An install of coder is running already."));

    let done = settled_page(&ui, &admin).await;
    let b = &done.body;
    assert!(
        b.contains(&format!("Installed coder version <code>{id}</code>")),
        "{b}"
    );
    assert!(b.contains("<span class=\"badge state-running\">installed</span>"));
    assert!(b.contains("<h3>Installed versions</h3>"));
    assert!(b.contains("<td data-label=\"Kind\">pinned</td>"));
    assert!(b.contains("<td data-label=\"Installed\">yes</td>"));
    assert!(
        !b.contains("/presets/coder/install"),
        "installed: no install button"
    );
    assert!(b.contains("href=\"/presets/coder/remove\""));
    assert!(!b.contains(REFRESH));

    // The New sandbox form offers it; a sandbox created with it keeps its version.
    let form = ui.get("/sandboxes/new", Some(&admin)).await;
    assert!(form
        .body
        .contains("<option value=\"coder\">coder: The real Claude Code"));
    let created = ui
        .post(
            "/sandboxes/new",
            Some(&admin),
            &[
                ("_csrf", &csrf),
                ("name", "with-coder"),
                ("preset", "coder"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let caller = ui.caller().await;
    let sandbox = ui.service.get_sandbox(&caller, "with-coder").await.unwrap();
    assert_eq!(sandbox.preset, Some(format!("coder@{id}")));

    let confirm = ui.get("/presets/coder/remove", Some(&admin)).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains(&format!(
        "Remove the installed versions of the preset <strong>coder</strong> ({id})?"
    )));
    assert!(confirm
        .body
        .contains("<form method=\"post\" action=\"/presets/coder/remove\""));
    let kept = ui
        .post("/presets/coder/remove", Some(&admin), &[("_csrf", &csrf)])
        .await;
    assert_eq!(kept.location(), "/presets");
    let page = ui.get("/presets", Some(&admin)).await;
    assert!(
        page.body.contains(&format!(
            "No version of coder was removed. Kept version {id}: sandboxes with-coder use it"
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("badge state-running\">installed"));

    ui.service
        .delete_sandbox(&caller, "with-coder")
        .await
        .unwrap();
    ui.post("/presets/coder/remove", Some(&admin), &[("_csrf", &csrf)])
        .await;
    let page = ui.get("/presets", Some(&admin)).await;
    assert!(page.body.contains(&format!("Removed coder version {id}.")));
    assert!(page
        .body
        .contains("<span class=\"badge\">not installed</span>"));
    assert!(
        !page.body.contains("Installed coder version"),
        "the old result is gone"
    );
    assert!(page.body.contains("/presets/coder/install"));
}

#[tokio::test]
async fn a_failed_install_shows_npm_s_message_to_admins_and_offers_the_install_again() {
    // npm cannot make its cache under a file: a real failure of the real npm.
    let ui = Ui::with(|c| c.npm_cache_dir = "/dev/null/amika-npm".into()).await;
    let admin = ui.sign_in(&ui.admin_key).await;
    let member = super::flow_tests::member(&ui).await.1;
    let csrf = ui.get("/presets", Some(&admin)).await.csrf();
    ui.post("/presets/coder/install", Some(&admin), &[("_csrf", &csrf)])
        .await;
    let page = settled_page(&ui, &admin).await;
    let b = &page.body;
    assert!(b.contains("<div class=\"alert\" role=\"alert\"><p>The install of coder failed ("));
    assert!(
        b.contains("<pre class=\"log\">npm install @anthropic-ai/claude-code@"),
        "{b}"
    );
    assert!(b.contains("ENOTDIR"), "npm's own lines: {b}");
    assert!(b.contains("<form method=\"post\" action=\"/presets/coder/install\">"));
    let seen_by_member = ui.get("/presets", Some(&member)).await;
    assert!(seen_by_member.body.contains("The install of coder failed"));
    assert!(!seen_by_member.body.contains("<pre class=\"log\">"));
}

#[tokio::test]
async fn the_new_sandbox_form_offers_the_presets_and_says_when_one_is_not_installed() {
    let ui = Ui::new().await;
    let admin = ui.sign_in(&ui.admin_key).await;
    let form = ui.get("/sandboxes/new", Some(&admin)).await;
    let b = &form.body;
    assert!(b.contains("<label for=\"preset\">Preset</label><p class=\"hint\" id=\"preset-hint\">"));
    assert!(b.contains("<select id=\"preset\" name=\"preset\" aria-describedby=\"preset-hint\">"));
    assert!(b.contains("<option value=\"default\" selected>Server default (none)</option><option value=\"none\">None</option><option value=\"coder\">coder: "));
    assert!(b.contains(" (not installed)</option>"));
    let csrf = form.csrf();
    let post = |preset: &'static str, action: &'static str| {
        let csrf = csrf.clone();
        let admin = admin.clone();
        let ui = &ui;
        async move {
            ui.post(
                "/sandboxes/new",
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("name", "box"),
                    ("preset", preset),
                    ("action", action),
                ],
            )
            .await
        }
    };
    let warning = "preset coder is not installed on this server: the sandbox has no agent CLIs of its own (an admin installs it with `amika preset install coder`)";
    let preview = post("coder", "preview").await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview
            .body
            .contains(&format!("<li>{}</li>", super::escape(warning))),
        "{}",
        preview.body
    );
    assert!(
        preview.body.contains("<option value=\"coder\" selected>"),
        "the choice is kept"
    );
    let unknown = post("gam<er", "preview").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body.contains("<p class=\"field-error\" id=\"preset-error\">unknown preset &quot;gam&lt;er&quot;: this server has coder</p>"),
        "{}",
        unknown.body
    );
    assert!(unknown.body.contains(
        "<select id=\"preset\" name=\"preset\" aria-invalid=\"true\" aria-describedby=\"preset-error\" autofocus>"
    ));
    assert!(unknown
        .body
        .contains("<option value=\"gam&lt;er\" selected>gam&lt;er (not found)</option>"));

    let created = post("coder", "create").await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let page = ui.get(created.location(), Some(&admin)).await;
    assert!(
        page.body.contains(&super::escape(warning)),
        "the flash says it"
    );
    let caller = ui.caller().await;
    assert_eq!(
        ui.service.get_sandbox(&caller, "box").await.unwrap().preset,
        None
    );
    ui.service.delete_sandbox(&caller, "box").await.unwrap();
}

#[test]
fn install_messages_and_names_are_escaped() {
    let at = chrono::Utc::now();
    let failed = InstallStatus::Failed {
        message: "npm error <script>alert(1)</script>".into(),
        by: "<b>eve</b>".into(),
        at,
    };
    let html = super::presets::status_block("co<der", &failed, true);
    assert!(
        !html.contains("<script>") && !html.contains("<b>"),
        "{html}"
    );
    assert!(html.contains("npm error &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("The install of co&lt;der failed"));
    let running = InstallStatus::Running {
        step: 1,
        steps: 4,
        message: "<img src=x onerror=alert(1)>".into(),
        by: "admin".into(),
        since: at,
    };
    let html = super::presets::status_block("coder", &running, true);
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(!html.contains("<img"));
}

#[test]
fn the_preset_choice_becomes_the_request_s_preset() {
    assert_eq!(preset_request("default"), None);
    assert_eq!(preset_request(""), None);
    assert_eq!(preset_request("none"), Some(String::new()));
    assert_eq!(preset_request("coder"), Some("coder".into()));

    let preset = |installed: bool, default: bool| t::Preset {
        name: "coder".into(),
        description: "The <real> CLIs".into(),
        packages: Default::default(),
        bin: vec![],
        current: "0123456789ab".into(),
        installed,
        default,
        versions: vec![],
    };
    let list = |p| t::PresetList {
        presets: vec![p],
        agent_permissions: Vec::new(),
    };
    let html = preset_select(&list(preset(true, true)), "", None);
    assert!(html.contains("<option value=\"default\" selected>Server default (coder)</option>"));
    assert!(html.contains("<option value=\"coder\">coder: The &lt;real&gt; CLIs</option>"));
    let html = preset_select(&list(preset(false, true)), "none", None);
    assert!(html.contains("Server default (none: coder is not installed)"));
    assert!(html.contains("<option value=\"none\" selected>None</option>"));
    assert!(html.contains("coder: The &lt;real&gt; CLIs (not installed)"));
}
