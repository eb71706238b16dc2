//! `amika sandbox agent-send NAME [MESSAGE]`: send a message to the coding agent in a sandbox
//! and print its reply.
//!
//! The message is an argument, or stdin when it is left out (or `-`), so a long prompt never has
//! to be quoted for a shell. The reply goes to stdout and the session line to stderr, so
//! `amika sandbox agent-send box "..." > reply.md` keeps just the reply. An agent that failed
//! (crashed, could not authenticate, ran out of time) exits 1 with its error on stderr; `-o json`
//! prints the whole answer, including `is_error`.
//!
//! `--stream` shows the agent's progress as it comes: its text on stdout, its tool calls on
//! stderr (`-o json`: every event as a JSON line). Ctrl-C stops the agent.
//!
//! `--no-wait` starts the send as a job and prints its id (poll it with
//! `GET .../agent-send-jobs/{job_id}`, or see it in `amika sandbox session NAME SID`);
//! `--workdir DIR` runs the agent in DIR inside the sandbox (absolute, or relative to the
//! workspace).

use std::io::Write;
use std::process::ExitCode;

use amika_client::ClientError;
use amika_types::{
    AgentDeltaKind, AgentJobState, AgentKind, AgentSendRequest, AgentSendResponse,
    AgentStreamEvent, ErrorCode,
};
use anyhow::{bail, Context};

use super::Ctx;
use crate::output::print_json;
use crate::prompt;
use crate::spinner::Spinner;

#[derive(Debug, clap::Args)]
pub struct AgentSendArgs {
    /// The sandbox's name (or id).
    pub name: String,
    /// What to tell the agent; read from stdin when left out or `-`.
    #[arg(allow_hyphen_values = true)]
    pub message: Option<String>,
    /// Which agent: claude or codex (default: the session's, else the first one the sandbox
    /// has a credential for).
    #[arg(long, value_name = "KIND", value_parser = crate::sandbox_flags::parse_agent)]
    pub agent: Option<AgentKind>,
    /// Continue this session (default: the sandbox's latest session with the agent).
    #[arg(long, value_name = "ID", conflicts_with = "new_session")]
    pub session_id: Option<String>,
    /// Start a new session.
    #[arg(long)]
    pub new_session: bool,
    /// Stop the agent after this many seconds (at most the server's deadline, 10 min by default).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Do not wait for the reply: start the send as a job and print its id.
    #[arg(long, conflicts_with = "stream")]
    pub no_wait: bool,
    /// Show the agent's progress as it comes: its text on stdout, its tool calls on stderr
    /// (with -o json, every event as a JSON line).
    #[arg(long)]
    pub stream: bool,
    /// The directory the agent runs in, inside the sandbox: absolute, or relative to the
    /// workspace (default: the workspace).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
}

/// The request from the arguments, with the message already read.
pub fn build_request(args: &AgentSendArgs, message: String) -> anyhow::Result<AgentSendRequest> {
    if message.trim().is_empty() {
        bail!("the message is empty: pass it as an argument or on stdin");
    }
    if args.timeout == Some(0) {
        bail!("--timeout must be at least 1 second");
    }
    if let Some(dir) = &args.workdir {
        if dir.trim().is_empty() {
            bail!("--workdir is empty: give a directory inside the sandbox, absolute or relative to the workspace");
        }
        if dir.starts_with('~') {
            bail!("--workdir {dir:?} starts with ~, which the sandbox does not expand: give an absolute path (/home/amika/...) or one relative to the workspace");
        }
    }
    Ok(AgentSendRequest {
        message,
        agent: args.agent,
        session_id: args.session_id.clone(),
        new_session: args.new_session,
        timeout_secs: args.timeout,
        workdir: args.workdir.clone(),
    })
}

fn read_message(args: &AgentSendArgs) -> anyhow::Result<String> {
    match args.message.as_deref() {
        Some(m) if m != "-" => Ok(m.to_string()),
        _ => {
            if prompt::stdin_is_tty() {
                eprintln!("Type the message for the agent, then Ctrl-D:");
            }
            Ok(prompt::strip_one_newline(&prompt::read_stdin()?).to_string())
        }
    }
}

pub async fn send(ctx: &Ctx, args: AgentSendArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let req = build_request(&args, read_message(&args)?)?;
    if args.no_wait {
        let job = client.create_agent_send_job(&args.name, &req).await?;
        if ctx.json() {
            print_json(&job)?;
        } else {
            eprintln!(
                "{}, {} {}: job started (see it with `amika sandbox session {} {}`)",
                job.agent,
                if job.is_new_session {
                    "new session"
                } else {
                    "session"
                },
                job.session_id,
                args.name,
                job.session_id
            );
            crate::output::write_stdout(format_args!("{}", job.job_id))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.stream {
        return stream(ctx, &client, &args.name, &req).await;
    }
    let reply = {
        let _spinner = Spinner::start(format!(
            "Waiting for the agent in sandbox {:?}...",
            args.name
        ));
        client.agent_send(&args.name, &req).await
    };
    let reply = match reply {
        Err(e) => return agent_failure(e),
        Ok(reply) => reply,
    };
    if ctx.json() {
        print_json(&reply)?;
    } else {
        print_reply(&reply)?;
    }
    Ok(exit_code(&reply))
}

/// An agent that could not authenticate is an API error (422 `agent_auth_failed`): said as the
/// agent's other failures are, `error: MESSAGE`, exit 1. Any other error goes up.
fn agent_failure(err: ClientError) -> anyhow::Result<ExitCode> {
    match err {
        ClientError::Api { code, message, .. } if code == ErrorCode::AgentAuthFailed.as_str() => {
            eprintln!("error: {}", message.trim_end());
            Ok(ExitCode::FAILURE)
        }
        other => Err(other.into()),
    }
}

/// `--stream`: the events as they come, to the end.
async fn stream(
    ctx: &Ctx,
    client: &amika_client::Client,
    name: &str,
    req: &AgentSendRequest,
) -> anyhow::Result<ExitCode> {
    let mut events = match client.agent_send_stream(name, req).await {
        Err(e) => return agent_failure(e),
        Ok(events) => events,
    };
    let mut shown = Shown::default();
    while let Some(event) = events.next_event().await {
        let event = event?;
        if ctx.json() {
            crate::output::write_stdout(format_args!("{}", serde_json::to_string(&event)?))?;
        }
        match event {
            AgentStreamEvent::Done(reply) if ctx.json() => return Ok(exit_code(&reply)),
            AgentStreamEvent::Error(_) if ctx.json() => return Ok(ExitCode::FAILURE),
            _ if ctx.json() => {}
            event => {
                if let Some(code) = shown.show(event)? {
                    return Ok(code);
                }
            }
        }
    }
    Ok(ExitCode::FAILURE)
}

fn exit_code(reply: &AgentSendResponse) -> ExitCode {
    if reply.is_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What a streamed send has shown so far in text mode.
#[derive(Debug, Default)]
struct Shown {
    /// The reply's text shown so far (on stdout).
    text: String,
    /// Whether stdout is inside a line.
    mid_line: bool,
}

impl Shown {
    /// Show one event; the exit code once the stream has ended.
    fn show(&mut self, event: AgentStreamEvent) -> anyhow::Result<Option<ExitCode>> {
        match event {
            AgentStreamEvent::Status(s) if s.state == AgentJobState::Pending => {
                eprintln!(
                    "{}, {} {} (continue with --session-id {})",
                    s.agent,
                    if s.is_new_session {
                        "new session"
                    } else {
                        "session"
                    },
                    s.session_id,
                    s.session_id
                );
            }
            AgentStreamEvent::Status(_) => {}
            AgentStreamEvent::Delta(d) => match d.kind {
                AgentDeltaKind::Text => self.out(&d.text)?,
                AgentDeltaKind::Thinking => {}
                AgentDeltaKind::ToolCall => {
                    self.end_line()?;
                    let what = d.text.lines().next().unwrap_or("");
                    eprintln!("→ {}: {what}", d.tool.as_deref().unwrap_or("tool"));
                }
                AgentDeltaKind::ToolResult => {}
            },
            AgentStreamEvent::Done(reply) => {
                if reply.is_error {
                    self.end_line()?;
                    eprintln!("error: {}", reply.response.trim_end());
                } else if self.text.trim().is_empty() {
                    // An agent that streams no text (a custom command): its answer, whole.
                    self.out(&reply.response)?;
                }
                self.end_line()?;
                return Ok(Some(exit_code(&reply)));
            }
            AgentStreamEvent::Error(body) => {
                self.end_line()?;
                eprintln!("error: {}", body.message.trim_end());
                return Ok(Some(ExitCode::FAILURE));
            }
        }
        Ok(None)
    }

    fn out(&mut self, text: &str) -> anyhow::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.text.push_str(text);
        self.mid_line = !text.ends_with('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .context("cannot write to stdout")
    }

    /// End stdout's line, so that what goes to stderr starts on a line of its own.
    fn end_line(&mut self) -> anyhow::Result<()> {
        if self.mid_line {
            self.out("\n")?;
        }
        Ok(())
    }
}

fn print_reply(reply: &AgentSendResponse) -> anyhow::Result<()> {
    eprintln!("{}", session_line(reply));
    if reply.is_error {
        eprintln!("error: {}", reply.response.trim_end());
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(reply.response.as_bytes())
        .and_then(|_| {
            if reply.response.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|_| out.flush())
        .context("cannot write to stdout")
}

/// e.g. `claude, new session ses_0190… (continue with --session-id ses_0190…)`.
pub fn session_line(reply: &AgentSendResponse) -> String {
    format!(
        "{}, {} {} (continue with --session-id {})",
        reply.agent,
        if reply.is_new_session {
            "new session"
        } else {
            "session"
        },
        reply.session_id,
        reply.session_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::sandbox::SandboxCommand;
    use crate::commands::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<AgentSendArgs, clap::Error> {
        let mut full = vec!["amika", "sandbox", "agent-send"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Sandbox(SandboxCommand::AgentSend(args)) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_request() {
        let args = parse(&[
            "dev-box",
            "add tests for the parser",
            "--agent",
            "codex",
            "--session-id",
            "ses_1",
            "--timeout",
            "30",
        ])
        .unwrap();
        let req = build_request(&args, args.message.clone().unwrap()).unwrap();
        assert_eq!(
            req,
            AgentSendRequest {
                message: "add tests for the parser".into(),
                agent: Some(AgentKind::Codex),
                session_id: Some("ses_1".into()),
                new_session: false,
                timeout_secs: Some(30),
                workdir: None,
            }
        );
    }

    #[test]
    fn a_message_may_start_with_a_dash_and_may_be_left_out() {
        let args = parse(&["box", "--", "-v is broken"]).unwrap();
        assert_eq!(args.message.as_deref(), Some("-v is broken"));
        assert!(parse(&["box"]).unwrap().message.is_none());
    }

    #[test]
    fn bad_flags_are_refused_with_what_was_wrong() {
        let err = parse(&["box", "m", "--session-id", "s", "--new-session"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--session-id") && err.contains("--new-session"),
            "{err}"
        );
        let err = parse(&["box", "m", "--agent", "gemini"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gemini") && err.contains("claude or codex"),
            "{err}"
        );
        let args = parse(&["box", "m", "--workdir", "~/src"]).unwrap();
        let err = build_request(&args, "m".into()).unwrap_err().to_string();
        assert!(err.contains("--workdir \"~/src\" starts with ~"), "{err}");
        let args = parse(&["box", "m", "--workdir", "src/app", "--no-wait"]).unwrap();
        assert!(args.no_wait);
        let req = build_request(&args, "m".into()).unwrap();
        assert_eq!(req.workdir.as_deref(), Some("src/app"));
        let args = parse(&["box", "  "]).unwrap();
        let err = build_request(&args, "  \n".into()).unwrap_err().to_string();
        assert_eq!(
            err,
            "the message is empty: pass it as an argument or on stdin"
        );
    }

    #[test]
    fn the_session_line_says_how_to_continue() {
        let reply = AgentSendResponse {
            session_id: "ses_1".into(),
            agent_session_id: None,
            agent: AgentKind::Claude,
            job_id: "job_1".into(),
            response: "ok".into(),
            is_error: false,
            is_new_session: true,
            error_code: None,
            exit_code: Some(0),
            cost_usd: None,
            duration_ms: 1,
        };
        assert_eq!(
            session_line(&reply),
            "claude, new session ses_1 (continue with --session-id ses_1)"
        );
    }
}
