//! What the suites that run the coder preset's real CLIs share (`preset_coder.rs`,
//! `agent_offline.rs`, `agent_values.rs`): the presets dir the tests share (installed once per
//! machine), one credential of each row of the injection map, sandboxes that are always created
//! with network `none` (nothing a test runs may reach beyond the sandbox), a command run
//! inside one, and the scan of a directory for values.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amika_server::service::presets::{self, InstallProgress};
use amika_server::service::Caller;
use amika_server::Service;
use amika_testkit::{unsigned_id_token, ClaudeOauth, CodexAuth};
use amika_types::{self as t, AgentKind, CredentialType, NetworkMode, SandboxState};

pub const CLAUDE_ACCESS: &str = "sk-ant-oat01-PRESET-ACCESS-7a1c";
pub const CLAUDE_REFRESH: &str = "sk-ant-ort01-PRESET-REFRESH-7a1c";
pub const CLAUDE_KEY: &str = "sk-ant-api03-PRESET-KEY-0f3e9d";
pub const CODEX_ACCESS: &str = "codex-PRESET-ACCESS-5b2d";
pub const CODEX_REFRESH: &str = "codex-PRESET-REFRESH-5b2d";
pub const CODEX_KEY: &str = "sk-proj-PRESET-KEY-77c4a1";

/// Every credential value [`push_credentials`] stores.
pub const CREDENTIAL_VALUES: [&str; 6] = [
    CLAUDE_ACCESS,
    CLAUDE_REFRESH,
    CLAUDE_KEY,
    CODEX_ACCESS,
    CODEX_REFRESH,
    CODEX_KEY,
];

/// `$AMIKA_TEST_PRESETS_DIR`, else `~/.cache/amika-test-presets`.
pub fn shared_presets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AMIKA_TEST_PRESETS_DIR").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/amika-test-presets")
}

/// Install `coder` into the server's presets dir (at once when it is there already).
pub async fn install_coder(svc: &Service) {
    let def = presets::find("coder").unwrap();
    let preset = svc
        .install_preset_as_server(def, InstallProgress::none())
        .await
        .expect("install the coder preset (needs npm, /usr/bin/node and the npm registry)");
    assert!(preset.installed, "{preset:?}");
}

/// The installed coder layer in the shared presets dir.
pub fn layer() -> PathBuf {
    let def = presets::find("coder").unwrap();
    shared_presets_dir().join("coder").join(def.version_id())
}

pub async fn credential(
    svc: &Service,
    caller: &Caller,
    kind: AgentKind,
    name: &str,
    ty: CredentialType,
    value: String,
) {
    svc.create_credential(
        caller,
        kind,
        t::CreateCredentialRequest {
            name: name.into(),
            value,
            credential_type: ty,
            scope: None,
            is_default: false,
        },
    )
    .await
    .unwrap();
}

/// One credential per row of the injection map: `claude-oauth`, `claude-key`, `codex-oauth`
/// (a ChatGPT login), `codex-key`.
pub async fn push_credentials(svc: &Service, caller: &Caller) {
    let claude = ClaudeOauth::new(CLAUDE_ACCESS, CLAUDE_REFRESH)
        .scopes(&["user:inference", "user:profile"])
        .subscription_type("max")
        .to_json();
    let codex = CodexAuth::ChatGptTokens {
        id_token: unsigned_id_token("dev@example.com", "plus", "acct-preset"),
        access_token: CODEX_ACCESS.into(),
        refresh_token: CODEX_REFRESH.into(),
        account_id: "acct-preset".into(),
    }
    .to_json();
    for (kind, name, ty, value) in [
        (
            AgentKind::Claude,
            "claude-oauth",
            CredentialType::Oauth,
            claude,
        ),
        (
            AgentKind::Claude,
            "claude-key",
            CredentialType::ApiKey,
            CLAUDE_KEY.into(),
        ),
        (
            AgentKind::Codex,
            "codex-oauth",
            CredentialType::Oauth,
            codex,
        ),
        (
            AgentKind::Codex,
            "codex-key",
            CredentialType::ApiKey,
            CODEX_KEY.into(),
        ),
    ] {
        credential(svc, caller, kind, name, ty, value).await;
    }
}

/// `kind` pinned to the credential `name`; `None`: `--no-agent-credential`.
pub fn pin(kind: AgentKind, name: Option<&str>) -> t::AgentCredentialRef {
    t::AgentCredentialRef {
        kind,
        name: name.map(str::to_string),
        credential_type: None,
        none: name.is_none(),
    }
}

/// Create a sandbox with network `none` and wait until it runs.
pub async fn create(
    svc: &Service,
    caller: &Caller,
    name: &str,
    preset: Option<&str>,
    creds: Vec<t::AgentCredentialRef>,
) -> t::Sandbox {
    let req = t::CreateSandboxRequest {
        name: name.into(),
        preset: preset.map(str::to_string),
        agent_credentials: creds,
        ..Default::default()
    };
    create_offline(svc, caller, req).await
}

/// Create the sandbox `req` asks for, with network `none` whatever it says, and wait until it
/// runs.
pub async fn create_offline(
    svc: &Service,
    caller: &Caller,
    mut req: t::CreateSandboxRequest,
) -> t::Sandbox {
    req.network = Some(NetworkMode::None);
    let name = req.name.clone();
    let created = svc
        .create_sandbox(caller, req)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    assert_eq!(created.network, NetworkMode::None);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = svc.get_sandbox(caller, &created.id).await.unwrap();
        match s.state {
            SandboxState::Running => return created,
            SandboxState::Failed => panic!("{name} failed: {:?}", s.error_message),
            _ => {}
        }
        assert!(Instant::now() < deadline, "{name} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `grep -r -F` for every value (patterns on stdin, not argv): fails the test on a hit.
pub fn assert_no_value_in(dir: &Path, values: &[&str]) {
    let mut grep = Command::new("grep")
        .args(["-r", "-F", "-l", "-f", "-"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    grep.stdin
        .take()
        .unwrap()
        .write_all(values.join("\n").as_bytes())
        .unwrap();
    let out = grep.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "grep found a value (or failed) in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}
