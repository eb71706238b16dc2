//! Setup scripts (issue 13), through the HTTP API of a real server with real bubblewrap
//! sandboxes and real git: the request's `setup_script_text` or the repository's
//! `[lifecycle] setup_script` runs as the sandbox user, in the repository, with everything
//! injected, before the sandbox is `running`; its redacted output is kept for
//! `GET /sandboxes/{id}/setup-log`; a failure or a deadline leaves the sandbox `failed` with why;
//! `skip_setup_script` skips it.

mod workspace_support;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use workspace_support::{files_mentioning, frames, repo, server, Srv, WORKSPACE};

const SETUP_SECRET: &str = "setup-Secret-Value-0123456789abcdef";

/// The stdout of a setup log's frames, and its exit code.
fn log_output(text: &str) -> (String, String, Option<i64>) {
    let (mut out, mut err, mut code) = (String::new(), String::new(), None);
    for f in frames(text) {
        match f["stream"].as_str().unwrap() {
            "stdout" => out.push_str(f["data"].as_str().unwrap()),
            "stderr" => err.push_str(f["data"].as_str().unwrap()),
            "exit" => code = f["code"].as_i64(),
            _ => panic!("{f}"),
        }
    }
    (out, err, code)
}

/// Create `body` while watching the sandbox: every (state, setup state) seen until it settles,
/// and the sandbox then.
async fn create_watching(srv: &Srv, body: Value) -> (Vec<(String, String)>, Value) {
    let name = body["name"].as_str().unwrap().to_string();
    let create = srv.create(srv.admin(), body);
    let watch = async {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let a = srv
                .call(
                    Method::GET,
                    &format!("/sandboxes/{name}"),
                    srv.admin(),
                    None,
                )
                .await;
            if a.status == StatusCode::OK {
                let state = a.json["state"].as_str().unwrap().to_string();
                let setup = a.json["setup"]["state"].as_str().unwrap_or("").to_string();
                if seen.last() != Some(&(state.clone(), setup.clone())) {
                    seen.push((state.clone(), setup));
                }
                if state != "initializing" {
                    return (seen, a.json);
                }
            }
            assert!(Instant::now() < deadline, "{name} never settled: {seen:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (created, watched) = tokio::join!(create, watch);
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text);
    watched
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_script_runs_as_the_user_in_the_repository_before_running_with_a_redacted_log() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "proj", &[]);
    let srv = server(|_| {}).await;
    srv.secret(srv.admin(), "setup-secret", SETUP_SECRET).await;
    let script = "echo \"value=$S\"; id -u; pwd; sleep 1; echo done";
    let body = json!({"name": "s", "repo_url": r.url, "secret_env_vars": {"S": "setup-secret"},
        "setup_script_text": script});
    let (seen, v) = create_watching(&srv, body).await;

    assert_eq!(v["state"], "running", "{v}");
    let setup = &v["setup"];
    assert_eq!(
        (&setup["state"], &setup["exit_code"], &setup["source"]),
        (&json!("succeeded"), &json!(0), &json!("request")),
        "{v}"
    );
    assert!(setup["started_at"].is_string() && setup["ended_at"].is_string());
    // Never running before the script ended; seen while it ran.
    assert!(
        seen.contains(&("initializing".into(), "running".into())),
        "{seen:?}"
    );
    for (state, setup) in &seen {
        assert!(
            state != "running" || setup == "succeeded",
            "running with setup {setup}: {seen:?}"
        );
    }

    let log = srv.setup_log(srv.admin(), "s").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    let (out, err, code) = log_output(&log.text);
    assert_eq!(
        out,
        format!("value=[REDACTED:setup-secret]\n1000\n{WORKSPACE}/proj\ndone\n"),
        "{err}"
    );
    assert_eq!(code, Some(0));
    // The value itself: in no answer, and (redacted before it was kept) nowhere on disk.
    assert!(!srv.answers().contains(SETUP_SECRET));
    assert!(files_mentioning(srv.data_dir(), SETUP_SECRET.as_bytes()).is_empty());
    // It ran in the repository, as the sandbox user, with the secret there (reversed: not
    // redacted).
    let rev = srv.sh(srv.admin(), "s", "printenv S | rev").await;
    assert_eq!(rev, SETUP_SECRET.chars().rev().collect::<String>());
}

const REPO_SCRIPT: &str =
    "#!/bin/sh\nset -e\necho \"from-repo in $(pwd) as $(id -u)\" > .setup-ran\necho ran\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repositorys_setup_script_runs_when_the_request_has_none() {
    let tmp = tempfile::tempdir().unwrap();
    let config = "[lifecycle]\nsetup_script = \"scripts/setup.sh\"\n";
    let r = repo(
        tmp.path(),
        "proj",
        &[
            (".amika/config.toml", config),
            ("scripts/setup.sh", REPO_SCRIPT),
        ],
    );
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    let v = srv
        .create_ready(&admin, json!({"name": "repo", "repo_url": r.url}))
        .await;
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(
        (
            &v["setup"]["source"],
            &v["setup"]["script"],
            &v["setup"]["state"]
        ),
        (
            &json!("repo_config"),
            &json!("scripts/setup.sh"),
            &json!("succeeded")
        ),
        "{v}"
    );
    assert_eq!(v["repo_config"]["setup_script"], "scripts/setup.sh");
    let ran = srv
        .sh(&admin, "repo", &format!("cat {WORKSPACE}/proj/.setup-ran"))
        .await;
    assert_eq!(ran, format!("from-repo in {WORKSPACE}/proj as 1000"));
    let (out, _, code) = log_output(&srv.setup_log(&admin, "repo").await.text);
    assert_eq!((out.as_str(), code), ("ran\n", Some(0)));

    // The request's script instead of the repository's.
    let body = json!({"name": "req", "repo_url": r.url, "setup_script_text": "echo mine"});
    let v = srv.create_ready(&admin, body).await;
    assert_eq!(
        (&v["setup"]["source"], &v["setup"]["state"]),
        (&json!("request"), &json!("succeeded")),
        "{v}"
    );
    let (_, _, code) = srv
        .exec(
            &admin,
            "req",
            &["test", "-e", &format!("{WORKSPACE}/proj/.setup-ran")],
        )
        .await;
    assert_ne!(code, 0, "the repository's script ran too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_setup_script_leaves_the_sandbox_failed_with_its_exit_code_and_last_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "proj", &[]);
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "setup-secret", SETUP_SECRET).await;
    // stdout and stderr are two pipes: the pause orders what arrives.
    let script = "echo installing; echo \"token was $S\"; sleep 0.3; echo 'npm ERR! missing script: build' >&2; exit 3";
    let body = json!({"name": "bad", "repo_url": r.url, "secret_env_vars": {"S": "setup-secret"},
        "setup_script_text": script});
    let v = srv.create_ready(&admin, body).await;
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(
        (&v["setup"]["state"], &v["setup"]["exit_code"]),
        (&json!("failed"), &json!(3)),
        "{v}"
    );
    let error = v["error_message"].as_str().unwrap();
    assert!(error.contains("exited with 3"), "{error}");
    assert!(error.ends_with("npm ERR! missing script: build"), "{error}");
    assert!(
        error.contains("token was [REDACTED:setup-secret]"),
        "{error}"
    );
    assert!(!srv.answers().contains(SETUP_SECRET));
    // Kept: the sandbox (failed, not running) and its log.
    let (_, err, code) = log_output(&srv.setup_log(&admin, "bad").await.text);
    assert_eq!(
        (err.as_str(), code),
        ("npm ERR! missing script: build\n", Some(3))
    );
    let a = srv
        .call(
            Method::POST,
            "/sandboxes/bad/exec",
            &admin,
            Some(json!({"command": ["true"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_script_past_its_deadline_is_killed_and_timed_out() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "proj", &[]);
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    let started = Instant::now();
    let body = json!({"name": "slow", "repo_url": r.url, "setup_timeout_secs": 2,
        "setup_script_text": "echo waiting; sleep 60"});
    let v = srv.create_ready(&admin, body).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["setup"]["state"], "timed_out", "{v}");
    let error = v["error_message"].as_str().unwrap();
    assert!(
        error.contains("did not finish within 2s") && error.contains("\nwaiting\n"),
        "{error}"
    );
    // No `sleep 60` of this sandbox is left on the host (a killed process may take a moment
    // to be reaped; it must be gone well before its 60 s).
    let id = v["id"].as_str().unwrap();
    let left = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
                cmd.starts_with(b"sleep\x0060") && cwd.to_string_lossy().contains(id)
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while left() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left(), 0, "sleep 60 left on the host 5 s after the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_setup_script_runs_none_and_says_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let config = "[lifecycle]\nsetup_script = \"scripts/setup.sh\"\n";
    let r = repo(
        tmp.path(),
        "proj",
        &[
            (".amika/config.toml", config),
            ("scripts/setup.sh", REPO_SCRIPT),
        ],
    );
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    for (name, extra) in [
        ("repo", json!({})),
        ("text", json!({"setup_script_text": "touch .setup-ran"})),
    ] {
        let mut body = json!({"name": name, "repo_url": r.url, "skip_setup_script": true});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let v = srv.create_ready(&admin, body).await;
        assert_eq!(v["state"], "running", "{v}");
        assert_eq!(v["setup"]["state"], "skipped", "{v}");
        assert_eq!(v["setup"]["exit_code"], Value::Null, "{v}");
        let (_, _, code) = srv
            .exec(
                &admin,
                name,
                &["test", "-e", &format!("{WORKSPACE}/proj/.setup-ran")],
            )
            .await;
        assert_ne!(code, 0, "a setup script ran");
        let log = srv.setup_log(&admin, name).await;
        assert_eq!(log.status, StatusCode::NOT_FOUND, "{}", log.text);
    }
}

/// A script longer than the create waits (10 s): the create answers with the sandbox still
/// `initializing`, and a follower of the setup log gets the output live, to the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_setup_answers_initializing_and_its_log_can_be_followed_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "proj", &[]);
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    let body = json!({"name": "long", "repo_url": r.url,
        "setup_script_text": "echo start; sleep 11; echo end"});
    let a = srv.create(&admin, body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    // Answered before the script could end (it had not even started, on a slow host).
    assert_eq!(a.json["state"], "initializing", "{}", a.text);
    let setup = a.json["setup"]["state"].as_str().unwrap();
    assert!(setup == "running" || setup == "pending", "{}", a.text);

    let log = srv.setup_log(&admin, "long").await;
    let (out, _, code) = log_output(&log.text);
    assert_eq!((out.as_str(), code), ("start\nend\n", Some(0)));
    let v = srv.wait_settled(&admin, "long").await;
    assert_eq!(
        (&v["state"], &v["setup"]["state"]),
        (&json!("running"), &json!("succeeded")),
        "{v}"
    );
}
