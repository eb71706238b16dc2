//! The repository `sandbox create` gives a sandbox: chosen from `--git`/`--no-git` and the
//! current directory, and, for a local checkout, packed as a git bundle and uploaded (with a
//! progress display on a terminal) so that the server never needs a path on this machine. The
//! create then names the upload, on the checkout's current branch unless `--branch` says
//! otherwise.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amika_client::Client;
use amika_types::CreateSandboxRequest;
use anyhow::{anyhow, bail, Context};

use super::create::CreateArgs;
use super::Ctx;
use crate::repo::{self, LocalRepo};
use crate::sandbox_flags::{self, GitSource, GIT_FORMS};
use crate::spinner::Spinner;

/// Where repositories land inside a sandbox.
pub const WORKSPACE: &str = "/home/amika/workspace";

/// The workspace a create asks for.
#[derive(Debug)]
pub enum WorkspaceChoice {
    /// An empty `~/workspace`.
    Empty,
    /// A URL the server clones.
    Url(String),
    /// A checkout on this machine, sent as a bundle.
    Local { repo: LocalRepo, with_changes: bool },
}

/// Which repository the flags and `cwd` ask for. Runs git locally (to find the checkout) but
/// sends nothing; every combination of flags that cannot work is refused here.
pub fn choose(args: &CreateArgs, cwd: &Path) -> anyhow::Result<WorkspaceChoice> {
    // A snapshot brings its own workspace.
    if args.no_git || args.snapshot.is_some() {
        return Ok(WorkspaceChoice::Empty);
    }
    let local = match args.git.as_deref() {
        Some(value) => match sandbox_flags::parse_git(value, cwd.join(value).is_dir())? {
            GitSource::Url(url) => {
                if args.with_changes {
                    bail!(
                        "--with-changes carries a local checkout's uncommitted and untracked files: it does not apply to a URL (--git {url}), which the server clones as it is; expected --git PATH of a local checkout"
                    );
                }
                return Ok(WorkspaceChoice::Url(url));
            }
            GitSource::Local(path) => {
                let dir = cwd.join(&path);
                repo::find(&dir)?.ok_or_else(|| {
                    anyhow!(
                        "invalid --git {value:?}: {} is in no git repository: expected {GIT_FORMS}",
                        dir.display()
                    )
                })?
            }
        },
        None => match repo::find(cwd)? {
            Some(found) => found,
            None => {
                for (flag, given) in [
                    ("--branch", args.branch.is_some()),
                    ("--new-branch", args.new_branch.is_some()),
                    ("--with-changes", args.with_changes),
                    ("--git-credential", args.git_credential.is_some()),
                ] {
                    if given {
                        bail!(
                            "{flag} needs a repository, and {} is in none: run inside a git checkout or pass --git PATH|URL",
                            cwd.display()
                        );
                    }
                }
                return Ok(WorkspaceChoice::Empty);
            }
        },
    };
    if let Some(name) = &args.git_credential {
        bail!(
            "--git-credential {name} names the token of a clone by the server, for --git URL only; {} is a local repository, which the CLI sends itself (no token needed)",
            local.root.display()
        );
    }
    Ok(WorkspaceChoice::Local {
        repo: local,
        with_changes: args.with_changes,
    })
}

/// Puts the chosen repository into `req`: a URL as `repo_url`; a local checkout uploaded and
/// named in `workspace_upload`, on its current branch unless `--branch` was given.
pub async fn apply(
    ctx: &Ctx,
    client: &Client,
    choice: WorkspaceChoice,
    req: &mut CreateSandboxRequest,
) -> anyhow::Result<()> {
    match choice {
        WorkspaceChoice::Empty => {}
        WorkspaceChoice::Url(url) => req.repo_url = Some(url),
        WorkspaceChoice::Local { repo, with_changes } => {
            let id = upload(ctx, client, &repo, with_changes).await?;
            req.workspace_upload = Some(id);
            if req.branch.is_none() {
                req.branch = repo.branch.clone();
            }
        }
    }
    Ok(())
}

/// Bundles `repo` into a temporary file and uploads it; the upload's id.
async fn upload(
    ctx: &Ctx,
    client: &Client,
    repo: &LocalRepo,
    with_changes: bool,
) -> anyhow::Result<String> {
    let text = !ctx.json();
    if text {
        let on = repo
            .branch
            .as_deref()
            .map_or(String::from(" (detached HEAD)"), |b| format!(" on {b}"));
        eprintln!(
            "Using repository {} ({}{on})",
            repo.name,
            repo.root.display()
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("amika-bundle-")
        .tempdir()
        .context("cannot make a temporary directory for the repository's bundle")?;
    let path = scratch.path().join("repo.bundle");
    let carried = {
        let _spinner = text.then(|| Spinner::start(format!("Bundling {}...", repo.name)));
        repo::bundle(repo, &path, with_changes)?
    };
    if text && with_changes && !carried {
        eprintln!("No uncommitted changes to carry: the working tree is clean");
    }
    let file = tokio::fs::File::open(&path)
        .await
        .with_context(|| format!("cannot read the bundle {}", path.display()))?;
    let len = file
        .metadata()
        .await
        .with_context(|| format!("cannot read the bundle {}", path.display()))?
        .len();
    let origin = repo.origin_url.as_deref().and_then(repo::shareable_origin);
    let progress = Arc::new(Progress::new(
        text && crate::prompt::stderr_is_tty(),
        format!("Uploading {}", repo.name),
    ));
    let report = Arc::clone(&progress);
    let sent = client
        .upload_workspace(
            &repo.name,
            origin.as_deref(),
            file,
            len,
            move |sent, total| report.update(sent, total),
        )
        .await;
    progress.clear();
    let upload = sent?;
    if text {
        eprintln!("Sent {} ({})", repo.name, human_bytes(upload.size_bytes));
    }
    Ok(upload.id)
}

/// A one-line `sent of total` display on stderr, redrawn at most every 100 ms; does nothing
/// when disabled (stderr no terminal, or `-o json`).
#[derive(Debug)]
struct Progress {
    enabled: bool,
    label: String,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    fn new(enabled: bool, label: String) -> Progress {
        Progress {
            enabled,
            label,
            last: Mutex::new(None),
        }
    }

    fn update(&self, sent: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if !due && sent < total {
            return;
        }
        *last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", progress_line(&self.label, sent, total));
        let _ = err.flush();
    }

    fn clear(&self) {
        let drawn = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if self.enabled && drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// `Uploading repo: 1.5 MiB of 3.0 MiB (50%)`.
fn progress_line(label: &str, sent: u64, total: u64) -> String {
    let percent = (sent.min(total) * 100).checked_div(total).unwrap_or(100);
    format!(
        "{label}: {} of {} ({percent}%)",
        human_bytes(sent),
        human_bytes(total)
    )
}

/// `812 B`, `1.5 KiB`, `3.0 MiB`, `1.2 GiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> CreateArgs {
        let mut full = vec!["amika", "sandbox", "create"];
        full.extend_from_slice(argv);
        match crate::commands::Cli::try_parse_from(full).unwrap().command {
            crate::commands::Command::Sandbox(super::super::SandboxCommand::Create(a)) => *a,
            other => panic!("{other:?}"),
        }
    }

    fn git(dir: &Path, argv: &[&str]) {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(argv)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {argv:?}");
    }

    /// A temp dir holding `plain/` (no repository) and `proj/` (a checkout on `main`).
    fn dirs() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("plain")).unwrap();
        let proj = tmp.path().join("proj");
        std::fs::create_dir_all(proj.join("sub")).unwrap();
        git(&proj, &["init", "-q", "-b", "main"]);
        std::fs::write(proj.join("a"), "a").unwrap();
        git(&proj, &["add", "."]);
        git(&proj, &["commit", "-q", "-m", "one"]);
        tmp
    }

    fn err(argv: &[&str], cwd: &Path) -> String {
        choose(&args(argv), cwd).unwrap_err().to_string()
    }

    #[test]
    fn the_current_checkout_is_the_default_and_no_repository_means_empty() {
        let tmp = dirs();
        match choose(&args(&[]), &tmp.path().join("proj/sub")).unwrap() {
            WorkspaceChoice::Local { repo, with_changes } => {
                assert_eq!(repo.name, "proj");
                assert_eq!(repo.branch.as_deref(), Some("main"));
                assert!(!with_changes);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            choose(&args(&[]), &tmp.path().join("plain")).unwrap(),
            WorkspaceChoice::Empty
        ));
        assert!(matches!(
            choose(&args(&["--no-git"]), &tmp.path().join("proj")).unwrap(),
            WorkspaceChoice::Empty
        ));
    }

    #[test]
    fn git_picks_a_directory_relative_to_cwd_or_a_url() {
        let tmp = dirs();
        match choose(
            &args(&["--git", "../proj", "--with-changes"]),
            &tmp.path().join("plain"),
        )
        .unwrap()
        {
            WorkspaceChoice::Local { repo, with_changes } => {
                assert_eq!(repo.name, "proj");
                assert!(with_changes);
            }
            other => panic!("{other:?}"),
        }
        match choose(
            &args(&[
                "--git",
                "https://example.invalid/o/r.git",
                "--git-credential",
                "gh",
            ]),
            &tmp.path().join("proj"),
        )
        .unwrap()
        {
            WorkspaceChoice::Url(url) => assert_eq!(url, "https://example.invalid/o/r.git"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn combinations_that_cannot_work_are_refused_naming_the_flag() {
        let tmp = dirs();
        let plain = tmp.path().join("plain");
        let proj = tmp.path().join("proj");
        let e = err(&["--git", "file:///srv/r.git", "--with-changes"], &proj);
        assert!(
            e.starts_with("--with-changes carries a local checkout's")
                && e.contains("expected --git PATH"),
            "{e}"
        );
        let e = err(&["--git-credential", "gh"], &proj);
        assert!(
            e.starts_with(
                "--git-credential gh names the token of a clone by the server, for --git URL only"
            ),
            "{e}"
        );
        let e = err(&["--git", ".", "--git-credential", "gh"], &proj);
        assert!(e.contains("is a local repository"), "{e}");
        for flag in [
            &["--branch", "b"][..],
            &["--new-branch", "b"],
            &["--with-changes"],
            &["--git-credential", "gh"],
        ] {
            let e = err(flag, &plain);
            assert!(
                e.starts_with(&format!("{} needs a repository", flag[0]))
                    && e.contains("pass --git PATH|URL"),
                "{e}"
            );
        }
        let e = err(&["--git", "."], &plain);
        assert!(
            e.starts_with(r#"invalid --git ".": "#) && e.contains("is in no git repository"),
            "{e}"
        );
        let e = err(&["--git", "nowhere"], &plain);
        assert!(e.contains("no such directory, and not a URL"), "{e}");
    }

    #[test]
    fn progress_is_shown_in_readable_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024 / 4), "1.2 GiB");
        assert_eq!(
            progress_line("Uploading r", 1536 * 1024, 3 * 1024 * 1024),
            "Uploading r: 1.5 MiB of 3.0 MiB (50%)"
        );
        assert_eq!(progress_line("U", 0, 0), "U: 0 B of 0 B (100%)");
    }
}
