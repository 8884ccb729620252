//! The single writer of the `messages` table, on a thread of its own.
//!
//! Publishes that arrive together are committed in one transaction (group commit);
//! only after the commit are they handed to the broker, in sequence order, and
//! acknowledged. Actix workers never wait on a database lock.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::messages::{self, MessageRow};
use super::{Backend, Conn};
use crate::broker::message::{Envelope, Message};
use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, QueryResult};

/// At most this many publishes share one transaction.
const MAX_BATCH: usize = 512;

/// Messages staged in `recent_messages` move into `messages` once this many wait.
const MOVE_AT: usize = 1024;

enum Job {
    Publish {
        message: Message,
        reply: oneshot::Sender<ApiResult<Arc<Envelope>>>,
    },
    Other(Maintenance),
}

/// Writes that are not publishes; they run in order between batches.
enum Maintenance {
    Prune {
        now: i64,
    },
    DeleteTopic {
        topic: String,
        reply: oneshot::Sender<ApiResult<()>>,
    },
}

#[derive(Clone)]
pub struct Writer {
    jobs: Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on its own connection. In cluster mode it also
    /// announces every committed batch to the other nodes.
    pub fn start(url: &str, broker: Broker, cluster: Option<Cluster>) -> Result<Self, String> {
        let mut conn = Link {
            url: url.to_string(),
            conn: Some(super::connect(url)?),
        };
        // Messages staged by an earlier run move on first, whatever this run does.
        conn.with(messages::move_recent)
            .map_err(|e| format!("cannot move recent messages: {e}"))?;
        // One node on SQLite: no one else stores messages.
        let alone = cluster.is_none() && matches!(Backend::parse(url), Backend::Sqlite(_));
        let storage = if alone {
            let last = conn
                .with(messages::last_seq)
                .map_err(|e| format!("cannot read the message counter: {e}"))?;
            Storage::Alone { last, staged: 0 }
        } else {
            Storage::Shared
        };
        let (jobs, rx) = mpsc::channel();
        let fanout = Fanout { broker, cluster };
        let store = Store { conn, storage };
        std::thread::Builder::new()
            .name("tidings-writer".into())
            .spawn(move || run(store, rx, fanout))
            .map_err(|e| format!("cannot start writer thread: {e}"))?;
        Ok(Self { jobs })
    }

    /// Stores a message; resolves once it is committed and handed to the broker.
    pub async fn publish(&self, message: Message) -> ApiResult<Arc<Envelope>> {
        let (reply, done) = oneshot::channel();
        self.send(Job::Publish { message, reply })?;
        done.await.map_err(|_| ApiError::DatabaseUnavailable)?
    }

    /// Deletes every stored message of a topic.
    pub async fn delete_topic(&self, topic: String) -> ApiResult<()> {
        let (reply, done) = oneshot::channel();
        self.send(Job::Other(Maintenance::DeleteTopic { topic, reply }))?;
        done.await.map_err(|_| ApiError::DatabaseUnavailable)?
    }

    /// Removes expired messages (fire and forget).
    pub fn prune(&self, now: i64) {
        let _ = self.send(Job::Other(Maintenance::Prune { now }));
    }

    fn send(&self, job: Job) -> ApiResult<()> {
        self.jobs.send(job).map_err(|_| {
            tracing::error!("writer thread is gone");
            ApiError::DatabaseUnavailable
        })
    }
}

/// The writer's own connection, opened again after the database went away.
struct Link {
    url: String,
    conn: Option<Conn>,
}

impl Link {
    /// Runs `work` on the connection; when it fails because the connection broke (the
    /// database restarted), runs it once more on a fresh one.
    fn with<T>(&mut self, mut work: impl FnMut(&mut Conn) -> QueryResult<T>) -> QueryResult<T> {
        let first = match self.conn.as_mut() {
            Some(conn) => work(conn),
            None => Err(diesel::result::Error::BrokenTransactionManager),
        };
        match first {
            Err(e) if self.broken() => {
                self.conn = None;
                match super::connect(&self.url) {
                    Ok(conn) => work(self.conn.insert(conn)),
                    Err(reason) => {
                        tracing::error!(%reason, "database unavailable");
                        Err(e)
                    }
                }
            }
            other => other,
        }
    }

    fn broken(&mut self) -> bool {
        match self.conn.as_mut() {
            Some(conn) => conn.is_broken() || conn.ping().is_err(),
            None => true,
        }
    }
}

/// How the writer numbers and stores messages.
#[derive(Debug, Clone, Copy)]
enum Storage {
    /// This writer is the only one storing messages. It counts sequence numbers in
    /// memory and writes the count to the stored counter before it deletes messages,
    /// so numbers are never handed out twice, even after a restart. New rows are
    /// staged in `recent_messages` (`staged` of them so far) and moved into
    /// `messages` once [`MOVE_AT`] wait there.
    Alone { last: i64, staged: usize },
    /// Other nodes may store messages too (PostgreSQL, or a database shared in cluster
    /// mode): each batch reserves its numbers from the stored counter, whose row lock
    /// orders every node's commits, and goes straight into `messages`.
    Shared,
}

impl Storage {
    /// The first of `count` numbers for a batch, inside its transaction.
    fn first(&self, conn: &mut Conn, count: i64) -> QueryResult<i64> {
        match self {
            Self::Alone { last, .. } => Ok(last + 1),
            Self::Shared => messages::reserve_seqs(conn, count),
        }
    }

    /// Stores a numbered batch, inside its transaction.
    fn insert(&self, conn: &mut Conn, batch: &[MessageRow]) -> QueryResult<usize> {
        match self {
            Self::Alone { .. } => messages::insert_recent(conn, batch),
            Self::Shared => messages::insert_batch(conn, batch),
        }
    }

    /// After a batch of `count` messages is committed.
    fn committed(&mut self, count: usize) {
        if let Self::Alone { last, staged } = self {
            *last += count as i64;
            *staged += count;
        }
    }

    /// Before messages are deleted.
    fn record(&self, conn: &mut Conn) -> QueryResult<()> {
        match self {
            Self::Alone { last, .. } => messages::record_seq(conn, *last),
            Self::Shared => Ok(()),
        }
    }
}

/// Everything the writer thread owns of the database.
struct Store {
    conn: Link,
    storage: Storage,
}

/// Where committed messages go: this node's subscribers, and the other nodes.
struct Fanout {
    broker: Broker,
    cluster: Option<Cluster>,
}

type Pending = Vec<(Message, oneshot::Sender<ApiResult<Arc<Envelope>>>)>;

fn run(mut store: Store, jobs: Receiver<Job>, fanout: Fanout) {
    let mut publishes = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        let mut job = Some(first);
        while let Some(current) = job.take() {
            match current {
                Job::Publish { message, reply } => publishes.push((message, reply)),
                Job::Other(other) => {
                    store.commit(&mut publishes, &fanout);
                    store.maintain(other);
                }
            }
            if publishes.len() < MAX_BATCH {
                job = jobs.try_recv().ok();
            }
        }
        store.commit(&mut publishes, &fanout);
        store.move_when_due();
    }
}

impl Store {
    /// Commits the pending publishes in one transaction, then delivers and acknowledges them.
    fn commit(&mut self, pending: &mut Pending, fanout: &Fanout) {
        if pending.is_empty() {
            return;
        }
        let storage = self.storage;
        let stored = self.conn.with(|conn| {
            conn.transaction(|conn| {
                let first = storage.first(conn, pending.len() as i64)?;
                for (i, (message, _)) in pending.iter_mut().enumerate() {
                    message.seq = first + i as i64;
                    message.id = crate::util::message_id(message.seq);
                }
                let batch: Vec<MessageRow> =
                    pending.iter().map(|(m, _)| MessageRow::from(m)).collect();
                storage.insert(conn, &batch)?;
                Ok(batch)
            })
        });
        match stored {
            Ok(batch) => {
                self.storage.committed(pending.len());
                METRICS.published(pending.len() as u64);
                // In cluster mode, messages come back through Redis to be delivered here
                // too, in the order every node sees; locally only while Redis is away.
                let through_cluster = fanout
                    .cluster
                    .as_ref()
                    .is_some_and(|cluster| cluster.announce_messages(batch));
                for (message, reply) in pending.drain(..) {
                    let envelope = Arc::new(Envelope::new(message));
                    if !through_cluster {
                        fanout.broker.deliver(envelope.clone());
                    }
                    let _ = reply.send(Ok(envelope));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, count = pending.len(), "storing messages failed");
                for (_, reply) in pending.drain(..) {
                    let _ = reply.send(Err(ApiError::DatabaseUnavailable));
                }
            }
        }
    }

    /// Moves staged messages into `messages` once enough wait (after their publishers
    /// were answered, so no publish waits for it).
    fn move_when_due(&mut self) {
        let Storage::Alone { staged, .. } = &mut self.storage else {
            return;
        };
        if *staged < MOVE_AT {
            return;
        }
        let started = std::time::Instant::now();
        match self.conn.with(messages::move_recent) {
            Ok(moved) => {
                *staged = 0;
                tracing::debug!(moved, took = ?started.elapsed(), "moved recent messages");
            }
            Err(e) => tracing::error!(error = %e, "moving recent messages failed"),
        }
    }

    fn maintain(&mut self, job: Maintenance) {
        let storage = self.storage;
        match job {
            Maintenance::Prune { now } => match self.conn.with(|conn| {
                storage.record(conn)?;
                messages::prune(conn, now)
            }) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "pruned expired messages"),
                Err(e) => tracing::error!(error = %e, "pruning failed"),
            },
            Maintenance::DeleteTopic { topic, reply } => {
                let result = self.conn.with(|conn| {
                    storage.record(conn)?;
                    messages::delete_topics(conn, std::slice::from_ref(&topic))
                });
                let _ = reply.send(result.map(drop).map_err(ApiError::from));
            }
        }
    }
}
