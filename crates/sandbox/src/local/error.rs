//! Why a start of the local provider fails, as a type: one variant per step that can fail, with
//! the underlying error kept as its `source`, so the chain reaches whoever logs it.
//!
//! A [`StartError`] travels as the reason of [`crate::ProviderError::StartFailed`], whose text
//! the server records on the sandbox (`error_message`) and shows to its user. So each message is
//! complete on its own — its cause's text included — and reads as it did when these reasons
//! were strings. (A chain printer that also walks `source()` repeats the cause: the price of a
//! message that stands alone.)

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::cgroup::CgroupError;

/// Why a sandbox did not start. Nothing in it holds an injected value: names, paths and the
/// (redacted) output of bubblewrap only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("invalid sandbox id {0:?}")]
    InvalidId(String),
    #[error("invalid environment variable name {0:?}")]
    InvalidEnvName(String),
    /// The value of this variable contains a NUL byte (no environment can hold one).
    #[error("the value of {0} contains a NUL byte")]
    NulInValue(String),
    #[error("injected file path {0:?} must be relative to the home, without `.` or `..`")]
    FilePathNotNormal(String),
    #[error(
        "injected file path {0:?} must be inside a directory of the home (e.g. `.claude/.credentials.json`)"
    )]
    FilePathNotInDirectory(String),
    #[error("it is already running")]
    AlreadyRunning,
    /// The preset layer to mount is not a directory (removed, or never installed).
    #[error("its preset layer {} is missing: install the preset again", .0.display())]
    PresetMissing(PathBuf),
    /// A warm sandbox could not be claimed because it died while it waited (by hand, the OOM
    /// killer of the host, ...); a cold start replaces it.
    #[error("it died while it waited")]
    WarmSandboxDied,
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// `~/<rel>` must become a tmpfs for injected files, but `path` is in the way.
    #[error("~/{rel} cannot hold injected files: {} is not a directory", .path.display())]
    NotADirectory { rel: String, path: PathBuf },
    #[error("cannot inspect {}: {source}", .path.display())]
    Inspect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create {}: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot prepare the sandbox's /etc: {0}")]
    Etc(#[source] io::Error),
    #[error("cannot run {}: {source}", .program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot record the sandbox's processes: {0}")]
    Record(#[source] io::Error),
    #[error("not started within {0:?}")]
    NotStarted(Duration),
    #[error("not ready within {0:?}")]
    NotReady(Duration),
    #[error("bubblewrap exited before starting the sandbox")]
    BwrapExitedEarly,
    #[error("unexpected bubblewrap info: {0}")]
    BwrapInfo(#[source] serde_json::Error),
    #[error("bubblewrap exited at once: {0}")]
    BwrapGone(#[source] io::Error),
    #[error("the sandbox's init exited at once: {0}")]
    InitGone(#[source] io::Error),
    #[error("the sandbox's init exited before it was ready")]
    InitExited,
    /// slirp4netns exited or did not report ready; `log` is what it wrote to its log file.
    #[error("slirp4netns did not set up the network: {log}")]
    Slirp { log: String },
    /// A host operation that needs no more context than the OS error (a pipe, a directory of
    /// the sandbox's own, the spawn setup, reading bubblewrap's output).
    #[error("{0}")]
    Io(#[source] io::Error),
    /// `reason`, with what bubblewrap and the setup shell wrote on stderr (redacted).
    #[error("{reason}; bubblewrap said: {said}")]
    Explained {
        #[source]
        reason: Box<StartError>,
        said: String,
    },
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::io;

    use super::StartError;
    use crate::ProviderError;

    /// Every error from `err` down its `source()` chain.
    fn chain<'a>(err: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
        std::iter::successors(Some(err), |&e| e.source()).collect()
    }

    /// When start reasons were strings, the OS error behind "cannot inspect ..." was flattened
    /// into text: nothing could tell its kind any more, nor log it as a cause.
    #[test]
    fn a_failed_start_keeps_its_cause_as_source() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let reason = super::super::launch::make_mount_point(file.path(), ".claude").unwrap_err();
        let err = ProviderError::start_failed("sbx_1", reason);
        assert_eq!(
            err.to_string(),
            format!(
                "sandbox sbx_1 failed to start: cannot inspect {}/.claude: Not a directory (os error 20)",
                file.path().display()
            ),
            "the message reads as it did when it was a string"
        );
        let links = chain(&err);
        assert_eq!(links.len(), 3, "{links:?}");
        assert!(matches!(
            links[1].downcast_ref::<StartError>(),
            Some(StartError::Inspect { .. })
        ));
        let os = links[2].downcast_ref::<io::Error>().expect("the OS error");
        assert_eq!(os.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn bubblewraps_words_are_added_to_the_reason_not_put_in_its_place() {
        let err = StartError::Explained {
            reason: Box::new(StartError::Record(io::Error::from_raw_os_error(
                libc::ENOSPC,
            ))),
            said: "bwrap: oops".into(),
        };
        assert_eq!(
            err.to_string(),
            "cannot record the sandbox's processes: No space left on device (os error 28); \
             bubblewrap said: bwrap: oops"
        );
        let links = chain(&err);
        assert_eq!(links.len(), 3, "{links:?}");
        assert_eq!(
            links[2].downcast_ref::<io::Error>().unwrap().raw_os_error(),
            Some(libc::ENOSPC)
        );
    }
}
