//! `POST /secret-batches`: many secrets, all or nothing, with the body streamed in chunks so
//! that a caller can show how much of a large push has been sent.

use std::time::Duration;

use amika_types::{SecretBatchRequest, SecretBatchResponse};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;

use crate::{decode, Client, ClientError};

/// How much of the body one progress step covers.
const CHUNK: usize = 64 * 1024;
/// A batch of many thousand secrets is sealed and written in one transaction: allow it time.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10 * 60);

impl Client {
    /// `POST /secret-batches`: stores every secret of `req` or none. `on_sent(sent, total)` is
    /// called as the body's bytes are handed to the connection; the answer comes after the
    /// server has written the whole batch.
    pub async fn push_secrets(
        &self,
        req: &SecretBatchRequest,
        on_sent: impl Fn(usize, usize) + Send + Sync + 'static,
    ) -> Result<SecretBatchResponse, ClientError> {
        let url = self.api_url("/secret-batches");
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Decode {
            url: url.clone(),
            reason: format!("cannot encode the batch: {e}"),
        })?;
        let total = body.len();
        let chunks: Vec<Vec<u8>> = body.chunks(CHUNK).map(<[u8]>::to_vec).collect();
        drop(body);
        let mut sent = 0;
        let stream = futures::stream::iter(chunks.into_iter().map(move |chunk| {
            sent += chunk.len();
            on_sent(sent, total);
            Ok::<_, std::io::Error>(chunk)
        }));
        let builder = self
            .request(Method::POST, &url)
            .timeout(BATCH_TIMEOUT)
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(stream));
        let response = self.send(builder, &url).await?;
        decode(response, &url).await
    }
}
