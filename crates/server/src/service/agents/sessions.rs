//! Sessions and their turns (the jobs of `agent-send`): how a turn is recorded as finished,
//! given up for lost past its deadline, and shown on the wire, and the reads of jobs and
//! sessions. A session's status is never stored: it comes from its turns.

use std::time::Duration;

use amika_sandbox::KeyedLock;
use amika_store::{AgentSessionRow, AgentTurnRow, SandboxRow, StoreError};
use amika_types::{self as t, AgentErrorCode, AgentJobState, AgentSessionStatus};
use serde_json::json;

use crate::service::{now, Caller, Result, Service, ServiceError};

pub(super) fn finish_turn(
    turn: &mut AgentTurnRow,
    is_error: bool,
    error_code: Option<AgentErrorCode>,
    text: String,
    exit_code: Option<i32>,
    elapsed: Duration,
) {
    let at = now();
    turn.state = if is_error {
        AgentJobState::Failed
    } else {
        AgentJobState::Done
    };
    turn.response = Some(text);
    turn.is_error = is_error;
    turn.error_code = error_code.map(|c| c.as_str().to_string());
    turn.exit_code = exit_code;
    turn.duration_ms = Some(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
    turn.updated_at = at;
    turn.finished_at = Some(at);
}

pub(super) fn in_flight(turn: &AgentTurnRow) -> bool {
    matches!(turn.state, AgentJobState::Pending | AgentJobState::Running)
}

pub(super) fn turn_response(
    session: &AgentSessionRow,
    turn: &AgentTurnRow,
) -> t::AgentSendResponse {
    t::AgentSendResponse {
        session_id: session.id.clone(),
        agent_session_id: turn.agent_session_id.clone(),
        agent: session.agent,
        job_id: turn.id.clone(),
        response: turn.response.clone().unwrap_or_default(),
        is_error: turn.is_error,
        is_new_session: turn.is_new_session,
        error_code: turn.error_code.clone(),
        exit_code: turn.exit_code,
        cost_usd: turn.cost_usd,
        duration_ms: turn
            .duration_ms
            .and_then(|d| u64::try_from(d).ok())
            .unwrap_or(0),
    }
}

pub(super) fn job_response(
    session: &AgentSessionRow,
    turn: &AgentTurnRow,
) -> t::AgentSendJobResponse {
    let finished = !in_flight(turn);
    t::AgentSendJobResponse {
        job_id: turn.id.clone(),
        state: turn.state,
        session_id: session.id.clone(),
        agent: session.agent,
        agent_session_id: turn.agent_session_id.clone(),
        is_new_session: turn.is_new_session,
        is_error: turn.is_error,
        result_text: finished.then(|| turn.response.clone().unwrap_or_default()),
        response: finished.then(|| turn_response(session, turn)),
        cost_usd: turn.cost_usd,
        created_at: turn.created_at,
        updated_at: turn.updated_at,
    }
}

fn turn_to_wire(turn: &AgentTurnRow) -> t::AgentTurn {
    t::AgentTurn {
        id: turn.id.clone(),
        state: turn.state,
        message: turn.message.clone(),
        response: turn.response.clone(),
        is_error: turn.is_error,
        error_code: turn.error_code.clone(),
        exit_code: turn.exit_code,
        is_new_session: turn.is_new_session,
        agent_session_id: turn.agent_session_id.clone(),
        cost_usd: turn.cost_usd,
        created_at: turn.created_at,
        finished_at: turn.finished_at,
    }
}

/// A session's status as shown: `running` while a send is in flight, whatever is recorded; a
/// recorded `running` with nothing in flight shows how its last send ended: `idle` when its
/// client went away (the send was cancelled, not failed), `failed` when its server stopped.
pub(super) fn effective_status(
    session: &AgentSessionRow,
    turns: &[AgentTurnRow],
) -> AgentSessionStatus {
    if turns.iter().any(in_flight) {
        return AgentSessionStatus::Running;
    }
    match session.status {
        AgentSessionStatus::Running => match turns.last() {
            Some(t)
                if t.is_error
                    && t.error_code.as_deref() != Some(AgentErrorCode::AgentCancelled.as_str()) =>
            {
                AgentSessionStatus::Failed
            }
            _ => AgentSessionStatus::Idle,
        },
        recorded => recorded,
    }
}

pub(super) fn session_to_wire(
    session: &AgentSessionRow,
    turns: &[AgentTurnRow],
    with_transcript: bool,
) -> t::AgentSession {
    t::AgentSession {
        id: session.id.clone(),
        sandbox_id: session.sandbox_id.clone(),
        org_id: session.org_id.clone(),
        agent_name: session.agent,
        status: effective_status(session, turns),
        agent_session_id: session.agent_session_id.clone(),
        turn_count: turns.len() as u64,
        started_at: session.created_at,
        ended_at: session.ended_at,
        metadata: serde_json::Value::Object(session.metadata.clone()),
        server_metadata: json!({ "credential": session.credential_name }),
        created_at: session.created_at,
        updated_at: session.updated_at,
        transcript: with_transcript.then(|| turns.iter().map(turn_to_wire).collect()),
    }
}

/// Largest page of sessions.
const MAX_SESSIONS_PAGE: u64 = 1000;

impl Service {
    pub(super) fn agent_session_lock(&self, session_id: &str) -> KeyedLock {
        self.locks.handle(&format!("agent-session:{session_id}"))
    }

    /// A session of this sandbox (an id of another sandbox's session is not found here).
    pub(super) async fn sandbox_session(
        &self,
        sandbox: &SandboxRow,
        id: &str,
    ) -> Result<AgentSessionRow> {
        let not_found = || {
            ServiceError::NotFound(format!(
                "agent session {id:?} in sandbox {:?}",
                sandbox.name
            ))
        };
        match self.store.get_agent_session(id).await {
            Ok(s) if s.sandbox_id == sandbox.id => Ok(s),
            Ok(_) | Err(StoreError::NotFound(_)) => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// A turn as it stands, given up for lost when it is still in flight past its deadline
    /// (its server stopped before it finished).
    pub(super) async fn refresh_turn(&self, mut turn: AgentTurnRow) -> Result<AgentTurnRow> {
        if in_flight(&turn) && now() > turn.deadline_at {
            let elapsed = (turn.deadline_at - turn.created_at)
                .to_std()
                .unwrap_or_default();
            finish_turn(
                &mut turn,
                true,
                Some(AgentErrorCode::AgentLost),
                "the server stopped before the agent finished: send the message again".into(),
                None,
                elapsed,
            );
            match self.store.update_agent_turn(&turn).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(turn)
    }

    pub(super) async fn session_turns(&self, session_id: &str) -> Result<Vec<AgentTurnRow>> {
        let mut turns = Vec::new();
        for turn in self.store.list_agent_turns(session_id).await? {
            turns.push(self.refresh_turn(turn).await?);
        }
        Ok(turns)
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name, job = %job_id))]
    pub async fn get_agent_send_job(
        &self,
        caller: &Caller,
        id_or_name: &str,
        job_id: &str,
    ) -> Result<t::AgentSendJobResponse> {
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let turn = match self.store.get_agent_turn(job_id).await {
            Ok(turn) if turn.sandbox_id == sandbox.id => turn,
            Ok(_) | Err(StoreError::NotFound(_)) => {
                return Err(ServiceError::NotFound(format!(
                    "agent-send job {job_id:?} in sandbox {:?}",
                    sandbox.name
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let turn = self.refresh_turn(turn).await?;
        let session = self.store.get_agent_session(&turn.session_id).await?;
        Ok(job_response(&session, &turn))
    }

    /// A sandbox's sessions, most recently used first, optionally only those in `status`.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn list_agent_sessions(
        &self,
        caller: &Caller,
        id_or_name: &str,
        status: Option<&str>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<t::AgentSessionsList> {
        let status = status
            .map(|s| {
                s.parse::<AgentSessionStatus>()
                    .map_err(|e| ServiceError::bad_request(e).at("status"))
            })
            .transpose()?;
        let limit = limit.unwrap_or(100);
        if !(1..=MAX_SESSIONS_PAGE).contains(&limit) {
            return Err(ServiceError::bad_request(format!(
                "limit must be between 1 and {MAX_SESSIONS_PAGE}, not {limit}"
            ))
            .at("limit"));
        }
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let rows = self.store.list_agent_sessions(&sandbox.id).await?;
        let offset = usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let limit = limit as usize;
        // A session's status comes from its turns: without a status filter only the page's
        // sessions need theirs read (the web page asks for one session on every poll).
        if status.is_none() {
            let total = rows.len() as u64;
            let mut sessions = Vec::new();
            for row in rows.iter().skip(offset).take(limit) {
                let turns = self.session_turns(&row.id).await?;
                sessions.push(session_to_wire(row, &turns, false));
            }
            return Ok(t::AgentSessionsList { sessions, total });
        }
        let mut sessions = Vec::new();
        for row in rows {
            let turns = self.session_turns(&row.id).await?;
            let session = session_to_wire(&row, &turns, false);
            if status.is_none_or(|s| s == session.status) {
                sessions.push(session);
            }
        }
        let total = sessions.len() as u64;
        let sessions = sessions.into_iter().skip(offset).take(limit).collect();
        Ok(t::AgentSessionsList { sessions, total })
    }

    /// One session with its transcript (every send, oldest first).
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name, session = %session_id))]
    pub async fn get_agent_session(
        &self,
        caller: &Caller,
        id_or_name: &str,
        session_id: &str,
    ) -> Result<t::AgentSession> {
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let row = self.sandbox_session(&sandbox, session_id).await?;
        let turns = self.session_turns(&row.id).await?;
        Ok(session_to_wire(&row, &turns, true))
    }
}
