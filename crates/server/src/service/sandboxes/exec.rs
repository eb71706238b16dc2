//! Running a command in a running sandbox, its output redacted before it leaves the service.

use std::time::Duration;

use amika_sandbox::lifecycle::{check_transition, Operation};
use amika_sandbox::{ExecSpec, ProviderError};
use amika_types::{self as t, ErrorCode};

use crate::service::redaction::RedactedExec;
use crate::service::{Caller, Result, Service, ServiceError};

impl Service {
    /// Run a command in a running sandbox. Its output comes already redacted: every value
    /// injected into the sandbox is `[REDACTED:<name>]` in it. Dropping the stream kills the
    /// command.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn exec_sandbox(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::ExecRequest,
    ) -> Result<RedactedExec> {
        if req.command.is_empty() || req.command[0].is_empty() {
            return Err(ServiceError::bad_request("command must not be empty").at("command"));
        }
        let row = self.find_sandbox(caller, id_or_name).await?;
        let row = self.observe_runtime(row).await?;
        check_transition(row.state, Operation::Exec).map_err(|_| {
            ServiceError::conflict(
                ErrorCode::InvalidState,
                format!(
                    "sandbox {:?} is {}{}: exec needs it running (`amika sandbox start {}`)",
                    row.name,
                    row.state,
                    row.error_message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default(),
                    row.name
                ),
            )
        })?;
        let redactions = self.redactions_for(&row).await?;
        let spec = ExecSpec {
            argv: req.command,
            cwd: req.cwd,
            timeout: req.timeout_secs.map(Duration::from_secs),
        };
        let handle = self
            .provider
            .exec(&row.id, spec)
            .await
            .map_err(|e| match e {
                // The provider names the sandbox by its id; the answer names it as the caller did.
                ProviderError::NotRunning(_) => ServiceError::conflict(
                    ErrorCode::InvalidState,
                    format!("sandbox {:?} is not running", row.name),
                ),
                ProviderError::InvalidCommand(_) => ServiceError::from(e).at("command"),
                e => e.into(),
            })?;
        Ok(RedactedExec::new(handle, &redactions)
            .holding(self.busy(&row.id))
            .ending_with(self.ending.subscribe()))
    }
}
