//! The local repository a `sandbox create` uses: found by walking up from the current directory
//! (as git does), described (name, current branch, origin URL), and packed as a `git bundle` of
//! its committed history so that a server on another machine can clone it without ever seeing a
//! host path. `--with-changes` adds one extra commit holding the working tree as it is
//! (uncommitted and untracked, not ignored files), made with a throwaway index so the user's own
//! index, branches and working tree are never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// The ref a bundle carries the working tree's changes under (see [`bundle`]).
pub const CHANGES_REF: &str = "refs/amika/changes";

/// A local checkout, as `sandbox create` sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRepo {
    /// The working tree's top directory.
    pub root: PathBuf,
    /// What the workspace directory is called: the origin's last path segment without `.git`,
    /// else the top directory's name.
    pub name: String,
    /// The checked-out branch; `None` on a detached head.
    pub branch: Option<String>,
    /// `remote.origin.url`, if there is one (shown on the sandbox, never used to clone).
    pub origin_url: Option<String>,
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

fn run(mut cmd: Command, what: &str) -> Result<String> {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().with_context(|| {
        format!("cannot run git to {what}: is git installed? (apt-get install -y git)")
    })?;
    if !status.success() {
        bail!(
            "git could not {what}: {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).trim().to_string())
}

/// The repository `start` is in (walking up, as git does), or `None` outside any repository.
pub fn find(start: &Path) -> Result<Option<LocalRepo>> {
    let out = git(start)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .context(
            "cannot run git to find the repository: is git installed? (apt-get install -y git)",
        )?;
    if !out.status.success() {
        return Ok(None);
    }
    let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    describe(&root).map(Some)
}

/// Describe the repository whose top directory is `root`.
pub fn describe(root: &Path) -> Result<LocalRepo> {
    let mut cmd = git(root);
    cmd.args(["symbolic-ref", "-q", "--short", "HEAD"]);
    let branch = run(cmd, "read the current branch")
        .ok()
        .filter(|b| !b.is_empty());
    let mut cmd = git(root);
    cmd.args(["config", "--get", "remote.origin.url"]);
    let origin_url = run(cmd, "read the origin URL")
        .ok()
        .filter(|u| !u.is_empty());
    let name = origin_url
        .as_deref()
        .and_then(amika_types::repo_name_from_url)
        .or_else(|| {
            root.file_name()
                .map(|n| directory_name(&n.to_string_lossy()))
        })
        .unwrap_or_else(|| "workspace".into());
    Ok(LocalRepo {
        root: root.to_path_buf(),
        name,
        branch,
        origin_url,
    })
}

/// A checkout's directory name as a workspace directory name: letters, digits, `.`, `_` and
/// `-` kept, anything else `-`, at most 100 characters (the server's rule).
fn directory_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "workspace".into(),
        _ => cleaned,
    }
}

/// The origin URL as it may be shown on a sandbox: never a path on this machine (a local
/// path, `file://`), and never credentials (`https://user:token@host/...` loses `user:token@`;
/// `ssh://user:password@` keeps only the user, who is no secret there). `None` when nothing
/// shareable is left.
pub fn shareable_origin(url: &str) -> Option<String> {
    let url = url.trim();
    if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "https" | "http" | "ssh" | "git") {
            return None;
        }
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let authority = match authority.rsplit_once('@') {
            None => authority.to_string(),
            Some((userinfo, host)) if scheme == "ssh" => {
                let user = userinfo.split(':').next().unwrap_or("");
                if user.is_empty() {
                    host.to_string()
                } else {
                    format!("{user}@{host}")
                }
            }
            Some((_, host)) => host.to_string(),
        };
        if authority.is_empty() {
            return None;
        }
        return Some(format!("{scheme}://{authority}/{path}"));
    }
    // `user@host:path` (scp-like); anything else is a local path.
    let (host, _) = url.split_once(':')?;
    (host.contains('@') && !host.contains('/') && !url.chars().any(char::is_whitespace))
        .then(|| url.to_string())
}

/// Write a bundle of every branch and tag (and HEAD) of `repo` to `dest`. With `with_changes`,
/// the bundle also holds [`CHANGES_REF`]: a commit on top of HEAD whose tree is the working tree
/// as it is now (tracked changes, and untracked files that are not ignored). Returns whether
/// such a commit was added (false when the working tree is clean).
pub fn bundle(repo: &LocalRepo, dest: &Path, with_changes: bool) -> Result<bool> {
    let mut cmd = git(&repo.root);
    cmd.args(["rev-parse", "--verify", "-q", "HEAD"]);
    let head = run(cmd, "read HEAD").map_err(|_| {
        anyhow::anyhow!(
            "{} has no commit yet: commit something, or pass --no-git",
            repo.root.display()
        )
    })?;
    let changes = if with_changes {
        changes_commit(repo, &head)?
    } else {
        None
    };
    let mut cmd = git(&repo.root);
    cmd.args(["bundle", "create", "-q"])
        .arg(dest)
        .args(["HEAD", "--branches", "--tags"]);
    if changes.is_some() {
        cmd.arg(CHANGES_REF);
    }
    let made = run(cmd, "bundle the repository");
    if changes.is_some() {
        let mut cmd = git(&repo.root);
        cmd.args(["update-ref", "-d", CHANGES_REF]);
        run(cmd, "remove its temporary ref")?;
    }
    made?;
    Ok(changes.is_some())
}

/// A commit of the working tree on top of `head`, under [`CHANGES_REF`]; `None` when nothing
/// differs. Made with its own index file so the user's staging area stays as it was.
fn changes_commit(repo: &LocalRepo, head: &str) -> Result<Option<String>> {
    let scratch = tempfile::Builder::new()
        .prefix("amika-index-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let index = scratch.path().join("index");
    let with_index = |args: &[&str]| {
        let mut cmd = git(&repo.root);
        cmd.env("GIT_INDEX_FILE", &index).args(args);
        cmd
    };
    run(with_index(&["read-tree", head]), "read HEAD's tree")?;
    run(
        with_index(&["add", "-A", "--", "."]),
        "collect the working tree's changes",
    )?;
    let tree = run(with_index(&["write-tree"]), "write the working tree")?;
    let mut cmd = git(&repo.root);
    cmd.args(["rev-parse", &format!("{head}^{{tree}}")]);
    if run(cmd, "read HEAD's tree")? == tree {
        return Ok(None);
    }
    let mut cmd = git(&repo.root);
    cmd.args([
        "commit-tree",
        &tree,
        "-p",
        head,
        "-m",
        "amika: uncommitted changes",
    ])
    .env("GIT_AUTHOR_NAME", "amika")
    .env("GIT_AUTHOR_EMAIL", "amika@localhost")
    .env("GIT_COMMITTER_NAME", "amika")
    .env("GIT_COMMITTER_EMAIL", "amika@localhost");
    let commit = run(cmd, "record the working tree's changes")?;
    let mut cmd = git(&repo.root);
    cmd.args(["update-ref", CHANGES_REF, &commit]);
    run(cmd, "mark the changes")?;
    Ok(Some(commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) -> String {
        let mut cmd = git(dir);
        cmd.args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid");
        run(cmd, "test").unwrap()
    }

    fn repo() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("my-project");
        std::fs::create_dir(&root).unwrap();
        sh(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("a.txt"), "a\n").unwrap();
        std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
        sh(&root, &["add", "."]);
        sh(&root, &["commit", "-q", "-m", "one"]);
        tmp
    }

    #[test]
    fn found_from_a_subdirectory_with_its_name_and_branch() {
        let tmp = repo();
        let root = tmp.path().join("my-project");
        std::fs::create_dir(root.join("sub")).unwrap();
        let found = find(&root.join("sub")).unwrap().unwrap();
        assert_eq!(
            found.root.canonicalize().unwrap(),
            root.canonicalize().unwrap()
        );
        assert_eq!(found.name, "my-project");
        assert_eq!(found.branch.as_deref(), Some("main"));
        assert_eq!(found.origin_url, None);
        sh(
            &root,
            &[
                "remote",
                "add",
                "origin",
                "git@github.com:org/real-name.git",
            ],
        );
        assert_eq!(describe(&root).unwrap().name, "real-name");
        assert!(find(tmp.path()).unwrap().is_none());
    }

    #[test]
    fn origins_are_shared_without_credentials_or_local_paths() {
        for (url, shared) in [
            (
                "https://github.com/org/repo.git",
                Some("https://github.com/org/repo.git"),
            ),
            (
                "https://x-access-token:ghp_secret@github.com/org/repo.git",
                Some("https://github.com/org/repo.git"),
            ),
            (
                "https://ghp_tokenonly@github.com/org/repo",
                Some("https://github.com/org/repo"),
            ),
            ("http://u:p@host:8080/r", Some("http://host:8080/r")),
            (
                "ssh://git:pw@host/org/repo.git",
                Some("ssh://git@host/org/repo.git"),
            ),
            ("ssh://host/org/repo.git", Some("ssh://host/org/repo.git")),
            (
                "git@github.com:org/repo.git",
                Some("git@github.com:org/repo.git"),
            ),
            ("file:///srv/git/repo.git", None),
            ("/home/me/repos/bare.git", None),
            ("../other", None),
            ("C:/x", None),
        ] {
            assert_eq!(shareable_origin(url).as_deref(), shared, "{url}");
        }
    }

    #[test]
    fn odd_directory_names_become_usable_workspace_names() {
        assert_eq!(directory_name("my project (copy)"), "my-project--copy-");
        assert_eq!(directory_name("ok.name_1-x"), "ok.name_1-x");
        assert_eq!(directory_name("é"), "-");
        assert_eq!(directory_name(".."), "workspace");
        assert_eq!(directory_name(&"a".repeat(150)).len(), 100);
    }

    #[test]
    fn a_bundle_carries_history_and_with_changes_the_working_tree_leaving_the_repo_untouched() {
        let tmp = repo();
        let root = tmp.path().join("my-project");
        std::fs::write(root.join("a.txt"), "changed\n").unwrap();
        std::fs::write(root.join("new.txt"), "untracked\n").unwrap();
        std::fs::create_dir(root.join("target")).unwrap();
        std::fs::write(root.join("target/ignored.bin"), "x").unwrap();
        sh(&root, &["add", "a.txt"]); // something staged: must stay staged
        let status_before = sh(&root, &["status", "--porcelain"]);
        let local = describe(&root).unwrap();

        let plain = tmp.path().join("plain.bundle");
        assert!(!bundle(&local, &plain, false).unwrap());
        let with = tmp.path().join("with.bundle");
        assert!(bundle(&local, &with, true).unwrap());
        assert_eq!(sh(&root, &["status", "--porcelain"]), status_before);
        assert!(sh(&root, &["for-each-ref", CHANGES_REF]).is_empty());

        // A clone of the plain bundle has the committed file only.
        let c1 = tmp.path().join("c1");
        sh(
            tmp.path(),
            &["clone", "-q", plain.to_str().unwrap(), c1.to_str().unwrap()],
        );
        assert_eq!(std::fs::read_to_string(c1.join("a.txt")).unwrap(), "a\n");
        assert!(!c1.join("new.txt").exists());

        // The changes commit restores the working tree, ignored files excepted.
        let c2 = tmp.path().join("c2");
        sh(
            tmp.path(),
            &["clone", "-q", with.to_str().unwrap(), c2.to_str().unwrap()],
        );
        sh(
            &c2,
            &[
                "fetch",
                "-q",
                with.to_str().unwrap(),
                &format!("{CHANGES_REF}:{CHANGES_REF}"),
            ],
        );
        sh(
            &c2,
            &["restore", "--source", CHANGES_REF, "--worktree", "--", "."],
        );
        assert_eq!(
            std::fs::read_to_string(c2.join("a.txt")).unwrap(),
            "changed\n"
        );
        assert_eq!(
            std::fs::read_to_string(c2.join("new.txt")).unwrap(),
            "untracked\n"
        );
        assert!(!c2.join("target").exists());
        assert_eq!(sh(&c2, &["symbolic-ref", "--short", "HEAD"]), "main");
    }

    #[test]
    fn a_clean_tree_adds_no_changes_commit_and_an_empty_repo_is_a_clear_error() {
        let tmp = repo();
        let root = tmp.path().join("my-project");
        let local = describe(&root).unwrap();
        assert!(!bundle(&local, &tmp.path().join("b"), true).unwrap());

        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        sh(&empty, &["init", "-q"]);
        let e = bundle(&describe(&empty).unwrap(), &tmp.path().join("e"), false).unwrap_err();
        assert!(e.to_string().contains("has no commit yet"), "{e}");
    }
}
