//! The streamed answers of the API, read as they arrive however the body is cut into chunks:
//! newline-delimited [`ExecFrame`]s (exec output, a setup log) and server-sent
//! [`AgentStreamEvent`]s (a streamed agent send).

use std::fmt;
use std::pin::Pin;

use amika_types::{AgentStreamEvent, ExecFrame};
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

/// A streamed agent send: its server-sent events (`status`, `delta`s, then `done` or `error`),
/// read as they arrive. Dropping it closes the connection, which stops the agent of a send
/// started by [`Client::agent_send_stream`](crate::Client::agent_send_stream).
pub struct AgentEventStream {
    bytes: ByteStream,
    url: String,
    buffer: Vec<u8>,
    /// The `data:` lines of the event being read.
    data: Vec<u8>,
    done: bool,
}

impl fmt::Debug for AgentEventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentEventStream")
            .field("url", &self.url)
            .field("done", &self.done)
            .finish()
    }
}

impl AgentEventStream {
    pub(crate) fn new(response: Response, url: String) -> Self {
        let bytes = response
            .bytes_stream()
            .map(|chunk| chunk.map(|b| b.to_vec()));
        AgentEventStream {
            bytes: Box::pin(bytes),
            url,
            buffer: Vec::new(),
            data: Vec::new(),
            done: false,
        }
    }

    /// The next event; `None` after the last (`done` or `error`) or when the body ends. A body
    /// that ends before a `done` or `error` is an error: the server or the connection went away.
    pub async fn next_event(&mut self) -> Option<Result<AgentStreamEvent, ClientError>> {
        if self.done {
            return None;
        }
        loop {
            while let Some(line) = take_line(&mut self.buffer) {
                if !line.is_empty() {
                    // `data: ...` (one or more), `event: ...` (the name, also in the data),
                    // `: ...` (a keep-alive comment), `id:`, `retry:`: only data matters.
                    if let Some(data) = line.strip_prefix(b"data:") {
                        if !self.data.is_empty() {
                            self.data.push(b'\n');
                        }
                        self.data
                            .extend_from_slice(data.strip_prefix(b" ").unwrap_or(data));
                    }
                    continue;
                }
                if self.data.is_empty() {
                    continue;
                }
                let data = std::mem::take(&mut self.data);
                let event = serde_json::from_slice::<AgentStreamEvent>(&data).map_err(|e| {
                    ClientError::Decode {
                        url: self.url.clone(),
                        reason: format!("bad event: {e}"),
                    }
                });
                self.done = event.as_ref().map_or(true, AgentStreamEvent::is_end);
                return Some(event);
            }
            match self.bytes.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => return Some(Err(self.broke_off(root_cause(&e)))),
                None => {
                    return Some(Err(
                        self.broke_off("it ended before the agent's answer".into())
                    ))
                }
            }
        }
    }

    fn broke_off(&mut self, reason: String) -> ClientError {
        self.done = true;
        ClientError::Http {
            url: self.url.clone(),
            reason: format!("the event stream broke off: {reason}"),
        }
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

    fn agent_stream(chunks: &[&str]) -> AgentEventStream {
        let chunks: Vec<Result<Vec<u8>, reqwest::Error>> =
            chunks.iter().map(|c| Ok(c.as_bytes().to_vec())).collect();
        AgentEventStream {
            bytes: Box::pin(futures::stream::iter(chunks)),
            url: "u".into(),
            buffer: Vec::new(),
            data: Vec::new(),
            done: false,
        }
    }

    #[tokio::test]
    async fn agent_events_are_read_across_chunk_boundaries_and_end_after_done() {
        let mut stream = agent_stream(&[
            ": keep-alive\n\nevent: delta\ndata: {\"event\":\"delta\",\"kind\":\"te",
            "xt\",\"text\":\"Hi\"}\r\n\r\nevent: done\ndata: {\"event\":\"done\",\"session_id\":\"s\",",
            "\"agent\":\"claude\",\"job_id\":\"j\",\"response\":\"Hi\",\"is_error\":false,",
            "\"is_new_session\":true,\"error_code\":null,\"exit_code\":0,\"duration_ms\":5}\n\n",
            "event: delta\ndata: {}\n\n",
        ]);
        match stream.next_event().await {
            Some(Ok(AgentStreamEvent::Delta(d))) => assert_eq!(d.text, "Hi"),
            other => panic!("{other:?}"),
        }
        match stream.next_event().await {
            Some(Ok(AgentStreamEvent::Done(r))) => {
                assert_eq!((r.job_id.as_str(), r.exit_code), ("j", Some(0)))
            }
            other => panic!("{other:?}"),
        }
        assert!(stream.next_event().await.is_none(), "nothing after done");
    }

    #[tokio::test]
    async fn an_agent_stream_that_ends_before_its_answer_is_an_error() {
        let mut stream = agent_stream(&[
            "event: status\ndata: {\"event\":\"delta\",\"kind\":\"text\",\"text\":\"a\"}\n\n",
        ]);
        assert!(matches!(stream.next_event().await, Some(Ok(_))));
        let err = stream.next_event().await.unwrap().unwrap_err().to_string();
        assert!(
            err.contains("broke off") && err.contains("before the agent's answer"),
            "{err}"
        );
        assert!(stream.next_event().await.is_none());
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
