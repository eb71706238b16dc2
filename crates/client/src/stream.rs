//! The streamed answers of the API (exec output, a setup log): newline-delimited
//! [`ExecFrame`]s read as they arrive, however the body is cut into chunks.

use std::fmt;
use std::pin::Pin;

use amika_types::ExecFrame;
use futures::{Stream, StreamExt};
use reqwest::Response;

use crate::{root_cause, ClientError};

/// Chunks are copied out of reqwest's `Bytes` so this crate needs no direct `bytes` dependency;
/// exec output is small next to the cost of the request.
type ByteStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send>>;

/// A streamed answer (an exec's, a setup log's): newline-delimited [`ExecFrame`]s, read as
/// they arrive.
pub struct ExecStream {
    bytes: ByteStream,
    url: String,
    buffer: Vec<u8>,
    done: bool,
}

impl fmt::Debug for ExecStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecStream")
            .field("url", &self.url)
            .field("buffered", &self.buffer.len())
            .field("done", &self.done)
            .finish()
    }
}

impl ExecStream {
    pub(crate) fn new(response: Response, url: String) -> Self {
        let bytes = response
            .bytes_stream()
            .map(|chunk| chunk.map(|b| b.to_vec()));
        ExecStream {
            bytes: Box::pin(bytes),
            url,
            buffer: Vec::new(),
            done: false,
        }
    }

    /// The next frame, `None` once the body has ended. Blank lines are skipped; a body that ends
    /// without a final newline still yields its last frame.
    pub async fn next_frame(&mut self) -> Option<Result<ExecFrame, ClientError>> {
        loop {
            if let Some(line) = take_line(&mut self.buffer) {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(self.parse(&line));
            }
            if self.done {
                if self.buffer.iter().all(u8::is_ascii_whitespace) {
                    self.buffer.clear();
                    return None;
                }
                let rest = std::mem::take(&mut self.buffer);
                return Some(self.parse(&rest));
            }
            match self.bytes.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.done = true;
                    self.buffer.clear();
                    return Some(Err(ClientError::Http {
                        url: self.url.clone(),
                        reason: format!("the stream broke off: {}", root_cause(&e)),
                    }));
                }
                None => self.done = true,
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<ExecFrame, ClientError> {
        serde_json::from_slice(line).map_err(|e| ClientError::Decode {
            url: self.url.clone(),
            reason: format!("bad frame: {e}"),
        })
    }

    /// The frames as a `Stream`, for callers that prefer combinators.
    pub fn into_stream(self) -> impl Stream<Item = Result<ExecFrame, ClientError>> + Send {
        futures::stream::unfold(self, |mut s| async move {
            let frame = s.next_frame().await?;
            Some((frame, s))
        })
    }
}

/// Removes and returns the first `\n`-terminated line of `buffer` (without the newline).
fn take_line(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = buffer.iter().position(|&b| b == b'\n')?;
    let mut line: Vec<u8> = buffer.drain(..=end).collect();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_on_newlines_and_crlf() {
        let mut buf = b"{\"a\":1}\r\n{\"b\":2}\npartial".to_vec();
        assert_eq!(take_line(&mut buf).unwrap(), b"{\"a\":1}");
        assert_eq!(take_line(&mut buf).unwrap(), b"{\"b\":2}");
        assert_eq!(take_line(&mut buf), None);
        assert_eq!(buf, b"partial");
    }

    #[tokio::test]
    async fn exec_frames_are_read_across_chunk_boundaries() {
        let chunks: Vec<Result<Vec<u8>, reqwest::Error>> = vec![
            Ok(b"{\"stream\":\"stdout\",\"da".to_vec()),
            Ok(b"ta\":\"hi\\n\"}\n\n{\"stream\":\"stderr\",\"data\":\"e\"}\n".to_vec()),
            Ok(b"{\"stream\":\"exit\",\"code\":3}".to_vec()),
        ];
        let mut stream = ExecStream {
            bytes: Box::pin(futures::stream::iter(chunks)),
            url: "u".into(),
            buffer: Vec::new(),
            done: false,
        };
        let mut frames = Vec::new();
        while let Some(frame) = stream.next_frame().await {
            frames.push(frame.unwrap());
        }
        assert_eq!(
            frames,
            vec![
                ExecFrame::Stdout {
                    data: "hi\n".into()
                },
                ExecFrame::Stderr { data: "e".into() },
                ExecFrame::Exit { code: 3 },
            ]
        );
    }
}
