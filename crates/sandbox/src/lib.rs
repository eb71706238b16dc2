//! Sandbox providers. A [`Provider`] starts, stops, removes and runs commands in sandboxes; it
//! knows nothing of HTTP, the database or the vault. The server hands it an [`Injection`]
//! (already decrypted values, in zeroizing types) and gets back output chunks to redact.
//!
//! The local provider ([`local::LocalProvider`]) runs each sandbox under bubblewrap.
//!
//! # Unsafe code
//!
//! The workspace forbids `unsafe`; this crate denies it and lifts the lint (`#[allow]`) on
//! exactly these functions, each with a `SAFETY` comment at its `unsafe` block:
//! - `local::proc::install` — a `pre_exec` hook for every host process the provider spawns
//!   (bwrap, slirp4netns, an exec's entering process): `setsid`, `close_range(CLOEXEC)`,
//!   clearing `FD_CLOEXEC` on the descriptors to keep, joining cgroups by writing to
//!   `cgroup.procs`, and `setrlimit` with limits prepared before (see `local::rlimit`).
//!   Sound because it runs only async-signal-safe system calls through libc, and
//!   allocates nothing and takes no lock in the forked child (its inputs are prepared before).
//! - `local::enter::install` — the `pre_exec` hook of an exec: `setns` into the sandbox through a
//!   pidfd, drop to uid/gid 1000, a raw `clone(CLONE_PARENT)` whose parent side only writes the
//!   command's pid to a pipe and `_exit`s, then in the command `local::seccomp::restrict_self`
//!   (below), `chdir` and `execve` with a prepared environment. Sound for the same reasons (system calls only, no
//!   allocation: every C string, pointer array and path candidate is built before `fork` and
//!   outlives the hook), and the raw pointers it passes point into buffers the closure owns.
//! - `local::seccomp::restrict_self` — in an exec's command, before `execve`:
//!   `prctl(NO_NEW_PRIVS)` and `seccomp(SET_MODE_FILTER)` with the static filter program.
//!   Sound because both are plain system calls and the program is static (its address is
//!   taken before `fork`).
//! - `local::enter::Running::new` — registering a command's pidfd with tokio's reactor
//!   (`AsyncFd::register_with_interest`). Sound because the `OwnedFd` moves into the `AsyncFd`,
//!   so the descriptor stays open and the same for the registration's whole life.
//! - `local::session::register` — the same registration for an SSH session's PTY, for the same
//!   reason.
//!
//! Tests add one more (`libc::mkfifo` on a fresh path, in the curated `/etc` tests).

mod drain;
pub mod keyed_lock;
pub mod lifecycle;
pub mod local;
pub mod redact;
pub mod snapshot;

pub use drain::EndOutput;
pub use keyed_lock::{KeyedLock, KeyedLocks};
pub use lifecycle::{check_transition, reconcile, Operation, Reconcile, TransitionError};
pub use local::LocalProvider;
pub use redact::{ByteFilter, OutputFilter, RedactionSet};

use std::fmt;
use std::path::PathBuf;

use amika_types::NetworkMode;
use async_trait::async_trait;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// A secret byte string on its way into a sandbox: zeroized on drop, masked in `Debug`,
/// no `Serialize`.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }
    /// The raw value. Named loudly so every use is easy to audit.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        SecretBytes::new(self.0.to_vec())
    }
}

/// An environment variable to set in every process of the sandbox.
#[derive(Debug, Clone)]
pub struct InjectedEnv {
    pub name: String,
    pub value: SecretBytes,
    /// What output redaction calls it: `[REDACTED:<label>]` (the secret or credential name).
    pub label: String,
}

/// A file to place in the sandbox user's home, mode 0600, owned by `amika`, never on host disk.
#[derive(Debug, Clone)]
pub struct InjectedFile {
    /// Path relative to `/home/amika`, e.g. `.claude/.credentials.json`.
    pub relative_path: String,
    pub contents: SecretBytes,
    pub label: String,
}

/// Everything injected into one run of a sandbox.
#[derive(Debug, Clone, Default)]
pub struct Injection {
    pub env: Vec<InjectedEnv>,
    pub files: Vec<InjectedFile>,
}

/// How to build a sandbox (non-secret).
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// amika's sandbox id; also names its directory and cgroup.
    pub id: String,
    pub network: NetworkMode,
    pub memory_mib: Option<u64>,
    pub pids: Option<u64>,
    /// A preset layer (a directory on the host, e.g. `<data>/presets/coder/<version>`): mounted
    /// read-only at [`local::PRESET_MOUNT`], its `bin` on the sandbox's `PATH`. `None`: none.
    pub preset: Option<PathBuf>,
}

/// A repository to put in a sandbox's workspace before its first start.
#[derive(Debug)]
pub struct WorkspaceSpec<'a> {
    /// Its directory under `~/workspace`.
    pub repo_name: &'a str,
    /// What to clone; with `bundle`, the origin to record instead (may be empty: none).
    pub url: &'a str,
    /// A `git bundle` file to clone from (a repository a client uploaded).
    pub bundle: Option<&'a std::path::Path>,
    pub branch: Option<&'a str>,
    pub new_branch: Option<&'a str>,
    /// The clone's token over HTTPS.
    pub token: Option<&'a SecretBytes>,
    /// A clone still running after this is killed.
    pub timeout: std::time::Duration,
}

/// A staged repository: what it is on, and its `.amika/config.toml` as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedWorkspace {
    pub branch: Option<String>,
    pub commit: Option<String>,
    /// The file's bytes (at most [`local::MAX_REPO_CONFIG_BYTES`]); `None` without one.
    pub repo_config: Option<Vec<u8>>,
}

/// A command to run inside a running sandbox.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    /// Working directory inside the sandbox; default `/home/amika/workspace`.
    pub cwd: Option<String>,
    pub timeout: Option<std::time::Duration>,
}

/// A piece of a running command's output, in order of arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command ended: its exit code (128 + signal when killed by a signal).
    Exit(i32),
}

/// A running command: events arrive on `events`; dropping it kills the command's tree.
#[derive(Debug)]
pub struct ExecHandle {
    pub events: mpsc::Receiver<ExecEvent>,
    pub(crate) _guard: Box<dyn Send + Sync + fmt::Debug>,
}

/// A terminal's size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u16,
    pub rows: u16,
}

/// A terminal for an interactive session: its size and `TERM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalSpec {
    pub size: TerminalSize,
    /// The client's `TERM` (e.g. `xterm-256color`); set in the command's environment.
    pub term: String,
}

/// A command of an interactive session (SSH) in a running sandbox: unlike an exec, its input
/// is the caller's, and it may run on a terminal.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub argv: Vec<String>,
    /// Working directory inside the sandbox; default `/home/amika/workspace` (else the home).
    pub cwd: Option<String>,
    /// Run on a new PTY of this size: stdin, stdout and stderr are its terminal.
    pub terminal: Option<TerminalSpec>,
}

/// A running interactive session. Dropping it kills the command's process group.
pub struct SessionHandle {
    /// The command's stdin (the terminal's input with a PTY); dropping it is EOF without one.
    pub stdin: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    /// The command's stdout (everything the terminal shows, with a PTY).
    pub stdout: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    /// The command's stderr; `None` with a PTY (it writes to the terminal).
    pub stderr: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    /// The command's exit code (128 + signal when killed by one), once it exited.
    pub exit: tokio::sync::oneshot::Receiver<i32>,
    /// Resizes the terminal (`None` without one).
    pub resize: Option<Box<dyn Fn(TerminalSize) + Send + Sync>>,
    /// Once the command exited and its output had time to drain: `stdout` and `stderr` give what
    /// they hold and end (a background process may keep them open for ever).
    pub end_output: EndOutput,
    pub(crate) _guard: Box<dyn Send + Sync + fmt::Debug>,
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("terminal", &self.resize.is_some())
            .finish_non_exhaustive()
    }
}

/// What the provider sees running for a sandbox (reconciliation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeStatus {
    Running,
    /// Not running; the reason when known (e.g. "killed by the OOM killer", "init exited 1").
    NotRunning {
        reason: Option<String>,
    },
}

/// What a provider answers when an operation fails. The server maps each variant to one answer
/// (`From<ProviderError> for ServiceError`).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A prerequisite is missing; the message says exactly what to install.
    #[error("{0}")]
    Unavailable(String),
    /// The sandbox (named by its id) has no running init.
    #[error("sandbox {0} is not running")]
    NotRunning(String),
    /// The sandbox did not start. `reason` says why in words a user can act on, and keeps its
    /// causes as `source`s (the local provider's is a [`local::StartError`]).
    #[error("sandbox {id} failed to start: {reason}")]
    StartFailed {
        id: String,
        #[source]
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The command cannot be run as given (empty, NUL bytes); the message says why.
    #[error("invalid command: {0}")]
    InvalidCommand(String),
    /// The repository could not be made ready (clone failed, a bad URL or branch): the message
    /// says why, redacted.
    #[error("{0}")]
    Repository(String),
    /// The repository's `.amika/config.toml` cannot be read safely (a symbolic link, not a
    /// file, too large): the message says why.
    #[error("{0}")]
    RepoConfig(String),
    /// A limit of the sandbox is full (its processes): the message says which and what to do.
    #[error("{0}")]
    LimitReached(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProviderError {
    /// A [`ProviderError::StartFailed`] of sandbox `id`.
    pub fn start_failed(
        id: impl Into<String>,
        reason: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ProviderError::StartFailed {
            id: id.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

/// A place sandboxes run. Implemented by the local bubblewrap provider; later by OCI and
/// Kubernetes providers.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// Short name stored on the sandbox, e.g. `local`.
    fn name(&self) -> &'static str;
    /// Whether sandboxes can be started on this machine; the error says what to install.
    fn check(&self) -> Result<()>;
    /// Start the sandbox (creating its persistent home and workspace on first start) with this
    /// injection, and return once it is ready for `exec`.
    async fn start(&self, spec: &SandboxSpec, injection: Injection) -> Result<()>;
    /// Stop every process of the sandbox, keeping home and workspace. Idempotent.
    async fn stop(&self, id: &str) -> Result<()>;
    /// Kill every process and remove all files of the sandbox. Idempotent.
    async fn remove(&self, id: &str) -> Result<()>;
    /// Send every process of the sandbox its end (SIGKILL) without waiting for the kernel to
    /// finish it: once this returns, nothing runs in the sandbox again. A delete answers after
    /// this and leaves the rest of `remove` (waiting, cgroups, files) to the background.
    /// Idempotent. The default does nothing (a provider without it is halted by `remove`).
    async fn halt(&self, id: &str) -> Result<()> {
        let _ = id;
        Ok(())
    }
    /// Clone (or unbundle) a repository for sandbox `id`, before its first start; the start
    /// moves it into `~/workspace/<repo_name>`, and `remove` discards it if the sandbox never
    /// starts.
    async fn stage_workspace(&self, id: &str, spec: &WorkspaceSpec<'_>) -> Result<StagedWorkspace>;
    /// Run a command in the running sandbox with its injected environment.
    async fn exec(&self, id: &str, spec: ExecSpec) -> Result<ExecHandle>;
    /// Start an interactive session's command (SSH) in the running sandbox, entered exactly as
    /// [`Provider::exec`] enters it.
    async fn session(&self, id: &str, spec: SessionSpec) -> Result<SessionHandle> {
        let _ = (id, spec);
        Err(ProviderError::Unavailable(format!(
            "the {} provider has no interactive sessions",
            self.name()
        )))
    }
    /// A TCP connection to `port` on `host` (an IP address) as seen from inside the running
    /// sandbox's network namespace (SSH port forwarding).
    async fn connect_tcp(
        &self,
        id: &str,
        host: std::net::IpAddr,
        port: u16,
    ) -> Result<tokio::net::TcpStream> {
        let _ = (id, host, port);
        Err(ProviderError::Unavailable(format!(
            "the {} provider has no port forwarding",
            self.name()
        )))
    }
    async fn status(&self, id: &str) -> Result<RuntimeStatus>;
    /// Ids of every sandbox this provider has processes or files for (reconciliation).
    async fn list(&self) -> Result<Vec<String>>;
    /// Bytes the sandbox's home and workspace take on the host's disk (allocated blocks);
    /// `None` when this provider has no files for it or does not measure.
    async fn disk_usage(&self, _id: &str) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Where the provider keeps sandbox files (for tests that scan for leaked values).
    fn root_dir(&self) -> Option<PathBuf> {
        None
    }
    /// The host directory that is sandbox `id`'s `/home/amika` (its workspace inside), which a
    /// snapshot captures while the sandbox is stopped and a restore fills before its first
    /// start. `None`: this provider cannot snapshot.
    fn home_dir(&self, id: &str) -> Option<PathBuf> {
        let _ = id;
        None
    }
    /// Whether background work of the provider (starting warm sandboxes) is done; benchmarks
    /// wait for it so that it does not land inside a measurement.
    fn is_settled(&self) -> bool {
        true
    }
}
