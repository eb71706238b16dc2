//! `amika sandbox sessions NAME` (a sandbox's agent sessions, most recently used first) and
//! `amika sandbox session NAME SID` (one session and its transcript). Every text comes from the
//! server already redacted: a value injected into the sandbox shows as `[REDACTED:<name>]`.

use std::fmt::Write as _;

use amika_types::{AgentSession, AgentTurn};

use super::Ctx;
use crate::output::{print_json, write_stdout, Table};

pub async fn list(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let list = client.list_agent_sessions(name).await?;
    if ctx.json() {
        return print_json(&list);
    }
    if list.sessions.is_empty() {
        eprintln!(
            "Sandbox {name:?} has no agent sessions yet: `amika sandbox agent-send {name} MESSAGE` starts one."
        );
        return Ok(());
    }
    let mut table = Table::new(&["ID", "AGENT", "STATUS", "TURNS", "CREDENTIAL", "UPDATED"]);
    for s in &list.sessions {
        table.row(vec![
            s.id.clone(),
            s.agent_name.to_string(),
            s.status.to_string(),
            s.turn_count.to_string(),
            credential(s),
            s.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        ]);
    }
    table.print()
}

pub async fn show(ctx: &Ctx, name: &str, session_id: &str) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let session = client.get_agent_session(name, session_id).await?;
    if ctx.json() {
        return print_json(&session);
    }
    write_stdout(format_args!("{}", render(&session)))
}

fn credential(s: &AgentSession) -> String {
    s.server_metadata
        .get("credential")
        .and_then(|c| c.as_str())
        .unwrap_or("-")
        .to_string()
}

/// The session's header, its client metadata, and each turn: the message, then the reply.
fn render(s: &AgentSession) -> String {
    let mut out = format!(
        "session {}: {}, {}, credential {}\n",
        s.id,
        s.agent_name,
        s.status,
        credential(s)
    );
    if s.metadata.as_object().is_some_and(|m| !m.is_empty()) {
        let _ = writeln!(out, "metadata: {}", s.metadata);
    }
    let turns = s.transcript.as_deref().unwrap_or_default();
    if turns.is_empty() {
        out.push_str("(no messages yet)\n");
    }
    for turn in turns {
        render_turn(&mut out, turn);
    }
    out
}

fn render_turn(out: &mut String, turn: &AgentTurn) {
    let _ = writeln!(
        out,
        "\n--- {} {} ({})",
        turn.created_at.format("%Y-%m-%d %H:%M:%S"),
        turn.id,
        turn.state
    );
    for line in turn.message.lines() {
        let _ = writeln!(out, "> {line}");
    }
    match &turn.response {
        Some(text) if turn.is_error => {
            let code = turn.error_code.as_deref().unwrap_or("error");
            let _ = writeln!(out, "error ({code}): {}", text.trim_end());
        }
        Some(text) => {
            let _ = writeln!(out, "{}", text.trim_end());
        }
        None => out.push_str("(the agent is still working)\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amika_types::{AgentJobState, AgentKind, AgentSessionStatus};
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn a_transcript_shows_each_message_and_its_reply() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let turn = |id: &str, message: &str, response: Option<&str>, is_error: bool| AgentTurn {
            id: id.into(),
            state: AgentJobState::Done,
            message: message.into(),
            response: response.map(Into::into),
            is_error,
            error_code: is_error.then(|| "agent_crashed".to_string()),
            exit_code: None,
            is_new_session: false,
            agent_session_id: None,
            cost_usd: None,
            created_at: at,
            finished_at: None,
        };
        let session = AgentSession {
            id: "ses_1".into(),
            sandbox_id: "sb".into(),
            org_id: "o".into(),
            agent_name: AgentKind::Claude,
            status: AgentSessionStatus::Failed,
            agent_session_id: None,
            turn_count: 2,
            started_at: at,
            ended_at: None,
            metadata: json!({"ticket": "ENG-1"}),
            server_metadata: json!({"credential": "personal"}),
            created_at: at,
            updated_at: at,
            transcript: Some(vec![
                turn(
                    "job_1",
                    "fix it\nplease",
                    Some("done [REDACTED:k]\n"),
                    false,
                ),
                turn("job_2", "again", Some("boom"), true),
            ]),
        };
        assert_eq!(
            render(&session),
            "session ses_1: claude, failed, credential personal\n\
             metadata: {\"ticket\":\"ENG-1\"}\n\
             \n--- 2026-01-02 03:04:05 job_1 (done)\n> fix it\n> please\ndone [REDACTED:k]\n\
             \n--- 2026-01-02 03:04:05 job_2 (done)\n> again\nerror (agent_crashed): boom\n"
        );
    }
}
