//! The create of the public Amika API, through the real HTTP API of a real server (served on
//! 127.0.0.1, real store, real provider, real git): exactly the body its clients send, every
//! field they may send checked with an error that names it, generated names, sizes, and the idle
//! intervals that stop or delete a sandbox nobody uses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use amika_testkit::{RunningServer, ServerBuilder};
use serde_json::{json, Value};

const API: &str = "/api/v0beta1";

/// A served server and a plain HTTP client that sends JSON exactly as given.
struct Api {
    server: RunningServer,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let server = ServerBuilder::new()
            .open()
            .await
            .expect("server opens")
            .serve()
            .await
            .expect("server serves");
        Api {
            server,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API}{path}", self.server.url)
    }

    async fn send(&self, req: reqwest::RequestBuilder, key: Option<&str>) -> (u16, Value) {
        let key = key.unwrap_or(self.server.admin_key());
        let resp = req
            .bearer_auth(key)
            .send()
            .await
            .expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(path, body, None).await
    }

    async fn post_as(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        // The body as text, so that what is sent is exactly the JSON written in the test.
        let req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(req, key).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path)), None).await
    }

    /// `POST /sandboxes` that must be accepted; the answer.
    async fn create(&self, body: &Value) -> Value {
        let (status, sb) = self.post("/sandboxes", body).await;
        assert!(
            status == 201 || status == 202,
            "create {body}: {status} {sb}"
        );
        sb
    }

    /// Poll `GET /sandboxes/{id}` until its state is `want` (or `failed`); the sandbox.
    async fn wait_state(&self, id: &str, want: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, sb) = self.get(&format!("/sandboxes/{id}")).await;
            assert_eq!(status, 200, "{sb}");
            let state = sb["state"].as_str().unwrap().to_string();
            if state == want {
                return sb;
            }
            assert_ne!(state, "failed", "sandbox {id} failed: {sb}");
            assert!(
                Instant::now() < deadline,
                "sandbox {id} is still {state} after {within:?}, expected {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Run `command` in sandbox `id`; its stdout, after checking that it exited 0.
    async fn exec(&self, id: &str, command: &[&str]) -> String {
        let (status, body) = self
            .post(
                &format!("/sandboxes/{id}/exec"),
                &json!({ "command": command }),
            )
            .await;
        assert_eq!(status, 200, "exec {command:?}: {body}");
        // NDJSON: several frames do not parse as one JSON value, so the body is the raw text
        // (or, for a lone exit frame, that frame).
        let text = match body {
            Value::String(s) => s,
            v => v.to_string(),
        };
        let mut out = String::new();
        let mut exit = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let frame: Value = serde_json::from_str(line).unwrap();
            match frame["stream"].as_str() {
                Some("stdout") => out.push_str(frame["data"].as_str().unwrap()),
                Some("exit") => exit = frame["code"].as_i64(),
                _ => {}
            }
        }
        assert_eq!(exit, Some(0), "exec {command:?} in {id}: {text}");
        out
    }

    async fn sandbox_count(&self) -> usize {
        let (status, list) = self.get("/sandboxes").await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().len()
    }
}

/// A 400 that names `field` in its details and mentions each of `words` in its message.
fn assert_bad_request(answer: &(u16, Value), field: &str, words: &[&str]) {
    let (status, body) = answer;
    assert_eq!(*status, 400, "expected 400 about {field}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    if !field.is_empty() {
        assert_eq!(
            body["details"][0]["field"].as_str(),
            Some(field),
            "the error names the field: {body}"
        );
    }
    for w in words {
        assert!(message.contains(w), "{message:?} should mention {w:?}");
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
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

/// A bare repository `<name>.git` under `root`: `main` (the default) with a README, and `dev`
/// with `dev.txt` too. Returns its path and `dev`'s commit.
fn bare_repo(root: &Path, name: &str) -> (PathBuf, String) {
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "hello\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["checkout", "-q", "-b", "dev"]);
    std::fs::write(work.join("dev.txt"), "on dev\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "dev"]);
    let dev = git(&work, &["rev-parse", "HEAD"]);
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
    (bare, dev)
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// What a client of the public Amika API sends for a create (its SDK and CLI fill every field).
fn public_api_body(name: &str, repo_url: &str, setup: Option<&str>) -> Value {
    let mut body = json!({
        "name": name,
        "repo_url": repo_url,
        "preset": "coder",
        "provider": "local",
        "env_vars": {},
        "secret_env_vars": {},
        "agent_credentials": [{"kind": "claude"}],
        "snapshot": null,
        "setup_script_text": setup,
        "auto_stop_interval": 0,
        "auto_delete_interval": -1,
        "size": "m"
    });
    if !repo_url.is_empty() {
        body["branch"] = json!("dev");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_api_create_body_without_a_repository_runs_and_warns_about_the_preset() {
    let api = Api::start().await;
    let (status, cred) = api
        .post(
            "/secrets/claude",
            &json!({"name": "team-key", "value": "sk-ant-api03-test-value-0123456789", "type": "api_key"}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {cred}");

    let body = public_api_body("client-box", "", Some("echo from-setup > setup.out\n"));
    let sb = api.create(&body).await;
    assert_eq!(sb["name"], "client-box");
    assert_eq!(sb["provider"], "local");
    let warnings = sb["warnings"].as_array().expect("warnings on the answer");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("preset coder is not installed")),
        "{warnings:?}"
    );
    assert_eq!(sb["repo_url"], Value::Null, "\"\" means no repository");
    assert_eq!(
        (
            sb["size"].as_str(),
            sb["memory_mib"].as_u64(),
            sb["pids"].as_u64()
        ),
        (Some("m"), Some(2048), Some(1024))
    );
    assert_eq!(sb["auto_stop_interval"], Value::Null, "0 means never");
    assert_eq!(sb["auto_delete_interval"], Value::Null, "-1 means never");
    let resolved = &sb["resolved_agent_credentials"][0];
    assert_eq!(
        (
            resolved["kind"].as_str(),
            resolved["outcome"].as_str(),
            resolved["name"].as_str()
        ),
        (Some("claude"), Some("resolved"), Some("team-key")),
        "{sb}"
    );

    let id = sb["id"].as_str().unwrap();
    let running = api.wait_state(id, "running", Duration::from_secs(60)).await;
    assert_eq!(running["setup"]["state"], "succeeded", "{running}");
    assert_eq!(
        api.exec(id, &["cat", "/home/amika/workspace/setup.out"])
            .await,
        "from-setup\n"
    );
    // The answer of a GET has no create warnings.
    assert!(running.get("warnings").is_none(), "{running}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_setup_script_text_means_no_script() {
    let api = Api::start().await;
    for (name, text) in [("empty-setup", ""), ("blank-setup", " \n")] {
        let sb = api.create(&public_api_body(name, "", Some(text))).await;
        let id = sb["id"].as_str().unwrap();
        let sb = api.wait_state(id, "running", Duration::from_secs(30)).await;
        assert_eq!(sb["setup"], Value::Null, "{name}: no script ran: {sb}");
        let (status, _) = api.get(&format!("/sandboxes/{id}/setup-log")).await;
        assert_eq!(status, 404, "{name}: no setup log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_api_create_body_with_a_file_repository_clones_it_on_the_branch_for_an_admin() {
    let api = Api::start().await;
    let repos = tempfile::tempdir().unwrap();
    let (bare, dev) = bare_repo(repos.path(), "widgets");
    let url = file_url(&bare);

    let body = public_api_body(
        "repo-box",
        &url,
        Some("test -f dev.txt && pwd > setup.out\n"),
    );
    let sb = api.create(&body).await;
    assert_eq!(
        (
            sb["repo_name"].as_str(),
            sb["repo_url"].as_str(),
            sb["branch"].as_str(),
            sb["commit_hash"].as_str()
        ),
        (
            Some("widgets"),
            Some(url.as_str()),
            Some("dev"),
            Some(dev.as_str())
        ),
        "{sb}"
    );
    let id = sb["id"].as_str().unwrap();
    api.wait_state(id, "running", Duration::from_secs(60)).await;
    // The setup script ran in the repository, on the branch asked for.
    assert_eq!(
        api.exec(id, &["cat", "/home/amika/workspace/widgets/setup.out"])
            .await,
        "/home/amika/workspace/widgets\n"
    );
    assert_eq!(
        api.exec(id, &["cat", "/home/amika/workspace/widgets/dev.txt"])
            .await,
        "on dev\n"
    );

    // file:// reads the server's own disk: not for a user who is no admin.
    let (status, user) = api
        .post("/admin/users", &json!({"name": "dev", "org": "default"}))
        .await;
    assert!(status == 200 || status == 201, "{status} {user}");
    let key = user["api_key"].as_str().unwrap();
    let (status, err) = api
        .post_as(
            "/sandboxes",
            &public_api_body("theirs", &url, None),
            Some(key),
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert!(err["message"].as_str().unwrap().contains("admin"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_presets_providers_and_snapshots_are_refused_naming_them() {
    let api = Api::start().await;
    let with = |key: &str, value: Value| {
        let mut body = public_api_body("refused", "", None);
        body[key] = value;
        body
    };

    let answer = api
        .post("/sandboxes", &with("repository_id", json!("repo_1")))
        .await;
    assert_bad_request(&answer, "", &["unknown field `repository_id`"]);
    let answer = api
        .post("/sandboxes", &with("sandbox_preset", json!("coder")))
        .await;
    assert_bad_request(&answer, "", &["unknown field `sandbox_preset`"]);

    let answer = api.post("/sandboxes", &with("preset", json!("nope"))).await;
    assert_bad_request(&answer, "preset", &["unknown preset \"nope\"", "coder"]);

    let answer = api
        .post("/sandboxes", &with("provider", json!("e2b")))
        .await;
    assert_bad_request(
        &answer,
        "provider",
        &["unknown provider \"e2b\"", "\"local\""],
    );

    let answer = api
        .post("/sandboxes", &with("snapshot", json!("snap-1")))
        .await;
    // Snapshots exist now (issue 16): an unknown one is a 422 naming it and the field.
    assert_eq!(answer.0, 422, "{}", answer.1);
    assert_eq!(answer.1["details"][0]["field"], "snapshot", "{}", answer.1);
    let message = answer.1["message"].as_str().unwrap();
    assert!(
        message.contains("snapshot \"snap-1\" not found"),
        "{message}"
    );

    let answer = api.post("/sandboxes", &with("size", json!("xxl"))).await;
    assert_bad_request(&answer, "", &["xs, s, m, l or xl"]);

    assert_eq!(api.sandbox_count().await, 0, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_set_memory_and_pids_and_explicit_limits_win() {
    let api = Api::start().await;
    for (name, extra, memory, pids) in [
        ("size-s", json!({"size": "s"}), 1024, 512),
        ("size-xl", json!({"size": "xl"}), 8192, 4096),
        (
            "size-xl-mem",
            json!({"size": "xl", "memory_mib": 300}),
            300,
            4096,
        ),
        ("size-xs-pids", json!({"size": "xs", "pids": 100}), 512, 100),
    ] {
        let mut body = json!({"name": name});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let sb = api.create(&body).await;
        assert_eq!(
            (sb["memory_mib"].as_u64(), sb["pids"].as_u64()),
            (Some(memory), Some(pids)),
            "{name}: {sb}"
        );
        let id = sb["id"].as_str().unwrap();
        let got = api.wait_state(id, "running", Duration::from_secs(60)).await;
        assert_eq!(
            (
                got["memory_mib"].as_u64(),
                got["pids"].as_u64(),
                got["size"].as_str()
            ),
            (Some(memory), Some(pids), extra["size"].as_str()),
            "{name}: the limits are stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_intervals_and_setup_timeouts_are_refused_naming_the_field() {
    let api = Api::start().await;
    for (field, value, words) in [
        (
            "auto_stop_interval",
            json!(-5),
            &["auto_stop_interval", "0 to 10080"][..],
        ),
        ("auto_stop_interval", json!(-1), &["auto_stop_interval"][..]),
        (
            "auto_stop_interval",
            json!(20000),
            &["auto_stop_interval", "0 to 10080"][..],
        ),
        (
            "auto_stop_interval",
            json!(1e9),
            &["auto_stop_interval"][..],
        ),
        (
            "auto_delete_interval",
            json!(-5),
            &["auto_delete_interval", "-1 for never"][..],
        ),
        (
            "auto_delete_interval",
            json!(20000),
            &["auto_delete_interval", "0 to 10080"][..],
        ),
        (
            "auto_delete_interval",
            json!(1e9),
            &["auto_delete_interval"][..],
        ),
        (
            "setup_timeout_secs",
            json!(0),
            &["setup_timeout_secs", "from 1"][..],
        ),
    ] {
        let answer = api
            .post("/sandboxes", &json!({"name": "bad", field: value}))
            .await;
        assert_bad_request(&answer, field, words);
    }
    // Not a number at all: serde says what was expected.
    let answer = api
        .post(
            "/sandboxes",
            &json!({"name": "bad", "auto_stop_interval": "soon"}),
        )
        .await;
    assert_bad_request(&answer, "", &["auto_stop_interval"]);
    assert_eq!(api.sandbox_count().await, 0, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_env_vars_reach_the_sandbox_and_bad_ones_are_refused_naming_the_fields() {
    let api = Api::start().await;
    let answer = api
        .post(
            "/sandboxes",
            &json!({"name": "bad", "env_vars": {"1BAD": "x"}}),
        )
        .await;
    assert_bad_request(&answer, "env_vars.1BAD", &["1BAD"]);
    let answer = api
        .post(
            "/sandboxes",
            &json!({"name": "bad", "env_vars": {"GOOD": "a\u{0}b"}}),
        )
        .await;
    assert_bad_request(&answer, "env_vars.GOOD", &["env_vars.GOOD", "NUL"]);
    let answer = api
        .post(
            "/sandboxes",
            &json!({"name": "bad", "env_vars": {"DB_URL": "x"}, "secret_env_vars": {"DB_URL": "db"}}),
        )
        .await;
    assert_bad_request(
        &answer,
        "env_vars.DB_URL",
        &["DB_URL", "env_vars", "secret_env_vars"],
    );
    assert_eq!(api.sandbox_count().await, 0, "nothing was created");

    let sb = api
        .create(&json!({"name": "env-box", "env_vars": {"GREETING": "hello world"}}))
        .await;
    assert_eq!(sb["env_vars"]["GREETING"], "hello world");
    let id = sb["id"].as_str().unwrap();
    api.wait_state(id, "running", Duration::from_secs(60)).await;
    assert_eq!(
        api.exec(id, &["sh", "-c", "printf %s \"$GREETING\""]).await,
        "hello world"
    );
}

/// `name` of a generated sandbox: lowercase words joined by `-`.
fn assert_readable(name: &str, prefix: &str) {
    assert!(name.starts_with(prefix), "{name:?} starts with {prefix:?}");
    let words: Vec<&str> = name.split('-').collect();
    assert!(words.len() >= 3, "{name:?}: the prefix and two words");
    assert!(
        words.iter().all(|w| !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
        "{name:?}: lowercase words joined by '-'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_omitted_or_empty_name_is_generated_readable_and_unique() {
    let api = Api::start().await;
    let a = api.create(&json!({})).await;
    let b = api.create(&json!({"name": ""})).await;
    let (a, b) = (a["name"].as_str().unwrap(), b["name"].as_str().unwrap());
    assert_readable(a, "sandbox-");
    assert_readable(b, "sandbox-");
    assert_ne!(a, b, "two creates, two names");

    let repos = tempfile::tempdir().unwrap();
    let (bare, _) = bare_repo(repos.path(), "widgets");
    let (mixed, _) = bare_repo(repos.path(), "Data_Tools.v2");
    let mut names = Vec::new();
    for (url, prefix) in [
        (file_url(&bare), "widgets-"),
        (file_url(&bare), "widgets-"),
        (file_url(&mixed), "data-tools-v2-"),
    ] {
        let sb = api.create(&json!({"repo_url": url, "name": ""})).await;
        let name = sb["name"].as_str().unwrap().to_string();
        assert_readable(&name, prefix);
        // The sandbox is found by the name it was given.
        let (status, got) = api.get(&format!("/sandboxes/{name}")).await;
        assert_eq!((status, got["id"].clone()), (200, sb["id"].clone()));
        names.push(name);
    }
    assert_ne!(
        names[0], names[1],
        "two creates from one repository, two names"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sandbox_stops_after_its_auto_stop_interval() {
    let api = Api::start().await;
    // 0.05 minutes: 3 s; the watcher looks once a second.
    let sb = api
        .create(&json!({"name": "idle-stop", "auto_stop_interval": 0.05}))
        .await;
    assert_eq!(sb["auto_stop_interval"], 0.05);
    let id = sb["id"].as_str().unwrap();
    let created = Instant::now();
    api.wait_state(id, "running", Duration::from_secs(30)).await;
    api.wait_state(
        id,
        "stopped",
        Duration::from_secs(6).saturating_sub(created.elapsed()) + Duration::from_millis(500),
    )
    .await;
    // Stopped, not deleted.
    let (status, _) = api.get(&format!("/sandboxes/{id}")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execs_keep_a_sandbox_running_past_its_auto_stop_interval_and_it_stops_once_they_end() {
    let api = Api::start().await;
    let sb = api
        .create(&json!({"name": "busy", "auto_stop_interval": 0.05}))
        .await;
    let id = sb["id"].as_str().unwrap();
    api.wait_state(id, "running", Duration::from_secs(30)).await;
    let busy = Instant::now();
    // An exec a second for 8 s: never 3 s without activity. Each exec needs it running.
    while busy.elapsed() < Duration::from_secs(8) {
        api.exec(id, &["true"]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (_, now) = api.get(&format!("/sandboxes/{id}")).await;
    assert_eq!(now["state"], "running", "kept running by the execs: {now}");
    let quiet = Instant::now();
    api.wait_state(id, "stopped", Duration::from_secs(7)).await;
    assert!(
        quiet.elapsed() >= Duration::from_secs(1),
        "stopped {:?} after the last exec: too soon for a 3 s interval",
        quiet.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_running_longer_than_the_auto_stop_interval_is_not_cut_off() {
    let api = Api::start().await;
    let sb = api
        .create(&json!({"name": "long-exec", "auto_stop_interval": 0.05}))
        .await;
    let id = sb["id"].as_str().unwrap();
    api.wait_state(id, "running", Duration::from_secs(30)).await;
    // One exec of 7 s, over twice the 3 s interval: the sandbox is busy all along, so the
    // command ends on its own (exit 0, its output complete).
    let out = api.exec(id, &["sh", "-c", "sleep 7; echo finished"]).await;
    assert_eq!(out.trim(), "finished");
    let (_, now) = api.get(&format!("/sandboxes/{id}")).await;
    assert_eq!(
        now["state"], "running",
        "not stopped under a running command: {now}"
    );
    api.wait_state(id, "stopped", Duration::from_secs(8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sandbox_is_deleted_after_its_auto_delete_interval() {
    let api = Api::start().await;
    let sb = api
        .create(&json!({"name": "idle-delete", "auto_delete_interval": 0.05}))
        .await;
    assert_eq!(sb["auto_delete_interval"], 0.05);
    let id = sb["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(7);
    loop {
        let (status, got) = api.get(&format!("/sandboxes/{id}")).await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200, "{got}");
        assert!(Instant::now() < deadline, "still there after 7 s: {got}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(api.sandbox_count().await, 0);
    // Its files went with it (the teardown runs right after the delete answers).
    let sandboxes = api.server.server.data_dir().join("sandboxes").join(id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sandboxes.exists() {
        assert!(Instant::now() < deadline, "{} is left", sandboxes.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_vars_that_collide_with_a_credentials_injection_are_warned_about() {
    let api = Api::start().await;
    let oauth = amika_testkit::ClaudeOauth::new(
        "sk-ant-oat01-warn-access-0123456789",
        "sk-ant-ort01-warn-refresh-0123456789",
    )
    .to_json();
    for (path, body) in [
        (
            "/secrets/claude",
            json!({"name": "team-oauth", "value": oauth, "type": "oauth"}),
        ),
        (
            "/secrets/codex",
            json!({"name": "codex-key", "value": "sk-proj-warn-0123456789", "type": "api_key"}),
        ),
        (
            "/secrets",
            json!({"name": "my-anthropic", "value": "sk-ant-api03-warn-0123456789", "scope": "user"}),
        ),
    ] {
        let (status, answer) = api.post(path, &body).await;
        assert!(status == 200 || status == 201, "{path}: {status} {answer}");
    }
    let body = json!({
        "name": "collide",
        "secret_env_vars": {"ANTHROPIC_API_KEY": "my-anthropic"},
        "env_vars": {"OPENAI_API_KEY": "sk-plain"},
        "agent_credentials": [{"kind": "claude"}, {"kind": "codex"}],
    });
    let expected = [
        "env var ANTHROPIC_API_KEY (secret \"my-anthropic\") is set beside the claude OAuth credential \"team-oauth\": Claude Code uses the variable, not the OAuth login",
        "env var OPENAI_API_KEY (a plain value) replaces the key of the codex credential \"codex-key\" that the sandbox reports",
    ];
    let (status, preview) = api.post("/sandboxes/resolve-preview", &body).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["warnings"], json!(expected), "{preview}");
    let sb = api.create(&body).await;
    assert_eq!(sb["warnings"], json!(expected), "{sb}");

    // Without the collisions: no warning.
    let quiet = api
        .create(
            &json!({"name": "quiet", "agent_credentials": [{"kind": "claude"}, {"kind": "codex"}]}),
        )
        .await;
    assert!(quiet.get("warnings").is_none(), "{quiet}");
}
