//! What the workspace suites (`workspace_repo.rs`, `workspace_config.rs`) share: a real server
//! (real store, vault and bubblewrap provider, from `amika_testkit`) driven through its HTTP
//! router, real git repositories on the host, and the checks that a failed create left nothing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amika_server::ServerConfig;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const B: &str = "/api/v0beta1";
/// Where repositories land inside a sandbox.
pub const WORKSPACE: &str = "/home/amika/workspace";

/// A server and every answer it gave during the test (for "the value is in no answer").
///
/// Dropping it deletes every sandbox its users made (their processes would outlive the data
/// dir otherwise); tests run on the multi-threaded runtime for that.
pub struct Srv {
    pub server: amika_testkit::TestServer,
    router: axum::Router,
    answers: Mutex<Vec<String>>,
    /// API keys of the admin and of every user made by [`Srv::user`].
    keys: Mutex<Vec<String>>,
}

impl Drop for Srv {
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            eprintln!("sandboxes left running: use #[tokio::test(flavor = \"multi_thread\")]");
            return;
        }
        let keys = self.keys.lock().map(|k| k.clone()).unwrap_or_default();
        tokio::task::block_in_place(|| handle.block_on(self.delete_sandboxes(&keys)));
    }
}

/// A fresh server on SQLite in a temp dir, without warm sandboxes (a create starts its own, so
/// nothing else runs in the background), with `tweak` applied to its config.
pub async fn server(tweak: impl FnOnce(&mut ServerConfig) + Send) -> Srv {
    let server = amika_testkit::ServerBuilder::new()
        .configure(|c| c.warm_sandboxes = 0)
        .configure(tweak)
        .open()
        .await
        .expect("server opens");
    Srv {
        router: server.router(),
        keys: Mutex::new(vec![server.admin_key.clone()]),
        server,
        answers: Mutex::new(Vec::new()),
    }
}

/// The parsed answer of a request.
pub struct Answer {
    pub status: StatusCode,
    pub json: Value,
    pub text: String,
}

impl Answer {
    /// The error's code, message and first detail's field (for error answers).
    pub fn error(&self) -> (&str, &str, &str) {
        (
            self.json["code"].as_str().unwrap_or(""),
            self.json["message"].as_str().unwrap_or(""),
            self.json["details"][0]["field"].as_str().unwrap_or(""),
        )
    }
}

impl Srv {
    pub fn admin(&self) -> &str {
        &self.server.admin_key
    }

    pub fn data_dir(&self) -> &Path {
        self.server.data_dir()
    }

    /// Every answer body so far, concatenated.
    pub fn answers(&self) -> String {
        self.answers.lock().unwrap().join("\n")
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.answers.lock().unwrap().push(text.clone());
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, json, text }
    }

    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
        let req = Request::builder()
            .method(method)
            .uri(format!("{B}{path}"))
            .header("authorization", format!("Bearer {key}"));
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    /// A successful call's JSON.
    pub async fn ok(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
        let a = self.call(method.clone(), path, key, body).await;
        assert!(
            a.status.is_success(),
            "{method} {path}: {} {}",
            a.status,
            a.text
        );
        a.json
    }

    /// A new user of the default org; their API key.
    pub async fn user(&self, name: &str, admin: bool) -> String {
        let v = self
            .ok(
                Method::POST,
                "/admin/users",
                self.admin(),
                Some(json!({"name": name, "org": "default", "is_admin": admin})),
            )
            .await;
        let key = v["api_key"].as_str().unwrap().to_string();
        self.keys.lock().unwrap().push(key.clone());
        key
    }

    /// Delete every sandbox of `keys`' users, best effort (it also runs while a test panics).
    async fn delete_sandboxes(&self, keys: &[String]) {
        for key in keys {
            let Some(list) = self.quiet(Method::GET, "/sandboxes", key).await else {
                continue;
            };
            for s in list.as_array().into_iter().flatten() {
                if let Some(id) = s["id"].as_str() {
                    self.quiet(Method::DELETE, &format!("/sandboxes/{id}"), key)
                        .await;
                }
            }
        }
    }

    /// A call that never panics and is not recorded.
    async fn quiet(&self, method: Method, path: &str, key: &str) -> Option<Value> {
        let req = Request::builder()
            .method(method)
            .uri(format!("{B}{path}"))
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .ok()?;
        let resp = self.router.clone().oneshot(req).await.ok()?;
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&bytes).ok()
    }

    pub async fn secret(&self, key: &str, name: &str, value: &str) {
        self.ok(
            Method::POST,
            "/secrets",
            key,
            Some(json!({"name": name, "value": value})),
        )
        .await;
    }

    /// A credential of `kind` (`claude`, `codex`, `github`), `type` `api_key`.
    pub async fn api_key(&self, key: &str, kind: &str, name: &str, value: &str, default: bool) {
        self.ok(
            Method::POST,
            &format!("/secrets/{kind}"),
            key,
            Some(json!({"name": name, "value": value, "type": "api_key", "is_default": default})),
        )
        .await;
    }

    pub async fn create(&self, key: &str, body: Value) -> Answer {
        self.call(Method::POST, "/sandboxes", key, Some(body)).await
    }

    /// Create, and wait until the sandbox is out of `initializing` (running or failed); the
    /// sandbox as it then is.
    pub async fn create_ready(&self, key: &str, body: Value) -> Value {
        let a = self.create(key, body).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        let name = a.json["name"].as_str().unwrap().to_string();
        self.wait_settled(key, &name).await
    }

    /// The sandbox once it is no longer `initializing`.
    pub async fn wait_settled(&self, key: &str, name: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self
                .ok(Method::GET, &format!("/sandboxes/{name}"), key, None)
                .await;
            if v["state"] != "initializing" {
                return v;
            }
            assert!(Instant::now() < deadline, "{name} is still initializing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Run `argv` in the sandbox (through the exec endpoint): stdout, stderr, exit code.
    pub async fn exec(&self, key: &str, name: &str, argv: &[&str]) -> (String, String, i32) {
        let a = self
            .call(
                Method::POST,
                &format!("/sandboxes/{name}/exec"),
                key,
                Some(json!({"command": argv, "timeout_secs": 30})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "exec {argv:?}: {}", a.text);
        let (mut out, mut err, mut code) = (String::new(), String::new(), None);
        for frame in frames(&a.text) {
            match frame["stream"].as_str().unwrap() {
                "stdout" => out.push_str(frame["data"].as_str().unwrap()),
                "stderr" => err.push_str(frame["data"].as_str().unwrap()),
                "exit" => code = frame["code"].as_i64().map(|c| c as i32),
                _ => panic!("exec {argv:?}: {frame}"),
            }
        }
        (out, err, code.expect("an exit frame"))
    }

    /// `sh -c script` in the sandbox; its stdout, trimmed (the script must succeed).
    pub async fn sh(&self, key: &str, name: &str, script: &str) -> String {
        let (out, err, code) = self.exec(key, name, &["sh", "-c", script]).await;
        assert_eq!(code, 0, "{script}: {out}{err}");
        out.trim().to_string()
    }

    /// The sandbox's setup log (`GET .../setup-log`), as frames.
    pub async fn setup_log(&self, key: &str, name: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/sandboxes/{name}/setup-log?follow=true"),
            key,
            None,
        )
        .await
    }

    /// Upload `body` as a workspace bundle.
    pub async fn upload(&self, key: &str, query: &str, body: Vec<u8>) -> Answer {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{B}/workspace-uploads?{query}"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    /// Nothing left of a create that failed: no sandbox of `key`'s, no sandbox directory,
    /// nothing staged, no upload part.
    pub async fn assert_nothing_left(&self, key: &str) {
        let list = self.ok(Method::GET, "/sandboxes", key, None).await;
        let rows = list.as_array().or(list["data"].as_array()).cloned();
        assert_eq!(rows.map(|r| r.len()), Some(0), "sandboxes left: {list}");
        let sandboxes = self.data_dir().join("sandboxes");
        let left: Vec<String> = std::fs::read_dir(&sandboxes)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != ".staging")
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "left under {}: {left:?}",
            sandboxes.display()
        );
        let staged: Vec<String> = std::fs::read_dir(sandboxes.join(".staging"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(staged.is_empty(), "left staged: {staged:?}");
    }
}

/// The frames of an NDJSON answer.
pub fn frames(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Run git in `dir` with no configuration of the host's; its stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[])
}

pub fn git_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A repository made for a test: its working copy and a bare clone to serve.
pub struct Repo {
    pub work: PathBuf,
    pub bare: PathBuf,
    /// `file://` URL of the bare repository.
    pub url: String,
    /// Head of `main` (the default branch) and of `dev`.
    pub main: String,
    pub dev: String,
}

/// A file of [`repo`] whose text starts with this is a symbolic link to the rest.
pub const SYMLINK: &str = "symlink:";

/// A repository `<name>` under `root`: `main` with `files` (each `(path, text)`, an executable
/// when the path ends in `.sh`, a symbolic link when the text starts with [`SYMLINK`]) and a
/// README, then `dev` with `dev.txt` on top; bare clone at
/// `<root>/<name>.git`, whose HEAD is `main`.
pub fn repo(root: &Path, name: &str, files: &[(&str, &str)]) -> Repo {
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "hello\n").unwrap();
    for (path, text) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if let Some(target) = text.strip_prefix(SYMLINK) {
            std::os::unix::fs::symlink(target, &p).unwrap();
            continue;
        }
        std::fs::write(&p, text).unwrap();
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "main"]);
    let main = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "-b", "dev"]);
    std::fs::write(work.join("dev.txt"), "dev\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "dev"]);
    let dev = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "main"]);
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
    Repo {
        url: format!("file://{}", bare.display()),
        work,
        bare,
        main,
        dev,
    }
}

/// Regular files under `dir` whose bytes contain `needle`.
pub fn files_mentioning(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                if let Ok(data) = std::fs::read(&p) {
                    if contains(&data, needle) {
                        hits.push(p);
                    }
                }
            }
        }
    }
    hits
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Processes of the host whose command line or environment holds `needle`.
pub fn processes_mentioning(needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for what in ["cmdline", "environ"] {
            if let Ok(data) = std::fs::read(entry.path().join(what)) {
                if contains(&data, needle) {
                    hits.push(format!("{name}/{what}"));
                }
            }
        }
    }
    hits
}

/// Everything the process logs, down to `TRACE`, from the first call on (one subscriber for
/// the whole test binary: a sandbox's start runs on other threads than the test's).
pub fn capture_logs() -> Log {
    static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        log
    })
    .clone()
}

/// A log sink.
#[derive(Clone, Default)]
pub struct Log(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}
