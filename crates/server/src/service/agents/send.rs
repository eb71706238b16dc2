//! One send: its choice of agent, session and credential, the rows written before anything
//! runs ([`Service::prepare_send`]), and the run of the agent's CLI through
//! the provider's exec to its recorded end ([`Service::run_send`]), synchronously or as a job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amika_sandbox::lifecycle::{check_transition, Operation};
use amika_sandbox::{ExecSpec, ProviderError};
use amika_store::{AgentSessionRow, AgentTurnRow, SandboxRow, StoreError};
use amika_types::{
    self as t, AgentErrorCode, AgentJobState, AgentKind, AgentSessionStatus, AgentStreamEvent,
    ErrorCode, ResolutionOutcome, SandboxState,
};
use serde_json::json;
use tracing::Instrument;

use super::check_send_request;
use super::commands::AgentCommand;
use super::interpret::{collect, interpret, AgentRun, Ending, SendContext};
use super::live::{LiveSend, SendFollow};
use super::progress::Progress;
use super::sessions::{finish_turn, in_flight, job_response, turn_response};
use crate::service::redaction::RedactionSet;
use crate::service::{new_id, now, Caller, Result, Service, ServiceError};

/// The sandbox's workspace directory (as the provider and the create know it).
const WORKSPACE: &str = "/home/amika/workspace";

/// A send still pending or running this long after its deadline lost its server.
const LOST_GRACE: Duration = Duration::from_secs(60);

/// The provider's own timeout, a backstop behind ours.
const PROVIDER_TIMEOUT_GRACE: Duration = Duration::from_secs(5);

/// A validated send whose rows are written, ready to run.
struct PreparedSend {
    sandbox: SandboxRow,
    session: AgentSessionRow,
    turn: AgentTurnRow,
    argv: Vec<String>,
    /// Where the agent runs, inside the sandbox.
    cwd: Option<String>,
    timeout: Duration,
    credential: String,
    redactions: Arc<RedactionSet>,
    /// Armed as soon as the turn is written, so a send dropped even before its agent started
    /// does not leave its session busy until the deadline.
    guard: SendGuard,
}

/// A send's place among the sends running on this server, from its turn's insert to its end:
/// dropped, it finishes the send's feed and leaves the table, and, if the send had not ended
/// (its future was dropped: the synchronous request's client went away), records it as
/// cancelled. The exec handle, dropped with the same future, kills the agent.
struct SendGuard {
    svc: Service,
    live: Arc<LiveSend>,
    job_id: String,
    session: AgentSessionRow,
    /// The turn, until the send has recorded its own end.
    turn: Option<AgentTurnRow>,
    started: Instant,
}

impl Drop for SendGuard {
    fn drop(&mut self) {
        if let Some(mut turn) = self.turn.take() {
            finish_turn(
                &mut turn,
                true,
                Some(AgentErrorCode::AgentCancelled),
                "the request was cancelled before the agent finished; the agent was stopped".into(),
                None,
                self.started.elapsed(),
            );
            self.live
                .feed
                .push(AgentStreamEvent::Done(turn_response(&self.session, &turn)));
            let store = self.svc.store.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = store.update_agent_turn(&turn).await {
                        tracing::warn!(job_id = %turn.id, "cannot record a cancelled agent send: {e}");
                    }
                });
            }
        }
        self.live.feed.finish();
        self.svc.forget_live_send(&self.job_id);
    }
}

/// The agent a send goes to when the request names none: the first kind resolved for the
/// sandbox, else Claude.
fn default_agent(sandbox: &SandboxRow) -> AgentKind {
    sandbox
        .resolved_agent_credentials
        .iter()
        .find(|r| r.outcome == ResolutionOutcome::Resolved)
        .map_or(AgentKind::Claude, |r| r.kind)
}

/// The entry of a sandbox's resolution (made at create) that an agent of `kind` can send with,
/// or why there is none: `Some(why)` when the kind was skipped, `None` when it was never
/// requested. The one rule for which kinds a sandbox can message; the web UI asks it too.
pub fn usable_credential(
    entries: &[t::ResolvedAgentCredential],
    kind: AgentKind,
) -> std::result::Result<&t::ResolvedAgentCredential, Option<&str>> {
    match entries.iter().find(|r| r.kind == kind) {
        Some(r) if r.outcome == ResolutionOutcome::Resolved => Ok(r),
        Some(r) if r.reason.is_empty() => Err(Some(r.source.as_str())),
        Some(r) => Err(Some(&r.reason)),
        None => Err(None),
    }
}

/// The name of the credential the sandbox holds for `kind`, or why it holds none and how to
/// give it one.
pub(super) fn credential_for(sandbox: &SandboxRow, kind: AgentKind) -> Result<String> {
    let why = match usable_credential(&sandbox.resolved_agent_credentials, kind) {
        Ok(r) => return Ok(r.name.clone()),
        Err(Some(why)) => format!("it was skipped when the sandbox was created ({why})"),
        Err(None) => "none was requested when the sandbox was created".to_string(),
    };
    Err(ServiceError::unprocessable(
        ErrorCode::AgentCredentialSkipped,
        format!(
            "sandbox {name:?} has no {kind} credential: {why}. Recreate the sandbox with \
             `--agent-credential {kind}=NAME` (push one first with `amika secret {kind} push --name NAME ...` \
             if you have none)",
            name = sandbox.name
        ),
    )
    .at("agent"))
}

/// The sandbox's workspace: its repository's directory, else `~/workspace`.
fn workspace_dir(sandbox: &SandboxRow) -> String {
    match sandbox.workspace.as_ref().and_then(|w| w.repo.as_ref()) {
        Some(repo) => format!("{WORKSPACE}/{}", repo.name),
        None => WORKSPACE.to_string(),
    }
}

/// Where the agent runs: `workdir` (absolute, or relative to the workspace), else the
/// workspace when the sandbox has a repository, else the provider's default (`~/workspace`).
fn agent_workdir(sandbox: &SandboxRow, workdir: Option<&str>) -> Result<Option<String>> {
    let Some(dir) = workdir else {
        return Ok(sandbox
            .workspace
            .as_ref()
            .and_then(|w| w.repo.as_ref())
            .map(|_| workspace_dir(sandbox)));
    };
    let bad = |why: &str| {
        Err(ServiceError::bad_request(format!(
            "workdir {why}: expected a directory inside the sandbox, absolute (/home/amika/...) \
             or relative to the workspace ({})",
            workspace_dir(sandbox)
        ))
        .at("workdir"))
    };
    if dir.trim().is_empty() {
        return bad("is empty");
    }
    if dir.contains('\0') || dir.contains('\n') {
        return bad("contains a NUL or newline character");
    }
    if dir.len() > 4096 {
        return bad("is longer than 4096 bytes");
    }
    if dir.starts_with('/') {
        return Ok(Some(dir.to_string()));
    }
    if dir.starts_with('~') {
        return bad(&format!("{dir:?} starts with ~, which is not expanded"));
    }
    let base = workspace_dir(sandbox);
    Ok(Some(format!("{base}/{}", dir.trim_end_matches('/'))))
}

/// The row of a send about to run: `message` is already redacted; `resume` is the agent's
/// session id it continues, if any. Given up for lost [`LOST_GRACE`] after its deadline.
fn new_turn(
    sandbox: &SandboxRow,
    session: &AgentSessionRow,
    state: AgentJobState,
    message: String,
    resume: Option<String>,
    timeout: Duration,
    at: chrono::DateTime<chrono::Utc>,
) -> AgentTurnRow {
    AgentTurnRow {
        id: new_id("job"),
        session_id: session.id.clone(),
        sandbox_id: sandbox.id.clone(),
        state,
        message,
        response: None,
        is_error: false,
        error_code: None,
        exit_code: None,
        is_new_session: resume.is_none(),
        agent_session_id: resume,
        cost_usd: None,
        duration_ms: None,
        deadline_at: at
            + chrono::Duration::from_std(timeout + LOST_GRACE).unwrap_or(chrono::Duration::MAX),
        created_at: at,
        updated_at: at,
        finished_at: None,
    }
}

impl Service {
    /// Validate a send, pick its agent, session and credential, and write its rows. Nothing
    /// runs yet; every error here leaves no process and no turn behind.
    async fn prepare_send(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::AgentSendRequest,
        state: AgentJobState,
    ) -> Result<PreparedSend> {
        let timeout = check_send_request(&req, self.config.agent_timeout)?;
        let sandbox = self.running_sandbox(caller, id_or_name).await?;
        let (asked, kind) = self.choose_agent(&sandbox, &req).await?;
        // Before anything else is looked up or written: a kind without a credential starts
        // nothing.
        let credential = credential_for(&sandbox, kind)?;
        let command = self.agent_command(kind)?;
        let cwd = agent_workdir(&sandbox, req.workdir.as_deref())?;
        let existing = self
            .existing_session(&sandbox, asked, req.new_session, kind)
            .await?;
        let redactions = self.redactions_for(&sandbox).await?;
        let at = now();
        let (mut session, lock) = match existing {
            Some(s) => {
                let lock = self.agent_session_lock(&s.id);
                (s, lock)
            }
            None => {
                let s = self
                    .insert_session(caller, &sandbox, kind, &credential, Default::default())
                    .await?;
                let lock = self.agent_session_lock(&s.id);
                (s, lock)
            }
        };
        // One send at a time per session: the agent's conversation is a single thread.
        let held = lock.lock().await;
        // Read again under the lock: a PATCH may have changed it meanwhile.
        session = self.store.get_agent_session(&session.id).await?;
        self.check_session_idle(&session).await?;
        let resume = session.agent_session_id.clone();
        let argv = command.argv(&req.message, resume.as_deref(), &self.permissions_of(kind));
        let message = redactions.redact_all(&req.message);
        let turn = new_turn(&sandbox, &session, state, message, resume, timeout, at);
        // In the table before the turn is stored: whoever reads the turn can follow it.
        let mut guard = SendGuard {
            svc: self.clone(),
            live: self.register_live_send(&turn.id),
            job_id: turn.id.clone(),
            session: session.clone(),
            turn: None,
            started: Instant::now(),
        };
        self.store.insert_agent_turn(&turn).await?;
        guard.turn = Some(turn.clone());
        session.credential_name = credential.clone();
        session.status = AgentSessionStatus::Running;
        session.ended_at = None;
        session.updated_at = at;
        self.store.update_agent_session(&session).await?;
        drop(held);
        let detail = json!({"agent": kind, "credential": credential, "session_id": session.id, "job_id": turn.id});
        self.audit_session(caller, &sandbox, "agent.message_sent", detail)
            .await?;
        Ok(PreparedSend {
            sandbox,
            session,
            turn,
            argv,
            cwd,
            timeout,
            credential,
            redactions,
            guard,
        })
    }

    /// The caller's sandbox, which must be running for a send.
    async fn running_sandbox(&self, caller: &Caller, id_or_name: &str) -> Result<SandboxRow> {
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        check_transition(sandbox.state, Operation::Exec).map_err(|_| {
            ServiceError::conflict(
                ErrorCode::InvalidState,
                format!(
                    "sandbox {:?} is {}: agent-send needs it running (`amika sandbox start {}`)",
                    sandbox.name, sandbox.state, sandbox.name
                ),
            )
        })?;
        Ok(sandbox)
    }

    /// The session the request names, if any, and the agent the send goes to: the session's,
    /// which the request may repeat but not contradict, else the request's, else the default.
    async fn choose_agent(
        &self,
        sandbox: &SandboxRow,
        req: &t::AgentSendRequest,
    ) -> Result<(Option<AgentSessionRow>, AgentKind)> {
        let asked = match &req.session_id {
            // A body's reference to nothing is a 422 naming the field (a 404 is for the URL:
            // the sandbox exists).
            Some(id) => Some(self.sandbox_session(sandbox, id).await.map_err(|e| {
                match e {
                    ServiceError::NotFound(what) => ServiceError::unprocessable(
                        ErrorCode::NotFound,
                        format!("{what} not found"),
                    )
                    .at("session_id"),
                    other => other,
                }
            })?),
            None => None,
        };
        let kind = match (&asked, req.agent) {
            (Some(s), Some(k)) if s.agent != k => {
                return Err(ServiceError::invalid(
                    ErrorCode::AgentMismatch,
                    format!(
                        "session {} is a {} session: leave out agent, or pass {}",
                        s.id, s.agent, s.agent
                    ),
                )
                .at("agent"))
            }
            (Some(s), _) => s.agent,
            (None, Some(k)) if !k.is_agent() => {
                return Err(ServiceError::bad_request(format!(
                    "{k} is not an agent: expected claude or codex"
                ))
                .at("agent"))
            }
            (None, Some(k)) => k,
            (None, None) => default_agent(sandbox),
        };
        Ok((asked, kind))
    }

    /// The permission arguments of `kind` (checked when the config was read; a mode that is
    /// not valid adds none).
    fn permissions_of(&self, kind: AgentKind) -> Vec<String> {
        self.config
            .agent_permissions
            .get(&kind)
            .and_then(|mode| super::permission_args(kind, mode).ok())
            .unwrap_or_default()
    }

    /// The agents' permission policies, as `GET /presets` shows them.
    pub fn agent_permissions(&self) -> Vec<t::AgentPermission> {
        AgentKind::AGENTS
            .iter()
            .filter_map(|&kind| {
                let mode = self.config.agent_permissions.get(&kind)?;
                Some(t::AgentPermission {
                    agent: kind,
                    mode: mode.clone(),
                    args: self.permissions_of(kind),
                })
            })
            .collect()
    }

    /// The configured command of `kind`, checked before it is used.
    fn agent_command(&self, kind: AgentKind) -> Result<&AgentCommand> {
        let command = self.config.agent_commands.get(&kind).ok_or_else(|| {
            ServiceError::internal(format!("no agent command is configured for {kind}"))
        })?;
        command.validate(kind).map_err(ServiceError::internal)?;
        Ok(command)
    }

    /// The session the send continues: the one asked for, else (unless `new_session`) the
    /// sandbox's latest with this agent. `None`: a new one.
    async fn existing_session(
        &self,
        sandbox: &SandboxRow,
        asked: Option<AgentSessionRow>,
        new_session: bool,
        kind: AgentKind,
    ) -> Result<Option<AgentSessionRow>> {
        Ok(match asked {
            Some(s) => Some(s),
            None if new_session => None,
            // Neither: continue the sandbox's latest session with this agent.
            None => self
                .store
                .list_agent_sessions(&sandbox.id)
                .await?
                .into_iter()
                .find(|s| s.agent == kind),
        })
    }

    /// Record how a send ended on its session: the agent's conversation id, and `idle` or
    /// `failed`. Read again under the session's lock, so that a client's metadata written
    /// while the agent ran stays.
    async fn record_session_end(
        &self,
        session: &mut AgentSessionRow,
        agent_session_id: Option<String>,
        failed: bool,
    ) -> Result<()> {
        let lock = self.agent_session_lock(&session.id);
        let _guard = lock.lock().await;
        match self.store.get_agent_session(&session.id).await {
            Ok(row) => *session = row,
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(id) = agent_session_id {
            session.agent_session_id = Some(id);
        }
        session.status = if failed {
            AgentSessionStatus::Failed
        } else {
            AgentSessionStatus::Idle
        };
        session.updated_at = now();
        match self.store.update_agent_session(session).await {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A conflict if the session is still answering an earlier send (read under its lock).
    async fn check_session_idle(&self, session: &AgentSessionRow) -> Result<()> {
        if let Some(busy) = self
            .session_turns(&session.id)
            .await?
            .into_iter()
            .find(in_flight)
        {
            return Err(ServiceError::conflict(
                ErrorCode::SessionBusy,
                format!(
                    "session {} is still answering an earlier message (job {}): wait for it, or start another session with new_session (`--new-session`)",
                    session.id, busy.id
                ),
            ));
        }
        Ok(())
    }

    /// Run a prepared send to its end and record it, feeding its progress to its followers.
    /// Dropping the future kills the agent and records the send as cancelled.
    async fn run_send(&self, prepared: PreparedSend) -> Result<t::AgentSendResponse> {
        let PreparedSend {
            sandbox,
            mut session,
            mut turn,
            argv,
            cwd,
            timeout,
            credential,
            redactions,
            mut guard,
        } = prepared;
        let started = Instant::now();
        let live = guard.live.clone();
        if turn.state == AgentJobState::Pending {
            turn.state = AgentJobState::Running;
            turn.updated_at = now();
            self.store.update_agent_turn(&turn).await?;
            live.feed
                .push(AgentStreamEvent::Status(stream_status(&session, &turn)));
        }
        let program = argv.first().cloned().unwrap_or_default();
        let kind = session.agent;
        let (run, ending) = self
            .run_agent(
                &sandbox,
                kind,
                ExecSpec {
                    argv,
                    cwd,
                    timeout: Some(timeout),
                },
                &live,
                &redactions,
            )
            .await?;
        // Redacted inside, before anything is stored or answered.
        let reply = interpret(
            kind,
            &program,
            &run,
            &ending,
            &SendContext {
                timeout,
                credential: &credential,
                network: sandbox.options.network,
            },
            &|text| redactions.redact_all(text),
        );
        let agent_session_id = reply.agent_session_id;
        guard.turn = None;
        finish_turn(
            &mut turn,
            reply.is_error,
            reply.error_code,
            reply.text,
            reply.exit_code,
            started.elapsed(),
        );
        turn.cost_usd = reply.cost_usd;
        if let Some(id) = &agent_session_id {
            turn.agent_session_id = Some(id.clone());
        }
        match self.store.update_agent_turn(&turn).await {
            // Deleted with its sandbox meanwhile: the caller still gets the answer.
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // A cancelled send leaves its session as it was asked to (idle, or cancelled by PATCH).
        let failed = turn.is_error
            && turn.error_code.as_deref() != Some(AgentErrorCode::AgentCancelled.as_str());
        self.record_session_end(&mut session, agent_session_id, failed)
            .await?;
        tracing::info!(
            sandbox_id = %sandbox.id,
            job_id = %turn.id,
            agent = %kind,
            is_error = turn.is_error,
            error_code = turn.error_code.as_deref().unwrap_or(""),
            ms = started.elapsed().as_millis() as u64,
            "agent send finished"
        );
        let response = turn_response(&session, &turn);
        live.feed.push(AgentStreamEvent::Done(response.clone()));
        Ok(response)
    }

    /// Run the agent's command to its end, its deadline (`spec.timeout`) or a cancel, feeding
    /// its progress to the send's followers; what it printed and how it ended.
    async fn run_agent(
        &self,
        sandbox: &SandboxRow,
        kind: AgentKind,
        mut spec: ExecSpec,
        live: &LiveSend,
        redactions: &RedactionSet,
    ) -> Result<(AgentRun, Ending)> {
        let timeout = spec.timeout.unwrap_or(self.config.agent_timeout);
        spec.timeout = Some(timeout + PROVIDER_TIMEOUT_GRACE);
        let mut run = AgentRun::default();
        let mut progress = Progress::new(kind, redactions);
        // The sandbox is not idle while the agent runs.
        let _busy = self.busy(&sandbox.id);
        let mut ending = match self.provider.exec(&sandbox.id, spec).await {
            // The future of `collect` owns the handle: when the deadline or a cancel drops it,
            // the handle kills the agent's process tree.
            Ok(handle) => {
                let mut relay = |bytes: &[u8]| {
                    for delta in progress.push(bytes) {
                        live.feed.push(AgentStreamEvent::Delta(delta));
                    }
                };
                tokio::select! {
                    ended = tokio::time::timeout(timeout, collect(handle, &mut run, &mut relay)) => {
                        ended.unwrap_or(Ending::TimedOut)
                    }
                    why = live.cancelled() => Ending::Cancelled(why),
                }
            }
            Err(ProviderError::NotRunning(_)) => Ending::SandboxStopped,
            Err(e) => Ending::StartFailed(e.to_string()),
        };
        for delta in progress.finish() {
            live.feed.push(AgentStreamEvent::Delta(delta));
        }
        if matches!(ending, Ending::Exited(c) if c != 0) || ending == Ending::NoStatus {
            // A stop or delete kills the agent with the sandbox: say so rather than "crashed".
            let state = match self.store.get_sandbox(&sandbox.id).await {
                Ok(row) => Some(row.state),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            if state != Some(SandboxState::Running) {
                ending = Ending::SandboxStopped;
            }
        }
        Ok((run, ending))
    }

    /// Run a prepared send in the background.
    fn spawn_send(&self, prepared: PreparedSend) {
        let svc = self.clone();
        tokio::spawn(
            async move {
                let job_id = prepared.turn.id.clone();
                if let Err(e) = svc.run_send(prepared).await {
                    tracing::error!(%job_id, "agent send job failed: {}", crate::service::error_chain(&e));
                }
            }
            // The request's span goes with the job, so that its log lines keep the trace id.
            .in_current_span(),
        );
    }

    /// Send a message to an agent in a sandbox and wait for its reply. An agent that could not
    /// authenticate is an error (`agent_auth_failed`, 422), as clients of the public Amika API
    /// expect; any other failure of the agent is an answer with `is_error`.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn agent_send(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::AgentSendRequest,
    ) -> Result<t::AgentSendResponse> {
        let prepared = self
            .prepare_send(caller, id_or_name, req, AgentJobState::Running)
            .await?;
        send_outcome(self.run_send(prepared).await?)
    }

    /// Start a send in the background and answer with its job at once.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn create_agent_send_job(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::AgentSendRequest,
    ) -> Result<t::AgentSendJobResponse> {
        let prepared = self
            .prepare_send(caller, id_or_name, req, AgentJobState::Pending)
            .await?;
        let job = job_response(&prepared.session, &prepared.turn);
        self.spawn_send(prepared);
        Ok(job)
    }

    /// Start a send and follow it: its events from `status` to `done`. Dropping the follower
    /// before the end stops the agent (the client went away), as for a synchronous send.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn agent_send_stream(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::AgentSendRequest,
    ) -> Result<SendFollow> {
        let prepared = self
            .prepare_send(caller, id_or_name, req, AgentJobState::Pending)
            .await?;
        let follow = SendFollow::live(
            stream_status(&prepared.session, &prepared.turn),
            &prepared.guard.live,
            true,
        );
        self.spawn_send(prepared);
        Ok(follow)
    }

    /// Follow a send (a job) of the caller's sandbox: live when it runs on this server, else
    /// from its row until it has ended. Dropping the follower leaves the send running.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn follow_agent_send_job(
        &self,
        caller: &Caller,
        id_or_name: &str,
        job_id: &str,
    ) -> Result<SendFollow> {
        let job = self.get_agent_send_job(caller, id_or_name, job_id).await?;
        let status = t::AgentStreamStatus {
            job_id: job.job_id.clone(),
            session_id: job.session_id.clone(),
            agent: job.agent,
            is_new_session: job.is_new_session,
            state: job.state,
        };
        // A send that has ended is followed from its row, even while its live entry lingers.
        let live = job
            .response
            .is_none()
            .then(|| self.live_send(job_id))
            .flatten();
        Ok(match live {
            Some(live) => SendFollow::live(status, &live, false),
            None => SendFollow::stored(status, self.clone(), caller.clone(), id_or_name.into()),
        })
    }

    /// Enter a send in the table of those running on this server.
    fn register_live_send(&self, job_id: &str) -> Arc<LiveSend> {
        let live = Arc::new(LiveSend::new());
        self.live_sends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id.to_string(), live.clone());
        live
    }

    pub(super) fn live_send(&self, job_id: &str) -> Option<Arc<LiveSend>> {
        self.live_sends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(job_id)
            .cloned()
    }

    fn forget_live_send(&self, job_id: &str) {
        self.live_sends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(job_id);
    }
}

/// The `status` event of a send.
fn stream_status(session: &AgentSessionRow, turn: &AgentTurnRow) -> t::AgentStreamStatus {
    t::AgentStreamStatus {
        job_id: turn.id.clone(),
        session_id: session.id.clone(),
        agent: session.agent,
        is_new_session: turn.is_new_session,
        state: turn.state,
    }
}

/// A finished send as the synchronous API answers it: an authentication failure of the agent
/// is an error whose `details` carry the agent's message (`field: agent`); anything else is
/// the answer.
pub fn send_outcome(response: t::AgentSendResponse) -> Result<t::AgentSendResponse> {
    if response.error_code.as_deref() == Some(AgentErrorCode::AgentAuthFailed.as_str()) {
        return Err(
            ServiceError::unprocessable(ErrorCode::AgentAuthFailed, response.response).at("agent"),
        );
    }
    Ok(response)
}
