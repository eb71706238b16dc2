//! The live side of the agent message box through the real router (real store, vault and
//! bubblewrap sandboxes with the stand-in agent, `cli/tests/fixtures/fake-claude.sh`): the
//! job events route a signed-in page follows (session cookie, nobody else's jobs, the API's
//! event shapes, redaction) and Cancel (a CSRF-checked form that stops a running send).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::flow_tests::{agent_sandbox, delete_sandbox, sessions, Answer, Ui, AGENT_KEY};
use amika_testkit::sse::{self, shape, streamed_text};
use amika_types as t;

/// The value of `attr="..."` on the page's first element that has it.
fn attribute(page: &str, attr: &str) -> String {
    let key = format!("{attr}=\"");
    let at = page
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} in {page}"))
        + key.len();
    page[at..].split('"').next().unwrap().to_string()
}

/// Send `message` from the sandbox page's form (as the signed-in user of `cookie`), then the
/// page the browser is sent back to.
async fn send_from_page(ui: &Ui, cookie: &str, name: &str, message: &str) -> Answer {
    let page = ui.get(&format!("/sandboxes/{name}"), Some(cookie)).await;
    let sent = ui
        .post(
            &format!("/sandboxes/{name}/agent-send"),
            Some(cookie),
            &[
                ("_csrf", &page.csrf()),
                ("message", message),
                ("agent", "claude"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    ui.get(&format!("/sandboxes/{name}"), Some(cookie)).await
}

/// The sandbox's latest send, as its transcript records it.
async fn last_turn(ui: &Ui, name: &str) -> t::AgentTurn {
    let caller = ui.caller().await;
    let latest = sessions(ui, name).await.sessions[0].id.clone();
    let session = ui
        .service
        .get_agent_session(&caller, name, &latest)
        .await
        .unwrap();
    session.transcript.unwrap().pop().unwrap()
}

/// Whether the stand-in's `sleep 297` runs in the sandbox.
async fn agent_sleeping(ui: &Ui, name: &str) -> bool {
    let caller = ui.caller().await;
    let script = "for p in /proc/[0-9]*; do tr '\\0' ' ' < \"$p/cmdline\" 2>/dev/null; echo; done";
    let mut exec = ui
        .service
        .exec_sandbox(
            &caller,
            name,
            t::ExecRequest {
                command: ["sh", "-c", script].map(String::from).to_vec(),
                cwd: None,
                timeout_secs: Some(30),
            },
        )
        .await
        .unwrap();
    let mut out = String::new();
    while let Some(frame) = exec.next().await {
        if let t::ExecFrame::Stdout { data } = frame {
            out.push_str(&data);
        }
    }
    out.contains("sleep 297")
}

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_page_follows_its_send_by_the_session_cookie_with_the_apis_events() {
    let ui = Ui::new().await;
    agent_sandbox(&ui, "live-box").await;
    let cookie = ui.sign_in(&ui.admin_key).await;

    // While the stand-in waits (simulate-slow), the page carries the events URL of the send.
    let page = send_from_page(&ui, &cookie, "live-box", "simulate-slow echo-credential").await;
    assert!(
        page.body.contains("data-in-flight=\"true\""),
        "{}",
        page.body
    );
    let events_url = attribute(&page.body, "data-events");
    let job = last_turn(&ui, "live-box").await;
    let sandbox_id = ui
        .service
        .get_sandbox(&ui.caller().await, "live-box")
        .await
        .unwrap()
        .id;
    assert_eq!(
        events_url,
        format!("/sandboxes/{sandbox_id}/agent-jobs/{}/events", job.id)
    );
    // The pending reply says how long it has run; without scripts the page still reloads.
    assert!(page.body.contains("class=\"elapsed\" data-elapsed-ms=\""));
    assert!(page
        .body
        .contains("<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>"));

    let live = ui.get(&events_url, Some(&cookie)).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    assert!(live.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse::events(&live.body);
    let shapes = shape(&events);
    assert!(shapes[0].starts_with("status:"), "{shapes:?}");
    assert!(shapes.contains(&"delta:tool_call".into()), "{shapes:?}");
    assert_eq!(
        shapes.last().map(String::as_str),
        Some("done"),
        "{shapes:?}"
    );
    let done = events.last().unwrap();
    assert_eq!(done["job_id"], json!(job.id));
    assert_eq!(streamed_text(&events), done["response"].as_str().unwrap());
    // The stand-in printed its raw key: redacted in every event.
    assert!(live.body.contains("[REDACTED:work-key]"), "{}", live.body);
    assert!(!live.body.contains(AGENT_KEY), "a value in the events");

    // After its end: its status and its answer, as the API gives them.
    let after = sse::events(&ui.get(&events_url, Some(&cookie)).await.body);
    assert_eq!(shape(&after), ["status:done", "done"]);
    assert_eq!(after[1]["response"], done["response"]);

    // Without a session: the sign-in page, as for every page. No such job: a JSON 404.
    let anonymous = ui.get(&events_url, None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(anonymous.location().starts_with("/login"));
    let missing = ui
        .get(
            "/sandboxes/live-box/agent-jobs/job_nope/events",
            Some(&cookie),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let err: Value = serde_json::from_str(&missing.body).unwrap();
    assert_eq!(err["error"]["code"], json!("not_found"));
    delete_sandbox(&ui, "live-box").await;
}

#[tokio::test]
async fn another_users_job_is_not_found_whatever_sandbox_it_is_asked_under() {
    let ui = Ui::new().await;
    agent_sandbox(&ui, "mine").await;
    let admin = ui.caller().await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    send_from_page(&ui, &cookie, "mine", "hello").await;
    let job = last_turn(&ui, "mine").await.id;
    let mine = ui.service.get_sandbox(&admin, "mine").await.unwrap().id;

    // Another user of the same org, with a sandbox of their own.
    let (_, key) = ui
        .service
        .create_user(
            &admin,
            t::CreateUserRequest {
                name: "mallory".into(),
                org: admin.org_id.clone(),
                is_admin: false,
            },
        )
        .await
        .unwrap();
    let mallory = ui.service.authenticate(key.as_str()).await.unwrap();
    let theirs = ui
        .service
        .create_sandbox(
            &mallory,
            t::CreateSandboxRequest {
                name: "theirs".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let other = ui.sign_in(key.as_str()).await;
    for path in [
        format!("/sandboxes/{mine}/agent-jobs/{job}/events"),
        format!("/sandboxes/mine/agent-jobs/{job}/events"),
        format!("/sandboxes/{}/agent-jobs/{job}/events", theirs.id),
    ] {
        let a = ui.get(&path, Some(&other)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.body);
        assert!(!a.body.contains("echo: hello"), "{}", a.body);
    }
    // The owner still follows it; once it has ended, from its row: its status and its answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while last_turn(&ui, "mine").await.finished_at.is_none() {
        assert!(std::time::Instant::now() < deadline, "the send did not end");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let own = ui
        .get(
            &format!("/sandboxes/{mine}/agent-jobs/{job}/events"),
            Some(&cookie),
        )
        .await;
    assert_eq!(shape(&sse::events(&own.body)), ["status:done", "done"]);
    ui.service.delete_sandbox(&mallory, "theirs").await.unwrap();
    delete_sandbox(&ui, "mine").await;
}

#[tokio::test]
async fn an_agent_that_cannot_authenticate_ends_the_page_events_with_the_apis_error() {
    let ui = Ui::new().await;
    agent_sandbox(&ui, "denied").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    send_from_page(&ui, &cookie, "denied", "simulate-auth").await;
    let job = last_turn(&ui, "denied").await.id;
    let a = ui
        .get(
            &format!("/sandboxes/denied/agent-jobs/{job}/events"),
            Some(&cookie),
        )
        .await;
    let events = sse::events(&a.body);
    assert_eq!(
        shape(&events).last().map(String::as_str),
        Some("error"),
        "{}",
        a.body
    );
    let error = events.last().unwrap();
    assert_eq!(error["code"], json!("agent_auth_failed"));
    assert_eq!(error["details"][0]["field"], json!("agent"));
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("could not authenticate"));
    delete_sandbox(&ui, "denied").await;
}

#[tokio::test]
async fn cancel_stops_a_running_send_and_needs_the_csrf_token() {
    let ui = Ui::new().await;
    agent_sandbox(&ui, "sleeper").await;
    let cookie = ui.sign_in(&ui.admin_key).await;
    let page = send_from_page(&ui, &cookie, "sleeper", "simulate-sleep").await;
    wait_until("the agent to start", || agent_sleeping(&ui, "sleeper")).await;

    // The pending reply has a Cancel form; a follower of the send is waiting for its end.
    let action = attribute(
        &page.body[page.body.find("class=\"bubble agent pending\"").unwrap()..],
        "action",
    );
    assert!(action.ends_with("/cancel"), "{action}");
    let job = last_turn(&ui, "sleeper").await.id;
    let req = Request::get(attribute(&page.body, "data-events"))
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let follower = tokio::spawn(ui.router.clone().oneshot(req));

    // Without the session's token nothing is stopped.
    let refused = ui
        .post(&action, Some(&cookie), &[("_csrf", "forged")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(agent_sleeping(&ui, "sleeper").await, "the agent still runs");

    let cancelled = ui
        .post(&action, Some(&cookie), &[("_csrf", &page.csrf())])
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.body
    );
    assert!(cancelled
        .location()
        .ends_with("/sandboxes/sleeper#conversation"));
    assert!(
        !agent_sleeping(&ui, "sleeper").await,
        "the agent was stopped"
    );
    let turn = last_turn(&ui, "sleeper").await;
    assert_eq!(turn.id, job);
    assert_eq!(turn.state, t::AgentJobState::Failed);
    assert_eq!(turn.error_code.as_deref(), Some("agent_cancelled"));
    let shown = ui.get("/sandboxes/sleeper", Some(&cookie)).await.body;
    assert!(shown.contains("cancelled: a reply still running in it was stopped"));
    assert!(!shown.contains("data-in-flight"), "nothing runs any more");

    // The follower saw the end.
    let resp = tokio::time::timeout(Duration::from_secs(20), follower)
        .await
        .expect("the events end with the send")
        .unwrap()
        .unwrap();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let events = sse::events(&String::from_utf8_lossy(&bytes));
    let done = events.last().unwrap();
    assert_eq!(
        (&done["event"], &done["error_code"]),
        (&json!("done"), &json!("agent_cancelled"))
    );
    delete_sandbox(&ui, "sleeper").await;
}
