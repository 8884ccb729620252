//! One actor per subscriber connection (SSE, WebSocket, JSON or raw stream).
//!
//! It registers with its topics first, then replays stored messages, then goes live,
//! dropping live messages it already replayed: no gap, no duplicate. Frames go to the
//! connection through a bounded queue; a subscriber that lets it fill up is closed.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc;

use super::feed::{Feed, Outbound, Stop, REASON_TOO_SLOW};
use super::topic::{Close, GoLive, Subscribe, Topic, Unsubscribe};
use super::{Broker, SessionId};
use crate::auth::permissions::Grant;
use crate::error::detail::TOKEN_EXPIRED;
use crate::metrics::METRICS;
use crate::model::message::{Envelope, Message, Transport, CLOSE_EVENT, KEEPALIVE_EVENT};
use crate::model::since::{Filter, Since};

/// Where a session reads the stored messages it replays (the publish pipeline's
/// history). Blocking; run off the actor's thread.
pub trait Replay: Send + Sync + 'static {
    /// Stored messages of `topics` after `since`, oldest first, at most `limit`.
    fn since(&self, topics: &[String], since: &Since, limit: i64) -> Result<Vec<Message>, String>;
}

/// A session's handle on [`Replay`].
pub type History = Arc<dyn Replay>;

/// Stored messages are replayed in pages of this many.
const REPLAY_PAGE: i64 = 500;

/// Everything a session needs to start.
pub struct SessionSpec {
    pub transport: Transport,
    /// Each topic with what allowed subscribing to it.
    pub topics: Vec<(String, Grant)>,
    pub since: Since,
    pub filter: Filter,
    pub poll: bool,
    pub keepalive: Duration,
    pub queue: usize,
    /// When the credentials that opened it expire (unix seconds): the session ends
    /// then, with a `close` event.
    pub expires_at: Option<i64>,
}

/// Stands for one subscriber connection: registers it with its topics, replays what
/// it asked for, sends control events, and unregisters it when the connection ends.
/// Live messages do not pass through it: topics write them straight into its feed.
pub struct Session {
    id: SessionId,
    keepalive: Duration,
    /// The topics' names joined with commas, as control events carry them (names
    /// cannot contain commas).
    label: String,
    feed: Feed,
    /// Set once registered with every topic; the topics are then found by name when
    /// the session ends (no address per topic is kept per session).
    registered: Option<Broker>,
    /// The queue slot kept for the final `close` event; taken when the session
    /// closes, so `None` means closing.
    last_slot: Option<mpsc::OwnedPermit<Outbound>>,
}

impl Session {
    /// Starts a session and returns the receiving end its connection writes from.
    pub fn spawn(mut spec: SessionSpec, broker: Broker, history: History) -> Inbox {
        let (out, rx) = mpsc::channel(spec.queue);
        let label = spec
            .topics
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let feed = Feed::new(out, spec.transport, std::mem::take(&mut spec.filter));
        let session = Session::create(|ctx| {
            let session = Session {
                id: SessionId::next(),
                keepalive: spec.keepalive,
                label,
                last_slot: feed.reserve_last(),
                feed,
                registered: None,
            };
            if let Some(at) = spec.expires_at {
                ctx.run_later(until(at), |act, ctx| act.close(TOKEN_EXPIRED, ctx));
            }
            session.set_up(spec, broker, history, ctx);
            session
        });
        Inbox {
            rx,
            session: session.downgrade(),
        }
    }

    fn control(&self, event: &'static str, reason: Option<&str>) -> Outbound {
        Arc::new(Envelope::control(event, &self.label, reason))
    }

    fn push(&mut self, frame: Outbound, ctx: &mut Context<Self>) {
        if self.last_slot.is_none() {
            return;
        }
        match self.feed.push(frame) {
            Ok(()) => {}
            Err(Stop::Close(reason)) => self.close(reason, ctx),
            Err(Stop::Gone) => ctx.stop(),
        }
    }

    fn close(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if let Some(slot) = self.last_slot.take() {
            if reason == REASON_TOO_SLOW {
                METRICS.slow_subscriber_dropped();
            }
            slot.send(self.control(CLOSE_EVENT, Some(reason)));
        }
        ctx.stop();
    }

    /// Registers with every topic, sends `open`, replays, then lets the topics send
    /// live messages. `open` is sent only once every topic has this session
    /// registered, so a message published after a client saw `open` always reaches it.
    fn set_up(&self, spec: SessionSpec, broker: Broker, history: History, ctx: &mut Context<Self>) {
        let live = !spec.poll;
        let open = live.then(|| self.control("open", None));
        let session = ctx.address().recipient::<Close>();
        let (id, feed) = (self.id, self.feed.clone());
        let topic_index = broker.clone();
        let setup = async move {
            let mut topics = Vec::new();
            if live {
                for (name, grant) in &spec.topics {
                    let subscribe = Subscribe {
                        id,
                        session: session.clone(),
                        feed: feed.clone(),
                        grant: grant.clone(),
                    };
                    topics.push(subscribe_to(&broker, name, subscribe).await?);
                }
            }
            if let Some(open) = open {
                feed.send(open).await.map_err(drop)?;
            }
            let names = spec.topics.into_iter().map(|(name, _)| name).collect();
            let replayed_up_to = replay(history, names, spec.since, &feed).await?;
            for topic in &topics {
                topic.do_send(GoLive { id, replayed_up_to });
            }
            Ok::<_, ()>(())
        };
        ctx.wait(
            setup
                .into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(()) if live => act.registered = Some(topic_index),
                    _ => ctx.stop(),
                }),
        );
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        METRICS.connection_opened(self.feed.transport());
        ctx.run_interval(self.keepalive, |act, ctx| {
            let keepalive = act.control(KEEPALIVE_EVENT, None);
            act.push(keepalive, ctx);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        METRICS.connection_closed(self.feed.transport());
        if let Some(broker) = &self.registered {
            for name in self.label.split(',') {
                if let Some(topic) = broker.live_topic(name) {
                    topic.do_send(Unsubscribe { id: self.id });
                }
            }
        }
    }
}

/// How long until the unix time `at`: zero once it has passed, `Duration::MAX` when
/// it is past what the clock can say (a timer clamps that to a far future).
fn until(at: i64) -> Duration {
    let secs = Duration::from_secs(u64::try_from(at).unwrap_or(0));
    match std::time::UNIX_EPOCH.checked_add(secs) {
        Some(at) => at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
        None => Duration::MAX,
    }
}

/// Registers with a topic's actor, retrying if that actor stopped in the meantime.
async fn subscribe_to(broker: &Broker, name: &str, msg: Subscribe) -> Result<Addr<Topic>, ()> {
    for _ in 0..5 {
        let addr = broker.topic(name);
        if addr.send(msg.clone()).await.is_ok() {
            return Ok(addr);
        }
    }
    tracing::error!(topic = name, "could not register with topic actor");
    Err(())
}

/// Sends stored messages after `since`, waiting for the connection to take them.
/// Returns the sequence number of the last stored message looked at.
async fn replay(
    history: History,
    topics: Vec<String>,
    since: Since,
    feed: &Feed,
) -> Result<i64, ()> {
    let topics = Arc::new(topics);
    let mut cursor = since;
    let mut last = 0;
    while cursor != Since::None {
        let (history, topics, page_since) = (history.clone(), topics.clone(), cursor.clone());
        let page = crate::cores::block(move || history.since(&topics, &page_since, REPLAY_PAGE))
            .await
            .map_err(|_| ())?
            .map_err(|e| tracing::error!(error = %e, "replay query failed"))?;
        let full_page = page.len() as i64 == REPLAY_PAGE;
        for message in page {
            last = last.max(message.seq);
            if feed.wants(&message) {
                feed.send(Arc::new(Envelope::new(message)))
                    .await
                    .map_err(drop)?;
            }
        }
        cursor = if full_page && cursor != Since::Latest {
            Since::Seq(last)
        } else {
            Since::None
        };
    }
    Ok(last)
}

/// The receiving end of a session's feed, held by the connection's writer. Dropping
/// it (the connection ended) stops the session at once, not at its next write; it
/// keeps only a weak address, so an idle connection pays for no watcher.
pub struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    session: actix::WeakAddr<Session>,
}

impl Inbox {
    /// The next frame; `None` once the session and its topics let go of the feed.
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    /// A frame that is already queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.do_send(Hangup);
        }
    }
}

/// The connection is gone.
#[derive(Message)]
#[rtype(result = "()")]
struct Hangup;

impl Handler<Hangup> for Session {
    type Result = ();

    fn handle(&mut self, _: Hangup, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Close> for Session {
    type Result = ();

    fn handle(&mut self, msg: Close, ctx: &mut Context<Self>) {
        self.close(msg.reason, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_become_delays_that_never_overflow() {
        let now = crate::util::now_unix();
        assert_eq!(until(now - 10), Duration::ZERO);
        assert_eq!(until(-1), Duration::ZERO);
        let soon = until(now + 60);
        assert!(soon > Duration::from_secs(58) && soon <= Duration::from_secs(60));
        assert!(until(i64::MAX) > Duration::from_secs(1 << 40));
    }
}
