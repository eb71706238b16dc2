//! Exec output leaves the service already redacted: a caller that consumes the service's stream
//! directly (no HTTP handler in between, as SSH and other relays will) never sees an injected
//! value, whole or as a token of an OAuth document, even split across writes.

mod common;

use std::time::{Duration, Instant};

use amika_types::{self as t, AgentKind, CredentialType, NetworkMode, SandboxState};

const API_KEY: &str = "sk-live-EXEC-REDACTION-0123456789";
const ACCESS_TOKEN: &str = "sk-ant-oat01-EXEC-REDACTION-ACCESS-0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_output_consumed_from_the_service_is_already_redacted() {
    let app = common::app_with(None, |c| c.warm_sandboxes = 0).await;
    let svc = &app.service;
    let caller = svc.authenticate(&app.admin_key).await.unwrap();
    svc.create_secret(
        &caller,
        t::CreateSecretRequest {
            name: "api".into(),
            value: API_KEY.into(),
            scope: None,
            description: None,
        },
    )
    .await
    .unwrap();
    let oauth = format!(
        r#"{{"claudeAiOauth":{{"accessToken":"{ACCESS_TOKEN}","refreshToken":"sk-ant-ort01-x","expiresAt":4102444800000}}}}"#
    );
    svc.create_credential(
        &caller,
        AgentKind::Claude,
        t::CreateCredentialRequest {
            name: "personal".into(),
            value: oauth,
            credential_type: CredentialType::Oauth,
            scope: None,
            is_default: true,
        },
    )
    .await
    .unwrap();
    let created = svc
        .create_sandbox(
            &caller,
            t::CreateSandboxRequest {
                name: "redacted-exec".into(),
                secret_env_vars: [("API".to_string(), "api".to_string())].into(),
                agent_credentials: vec![t::AgentCredentialRef {
                    kind: AgentKind::Claude,
                    name: None,
                    credential_type: None,
                    none: false,
                }],
                network: Some(NetworkMode::None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.get_sandbox(&caller, &created.id).await.unwrap().state != SandboxState::Running {
        assert!(Instant::now() < deadline, "the sandbox did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The key in two writes on stdout; the token alone on stderr; the whole document too.
    let script = format!(
        r#"printf 'key=%s'  "$(printf %s "$API" | cut -c1-10)"; sleep 0.2; printf '%s\n' "$(printf %s "$API" | cut -c11-)"; echo "token {ACCESS_TOKEN}" >&2; cat ~/.claude/.credentials.json"#
    );
    let mut exec = svc
        .exec_sandbox(
            &caller,
            "redacted-exec",
            t::ExecRequest {
                command: vec!["sh".into(), "-c".into(), script],
                cwd: None,
                timeout_secs: Some(30),
            },
        )
        .await
        .unwrap();
    let (mut out, mut err, mut code) = (String::new(), String::new(), None);
    while let Some(frame) = exec.next().await {
        match frame {
            t::ExecFrame::Stdout { data } => {
                assert!(!data.is_empty(), "an empty output frame");
                out.push_str(&data)
            }
            t::ExecFrame::Stderr { data } => err.push_str(&data),
            t::ExecFrame::Exit { code: c } => code = Some(c),
            t::ExecFrame::Error { message } => panic!("{message}"),
        }
    }
    svc.delete_sandbox(&caller, "redacted-exec").await.unwrap();

    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("key=[REDACTED:api]\n"), "{out}");
    assert!(out.contains("[REDACTED:personal]"), "{out}");
    assert_eq!(err, "token [REDACTED:personal]\n");
    for value in [API_KEY, ACCESS_TOKEN, "sk-ant-ort01-x"] {
        assert!(
            !out.contains(value) && !err.contains(value),
            "{value} leaked"
        );
    }
}
