//! SSH access: mint and revoke a sandbox's SSH token, the server's SSH endpoint, and registered
//! public keys.

use amika_types::{
    RevokeSshRequest, SshAccess, SshAccessRequest, SshEndpoint, SshPublicKey, SshPublicKeyRequest,
};
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

    /// `GET /secrets/ssh-public-keys`: your registered public keys.
    pub async fn list_ssh_public_keys(&self) -> Result<Vec<SshPublicKey>, ClientError> {
        self.list_all("/secrets/ssh-public-keys").await
    }

    /// `POST /secrets/ssh-public-keys`: register a public key (one OpenSSH line).
    pub async fn create_ssh_public_key(
        &self,
        name: &str,
        public_key: &str,
    ) -> Result<SshPublicKey, ClientError> {
        let req = SshPublicKeyRequest {
            name: name.to_owned(),
            public_key: public_key.to_owned(),
        };
        self.call(Method::POST, "/secrets/ssh-public-keys", Some(&req))
            .await
    }

    /// `DELETE /secrets/ssh-public-keys/{id}` (an id or a name).
    pub async fn delete_ssh_public_key(&self, id_or_name: &str) -> Result<(), ClientError> {
        let path = format!(
            "/secrets/ssh-public-keys/{}",
            encode_path_segment(id_or_name)
        );
        self.call_no_content(Method::DELETE, &path, None::<&()>)
            .await
    }
}
