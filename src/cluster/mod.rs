//! Cluster mode: several nodes share one database and one Redis.
//!
//! Every node stores each message in the shared database; after a commit the writer
//! announces the batch on one Redis pub/sub channel, and every node, the sender
//! included, hands it to its local topic actors as it comes back. So all nodes see
//! messages in the one order Redis put them in: a publisher that waits for each 200
//! sees its messages arrive in order on every node, whichever nodes it published
//! through. Changes to credentials and topics travel the same way. Each node holds one subscription to
//! that channel (not one per topic or client). When Redis is away, nodes go on
//! locally, report `degraded` in `/health`, and reconnect with backoff; what was
//! published meanwhile is in the database for `since=` replay.

pub mod change;
mod gcra;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use change::Change;

use crate::auth::Auth;
use crate::broker::Broker;
use crate::error::Allowance;
use crate::error::ApiError;
use crate::model::message::Envelope;

/// The one channel every node publishes to and listens on.
const CHANNEL: &str = "tidings:events";
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// A listener with nothing to read checks the connection this often.
const IDLE_READ: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// After a failed publish, publishing is not tried again for this long (the writer
/// must not stall on every batch while Redis is away).
const RETRY_PUBLISH: Duration = Duration::from_secs(1);

/// What one node tells the others.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    node: String,
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Event {
    /// Messages just committed, in sequence order, each as its contract JSON (the
    /// encoding its envelope already holds).
    Messages(Vec<Box<RawValue>>),
    Change(Change),
}

/// This node's link to Redis. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    client: redis::Client,
    /// Publishes (from the writer thread and handlers); reopened on demand.
    publisher: Mutex<Link>,
    /// Quota checks from the HTTP workers.
    quotas: r2d2::Pool<redis::Client>,
    /// Whether the listener is subscribed right now.
    connected: AtomicBool,
}

/// A connection that, once lost, is tried again at most once per backoff period.
struct Link {
    conn: Option<redis::Connection>,
    retry_at: Instant,
}

impl Cluster {
    /// Checks the URL; the connection itself is made (and remade) in the background,
    /// so a node starts even while Redis is away.
    pub fn new(url: &str) -> Result<Self, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("invalid redis_url {url}: {e}"))?;
        let quotas = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .build_unchecked(client.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                node: crate::util::random_id(16),
                client,
                publisher: Mutex::new(Link {
                    conn: None,
                    retry_at: Instant::now(),
                }),
                quotas,
                connected: AtomicBool::new(false),
            }),
        })
    }

    /// Starts the listener thread: it hands other nodes' messages to `broker` and
    /// applies their changes, then tells `hooks` of each; after every (re)connection
    /// it calls `hooks.resync`, since changes may have been missed while Redis was
    /// away.
    pub fn listen(&self, broker: Broker, auth: Auth, hooks: impl Hooks) {
        let cluster = self.clone();
        std::thread::Builder::new()
            .name("tidings-cluster".into())
            .spawn(move || cluster.run_listener(&broker, &auth, &hooks))
            .expect("start cluster listener thread");
    }

    /// Whether this node currently receives the other nodes' messages.
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Hands messages this node just committed to every node, itself included.
    /// Called by the writer before it acknowledges them, so one publisher's messages
    /// reach Redis in the order they were acknowledged. False when they will not come
    /// back through Redis (it is away): the caller then delivers them locally.
    pub fn announce_messages(&self, envelopes: &[Arc<Envelope>]) -> bool {
        if !self.connected() {
            return false;
        }
        let messages = envelopes
            .iter()
            .map(|e| RawValue::from_string(e.json.to_string()).expect("an envelope holds JSON"))
            .collect();
        self.send(Event::Messages(messages))
    }

    /// Tells the other nodes about a change applied here.
    pub fn announce(&self, change: Change) {
        self.send(Event::Change(change));
    }

    /// Charges one publish against the account's cluster-wide quota; `None` when
    /// Redis cannot answer (the caller falls back to this node's own limiter).
    pub fn charge(&self, account: &str, per_minute: u32) -> Option<Result<Allowance, ApiError>> {
        let mut conn = self.inner.quotas.get().ok()?;
        match gcra::charge(&mut conn, account, per_minute) {
            Ok(result) => Some(result),
            Err(e) => {
                tracing::warn!(error = %e, "cluster quota check failed; using this node's limiter");
                None
            }
        }
    }

    /// What is left of the account's cluster-wide quota, without charging it; `None`
    /// when Redis cannot answer.
    pub fn left(&self, account: &str, per_minute: u32) -> Option<u32> {
        let mut conn = self.inner.quotas.get().ok()?;
        gcra::left(&mut conn, account, per_minute)
            .inspect_err(|e| tracing::warn!(error = %e, "cluster quota read failed"))
            .ok()
    }

    /// Publishes on the channel; whether Redis took it.
    fn send(&self, event: Event) -> bool {
        let payload = serde_json::to_vec(&Wire {
            node: self.inner.node.clone(),
            event,
        })
        .expect("cluster events serialize");
        let mut link = self.link();
        // A connection that broke since its last use gets one fresh try at once.
        for fresh in [false, true] {
            if link.conn.is_none() {
                if !fresh && Instant::now() < link.retry_at {
                    return false;
                }
                link.conn = self.connect().ok();
            }
            let Some(conn) = link.conn.as_mut() else {
                break;
            };
            let sent: redis::RedisResult<i64> =
                redis::cmd("PUBLISH").arg(CHANNEL).arg(&payload).query(conn);
            match sent {
                Ok(_) => return true,
                Err(e) if fresh => {
                    tracing::warn!(error = %e, "cannot publish to Redis; other nodes catch up by replay");
                }
                Err(_) => {}
            }
            link.conn = None;
        }
        link.conn = None;
        link.retry_at = Instant::now() + RETRY_PUBLISH;
        false
    }

    fn link(&self) -> std::sync::MutexGuard<'_, Link> {
        self.inner
            .publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self
            .inner
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    fn run_listener(&self, broker: &Broker, auth: &Auth, hooks: &dyn Hooks) {
        let mut backoff = FIRST_BACKOFF;
        let mut starting = true;
        loop {
            let error = self.listen_once(broker, auth, hooks, &mut backoff);
            if self.inner.connected.swap(false, Ordering::Relaxed) {
                tracing::error!(error = %error, "lost the connection to Redis; serving local subscribers only, reconnecting");
            } else if starting {
                // The node starts all the same; the operator should know it is alone.
                tracing::warn!(error = %error, "cannot reach Redis; serving local subscribers only until it can be reached");
            } else {
                tracing::debug!(error = %error, "Redis still unreachable");
            }
            starting = false;
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Subscribes and handles events until the connection fails; the failure.
    fn listen_once(
        &self,
        broker: &Broker,
        auth: &Auth,
        hooks: &dyn Hooks,
        backoff: &mut Duration,
    ) -> redis::RedisError {
        let mut conn = match self.connect() {
            Ok(conn) => conn,
            Err(e) => return e,
        };
        let mut pubsub = conn.as_pubsub();
        if let Err(e) = pubsub.subscribe(CHANNEL) {
            return e;
        }
        if let Err(e) = pubsub.set_read_timeout(Some(IDLE_READ)) {
            return e;
        }
        self.inner.connected.store(true, Ordering::Relaxed);
        *backoff = FIRST_BACKOFF;
        // Redis is back: publish on a fresh connection from the next message on.
        *self.link() = Link {
            conn: None,
            retry_at: Instant::now(),
        };
        tracing::info!(node = %self.inner.node, "joined the cluster through Redis");
        hooks.resync();
        loop {
            let message = match pubsub.get_message() {
                Ok(message) => message,
                Err(e) if e.is_timeout() => continue,
                Err(e) => return e,
            };
            let Ok(wire) = serde_json::from_slice::<Wire>(message.get_payload_bytes()) else {
                tracing::warn!("ignored an unreadable cluster event");
                continue;
            };
            let own = wire.node == self.inner.node;
            receive(wire.event, own, broker, auth, hooks);
        }
    }
}

/// What the layers above the cluster do with what its listener hears.
pub trait Hooks: Send + 'static {
    /// After every (re)connection to Redis: changes may have been missed meanwhile.
    fn resync(&self);
    /// Another node's change, once it is applied to this node's caches and
    /// subscriptions.
    fn changed(&self, change: &Change);
}

/// Applies an event here: messages from every node (this one's too), changes from
/// the others (this node applied its own already).
fn receive(event: Event, own: bool, broker: &Broker, auth: &Auth, hooks: &dyn Hooks) {
    match event {
        Event::Messages(messages) => {
            for json in messages {
                if let Some(envelope) = Envelope::from_json(Box::<str>::from(json).into_string()) {
                    broker.deliver(Arc::new(envelope));
                }
            }
        }
        Event::Change(change) if !own => {
            change.apply(auth, broker);
            hooks.changed(&change);
        }
        Event::Change(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_json() {
        let wire = Wire {
            node: "n1".into(),
            event: Event::Change(Change::TopicDeleted {
                name: "alerts".into(),
            }),
        };
        let text = serde_json::to_string(&wire).unwrap();
        let back: Wire = serde_json::from_str(&text).unwrap();
        assert_eq!(back.node, "n1");
        assert!(matches!(
            back.event,
            Event::Change(Change::TopicDeleted { name }) if name == "alerts"
        ));
    }
}
