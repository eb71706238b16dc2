//! What a sandbox must never echo back, on the service's side: every relay of sandbox output
//! leaves the service already redacted, so that no caller (the HTTP API, the web UI, later SSH
//! and snapshots) can forget to.
//!
//! The rule of what is redacted is [`RedactionSet`]'s, in the sandbox crate, shared with the
//! provider's own redaction of a failed start; the service keeps one set per running sandbox
//! (`Service::redactions_for`). Here: [`RedactedExec`], a command's output as redacted frames.

use std::collections::VecDeque;
use std::fmt;

use amika_sandbox::{ExecEvent, ExecHandle};
use amika_types::ExecFrame;

use crate::service::sandboxes::Busy;

pub use amika_sandbox::redact::{OutputFilter, RedactionSet};

/// A running command's output, redacted per stream and cut at UTF-8 character boundaries, as
/// the frames the API sends. Dropping it kills the command's process tree (the provider's
/// handle goes with it).
pub struct RedactedExec {
    handle: ExecHandle,
    out: Option<OutputFilter>,
    err: Option<OutputFilter>,
    /// Frames of the last event not yet taken (an exit brings up to three).
    ready: VecDeque<ExecFrame>,
    /// Keeps the sandbox busy (not idle) while the command runs.
    _busy: Option<Busy>,
    /// Turns true when the server ends what runs (`Service::end_running`).
    ending: Option<tokio::sync::watch::Receiver<bool>>,
}

impl fmt::Debug for RedactedExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactedExec")
            .field("ended", &self.out.is_none())
            .finish_non_exhaustive()
    }
}

impl RedactedExec {
    pub(crate) fn new(handle: ExecHandle, redactions: &RedactionSet) -> Self {
        RedactedExec {
            handle,
            out: Some(redactions.filter()),
            err: Some(redactions.filter()),
            ready: VecDeque::new(),
            _busy: None,
            ending: None,
        }
    }

    /// The same, ended with an error frame when `ending` turns true.
    pub(crate) fn ending_with(mut self, ending: tokio::sync::watch::Receiver<bool>) -> Self {
        self.ending = Some(ending);
        self
    }

    /// The same, keeping `busy` until the command's output is dropped.
    pub(crate) fn holding(mut self, busy: Busy) -> Self {
        self._busy = Some(busy);
        self
    }

    /// The next frame; `None` after the last (an `Exit`, or an `Error` when the command ended
    /// without an exit status). Output frames are never empty: what redaction holds back (a
    /// possible value's start) comes with a later frame, at the latest just before `Exit`.
    pub async fn next(&mut self) -> Option<ExecFrame> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(frame);
            }
            let (Some(out), Some(err)) = (self.out.as_mut(), self.err.as_mut()) else {
                return None;
            };
            let event = match self.ending.as_mut() {
                Some(ending) => tokio::select! {
                    event = self.handle.events.recv() => Some(event),
                    _ = ending.wait_for(|ending| *ending) => None,
                },
                None => Some(self.handle.events.recv().await),
            };
            let Some(event) = event else {
                self.end();
                self.ending = None;
                return Some(ExecFrame::Error {
                    message: "the server shut down while the command was running; the command was stopped"
                        .into(),
                });
            };
            let frames = match event {
                Some(ExecEvent::Stdout(b)) => vec![ExecFrame::Stdout { data: out.push(&b) }],
                Some(ExecEvent::Stderr(b)) => vec![ExecFrame::Stderr { data: err.push(&b) }],
                Some(ExecEvent::Exit(code)) => {
                    let (out, err) = self.end();
                    vec![
                        ExecFrame::Stdout { data: out },
                        ExecFrame::Stderr { data: err },
                        ExecFrame::Exit { code },
                    ]
                }
                None => {
                    self.end();
                    vec![ExecFrame::Error {
                        message: "the command ended without an exit status".into(),
                    }]
                }
            };
            self.ready.extend(frames.into_iter().filter(|f| {
                !matches!(f, ExecFrame::Stdout { data } | ExecFrame::Stderr { data } if data.is_empty())
            }));
        }
    }

    /// The rest of both streams; no frame is read after this.
    fn end(&mut self) -> (String, String) {
        let out = self
            .out
            .take()
            .map(OutputFilter::finish)
            .unwrap_or_default();
        let err = self
            .err
            .take()
            .map(OutputFilter::finish)
            .unwrap_or_default();
        (out, err)
    }
}
