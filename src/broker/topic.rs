//! One actor per live topic: it holds the topic's subscribers and fans each stored
//! message out to them, straight into each subscriber's feed, never waiting on any
//! one of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::feed::{Feed, Stop};
use super::{Broker, SessionId};
use crate::auth::permissions::{Grant, Revocation};
use crate::metrics::METRICS;
use crate::model::message::Envelope;

pub use super::feed::REASON_TOO_SLOW;
pub const REASON_TOPIC_DELETED: &str = "Topic deleted";
pub const REASON_REVOKED: &str = "Access revoked";
pub const REASON_SHUTTING_DOWN: &str = "Server shutting down";

/// Tells a session its subscription ended: send a final event with this reason, then
/// close.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Close {
    pub reason: &'static str,
}

/// Registers a subscriber. Messages are held for it until [`GoLive`].
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub id: SessionId,
    pub session: Recipient<Close>,
    pub feed: Feed,
    /// What allowed this subscription; checked again on every [`Revoke`].
    pub grant: Grant,
}

/// The subscriber's replay is done: what it holds after `replayed_up_to` goes out,
/// and so does everything that follows.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GoLive {
    pub id: SessionId,
    pub replayed_up_to: i64,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub id: SessionId,
}

/// Fan out the stored messages waiting in the topic's [`Pending`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// The most room (in messages) a topic keeps for its next batch.
const KEPT_ROOM: usize = 256;

/// A stored message waiting for its topic's actor, with when it was acknowledged
/// (for the delivery latency).
type Acked = (Instant, Arc<Envelope>);

/// Stored messages on their way to a topic's actor, oldest first: whoever adds to an
/// empty queue sends the actor a [`Flush`], which takes them all.
#[derive(Default)]
pub struct Pending(Mutex<Vec<Acked>>);

impl Pending {
    /// Adds a message acknowledged now; returns whether the queue was empty (the
    /// actor must be told).
    pub fn push(&self, envelope: Arc<Envelope>) -> bool {
        let acked = Instant::now();
        let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push((acked, envelope));
        queue.len() == 1
    }

    /// Takes every waiting message into `batch` (empty), leaving `batch`'s room behind
    /// for the next ones: a steady flow allocates nothing.
    fn take_into(&self, batch: &mut Vec<Acked>) {
        debug_assert!(batch.is_empty());
        std::mem::swap(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
            batch,
        );
    }
}

/// Close the subscriptions whose grant no longer holds.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoke(pub Revocation);

/// Disconnect every subscriber with a reason (the topic was deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll {
    pub reason: &'static str,
}

struct Subscriber {
    session: Recipient<Close>,
    feed: Feed,
    grant: Grant,
    /// Messages that arrived while the session was still replaying; `None` once live.
    held: Option<Vec<Arc<Envelope>>>,
    /// The replay already sent messages up to this sequence number.
    replayed_up_to: i64,
}

impl Subscriber {
    /// Hands a message over (or holds it during the replay); returns whether it was
    /// queued for the connection.
    fn offer(&mut self, envelope: &Arc<Envelope>) -> Result<bool, Stop> {
        match &mut self.held {
            Some(held) if held.len() + 1 >= self.feed.capacity() => {
                Err(Stop::Close(REASON_TOO_SLOW))
            }
            Some(held) => {
                held.push(envelope.clone());
                Ok(false)
            }
            None => self.feed.offer(envelope, self.replayed_up_to),
        }
    }

    /// Ends the subscription, telling the session why when there is a reason.
    fn stop(&self, stop: Stop) {
        if let Stop::Close(reason) = stop {
            self.session.do_send(Close { reason });
        }
    }
}

pub struct Topic {
    name: String,
    broker: Broker,
    idle_timeout: Duration,
    subscribers: HashMap<SessionId, Subscriber>,
    idle_check: Option<SpawnHandle>,
    pending: Arc<Pending>,
    /// The room [`Pending`] gets back for the next batch.
    spare: Vec<Acked>,
}

impl Topic {
    pub fn new(
        name: String,
        broker: Broker,
        idle_timeout: Duration,
        pending: Arc<Pending>,
    ) -> Self {
        Self {
            name,
            broker,
            idle_timeout,
            subscribers: HashMap::new(),
            idle_check: None,
            pending,
            spare: Vec::new(),
        }
    }

    /// With nobody left, stop after the idle timeout unless someone subscribes meanwhile.
    fn schedule_idle_stop(&mut self, ctx: &mut Context<Self>) {
        if self.subscribers.is_empty() && self.idle_check.is_none() {
            self.idle_check = Some(ctx.run_later(self.idle_timeout, |act, ctx| {
                act.idle_check = None;
                if act.subscribers.is_empty() {
                    ctx.stop();
                }
            }));
        }
    }
}

impl Actor for Topic {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.schedule_idle_stop(ctx);
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.broker.forget(&self.name, &ctx.address());
    }
}

impl Handler<Subscribe> for Topic {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        if self.broker.closing() {
            // Registered after the shutdown's `CloseAll` went out: closed at once.
            msg.session.do_send(Close {
                reason: REASON_SHUTTING_DOWN,
            });
            return;
        }
        if let Some(handle) = self.idle_check.take() {
            ctx.cancel_future(handle);
        }
        let subscriber = Subscriber {
            session: msg.session,
            feed: msg.feed,
            grant: msg.grant,
            held: Some(Vec::new()),
            replayed_up_to: 0,
        };
        self.subscribers.insert(msg.id, subscriber);
    }
}

impl Handler<GoLive> for Topic {
    type Result = ();

    fn handle(&mut self, msg: GoLive, ctx: &mut Context<Self>) {
        let Some(subscriber) = self.subscribers.get_mut(&msg.id) else {
            return;
        };
        subscriber.replayed_up_to = msg.replayed_up_to;
        let held = subscriber.held.take().unwrap_or_default();
        let mut sent = 0;
        let mut failed = None;
        for envelope in &held {
            match subscriber.offer(envelope) {
                Ok(queued) => sent += u64::from(queued),
                Err(stop) => {
                    failed = Some(stop);
                    break;
                }
            }
        }
        METRICS.delivered(sent);
        if let Some(stop) = failed {
            subscriber.stop(stop);
            self.subscribers.remove(&msg.id);
            self.schedule_idle_stop(ctx);
        }
    }
}

impl Handler<Unsubscribe> for Topic {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        self.subscribers.remove(&msg.id);
        self.schedule_idle_stop(ctx);
    }
}

impl Handler<Flush> for Topic {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) {
        let mut batch = std::mem::take(&mut self.spare);
        self.pending.take_into(&mut batch);
        let mut sent = 0;
        let mut dropped = false;
        // Subscriber by subscriber, so that each gets the whole batch at once.
        self.subscribers.retain(|_, subscriber| {
            for (_, envelope) in &batch {
                match subscriber.offer(envelope) {
                    Ok(queued) => sent += u64::from(queued),
                    Err(stop) => {
                        // This one subscriber goes; nobody else waits.
                        subscriber.stop(stop);
                        dropped = true;
                        return false;
                    }
                }
            }
            true
        });
        // Once per message, not per subscriber: the fan-out is what took the time.
        let now = Instant::now();
        for (acked, _) in &batch {
            METRICS.fanned_out(*acked, now);
        }
        batch.clear();
        // A burst's larger room is let go of, so an idle topic holds little.
        if batch.capacity() <= KEPT_ROOM {
            self.spare = batch;
        }
        METRICS.delivered(sent);
        if dropped {
            self.schedule_idle_stop(ctx);
        }
    }
}

impl Handler<CloseAll> for Topic {
    type Result = ();

    fn handle(&mut self, msg: CloseAll, ctx: &mut Context<Self>) {
        for (_, subscriber) in self.subscribers.drain() {
            subscriber.stop(Stop::Close(msg.reason));
        }
        ctx.stop();
    }
}

impl Handler<Revoke> for Topic {
    type Result = ();

    fn handle(&mut self, Revoke(revocation): Revoke, ctx: &mut Context<Self>) {
        self.subscribers.retain(|_, subscriber| {
            let revoked = subscriber.grant.revoked_by(&revocation);
            if revoked {
                subscriber.stop(Stop::Close(REASON_REVOKED));
            }
            !revoked
        });
        self.schedule_idle_stop(ctx);
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::model::message::{Message, Transport, MESSAGE_EVENT};
    use crate::model::since::Filter;

    /// Stands for the sessions: notes every `Close` a subscriber is sent.
    #[derive(Clone, Default)]
    struct Closes(Arc<Mutex<Vec<&'static str>>>);

    impl Actor for Closes {
        type Context = Context<Self>;
    }

    impl Handler<Close> for Closes {
        type Result = ();
        fn handle(&mut self, close: Close, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(close.reason);
        }
    }

    fn envelope(seq: i64) -> Arc<Envelope> {
        Arc::new(Envelope::new(Message {
            id: crate::util::message_id(seq),
            time: 1,
            event: MESSAGE_EVENT,
            topic: "alerts".into(),
            message: format!("m{seq}"),
            title: None,
            priority: 3,
            tags: Vec::new(),
            expires: 61,
            seq,
        }))
    }

    #[test]
    fn the_actor_is_told_only_by_whoever_fills_an_empty_queue() {
        let pending = Pending::default();
        assert!(pending.push(envelope(1)));
        assert!(!pending.push(envelope(2)));
        let take = || {
            let mut batch = Vec::new();
            pending.take_into(&mut batch);
            batch
        };
        let taken: Vec<i64> = take().iter().map(|(_, e)| e.seq()).collect();
        assert_eq!(taken, [1, 2]);
        assert!(take().is_empty());
        assert!(pending.push(envelope(3)));
    }

    #[actix_rt::test]
    async fn messages_that_wait_together_reach_every_subscriber_in_order() {
        let broker = Broker::new(Duration::from_secs(60));
        let topic = broker.topic("alerts");
        let closes = Closes::default();
        let sessions = closes.clone().start();
        let mut queues = Vec::new();
        for _ in 0..3 {
            let (out, rx) = mpsc::channel(16);
            let id = SessionId::next();
            let subscribe = Subscribe {
                id,
                session: sessions.clone().recipient(),
                feed: Feed::new(out, Transport::Sse, Filter::default()),
                grant: Grant::Public {
                    user: None,
                    key: None,
                },
            };
            topic.send(subscribe).await.unwrap();
            topic
                .send(GoLive {
                    id,
                    replayed_up_to: 2,
                })
                .await
                .unwrap();
            queues.push(rx);
        }
        // All delivered before the actor runs again: they go out as one batch, minus
        // what the replay covered.
        for seq in 1..=6 {
            broker.deliver(envelope(seq));
        }
        for rx in &mut queues {
            for seq in 3..=6 {
                assert_eq!(rx.recv().await.unwrap().seq(), seq);
            }
            assert!(rx.try_recv().is_err());
        }
        broker.deliver(envelope(7));
        assert_eq!(queues[0].recv().await.unwrap().seq(), 7);
        assert!(closes.0.lock().unwrap().is_empty());
    }

    #[actix_rt::test]
    async fn a_shutdown_closes_every_subscriber_and_any_that_comes_later() {
        let broker = Broker::new(Duration::from_secs(60));
        let closes = Closes::default();
        let sessions = closes.clone().start();
        let subscribe = || {
            let (out, rx) = mpsc::channel(4);
            let subscribe = Subscribe {
                id: SessionId::next(),
                session: sessions.clone().recipient(),
                feed: Feed::new(out, Transport::Sse, Filter::default()),
                grant: Grant::Public {
                    user: None,
                    key: None,
                },
            };
            (subscribe, rx)
        };
        let (early, _rx) = subscribe();
        broker.topic("alerts").send(early).await.unwrap();
        broker.shut_down();
        assert!(broker.closing());
        let (late, _rx2) = subscribe();
        // The first actor stopped on the shutdown; a fresh one refuses at once.
        while broker.topic("alerts").send(late.clone()).await.is_err() {}
        // The sessions' mailbox is in order: once this is handled, so are the others.
        sessions.send(Close { reason: "seen" }).await.unwrap();
        assert_eq!(
            *closes.0.lock().unwrap(),
            [REASON_SHUTTING_DOWN, REASON_SHUTTING_DOWN, "seen"]
        );
    }
}
