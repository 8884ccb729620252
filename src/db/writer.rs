//! The single writer of the `messages` table, on a thread of its own.
//!
//! Publishes that arrive together are stored together (group commit): on a single
//! SQLite node in one write to the journal, moved into `messages` in bulk later;
//! otherwise in one transaction. Only once stored are they handed to the broker, in
//! sequence order, and acknowledged. Actix workers never wait on a database lock.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::journal::{self, Journal, Recent};
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

/// Messages in the journal move into `messages` once this many wait.
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
    recent: Recent,
}

impl Writer {
    /// Starts the writer thread on its own connection. In cluster mode it also
    /// announces every committed batch to the other nodes.
    pub fn start(url: &str, broker: Broker, cluster: Option<Cluster>) -> Result<Self, String> {
        let backend = Backend::parse(url);
        let mut conn = Link {
            url: url.to_string(),
            conn: Some(super::connect(url)?),
        };
        // Messages journaled by an earlier run move in first, whatever this run does.
        if let Backend::Sqlite(database) = &backend {
            let rows = journal::leftovers(database)
                .map_err(|e| format!("cannot read the journal of {database}: {e}"))?;
            let moved = conn
                .with(|conn| messages::move_in(conn, &rows))
                .map_err(|e| format!("cannot move journaled messages: {e}"))?;
            if !rows.is_empty() {
                tracing::info!(moved, "moved messages journaled by an earlier run");
            }
        }
        let recent = Recent::default();
        let storage = match &backend {
            // One node on SQLite: no one else stores messages.
            Backend::Sqlite(database) if cluster.is_none() => {
                let last = conn
                    .with(messages::last_seq)
                    .map_err(|e| format!("cannot read the message counter: {e}"))?;
                let journal = Journal::create(database, recent.clone())
                    .map_err(|e| format!("cannot open the journal of {database}: {e}"))?;
                Storage::Alone { last, journal }
            }
            Backend::Sqlite(database) => {
                journal::remove(database)
                    .map_err(|e| format!("cannot remove the journal of {database}: {e}"))?;
                Storage::Shared
            }
            Backend::Postgres(_) => Storage::Shared,
        };
        let (jobs, rx) = mpsc::channel();
        let fanout = Fanout { broker, cluster };
        let store = Store { conn, storage };
        std::thread::Builder::new()
            .name("tidings-writer".into())
            .spawn(move || run(store, rx, fanout))
            .map_err(|e| format!("cannot start writer thread: {e}"))?;
        Ok(Self { jobs, recent })
    }

    /// Messages stored in the journal and not yet in `messages`, for readers.
    pub fn recent(&self) -> &Recent {
        &self.recent
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
enum Storage {
    /// This writer is the only one storing messages. It counts sequence numbers in
    /// memory (`last`) and writes the count to the stored counter before it deletes
    /// messages, so numbers are never handed out twice, even after a restart. New
    /// messages go to the journal and move into `messages` once [`MOVE_AT`] wait.
    Alone { last: i64, journal: Journal },
    /// Other nodes may store messages too (PostgreSQL, or a database shared in cluster
    /// mode): each batch reserves its numbers from the stored counter, whose row lock
    /// orders every node's commits, and goes straight into `messages`.
    Shared,
}

impl Storage {
    /// The last number handed out, where this writer counts them.
    fn counted(&self) -> Option<i64> {
        match self {
            Self::Alone { last, .. } => Some(*last),
            Self::Shared => None,
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

type Reply = oneshot::Sender<ApiResult<Arc<Envelope>>>;
type Pending = Vec<(Message, Reply)>;

/// A stored batch, and its rows where other nodes are told of them.
type Stored = (Vec<Arc<Envelope>>, Option<Vec<MessageRow>>);

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
        store.move_journal(false);
    }
}

impl Store {
    /// Stores the pending publishes together, then delivers and acknowledges them.
    fn commit(&mut self, pending: &mut Pending, fanout: &Fanout) {
        if pending.is_empty() {
            return;
        }
        let (batch, replies): (Vec<Message>, Vec<Reply>) = pending.drain(..).unzip();
        let count = batch.len();
        match self.store(batch) {
            Ok((envelopes, rows)) => {
                METRICS.published(count as u64);
                // In cluster mode, messages come back through Redis to be delivered here
                // too, in the order every node sees; locally only while Redis is away.
                let through_cluster = match (&fanout.cluster, rows) {
                    (Some(cluster), Some(rows)) => cluster.announce_messages(rows),
                    _ => false,
                };
                for (envelope, reply) in envelopes.into_iter().zip(replies) {
                    if !through_cluster {
                        fanout.broker.deliver(envelope.clone());
                    }
                    let _ = reply.send(Ok(envelope));
                }
            }
            Err(error) => {
                tracing::error!(%error, count, "storing messages failed");
                for reply in replies {
                    let _ = reply.send(Err(ApiError::DatabaseUnavailable));
                }
            }
        }
    }

    /// Numbers a batch and stores it: in the journal, or in one transaction.
    fn store(&mut self, mut batch: Vec<Message>) -> Result<Stored, String> {
        let rows = match &mut self.storage {
            Storage::Alone { last, journal } => {
                number(&mut batch, *last + 1);
                let envelopes = encode(batch);
                journal.append(&envelopes).map_err(|e| e.to_string())?;
                *last += envelopes.len() as i64;
                return Ok((envelopes, None));
            }
            Storage::Shared => self
                .conn
                .with(|conn| {
                    conn.transaction(|conn| {
                        let first = messages::reserve_seqs(conn, batch.len() as i64)?;
                        number(&mut batch, first);
                        let rows: Vec<MessageRow> = batch.iter().map(MessageRow::from).collect();
                        messages::insert_batch(conn, &rows)?;
                        Ok(rows)
                    })
                })
                .map_err(|e| e.to_string())?,
        };
        Ok((encode(batch), Some(rows)))
    }

    /// Moves the journal's messages into `messages` once enough wait, or now when
    /// `now` is set (after their publishers were answered, so no publish waits for it).
    fn move_journal(&mut self, now: bool) {
        let Storage::Alone { journal, .. } = &mut self.storage else {
            return;
        };
        let waiting = journal.recent().len();
        if waiting == 0 || (!now && waiting < MOVE_AT) {
            return;
        }
        let started = std::time::Instant::now();
        let rows = journal.recent().rows();
        match self.conn.with(|conn| messages::move_in(conn, &rows)) {
            Ok(moved) => {
                // Should emptying the file fail, the next start skips what is stored.
                if let Err(e) = journal.clear() {
                    tracing::error!(error = %e, "cannot empty the journal");
                }
                tracing::debug!(moved, took = ?started.elapsed(), "moved journaled messages");
            }
            Err(e) => tracing::error!(error = %e, "moving journaled messages failed"),
        }
    }

    /// Runs a delete, after the journal moved in so that it covers every message.
    fn maintain(&mut self, job: Maintenance) {
        self.move_journal(true);
        let counted = self.storage.counted();
        let mut delete = |work: &dyn Fn(&mut Conn) -> QueryResult<usize>| {
            self.conn.with(|conn| {
                if let Some(last) = counted {
                    messages::record_seq(conn, last)?;
                }
                work(conn)
            })
        };
        match job {
            Maintenance::Prune { now } => match delete(&|conn| messages::prune(conn, now)) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "pruned expired messages"),
                Err(e) => tracing::error!(error = %e, "pruning failed"),
            },
            Maintenance::DeleteTopic { topic, reply } => {
                let topics = [topic];
                let result = delete(&|conn| messages::delete_topics(conn, &topics));
                let _ = reply.send(result.map(drop).map_err(ApiError::from));
            }
        }
    }
}

/// Gives a batch its sequence numbers from `first` on, and the ids made from them.
fn number(batch: &mut [Message], first: i64) {
    for (i, message) in batch.iter_mut().enumerate() {
        message.seq = first + i as i64;
        message.id = crate::util::message_id(message.seq);
    }
}

/// Encodes each message once, to be shared by its publisher and every subscriber.
fn encode(batch: Vec<Message>) -> Vec<Arc<Envelope>> {
    batch
        .into_iter()
        .map(|message| Arc::new(Envelope::new(message)))
        .collect()
}
