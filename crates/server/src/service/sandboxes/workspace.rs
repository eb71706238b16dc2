//! A sandbox's repository (DESIGN §11): which one a create asks for (a URL the server clones, or
//! a bundle the client uploaded), the token a private clone needs, the clone itself, and the
//! `.amika/config.toml` read from it before anything is resolved. Also the uploads a client
//! sends a local repository in, and the names generated for unnamed sandboxes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use amika_sandbox::{ProviderError, SecretBytes, WorkspaceSpec};

use super::injection::secret_bytes;
use amika_store::RepoRecord;
use amika_types::{self as t, check_repo_name, repo_name_from_url, AgentKind, ErrorCode};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::service::repo_config::{self, RepoConfig};
use crate::service::resolver::pick_default;
use crate::service::{new_id, now, Caller, Result, Service, ServiceError};

/// A clone or unbundling still running after this is killed.
const CLONE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long an upload waits for the create that uses it.
const UPLOAD_TTL: chrono::Duration = chrono::Duration::hours(1);

/// The repository a create asked for, checked, with its token.
pub(super) struct WorkspacePlan {
    repo_name: String,
    /// What to clone, or (with `upload`) the origin to record; `""` for none.
    url: String,
    upload: Option<PathBuf>,
    branch: Option<String>,
    new_branch: Option<String>,
    token: Option<SecretBytes>,
}

/// A repository staged for a sandbox, and its config.
pub(super) struct Staged {
    pub(super) repo: RepoRecord,
    /// The parsed `.amika/config.toml` and its text (for error lines), if the repository has one.
    pub(super) config: Option<(RepoConfig, String)>,
}

/// What the server keeps beside an upload's bundle.
#[derive(Debug, Serialize, Deserialize)]
struct UploadMeta {
    user_id: String,
    repo_name: String,
    origin_url: Option<String>,
    size_bytes: u64,
    expires_at: DateTime<Utc>,
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split('/').next()?;
    Some(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
}

impl WorkspacePlan {
    /// The repository's directory name under `~/workspace`.
    pub(super) fn repo_name(&self) -> &str {
        &self.repo_name
    }

    /// Take the upload for the create of sandbox `id` alone: its bundle is renamed at once, so
    /// that a second create naming the same upload finds nothing (a preview claims nothing).
    pub(super) fn claim_upload(&mut self, id: &str) -> Result<()> {
        let Some(path) = &self.upload else {
            return Ok(());
        };
        let claimed = path.with_extension(format!("claimed-{id}"));
        std::fs::rename(path, &claimed).map_err(|_| {
            ServiceError::unprocessable(
                ErrorCode::NotFound,
                "the workspace upload was taken by another create meanwhile: upload it again",
            )
            .at("workspace_upload")
        })?;
        let _ = std::fs::remove_file(path.with_extension("json"));
        self.upload = Some(claimed);
        Ok(())
    }

    /// Remove the upload a create has claimed and staged.
    pub(super) fn consume_upload(&self) {
        if let Some(path) = &self.upload {
            remove_upload(path);
        }
    }
}

impl Service {
    fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
    }

    /// Which repository `req` asks for, checked, and the clone's token; `None`: an empty
    /// workspace. Touches nothing.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn plan_workspace(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
    ) -> Result<Option<WorkspacePlan>> {
        let url = req.repo_url.as_deref().unwrap_or("").trim();
        let branches = || -> Result<(Option<String>, Option<String>)> {
            for (field, b) in [
                ("branch", &req.branch),
                ("new_branch_name", &req.new_branch_name),
            ] {
                if let Some(b) = b {
                    amika_sandbox::local::git::check_branch(b)
                        .map_err(|e| ServiceError::bad_request(e.to_string()).at(field))?;
                }
            }
            Ok((req.branch.clone(), req.new_branch_name.clone()))
        };
        if let Some(id) = &req.workspace_upload {
            if !url.is_empty() {
                return Err(ServiceError::bad_request(
                    "repo_url and workspace_upload are mutually exclusive: give one repository",
                )
                .at("workspace_upload"));
            }
            let (branch, new_branch) = branches()?;
            let (path, meta) = self.find_upload(caller, id).await?;
            return Ok(Some(WorkspacePlan {
                repo_name: meta.repo_name,
                url: meta.origin_url.unwrap_or_default(),
                upload: Some(path),
                branch,
                new_branch,
                token: None,
            }));
        }
        if url.is_empty() {
            for (field, set) in [
                ("branch", req.branch.is_some()),
                ("new_branch_name", req.new_branch_name.is_some()),
                ("git_credential", req.git_credential.is_some()),
            ] {
                if set {
                    return Err(ServiceError::bad_request(format!(
                        "{field} needs a repository: give repo_url (or workspace_upload)"
                    ))
                    .at(field));
                }
            }
            return Ok(None);
        }
        amika_sandbox::local::git::check_url(url)
            .map_err(|e| ServiceError::bad_request(e.to_string()).at("repo_url"))?;
        if let Some(path) = url.strip_prefix("file://") {
            self.check_file_url(caller, Path::new(path))?;
        }
        let repo_name = repo_name_from_url(url).ok_or_else(|| {
            ServiceError::bad_request(format!(
                "cannot tell the repository's name from {url:?}: expected a URL ending in the repository's name"
            ))
            .at("repo_url")
        })?;
        let (branch, new_branch) = branches()?;
        let token = self.clone_token(caller, req, url).await?;
        Ok(Some(WorkspacePlan {
            repo_name,
            url: url.to_string(),
            upload: None,
            branch,
            new_branch,
            token,
        }))
    }

    /// `file://` reads the server's own disk: admins only, and never the data dir (other
    /// users' workspaces and uploads live there).
    fn check_file_url(&self, caller: &Caller, path: &Path) -> Result<()> {
        if !caller.is_admin {
            return Err(ServiceError::Forbidden(
                "file:// repositories are on the server's own disk: only an admin may clone them"
                    .into(),
            ));
        }
        let data_dir = self
            .config
            .data_dir
            .canonicalize()
            .unwrap_or_else(|_| self.config.data_dir.clone());
        let target = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if target.starts_with(&data_dir) {
            return Err(ServiceError::bad_request(
                "file:// must not point into the server's data dir",
            )
            .at("repo_url"));
        }
        Ok(())
    }

    /// The clone's token: the secret (or `github` credential) named by `git_credential`, else
    /// over HTTPS to one of the server's GitHub hosts the caller's default `github` credential.
    /// A token is never sent to a host the caller did not name it for.
    async fn clone_token(
        &self,
        caller: &Caller,
        req: &t::CreateSandboxRequest,
        url: &str,
    ) -> Result<Option<SecretBytes>> {
        let host = host_of(url);
        if let Some(name) = &req.git_credential {
            if host.is_none() {
                return Err(ServiceError::bad_request(
                    "git_credential is a token for http(s) repositories: an ssh or git URL does not use it",
                )
                .at("git_credential"));
            }
            let secret = self
                .store
                .find_visible_secrets(&caller.org_id, &caller.user_id, std::slice::from_ref(name))
                .await?;
            if let Some(row) = secret.first() {
                let value = self.open_secret(row)?;
                return Ok(Some(secret_bytes(&value)));
            }
            let credentials = self
                .store
                .list_visible_credentials(&caller.org_id, &caller.user_id, AgentKind::Github)
                .await?;
            let found = credentials.iter().find(|c| &c.name == name).ok_or_else(|| {
                ServiceError::unprocessable(
                    ErrorCode::SecretNotFound,
                    format!("git_credential {name:?}: no secret or github credential of that name (push one with `amika secret github push --name {name} --type api_key --value -`)"),
                )
                .at("git_credential")
            })?;
            let value = self.open_credential(found)?;
            return Ok(Some(secret_bytes(&value)));
        }
        let Some(host) = host else { return Ok(None) };
        if !url.starts_with("https://") || !self.config.github_hosts.iter().any(|h| h == host) {
            return Ok(None);
        }
        let rows = self
            .store
            .list_visible_credentials(&caller.org_id, &caller.user_id, AgentKind::Github)
            .await?;
        let candidates: Vec<_> = rows.iter().map(super::create::candidate).collect();
        let Some(pick) = pick_default(&candidates, Utc::now()) else {
            return Ok(None);
        };
        let row = rows
            .iter()
            .find(|r| r.id == pick.id)
            .ok_or_else(|| ServiceError::internal("picked a credential it did not read"))?;
        let value = self.open_credential(row)?;
        Ok(Some(secret_bytes(&value)))
    }

    /// Clone (or unbundle) the planned repository for sandbox `id` and read its config. On an
    /// error nothing is left staged.
    pub(super) async fn stage_repository(&self, id: &str, plan: &WorkspacePlan) -> Result<Staged> {
        let staged = self
            .provider
            .stage_workspace(
                id,
                &WorkspaceSpec {
                    repo_name: &plan.repo_name,
                    url: &plan.url,
                    bundle: plan.upload.as_deref(),
                    branch: plan.branch.as_deref(),
                    new_branch: plan.new_branch.as_deref(),
                    token: plan.token.as_ref(),
                    timeout: CLONE_TIMEOUT,
                },
            )
            .await
            .map_err(|e| match e {
                ProviderError::Repository(message) => ServiceError::unprocessable(
                    ErrorCode::RepositoryUnavailable,
                    format!("the repository could not be cloned: {message}"),
                )
                .at(if plan.upload.is_some() {
                    "workspace_upload"
                } else {
                    "repo_url"
                }),
                ProviderError::RepoConfig(message) => {
                    ServiceError::unprocessable(ErrorCode::InvalidRepoConfig, message)
                        .at(repo_config::PATH)
                }
                e => e.into(),
            })?;
        let config = match staged.repo_config {
            None => None,
            Some(bytes) => {
                let parsed = String::from_utf8(bytes)
                    .map_err(|_| repo_config::RepoConfigError {
                        line: None,
                        message: "the file is not UTF-8 text".into(),
                    })
                    .and_then(|text| repo_config::parse(&text).map(|c| (c, text)));
                match parsed {
                    Ok(config) => Some(config),
                    Err(e) => {
                        self.discard_staged(id).await;
                        return Err(ServiceError::unprocessable(
                            ErrorCode::InvalidRepoConfig,
                            e.to_string(),
                        )
                        .at(repo_config::PATH));
                    }
                }
            }
        };
        Ok(Staged {
            repo: RepoRecord {
                url: (!plan.url.is_empty()).then(|| plan.url.clone()),
                name: plan.repo_name.clone(),
                branch: staged.branch,
                commit: staged.commit,
            },
            config,
        })
    }

    /// Remove whatever was staged for a sandbox that will not be created.
    pub(super) async fn discard_staged(&self, id: &str) {
        if let Err(e) = self.provider.remove(id).await {
            tracing::warn!(sandbox = id, error = %e, "cannot remove a staged repository");
        }
    }

    /// Keep a repository a client sends (a `git bundle`), streamed to the data dir, for the
    /// create that names it within the hour.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn create_workspace_upload<S, E>(
        &self,
        caller: &Caller,
        repo_name: &str,
        origin_url: Option<&str>,
        body: S,
    ) -> Result<t::WorkspaceUpload>
    where
        S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        check_repo_name(repo_name).map_err(|e| ServiceError::bad_request(e).at("repo_name"))?;
        if let Some(url) = origin_url {
            amika_sandbox::local::git::check_url(url)
                .map_err(|e| ServiceError::bad_request(e.to_string()).at("origin_url"))?;
        }
        let dir = self.uploads_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(ServiceError::internal)?;
        self.sweep_uploads(&dir).await;
        let id = new_id("upl");
        let part = dir.join(format!("{id}.part"));
        let written = write_limited(&part, body, self.config.max_upload_bytes).await;
        let size_bytes = match written {
            Ok(n) => n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let meta = UploadMeta {
            user_id: caller.user_id.clone(),
            repo_name: repo_name.to_string(),
            origin_url: origin_url.map(str::to_string),
            size_bytes,
            expires_at: now() + UPLOAD_TTL,
        };
        let json = serde_json::to_vec(&meta).map_err(ServiceError::internal)?;
        let bundle = dir.join(format!("{id}.bundle"));
        let stored = async {
            tokio::fs::write(dir.join(format!("{id}.json")), json).await?;
            tokio::fs::rename(&part, &bundle).await
        }
        .await;
        if let Err(e) = stored {
            let _ = tokio::fs::remove_file(&part).await;
            remove_upload(&bundle);
            return Err(ServiceError::internal(e));
        }
        Ok(t::WorkspaceUpload {
            id,
            repo_name: meta.repo_name,
            origin_url: meta.origin_url,
            size_bytes,
            expires_at: meta.expires_at,
        })
    }

    /// The caller's upload `id`, not expired: its bundle's path and what was said of it.
    async fn find_upload(&self, caller: &Caller, id: &str) -> Result<(PathBuf, UploadMeta)> {
        let not_found = || {
            ServiceError::unprocessable(
                ErrorCode::NotFound,
                format!("workspace upload {id:?} not found: it expires an hour after it is sent, and goes with the create that uses it"),
            )
            .at("workspace_upload")
        };
        let valid = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(not_found());
        }
        let dir = self.uploads_dir();
        let meta: UploadMeta = tokio::fs::read(dir.join(format!("{id}.json")))
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(not_found)?;
        let bundle = dir.join(format!("{id}.bundle"));
        if meta.user_id != caller.user_id || meta.expires_at < now() || !bundle.is_file() {
            return Err(not_found());
        }
        Ok((bundle, meta))
    }

    /// Remove expired uploads (and, after an hour, parts of uploads that never finished and
    /// uploads claimed by a create that never finished).
    async fn sweep_uploads(&self, dir: &Path) {
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let expired = match path.extension().and_then(|e| e.to_str()) {
                Some("json") => tokio::fs::read(&path)
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<UploadMeta>(&b).ok())
                    .is_none_or(|m| m.expires_at < now()),
                // Unfinished uploads, and claimed ones of a create a crash interrupted.
                Some(ext) if ext == "part" || ext.starts_with("claimed-") => entry
                    .metadata()
                    .await
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600)),
                _ => false,
            };
            if expired {
                remove_upload(&path.with_extension("bundle"));
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
    }

    /// A readable name for an unnamed sandbox, unique among the caller's: the repository's name
    /// (or `sandbox`) and two words, e.g. `amika-brave-otter`.
    pub(super) async fn generate_name(
        &self,
        caller: &Caller,
        repo: Option<&str>,
    ) -> Result<String> {
        const ADJECTIVES: &[&str] = &[
            "brave", "calm", "clever", "eager", "gentle", "happy", "keen", "lively", "merry",
            "nimble", "proud", "quick", "quiet", "sharp", "steady", "sunny", "swift", "tidy",
            "witty", "bold",
        ];
        const NOUNS: &[&str] = &[
            "otter", "falcon", "badger", "heron", "lynx", "marten", "owl", "panda", "raven",
            "robin", "seal", "sparrow", "tiger", "walrus", "wren", "yak", "zebra", "fox", "hare",
            "crane",
        ];
        // Lowercase words joined by '-', like the two that follow: `My_Repo.v2` → `my-repo-v2`.
        let mut base = String::new();
        for c in repo.unwrap_or("sandbox").chars().take(40) {
            if c.is_ascii_alphanumeric() {
                base.push(c.to_ascii_lowercase());
            } else if !base.is_empty() && !base.ends_with('-') {
                base.push('-');
            }
        }
        let base = base.trim_end_matches('-');
        let base = if base.is_empty() { "sandbox" } else { base };
        for attempt in 0..20u32 {
            let r = uuid::Uuid::new_v4().as_u128();
            let mut name = format!(
                "{base}-{}-{}",
                ADJECTIVES[(r % ADJECTIVES.len() as u128) as usize],
                NOUNS[((r >> 16) % NOUNS.len() as u128) as usize]
            );
            if attempt >= 10 {
                name.push_str(&format!("-{}", (r >> 32) % 1000));
            }
            match self
                .store
                .get_sandbox_head_by_name(&caller.user_id, &name)
                .await
            {
                Err(amika_store::StoreError::NotFound(_)) => return Ok(name),
                Err(e) => return Err(e.into()),
                Ok(_) => continue,
            }
        }
        Err(ServiceError::conflict(
            ErrorCode::SandboxExists,
            "could not generate a free sandbox name: give one with name",
        )
        .at("name"))
    }
}

fn remove_upload(bundle: &Path) {
    let _ = std::fs::remove_file(bundle);
    let _ = std::fs::remove_file(bundle.with_extension("json"));
}

/// Stream `body` into a new file at `path`, refusing more than `max` bytes (413).
async fn write_limited<S, E>(path: &Path, mut body: S, max: u64) -> Result<u64>
where
    S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(ServiceError::internal)?;
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| ServiceError::bad_request(format!("the upload was interrupted: {e}")))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(ServiceError::PayloadTooLarge(format!(
                "the upload is larger than this server accepts ({max} bytes): raise max_upload_bytes in the server config"
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(ServiceError::internal)?;
    }
    file.sync_all().await.map_err(ServiceError::internal)?;
    if total == 0 {
        return Err(ServiceError::bad_request(
            "the upload is empty: expected a git bundle",
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_http_urls_only() {
        assert_eq!(host_of("https://github.com/o/r"), Some("github.com"));
        assert_eq!(
            host_of("http://127.0.0.1:8080/r.git"),
            Some("127.0.0.1:8080")
        );
        assert_eq!(host_of("git@github.com:o/r"), None);
        assert_eq!(host_of("ssh://git@github.com/o/r"), None);
    }
}
