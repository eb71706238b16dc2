//! The sandbox lifecycle: which operation is allowed in which [`SandboxState`], and what state
//! it leads to.
//!
//! The server checks every operation here *before* touching a provider, so a request that makes
//! no sense ("exec in a stopped sandbox") fails fast with a clear message instead of reaching
//! bubblewrap, and every write of a sandbox's state goes through [`check_transition`] (the
//! server's `Service::transition`). The rules live in one `match` so that a reader (and the
//! table-driven test) can see the whole machine at once.
//!
//! ```text
//!             start                 mark_running
//!  stopped ──────────► initializing ────────────► running ──stop──► stopping ──mark_stopped──► stopped
//!  failed  ──────────►      │  └──stop──► stopping                     │
//!                           └──mark_failed──► failed ◄──mark_failed────┘ (also from running)
//!  any state except deleting and snapshotting ──delete──► deleting
//!
//!  snapshots (see the server's `snapshots`): the sandbox is stopped and its files captured
//!  running, stopped ──snapshot──► snapshotting ──mark_stopped──► stopped (kept; restarted if it ran)
//!                                     └──delete_snapshotted──► deleting (scrub_and_delete)
//!
//!  after a server restart (reconciliation, see [`reconcile`]):
//!  initializing ──reconcile_interrupted──► failed     (the start was cut short)
//!  running, stopping ──reconcile_lost──► stopped      (its processes were gone)
//!  stopping, stopped, failed ──reconcile_strays──► stopped   (processes ran; they were stopped)
//!  snapshotting ──reconcile_lost / reconcile_strays──► stopped (the capture was cut short)
//!  deleting: the delete is finished (the sandbox goes; no state is written)
//! ```

use std::fmt;

pub use amika_types::SandboxState;

/// Something that changes (or needs) a sandbox's state. The `Mark*` operations are what the
/// server records when the provider reports back (start finished, start failed, stop finished,
/// reconciliation found the processes gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// (Re)start a stopped or failed sandbox.
    Start,
    /// Stop a running or still-initializing sandbox.
    Stop,
    /// Delete a sandbox and its files, whatever state it is in (unless already being deleted).
    Delete,
    /// Run a command; needs a running sandbox and does not change the state.
    Exec,
    /// Capture the sandbox's files into a snapshot (it is stopped for the capture).
    Snapshot,
    /// A `scrub_and_delete` snapshot was captured: the source sandbox goes.
    DeleteSnapshotted,
    /// The provider finished starting the sandbox.
    MarkRunning,
    /// Starting failed, or a running sandbox was found dead when it was read.
    MarkFailed,
    /// The provider finished stopping the sandbox (a failed stop too: its error is kept).
    MarkStopped,
    /// Reconciliation: the server stopped while the sandbox was starting; what the start had
    /// started was stopped.
    ReconcileInterrupted,
    /// Reconciliation: a sandbox recorded as running (or stopping) had no processes left.
    ReconcileLost,
    /// Reconciliation: processes ran for a sandbox recorded as not running (or stopping); they
    /// were stopped.
    ReconcileStrays,
}

impl Operation {
    /// Every operation, for exhaustive tests and documentation.
    pub const ALL: &'static [Operation] = &[
        Operation::Start,
        Operation::Stop,
        Operation::Delete,
        Operation::Exec,
        Operation::Snapshot,
        Operation::DeleteSnapshotted,
        Operation::MarkRunning,
        Operation::MarkFailed,
        Operation::MarkStopped,
        Operation::ReconcileInterrupted,
        Operation::ReconcileLost,
        Operation::ReconcileStrays,
    ];

    /// How the operation reads in an error message: "cannot {verb} sandbox in state {state}".
    fn verb(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Delete => "delete",
            Operation::Exec => "exec in",
            Operation::Snapshot => "snapshot",
            Operation::DeleteSnapshotted => "delete after its snapshot a",
            Operation::MarkRunning => "mark as running a",
            Operation::MarkFailed => "mark as failed a",
            Operation::MarkStopped => "mark as stopped a",
            Operation::ReconcileInterrupted => "mark as interrupted a",
            Operation::ReconcileLost => "mark as lost a",
            Operation::ReconcileStrays => "stop the stray processes of a",
        }
    }
}

/// An operation that is not allowed in the sandbox's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} sandbox in state {from}", .op.verb())]
pub struct TransitionError {
    pub from: SandboxState,
    pub op: Operation,
}

/// The state `op` leads to from `from`, or why it is not allowed.
pub fn check_transition(
    from: SandboxState,
    op: Operation,
) -> Result<SandboxState, TransitionError> {
    use Operation as O;
    use SandboxState as S;
    let next = match (op, from) {
        (O::Start, S::Stopped | S::Failed) => S::Initializing,
        // Stopping an initializing sandbox is how a client cancels a start that hangs.
        (O::Stop, S::Running | S::Initializing) => S::Stopping,
        // Delete must work from every settled *and* transient state, so that a sandbox stuck in
        // initializing or failed can always be cleaned up; only a second delete is refused.
        (O::Delete, S::Initializing | S::Running | S::Stopping | S::Stopped | S::Failed) => {
            S::Deleting
        }
        (O::Exec, S::Running) => S::Running,
        (O::Snapshot, S::Running | S::Stopped) => S::Snapshotting,
        (O::DeleteSnapshotted, S::Snapshotting) => S::Deleting,
        (O::MarkRunning, S::Initializing) => S::Running,
        // The server marks failed from initializing (the start failed) and from running (a read
        // found the sandbox dead). Nothing marks failed from stopping or deleting any more: a
        // failed stop still ends stopped, with its error, and a failed removal leaves the
        // sandbox deleting, with its error, for the next delete or reconciliation to finish.
        // Those two entries stay allowed (and the table is asserted as it is below).
        (O::MarkFailed, S::Initializing | S::Running | S::Stopping | S::Deleting) => S::Failed,
        // Stopping -> stopped: the stop finished. Running -> stopped has no caller any more: a
        // running sandbox whose init is gone is failed when read, and reconciliation records
        // it as `ReconcileLost`, so that its log says why. It stays allowed.
        // Snapshotting -> stopped: the capture ended and the sandbox is kept.
        (O::MarkStopped, S::Stopping | S::Running | S::Snapshotting) => S::Stopped,
        (O::ReconcileInterrupted, S::Initializing) => S::Failed,
        (O::ReconcileLost, S::Running | S::Stopping | S::Snapshotting) => S::Stopped,
        // Stopped -> stopped: the state stays, the error message says what was found.
        (O::ReconcileStrays, S::Stopping | S::Stopped | S::Failed | S::Snapshotting) => S::Stopped,
        _ => return Err(TransitionError { from, op }),
    };
    Ok(next)
}

/// What reconciliation does with a sandbox recorded in some state, given whether the provider
/// sees it running (see [`reconcile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcile {
    /// The record matches what runs.
    Keep,
    /// A delete was under way: finish it (remove what is left, then the record itself).
    FinishDelete,
    /// Record this transition (a `Reconcile*` operation), after the provider work it names.
    Record(Operation),
}

/// After a server restart: what to do with a sandbox recorded in `state` whose processes are
/// (`running`) or are not running. Every [`Reconcile::Record`] is allowed by
/// [`check_transition`] (the tests check every pair).
pub fn reconcile(state: SandboxState, running: bool) -> Reconcile {
    use SandboxState as S;
    match (state, running) {
        (S::Deleting, _) => Reconcile::FinishDelete,
        (S::Running, true) | (S::Stopped | S::Failed, false) => Reconcile::Keep,
        (S::Initializing, _) => Reconcile::Record(Operation::ReconcileInterrupted),
        (S::Running | S::Stopping | S::Snapshotting, false) => {
            Reconcile::Record(Operation::ReconcileLost)
        }
        (S::Stopping | S::Stopped | S::Failed | S::Snapshotting, true) => {
            Reconcile::Record(Operation::ReconcileStrays)
        }
    }
}

/// States in which an operation is in flight. After a server restart, a sandbox found in one of
/// these was interrupted and must be reconciled with what really runs.
pub fn is_transient(state: SandboxState) -> bool {
    matches!(
        state,
        SandboxState::Initializing
            | SandboxState::Stopping
            | SandboxState::Deleting
            | SandboxState::Snapshotting
    )
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Delete => "delete",
            Operation::Exec => "exec",
            Operation::Snapshot => "snapshot",
            Operation::DeleteSnapshotted => "delete-snapshotted",
            Operation::MarkRunning => "mark-running",
            Operation::MarkFailed => "mark-failed",
            Operation::MarkStopped => "mark-stopped",
            Operation::ReconcileInterrupted => "reconcile-interrupted",
            Operation::ReconcileLost => "reconcile-lost",
            Operation::ReconcileStrays => "reconcile-strays",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation as O;
    use SandboxState as S;

    /// The whole machine as a table: (operation, from) -> next, `None` for refused. Every pair
    /// appears, so adding a state or an operation fails this test until the table is updated.
    #[test]
    fn every_state_and_operation_pair() {
        let table: &[(O, S, Option<S>)] = &[
            (O::Start, S::Initializing, None),
            (O::Start, S::Running, None),
            (O::Start, S::Stopping, None),
            (O::Start, S::Stopped, Some(S::Initializing)),
            (O::Start, S::Failed, Some(S::Initializing)),
            (O::Start, S::Deleting, None),
            (O::Start, S::Snapshotting, None),
            (O::Stop, S::Initializing, Some(S::Stopping)),
            (O::Stop, S::Running, Some(S::Stopping)),
            (O::Stop, S::Stopping, None),
            (O::Stop, S::Stopped, None),
            (O::Stop, S::Failed, None),
            (O::Stop, S::Deleting, None),
            (O::Stop, S::Snapshotting, None),
            (O::Delete, S::Initializing, Some(S::Deleting)),
            (O::Delete, S::Running, Some(S::Deleting)),
            (O::Delete, S::Stopping, Some(S::Deleting)),
            (O::Delete, S::Stopped, Some(S::Deleting)),
            (O::Delete, S::Failed, Some(S::Deleting)),
            (O::Delete, S::Deleting, None),
            (O::Delete, S::Snapshotting, None),
            (O::Exec, S::Initializing, None),
            (O::Exec, S::Running, Some(S::Running)),
            (O::Exec, S::Stopping, None),
            (O::Exec, S::Stopped, None),
            (O::Exec, S::Failed, None),
            (O::Exec, S::Deleting, None),
            (O::Exec, S::Snapshotting, None),
            (O::Snapshot, S::Initializing, None),
            (O::Snapshot, S::Running, Some(S::Snapshotting)),
            (O::Snapshot, S::Stopping, None),
            (O::Snapshot, S::Stopped, Some(S::Snapshotting)),
            (O::Snapshot, S::Failed, None),
            (O::Snapshot, S::Deleting, None),
            (O::Snapshot, S::Snapshotting, None),
            (O::DeleteSnapshotted, S::Initializing, None),
            (O::DeleteSnapshotted, S::Running, None),
            (O::DeleteSnapshotted, S::Stopping, None),
            (O::DeleteSnapshotted, S::Stopped, None),
            (O::DeleteSnapshotted, S::Failed, None),
            (O::DeleteSnapshotted, S::Deleting, None),
            (O::DeleteSnapshotted, S::Snapshotting, Some(S::Deleting)),
            (O::MarkRunning, S::Initializing, Some(S::Running)),
            (O::MarkRunning, S::Running, None),
            (O::MarkRunning, S::Stopping, None),
            (O::MarkRunning, S::Stopped, None),
            (O::MarkRunning, S::Failed, None),
            (O::MarkRunning, S::Snapshotting, None),
            (O::MarkRunning, S::Deleting, None),
            (O::MarkFailed, S::Initializing, Some(S::Failed)),
            (O::MarkFailed, S::Running, Some(S::Failed)),
            (O::MarkFailed, S::Stopping, Some(S::Failed)),
            (O::MarkFailed, S::Stopped, None),
            (O::MarkFailed, S::Failed, None),
            (O::MarkFailed, S::Snapshotting, None),
            (O::MarkFailed, S::Deleting, Some(S::Failed)),
            (O::MarkStopped, S::Initializing, None),
            (O::MarkStopped, S::Running, Some(S::Stopped)),
            (O::MarkStopped, S::Stopping, Some(S::Stopped)),
            (O::MarkStopped, S::Stopped, None),
            (O::MarkStopped, S::Failed, None),
            (O::MarkStopped, S::Snapshotting, Some(S::Stopped)),
            (O::MarkStopped, S::Deleting, None),
            (O::ReconcileInterrupted, S::Initializing, Some(S::Failed)),
            (O::ReconcileInterrupted, S::Running, None),
            (O::ReconcileInterrupted, S::Stopping, None),
            (O::ReconcileInterrupted, S::Stopped, None),
            (O::ReconcileInterrupted, S::Failed, None),
            (O::ReconcileInterrupted, S::Snapshotting, None),
            (O::ReconcileInterrupted, S::Deleting, None),
            (O::ReconcileLost, S::Initializing, None),
            (O::ReconcileLost, S::Running, Some(S::Stopped)),
            (O::ReconcileLost, S::Stopping, Some(S::Stopped)),
            (O::ReconcileLost, S::Stopped, None),
            (O::ReconcileLost, S::Failed, None),
            (O::ReconcileLost, S::Snapshotting, Some(S::Stopped)),
            (O::ReconcileLost, S::Deleting, None),
            (O::ReconcileStrays, S::Initializing, None),
            (O::ReconcileStrays, S::Running, None),
            (O::ReconcileStrays, S::Stopping, Some(S::Stopped)),
            (O::ReconcileStrays, S::Stopped, Some(S::Stopped)),
            (O::ReconcileStrays, S::Failed, Some(S::Stopped)),
            (O::ReconcileStrays, S::Snapshotting, Some(S::Stopped)),
            (O::ReconcileStrays, S::Deleting, None),
        ];
        assert_eq!(table.len(), O::ALL.len() * S::ALL.len());
        for &op in O::ALL {
            for &from in S::ALL {
                let expected = table
                    .iter()
                    .find(|(o, s, _)| *o == op && *s == from)
                    .unwrap_or_else(|| panic!("table misses ({op}, {from})"))
                    .2;
                let got = check_transition(from, op);
                match expected {
                    Some(next) => assert_eq!(got, Ok(next), "({op}, {from})"),
                    None => assert_eq!(got, Err(TransitionError { from, op }), "({op}, {from})"),
                }
            }
        }
    }

    #[test]
    fn refusals_read_well() {
        let msg = |from, op| check_transition(from, op).unwrap_err().to_string();
        assert_eq!(
            msg(S::Stopped, O::Stop),
            "cannot stop sandbox in state stopped"
        );
        assert_eq!(
            msg(S::Running, O::Start),
            "cannot start sandbox in state running"
        );
        assert_eq!(
            msg(S::Deleting, O::Delete),
            "cannot delete sandbox in state deleting"
        );
        assert_eq!(
            msg(S::Stopped, O::Exec),
            "cannot exec in sandbox in state stopped"
        );
        assert_eq!(
            msg(S::Stopped, O::MarkRunning),
            "cannot mark as running a sandbox in state stopped"
        );
    }

    /// Reconciliation wrote `failed -> stopped` (and `stopped -> stopped`) straight to the store,
    /// a transition the table forbade. Now every state it records is one the table allows, for
    /// every recorded state and either runtime status, with the outcome it always had.
    #[test]
    fn reconciliation_goes_through_the_table() {
        let expected: &[(S, bool, Option<S>)] = &[
            // (recorded, running) -> recorded afterwards; None: kept as is or deleted
            (S::Initializing, false, Some(S::Failed)),
            (S::Initializing, true, Some(S::Failed)),
            (S::Running, false, Some(S::Stopped)),
            (S::Running, true, None),
            (S::Stopping, false, Some(S::Stopped)),
            (S::Stopping, true, Some(S::Stopped)),
            (S::Stopped, false, None),
            (S::Stopped, true, Some(S::Stopped)),
            (S::Failed, false, None),
            (S::Failed, true, Some(S::Stopped)),
            (S::Deleting, false, None),
            (S::Deleting, true, None),
            (S::Snapshotting, false, Some(S::Stopped)),
            (S::Snapshotting, true, Some(S::Stopped)),
        ];
        assert_eq!(expected.len(), S::ALL.len() * 2);
        for &(state, running, after) in expected {
            let plan = reconcile(state, running);
            match (plan, after) {
                (Reconcile::Record(op), Some(after)) => {
                    assert!(
                        matches!(
                            op,
                            O::ReconcileInterrupted | O::ReconcileLost | O::ReconcileStrays
                        ),
                        "{state}/{running}: {op}"
                    );
                    assert_eq!(check_transition(state, op), Ok(after), "{state}/{running}");
                }
                (Reconcile::Keep, None) => assert_ne!(state, S::Deleting),
                (Reconcile::FinishDelete, None) => assert_eq!(state, S::Deleting),
                other => panic!("{state}/{running}: {other:?}"),
            }
        }
    }

    #[test]
    fn transient_states() {
        assert!(is_transient(S::Initializing) && !is_transient(S::Running));
    }
}
