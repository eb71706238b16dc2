//! The login grace time (OpenSSH's `LoginGraceTime`): a connection that has not logged in
//! within `ServerConfig::ssh_login_grace` is closed, whatever it is stuck in (sending its
//! version line a byte a minute, the key exchange, authentication). The SSH library has no
//! such deadline, so it is kept by the stream the library reads from: once the deadline passes
//! without a login, every read fails.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A stream whose reads fail once its deadline passes, unless `logged_in` was set first.
pub(super) struct GraceStream<S> {
    inner: S,
    logged_in: Arc<AtomicBool>,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> GraceStream<S> {
    pub(super) fn new(inner: S, grace: Duration, logged_in: Arc<AtomicBool>) -> Self {
        GraceStream {
            inner,
            logged_in,
            deadline: Some(Box::pin(tokio::time::sleep(grace))),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GraceStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.logged_in.load(Ordering::Acquire) {
            self.deadline = None;
        }
        if let Some(deadline) = self.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the SSH client did not log in within the login grace time",
                )));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GraceStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_fail_after_the_grace_time_unless_logged_in() {
        let (client, server) = tokio::io::duplex(64);
        let flag = Arc::new(AtomicBool::new(false));
        let mut stalled = GraceStream::new(server, Duration::from_millis(50), flag.clone());
        let mut buf = [0u8; 8];
        let err = stalled.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);

        let (mut client, server) = tokio::io::duplex(64);
        let flag = Arc::new(AtomicBool::new(false));
        let mut slow = GraceStream::new(server, Duration::from_millis(50), flag.clone());
        client.write_all(b"hi").await.unwrap();
        assert_eq!(slow.read(&mut buf).await.unwrap(), 2);
        flag.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(80)).await;
        client.write_all(b"later").await.unwrap();
        assert_eq!(
            slow.read(&mut buf).await.unwrap(),
            5,
            "logged in: no deadline"
        );
    }
}
