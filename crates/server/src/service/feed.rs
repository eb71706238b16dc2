//! A feed: what a running task (a setup script, an agent send) has said so far, kept in memory
//! up to a size, and read by any number of followers, each in order from the start, live.
//! Setup logs feed [`t::ExecFrame`]s; agent sends feed [`t::AgentStreamEvent`]s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use amika_types as t;
use tokio::sync::watch;

/// An item of a feed, with its weight against the feed's size limit.
pub trait FeedItem: Clone + Send + Sync + 'static {
    /// About how many bytes the item holds.
    fn weight(&self) -> usize;
}

impl FeedItem for t::ExecFrame {
    fn weight(&self) -> usize {
        match self {
            t::ExecFrame::Stdout { data } | t::ExecFrame::Stderr { data } => data.len(),
            t::ExecFrame::Error { message } => message.len(),
            t::ExecFrame::Exit { .. } => 8,
        }
    }
}

/// Items in order; past `max_bytes` the oldest go first (the last one always stays).
#[derive(Debug)]
pub(crate) struct Feed<T> {
    inner: Mutex<Buf<T>>,
    /// Bumped on every change, for followers.
    changed: watch::Sender<u64>,
    max_bytes: usize,
}

#[derive(Debug)]
struct Buf<T> {
    items: VecDeque<T>,
    /// Items dropped from the front (so a follower's position stays meaningful).
    dropped: u64,
    bytes: usize,
    done: bool,
}

impl<T: FeedItem> Feed<T> {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Feed {
            inner: Mutex::new(Buf {
                items: VecDeque::new(),
                dropped: 0,
                bytes: 0,
                done: false,
            }),
            changed: watch::channel(0).0,
            max_bytes,
        }
    }

    /// A finished feed of `items`.
    pub(crate) fn finished(items: impl IntoIterator<Item = T>, max_bytes: usize) -> Self {
        let feed = Feed::new(max_bytes);
        for item in items {
            feed.push(item);
        }
        feed.finish();
        feed
    }

    fn buf(&self) -> std::sync::MutexGuard<'_, Buf<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, item: T) {
        let mut buf = self.buf();
        if buf.done {
            return;
        }
        buf.bytes += item.weight();
        buf.items.push_back(item);
        while buf.bytes > self.max_bytes && buf.items.len() > 1 {
            if let Some(old) = buf.items.pop_front() {
                buf.bytes -= old.weight();
                buf.dropped += 1;
            }
        }
        drop(buf);
        self.changed.send_modify(|n| *n += 1);
    }

    /// No item comes after this; followers end once they have read what there is.
    pub(crate) fn finish(&self) {
        self.buf().done = true;
        self.changed.send_modify(|n| *n += 1);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.buf().done
    }

    /// Items from position `from` on (positions count every item ever pushed), the next
    /// position, and whether the feed is finished.
    pub(crate) fn read_from(&self, from: u64) -> (Vec<T>, u64, bool) {
        let buf = self.buf();
        let skip = from.saturating_sub(buf.dropped) as usize;
        let items: Vec<T> = buf.items.iter().skip(skip).cloned().collect();
        let next = buf.dropped.max(from) + items.len() as u64;
        (items, next, buf.done)
    }

    /// A follower from the first item kept; with `live`, it waits for items to come until the
    /// feed finishes, else it ends after what there is now.
    pub(crate) fn follow(self: &Arc<Self>, live: bool) -> Follower<T> {
        Follower {
            rx: self.changed.subscribe(),
            feed: self.clone(),
            next: 0,
            pending: VecDeque::new(),
            ended: false,
            live,
        }
    }
}

/// A follower of a feed: every item in order, ending after the last.
#[derive(Debug)]
pub struct Follower<T> {
    feed: Arc<Feed<T>>,
    rx: watch::Receiver<u64>,
    next: u64,
    pending: VecDeque<T>,
    ended: bool,
    live: bool,
}

impl<T: FeedItem> Follower<T> {
    /// The next item; `None` after the last (or, when not live, after what there was).
    pub async fn next(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            // Marked seen before reading, so a push between the read and the wait still wakes.
            self.rx.borrow_and_update();
            let (items, next, done) = self.feed.read_from(self.next);
            self.next = next;
            self.pending.extend(items);
            if done || !self.live {
                self.ended = true;
                continue;
            }
            if self.pending.is_empty() && self.rx.changed().await.is_err() {
                self.ended = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(s: &str) -> t::ExecFrame {
        t::ExecFrame::Stdout { data: s.into() }
    }

    #[tokio::test]
    async fn a_live_follower_sees_every_item_in_order_then_ends() {
        let feed = Arc::new(Feed::new(1024));
        feed.push(out("a"));
        let mut follower = feed.follow(true);
        let writer = {
            let feed = feed.clone();
            tokio::spawn(async move {
                for s in ["b", "c"] {
                    tokio::task::yield_now().await;
                    feed.push(out(s));
                }
                feed.finish();
            })
        };
        let mut seen = Vec::new();
        while let Some(t::ExecFrame::Stdout { data }) = follower.next().await {
            seen.push(data);
        }
        writer.await.unwrap();
        assert_eq!(seen, ["a", "b", "c"]);
        // Nothing is taken after the end.
        feed.push(out("late"));
        assert_eq!(feed.read_from(0).0.len(), 3);
    }

    #[tokio::test]
    async fn past_its_size_the_oldest_items_go_and_positions_stay_meaningful() {
        let feed = Arc::new(Feed::new(4));
        for s in ["aa", "bb", "cc"] {
            feed.push(out(s));
        }
        let (items, next, done) = feed.read_from(0);
        assert_eq!(items, [out("bb"), out("cc")]);
        assert_eq!((next, done), (3, false));
        assert!(feed.read_from(3).0.is_empty());
        let mut now = feed.follow(false);
        assert_eq!(now.next().await, Some(out("bb")));
        assert_eq!(now.next().await, Some(out("cc")));
        assert_eq!(
            now.next().await,
            None,
            "not live: ends after what there was"
        );
    }
}
