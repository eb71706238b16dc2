//! Snapshots in the web UI through the real router, on real bwrap sandboxes (issue 16): the
//! capture page's scrub preview (names, never a value), the full mode refused without its
//! confirmation, a scrubbed capture listed active with its size, a new sandbox started from it
//! through the New sandbox form (preselected by the list's link), delete behind a confirm
//! page; and a value written into a file coming back on the form as a refusal naming the file
//! and the secret, with what was typed kept.

use axum::http::StatusCode;

use super::flow_tests::{Answer, Ui};
use crate::service::Caller;
use amika_types::{self as t, SandboxState, SnapshotState};

const VALUE: &str = "tok-SNAPSHOT-UI-VALUE-0123456789";

/// A UI whose admin has secret `snap-token` = [`VALUE`] and a running sandbox `name` with it
/// injected as `SNAP_TOKEN`.
async fn ui_with_sandbox(name: &str) -> (Ui, Caller) {
    let ui = Ui::with(|c| c.warm_sandboxes = 0).await;
    let caller = ui.caller().await;
    ui.service
        .create_secret(
            &caller,
            t::CreateSecretRequest {
                name: "snap-token".into(),
                value: VALUE.into(),
                scope: None,
                description: None,
            },
        )
        .await
        .unwrap();
    let req = t::CreateSandboxRequest {
        name: name.into(),
        secret_env_vars: [("SNAP_TOKEN".to_string(), "snap-token".to_string())].into(),
        ..Default::default()
    };
    let s = ui.service.create_sandbox(&caller, req).await.unwrap();
    assert_eq!(s.state, SandboxState::Running);
    (ui, caller)
}

/// Run `script` with `sh -c` in the sandbox: its exit code and stdout.
async fn sh(ui: &Ui, caller: &Caller, sandbox: &str, script: &str) -> (i32, String) {
    let req = t::ExecRequest {
        command: vec!["sh".into(), "-c".into(), script.into()],
        cwd: None,
        timeout_secs: Some(60),
    };
    let mut exec = ui.service.exec_sandbox(caller, sandbox, req).await.unwrap();
    let (mut out, mut code) = (String::new(), None);
    while let Some(frame) = exec.next().await {
        match frame {
            t::ExecFrame::Stdout { data } => out.push_str(&data),
            t::ExecFrame::Exit { code: c } => code = Some(c),
            t::ExecFrame::Stderr { .. } => {}
            t::ExecFrame::Error { message } => panic!("{message}"),
        }
    }
    (code.expect("an exit frame"), out)
}

/// Submit the capture form of `sandbox` with `fields` (and the page's token).
async fn capture(ui: &Ui, cookie: &str, sandbox: &str, fields: &[(&str, &str)]) -> Answer {
    let page = ui
        .get(&format!("/sandboxes/{sandbox}/snapshot"), Some(cookie))
        .await;
    let csrf = page.csrf();
    let mut all = vec![("_csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    ui.post(
        &format!("/sandboxes/{sandbox}/snapshot"),
        Some(cookie),
        &all,
    )
    .await
}

#[tokio::test]
async fn a_sandbox_is_captured_listed_forked_and_deleted_from_the_ui() {
    let (ui, caller) = ui_with_sandbox("snap-src").await;
    assert_eq!(
        sh(
            &ui,
            &caller,
            "snap-src",
            "echo prepared > ~/workspace/note.txt"
        )
        .await
        .0,
        0
    );
    let cookie = ui.sign_in(&ui.admin_key).await;

    let sandbox = ui.get("/sandboxes/snap-src", Some(&cookie)).await;
    assert!(
        sandbox
            .body
            .contains("href=\"/sandboxes/snap-src/snapshot\""),
        "{}",
        sandbox.body
    );
    let empty = ui.get("/snapshots", Some(&cookie)).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No snapshots yet."), "{}", empty.body);
    assert!(empty
        .body
        .contains("<a href=\"/snapshots\" aria-current=\"page\">Snapshots</a>"));

    // The preview: the env var's name, never its value; scrub is the default mode.
    let page = ui.get("/sandboxes/snap-src/snapshot", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<ul class=\"chips\" id=\"scrub-env\"><li><code>SNAP_TOKEN</code></li></ul>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No credential file was injected."));
    assert!(!page.body.contains(VALUE), "a value on the capture page");
    assert!(page
        .body
        .contains("id=\"mode-scrub\" name=\"mode\" value=\"scrub_and_delete\" checked"));
    let refused = ui
        .post(
            "/sandboxes/snap-src/snapshot",
            Some(&cookie),
            &[("name", "x")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "no CSRF token, no capture"
    );

    // Full mode without its box ticked: refused on the form, with everything typed kept.
    let full = [
        ("name", "snap-one"),
        ("description", "deps <b>installed</b>"),
        ("mode", "full"),
    ];
    let unconfirmed = capture(&ui, &cookie, "snap-src", &full).await;
    assert_eq!(
        unconfirmed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unconfirmed.body
    );
    assert!(unconfirmed.body.contains("id=\"confirm_full-error\">a full snapshot keeps any secret written into a file: tick this box"), "{}", unconfirmed.body);
    assert!(unconfirmed.body.contains("value=\"snap-one\""));
    assert!(unconfirmed
        .body
        .contains("value=\"deps &lt;b&gt;installed&lt;/b&gt;\""));
    assert!(unconfirmed
        .body
        .contains("id=\"mode-full\" name=\"mode\" value=\"full\" checked"));
    let none = ui
        .service
        .list_snapshots(&caller, None, None)
        .await
        .unwrap();
    assert!(none.items.is_empty(), "nothing captured: {none:?}");

    // The service's own checks come back next to their fields.
    let bad = capture(&ui, &cookie, "snap-src", &[("name", "bad name")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body
            .contains("id=\"name-error\">invalid snapshot name &quot;bad name&quot;"),
        "{}",
        bad.body
    );
    let long = "d".repeat(super::form::limits::SNAPSHOT_DESCRIPTION + 1);
    let bad = capture(
        &ui,
        &cookie,
        "snap-src",
        &[("name", "ok"), ("description", &long)],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body
            .contains("id=\"description-error\">description must be at most 1024"),
        "{}",
        bad.body
    );

    // Scrub and delete: listed active, with its size; the source sandbox goes.
    let scrub = [
        ("name", "snap-one"),
        ("description", "deps <b>installed</b>"),
        ("mode", "scrub_and_delete"),
    ];
    let done = capture(&ui, &cookie, "snap-src", &scrub).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/snapshots");
    let snap = ui.service.get_snapshot(&caller, "snap-one").await.unwrap();
    assert_eq!(snap.state, SnapshotState::Active, "{snap:?}");
    let list = ui.get("/snapshots", Some(&cookie)).await;
    assert!(
        list.body
            .contains("Snapshot snap-one captured, scrubbed; the sandbox snap-src was deleted."),
        "{}",
        list.body
    );
    assert!(list.body.contains("<strong>snap-one</strong><br><span class=\"muted\">deps &lt;b&gt;installed&lt;/b&gt;</span>"));
    assert!(list
        .body
        .contains("<span class=\"badge snapshot-active\">active</span>"));
    assert!(list.body.contains("<code>snap-src</code>"));
    let size = super::snapshots::human_bytes(snap.size_bytes.unwrap());
    assert!(
        list.body.contains(&format!("\">{size}</span>")),
        "{size}: {}",
        list.body
    );
    assert!(list
        .body
        .contains("href=\"/sandboxes/new?snapshot=snap-one\""));
    assert!(
        !list.body.contains("amika-reload"),
        "nothing capturing, no reload"
    );
    assert!(!list.body.contains(VALUE));
    if let Ok(source) = ui.service.get_sandbox(&caller, "snap-src").await {
        assert_eq!(source.state, SandboxState::Deleting, "the source goes");
    }

    // The list's link opens the New sandbox form with the snapshot chosen and previewed.
    let form = ui
        .get("/sandboxes/new?snapshot=snap-one", Some(&cookie))
        .await;
    assert!(
        form.body
            .contains("<option value=\"snap-one\" selected>snap-one (from snap-src)</option>"),
        "{}",
        form.body
    );
    assert!(form.body.contains("id=\"preview-snapshot\">Snapshot <code>snap-one</code>, captured from <code>snap-src</code>"), "{}", form.body);
    let missing = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &form.csrf()),
                ("snapshot", "nope"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        missing
            .body
            .contains("id=\"snapshot-error\">snapshot &quot;nope&quot; not found"),
        "{}",
        missing.body
    );
    let created = ui
        .post(
            "/sandboxes/new",
            Some(&cookie),
            &[
                ("_csrf", &form.csrf()),
                ("name", "snap-fork"),
                ("snapshot", "snap-one"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let fork = ui.service.get_sandbox(&caller, "snap-fork").await.unwrap();
    assert_eq!(fork.snapshot.as_deref(), Some("snap-one"));
    assert_eq!(
        sh(&ui, &caller, "snap-fork", "cat ~/workspace/note.txt").await,
        (0, "prepared\n".into())
    );
    let fork_page = ui.get("/sandboxes/snap-fork", Some(&cookie)).await;
    assert!(
        fork_page.body.contains(
            "id=\"sandbox-snapshot-name\">snapshot <a href=\"/snapshots\"><code>snap-one</code>"
        ),
        "{}",
        fork_page.body
    );

    // Delete, behind its confirm page.
    let confirm = ui
        .get(&format!("/snapshots/{}/delete", snap.id), Some(&cookie))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm
        .body
        .contains("Delete the snapshot <strong>snap-one</strong>?"));
    let deleted = ui
        .post(
            &format!("/snapshots/{}/delete", snap.id),
            Some(&cookie),
            &[("_csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert_eq!(deleted.location(), "/snapshots");
    assert!(ui
        .service
        .list_snapshots(&caller, None, None)
        .await
        .unwrap()
        .items
        .is_empty());
    let after = ui.get("/snapshots", Some(&cookie)).await;
    assert!(after.body.contains("Snapshot snap-one deleted."));
    assert!(after.body.contains("No snapshots yet."));
    let gone = ui
        .get(&format!("/snapshots/{}/delete", snap.id), Some(&cookie))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    ui.service
        .delete_sandbox(&caller, "snap-fork")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_value_written_into_a_file_comes_back_on_the_form_naming_the_file_and_the_secret() {
    let (ui, caller) = ui_with_sandbox("leaky").await;
    let script = format!("printf '%s' 'TOKEN={VALUE}' > ~/workspace/.env");
    assert_eq!(sh(&ui, &caller, "leaky", &script).await.0, 0);
    let cookie = ui.sign_in(&ui.admin_key).await;

    let fields = [("name", "leaky-snap"), ("description", "with deps")];
    let refused = capture(&ui, &cookie, "leaky", &fields).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("<div class=\"alert\" role=\"alert\"><ul><li>snapshot refused: injected secret values were found in the sandbox&#39;s files: ~/workspace/.env (snap-token)"), "{}", refused.body);
    assert!(refused
        .body
        .contains("take the snapshot in Full mode, which keeps them"));
    assert!(!refused.body.contains("--mode"), "no CLI flag on a page");
    assert!(!refused.body.contains(VALUE), "a value on the page");
    assert!(
        refused.body.contains("value=\"leaky-snap\""),
        "the name is kept"
    );
    assert!(
        refused.body.contains("value=\"with deps\""),
        "the description is kept"
    );
    let s = ui.service.get_sandbox(&caller, "leaky").await.unwrap();
    assert_eq!(s.state, SandboxState::Running, "left as it was");
    let list = ui.get("/snapshots", Some(&cookie)).await;
    assert!(list.body.contains("<span class=\"badge snapshot-failed\">failed</span><p class=\"field-error snapshot-error\">snapshot refused"), "{}", list.body);
    assert!(
        !list.body.contains("/sandboxes/new?snapshot=leaky-snap"),
        "no fork of a failed snapshot"
    );

    // Fixed, the same form goes through (the failed snapshot of that name gives way).
    assert_eq!(sh(&ui, &caller, "leaky", "rm ~/workspace/.env").await.0, 0);
    let done = capture(&ui, &cookie, "leaky", &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let snap = ui
        .service
        .get_snapshot(&caller, "leaky-snap")
        .await
        .unwrap();
    assert_eq!(snap.state, SnapshotState::Active);
}

#[tokio::test]
async fn a_capture_page_of_a_sandbox_that_is_not_there_is_not_found() {
    let ui = Ui::with(|c| c.warm_sandboxes = 0).await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/nope/snapshot", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = ui.get("/snapshots/snap_nope/delete", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_org_admin_shares_a_snapshot_and_members_see_it_without_a_delete_button() {
    let (ui, caller) = ui_with_sandbox("team-src").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = ui.get("/sandboxes/team-src/snapshot", Some(&cookie)).await;
    assert!(page.body.contains("Share with my org"), "{}", page.body);
    let done = capture(
        &ui,
        &cookie,
        "team-src",
        &[
            ("name", "team-env"),
            ("mode", "scrub_and_delete"),
            ("scope", "org"),
        ],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let snap = ui.service.get_snapshot(&caller, "team-env").await.unwrap();
    assert_eq!(
        (snap.state, snap.scope),
        (SnapshotState::Active, t::Scope::Org)
    );
    let delete_button = "Delete<span class=\"visually-hidden\"> snapshot team-env</span>";
    let admin_list = ui.get("/snapshots", Some(&cookie)).await;
    assert!(admin_list.body.contains("shared with your org"));
    assert!(admin_list.body.contains(delete_button));

    // A member sees it, may start from it, may not delete it nor share their own.
    let (key, member_cookie) = super::flow_tests::member(&ui).await;
    let member = ui.service.authenticate(&key).await.unwrap();
    let list = ui.get("/snapshots", Some(&member_cookie)).await;
    assert!(
        list.body.contains("<strong>team-env</strong>")
            && list.body.contains("shared with your org"),
        "{}",
        list.body
    );
    assert!(list.body.contains("/sandboxes/new?snapshot=team-env"));
    assert!(!list.body.contains(delete_button), "{}", list.body);
    let req = t::CreateSandboxRequest {
        name: "mine".into(),
        ..Default::default()
    };
    ui.service.create_sandbox(&member, req).await.unwrap();
    let page = ui
        .get("/sandboxes/mine/snapshot", Some(&member_cookie))
        .await;
    assert!(!page.body.contains("Share with my org"), "{}", page.body);
    let refused = capture(
        &ui,
        &member_cookie,
        "mine",
        &[
            ("name", "mine-shared"),
            ("mode", "scrub_and_delete"),
            ("scope", "org"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("id=\"scope-error\">only org admins"),
        "{}",
        refused.body
    );
}
