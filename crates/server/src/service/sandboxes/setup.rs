//! Setup scripts (DESIGN §11): run inside the sandbox as its user, in the repository's
//! directory, with everything injected, before the sandbox is `running`. Their output is
//! redacted like exec output, followed live by `amika sandbox create`, and kept for
//! `amika sandbox logs NAME --setup`: in memory while the script runs, then in the data dir as
//! newline-delimited [`t::ExecFrame`]s (redacted, so no value reaches the disk).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use amika_sandbox::ExecSpec;
use amika_store::SandboxRow;
use amika_types::{self as t, SetupState};

use crate::service::feed::{Feed, Follower};
use crate::service::redaction::{RedactedExec, RedactionSet};
use crate::service::{now, Caller, Result, Service, ServiceError};

/// Default deadline of a setup script.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Longest deadline a request may ask for.
pub const MAX_SETUP_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Output kept per setup log (the oldest goes first).
const MAX_LOG_BYTES: usize = 1024 * 1024;
/// Lines of output quoted in a failed setup's `error_message`.
const ERROR_LINES: usize = 10;
/// Exit code of a script killed at its deadline (as `timeout(1)` reports it).
const TIMED_OUT: i32 = amika_sandbox::local::TIMEOUT_EXIT_CODE;

/// A setup script to run: where it comes from and the command that runs it.
#[derive(Debug, Clone)]
pub(super) struct SetupPlan {
    /// `request` or `repo_config`.
    pub(super) source: &'static str,
    /// The repository's script path, for `repo_config`.
    pub(super) script: Option<String>,
    argv: Vec<String>,
    cwd: String,
    timeout: Duration,
}

impl SetupPlan {
    /// The request's script text, or the repository's script at `path` (relative to the
    /// repository's root, already checked to stay inside it), run in `cwd`.
    pub(super) fn new(
        text: Option<&str>,
        repo_script: Option<&str>,
        cwd: String,
        timeout: Duration,
    ) -> Option<SetupPlan> {
        let (source, script, argv) = match (text, repo_script) {
            (Some(text), _) => (
                "request",
                None,
                vec!["/bin/sh".into(), "-c".into(), text.into(), "setup".into()],
            ),
            (None, Some(path)) => (
                "repo_config",
                Some(path.to_string()),
                // Executable: run as it asks (its `#!`); otherwise by `sh`.
                vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    r#"if [ -x "$1" ]; then exec "$1"; else exec /bin/sh "$1"; fi"#.into(),
                    "setup".into(),
                    format!("./{path}"),
                ],
            ),
            (None, None) => return None,
        };
        Some(SetupPlan {
            source,
            script,
            argv,
            cwd,
            timeout,
        })
    }

    /// The outcome before the script runs.
    pub(super) fn pending(&self) -> t::SetupOutcome {
        t::SetupOutcome {
            source: self.source.to_string(),
            script: self.script.clone(),
            state: SetupState::Pending,
            exit_code: None,
            started_at: None,
            ended_at: None,
        }
    }
}

/// One sandbox's setup output while its script runs.
pub(crate) type SetupLog = Feed<t::ExecFrame>;

/// A follower of a setup log: every frame in order, ending after the last.
pub type SetupFollow = Follower<t::ExecFrame>;

/// The last lines of a log's output, for an error message.
fn tail(log: &SetupLog) -> String {
    let (frames, _, _) = log.read_from(0);
    let text: String = frames
        .iter()
        .filter_map(|f| match f {
            t::ExecFrame::Stdout { data } | t::ExecFrame::Stderr { data } => Some(data.as_str()),
            _ => None,
        })
        .collect();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(ERROR_LINES)..].join("\n")
}

impl Service {
    fn setup_log_path(&self, id: &str) -> PathBuf {
        self.config
            .data_dir
            .join("setup-logs")
            .join(format!("{id}.ndjson"))
    }

    /// The log a sandbox's setup script writes to, made when the create plans the script so
    /// that `amika sandbox create` can follow it before the script starts.
    pub(super) fn live_setup_log(&self, id: &str) -> Arc<SetupLog> {
        self.setup_logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(SetupLog::new(MAX_LOG_BYTES)))
            .clone()
    }

    /// End the live log of a sandbox whose setup will not run (its start failed).
    pub(super) fn abandon_setup_log(&self, id: &str, why: &str) {
        let log = self
            .setup_logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(log) = log {
            log.push(t::ExecFrame::Error {
                message: format!("the setup script did not run: {why}"),
            });
            log.finish();
        }
    }

    /// Run the setup script of a sandbox that has just started, recording its outcome on the
    /// row. `Ok(None)`: it succeeded; `Ok(Some(message))`: it failed, and why (for
    /// `error_message`).
    pub(super) async fn run_setup(
        &self,
        row: &SandboxRow,
        plan: SetupPlan,
        redactions: &RedactionSet,
    ) -> Result<Option<String>> {
        let log = self.live_setup_log(&row.id);
        let mut outcome = plan.pending();
        outcome.state = SetupState::Running;
        outcome.started_at = Some(now());
        self.record_setup(row, &outcome).await?;

        let spec = ExecSpec {
            argv: plan.argv.clone(),
            cwd: Some(plan.cwd.clone()),
            timeout: Some(plan.timeout),
        };
        let mut exit = None;
        match self.provider.exec(&row.id, spec).await {
            Ok(handle) => {
                let mut exec = RedactedExec::new(handle, redactions);
                while let Some(frame) = exec.next().await {
                    if let t::ExecFrame::Exit { code } = frame {
                        exit = Some(code);
                    }
                    log.push(frame);
                }
            }
            Err(e) => log.push(t::ExecFrame::Error {
                message: format!("the setup script could not run: {e}"),
            }),
        }
        log.finish();
        self.keep_setup_log(&row.id, &log).await;

        outcome.ended_at = Some(now());
        outcome.exit_code = exit;
        outcome.state = match exit {
            Some(0) => SetupState::Succeeded,
            Some(TIMED_OUT) => SetupState::TimedOut,
            _ => SetupState::Failed,
        };
        self.record_setup(row, &outcome).await?;
        let what = match &plan.script {
            Some(path) => format!("setup script {path}"),
            None => "setup script".to_string(),
        };
        let tail = tail(&log);
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(":\n{tail}")
        };
        Ok(match exit {
            Some(0) => None,
            Some(TIMED_OUT) => Some(format!(
                "{what} did not finish within {}s and was killed{tail}",
                plan.timeout.as_secs()
            )),
            Some(code) => Some(format!("{what} exited with {code}{tail}")),
            None => Some(format!("{what} ended without an exit status{tail}")),
        })
    }

    /// Write the setup outcome into the row's workspace record (the state is left alone).
    async fn record_setup(&self, row: &SandboxRow, outcome: &t::SetupOutcome) -> Result<()> {
        let mut current = self.store.get_sandbox(&row.id).await?;
        current.workspace.get_or_insert_with(Default::default).setup = Some(outcome.clone());
        current.updated_at = now();
        self.store.update_sandbox(&current).await?;
        Ok(())
    }

    /// Move a finished log from memory to the data dir.
    async fn keep_setup_log(&self, id: &str, log: &SetupLog) {
        let (frames, _, _) = log.read_from(0);
        let mut text = Vec::new();
        for f in &frames {
            if serde_json::to_writer(&mut text, f).is_ok() {
                text.push(b'\n');
            }
        }
        let path = self.setup_log_path(id);
        let written = async {
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::write(&path, &text).await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(sandbox = id, error = %e, "cannot keep the setup log");
            return;
        }
        self.setup_logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Remove a deleted sandbox's setup log.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn remove_setup_log(&self, id: &str) {
        self.setup_logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        let _ = tokio::fs::remove_file(self.setup_log_path(id)).await;
    }

    /// A sandbox's setup output: live while its script runs (`follow` waits for the rest),
    /// from the data dir after. 404 when no setup script ran.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn setup_log(
        &self,
        caller: &Caller,
        id_or_name: &str,
        follow: bool,
    ) -> Result<SetupFollow> {
        let row = self.find_sandbox(caller, id_or_name).await?;
        let live = self
            .setup_logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&row.id)
            .cloned();
        let log = match live {
            Some(log) => log,
            None => {
                let text = tokio::fs::read(self.setup_log_path(&row.id))
                    .await
                    .map_err(|_| {
                        ServiceError::NotFound(format!(
                            "setup log of sandbox {:?} (it ran no setup script)",
                            row.name
                        ))
                    })?;
                let frames = text
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .filter_map(|line| serde_json::from_slice(line).ok());
                Arc::new(SetupLog::finished(frames, MAX_LOG_BYTES))
            }
        };
        Ok(log.follow(follow))
    }
}
