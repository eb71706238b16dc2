//! How each agent's CLI is started inside a sandbox: the argv templates of
//! [`ServerConfig::agent_commands`](crate::ServerConfig), their validation, the agents'
//! permission policies ([`ServerConfig::agent_permissions`](crate::ServerConfig)), and the one
//! substitution of a send's message, the agent's session id and its permission arguments into
//! them.

use std::collections::BTreeMap;

use amika_types::AgentKind;

/// The template argument replaced by the message, whole.
pub const MESSAGE_PLACEHOLDER: &str = "{message}";

/// Replaced by the agent's own session id wherever it appears in a resume template's argument.
pub const SESSION_PLACEHOLDER: &str = "{session}";

/// The template argument replaced by the agent's permission arguments (none or several).
pub const PERMISSIONS_PLACEHOLDER: &str = "{permissions}";

/// Each agent's permission mode (see [`permission_args`]).
pub type AgentPermissions = BTreeMap<AgentKind, String>;

/// Claude Code's `--permission-mode` values.
const CLAUDE_MODES: &[&str] = &[
    "default",
    "acceptEdits",
    "plan",
    "bypassPermissions",
    "dontAsk",
];

/// Codex's `--sandbox` values.
const CODEX_MODES: &[&str] = &["read-only", "workspace-write", "danger-full-access"];

/// The default policies: the agent may do anything inside its sandbox without asking. Nobody
/// is there to approve a step (`agent-send` runs the agent non-interactively, so a mode that
/// asks just makes the step fail), and the sandbox is the boundary: its own namespaces, no view
/// of the host, only the credentials resolved for it. Codex's own sandbox is off for the same
/// reason (it would nest inside amika's).
pub fn default_agent_permissions() -> AgentPermissions {
    BTreeMap::from([
        (AgentKind::Claude, "bypassPermissions".to_string()),
        (AgentKind::Codex, "danger-full-access".to_string()),
    ])
}

/// The arguments of `kind`'s permission `mode`, or what is expected instead.
pub fn permission_args(kind: AgentKind, mode: &str) -> Result<Vec<String>, String> {
    let (flag, modes) = match kind {
        AgentKind::Claude => ("--permission-mode", CLAUDE_MODES),
        AgentKind::Codex => ("--sandbox", CODEX_MODES),
        AgentKind::Github => return Err("github is not an agent: expected claude or codex".into()),
    };
    if !modes.contains(&mode) {
        return Err(format!(
            "{mode:?} is not a {kind} permission mode: expected one of {}",
            modes.join(", ")
        ));
    }
    Ok(vec![flag.to_string(), mode.to_string()])
}

/// How one agent is started inside a sandbox: argv templates.
///
/// An argument that is exactly [`MESSAGE_PLACEHOLDER`] is replaced by the message as one
/// argument; [`SESSION_PLACEHOLDER`] inside an argument of `resume` is replaced by the agent's
/// session id. Nothing else is substituted, and the replaced text is never looked at again (a
/// message that contains `{session}` stays as it is).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCommand {
    /// Starts a new conversation.
    pub new_session: Vec<String>,
    /// Continues the conversation the agent knows as `{session}`.
    pub resume: Vec<String>,
}

/// The command of each agent kind.
pub type AgentCommands = BTreeMap<AgentKind, AgentCommand>;

/// Claude Code's print mode, streaming JSON events, with its permission mode.
const CLAUDE_PRINT: &[&str] = &[
    "claude",
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
    PERMISSIONS_PLACEHOLDER,
];

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The real agents' command lines.
///
/// - Claude Code: `claude -p --output-format stream-json --verbose --include-partial-messages
///   --permission-mode MODE [--resume SESSION] -- MESSAGE` (print mode; one JSON event a line: text deltas, messages
///   with tool calls and results, and a last `result` object; `--verbose` is what print mode
///   asks for to stream JSON).
/// - Codex: `codex exec --json --skip-git-repo-check --sandbox MODE [resume SESSION] -- MESSAGE` (`exec resume`
///   is Codex's non-interactive continuation; `--json` prints event lines;
///   `--skip-git-repo-check` because a sandbox's workspace need not be a git repository, which
///   `codex exec` otherwise refuses).
///
/// The message comes last, after `--`, so a message that starts with `-` is never read as an
/// option by either CLI.
pub fn default_agent_commands() -> AgentCommands {
    BTreeMap::from([
        (
            AgentKind::Claude,
            AgentCommand {
                new_session: argv(&[CLAUDE_PRINT, &["--", "{message}"]].concat()),
                resume: argv(
                    &[CLAUDE_PRINT, &["--resume", "{session}", "--", "{message}"]].concat(),
                ),
            },
        ),
        (
            AgentKind::Codex,
            AgentCommand {
                new_session: argv(&[
                    "codex",
                    "exec",
                    "--json",
                    "--skip-git-repo-check",
                    PERMISSIONS_PLACEHOLDER,
                    "--",
                    "{message}",
                ]),
                resume: argv(&[
                    "codex",
                    "exec",
                    "--json",
                    "--skip-git-repo-check",
                    PERMISSIONS_PLACEHOLDER,
                    "resume",
                    "{session}",
                    "--",
                    "{message}",
                ]),
            },
        ),
    ])
}

/// Why an agent's command template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {kind} agent's {name} command template {template:?} {problem}")]
pub struct AgentCommandError {
    pub kind: AgentKind,
    /// `new_session` or `resume`.
    pub name: &'static str,
    pub template: Vec<String>,
    pub problem: TemplateProblem,
}

/// What is wrong with a command template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    #[error("must start with the program to run")]
    NoProgram,
    #[error("must have exactly one argument {}", MESSAGE_PLACEHOLDER)]
    MessageNotOnce,
    #[error("must contain {}", SESSION_PLACEHOLDER)]
    NoSession,
    #[error("must not contain {}", SESSION_PLACEHOLDER)]
    UnwantedSession,
    #[error("is for a kind that is not an agent: expected claude or codex")]
    NotAnAgent,
    #[error("may contain {} at most once", PERMISSIONS_PLACEHOLDER)]
    PermissionsTwice,
}

impl AgentCommand {
    /// Whether both templates can be used: a program first, the message exactly once, the
    /// session only (and at least once) in `resume`.
    pub fn validate(&self, kind: AgentKind) -> std::result::Result<(), AgentCommandError> {
        if !kind.is_agent() {
            return Err(AgentCommandError {
                kind,
                name: "new_session",
                template: self.new_session.clone(),
                problem: TemplateProblem::NotAnAgent,
            });
        }
        for (name, template, needs_session) in [
            ("new_session", &self.new_session, false),
            ("resume", &self.resume, true),
        ] {
            let fail = |problem| AgentCommandError {
                kind,
                name,
                template: template.clone(),
                problem,
            };
            let program = template.first().map(String::as_str).unwrap_or("");
            if program.is_empty() || program.contains('{') {
                return Err(fail(TemplateProblem::NoProgram));
            }
            let messages = template
                .iter()
                .filter(|a| *a == MESSAGE_PLACEHOLDER)
                .count();
            if messages != 1 {
                return Err(fail(TemplateProblem::MessageNotOnce));
            }
            let sessions = template
                .iter()
                .filter(|a| a.contains(SESSION_PLACEHOLDER))
                .count();
            if template
                .iter()
                .filter(|a| *a == PERMISSIONS_PLACEHOLDER)
                .count()
                > 1
            {
                return Err(fail(TemplateProblem::PermissionsTwice));
            }
            match (needs_session, sessions) {
                (true, 0) => return Err(fail(TemplateProblem::NoSession)),
                (false, n) if n > 0 => return Err(fail(TemplateProblem::UnwantedSession)),
                _ => {}
            }
        }
        Ok(())
    }

    /// The argv of one send: `resume` with the agent's session id, else `new_session`, with
    /// `permissions` in place of [`PERMISSIONS_PLACEHOLDER`].
    pub fn argv(&self, message: &str, resume: Option<&str>, permissions: &[String]) -> Vec<String> {
        let template = if resume.is_some() {
            &self.resume
        } else {
            &self.new_session
        };
        template
            .iter()
            .flat_map(|arg| match (arg.as_str(), resume) {
                (MESSAGE_PLACEHOLDER, _) => vec![message.to_string()],
                (PERMISSIONS_PLACEHOLDER, _) => permissions.to_vec(),
                (_, Some(session)) => vec![arg.replace(SESSION_PLACEHOLDER, session)],
                _ => vec![arg.clone()],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "add tests for the parser; $(rm -rf ~) 'quoted' \"dq\" {session}\n-x";

    #[test]
    fn real_templates_give_the_exact_argv_for_claude() {
        let commands = default_agent_commands();
        let claude = &commands[&AgentKind::Claude];
        let print = [
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--permission-mode",
            "plan",
        ];
        let plan = permission_args(AgentKind::Claude, "plan").unwrap();
        assert_eq!(
            claude.argv(MESSAGE, None, &plan),
            [&print[..], &["--", MESSAGE]].concat()
        );
        assert_eq!(
            claude.argv(MESSAGE, Some("3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"), &plan),
            [
                &print[..],
                &[
                    "--resume",
                    "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
                    "--",
                    MESSAGE
                ]
            ]
            .concat()
        );
    }

    #[test]
    fn real_templates_give_the_exact_argv_for_codex() {
        let commands = default_agent_commands();
        let codex = &commands[&AgentKind::Codex];
        let full = permission_args(AgentKind::Codex, "danger-full-access").unwrap();
        assert_eq!(
            codex.argv(MESSAGE, None, &full),
            [
                "codex",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--sandbox",
                "danger-full-access",
                "--",
                MESSAGE
            ]
        );
        assert_eq!(
            codex.argv(MESSAGE, Some("019b341f-04d9-73b3-8263-2c05ca63d690"), &[]),
            [
                "codex",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "resume",
                "019b341f-04d9-73b3-8263-2c05ca63d690",
                "--",
                MESSAGE
            ]
        );
    }

    #[test]
    fn permission_modes_are_checked_per_agent_and_the_defaults_are_valid() {
        for (kind, mode) in default_agent_permissions() {
            assert_eq!(permission_args(kind, &mode).unwrap().len(), 2);
        }
        assert_eq!(
            permission_args(AgentKind::Claude, "acceptEdits").unwrap(),
            ["--permission-mode", "acceptEdits"]
        );
        let err = permission_args(AgentKind::Codex, "bypassPermissions").unwrap_err();
        assert_eq!(
            err,
            "\"bypassPermissions\" is not a codex permission mode: expected one of read-only, workspace-write, danger-full-access"
        );
        assert!(permission_args(AgentKind::Github, "plan").is_err());
        let twice = AgentCommand {
            new_session: argv(&["claude", "{permissions}", "{permissions}", "{message}"]),
            ..default_agent_commands()[&AgentKind::Claude].clone()
        };
        assert_eq!(
            twice.validate(AgentKind::Claude).unwrap_err().problem,
            TemplateProblem::PermissionsTwice
        );
    }

    #[test]
    fn every_default_template_is_valid_and_bad_ones_say_why() {
        for (kind, command) in default_agent_commands() {
            command.validate(kind).unwrap();
        }
        let good = &default_agent_commands()[&AgentKind::Claude];
        let no_message = AgentCommand {
            new_session: argv(&["claude", "-p"]),
            ..good.clone()
        };
        let err = no_message
            .validate(AgentKind::Claude)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("new_session") && err.contains("{message}"),
            "{err}"
        );
        let no_session = AgentCommand {
            resume: argv(&["claude", "-p", "{message}"]),
            ..good.clone()
        };
        let err = no_session
            .validate(AgentKind::Claude)
            .unwrap_err()
            .to_string();
        assert!(err.contains("resume") && err.contains("{session}"), "{err}");
        let message_as_program = AgentCommand {
            new_session: argv(&["{message}"]),
            ..good.clone()
        };
        assert!(message_as_program.validate(AgentKind::Claude).is_err());
        let twice = AgentCommand {
            new_session: argv(&["claude", "{message}", "{message}"]),
            ..good.clone()
        };
        assert!(twice.validate(AgentKind::Claude).is_err());
    }
}
