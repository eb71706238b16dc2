//! Sends running on this server: each one's feed of stream events (`status`, `delta`, `done`)
//! and its cancel switch, and [`SendFollow`], a follower of one send from its start to its end
//! — live when it runs here, from the store when it ran elsewhere or has ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amika_types::{self as t, AgentStreamEvent};
use tokio::sync::watch;

use crate::service::feed::{Feed, FeedItem, Follower};
use crate::service::{Caller, Service, ServiceError};

/// Stream events kept per running send for followers that come late (the oldest go first).
const MAX_FEED_BYTES: usize = 1024 * 1024;

/// How often a follower of a send that runs elsewhere looks at its row.
const POLL: Duration = Duration::from_millis(250);

impl FeedItem for AgentStreamEvent {
    fn weight(&self) -> usize {
        match self {
            AgentStreamEvent::Delta(d) => d.text.len() + 64,
            AgentStreamEvent::Done(r) => r.response.len() + 256,
            _ => 256,
        }
    }
}

/// One send running on this server.
#[derive(Debug)]
pub(crate) struct LiveSend {
    pub(super) feed: Arc<Feed<AgentStreamEvent>>,
    /// Why the send was cancelled, once it is.
    cancel: watch::Sender<Option<String>>,
}

/// The sends running on this server, by job id.
pub(crate) type LiveSends = Arc<Mutex<HashMap<String, Arc<LiveSend>>>>;

impl LiveSend {
    pub(super) fn new() -> Self {
        LiveSend {
            feed: Arc::new(Feed::new(MAX_FEED_BYTES)),
            cancel: watch::channel(None).0,
        }
    }

    /// Stop the agent; `why` becomes the send's error message. The first reason wins.
    pub(super) fn cancel(&self, why: impl Into<String>) {
        let why = why.into();
        self.cancel.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(why);
            true
        });
    }

    /// Resolves with the reason once the send is cancelled.
    pub(super) async fn cancelled(&self) -> String {
        let mut rx = self.cancel.subscribe();
        let why = rx
            .wait_for(Option::is_some)
            .await
            .map(|why| why.clone().unwrap_or_default());
        match why {
            Ok(why) => why,
            // The sender lives as long as `self`.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Service {
    /// Stop every send running on this server (see [`Service::end_running`]).
    pub(crate) fn cancel_all_sends(&self, why: &str) {
        let live: Vec<_> = self.live_sends.lock().unwrap().values().cloned().collect();
        for send in live {
            send.cancel(why);
        }
    }
}

/// A follower of one send: its `status` first, then every event to its `done` (or `error`).
pub struct SendFollow {
    job_id: String,
    first: Option<AgentStreamEvent>,
    source: Source,
    ended: bool,
}

enum Source {
    Live {
        follower: Follower<AgentStreamEvent>,
        /// Cancels the send when the follower is dropped before its end (the client that
        /// started a streamed send went away).
        owner_of: Option<Arc<LiveSend>>,
    },
    /// A send running on another server sharing the store, or already ended: its row, read
    /// until it has ended.
    Stored {
        svc: Service,
        caller: Caller,
        sandbox: String,
    },
}

impl std::fmt::Debug for SendFollow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFollow")
            .field("live", &matches!(self.source, Source::Live { .. }))
            .field("ended", &self.ended)
            .finish()
    }
}

impl SendFollow {
    pub(super) fn live(status: t::AgentStreamStatus, live: &Arc<LiveSend>, owner: bool) -> Self {
        SendFollow {
            job_id: status.job_id.clone(),
            first: Some(AgentStreamEvent::Status(status)),
            source: Source::Live {
                follower: live.feed.follow(true),
                owner_of: owner.then(|| live.clone()),
            },
            ended: false,
        }
    }

    pub(super) fn stored(
        status: t::AgentStreamStatus,
        svc: Service,
        caller: Caller,
        sandbox: String,
    ) -> Self {
        SendFollow {
            job_id: status.job_id.clone(),
            source: Source::Stored {
                svc,
                caller,
                sandbox,
            },
            first: Some(AgentStreamEvent::Status(status)),
            ended: false,
        }
    }

    /// The next event; `None` after the last.
    pub async fn next(&mut self) -> Option<AgentStreamEvent> {
        if self.ended {
            return None;
        }
        let event = match self.first.take() {
            Some(e) => Some(e),
            None => match &mut self.source {
                // A feed that finished without an answer: the send's own recording failed.
                Source::Live { follower, .. } => Some(follower.next().await.unwrap_or_else(|| {
                    lost(
                        &self.job_id,
                        &ServiceError::internal("the send ended without an answer"),
                    )
                })),
                Source::Stored {
                    svc,
                    caller,
                    sandbox,
                } => loop {
                    match svc.get_agent_send_job(caller, sandbox, &self.job_id).await {
                        Ok(t::AgentSendJobResponse {
                            response: Some(r), ..
                        }) => break Some(AgentStreamEvent::Done(r)),
                        Ok(_) => tokio::time::sleep(POLL).await,
                        Err(e) => break Some(lost(&self.job_id, &e)),
                    }
                },
            },
        };
        if event.as_ref().is_none_or(AgentStreamEvent::is_end) {
            self.ended = true;
        }
        event
    }
}

/// The `error` event of a send that can no longer be followed (its sandbox was deleted).
fn lost(job_id: &str, e: &ServiceError) -> AgentStreamEvent {
    let why = match e {
        ServiceError::Internal(_) => "the server lost it: see its log".to_string(),
        other => other.to_string(),
    };
    AgentStreamEvent::Error(t::ErrorBody::new(
        e.code(),
        format!("cannot follow the send {job_id}: {why}"),
        Vec::new(),
        String::new(),
    ))
}

impl Drop for SendFollow {
    fn drop(&mut self) {
        if let Source::Live {
            owner_of: Some(live),
            ..
        } = &self.source
        {
            if !self.ended && !live.feed.is_finished() {
                live.cancel(
                    "the request was cancelled before the agent finished; the agent was stopped",
                );
            }
        }
    }
}
