//! CLI behaviour that needs no server: help, flag errors, the confirmation rules, and the
//! one-line error for a server that is not there. Every run gets its own empty config and home
//! and a piped (non-terminal) stdin.

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `amika` with an isolated config and home, not logged in.
    fn amika(&self) -> Command {
        let mut cmd = Command::cargo_bin("amika").unwrap();
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AMIKA_CONFIG", self.dir.path().join("config.json"))
            .write_stdin("");
        cmd
    }

    /// `amika` pointed at a port where nothing listens, with a key.
    fn amika_unreachable(&self) -> (Command, String) {
        let url = format!("http://127.0.0.1:{}", free_port());
        let mut cmd = self.amika();
        cmd.env("AMIKA_API_URL", &url)
            .env("AMIKA_API_KEY", "amk_test");
        (cmd, url)
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// stderr is exactly one line starting with `error: `.
fn one_error_line(expected: &str) -> impl Predicate<str> {
    let expected = expected.to_string();
    predicate::function(move |s: &str| {
        s.lines().count() == 1 && s.starts_with("error: ") && s.contains(&expected)
    })
}

#[test]
fn help_lists_the_command_groups() {
    let env = Env::new();
    env.amika().arg("--help").assert().success().stdout(
        contains("sandbox")
            .and(contains("secret"))
            .and(contains("auth")),
    );
    env.amika()
        .args(["sandbox", "create", "--help"])
        .assert()
        .success()
        .stdout(contains("--no-agent-credential").and(contains("env:VAR=NAME")));
}

#[test]
fn bad_secret_flag_is_one_clear_error() {
    let env = Env::new();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args(["sandbox", "create", "--name", "b", "--secret", "foo"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line(
            r#"invalid --secret "foo": expected env:VAR=SECRET_NAME or env:SECRET_NAME"#,
        ));
}

#[test]
fn conflicting_agent_flags_are_an_error_before_any_request() {
    let env = Env::new();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args([
        "sandbox",
        "create",
        "--name",
        "b",
        "--agent-credential-type",
        "codex=api-key",
        "--no-agent-credential",
        "codex",
    ])
    .assert()
    .code(1)
    .stderr(one_error_line(
        "--no-agent-credential codex and --agent-credential-type codex=api-key are mutually exclusive (for codex)",
    ));
}

#[test]
fn json_mode_destructive_command_without_yes_is_refused() {
    let env = Env::new();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args(["-o", "json", "secret", "delete", "DB"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line("pass --yes"));

    let (mut cmd, _) = env.amika_unreachable();
    cmd.args(["sandbox", "delete", "box", "-o", "json"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line("pass --force (or --yes)"));
}

#[test]
fn push_without_a_terminal_or_yes_is_refused_before_any_request() {
    let env = Env::new();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args(["secret", "push", "A=1"])
        .assert()
        .code(1)
        .stderr(one_error_line(
            "refusing to push without confirmation: pass --yes",
        ));
}

#[test]
fn push_positional_without_equals_names_it() {
    let env = Env::new();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args(["secret", "push", "A=1", "DATABASE_URL", "--yes"])
        .assert()
        .code(1)
        .stderr(one_error_line(
            r#"invalid argument "DATABASE_URL": expected KEY=VALUE"#,
        ));
}

#[test]
fn push_from_a_bad_env_file_names_file_and_line() {
    let env = Env::new();
    let file = env.dir.path().join("bad.env");
    std::fs::write(&file, "A=1\n# ok\nbroken line\n").unwrap();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args(["secret", "push", "--yes", "--from-file"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(one_error_line(&format!(
            "{}:3: expected KEY=VALUE",
            file.display()
        )));
}

#[test]
fn oauth_credential_that_is_not_json_names_the_file() {
    let env = Env::new();
    let file = env.dir.path().join("creds.json");
    std::fs::write(&file, "sk-ant-not-json").unwrap();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args([
        "secret",
        "claude",
        "push",
        "--name",
        "p",
        "--type",
        "oauth",
        "--yes",
        "--from-file",
    ])
    .arg(&file)
    .assert()
    .code(1)
    .stderr(one_error_line(&format!(
        "--from-file {} is not valid JSON",
        file.display()
    )));
}

#[test]
fn extract_with_an_unknown_kind_is_an_error() {
    let env = Env::new();
    env.amika()
        .args(["secret", "extract", "--only", "claude,gemini"])
        .assert()
        .code(1)
        .stderr(one_error_line(r#"--only: unknown kind "gemini""#));
}

#[test]
fn extract_shows_found_credentials_masked() {
    let env = Env::new();
    let claude = env.dir.path().join(".claude");
    std::fs::create_dir_all(&claude).unwrap();
    let doc = amika_testkit::ClaudeOauth::new("sk-ant-oat01-SECRETSECRET", "r")
        .expires_at_ms(1)
        .to_json();
    std::fs::write(claude.join(".credentials.json"), doc).unwrap();
    env.amika()
        .env("OPENAI_API_KEY", "sk-proj-abcdefghijklmnop")
        .args(["secret", "extract"])
        .assert()
        .success()
        .stdout(
            contains("claude-oauth")
                .and(contains("codex-api-key"))
                .and(contains("sk-p****************mnop"))
                .and(contains("SECRETSECRET").not())
                .and(contains("abcdefghijklmnop").not()),
        );
}

#[test]
fn unreachable_server_is_one_line_and_exit_1() {
    let env = Env::new();
    let (mut cmd, url) = env.amika_unreachable();
    cmd.args(["secret", "list"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(format!(
            "error: cannot reach the amika server at {url}: is it running? (`amika up`)\n"
        ));
}

#[test]
fn unreachable_server_in_json_mode_prints_nothing_on_stdout() {
    let env = Env::new();
    let (mut cmd, _) = env.amika_unreachable();
    cmd.args(["sandbox", "list", "-o", "json"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line("cannot reach the amika server"));
}

#[test]
fn login_against_an_unreachable_server_saves_nothing() {
    let env = Env::new();
    let url = format!("http://127.0.0.1:{}", free_port());
    env.amika()
        .args(["auth", "login", "--url", &url, "--api-key", "-"])
        .write_stdin("amk_abc\n")
        .assert()
        .code(1)
        .stderr(one_error_line("cannot reach the amika server"));
    assert!(!env.dir.path().join("config.json").exists());
}

#[test]
fn without_a_login_commands_say_how_to_log_in() {
    let env = Env::new();
    env.amika()
        .args(["sandbox", "list"])
        .assert()
        .code(1)
        .stderr(one_error_line("not logged in: run `amika auth login"));
}

#[test]
fn login_without_a_key_on_a_pipe_says_what_to_pass() {
    let env = Env::new();
    env.amika()
        .args(["auth", "login", "--url", "http://127.0.0.1:1"])
        .assert()
        .code(1)
        .stderr(one_error_line("pass --api-key KEY, or --api-key -"));
}

#[test]
fn exec_requires_a_command() {
    let env = Env::new();
    env.amika()
        .args(["sandbox", "exec", "box"])
        .assert()
        .failure()
        .stderr(contains("CMD"));
}

/// The server answers 400 for a limit outside 1..=1000 (it used to clamp); the CLI refuses such
/// a `--limit` before any request, in the server's words, instead of sending it.
#[test]
fn audit_with_a_bad_limit_is_refused_before_any_request() {
    let env = Env::new();
    for bad in ["0", "1001", "-3", "ten"] {
        let (mut cmd, _) = env.amika_unreachable();
        cmd.args(["audit", &format!("--limit={bad}")])
            .assert()
            .failure()
            .stdout("")
            .stderr(
                contains("--limit")
                    .and(contains("limit must be a whole number in 1..=1000"))
                    .and(contains("cannot reach").not()),
            );
    }
}
