//! No secret or credential value leaves through what agents and their clients leave behind: a
//! session's transcript (messages, replies, error texts), a session's metadata (a client that
//! writes a value into it gets it back redacted), the audit events of sessions (keys, never
//! values), or the installed coder layer (scanned file by file after the real CLIs ran with
//! every value in reach).
//!
//! The replies come from a *stand-in* Claude (`STAND_IN`, a test agent configured as the
//! server's claude command, not the real CLI, which cannot answer here) that prints every value
//! it can see; the real `claude` and `codex` run in the same sandboxes for the layer's scan.
//! Sandboxes have network `none`.

mod coder_support;

use amika_testkit::exec_sh;
mod common;

use amika_server::service::agents::AgentCommand;
use amika_server::service::Caller;
use amika_server::Service;
use amika_types::{self as t, AgentKind};
use axum::http::{Method, StatusCode};
use base64::Engine;
use coder_support::{
    assert_no_value_in, create_offline, install_coder, layer, pin, push_credentials,
    shared_presets_dir, CLAUDE_ACCESS, CLAUDE_KEY, CLAUDE_REFRESH, CODEX_ACCESS, CODEX_KEY,
    CODEX_REFRESH, CREDENTIAL_VALUES,
};
use serde_json::{json, Value};

const B: &str = "/api/v0beta1";
const DB_URL: &str = "postgres://app:values-db-pw-3c9e1f@db:5432/app";

/// A stand-in Claude: prints, as `claude -p --output-format json` would, a result holding the
/// message, every injected env var and both agents' credential files; a message starting with
/// `fail` makes it print them on stderr and exit 3 instead.
const STAND_IN: &str = r#"
esc() { sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr '\n' ' '; }
msg=$(printf '%s' "$1" | esc)
files=$(cat "$HOME/.claude/.credentials.json" "$HOME/.codex/auth.json" 2>/dev/null | esc)
text="you said: $msg | $ANTHROPIC_API_KEY $OPENAI_API_KEY $DB_URL | $files"
case "$1" in fail*) printf 'stand-in failed: %s\n' "$text" >&2; exit 3;; esac
printf '{"type":"result","is_error":false,"result":"%s","session_id":"stand-in-1"}\n' "$text"
"#;

fn stand_in_claude() -> AgentCommand {
    let argv = |extra: &[&str]| {
        ["sh", "-c", STAND_IN, "claude-stand-in", "{message}"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    AgentCommand {
        new_session: argv(&[]),
        resume: argv(&["{session}"]),
    }
}

/// Every value the test's sandboxes were given, raw and base64-encoded.
fn every_value() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    CREDENTIAL_VALUES
        .iter()
        .chain([&DB_URL])
        .flat_map(|v| [v.to_string(), b64.encode(v)])
        .collect()
}

/// Fails when `what` holds any of the values, raw or base64.
fn assert_no_value(what: &str, body: &Value) {
    let text = body.to_string();
    for value in every_value() {
        assert!(!text.contains(&value), "{what} holds a value: {body:#}");
    }
}

async fn secret(svc: &Service, caller: &Caller) {
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
}

/// `a-box`: claude oauth, codex api key; `b-box`: claude api key, codex ChatGPT; both with
/// `DB_URL` and the coder preset. Every value is injected into one of them.
async fn sandboxes(svc: &Service, caller: &Caller) {
    for (name, claude, codex) in [
        ("a-box", "claude-oauth", "codex-key"),
        ("b-box", "claude-key", "codex-oauth"),
    ] {
        let req = t::CreateSandboxRequest {
            name: name.into(),
            preset: Some("coder".into()),
            secret_env_vars: [("DB_URL".to_string(), "db-url".to_string())].into(),
            agent_credentials: vec![
                pin(AgentKind::Claude, Some(claude)),
                pin(AgentKind::Codex, Some(codex)),
            ],
            ..Default::default()
        };
        create_offline(svc, caller, req).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_reaches_a_transcript_session_metadata_or_the_preset_layer() {
    let app = common::app_with(None, |c| {
        c.presets_dir = shared_presets_dir();
        c.warm_sandboxes = 0;
        c.agent_commands
            .insert(AgentKind::Claude, stand_in_claude());
    })
    .await;
    let svc = &app.service;
    install_coder(svc).await;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    push_credentials(svc, &caller).await;
    secret(svc, &caller).await;
    sandboxes(svc, &caller).await;
    let key = app.admin_key.clone();

    for (sandbox, own) in [
        ("a-box", [CLAUDE_ACCESS, CLAUDE_REFRESH, CODEX_KEY, DB_URL]),
        ("b-box", [CLAUDE_KEY, CODEX_ACCESS, CODEX_REFRESH, DB_URL]),
    ] {
        let sessions = format!("{B}/sandboxes/{sandbox}/sessions");
        // A client writes the sandbox's own values into metadata, as values and as a key.
        let metadata = json!({
            "ticket": "ENG-7",
            "db": own[3],
            own[0]: "as a key",
            "nested": {"list": [own[1], 7]},
        });
        let (status, created) = app
            .call(
                Method::POST,
                &sessions,
                Some(&key),
                Some(json!({"agent_name": "claude", "metadata": metadata})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created:#}");
        assert_no_value("a created session", &created);
        assert_eq!(created["metadata"]["ticket"], "ENG-7");
        assert_eq!(
            created["metadata"]["db"], "[REDACTED:db-url]",
            "{created:#}"
        );
        let sid = created["id"].as_str().unwrap().to_string();
        let (status, patched) = app
            .call(
                Method::PATCH,
                &format!("{sessions}/{sid}"),
                Some(&key),
                Some(json!({"metadata": {"token": own[2], "ticket": null}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched:#}");
        assert_no_value("a patched session", &patched);
        assert!(
            patched["metadata"]["token"]
                .as_str()
                .unwrap()
                .starts_with("[REDACTED:"),
            "{patched:#}"
        );

        // Sends whose message holds values, to an agent that prints every value it sees.
        for message in [
            format!("hello, here is {} and {}", own[3], own[0]),
            format!("fail loudly with {}", own[2]),
        ] {
            let answer = app
                .ok(
                    Method::POST,
                    &format!("{B}/sandboxes/{sandbox}/agent-send"),
                    &key,
                    Some(json!({"message": message, "session_id": sid, "timeout_secs": 60})),
                )
                .await;
            assert_no_value("an agent's answer", &answer);
            assert!(
                answer["response"].as_str().unwrap().contains("[REDACTED:"),
                "the stand-in printed the values, redacted: {answer:#}"
            );
        }
        let got = app
            .ok(Method::GET, &format!("{sessions}/{sid}"), &key, None)
            .await;
        assert_eq!(got["transcript"].as_array().unwrap().len(), 2, "{got:#}");
        assert_eq!(
            got["transcript"][1]["error_code"], "agent_crashed",
            "{got:#}"
        );
        assert_no_value("a session with its transcript", &got);
        let listed = app.ok(Method::GET, &sessions, &key, None).await;
        assert_no_value("the list of sessions", &listed);

        // The real CLIs, with every value of the sandbox in reach.
        for script in ["claude auth status", "codex login status"] {
            let (_, out, err) = exec_sh(svc, &caller, sandbox, script).await;
            assert_no_value(script, &json!([out, err]));
        }
    }
    let events = app
        .ok(
            Method::GET,
            &format!("{B}/audit-events?limit=1000"),
            &key,
            None,
        )
        .await;
    assert_no_value("the audit events", &events);
    // The layer the CLIs ran from holds none of them, in any file.
    let values = every_value();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    assert_no_value_in(&layer(), &values);
    for name in ["a-box", "b-box"] {
        svc.delete_sandbox(&caller, name).await.unwrap();
    }
}

/// The `agent.session_*` events of `events` about session `sid`, oldest first.
fn session_events<'a>(events: &'a Value, sid: &str) -> Vec<&'a Value> {
    let mut found: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["session_id"] == sid)
        .filter(|e| e["action"].as_str().unwrap().starts_with("agent.session_"))
        .collect();
    found.reverse();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_creates_and_updates_are_audited_with_keys_never_values() {
    let app = common::app_with(None, |c| c.warm_sandboxes = 0).await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    push_credentials(svc, &caller).await;
    let req = t::CreateSandboxRequest {
        name: "audited".into(),
        agent_credentials: vec![pin(AgentKind::Claude, Some("claude-key"))],
        ..Default::default()
    };
    let sandbox = create_offline(svc, &caller, req).await;
    let key = app.admin_key.clone();
    let sessions = format!("{B}/sandboxes/audited/sessions");
    let secret_looking = "ticket-value-8d1e";
    let created = app
        .ok(
            Method::POST,
            &sessions,
            &key,
            Some(json!({"agent_name": "claude", "metadata": {"ticket": secret_looking, "owner": "alice-value"}})),
        )
        .await;
    let sid = created["id"].as_str().unwrap();
    for patch in [
        json!({"status": "completed", "metadata": {"ticket": null, "note": "note-value-2f"}}),
        json!({"metadata": {"owner": "alice-value"}}),
    ] {
        app.ok(
            Method::PATCH,
            &format!("{sessions}/{sid}"),
            &key,
            Some(patch),
        )
        .await;
    }
    let events = app
        .ok(
            Method::GET,
            &format!("{B}/audit-events?limit=1000"),
            &key,
            None,
        )
        .await;
    let found = session_events(&events, sid);
    let summary: Vec<(&Value, &Value)> =
        found.iter().map(|e| (&e["action"], &e["detail"])).collect();
    assert_eq!(
        summary,
        [
            (
                &json!("agent.session_created"),
                &json!({"agent": "claude", "credential": "claude-key", "session_id": sid,
                        "status": "idle", "metadata_keys": ["owner", "ticket"]})
            ),
            (
                &json!("agent.session_updated"),
                &json!({"agent": "claude", "session_id": sid, "status": "completed",
                        "previous_status": "idle", "metadata_keys_changed": ["note", "ticket"]})
            ),
            // An owner set to what it was changes nothing; the event still records the PATCH.
            (
                &json!("agent.session_updated"),
                &json!({"agent": "claude", "session_id": sid, "metadata_keys_changed": []})
            ),
        ],
        "{events:#}"
    );
    for e in &found {
        assert_eq!(e["object_type"], "sandbox");
        assert_eq!(e["object_id"], sandbox.id.as_str());
        assert_eq!(e["sandbox_id"], sandbox.id.as_str());
        let text = e.to_string();
        for value in [secret_looking, "alice-value", "note-value-2f", CLAUDE_KEY] {
            assert!(!text.contains(value), "{e:#}");
        }
    }
    svc.delete_sandbox(&caller, "audited").await.unwrap();
}
