//! Snapshots on real bwrap sandboxes and a real store and vault (issue 16): a scrubbed archive
//! holds none of the injected values (decrypted and searched here, with this test's own
//! decoding, not the server's scanner); a value the agent wrote down stops the capture and
//! names the file; a restore round-trips files, modes, symlinks and a git repository; another
//! user's sandbox and snapshot are refused; malformed requests get clear 4xx answers; a capture
//! cut short by a server stop is reconciled.

mod common;

use common::snapshots::{assert_hidden, create_running, snapshot};

use std::io::Read;
use std::time::{Duration, Instant};

use amika_server::service::Caller;
use amika_server::Service;
use amika_types::{self as t, AgentKind, CredentialType, NetworkMode, SandboxState};
use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{json, Value};

const DB_URL: &str = "postgres://app:S3cr3t-DB-PASSWORD-0001@db/app";
const CLAUDE_ACCESS: &str = "sk-ant-oat01-SNAPSHOT-ACCESS-0123456789";
const CLAUDE_REFRESH: &str = "sk-ant-ort01-SNAPSHOT-REFRESH-0123456789";
const CODEX_KEY: &str = "sk-proj-SNAPSHOT-CODEX-KEY-0123456789";
const API: &str = "/api/v0beta1";

async fn app() -> common::App {
    common::app_with(None, |c| c.warm_sandboxes = 0).await
}

/// A secret mapped to an env var, a claude OAuth file and a codex API key (env var and file).
async fn give_everything(svc: &Service, caller: &Caller) {
    svc.create_secret(
        caller,
        t::CreateSecretRequest {
            name: "db-url".into(),
            value: DB_URL.into(),
            scope: None,
            description: None,
        },
    )
    .await
    .unwrap();
    let oauth = format!(
        r#"{{"claudeAiOauth":{{"accessToken":"{CLAUDE_ACCESS}","refreshToken":"{CLAUDE_REFRESH}","expiresAt":4102444800000}}}}"#
    );
    for (kind, name, value, ty) in [
        (
            AgentKind::Claude,
            "claude-login",
            oauth,
            CredentialType::Oauth,
        ),
        (
            AgentKind::Codex,
            "codex-key",
            CODEX_KEY.to_string(),
            CredentialType::ApiKey,
        ),
    ] {
        svc.create_credential(
            caller,
            kind,
            t::CreateCredentialRequest {
                name: name.into(),
                value,
                credential_type: ty,
                scope: None,
                is_default: true,
            },
        )
        .await
        .unwrap();
    }
}

fn every_kind() -> Vec<t::AgentCredentialRef> {
    [AgentKind::Claude, AgentKind::Codex]
        .into_iter()
        .map(|kind| t::AgentCredentialRef {
            kind,
            name: None,
            credential_type: None,
            none: false,
        })
        .collect()
}

/// Run `script` with `sh -c` in the sandbox: (exit code, stdout).
async fn sh(svc: &Service, caller: &Caller, sandbox: &str, script: &str) -> (i32, String) {
    let (code, out, err) = amika_testkit::exec_sh(svc, caller, sandbox, script).await;
    if code != 0 {
        eprintln!("{script}: exit {code}, stderr: {err}");
    }
    (code, out)
}

/// The archive of snapshot `id` decrypted with the data dir's master key and this test's own
/// AAD, decompressed, and flattened: every entry's path, link target and contents.
async fn archive_bytes(app: &common::App, id: &str) -> Vec<u8> {
    let store = amika_testkit::open_store(&app.service).await;
    let row = store.get_snapshot(id).await.unwrap();
    let (key, _) = amika_vault::load_master_key_from(None, &data_dir(app), false).unwrap();
    let vault = amika_vault::Vault::new(key);
    let aad = amika_vault::Aad {
        org_id: &row.org_id,
        owner: &row.user_id,
        object_id: &row.id,
        version: 0,
        field: "snapshot.archive",
    };
    let data_key = vault.open_stream_key(&row.sealed, &aad).unwrap();
    let file = std::fs::File::open(data_dir(app).join(format!("snapshots/{id}.snap"))).unwrap();
    let plain = amika_vault::OpeningReader::new(&data_key, &aad, file).unwrap();
    let mut tar = tar::Archive::new(zstd::Decoder::new(plain).unwrap());
    let mut all = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        all.extend_from_slice(&entry.path_bytes());
        if let Some(link) = entry.link_name_bytes() {
            all.extend_from_slice(&link);
        }
        entry.read_to_end(&mut all).unwrap();
        all.push(b'\n');
    }
    all
}

fn data_dir(app: &common::App) -> std::path::PathBuf {
    app.service.config().data_dir.clone()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrubbed_snapshot_holds_no_injected_value_and_restores_files_modes_links_and_git() {
    let app = app().await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    give_everything(svc, &caller).await;
    let source = create_running(
        svc,
        &caller,
        t::CreateSandboxRequest {
            name: "prepared".into(),
            secret_env_vars: [("DATABASE_URL".to_string(), "db-url".to_string())].into(),
            agent_credentials: every_kind(),
            network: Some(NetworkMode::None),
            ..Default::default()
        },
    )
    .await;
    // Everything injected is there while it runs.
    let (code, out) = sh(svc, &caller, "prepared", "echo $DATABASE_URL; echo $OPENAI_API_KEY; cat ~/.claude/.credentials.json ~/.codex/auth.json").await;
    assert_eq!(code, 0);
    assert!(
        out.contains("[REDACTED:db-url]") && out.contains("[REDACTED:claude-login]"),
        "{out}"
    );
    let prepare = r#"set -e
        cd ~/workspace && mkdir -p app/bin && cd app
        printf 'hello snapshot\n' > README.md
        printf '#!/bin/sh\necho ran\n' > bin/run && chmod 750 bin/run
        chmod 640 README.md
        ln -s README.md readme-link && ln -s /etc/hostname abs-link
        git init -q -b main . && git -c user.name=a -c user.email=a@b add -A
        git -c user.name=a -c user.email=a@b commit -q -m 'first commit'
        git checkout -q -b feature/snap
        echo cached > ~/.cache-marker"#;
    let (code, _) = sh(svc, &caller, "prepared", prepare).await;
    assert_eq!(code, 0, "preparing the workspace");

    let preview = app
        .ok(
            Method::GET,
            &format!("{API}/sandbox-snapshots/scrub-preview?sandbox=prepared&by=ref"),
            &app.admin_key,
            None,
        )
        .await;
    assert_eq!(
        preview,
        json!({
            "files": ["/home/amika/.claude/.credentials.json", "/home/amika/.codex/auth.json"],
            "env_vars": ["DATABASE_URL", "OPENAI_API_KEY"],
        })
    );

    let snap = snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "prepared", "name": "warm-base", "description": "prepared app"}),
    )
    .await;
    assert_eq!(snap["state"], "active", "{snap}");
    assert_eq!(snap["mode"], "scrub_and_delete");
    assert_eq!(snap["source_sandbox_id"], source.as_str());
    assert!(snap["size_bytes"].as_i64().unwrap() > 0);
    // The source goes with the scrub, once the snapshot is active.
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.get_sandbox(&caller, "prepared").await.is_ok() {
        assert!(Instant::now() < deadline, "the source was not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let archive = archive_bytes(&app, snap["id"].as_str().unwrap()).await;
    assert!(
        contains(&archive, b"hello snapshot"),
        "the archive holds the workspace"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    for value in [DB_URL, CLAUDE_ACCESS, CLAUDE_REFRESH, CODEX_KEY] {
        assert!(
            !contains(&archive, value.as_bytes()),
            "{value} is in the archive"
        );
        assert!(
            !contains(&archive, b64.encode(value).as_bytes()),
            "{value} (base64) is in the archive"
        );
    }

    // A sandbox from the snapshot: the same files, modes, links and repository, and its own
    // injection.
    let from = create_running(
        svc,
        &caller,
        t::CreateSandboxRequest {
            name: "forked".into(),
            snapshot: Some("warm-base".into()),
            secret_env_vars: [("DATABASE_URL".to_string(), "db-url".to_string())].into(),
            network: Some(NetworkMode::None),
            ..Default::default()
        },
    )
    .await;
    let check = r#"cd ~/workspace/app && cat README.md && stat -c '%a %n' bin/run README.md
        readlink readme-link abs-link && cat readme-link && ./bin/run
        git log --format=%s && git branch --show-current && git status --porcelain | wc -l
        cat ~/.cache-marker; echo "db=$DATABASE_URL""#;
    let (code, out) = sh(svc, &caller, &from, check).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "hello snapshot\n750 bin/run\n640 README.md\nREADME.md\n/etc/hostname\nhello snapshot\nran\nfirst commit\nfeature/snap\n0\ncached\ndb=[REDACTED:db-url]\n"
    );
    let forked = app
        .ok(
            Method::GET,
            &format!("{API}/sandboxes/forked"),
            &app.admin_key,
            None,
        )
        .await;
    assert_eq!(forked["snapshot"], "warm-base");
    svc.delete_sandbox(&caller, "forked").await.unwrap();

    let list = app
        .ok(
            Method::GET,
            &format!("{API}/sandbox-snapshots?source_sandbox_id={source}"),
            &app.admin_key,
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    app.ok(
        Method::DELETE,
        &format!("{API}/sandbox-snapshots/warm-base?by=ref"),
        &app.admin_key,
        None,
    )
    .await;
    assert!(!data_dir(&app)
        .join(format!("snapshots/{}.snap", snap["id"].as_str().unwrap()))
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_agent_wrote_down_stops_the_capture_and_names_the_file() {
    let app = app().await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    give_everything(svc, &caller).await;
    create_running(
        svc,
        &caller,
        t::CreateSandboxRequest {
            name: "leaky".into(),
            secret_env_vars: [("DATABASE_URL".to_string(), "db-url".to_string())].into(),
            agent_credentials: every_kind(),
            network: Some(NetworkMode::None),
            ..Default::default()
        },
    )
    .await;
    let leak = r#"cd ~/workspace && echo "DATABASE_URL=$DATABASE_URL" > .env
        printf %s "$OPENAI_API_KEY" | base64 > encoded.txt
        echo fine > clean.txt"#;
    assert_eq!(sh(svc, &caller, "leaky", leak).await.0, 0);
    let snap = snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "leaky", "name": "leaky-snap"}),
    )
    .await;
    assert_eq!(snap["state"], "failed", "{snap}");
    let message = snap["error_message"].as_str().unwrap();
    assert!(message.contains("~/workspace/.env (db-url)"), "{message}");
    assert!(
        message.contains("~/workspace/encoded.txt (codex-key)"),
        "{message}"
    );
    assert!(!message.contains("clean.txt"), "{message}");
    for value in [DB_URL, CODEX_KEY] {
        assert!(!message.contains(value), "the message shows a value");
    }
    assert!(message.contains("--mode full"), "{message}");
    // The sandbox is as it was: running again, its files untouched; no archive was left.
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.get_sandbox(&caller, "leaky").await.unwrap().state != SandboxState::Running {
        assert!(Instant::now() < deadline, "the source was not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, out) = sh(
        svc,
        &caller,
        "leaky",
        "cat ~/workspace/clean.txt; wc -l < ~/workspace/.env",
    )
    .await;
    assert_eq!(out, "fine\n1\n");
    let files: Vec<_> = std::fs::read_dir(data_dir(&app).join("snapshots"))
        .unwrap()
        .collect();
    assert!(files.is_empty(), "a refused capture left {files:?}");

    // `full` keeps everything, and the source.
    let full = snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "leaky", "name": "leaky-snap", "mode": "full"}),
    )
    .await;
    assert_eq!(full["state"], "active", "{full}");
    assert!(contains(
        &archive_bytes(&app, full["id"].as_str().unwrap()).await,
        DB_URL.as_bytes()
    ));
    assert!(svc.get_sandbox(&caller, "leaky").await.is_ok());
    let audit = app
        .ok(
            Method::GET,
            &format!("{API}/audit-events"),
            &app.admin_key,
            None,
        )
        .await;
    let text = audit.to_string();
    assert!(
        text.contains("snapshot.refused") && text.contains("\"unsafe\":true"),
        "{text}"
    );
    svc.delete_sandbox(&caller, "leaky").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_sandbox_and_snapshot_are_refused_and_bad_requests_say_why() {
    let app = app().await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    create_running(
        svc,
        &caller,
        t::CreateSandboxRequest {
            name: "mine".into(),
            network: Some(NetworkMode::None),
            ..Default::default()
        },
    )
    .await;
    let snap = snapshot(
        &app,
        &app.admin_key,
        json!({"sandbox_ref": "mine", "name": "my-snap", "mode": "full"}),
    )
    .await;
    assert_eq!(snap["state"], "active", "{snap}");

    app.ok(
        Method::POST,
        &format!("{API}/admin/orgs"),
        &app.admin_key,
        Some(json!({"name": "other-org"})),
    )
    .await;
    let other = app.user("mallory", "other-org", false).await;
    let post = |key: String, body: Value| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("{API}/sandbox-snapshots"),
                Some(&key),
                Some(body),
            )
            .await
        }
    };
    let (status, body) = post(
        other.clone(),
        json!({"sandbox_ref": "mine", "name": "stolen"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = post(
        other.clone(),
        json!({"sandbox_ref": snap["source_sandbox_id"], "name": "stolen"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_hidden(&app, &other, &snap, "my-snap").await;
    let (status, _) = app
        .call(
            Method::GET,
            &format!("{API}/sandbox-snapshots/scrub-preview?sandbox=mine"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let key = app.admin_key.clone();
    let cases = [
        (
            json!({"sandbox_ref": "mine", "name": "x", "mode": "partial"}),
            StatusCode::BAD_REQUEST,
            "scrub_and_delete or full",
        ),
        (
            json!({"sandbox_ref": "mine", "name": ""}),
            StatusCode::BAD_REQUEST,
            "snapshot name must not be empty",
        ),
        (
            json!({"sandbox_ref": "mine", "name": "a b"}),
            StatusCode::BAD_REQUEST,
            "invalid snapshot name \"a b\"",
        ),
        (
            json!({"sandbox_ref": "mine"}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            json!({"sandbox_ref": "", "name": "x"}),
            StatusCode::BAD_REQUEST,
            "sandbox_ref must name",
        ),
        (
            json!({"sandbox_ref": "nope", "name": "x"}),
            StatusCode::NOT_FOUND,
            "sandbox \"nope\" not found",
        ),
        (
            json!({"sandbox_ref": "mine", "name": "x", "colour": 1}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (
            json!({"sandbox_ref": "mine", "name": "my-snap", "mode": "full"}),
            StatusCode::CONFLICT,
            "already exists",
        ),
    ];
    for (body, want, says) in cases {
        let (status, answer) = post(key.clone(), body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let bad_creates = [
        (
            json!({"name": "f1", "snapshot": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "snapshot \"nope\" not found",
        ),
        (
            json!({"name": "f2", "snapshot": "my-snap", "repo_url": "https://example.com/r.git"}),
            StatusCode::BAD_REQUEST,
            "mutually exclusive",
        ),
    ];
    for (body, want, says) in bad_creates {
        let (status, answer) = app
            .call(
                Method::POST,
                &format!("{API}/sandboxes"),
                Some(&key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, want, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let (status, answer) = app
        .call(
            Method::GET,
            &format!("{API}/sandbox-snapshots/scrub-preview"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = app
        .call(
            Method::DELETE,
            &format!("{API}/sandbox-snapshots/my-snap?by=colour"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    svc.delete_sandbox(&caller, "mine").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_cut_short_by_a_server_stop_leaves_no_half_snapshot_and_keeps_the_source() {
    let app = app().await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let id = create_running(
        svc,
        &caller,
        t::CreateSandboxRequest {
            name: "cut".into(),
            network: Some(NetworkMode::None),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        sh(svc, &caller, "cut", "echo kept > ~/workspace/kept.txt")
            .await
            .0,
        0
    );
    // What a server killed mid-capture leaves: the source `snapshotting` with its processes
    // gone, a `capturing` row and a partial archive.
    svc.stop_sandbox(&caller, "cut").await.unwrap();
    let store = amika_testkit::open_store(svc).await;
    let at = chrono::Utc::now();
    assert!(store
        .transition_sandbox(
            &id,
            SandboxState::Stopped,
            SandboxState::Snapshotting,
            None,
            at
        )
        .await
        .unwrap());
    let row = amika_store::SnapshotRow {
        id: "snap_cut".into(),
        org_id: caller.org_id.clone(),
        user_id: caller.user_id.clone(),
        name: "half".into(),
        description: None,
        scope: t::Scope::User,
        mode: t::SnapshotMode::ScrubAndDelete,
        state: t::SnapshotState::Capturing,
        error_message: None,
        provider: "local".into(),
        source_sandbox_id: Some(id.clone()),
        source_sandbox_name: Some("cut".into()),
        repo: None,
        preset: None,
        size: None,
        size_bytes: None,
        sealed: Default::default(),
        created_at: at,
        updated_at: at,
    };
    store.insert_snapshot(&row).await.unwrap();
    let dir = data_dir(&app).join("snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("snap_cut.snap.partial"), b"half an archive").unwrap();
    std::fs::write(dir.join("snap_gone.snap"), b"an archive without a row").unwrap();

    let changes = svc.reconcile_sandboxes().await.unwrap();
    assert!(!changes.is_empty());
    let changes = svc.reconcile_snapshots().await.unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    let half = app
        .ok(
            Method::GET,
            &format!("{API}/sandbox-snapshots/half"),
            &app.admin_key,
            None,
        )
        .await;
    assert_eq!(half["state"], "failed");
    assert!(
        half["error_message"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{half}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let source = svc.get_sandbox(&caller, "cut").await.unwrap();
    assert_eq!(source.state, SandboxState::Stopped);
    svc.start_sandbox(&caller, "cut").await.unwrap();
    create_running_again(svc, &caller, "cut").await;
    assert_eq!(
        sh(svc, &caller, "cut", "cat ~/workspace/kept.txt").await.1,
        "kept\n"
    );
    svc.delete_sandbox(&caller, "cut").await.unwrap();
}

async fn create_running_again(svc: &Service, caller: &Caller, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.get_sandbox(caller, name).await.unwrap().state != SandboxState::Running {
        assert!(Instant::now() < deadline, "{name} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `rotate-key` re-wraps a snapshot's data key with every other one: a snapshot taken before a
/// rotation restores after it (the archive itself is not rewritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_before_a_key_rotation_still_restores() {
    let app = app().await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let req = t::CreateSandboxRequest {
        name: "rot".into(),
        network: Some(NetworkMode::None),
        ..Default::default()
    };
    create_running(svc, &caller, req).await;
    let script = "echo before-rotation > ~/workspace/f.txt";
    assert_eq!(sh(svc, &caller, "rot", script).await.0, 0);
    let body = json!({"sandbox_ref": "rot", "name": "pre", "mode": "full"});
    let snap = snapshot(&app, &app.admin_key, body).await;
    assert_eq!(snap["state"], "active", "{snap}");
    svc.delete_sandbox(&caller, "rot").await.unwrap();
    let old_kek = svc.kek_id().to_string();

    let config = svc.config().clone();
    let new_kek = amika_server::rotate_key(&config, None).await.unwrap();
    assert_ne!(new_kek, old_kek);
    let opened = amika_server::open(config).await.unwrap();
    let svc = &opened.service;
    let store = amika_testkit::open_store(svc).await;
    assert_eq!(store.kek_ids_in_use().await.unwrap(), vec![new_kek]);
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    let req = t::CreateSandboxRequest {
        name: "after".into(),
        network: Some(NetworkMode::None),
        snapshot: Some("pre".into()),
        ..Default::default()
    };
    create_running(svc, &caller, req).await;
    let (code, out) = sh(svc, &caller, "after", "cat ~/workspace/f.txt").await;
    assert_eq!((code, out.as_str()), (0, "before-rotation\n"));
    svc.delete_sandbox(&caller, "after").await.unwrap();
}
