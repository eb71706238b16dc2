//! A sandbox's repository, made ready on the host before the sandbox first starts (DESIGN §11):
//! cloned (or received as a bundle) into `<root>/.staging/<id>/<repo-name>`, its
//! `.amika/config.toml` read, and moved into the sandbox's `~/workspace` by the start, once the
//! sandbox's directory exists (a warm sandbox's is renamed into place, so the clone cannot be
//! made there beforehand). `remove` discards whatever is still staged.
//!
//! Files are owned by the server's user, which the sandbox's user namespace maps to the sandbox
//! user: the repository is the agent's to change.

use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use amika_types::check_repo_name;

use super::git::{self, CloneSpec};
use super::{check_id, LocalProvider};
use crate::{ProviderError, Result, StagedWorkspace, WorkspaceSpec};

/// Staged repositories live in `<root>/.staging/<id>/` (not a sandbox id: ids never start with
/// `.`).
const STAGING_DIR: &str = ".staging";

/// Where a repository keeps its configuration, relative to its root.
pub const REPO_CONFIG_PATH: &str = ".amika/config.toml";

/// Largest `.amika/config.toml` read: a config is a few lines; anything bigger is a mistake.
pub const MAX_REPO_CONFIG_BYTES: u64 = 64 * 1024;

impl LocalProvider {
    fn staging_dir(&self, id: &str) -> PathBuf {
        self.root_dir.join(STAGING_DIR).join(id)
    }

    pub(super) async fn stage(
        &self,
        id: &str,
        spec: &WorkspaceSpec<'_>,
    ) -> Result<StagedWorkspace> {
        check_id(id).map_err(|e| ProviderError::Repository(e.to_string()))?;
        check_repo_name(spec.repo_name).map_err(ProviderError::Repository)?;
        let staging = self.staging_dir(id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&staging)?;
        let dest = staging.join(spec.repo_name);
        let staged = async {
            let cloned = git::clone(&CloneSpec {
                url: spec.url,
                bundle: spec.bundle,
                branch: spec.branch,
                new_branch: spec.new_branch,
                token: spec.token,
                dest: &dest,
                scratch: &staging,
                timeout: spec.timeout,
            })
            .await
            .map_err(|e| match e {
                git::GitError::Io(e) => ProviderError::Io(e),
                e => ProviderError::Repository(e.to_string()),
            })?;
            Ok(StagedWorkspace {
                branch: cloned.branch,
                commit: cloned.commit,
                repo_config: read_repo_config(&dest)?,
            })
        }
        .await;
        if staged.is_err() {
            self.discard_staged(id);
        }
        staged
    }

    /// Move what is staged for sandbox `id` into its workspace (`dir` is the sandbox's
    /// directory, already made by the start). Nothing staged: nothing to do.
    pub(super) fn move_staged(&self, id: &str, dir: &Path) -> io::Result<()> {
        let staging = self.staging_dir(id);
        let entries = match std::fs::read_dir(&staging) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let workspace = dir.join("home").join("workspace");
        // A fresh sandbox's workspace: a real directory made by `prepare_dirs`, never a link.
        if !std::fs::symlink_metadata(&workspace)?.is_dir() {
            return Err(io::Error::other(
                "the sandbox's workspace is not a directory",
            ));
        }
        for entry in entries {
            let entry = entry?;
            std::fs::rename(entry.path(), workspace.join(entry.file_name()))?;
        }
        std::fs::remove_dir(&staging)
    }

    /// Ids with something staged.
    pub(super) fn staged_ids(&self) -> Vec<String> {
        let entries = std::fs::read_dir(self.root_dir.join(STAGING_DIR));
        entries
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|id| check_id(id).is_ok())
            .collect()
    }

    /// Remove what is staged for sandbox `id`, if anything.
    pub(super) fn discard_staged(&self, id: &str) {
        match std::fs::remove_dir_all(self.staging_dir(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(sandbox = id, error = %e, "cannot remove a staged workspace"),
        }
    }
}

/// The repository's `.amika/config.toml`, if it has one: read without following a symbolic link
/// anywhere on the way (a repository could point it at any file the server can read), and at
/// most [`MAX_REPO_CONFIG_BYTES`].
fn read_repo_config(repo: &Path) -> Result<Option<Vec<u8>>> {
    let dir = repo.join(".amika");
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() => {
            return Err(ProviderError::RepoConfig(
                ".amika is a symbolic link: it must be a directory in the repository".into(),
            ))
        }
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let path = repo.join(REPO_CONFIG_PATH);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // ELOOP: the file is a symbolic link.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ProviderError::RepoConfig(format!(
                "{REPO_CONFIG_PATH} is a symbolic link: it must be a file in the repository"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if !file.metadata()?.is_file() {
        return Err(ProviderError::RepoConfig(format!(
            "{REPO_CONFIG_PATH} is not a regular file"
        )));
    }
    let mut text = Vec::new();
    file.take(MAX_REPO_CONFIG_BYTES + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > MAX_REPO_CONFIG_BYTES {
        return Err(ProviderError::RepoConfig(format!(
            "{REPO_CONFIG_PATH} is larger than {MAX_REPO_CONFIG_BYTES} bytes"
        )));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_behind_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        std::fs::create_dir(repo.join(".amika")).unwrap();
        std::fs::write(tmp.path().join("outside"), "[env]\nA = \"1\"\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), repo.join(REPO_CONFIG_PATH))
            .unwrap();
        let err = read_repo_config(repo).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");

        let repo2 = tmp.path().join("r2");
        std::fs::create_dir(&repo2).unwrap();
        std::os::unix::fs::symlink(repo.join(".amika"), repo2.join(".amika")).unwrap();
        let err = read_repo_config(&repo2).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn a_config_is_read_and_a_missing_one_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_repo_config(tmp.path()).unwrap(), None);
        std::fs::create_dir(tmp.path().join(".amika")).unwrap();
        assert_eq!(read_repo_config(tmp.path()).unwrap(), None);
        std::fs::write(tmp.path().join(REPO_CONFIG_PATH), "[env]\n").unwrap();
        assert_eq!(
            read_repo_config(tmp.path()).unwrap().as_deref(),
            Some(&b"[env]\n"[..])
        );
        std::fs::write(
            tmp.path().join(REPO_CONFIG_PATH),
            vec![b'#'; MAX_REPO_CONFIG_BYTES as usize + 1],
        )
        .unwrap();
        assert!(read_repo_config(tmp.path()).is_err());
    }
}
