//! The snapshot endpoints (`/sandbox-snapshots`): list, create, get, scrub preview, delete.

use amika_types::{CreateSnapshotRequest, OkStatus, SandboxSnapshot, ScrubPreview, SnapshotList};
use reqwest::Method;

use crate::{encode_path_segment, Client, ClientError};

impl Client {
    /// `GET /sandbox-snapshots`, optionally of one source sandbox (its id or name).
    pub async fn list_snapshots(&self, source: Option<&str>) -> Result<SnapshotList, ClientError> {
        let path = match source {
            Some(s) => format!(
                "/sandbox-snapshots?source_sandbox_id={}",
                encode_path_segment(s)
            ),
            None => "/sandbox-snapshots".to_string(),
        };
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `POST /sandbox-snapshots` → 202, the snapshot `capturing`.
    pub async fn create_snapshot(
        &self,
        req: &CreateSnapshotRequest,
    ) -> Result<SandboxSnapshot, ClientError> {
        self.call(Method::POST, "/sandbox-snapshots", Some(req))
            .await
    }

    /// `GET /sandbox-snapshots/{ref}`.
    pub async fn get_snapshot(&self, r: &str) -> Result<SandboxSnapshot, ClientError> {
        let path = format!("/sandbox-snapshots/{}", encode_path_segment(r));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `GET /sandbox-snapshots/scrub-preview?sandbox=REF`.
    pub async fn scrub_preview(&self, sandbox: &str) -> Result<ScrubPreview, ClientError> {
        let path = format!(
            "/sandbox-snapshots/scrub-preview?sandbox={}",
            encode_path_segment(sandbox)
        );
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `DELETE /sandbox-snapshots/{ref}`.
    pub async fn delete_snapshot(&self, r: &str) -> Result<OkStatus, ClientError> {
        let path = format!("/sandbox-snapshots/{}", encode_path_segment(r));
        self.call(Method::DELETE, &path, None::<&()>).await
    }
}
