//! What the agent tests share: the *stand-in* agents (`tests/fixtures/fake-claude.sh`,
//! `fake-codex.sh`: test agents, not the real CLIs, which cannot reach their providers here),
//! installed as `claude` and `codex` in a sandbox's `~/.local/bin` (first on its PATH), the
//! credentials they run with, and the API calls the tests make.

use serde_json::Value;

use super::{claude_oauth_doc, http, ok, Server};

pub const FAKE_CLAUDE: &str = include_str!("../fixtures/fake-claude.sh");
pub const FAKE_CODEX: &str = include_str!("../fixtures/fake-codex.sh");

/// The values a test's credentials hold (each test its own, so a leak names its test).
pub struct Credentials {
    pub access: &'static str,
    pub refresh: &'static str,
    pub claude_key: &'static str,
    pub codex_key: &'static str,
}

impl Credentials {
    /// The Claude OAuth document of `access` and `refresh`.
    pub fn oauth_doc(&self) -> String {
        claude_oauth_doc(self.access, self.refresh)
    }

    /// Claude: `personal-oauth` (oauth, default) and `backup-key` (api key); Codex: `work-key`.
    pub fn push(&self, server: &Server) {
        let dir = server.dir.path();
        std::fs::write(dir.join("creds.json"), self.oauth_doc()).unwrap();
        ok(server
            .amika()
            .args(["secret", "claude", "push", "--name", "personal-oauth"])
            .args(["--type", "oauth", "--default", "--yes", "--from-file"])
            .arg(dir.join("creds.json")));
        for (kind, name, value) in [
            ("claude", "backup-key", self.claude_key),
            ("codex", "work-key", self.codex_key),
        ] {
            let file = dir.join(format!("{name}.key"));
            std::fs::write(&file, value).unwrap();
            ok(server
                .amika()
                .args(["secret", kind, "push", "--name", name])
                .args(["--type", "api_key", "--yes", "--from-file"])
                .arg(&file));
        }
    }
}

/// Deletes its sandbox when the test ends, also when it fails half-way.
pub struct Sandbox<'a> {
    pub server: &'a Server,
    pub name: String,
}

impl Drop for Sandbox<'_> {
    fn drop(&mut self) {
        let _ = self
            .server
            .amika()
            .args(["sandbox", "delete", &self.name, "--yes"])
            .output();
    }
}

/// Create a sandbox and install the stand-in agents in it.
pub fn sandbox<'a>(server: &'a Server, name: &str, flags: &[&str]) -> Sandbox<'a> {
    ok(server
        .amika()
        .args(["sandbox", "create", "--name", name])
        .args(flags));
    let sb = Sandbox {
        server,
        name: name.to_string(),
    };
    for (command, script) in [("claude", FAKE_CLAUDE), ("codex", FAKE_CODEX)] {
        // The script travels as an argument ($1), so nothing in it is read by a shell.
        ok(server.amika().args(["sandbox", "exec", name, "--"]).args([
            "sh",
            "-c",
            &format!(
                "mkdir -p \"$HOME/.local/bin\" && printf '%s' \"$1\" > \"$HOME/.local/bin/{command}\" && chmod 755 \"$HOME/.local/bin/{command}\""
            ),
            "install-stand-in-agent",
            script,
        ]));
    }
    sb
}

/// An API call with `key`: its status and its body (JSON, else the text as a string).
pub fn api_as(
    server: &Server,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(
        server,
        method,
        &format!("/api/v0beta1{path}"),
        Some(key),
        body.as_deref(),
    );
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// An API call as the admin.
pub fn api(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api_as(server, &server.admin_key, method, path, body)
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v:#}"))
}
