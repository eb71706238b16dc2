//! A private repository (issue 13): `git http-backend` on 127.0.0.1 behind HTTP basic auth that
//! wants a token, cloned by a real server through its HTTP API into a real sandbox. The token
//! is used for the clone and is in none of: a process's command line or environment during the
//! clone, the clone's `.git/config` and remote URL, a file under the data dir, the server's log,
//! an API answer, the sandbox's environment — unless the user maps it there with
//! `secret_env_vars`, where exec output shows it redacted.

mod workspace_support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use workspace_support::{
    capture_logs, contains, files_mentioning, processes_mentioning, repo, server, Srv, WORKSPACE,
};

/// A private repository `private.git` under a fresh temp dir, served with `token`.
async fn private_repo(
    token: &'static str,
    delay: Duration,
) -> (tempfile::TempDir, String, String, Arc<AtomicUsize>) {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "private", &[("secret-plans.txt", "plans\n")]);
    let (url, authorized) =
        amika_testkit::git_http::serve_private(tmp.path().to_path_buf(), token, delay).await;
    (tmp, url, r.main, authorized)
}

/// Create `body` while scanning every process of the host for `needle`: the answer, the
/// processes that held it, and how many scans ran.
async fn create_scanning(
    srv: &Srv,
    key: &str,
    body: serde_json::Value,
    needle: &'static str,
) -> (workspace_support::Answer, Vec<String>, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let scan = tokio::task::spawn_blocking(move || {
        let mut hits = std::collections::BTreeSet::new();
        let mut scans = 0;
        while !stop.load(Ordering::SeqCst) {
            hits.extend(processes_mentioning(needle.as_bytes()));
            scans += 1;
        }
        (hits, scans)
    });
    let answer = srv.create(key, body).await;
    done.store(true, Ordering::SeqCst);
    let (hits, scans) = scan.await.unwrap();
    (answer, hits.into_iter().collect(), scans)
}

const TOKEN: &str = "ghp_PrivateCloneToken0123456789abcdefAB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_clones_with_a_named_secret_which_is_nowhere_afterwards() {
    let log = capture_logs();
    let (_tmp, url, main, authorized) = private_repo(TOKEN, Duration::from_millis(300)).await;
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "gh-token", TOKEN).await;

    let body = json!({"name": "priv", "repo_url": url, "git_credential": "gh-token"});
    let (created, hits, scans) = create_scanning(&srv, &admin, body, TOKEN).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text);
    assert!(scans > 3, "the scan ran only {scans} times");
    assert!(hits.is_empty(), "the token was visible in {hits:?}");
    assert!(
        authorized.load(Ordering::SeqCst) >= 2,
        "the git server never saw the token"
    );
    assert_eq!(created.json["commit_hash"], main.as_str());
    assert_eq!(created.json["repo_url"], url.as_str());
    let v = srv.wait_settled(&admin, "priv").await;
    assert_eq!(v["state"], "running", "{v}");

    // The clone: the remote URL as given, no token in its config.
    let dir = format!("{WORKSPACE}/private");
    let remote = srv
        .sh(
            &admin,
            "priv",
            &format!("git -C {dir} config --get remote.origin.url"),
        )
        .await;
    assert_eq!(remote, url);
    let config = srv
        .sh(&admin, "priv", &format!("cat {dir}/.git/config"))
        .await;
    assert!(config.contains(&url) && !config.contains(TOKEN), "{config}");
    assert_eq!(
        srv.sh(&admin, "priv", &format!("cat {dir}/secret-plans.txt"))
            .await,
        "plans"
    );
    // Not in the sandbox's environment (exec would not redact it: it was never injected), nor
    // in any process's, now that the sandbox runs.
    let env = srv.sh(&admin, "priv", "env").await;
    assert!(!env.contains(TOKEN) && !env.contains("REDACTED"), "{env}");
    assert!(processes_mentioning(TOKEN.as_bytes()).is_empty());

    // Not on the host's disk (the vault holds it sealed), in the log, or in any answer.
    assert_eq!(
        files_mentioning(srv.data_dir(), TOKEN.as_bytes()),
        Vec::<PathBuf>::new()
    );
    let logged = log.bytes();
    assert!(
        contains(&logged, b"create_sandbox"),
        "the log captured nothing of the create"
    );
    assert!(!contains(&logged, TOKEN.as_bytes()), "the token was logged");
    assert!(!srv.answers().contains(TOKEN), "the token was in an answer");
}

const MAPPED_TOKEN: &str = "ghp_MappedCloneToken9876543210zyxwvuTS";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clone_token_is_in_the_sandbox_only_when_mapped_and_exec_shows_it_redacted() {
    let (_tmp, url, _, _) = private_repo(MAPPED_TOKEN, Duration::ZERO).await;
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "gh-token", MAPPED_TOKEN).await;
    let v = srv
        .create_ready(
            &admin,
            json!({"name": "mapped", "repo_url": url, "git_credential": "gh-token",
                   "secret_env_vars": {"GH_TOKEN": "gh-token"}}),
        )
        .await;
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["secret_names"], json!(["gh-token"]), "{v}");
    let shown = srv.sh(&admin, "mapped", "printenv GH_TOKEN").await;
    assert_eq!(shown, "[REDACTED:gh-token]");
    let env = srv.sh(&admin, "mapped", "env").await;
    assert!(env.contains("GH_TOKEN=[REDACTED:gh-token]"), "{env}");
    // The real value is there: reversed, it is no longer what the redaction looks for.
    let reversed = srv.sh(&admin, "mapped", "printenv GH_TOKEN | rev").await;
    assert_eq!(reversed, MAPPED_TOKEN.chars().rev().collect::<String>());
    assert!(!srv.answers().contains(MAPPED_TOKEN));
}

const GITHUB_TOKEN: &str = "ghp_GithubCredentialToken55aa66bb77cc8";

/// A `github` credential (`POST /secrets/github`) is the clone's token when `git_credential`
/// names it. The caller's *default* one goes only over HTTPS to a host of `github_hosts`: here
/// the host is one, but the URL is plain `http://`, and the token is not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_credential_clones_when_named_and_a_default_one_never_goes_over_plain_http() {
    let (_tmp, url, main, authorized) = private_repo(GITHUB_TOKEN, Duration::ZERO).await;
    let host = url
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let srv = server(move |c| c.github_hosts = vec![host]).await;
    let admin = srv.admin().to_string();
    srv.api_key(&admin, "github", "gh", GITHUB_TOKEN, true)
        .await;

    let a = srv
        .create(&admin, json!({"name": "by-default", "repo_url": url}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(a.error().0, "repository_unavailable", "{}", a.text);
    assert_eq!(authorized.load(Ordering::SeqCst), 0, "sent over plain http");
    srv.assert_nothing_left(&admin).await;

    let v = srv
        .create_ready(
            &admin,
            json!({"name": "named", "repo_url": url, "git_credential": "gh"}),
        )
        .await;
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["commit_hash"], main.as_str());
    assert!(authorized.load(Ordering::SeqCst) >= 1);
    let env = srv.sh(&admin, "named", "env").await;
    assert!(!env.contains(GITHUB_TOKEN), "{env}");
    assert!(!srv.answers().contains(GITHUB_TOKEN));
    assert!(files_mentioning(srv.data_dir(), GITHUB_TOKEN.as_bytes()).is_empty());
}

const WRONG_TOKEN: &str = "ghp_WrongTokenValue000111222333444555";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_fails_the_create_with_repository_unavailable_and_leaves_nothing() {
    let (_tmp, url, _, authorized) =
        private_repo("ghp_TheRightOneNobodyStores000", Duration::ZERO).await;
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "wrong", WRONG_TOKEN).await;
    let a = srv
        .create(
            &admin,
            json!({"name": "w", "repo_url": url, "git_credential": "wrong",
                   "secret_env_vars": {"W": "wrong"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    let (code, message, field) = a.error();
    assert_eq!((code, field), ("repository_unavailable", "repo_url"));
    assert!(
        message.contains("could not be cloned") && message.contains("Authentication failed"),
        "{message}"
    );
    assert!(
        !message.contains(&*srv.data_dir().to_string_lossy()),
        "{message}"
    );
    assert!(!a.text.contains(WRONG_TOKEN), "{}", a.text);
    assert_eq!(authorized.load(Ordering::SeqCst), 0);
    srv.assert_nothing_left(&admin).await;
    assert!(files_mentioning(srv.data_dir(), WRONG_TOKEN.as_bytes()).is_empty());

    // A name that is neither a secret nor a github credential: said so, before any clone.
    let a = srv
        .create(
            &admin,
            json!({"name": "w", "repo_url": url, "git_credential": "nope"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    let (code, message, field) = a.error();
    assert_eq!((code, field), ("secret_not_found", "git_credential"));
    assert!(message.contains("\"nope\""), "{message}");
    srv.assert_nothing_left(&admin).await;
}
