//! The end of a command's output. Once the command has exited, its output pipes are read to
//! their end — but a background process it left may hold them open for ever, so whoever relays
//! the output waits a grace period and then calls [`EndOutput::now`]: from then on each pipe
//! gives exactly what it holds at that moment (written before the exit, or since) and then its
//! end. Nothing the command wrote is lost to a relay that ran late or a reader that was behind
//! (the soak benchmark saw `echo` answer with no output when the rest was simply dropped).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, ReadBuf};

/// One pipe's "end now" flag, and the task reading it.
#[derive(Debug, Default)]
struct Flag {
    set: AtomicBool,
    reader: AtomicWaker,
}

/// Ends the output of one command (every pipe made by [`EndOutput::pipe`]).
#[derive(Debug, Clone, Default)]
pub struct EndOutput(Vec<Arc<Flag>>);

impl EndOutput {
    /// From now on each pipe gives what it holds and then its end.
    pub fn now(&self) {
        for flag in &self.0 {
            flag.set.store(true, Ordering::SeqCst);
            flag.reader.wake();
        }
    }

    /// Wait up to `grace` for `drained` (the relay of every pipe to its end); if it is not done
    /// by then — a background process holds a pipe open, or the relay is behind — end the pipes
    /// ([`Self::now`]) and wait for the rest of what they held. Whether they had to be ended.
    pub async fn drain_within(
        &self,
        grace: Duration,
        drained: impl std::future::Future<Output = ()>,
    ) -> bool {
        tokio::pin!(drained);
        if tokio::time::timeout(grace, &mut drained).await.is_ok() {
            return false;
        }
        self.now();
        drained.await;
        true
    }

    /// `inner` as a pipe this ends.
    pub(crate) fn pipe<R>(&mut self, inner: R) -> Draining<R> {
        let flag = Arc::new(Flag::default());
        self.0.push(flag.clone());
        Draining {
            inner,
            flag,
            left: None,
        }
    }
}

/// A command's output pipe (or terminal) that [`EndOutput`] can end.
#[derive(Debug)]
pub(crate) struct Draining<R> {
    inner: R,
    flag: Arc<Flag>,
    /// Once ended: the bytes still to give.
    left: Option<usize>,
}

impl<R: AsyncRead + AsFd + Unpin> AsyncRead for Draining<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = match this.left {
            Some(left) => left,
            None => {
                // Registered before the flag is read: an `now` in between still wakes this task.
                this.flag.reader.register(cx.waker());
                if !this.flag.set.load(Ordering::SeqCst) {
                    return Pin::new(&mut this.inner).poll_read(cx, buf);
                }
                let held = rustix::io::ioctl_fionread(this.inner.as_fd()).unwrap_or(0);
                *this
                    .left
                    .insert(usize::try_from(held).unwrap_or(usize::MAX))
            }
        };
        let want = left.min(buf.remaining());
        if want == 0 {
            return Poll::Ready(Ok(()));
        }
        // The bytes are in the pipe: this read does not wait (and stops at an error or the end).
        let unfilled = &mut buf.initialize_unfilled()[..want];
        let n = rustix::io::read(this.inner.as_fd(), unfilled).unwrap_or(0);
        buf.advance(n);
        this.left = Some(if n == 0 { 0 } else { left - n });
        Poll::Ready(Ok(()))
    }
}

impl<R: AsFd> AsFd for Draining<R> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use tokio::io::AsyncReadExt;

    use super::*;

    type Pipe = Draining<tokio::net::unix::pipe::Receiver>;

    /// A pipe's reading end as `EndOutput` ends it, the `EndOutput`, and the writing end.
    fn endable_pipe() -> (Pipe, EndOutput, std::io::PipeWriter) {
        let (reader, writer) = std::io::pipe().unwrap();
        let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into()).unwrap();
        let mut end = EndOutput::default();
        (end.pipe(reader), end, writer)
    }

    /// A pipe whose writer stays open (a background process): it is read as it fills until
    /// ended, then gives what it holds — all of it, in order — and its end, while the writer is
    /// still there.
    #[tokio::test]
    async fn an_ended_pipe_gives_what_it_holds_then_its_end() {
        let (mut pipe, end, mut writer) = endable_pipe();
        writer.write_all(b"first\n").unwrap();
        let mut buf = vec![0u8; 64];
        let n = pipe.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first\n");
        // Nothing more yet, and the writer is open: a read waits.
        let waited = tokio::time::timeout(Duration::from_millis(100), pipe.read(&mut buf)).await;
        assert!(waited.is_err(), "a read returned with nothing written");

        let rest: Vec<u8> = (0..5000)
            .flat_map(|i| format!("line{i}\n").into_bytes())
            .collect();
        writer.write_all(&rest).unwrap();
        end.now();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), pipe.read_to_end(&mut got))
            .await
            .expect("an ended pipe reached its end")
            .unwrap();
        assert_eq!(got, rest);
        // Written after the end: not read.
        writer.write_all(b"late\n").unwrap();
        assert_eq!(pipe.read(&mut buf).await.unwrap(), 0);
    }

    /// `now` wakes a reader that is already waiting.
    #[tokio::test]
    async fn ending_wakes_a_waiting_reader() {
        let (mut pipe, end, mut writer) = endable_pipe();
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            pipe.read_to_end(&mut got).await.map(|_| got)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.write_all(b"held").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        end.now();
        let got = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("the waiting reader woke")
            .unwrap()
            .unwrap();
        assert_eq!(got, b"held");
    }
}
