//! The coder preset's real `claude -p` and `codex exec` sent a message in sandboxes with network
//! `none`, through the real HTTP API of a real server on 127.0.0.1: each agent's failure to
//! reach its provider comes back as `agent_unreachable` with a message that says so and names
//! the network mode (never an expired credential, as issue 20 found), and every answer comes
//! within its deadline plus a small grace, including the agents that would retry for minutes.
//!
//! Nothing leaves the sandboxes (network `none`: loopback only); credential values are fakes.
//!
//! Measured here (see `src/service/agents/offline_outputs/README.md`): Claude Code retries its
//! API call 10 times, about 3 minutes, before it answers "Can't reach the API server".
//! `CLAUDE_CODE_MAX_RETRIES` (read by the pinned build: a value ≥ 0 replaces its default of 10,
//! clamped to 15) set to 0 makes it answer in seconds (2–30 s here; its start-up fetches take
//! most of them).
//! Codex with a ChatGPT login gives up after about 3 minutes; with an API key it waits for the
//! network until it is killed.

mod coder_support;

use std::time::{Duration, Instant};

use amika_server::service::Caller;
use amika_testkit::{RunningServer, ServerBuilder};
use amika_types::{self as t, AgentKind};
use coder_support::{create_offline, install_coder, pin, push_credentials, shared_presets_dir};
use serde_json::{json, Value};

/// How late after its deadline an answer may come: the kill, the rows, the HTTP answer.
const GRACE: Duration = Duration::from_secs(5);

/// One send of the test: where, to which agent, with which deadline.
struct Send {
    sandbox: &'static str,
    agent: &'static str,
    timeout_secs: u64,
}

/// The answer of a send and how long it took.
struct Answer {
    status: u16,
    body: Value,
    took: Duration,
}

/// `POST /sandboxes/{sandbox}/agent-send` over the real socket.
async fn agent_send(server: &RunningServer, send: &Send) -> Answer {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(send.timeout_secs) + Duration::from_secs(120))
        .build()
        .unwrap();
    let started = Instant::now();
    let resp = http
        .post(format!(
            "{}/api/v0beta1/sandboxes/{}/agent-send",
            server.url, send.sandbox
        ))
        .bearer_auth(server.admin_key())
        .json(&json!({
            "message": "say hi",
            "agent": send.agent,
            "timeout_secs": send.timeout_secs,
        }))
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let body = resp.json().await.expect("a JSON answer");
    Answer {
        status,
        body,
        took: started.elapsed(),
    }
}

/// The sandboxes: one per credential type of each agent; `CLAUDE_CODE_MAX_RETRIES=0` (a user's
/// env var, as anyone may set it) in the two where Claude should end by itself, the default
/// retries in `retry-box`.
async fn sandboxes(svc: &amika_server::Service, caller: &Caller) {
    let no_retries = || [("CLAUDE_CODE_MAX_RETRIES".to_string(), "0".to_string())].into();
    for (name, creds, env_vars) in [
        (
            "oauth-box",
            vec![
                pin(AgentKind::Claude, Some("claude-oauth")),
                pin(AgentKind::Codex, Some("codex-oauth")),
            ],
            no_retries(),
        ),
        (
            "key-box",
            vec![
                pin(AgentKind::Claude, Some("claude-key")),
                pin(AgentKind::Codex, Some("codex-key")),
            ],
            no_retries(),
        ),
        (
            "retry-box",
            vec![pin(AgentKind::Claude, Some("claude-key"))],
            Default::default(),
        ),
    ] {
        let req = t::CreateSandboxRequest {
            name: name.into(),
            preset: Some("coder".into()),
            agent_credentials: creds,
            env_vars,
            ..Default::default()
        };
        create_offline(svc, caller, req).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agents_without_a_network_answer_unreachable_within_their_deadline() {
    let test = ServerBuilder::new()
        .configure(|c| {
            c.presets_dir = shared_presets_dir();
            c.warm_sandboxes = 0;
        })
        .open()
        .await
        .expect("server opens");
    let svc = test.service.clone();
    install_coder(&svc).await;
    let caller = svc.authenticate(&test.admin_key).await.unwrap();
    push_credentials(&svc, &caller).await;
    sandboxes(&svc, &caller).await;
    let server = std::sync::Arc::new(test.serve().await.expect("server serves"));

    let sends = [
        // Claude without its retries ends by itself: oauth and api key alike.
        ("oauth-box", "claude", 120),
        ("key-box", "claude", 120),
        // Codex is still reconnecting at its deadline: ChatGPT login and api key.
        ("oauth-box", "codex", 45),
        ("key-box", "codex", 45),
        // Claude retrying for minutes, silent until its end, stopped at a short deadline.
        ("retry-box", "claude", 6),
    ]
    .map(|(sandbox, agent, timeout_secs)| Send {
        sandbox,
        agent,
        timeout_secs,
    });
    let mut tasks = Vec::new();
    for send in sends {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let answer = agent_send(&server, &send).await;
            (send, answer)
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    for (send, answer) in &answers {
        let what = format!(
            "{} in {} ({}s deadline, answered in {:.1}s): {:#}",
            send.agent,
            send.sandbox,
            send.timeout_secs,
            answer.took.as_secs_f64(),
            answer.body
        );
        eprintln!("{what}");
        assert_eq!(answer.status, 200, "{what}");
        let body = &answer.body;
        assert_eq!(body["is_error"], true, "{what}");
        assert!(
            answer.took < Duration::from_secs(send.timeout_secs) + GRACE,
            "{what}"
        );
        let response = body["response"].as_str().unwrap();
        // Never the credential's fault.
        assert!(!response.contains("expired"), "{what}");
        assert!(!response.contains("authenticate"), "{what}");
        let none =
            "this sandbox's network mode is none, which lets no connection out of the sandbox";
        assert!(response.contains(none), "{what}");
        match (send.sandbox, send.agent) {
            ("retry-box", _) => {
                assert_eq!(body["error_code"], "agent_timeout", "{what}");
                assert!(
                    answer.took >= Duration::from_secs(send.timeout_secs),
                    "{what}"
                );
                assert_eq!(
                    response,
                    format!(
                        "the agent did not finish within 6s and was stopped (its processes were killed); \
                         {none}, so the agent could not reach its provider from it"
                    )
                );
            }
            (_, "claude") => {
                assert_eq!(body["error_code"], "agent_unreachable", "{what}");
                assert_eq!(body["exit_code"], 1, "{what}");
                assert_eq!(
                    response,
                    format!(
                        "the agent could not reach its provider: {none}: an agent needs a sandbox \
                         created with network egress to reach its provider. Its last connection \
                         error: API Error: Can't reach the API server — check your internet or DNS \
                         (EAI_AGAIN)"
                    )
                );
            }
            (sandbox, _) => {
                assert_eq!(body["error_code"], "agent_unreachable", "{what}");
                assert_eq!(body["exit_code"], Value::Null, "{what}");
                assert!(
                    answer.took >= Duration::from_secs(send.timeout_secs),
                    "{what}"
                );
                // With its ChatGPT login Codex first refreshes the token (auth.openai.com),
                // and says where it tried; with an API key it names no host.
                let hosts: &[&str] = match sandbox {
                    "oauth-box" => &[" (auth.openai.com)", " (chatgpt.com)"],
                    _ => &[""],
                };
                let said = |host: &&str| {
                    response.starts_with(&format!(
                        "the agent did not finish within 45s and was stopped (its processes were \
                         killed); until then it could not reach its provider{host}: {none}"
                    ))
                };
                assert!(hosts.iter().any(said), "{what}");
            }
        }
        // The session records the failure as the answer did.
        let session = svc
            .get_agent_session(&caller, send.sandbox, body["session_id"].as_str().unwrap())
            .await
            .unwrap();
        let session = serde_json::to_value(session).unwrap();
        assert_eq!(session["status"], "failed", "{session:#}");
        let turn = &session["transcript"][0];
        assert_eq!(turn["error_code"], body["error_code"], "{session:#}");
        assert_eq!(turn["response"], body["response"], "{session:#}");
    }
    for name in ["oauth-box", "key-box", "retry-box"] {
        svc.delete_sandbox(&caller, name).await.unwrap();
    }
}
