//! SSH access: mint and revoke a sandbox's SSH token, and the server's SSH endpoint.

use amika_types::{RevokeSshRequest, SshAccess, SshAccessRequest, SshEndpoint};
use reqwest::Method;

use crate::{encode_path_segment, Client, ClientError};

impl Client {
    /// `POST /sandboxes/{id}/ssh`: a new SSH token for the sandbox (`ttl_secs`: its lifetime).
    pub async fn create_ssh_access(
        &self,
        id_or_name: &str,
        ttl_secs: Option<u64>,
    ) -> Result<SshAccess, ClientError> {
        let path = format!("/sandboxes/{}/ssh", encode_path_segment(id_or_name));
        let req = SshAccessRequest { ttl_secs };
        self.call(Method::POST, &path, Some(&req)).await
    }

    /// `DELETE /sandboxes/{id}/ssh` with the token to revoke.
    pub async fn revoke_ssh_access(
        &self,
        id_or_name: &str,
        token: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/sandboxes/{}/ssh", encode_path_segment(id_or_name));
        let req = RevokeSshRequest {
            token: token.to_owned(),
        };
        self.call_no_content(Method::DELETE, &path, Some(&req))
            .await
    }

    /// `GET /ssh`: whether the server has an SSH endpoint, where, and its host key.
    pub async fn ssh_endpoint(&self) -> Result<SshEndpoint, ClientError> {
        self.call(Method::GET, "/ssh", None::<&()>).await
    }
}
