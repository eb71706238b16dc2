//! `amika sandbox create`: the flags, the request they make (every flag error is found before
//! any request is sent), and the create itself: the repository sent or named (`workspace.rs`),
//! the setup script's output followed live, the wait for `running`, and the report.

use std::path::{Path, PathBuf};

use amika_client::Client;
use amika_types::{
    CreateSandboxRequest, NetworkMode, Sandbox, SandboxSize, SandboxState, SetupState,
};
use anyhow::{bail, Context};

use super::show::{stream_setup_log, SetupLogText};
use super::workspace::{self, WORKSPACE};
use super::{failed_error, print_resolution, resolution_line, wait, Ctx};
use crate::output::print_json;
use crate::sandbox_flags;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The sandbox's name (unique among yours). Default: a readable generated name.
    #[arg(long)]
    pub name: Option<String>,
    /// The repository to work on, at ~/workspace/<repo-name>: a local checkout's path (sent by
    /// the CLI as a git bundle, never as a path) or a URL the server clones (https://, ssh://,
    /// git://, file:///, user@host:path). Default: the git repository of the current
    /// directory; none outside a repository.
    #[arg(long, value_name = "PATH|URL")]
    pub git: Option<String>,
    /// An empty workspace, even inside a git repository.
    #[arg(long, conflicts_with_all = ["git", "branch", "new_branch", "with_changes", "git_credential"])]
    pub no_git: bool,
    /// The branch to check out. Default: a local checkout's current branch, or the remote's
    /// default branch.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Create this branch (from --branch, or the default) and check it out.
    #[arg(long, value_name = "NAME")]
    pub new_branch: Option<String>,
    /// Also carry the local checkout's uncommitted changes and untracked files (ignored files
    /// stay behind; your index and branches are not touched). Local repositories only.
    #[arg(long)]
    pub with_changes: bool,
    /// The stored secret or github credential whose value is the clone's token over HTTPS
    /// (--git URL only). Default: your default github credential, for the server's GitHub
    /// hosts.
    #[arg(long, value_name = "NAME")]
    pub git_credential: Option<String>,
    /// Set a plain env var: KEY=VALUE (repeatable). Stored and shown as given: use --secret for
    /// anything secret.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Inject a secret as an env var: env:VAR=SECRET_NAME or env:SECRET_NAME (repeatable).
    #[arg(long = "secret", value_name = "env:VAR=NAME")]
    pub secrets: Vec<String>,
    /// Use this credential for an agent: KIND=NAME, KIND claude or codex (repeatable, once per
    /// kind). Mutually exclusive with --no-agent-credential for the same kind.
    #[arg(long = "agent-credential", value_name = "KIND=NAME")]
    pub agent_credentials: Vec<String>,
    /// Use a credential of this type for an agent: KIND=TYPE, TYPE oauth|api_key|api-key.
    /// Mutually exclusive with --no-agent-credential for the same kind.
    #[arg(long = "agent-credential-type", value_name = "KIND=TYPE")]
    pub agent_credential_types: Vec<String>,
    /// Inject no credential for this agent kind (repeatable). Mutually exclusive with
    /// --agent-credential and --agent-credential-type for the same kind.
    #[arg(long = "no-agent-credential", value_name = "KIND")]
    pub no_agent_credentials: Vec<String>,
    /// Run this script inside the sandbox, in the repository, before it is running (instead of
    /// the repository's setup_script). Its output is shown live and kept
    /// (`amika sandbox logs NAME --setup`); a non-zero exit fails the sandbox.
    #[arg(long, value_name = "FILE", conflicts_with = "no_setup")]
    pub setup_script: Option<PathBuf>,
    /// Run no setup script, not even the repository's.
    #[arg(long)]
    pub no_setup: bool,
    /// Seconds a setup script may run before it is killed (default 1800, at most 86400).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub setup_timeout: Option<u64>,
    /// A preset of this server (a named set of tools), e.g. coder.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Start from this snapshot (`amika snapshot list`): its home and workspace, repository
    /// included; no repository of the current directory is sent.
    #[arg(long, value_name = "SNAP", conflicts_with_all = ["git", "no_git", "with_changes", "branch", "new_branch"])]
    pub snapshot: Option<String>,
    /// Memory and process limits: xs (512 MiB), s (1 GiB), m (2 GiB), l (4 GiB) or xl (8 GiB);
    /// --memory and --pids override them.
    #[arg(long, value_name = "SIZE")]
    pub size: Option<SandboxSize>,
    /// Stop the sandbox after this many minutes without exec or agent activity (0: never; at
    /// most 10080).
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true, value_parser = sandbox_flags::parse_minutes)]
    pub auto_stop: Option<f64>,
    /// Delete the sandbox after this many minutes without exec or agent activity (0: never; at
    /// most 10080).
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true, value_parser = sandbox_flags::parse_minutes)]
    pub auto_delete: Option<f64>,
    /// Network: egress (default), none, or host (shares the host's network).
    #[arg(long)]
    pub network: Option<NetworkMode>,
    /// Memory limit in MiB.
    #[arg(long, value_name = "MiB")]
    pub memory: Option<u64>,
    /// Maximum number of processes.
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Return as soon as the server accepted the request (the setup script is not followed).
    #[arg(long)]
    pub no_wait: bool,
    /// Only show what would be injected (and what the repository's .amika/config.toml adds);
    /// create nothing. A local repository is still sent, for the server to read that file.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for the sandbox to be running (after its setup script).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub wait_timeout: u64,
}

/// Reads `--setup-script FILE`: a non-empty UTF-8 text.
fn read_setup_script(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("--setup-script {}: cannot read the file", path.display()))?;
    let Ok(text) = String::from_utf8(bytes) else {
        bail!(
            "--setup-script {}: not a text file: expected a shell script (UTF-8)",
            path.display()
        );
    };
    if text.trim().is_empty() {
        bail!(
            "--setup-script {} is empty: expected a shell script",
            path.display()
        );
    }
    Ok(text)
}

/// The create request from the flags; every flag error happens here (or in
/// `workspace::choose`), before any request. Reads `--setup-script`'s file; the repository
/// fields are filled in by `workspace::apply`.
pub fn build_request(args: &CreateArgs) -> anyhow::Result<CreateSandboxRequest> {
    for (flag, value) in [
        ("--name", &args.name),
        ("--branch", &args.branch),
        ("--new-branch", &args.new_branch),
        ("--git-credential", &args.git_credential),
        ("--preset", &args.preset),
        ("--snapshot", &args.snapshot),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            let what = if flag == "--name" {
                "a name, or no --name for a generated one"
            } else {
                "a NAME"
            };
            bail!("{flag} is empty: expected {what}");
        }
    }
    let setup_script_text = args
        .setup_script
        .as_deref()
        .map(read_setup_script)
        .transpose()?;
    Ok(CreateSandboxRequest {
        name: args.name.clone().unwrap_or_default(),
        secret_env_vars: sandbox_flags::parse_secrets(&args.secrets)?,
        agent_credentials: sandbox_flags::parse_agent_credentials(
            &args.agent_credentials,
            &args.agent_credential_types,
            &args.no_agent_credentials,
        )?,
        env_vars: sandbox_flags::parse_env(&args.env, &args.secrets)?,
        network: args.network,
        memory_mib: args.memory,
        pids: args.pids,
        branch: args.branch.clone(),
        new_branch_name: args.new_branch.clone(),
        git_credential: args.git_credential.clone(),
        setup_script_text,
        skip_setup_script: args.no_setup,
        setup_timeout_secs: args.setup_timeout,
        preset: args.preset.clone(),
        size: args.size,
        snapshot: args.snapshot.clone(),
        auto_stop_interval: args.auto_stop,
        auto_delete_interval: args.auto_delete,
        ..Default::default()
    })
}

pub async fn run(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let mut req = build_request(&args)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let choice = workspace::choose(&args, &cwd)?;
    let client = ctx.client()?;
    workspace::apply(ctx, &client, choice, &mut req).await?;
    if args.dry_run {
        return dry_run(ctx, &client, &req).await;
    }
    if args.network == Some(NetworkMode::Host) {
        eprintln!(
            "warning: --network host: the sandbox shares the host's network (no network isolation)"
        );
    }
    let mut sandbox = client.create_sandbox(&req).await?;
    for warning in &sandbox.warnings {
        eprintln!("warning: {warning}");
    }
    let warnings = std::mem::take(&mut sandbox.warnings);
    if !args.no_wait {
        if let Some(state) = setup_state(&sandbox) {
            follow_setup(ctx, &client, &sandbox.id, state).await;
        }
        if !matches!(sandbox.state, SandboxState::Running | SandboxState::Failed) {
            sandbox = wait(
                &client,
                &sandbox.id,
                SandboxState::Running,
                format!("Creating sandbox {:?}...", sandbox.name),
                args.wait_timeout,
            )
            .await?;
        }
    }
    sandbox.warnings = warnings;
    print_resolution(&sandbox.resolved_agent_credentials);
    if sandbox.state == SandboxState::Failed {
        return Err(failed_error(&sandbox));
    }
    if ctx.json() {
        return print_json(&sandbox);
    }
    report(&sandbox)
}

async fn dry_run(ctx: &Ctx, client: &Client, req: &CreateSandboxRequest) -> anyhow::Result<()> {
    let preview = client.resolve_preview(req).await?;
    if ctx.json() {
        return print_json(&preview);
    }
    for r in &preview.resolved_agent_credentials {
        crate::outln!("{}", resolution_line(r));
    }
    for (var, secret) in &req.secret_env_vars {
        crate::outln!("Secret {secret:?} as ${var}");
    }
    if let Some(applied) = &preview.repo_config {
        crate::outln!("Repo config: {}", super::show::repo_config_summary(applied));
    }
    Ok(())
}

/// Where the setup script of the create's answer stands, if it runs (or ran): its output is
/// shown.
fn setup_state(sandbox: &Sandbox) -> Option<SetupState> {
    sandbox
        .setup
        .as_ref()
        .map(|s| s.state)
        .filter(|state| *state != SetupState::Skipped)
}

/// Prints the setup script's output as it comes (stdout to stdout, or with `-o json` to stderr,
/// so that stdout stays one JSON document). A log that cannot be followed is only a warning:
/// the sandbox's state still says how the script went.
async fn follow_setup(ctx: &Ctx, client: &Client, id: &str, state: SetupState) {
    if !ctx.json() {
        match state {
            SetupState::Pending | SetupState::Running => {
                eprintln!("Running the setup script...")
            }
            _ => eprintln!("The setup script's output:"),
        }
    }
    let sink = SetupLogText::Live {
        stdout_to_stderr: ctx.json(),
    };
    match stream_setup_log(client, id, true, sink).await {
        Ok(log) => {
            if !ctx.json() {
                match (log.exit_code, &log.error) {
                    (Some(code), _) => eprintln!("The setup script exited with {code}"),
                    (None, Some(e)) => eprintln!("The setup script did not finish: {e}"),
                    (None, None) => {}
                }
            }
        }
        // None ran after all (the start failed first): the state says why.
        Err(e)
            if e.downcast_ref::<amika_client::ClientError>()
                .and_then(|c| c.status())
                == Some(404) => {}
        Err(e) => eprintln!(
            "warning: cannot follow the setup script's output: {}",
            crate::commands::one_line(&e)
        ),
    }
}

/// The text report of a created sandbox (stdout).
fn report(sandbox: &Sandbox) -> anyhow::Result<()> {
    crate::outln!(
        "Sandbox {:?} is {} (id {})",
        sandbox.name,
        sandbox.state,
        sandbox.id
    );
    if let Some(name) = &sandbox.repo_name {
        let mut line = format!("Repository {name} at {WORKSPACE}/{name}");
        if let Some(branch) = &sandbox.branch {
            line.push_str(&format!(", branch {branch}"));
        }
        if let Some(commit) = &sandbox.commit_hash {
            line.push_str(&format!(", commit {}", &commit[..commit.len().min(12)]));
        }
        crate::outln!("{line}");
    }
    if !sandbox.secret_names.is_empty() {
        crate::outln!("Secrets: {}", sandbox.secret_names.join(", "));
    }
    if !sandbox.env_vars.is_empty() {
        let keys: Vec<&str> = sandbox.env_vars.keys().map(String::as_str).collect();
        crate::outln!("Env vars: {}", keys.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use amika_types::{AgentCredentialRef, AgentKind, CredentialType};
    use clap::Parser;

    fn try_parse(argv: &[&str]) -> Result<CreateArgs, clap::Error> {
        let mut full = vec!["amika", "sandbox", "create"];
        full.extend_from_slice(argv);
        let cli = crate::commands::Cli::try_parse_from(full)?;
        match cli.command {
            crate::commands::Command::Sandbox(super::super::SandboxCommand::Create(args)) => {
                Ok(*args)
            }
            other => panic!("{other:?}"),
        }
    }

    pub(crate) fn parse_create(argv: &[&str]) -> CreateArgs {
        try_parse(argv).unwrap()
    }

    fn parse_error(argv: &[&str]) -> String {
        try_parse(argv).unwrap_err().to_string()
    }

    #[test]
    fn create_request_always_has_one_entry_per_agent() {
        let args = parse_create(&["--name", "b"]);
        let req = build_request(&args).unwrap();
        let kinds: Vec<AgentKind> = req.agent_credentials.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, AgentKind::AGENTS.to_vec());
        assert!(req
            .agent_credentials
            .iter()
            .all(|r| r.name.is_none() && r.credential_type.is_none() && !r.none));
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json["agent_credentials"],
            serde_json::json!([{"kind":"claude"},{"kind":"codex"}])
        );
    }

    #[test]
    fn the_design_example_builds_the_expected_request() {
        let args = parse_create(&[
            "--name",
            "dev-box",
            "--secret",
            "env:ANTHROPIC_API_KEY=my-claude-key",
            "--secret",
            "env:DATABASE_URL",
            "--agent-credential",
            "claude=personal-oauth",
            "--agent-credential-type",
            "codex=api-key",
            "--network",
            "none",
            "--memory",
            "512",
            "--pids",
            "64",
        ]);
        let req = build_request(&args).unwrap();
        assert_eq!(req.name, "dev-box");
        assert_eq!(req.secret_env_vars["ANTHROPIC_API_KEY"], "my-claude-key");
        assert_eq!(req.secret_env_vars["DATABASE_URL"], "DATABASE_URL");
        assert_eq!(
            req.agent_credentials,
            vec![
                AgentCredentialRef {
                    kind: AgentKind::Claude,
                    name: Some("personal-oauth".into()),
                    credential_type: None,
                    none: false
                },
                AgentCredentialRef {
                    kind: AgentKind::Codex,
                    name: None,
                    credential_type: Some(CredentialType::ApiKey),
                    none: false
                },
            ]
        );
        assert_eq!(req.network, Some(NetworkMode::None));
        assert_eq!(req.memory_mib, Some(512));
        assert_eq!(req.pids, Some(64));
        // `type` is serialised as the canonical api_key.
        let json = serde_json::to_string(&req.agent_credentials).unwrap();
        assert!(json.contains(r#""type":"api_key""#), "{json}");
    }

    #[test]
    fn the_workspace_flags_fill_the_request_fields() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("setup.sh");
        std::fs::write(&script, "echo hi\n").unwrap();
        let args = parse_create(&[
            "--branch",
            "dev",
            "--new-branch",
            "feature/x",
            "--git-credential",
            "gh",
            "--env",
            "NODE_ENV=development",
            "--env",
            "EMPTY=",
            "--setup-script",
            script.to_str().unwrap(),
            "--setup-timeout",
            "60",
            "--preset",
            "coder",
            "--size",
            "l",
            "--auto-stop",
            "30",
            "--auto-delete",
            "0",
        ]);
        let req = build_request(&args).unwrap();
        assert_eq!(req.name, "", "no --name: the server generates one");
        assert_eq!(req.branch.as_deref(), Some("dev"));
        assert_eq!(req.new_branch_name.as_deref(), Some("feature/x"));
        assert_eq!(req.git_credential.as_deref(), Some("gh"));
        assert_eq!(req.env_vars["NODE_ENV"], "development");
        assert_eq!(req.env_vars["EMPTY"], "");
        assert_eq!(req.setup_script_text.as_deref(), Some("echo hi\n"));
        assert_eq!(req.setup_timeout_secs, Some(60));
        assert!(!req.skip_setup_script);
        assert_eq!(req.preset.as_deref(), Some("coder"));
        assert_eq!(req.size, Some(SandboxSize::L));
        assert_eq!(req.auto_stop_interval, Some(30.0));
        assert_eq!(req.auto_delete_interval, Some(0.0));
        assert_eq!(
            (req.repo_url.clone(), req.workspace_upload.clone()),
            (None, None)
        );
        let req = build_request(&parse_create(&["--no-setup"])).unwrap();
        assert!(req.skip_setup_script);
        assert_eq!(req.setup_script_text, None);
    }

    #[test]
    fn flag_errors_surface_from_build_request() {
        let err = build_request(&parse_create(&["--name", "b", "--secret", "foo"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"invalid --secret "foo""#), "{err}");
        let err = build_request(&parse_create(&["--env", "NOPE"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"invalid --env "NOPE": expected KEY=VALUE"#),
            "{err}"
        );
        let err = build_request(&parse_create(&["--name", " "]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--name is empty: expected a name, or no --name for a generated one"
        );
        let err = build_request(&parse_create(&["--branch", ""]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "--branch is empty: expected a NAME");
    }

    #[test]
    fn a_setup_script_file_must_exist_and_hold_a_script() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sh");
        let err = build_request(&parse_create(&[
            "--setup-script",
            missing.to_str().unwrap(),
        ]))
        .unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.starts_with(&format!(
                "--setup-script {}: cannot read the file",
                missing.display()
            )),
            "{err}"
        );
        let empty = dir.path().join("empty.sh");
        std::fs::write(&empty, " \n\n").unwrap();
        let err = build_request(&parse_create(&["--setup-script", empty.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "--setup-script {} is empty: expected a shell script",
                empty.display()
            )
        );
        let binary = dir.path().join("bin.sh");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let err = build_request(&parse_create(&["--setup-script", binary.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a text file"), "{err}");
    }

    #[test]
    fn clap_refuses_malformed_values_naming_the_flag_and_what_is_expected() {
        let err = parse_error(&["--size", "huge"]);
        assert!(
            err.contains("'--size <SIZE>'") && err.contains("expected xs, s, m, l or xl"),
            "{err}"
        );
        for flag in ["--auto-stop", "--auto-delete"] {
            for bad in ["-5", "10081", "soon"] {
                let err = parse_error(&[flag, bad]);
                assert!(
                    err.contains(&format!("'{flag} <MINUTES>'"))
                        && err.contains("expected a number of minutes from 0 to 10080"),
                    "{flag} {bad}: {err}"
                );
            }
        }
        let err = parse_error(&["--setup-timeout", "0"]);
        assert!(err.contains("'--setup-timeout <SECS>'"), "{err}");
        assert!(err.contains("1..=86400"), "{err}");
        for other in [
            &["--git", "x"][..],
            &["--branch", "b"],
            &["--new-branch", "b"],
            &["--with-changes"],
            &["--git-credential", "gh"],
        ] {
            let mut argv = vec!["--no-git"];
            argv.extend_from_slice(other);
            let err = parse_error(&argv);
            assert!(
                err.contains("'--no-git'")
                    && err.contains("cannot be used with")
                    && err.contains(other[0]),
                "{err}"
            );
        }
        let err = parse_error(&["--no-setup", "--setup-script", "x.sh"]);
        assert!(
            err.contains("--setup-script") && err.contains("--no-setup"),
            "{err}"
        );
    }
}
