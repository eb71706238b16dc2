//! Git on the host: cloning a repository into a sandbox's workspace before the sandbox starts
//! (DESIGN §11). The server clones, not the sandbox, so a clone token never enters the sandbox.
//!
//! How a token reaches git: through `GIT_ASKPASS`, a small script (no secret in it) that prints
//! what it reads from a pipe the clone inherits. The token is written to that pipe from memory
//! and the write end is closed before git starts, so it is never in an argument, an environment
//! variable, `.git/config`, the remote URL, a credential store or a file. Git reads no system or
//! user configuration (no credential helper of the host's can store the token), never prompts on
//! a terminal, and speaks only the protocols a repository URL may name. Whatever git prints is
//! redacted before it is returned.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::proc::{self, ChildSetup};
use crate::redact::RedactionSet;
use crate::SecretBytes;

/// Protocols a clone may use. `ext::` (runs a command) and anything else are refused by git.
const ALLOWED_PROTOCOLS: &str = "file:git:http:https:ssh";

/// The ref a client's bundle carries its working tree's uncommitted changes under.
pub const CHANGES_REF: &str = "refs/amika/changes";

/// Most of git's output kept for an error message.
const MAX_OUTPUT: usize = 64 * 1024;

/// The askpass program: a username for HTTPS (tokens ignore it; GitHub documents this one), and
/// for the password whatever the inherited pipe holds.
const ASKPASS: &str = "#!/bin/sh\ncase \"$1\" in\n  Username*) echo x-access-token ;;\n  *) exec cat \"/dev/fd/$AMIKA_GIT_TOKEN_FD\" ;;\nesac\n";

/// What to clone and where.
#[derive(Debug)]
pub struct CloneSpec<'a> {
    /// As the user gave it (no credentials inside: see [`check_url`]).
    pub url: &'a str,
    /// Clone from this `git bundle` file instead of `url`, which (if not empty) then becomes the
    /// clone's `origin`, as the client's repository names it. The bundle's [`CHANGES_REF`], if
    /// it has one, is laid over the working tree (the client's uncommitted changes).
    pub bundle: Option<&'a Path>,
    /// Branch to check out; `None`: the remote's default branch.
    pub branch: Option<&'a str>,
    /// A new branch to create from `branch` and check out.
    pub new_branch: Option<&'a str>,
    /// For HTTPS: the token, sent as the password.
    pub token: Option<&'a SecretBytes>,
    /// Must not exist yet; its parent must.
    pub dest: &'a Path,
    /// A directory for the clone's scratch files (its empty `HOME`, the askpass script).
    pub scratch: &'a Path,
    /// A clone still running after this is killed.
    pub timeout: Duration,
}

/// What a clone produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloned {
    /// The checked-out branch (`None` for a detached head, e.g. an empty repository).
    pub branch: Option<String>,
    /// The checked-out commit (`None` for an empty repository).
    pub commit: Option<String>,
}

/// Why a clone failed. Messages carry git's own words, already redacted.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed on the server: install it (apt-get install -y git)")]
    NotInstalled,
    #[error("invalid repository URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("invalid branch name {0:?}: {1}")]
    InvalidBranch(String, &'static str),
    #[error("git {step} failed: {output}")]
    Failed { step: &'static str, output: String },
    #[error("the clone did not finish within {0:?}")]
    TimedOut(Duration),
    #[error("cannot run git: {0}")]
    Io(#[from] std::io::Error),
}

/// Refuse URLs git would misuse or that would keep a credential: `ext::`, options in disguise,
/// a password in the URL itself, and any user name in an `http(s)://` or `git://` URL (GitHub
/// accepts a token as the user name, and it would land in the clone's argument list, in
/// `.git/config` and in git's error messages). Only SSH has a use for a user name (`git@`).
pub fn check_url(url: &str) -> Result<(), GitError> {
    let bad = |reason| {
        Err(GitError::InvalidUrl {
            url: redact_userinfo(url),
            reason,
        })
    };
    if url.is_empty() {
        return bad("must not be empty");
    }
    if url.starts_with('-') || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must not start with '-' or contain spaces or control characters");
    }
    let scheme_ok = ["https://", "http://", "ssh://", "git://", "file:///"]
        .iter()
        .any(|p| url.starts_with(p));
    let scp_like = !url.contains("://") && url.contains('@') && url.contains(':');
    if !scheme_ok && !scp_like {
        return bad("expected https://, http://, ssh://, git://, file:/// or user@host:path");
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if userinfo.contains(':') {
                return bad("a password in the URL would be stored in .git/config: store the token as a credential and name it instead");
            }
            if scheme != "ssh" {
                return bad("a user name in an http(s) or git URL can be a token and would be stored in .git/config: store the token as a credential and name it instead");
            }
        }
    }
    Ok(())
}

/// The URL with any userinfo cut, for messages.
fn redact_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|a| a.rsplit_once('@')) {
            Some((_, host)) => {
                let path = rest.split_once('/').map_or("", |(_, p)| p);
                format!("{scheme}://…@{host}/{path}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A branch name git accepts and that cannot be read as an option.
pub fn check_branch(name: &str) -> Result<(), GitError> {
    let bad = |why| Err(GitError::InvalidBranch(name.to_string(), why));
    if name.is_empty() || name.len() > 255 {
        return bad("expected 1 to 255 characters");
    }
    if name.starts_with('-')
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with(".lock")
    {
        return bad("must not start with '-' or '/', or end with '/' or '.lock'");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return bad("must not contain '..', '@{' or '//'");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return bad("must not contain spaces, control characters or any of ~^:?*[\\");
    }
    Ok(())
}

/// Clone `spec.url` into `spec.dest` and check out the requested branch.
pub async fn clone(spec: &CloneSpec<'_>) -> Result<Cloned, GitError> {
    clone_checked_out(spec)
        .await
        .map_err(|e| hide_paths(e, spec))
}

/// git's words without the host's paths (the server's data dir means nothing to the user who
/// reads the error): the clone is named by its directory's name, a bundle as "the bundle", and
/// the "Cloning into ..." line, which says nothing about a failure, is left out.
fn hide_paths(e: GitError, spec: &CloneSpec<'_>) -> GitError {
    let GitError::Failed { step, output } = e else {
        return e;
    };
    let mut output: String = output
        .lines()
        .filter(|l| !l.starts_with("Cloning into "))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(bundle) = spec.bundle {
        output = output.replace(&bundle.display().to_string(), "the bundle");
    }
    let name = spec
        .dest
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    output = output.replace(&spec.dest.display().to_string(), &name);
    if output.is_empty() {
        output = "git gave no reason".into();
    }
    GitError::Failed { step, output }
}

async fn clone_checked_out(spec: &CloneSpec<'_>) -> Result<Cloned, GitError> {
    if spec.bundle.is_none() || !spec.url.is_empty() {
        check_url(spec.url)?;
    }
    for b in spec.branch.iter().chain(spec.new_branch.iter()) {
        check_branch(b)?;
    }
    let git = find_git()?;
    let scratch = Scratch::new(spec.scratch)?;
    let mut redactor = RedactionSet::new();
    if let Some(t) = spec.token {
        redactor.add("git-credential", t.expose_secret());
    }
    let o = OsStr::new;
    let step = |step: &'static str, args: &[&OsStr]| {
        let mut cmd = scratch.command(&git);
        cmd.arg("-C").arg(spec.dest).args(args);
        run(cmd, ChildSetup::default(), step, spec.timeout, &redactor)
    };

    let mut cmd = scratch.command(&git);
    cmd.args(["clone", "--no-hardlinks", "--progress"]);
    if let Some(b) = spec.branch {
        cmd.args(["--branch", b]);
    }
    cmd.arg("--")
        .arg(spec.bundle.map_or(OsStr::new(spec.url), Path::as_os_str))
        .arg(spec.dest);
    let token_pipe = match spec.token {
        Some(token) if spec.bundle.is_none() => Some(token_pipe(token)?),
        _ => None,
    };
    if let Some(read) = &token_pipe {
        cmd.env("GIT_ASKPASS", scratch.askpass()?)
            .env("AMIKA_GIT_TOKEN_FD", read.as_raw_fd().to_string());
    }
    let setup = ChildSetup {
        join_cgroups: Vec::new(),
        keep_fds: token_pipe.iter().map(|fd| fd.as_raw_fd()).collect(),
        rlimits: Vec::new(),
    };
    run(cmd, setup, "clone", spec.timeout, &redactor).await?;
    drop(token_pipe);

    if let Some(bundle) = spec.bundle {
        let heads = step(
            "bundle list-heads",
            &[o("bundle"), o("list-heads"), bundle.as_os_str()],
        )
        .await?;
        if heads.lines().any(|l| l.ends_with(CHANGES_REF)) {
            step(
                "fetch changes",
                &[o("fetch"), o("-q"), bundle.as_os_str(), o(CHANGES_REF)],
            )
            .await?;
            step(
                "restore changes",
                &[
                    o("restore"),
                    o("--source=FETCH_HEAD"),
                    o("--worktree"),
                    o("--"),
                    o(":/"),
                ],
            )
            .await?;
        }
        if spec.url.is_empty() {
            step("remote remove", &[o("remote"), o("remove"), o("origin")]).await?;
        } else {
            step(
                "remote set-url",
                &[o("remote"), o("set-url"), o("origin"), o(spec.url)],
            )
            .await?;
        }
    }
    if let Some(new) = spec.new_branch {
        step("checkout", &[o("checkout"), o("-q"), o("-b"), o(new)]).await?;
    }
    let commit = step(
        "rev-parse",
        &[o("rev-parse"), o("--verify"), o("-q"), o("HEAD")],
    )
    .await
    .ok();
    let branch = step(
        "rev-parse",
        &[o("symbolic-ref"), o("-q"), o("--short"), o("HEAD")],
    )
    .await
    .ok();
    Ok(Cloned {
        branch: branch.filter(|b| !b.is_empty()),
        commit: commit.filter(|c| !c.is_empty()),
    })
}

fn find_git() -> Result<PathBuf, GitError> {
    ["/usr/bin/git", "/usr/local/bin/git", "/bin/git"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(GitError::NotInstalled)
}

/// A pipe holding the token, write end closed: the askpass script reads it to its end.
fn token_pipe(token: &SecretBytes) -> Result<OwnedFd, GitError> {
    let (read, write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(std::io::Error::from)?;
    // A token is far smaller than a pipe's buffer (64 KiB): the write never blocks.
    std::fs::File::from(write).write_all(token.expose_secret())?;
    Ok(read)
}

/// The clone's own scratch directory: an empty `HOME` and the askpass script; removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(parent: &Path) -> std::io::Result<Scratch> {
        let dir = parent
            .join(format!("git-{}", std::process::id()))
            .with_extension(format!("{:x}", rand_suffix()));
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Scratch { dir })
    }

    fn askpass(&self) -> std::io::Result<PathBuf> {
        let path = self.dir.join("askpass");
        std::fs::write(&path, ASKPASS)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(path)
    }

    /// git with a clean environment: no host configuration, no prompts, known protocols only.
    fn command(&self, git: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(git);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.dir)
            .env("LANG", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            // No credential helper, even one a repository's config could name later.
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "credential.helper")
            .env("GIT_CONFIG_VALUE_0", "")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Everything `r` gives, redacted as it streams in, keeping only the last [`MAX_OUTPUT`] bytes
/// (reading on, so git never blocks on a full pipe). Redacting before the cut matters: a value
/// straddling the cut would otherwise keep its tail, which no longer matches as a whole.
async fn read_redacted_tail(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    redactor: &RedactionSet,
) -> std::io::Result<String> {
    let mut filter = redactor.filter();
    let mut kept = String::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            kept.push_str(&filter.finish());
            keep_tail(&mut kept);
            return Ok(kept);
        }
        kept.push_str(&filter.push(&chunk[..n]));
        keep_tail(&mut kept);
    }
}

/// Cut `text` to its last [`MAX_OUTPUT`] bytes or fewer, at a character boundary.
fn keep_tail(text: &mut String) {
    if text.len() > MAX_OUTPUT {
        let mut cut = text.len() - MAX_OUTPUT;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
}

/// Run one git command to its end (or kill its process group at the deadline); its stdout,
/// trimmed, on success; its redacted output in the error otherwise.
async fn run(
    mut cmd: tokio::process::Command,
    setup: ChildSetup,
    step: &'static str,
    timeout: Duration,
    redactor: &RedactionSet,
) -> Result<String, GitError> {
    proc::install(&mut cmd, setup)?;
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(GitError::NotInstalled),
        Err(e) => return Err(e.into()),
    };
    let pgid = child.id().map(|p| p as i32);
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let collect = async {
        let (out, err) = tokio::join!(
            read_redacted_tail(&mut stdout, redactor),
            read_redacted_tail(&mut stderr, redactor)
        );
        let (out, err) = (out?, err?);
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, out, err))
    };
    let (status, out, err) = match tokio::time::timeout(timeout, collect).await {
        Ok(r) => r?,
        Err(_) => {
            if let Some(pgid) = pgid {
                proc::kill_group(pgid);
            }
            return Err(GitError::TimedOut(timeout));
        }
    };
    if status.success() {
        Ok(out.trim().to_string())
    } else {
        let mut output = err.trim().to_string();
        if output.is_empty() {
            output = format!("exit status {}", status.code().unwrap_or(-1));
        }
        // Progress lines ("Receiving objects: 12%\r...") say nothing about the failure.
        let lines: Vec<&str> = output
            .lines()
            .map(|l| l.rsplit('\r').next().unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect();
        let keep = lines.len().saturating_sub(10);
        Err(GitError::Failed {
            step,
            output: lines[keep..].join("\n"),
        })
    }
}
