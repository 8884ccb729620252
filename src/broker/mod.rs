//! The broker: a registry of live topic actors, each holding its subscribers, and the
//! session actors that stand for one subscriber connection each.

pub mod feed;
pub mod session;
pub mod topic;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use dashmap::DashMap;

use crate::auth::permissions::Revocation;
use crate::model::message::Envelope;
use topic::{CloseAll, Flush, Pending, Revoke, Topic, REASON_SHUTTING_DOWN, REASON_TOPIC_DELETED};

/// Identifies one subscriber connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub u64);

impl SessionId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Cheap to clone; shared by the HTTP workers, the writer thread and the topic actors.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    topics: DashMap<String, Live>,
    idle_timeout: Duration,
    /// Set once the server shuts down: a subscriber registering now is closed at once.
    closing: AtomicBool,
}

/// A live topic: its actor, and the stored messages waiting for it to fan them out.
struct Live {
    addr: Addr<Topic>,
    pending: Arc<Pending>,
}

impl Live {
    fn start(name: &str, broker: &Broker) -> Self {
        let pending = Arc::new(Pending::default());
        let topic = Topic::new(
            name.to_string(),
            broker.clone(),
            broker.inner.idle_timeout,
            pending.clone(),
        );
        Self {
            addr: topic.start(),
            pending,
        }
    }
}

impl Broker {
    pub fn new(idle_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                topics: DashMap::new(),
                idle_timeout,
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// The live actor of `name`, started on the calling arbiter if there is none.
    /// Must be called from within an actix system.
    pub fn topic(&self, name: &str) -> Addr<Topic> {
        if let Some(live) = self.inner.topics.get(name) {
            if live.addr.connected() {
                return live.addr.clone();
            }
        }
        let mut entry = self
            .inner
            .topics
            .entry(name.to_string())
            .or_insert_with(|| Live::start(name, self));
        if !entry.addr.connected() {
            *entry = Live::start(name, self);
        }
        entry.addr.clone()
    }

    /// The live actor of `name`, if any subscriber is there.
    pub fn live_topic(&self, name: &str) -> Option<Addr<Topic>> {
        self.inner.topics.get(name).map(|live| live.addr.clone())
    }

    /// Hands a stored message to its topic's subscribers (no-op when nobody listens).
    /// Callable from any thread; calls must come in sequence order. Messages that
    /// arrive while the topic's actor is busy wait for it together, so that each
    /// subscriber gets them in one go (and its connection writes them at once).
    pub fn deliver(&self, envelope: Arc<Envelope>) {
        if let Some(live) = self.inner.topics.get(&envelope.message.topic) {
            if live.pending.push(envelope) {
                live.addr.do_send(Flush);
            }
        }
    }

    /// Closes the live subscriptions that `revocation` takes away, on one topic or
    /// (`None`) on all of them.
    pub fn revoke(&self, topic: Option<&str>, revocation: Revocation) {
        match topic {
            Some(name) => {
                if let Some(addr) = self.live_topic(name) {
                    addr.do_send(Revoke(revocation));
                }
            }
            None => {
                for entry in self.inner.topics.iter() {
                    entry.value().addr.do_send(Revoke(revocation.clone()));
                }
            }
        }
    }

    /// Disconnects everyone on a deleted topic.
    pub fn close_topic(&self, name: &str) {
        if let Some(addr) = self.live_topic(name) {
            addr.do_send(CloseAll {
                reason: REASON_TOPIC_DELETED,
            });
        }
    }

    /// The server shuts down: every live subscription, and any that registers from
    /// now on, gets a final `close` event (`Server shutting down`) and ends.
    pub fn shut_down(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        for entry in self.inner.topics.iter() {
            entry.value().addr.do_send(CloseAll {
                reason: REASON_SHUTTING_DOWN,
            });
        }
    }

    /// Whether the server is shutting down.
    pub fn closing(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    /// Called by a topic actor that stops: forget it unless it was already replaced.
    pub(crate) fn forget(&self, name: &str, addr: &Addr<Topic>) {
        self.inner
            .topics
            .remove_if(name, |_, live| live.addr == *addr);
    }

    pub fn live_topics(&self) -> usize {
        self.inner.topics.len()
    }
}
