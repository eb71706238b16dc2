//! The `coder` preset with the real Claude Code and Codex CLIs (npm packages at the versions
//! pinned in `presets/coder.json`): installed once per machine into a presets dir the tests
//! share (`$AMIKA_TEST_PRESETS_DIR`, else `~/.cache/amika-test-presets`; npm's cache is
//! `$AMIKA_NPM_CACHE`, else `~/.cache/amika-npm`), then mounted into sandboxes, where
//! `claude auth status` and `codex login status` (both offline) must report exactly the
//! credential each row of the injection map gives the sandbox.
//!
//! Nothing is skipped: without npm, Node.js or the registry the install fails and so do these
//! tests.

mod coder_support;

use amika_testkit::exec_sh;
mod common;

use std::time::{Duration, Instant};

use amika_server::service::presets::{self, InstallProgress};
use amika_server::service::Caller;
use amika_server::Service;
use amika_types::{self as t, AgentKind};
use coder_support::{
    assert_no_value_in, create, layer, pin, push_credentials, shared_presets_dir, CREDENTIAL_VALUES,
};

/// A server whose presets dir is the shared one, with `coder` installed (once per machine).
async fn server(warm: usize) -> common::App {
    let app = common::app_with(None, move |c| {
        c.presets_dir = shared_presets_dir();
        c.warm_sandboxes = warm;
    })
    .await;
    coder_support::install_coder(&app.service).await;
    app
}

/// `claude auth status` (JSON on stdout) and its exit code.
async fn claude_status(svc: &Service, caller: &Caller, sandbox: &str) -> (i32, serde_json::Value) {
    let (code, out, err) = exec_sh(svc, caller, sandbox, "claude auth status").await;
    let json = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("claude auth status in {sandbox}: {e}\nstdout: {out}\nstderr: {err}")
    });
    (code, json)
}

/// `codex login status` (it reports on stderr) and its exit code.
async fn codex_status(svc: &Service, caller: &Caller, sandbox: &str) -> (i32, String) {
    let (code, out, err) = exec_sh(svc, caller, sandbox, "codex login status").await;
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_status_inside_a_coder_sandbox_reports_each_row_of_the_injection_map() {
    let app = server(0).await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    push_credentials(svc, &caller).await;
    let oauth = vec![
        pin(AgentKind::Claude, Some("claude-oauth")),
        pin(AgentKind::Codex, Some("codex-oauth")),
    ];
    let keys = vec![
        pin(AgentKind::Claude, Some("claude-key")),
        pin(AgentKind::Codex, Some("codex-key")),
    ];
    let skipped = vec![pin(AgentKind::Claude, None), pin(AgentKind::Codex, None)];
    create(svc, &caller, "oauth-box", Some("coder"), oauth).await;
    create(svc, &caller, "key-box", Some("coder"), keys).await;
    create(svc, &caller, "skip-box", Some("coder"), skipped).await;

    // claude oauth → logged in through claude.ai, with the document's subscription.
    let (code, s) = claude_status(svc, &caller, "oauth-box").await;
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["loggedIn"], true, "{s}");
    assert_eq!(s["authMethod"], "claude.ai", "{s}");
    assert_eq!(s["subscriptionType"], "max", "{s}");
    assert_eq!(s["configDirectory"], "/home/amika/.claude", "{s}");
    // claude api_key → the ANTHROPIC_API_KEY variable.
    let (code, s) = claude_status(svc, &caller, "key-box").await;
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["loggedIn"], true, "{s}");
    assert_eq!(s["authMethod"], "api_key", "{s}");
    assert_eq!(s["apiKeySource"], "ANTHROPIC_API_KEY", "{s}");
    // claude skipped → not logged in.
    let (code, s) = claude_status(svc, &caller, "skip-box").await;
    assert_eq!(code, 1, "{s}");
    assert_eq!(s["loggedIn"], false, "{s}");
    assert_eq!(s["authMethod"], "none", "{s}");

    // codex oauth → the ChatGPT sign-in.
    let (code, said) = codex_status(svc, &caller, "oauth-box").await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("Logged in using ChatGPT"), "{said}");
    // codex api_key → an API key (Codex masks it itself; the redaction hides the rest).
    let (code, said) = codex_status(svc, &caller, "key-box").await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("API key configured"), "{said}");
    assert!(!said.contains(coder_support::CODEX_KEY), "{said}");
    // codex skipped → not logged in.
    let (code, said) = codex_status(svc, &caller, "skip-box").await;
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("Not logged in"), "{said}");

    // The CLIs ran with every value in reach: none of them is in the shared layer.
    assert_no_value_in(&layer(), &CREDENTIAL_VALUES);
    for name in ["oauth-box", "key-box", "skip-box"] {
        svc.delete_sandbox(&caller, name).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_is_read_only_inside_the_sandbox_and_its_bin_is_on_path() {
    let app = server(0).await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let def = presets::find("coder").unwrap();
    let created = create(svc, &caller, "ro-box", Some("coder"), vec![]).await;
    assert_eq!(created.preset, Some(format!("coder@{}", def.version_id())));
    assert!(created.warnings.is_empty(), "{:?}", created.warnings);

    for script in [
        "touch /opt/amika/preset/x",
        "chmod u+w /opt/amika/preset/bin",
        "rm -f /opt/amika/preset/bin/claude",
        "touch /usr/x",
    ] {
        let (code, out, err) = exec_sh(svc, &caller, "ro-box", script).await;
        assert_ne!(code, 0, "{script}: {out}");
        assert!(err.contains("Read-only file system"), "{script}: {err}");
    }
    let (code, out, err) = exec_sh(svc,
        &caller,
        "ro-box",
        "echo \"$PATH\"; command -v claude; command -v codex; claude --version; codex --version; cat /opt/amika/preset/amika-preset.json",
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].split(':').any(|d| d == "/opt/amika/preset/bin"),
        "{out}"
    );
    assert_eq!(lines[1], "/opt/amika/preset/bin/claude");
    assert_eq!(lines[2], "/opt/amika/preset/bin/codex");
    let claude_version = &def.packages["@anthropic-ai/claude-code"];
    let codex_version = &def.packages["@openai/codex"];
    assert!(lines[3].starts_with(claude_version.as_str()), "{out}");
    assert!(lines[4].ends_with(codex_version.as_str()), "{out}");
    let manifest: serde_json::Value = serde_json::from_str(&lines[5..].join("\n")).unwrap();
    assert_eq!(manifest["id"], def.version_id());
    assert_eq!(
        manifest["packages"]["@openai/codex"],
        codex_version.as_str()
    );
    assert!(
        manifest["node"].as_str().unwrap().starts_with('v'),
        "{manifest}"
    );
    // On the host too: nothing in the layer is writable.
    assert!(presets::is_read_only(&layer()));
    assert!(presets::is_read_only(&layer().join("node_modules")));

    // A stop and a start keep the layer.
    svc.stop_sandbox(&caller, "ro-box").await.unwrap();
    svc.start_sandbox(&caller, "ro-box").await.unwrap();
    let (code, out, _) = exec_sh(svc, &caller, "ro-box", "command -v claude").await;
    assert_eq!((code, out.trim()), (0, "/opt/amika/preset/bin/claude"));
    svc.delete_sandbox(&caller, "ro-box").await.unwrap();
}

/// Wait until no warm sandbox is being started.
async fn settle(svc: &Service) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !svc.is_settled() {
        assert!(Instant::now() < deadline, "warm sandboxes did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_sandbox_serves_only_creates_of_its_own_preset() {
    let app = server(1).await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let has_claude = "test -d /opt/amika/preset && command -v claude";
    // Each create parks one more of its shape; the next create of a shape claims it.
    create(svc, &caller, "plain-1", Some(""), vec![]).await;
    settle(svc).await;
    create(svc, &caller, "coder-1", Some("coder"), vec![]).await;
    settle(svc).await;
    for (name, preset, expect) in [
        ("coder-2", Some("coder"), 0),
        ("plain-2", Some(""), 1),
        ("coder-3", Some("coder"), 0),
    ] {
        create(svc, &caller, name, preset, vec![]).await;
        settle(svc).await;
        let (code, out, err) = exec_sh(svc, &caller, name, has_claude).await;
        assert_eq!(code, expect, "{name}: {out}{err}");
    }
    for name in ["plain-1", "coder-1", "coder-2", "plain-2", "coder-3"] {
        svc.delete_sandbox(&caller, name).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_presets_are_refused_and_the_default_preset_applies_when_installed() {
    // A server without any preset installed: a create asking for coder warns.
    let bare = common::app_with(None, |c| c.warm_sandboxes = 0).await;
    let svc = &bare.service;
    let caller = svc.authenticate(&bare.admin_key).await.unwrap();
    let err = svc
        .create_sandbox(
            &caller,
            t::CreateSandboxRequest {
                name: "nope".into(),
                preset: Some("gamer".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown preset \"gamer\": this server has coder"
    );
    assert_eq!(err.field(), Some("preset"));
    let listed = svc.list_presets();
    assert_eq!(listed.presets.len(), 1);
    assert!(!listed.presets[0].installed && listed.presets[0].versions.is_empty());
    let bare_box = create(svc, &caller, "bare", Some("coder"), vec![]).await;
    assert_eq!(bare_box.preset, None);
    assert_eq!(
        bare_box.warnings,
        ["preset coder is not installed on this server: the sandbox has no agent CLIs of its own (an admin installs it with `amika preset install coder`)"]
    );
    svc.delete_sandbox(&caller, "bare").await.unwrap();

    // With coder installed and the default: a create without preset gets it, `""` none.
    let app = common::app_with(None, |c| {
        c.presets_dir = shared_presets_dir();
        c.warm_sandboxes = 0;
        c.default_preset = Some("coder".into());
    })
    .await;
    let svc = &app.service;
    let def = presets::find("coder").unwrap();
    svc.install_preset_as_server(def, InstallProgress::none())
        .await
        .unwrap();
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let listed = svc.list_presets();
    assert!(listed.presets[0].default && listed.presets[0].installed);
    assert!(listed.presets[0]
        .versions
        .iter()
        .any(|v| v.current && v.id == def.version_id()));
    let by_default = create(svc, &caller, "by-default", None, vec![]).await;
    assert_eq!(
        by_default.preset,
        Some(format!("coder@{}", def.version_id()))
    );
    let without = create(svc, &caller, "without", Some(""), vec![]).await;
    assert_eq!(without.preset, None);
    let (code, _, _) = exec_sh(svc, &caller, "without", "command -v claude").await;
    assert_ne!(code, 0);
    for name in ["by-default", "without"] {
        svc.delete_sandbox(&caller, name).await.unwrap();
    }
}

/// The NDJSON lines of an install answer.
fn events(body: &serde_json::Value) -> Vec<t::PresetInstallEvent> {
    let text = body
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_presets_api_lists_installs_and_refuses_what_it_should() {
    use axum::http::{Method, StatusCode};
    let app = server(0).await;
    let def = presets::find("coder").unwrap();
    let member = app.user("dev", "default", false).await;

    let (status, list) = app
        .call(Method::GET, "/api/v0beta1/presets", Some(&member), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let coder = &list["presets"][0];
    assert_eq!(coder["name"], "coder");
    assert_eq!(coder["current"], def.version_id());
    assert_eq!(coder["installed"], true);
    assert_eq!(coder["bin"], serde_json::json!(["claude", "codex"]));
    let pinned: serde_json::Value =
        serde_json::from_str(include_str!("../../../presets/coder.json")).unwrap();
    assert_eq!(coder["packages"], pinned["packages"]);

    let (status, body) = app
        .call(
            Method::POST,
            "/api/v0beta1/presets/coder/install",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .call(
            Method::DELETE,
            "/api/v0beta1/presets/coder",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v0beta1/presets/gamer/install",
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body["message"],
        "preset \"gamer\" (this server has coder) not found"
    );
    let (status, body) = app
        .call(
            Method::DELETE,
            "/api/v0beta1/presets/gamer",
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found", "{body}");

    // Installed already: the stream ends with `done` at once.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v0beta1/presets/coder/install",
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lines = events(&body);
    let last = lines.last().unwrap();
    assert_eq!(last.event, t::PresetInstallEventKind::Done, "{lines:?}");
    assert_eq!(last.preset.as_ref().unwrap().current, def.version_id());
}

/// A real install into an empty presets dir (npm's cache makes it quick), its progress lines,
/// then a removal that keeps the version a sandbox uses until that sandbox is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_streams_npm_progress_and_remove_keeps_versions_in_use() {
    use axum::http::{Method, StatusCode};
    let presets_dir = tempfile::tempdir().unwrap();
    let dir = presets_dir.path().to_path_buf();
    let app = common::app_with(None, move |c| {
        c.presets_dir = dir;
        c.warm_sandboxes = 0;
    })
    .await;
    let def = presets::find("coder").unwrap();
    // What an install killed long ago left (read-only, as it would be), and one running now.
    let leftover = presets_dir
        .path()
        .join("coder/.tmp-0123456789ab-dead/node_modules");
    std::fs::create_dir_all(&leftover).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("touch -d '2 days ago' \"$1\"/.. && chmod -R a-w \"$1\"/..")
        .arg("sh")
        .arg(&leftover)
        .status()
        .unwrap();
    assert!(status.success());
    let running = presets_dir.path().join("coder/.tmp-0123456789ab-live");
    std::fs::create_dir_all(&running).unwrap();
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v0beta1/presets/coder/install",
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lines = events(&body);
    let last = lines.last().unwrap();
    assert_eq!(last.event, t::PresetInstallEventKind::Done, "{lines:?}");
    assert!(last.preset.as_ref().unwrap().installed);
    // Every step reported in order, npm's own lines among them.
    let steps: Vec<u32> = lines.iter().map(|e| e.step).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    assert!(lines.iter().any(|e| e.step == 1
        && e.message
            .starts_with("npm install @anthropic-ai/claude-code@")));
    assert!(
        lines
            .iter()
            .any(|e| e.step == 1 && e.message.contains("npm")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|e| e.steps == presets::STEPS));
    let layer = presets_dir.path().join("coder").join(def.version_id());
    assert!(presets::is_read_only(&layer));
    assert!(layer.join("bin/claude").exists() && layer.join("bin/codex").exists());
    // No temporary directory of this install is left beside it, nor the dead one's; the
    // young one may be another server's install and stays.
    let names: Vec<String> = std::fs::read_dir(presets_dir.path().join("coder"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        [".tmp-0123456789ab-live".to_string(), def.version_id()]
    );

    let caller = app.service.authenticate(&app.admin_key).await.unwrap();
    create(&app.service, &caller, "user-of-it", Some("coder"), vec![]).await;
    let (status, body) = app
        .call(
            Method::DELETE,
            "/api/v0beta1/presets/coder",
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["removed"], serde_json::json!([]));
    assert_eq!(
        body["kept"],
        serde_json::json!([{"id": def.version_id(), "sandboxes": ["user-of-it"]}])
    );
    assert!(layer.join(presets::MANIFEST).is_file());
    app.service
        .delete_sandbox(&caller, "user-of-it")
        .await
        .unwrap();
    let (status, body) = app
        .call(
            Method::DELETE,
            "/api/v0beta1/presets/coder",
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["removed"], serde_json::json!([def.version_id()]));
    assert!(!layer.exists());
    let (_, list) = app
        .call(
            Method::GET,
            "/api/v0beta1/presets",
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(list["presets"][0]["installed"], false);
    assert_eq!(list["presets"][0]["versions"], serde_json::json!([]));
    // Both are audited, with the version id.
    let (_, events) = app
        .call(
            Method::GET,
            "/api/v0beta1/audit-events",
            Some(&app.admin_key),
            None,
        )
        .await;
    for action in ["preset.installed", "preset.removed"] {
        assert!(
            events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action
                    && e["object_type"] == "preset"
                    && e["object_id"] == def.version_id().as_str()
                    && e["object_name"] == "coder"),
            "{action}: {events}"
        );
    }
}

/// An update installs the pinned version beside an older one: new creates get the new one,
/// a sandbox created before keeps its own, across a stop and a start. (The older version is a
/// layer laid out by hand, as an earlier amika would have installed it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_installs_beside_the_old_version_and_sandboxes_keep_theirs() {
    use std::os::unix::fs::PermissionsExt;
    let presets_dir = tempfile::tempdir().unwrap();
    let old = presets_dir.path().join("coder/aaaaaaaaaaaa");
    std::fs::create_dir_all(old.join("bin")).unwrap();
    std::fs::write(old.join("bin/claude"), "#!/bin/sh\necho old claude\n").unwrap();
    std::fs::set_permissions(
        old.join("bin/claude"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    let manifest = serde_json::json!({
        "name": "coder", "id": "aaaaaaaaaaaa",
        "packages": {"@anthropic-ai/claude-code": "0.0.1", "@openai/codex": "0.0.1"},
        "installed_at": "2026-01-01T00:00:00Z", "node": "v20.0.0",
    });
    std::fs::write(old.join(presets::MANIFEST), manifest.to_string()).unwrap();
    let dir = presets_dir.path().to_path_buf();
    let app = common::app_with(None, move |c| {
        c.presets_dir = dir;
        c.warm_sandboxes = 0;
    })
    .await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let def = presets::find("coder").unwrap();

    // Only the old version is installed: a create gets it (no warning), and the list says the
    // current one is not installed.
    let before = create(svc, &caller, "before", Some("coder"), vec![]).await;
    assert_eq!(before.preset.as_deref(), Some("coder@aaaaaaaaaaaa"));
    assert!(before.warnings.is_empty(), "{:?}", before.warnings);
    let listed = svc.list_presets();
    assert!(!listed.presets[0].installed);
    assert_eq!(listed.presets[0].versions.len(), 1);

    // The update: the pinned version beside it.
    let preset = svc
        .install_preset(&caller, def, InstallProgress::none())
        .await
        .unwrap();
    assert!(preset.installed);
    let ids: Vec<&str> = preset.versions.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(
        ids,
        [def.version_id().as_str(), "aaaaaaaaaaaa"],
        "newest first"
    );
    let after = create(svc, &caller, "after", Some("coder"), vec![]).await;
    assert_eq!(after.preset, Some(format!("coder@{}", def.version_id())));
    let (code, out, _) = exec_sh(svc, &caller, "after", "claude --version").await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with(def.packages["@anthropic-ai/claude-code"].as_str()),
        "{out}"
    );

    svc.stop_sandbox(&caller, "before").await.unwrap();
    svc.start_sandbox(&caller, "before").await.unwrap();
    let (code, out, _) = exec_sh(svc, &caller, "before", "claude").await;
    assert_eq!((code, out.as_str()), (0, "old claude\n"));
    for name in ["before", "after"] {
        svc.delete_sandbox(&caller, name).await.unwrap();
    }
}
