//! A repository's `.amika/config.toml` under the request (issue 13), through the HTTP API of a
//! real server, real bubblewrap sandboxes and real git: one test per row of the precedence
//! table (request fields > repo config > user and org defaults), for env vars and agent
//! credentials, proven by what the sandbox's processes see; configs that cannot be applied
//! (a secret that does not exist, a malformed file, a symbolic link) fail the create before
//! anything starts, leaving nothing and injecting nothing; and the resolution preview.

mod workspace_support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use workspace_support::{files_mentioning, repo, server, Srv};

/// A server with a repository `proj` whose `.amika/config.toml` is `config` (plus `files`);
/// the temp dir that holds the repository, and its `file://` URL.
async fn setup(config: &str, files: &[(&str, &str)]) -> (Srv, tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut all = vec![(".amika/config.toml", config)];
    all.extend_from_slice(files);
    let r = repo(tmp.path(), "proj", &all);
    (server(|_| {}).await, tmp, r.url)
}

/// `body` with `repo_url` and `name`, created and waited for: the sandbox, running.
async fn running(srv: &Srv, url: &str, name: &str, mut body: Value) -> Value {
    body["repo_url"] = json!(url);
    body["name"] = json!(name);
    let v = srv.create_ready(srv.admin(), body).await;
    assert_eq!(v["state"], "running", "{v}");
    v
}

/// `printenv VAR` in the sandbox: `None` when it is not set.
async fn printenv(srv: &Srv, name: &str, var: &str) -> Option<String> {
    let (out, err, code) = srv.exec(srv.admin(), name, &["printenv", var]).await;
    match code {
        0 => Some(out.trim_end().to_string()),
        1 => None,
        _ => panic!("printenv {var}: {out}{err}"),
    }
}

/// The one `resolved_agent_credentials` entry of `kind`.
fn resolved<'a>(v: &'a Value, kind: &str) -> &'a Value {
    let all = v["resolved_agent_credentials"].as_array().unwrap();
    let of_kind: Vec<_> = all.iter().filter(|e| e["kind"] == kind).collect();
    assert_eq!(of_kind.len(), 1, "{kind} in {all:?}");
    of_kind[0]
}

const STAGING_DB: &str = "postgres://staging:StagingPassw0rd-71@db/app";
const PROD_DB: &str = "postgres://prod:ProdPassw0rd-39@db/app";

// ------------------------------------------------------------------ env vars, row by row

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_env_vars_beat_the_configs_plain_and_secret_values() {
    let config = "[env]\nNODE_ENV = \"development\"\nDB = { secret = \"never-stored\" }\n";
    let (srv, _tmp, url) = setup(config, &[]).await;
    let body = json!({"env_vars": {"NODE_ENV": "production", "DB": "plain-db"}});
    let v = running(&srv, &url, "s", body).await;
    assert_eq!(
        printenv(&srv, "s", "NODE_ENV").await.as_deref(),
        Some("production")
    );
    // The config's secret was never looked up (it does not exist, and that is no error).
    assert_eq!(printenv(&srv, "s", "DB").await.as_deref(), Some("plain-db"));
    assert_eq!(
        v["env_vars"],
        json!({"NODE_ENV": "production", "DB": "plain-db"})
    );
    assert_eq!(v["repo_config"]["env_vars"], json!([]), "{v}");
    assert_eq!(v["repo_config"]["secret_env_vars"], json!([]), "{v}");
    assert_eq!(v["secret_names"], json!([]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_secret_env_vars_beat_the_configs_secret() {
    let (srv, _tmp, url) = setup("[env]\nDB = { secret = \"staging-db\" }\n", &[]).await;
    srv.secret(srv.admin(), "staging-db", STAGING_DB).await;
    srv.secret(srv.admin(), "prod-db", PROD_DB).await;
    let v = running(
        &srv,
        &url,
        "s",
        json!({"secret_env_vars": {"DB": "prod-db"}}),
    )
    .await;
    assert_eq!(v["secret_names"], json!(["prod-db"]), "{v}");
    assert_eq!(
        printenv(&srv, "s", "DB").await.as_deref(),
        Some("[REDACTED:prod-db]")
    );
    let reversed = srv.sh(srv.admin(), "s", "printenv DB | rev").await;
    assert_eq!(reversed, PROD_DB.chars().rev().collect::<String>());
    assert_eq!(v["repo_config"]["secret_env_vars"], json!([]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_secret_is_resolved_and_injected_redacted() {
    let config = "[env]\nDATABASE_URL = { secret = \"staging-db\" }\n";
    let (srv, _tmp, url) = setup(config, &[]).await;
    srv.secret(srv.admin(), "staging-db", STAGING_DB).await;
    let v = running(&srv, &url, "s", json!({})).await;
    assert_eq!(v["secret_names"], json!(["staging-db"]), "{v}");
    assert_eq!(
        v["repo_config"]["secret_env_vars"],
        json!(["DATABASE_URL"]),
        "{v}"
    );
    assert_eq!(
        printenv(&srv, "s", "DATABASE_URL").await.as_deref(),
        Some("[REDACTED:staging-db]")
    );
    let reversed = srv
        .sh(srv.admin(), "s", "printenv DATABASE_URL | rev")
        .await;
    assert_eq!(reversed, STAGING_DB.chars().rev().collect::<String>());
    // Secret-backed, so not among the plain env vars shown on the sandbox.
    assert_eq!(v["env_vars"], json!({}), "{v}");
    assert!(!srv.answers().contains(STAGING_DB));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_config_value_is_set_when_the_request_has_none() {
    let (srv, _tmp, url) = setup("[env]\nNODE_ENV = \"development\"\n", &[]).await;
    let v = running(&srv, &url, "s", json!({"env_vars": {"OTHER": "x"}})).await;
    assert_eq!(
        printenv(&srv, "s", "NODE_ENV").await.as_deref(),
        Some("development")
    );
    assert_eq!(printenv(&srv, "s", "OTHER").await.as_deref(), Some("x"));
    assert_eq!(
        v["env_vars"],
        json!({"NODE_ENV": "development", "OTHER": "x"})
    );
    assert_eq!(v["repo_config"]["env_vars"], json!(["NODE_ENV"]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_repo_env_var_names_drop_config_vars() {
    let config =
        "[env]\nNODE_ENV = \"development\"\nDB = { secret = \"never-stored\" }\nKEPT = \"yes\"\n";
    let (srv, _tmp, url) = setup(config, &[]).await;
    let body = json!({"disabled_repo_env_var_names": ["NODE_ENV", "DB"]});
    let v = running(&srv, &url, "s", body).await;
    assert_eq!(printenv(&srv, "s", "NODE_ENV").await, None);
    assert_eq!(printenv(&srv, "s", "DB").await, None);
    assert_eq!(printenv(&srv, "s", "KEPT").await.as_deref(), Some("yes"));
    assert_eq!(v["repo_config"]["env_vars"], json!(["KEPT"]), "{v}");
}

// ------------------------------------------------------------------ agent credentials, row by row

const PERSONAL_KEY: &str = "sk-ant-api03-PersonalKey0123456789";
const TEAM_KEY: &str = "sk-ant-api03-TeamKey9876543210abcd";
const CODEX_KEY: &str = "sk-proj-CodexKey55667788990011";

/// A server and repository with `config`, and the admin's claude credentials: `personal`
/// (their default) and `team`, both API keys, and a default codex API key `my-codex`.
async fn with_credentials(config: &str) -> (Srv, tempfile::TempDir, String) {
    let (srv, tmp, url) = setup(config, &[]).await;
    let admin = srv.admin().to_string();
    srv.api_key(&admin, "claude", "personal", PERSONAL_KEY, true)
        .await;
    srv.api_key(&admin, "claude", "team", TEAM_KEY, false).await;
    srv.api_key(&admin, "codex", "my-codex", CODEX_KEY, true)
        .await;
    (srv, tmp, url)
}

const TEAM_CONFIG: &str = "[agent_credentials]\nclaude = { name = \"team\" }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_request_kind_takes_the_configs_entry_reported_as_repo_config() {
    let (srv, _tmp, url) = with_credentials(TEAM_CONFIG).await;
    let v = running(
        &srv,
        &url,
        "s",
        json!({"agent_credentials": [{"kind": "claude"}]}),
    )
    .await;
    let claude = resolved(&v, "claude");
    assert_eq!(
        (&claude["name"], &claude["source"], &claude["outcome"]),
        (&json!("team"), &json!("repo_config"), &json!("resolved")),
        "{v}"
    );
    assert_eq!(v["repo_config"]["agent_credentials"], json!(["claude"]));
    assert_eq!(
        printenv(&srv, "s", "ANTHROPIC_API_KEY").await.as_deref(),
        Some("[REDACTED:team]")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_entry_with_a_name_a_type_or_none_beats_the_config() {
    let (srv, _tmp, url) = with_credentials(TEAM_CONFIG).await;
    let cases = [
        (
            "by-name",
            json!({"kind": "claude", "name": "personal"}),
            "request:name",
        ),
        (
            "by-type",
            json!({"kind": "claude", "type": "api_key"}),
            "request:type",
        ),
    ];
    for (name, entry, source) in cases {
        let v = running(&srv, &url, name, json!({"agent_credentials": [entry]})).await;
        let claude = resolved(&v, "claude");
        assert_eq!(
            (&claude["name"], &claude["source"]),
            (&json!("personal"), &json!(source)),
            "{v}"
        );
        assert_eq!(
            printenv(&srv, name, "ANTHROPIC_API_KEY").await.as_deref(),
            Some("[REDACTED:personal]")
        );
    }
    let body = json!({"agent_credentials": [{"kind": "claude", "none": true}]});
    let v = running(&srv, &url, "none", body).await;
    let claude = resolved(&v, "claude");
    assert_eq!(
        (&claude["outcome"], &claude["source"], &claude["reason"]),
        (
            &json!("skipped"),
            &json!("no-credential"),
            &json!("no-agent-credential flag")
        ),
        "{v}"
    );
    assert_eq!(printenv(&srv, "none", "ANTHROPIC_API_KEY").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_none_skips_the_kind_despite_a_default() {
    let config = "[agent_credentials]\nclaude = { none = true }\n";
    let (srv, _tmp, url) = with_credentials(config).await;
    let v = running(
        &srv,
        &url,
        "s",
        json!({"agent_credentials": [{"kind": "claude"}]}),
    )
    .await;
    let claude = resolved(&v, "claude");
    assert_eq!(
        (&claude["outcome"], &claude["reason"]),
        (&json!("skipped"), &json!("none in .amika/config.toml")),
        "{v}"
    );
    assert_eq!(printenv(&srv, "s", "ANTHROPIC_API_KEY").await, None);
    let env = srv.sh(srv.admin(), "s", "env").await;
    assert!(!env.contains("REDACTED"), "{env}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_request_does_not_name_gets_nothing_even_if_the_config_names_it() {
    let config =
        "[agent_credentials]\nclaude = { name = \"team\" }\ncodex = { name = \"my-codex\" }\n";
    let (srv, _tmp, url) = with_credentials(config).await;
    let v = running(
        &srv,
        &url,
        "s",
        json!({"agent_credentials": [{"kind": "claude"}]}),
    )
    .await;
    let kinds: Vec<_> = v["resolved_agent_credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("claude")], "{v}");
    assert_eq!(printenv(&srv, "s", "OPENAI_API_KEY").await, None);
    let (_, _, code) = srv
        .exec(
            srv.admin(),
            "s",
            &["test", "-e", "/home/amika/.codex/auth.json"],
        )
        .await;
    assert_ne!(code, 0, "a codex credential was injected");

    // And with no agent_credentials at all: none, whatever the config says.
    let v = running(&srv, &url, "bare", json!({})).await;
    assert_eq!(v["resolved_agent_credentials"], json!([]), "{v}");
    assert_eq!(printenv(&srv, "bare", "ANTHROPIC_API_KEY").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_apply_when_neither_the_request_nor_the_config_names_a_credential() {
    let (srv, _tmp, url) = with_credentials(TEAM_CONFIG).await;
    let body = json!({"agent_credentials": [{"kind": "claude"}, {"kind": "codex"}]});
    let v = running(&srv, &url, "s", body).await;
    let codex = resolved(&v, "codex");
    assert_eq!(
        (&codex["name"], &codex["source"]),
        (&json!("my-codex"), &json!("user_default")),
        "{v}"
    );
    assert_eq!(resolved(&v, "claude")["source"], "repo_config");
    assert_eq!(
        printenv(&srv, "s", "OPENAI_API_KEY").await.as_deref(),
        Some("[REDACTED:my-codex]")
    );
    // Without a config, a bare kind takes the user's default too.
    let plain = repo(_tmp.path(), "plain", &[]);
    let v = running(
        &srv,
        &plain.url,
        "p",
        json!({"agent_credentials": [{"kind": "claude"}]}),
    )
    .await;
    let claude = resolved(&v, "claude");
    assert_eq!(
        (&claude["name"], &claude["source"]),
        (&json!("personal"), &json!("user_default")),
        "{v}"
    );
    assert_eq!(v["repo_config"], Value::Null, "{v}");
}

// ------------------------------------------------------------------ configs that cannot apply

// Values of this file's tests are their own: `assert_nothing_injected` looks at every process
// of the host, where sandboxes of the tests running beside it hold theirs.
const API_VALUE: &str = "sk-live-NeverInjected-0123456789abcdef";
const UNUSED_KEY: &str = "sk-ant-api03-NeverInjectedKey-4455";
const PREVIEW_DB: &str = "postgres://preview:PreviewPassw0rd-12@db/app";

/// No `*.injected` audit event, no setup log, the value nowhere on disk or in any process.
async fn assert_nothing_injected(srv: &Srv, value: &str) {
    let events = srv
        .ok(Method::GET, "/audit-events?limit=1000", srv.admin(), None)
        .await;
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        !actions
            .iter()
            .any(|a| a.ends_with(".injected") || *a == "sandbox.created"),
        "{actions:?}"
    );
    let logs = std::fs::read_dir(srv.data_dir().join("setup-logs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(logs, 0, "a setup log was kept");
    assert!(files_mentioning(srv.data_dir(), value.as_bytes()).is_empty());
    let hits = workspace_support::processes_mentioning(value.as_bytes());
    assert!(hits.is_empty(), "in the environment of {hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_secret_that_does_not_exist_fails_naming_file_and_line_and_injects_nothing() {
    let config =
        "# team settings\n[env]\nNODE_ENV = \"dev\"\nDB = { secret = \"no-such-secret\" }\n";
    let (srv, _tmp, url) = setup(config, &[]).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "api", API_VALUE).await;
    srv.api_key(&admin, "claude", "personal", UNUSED_KEY, true)
        .await;
    for path in ["/sandboxes", "/sandboxes/resolve-preview"] {
        let body = json!({"name": "s", "repo_url": url, "secret_env_vars": {"API": "api"},
            "agent_credentials": [{"kind": "claude"}], "setup_script_text": "touch ran"});
        let a = srv.call(Method::POST, path, &admin, Some(body)).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
        let (code, message, field) = a.error();
        assert_eq!(
            (code, field),
            ("secret_not_found", ".amika/config.toml"),
            "{}",
            a.text
        );
        assert!(
            message
                .starts_with(".amika/config.toml:4: [env] DB: secret \"no-such-secret\" not found"),
            "{message}"
        );
        srv.assert_nothing_left(&admin).await;
    }
    assert_nothing_injected(&srv, API_VALUE).await;
    assert_nothing_injected(&srv, UNUSED_KEY).await;
}

/// A credential the config names that the caller does not have: the file and its line (the
/// line was missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_credential_that_does_not_resolve_fails_naming_file_and_line() {
    let config = "[env]\nA = \"1\"\n\n[agent_credentials]\nclaude = { name = \"team-oauth\" }\n";
    let (srv, _tmp, url) = setup(config, &[]).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "api", API_VALUE).await;
    let body = json!({"name": "s", "repo_url": url, "secret_env_vars": {"API": "api"},
        "agent_credentials": [{"kind": "claude"}]});
    let a = srv.create(&admin, body).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    let (code, message, field) = a.error();
    assert_eq!(
        (code, field),
        ("invalid_repo_config", ".amika/config.toml"),
        "{}",
        a.text
    );
    assert_eq!(
        message,
        ".amika/config.toml:5: [agent_credentials] agent credential for claude: no credential named \"team-oauth\""
    );
    srv.assert_nothing_left(&admin).await;
    assert_nothing_injected(&srv, API_VALUE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_config_fails_with_its_line_and_what_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "api", API_VALUE).await;
    let cases = [
        (
            "unknown-key",
            "[env]\nA = \"1\"\n\n[lifecycle]\nsetup = \"x.sh\"\n",
            5,
            "unknown field `setup`",
        ),
        ("bad-toml", "[env]\nA = \"1\"\nB = \n", 3, "string"),
        ("bad-table", "[env\nA = \"1\"\n", 1, ""),
        (
            "bad-value",
            "[env]\nPORT = 8080\n",
            2,
            "a string or { secret = \"NAME\" }",
        ),
        (
            "outside",
            "[lifecycle]\nsetup_script = \"../../etc/x.sh\"\n",
            2,
            "relative to the repository's root",
        ),
    ];
    for (name, config, line, expected) in cases {
        let r = repo(tmp.path(), name, &[(".amika/config.toml", config)]);
        let body = json!({"name": "s", "repo_url": r.url, "secret_env_vars": {"API": "api"}});
        let a = srv.create(&admin, body).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
        let (code, message, field) = a.error();
        assert_eq!(
            (code, field),
            ("invalid_repo_config", ".amika/config.toml"),
            "{name}: {}",
            a.text
        );
        let at = format!(".amika/config.toml:{line}: ");
        assert!(
            message.starts_with(&at) && message.contains(expected),
            "{name}: {message}"
        );
        srv.assert_nothing_left(&admin).await;
    }
    assert_nothing_injected(&srv, API_VALUE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_behind_a_symbolic_link_is_refused() {
    use workspace_support::SYMLINK;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("host.toml"), "[env]\nHOST = \"1\"\n").unwrap();
    let host = format!("{SYMLINK}{}", tmp.path().join("host.toml").display());
    let in_repo = format!("{SYMLINK}../other.toml");
    let dir_link = format!("{SYMLINK}conf");
    let cases: [&[(&str, &str)]; 3] = [
        // To a file of the host's (the server must not read it).
        &[(".amika/config.toml", &host)],
        // To a file of the repository: still refused (one rule, no exceptions to reason about).
        &[
            ("other.toml", "[env]\nA = \"1\"\n"),
            (".amika/config.toml", &in_repo),
        ],
        // The directory itself.
        &[
            ("conf/config.toml", "[env]\nA = \"1\"\n"),
            (".amika", &dir_link),
        ],
    ];
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    for (i, files) in cases.into_iter().enumerate() {
        let r = repo(tmp.path(), &format!("link{i}"), files);
        let a = srv
            .create(&admin, json!({"name": "s", "repo_url": r.url}))
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
        let (code, message) = (a.error().0, a.error().1);
        assert_eq!(code, "invalid_repo_config", "{i}: {message}");
        assert!(message.contains("symbolic link"), "{i}: {message}");
        assert!(!message.contains("could not be cloned"), "{i}: {message}");
        srv.assert_nothing_left(&admin).await;
    }
}

// ------------------------------------------------------------------ the resolution preview

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_shows_what_the_config_contributes_and_creates_nothing() {
    let config = "[env]\nNODE_ENV = \"development\"\nDATABASE_URL = { secret = \"staging-db\" }\n\
        [agent_credentials]\nclaude = { name = \"team\" }\n\
        [lifecycle]\nsetup_script = \"scripts/setup.sh\"\n";
    let (srv, _tmp, url) = with_credentials(config).await;
    let admin = srv.admin().to_string();
    srv.secret(&admin, "staging-db", PREVIEW_DB).await;
    let body = json!({"repo_url": url, "agent_credentials": [{"kind": "claude"}],
        "env_vars": {"EXTRA": "1"}});
    let p = srv
        .ok(
            Method::POST,
            "/sandboxes/resolve-preview",
            &admin,
            Some(body),
        )
        .await;
    assert_eq!(
        p["repo_config"],
        json!({"env_vars": ["NODE_ENV"], "secret_env_vars": ["DATABASE_URL"],
               "agent_credentials": ["claude"], "setup_script": "scripts/setup.sh"}),
        "{p}"
    );
    assert_eq!(p["secret_names"], json!(["staging-db"]), "{p}");
    let claude = resolved(&p, "claude");
    assert_eq!(
        (&claude["name"], &claude["source"]),
        (&json!("team"), &json!("repo_config")),
        "{p}"
    );
    // Nothing made, nothing staged, nothing injected.
    srv.assert_nothing_left(&admin).await;
    assert_nothing_injected(&srv, PREVIEW_DB).await;
    // Without a repository, no contribution.
    let p = srv
        .ok(
            Method::POST,
            "/sandboxes/resolve-preview",
            &admin,
            Some(json!({"agent_credentials": [{"kind": "claude"}]})),
        )
        .await;
    assert_eq!(p["repo_config"], Value::Null, "{p}");
    assert_eq!(resolved(&p, "claude")["source"], "user_default");
}
