//! The single writer of the `messages` table, on a thread of its own.
//!
//! Publishes that arrive together are committed in one transaction (group commit);
//! only after the commit are they handed to the broker, in sequence order, and
//! acknowledged. Actix workers never wait on a database lock.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::messages::{self, MessageRow};
use super::Conn;
use crate::broker::message::{Envelope, Message};
use crate::broker::Broker;
use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;

/// At most this many publishes share one transaction.
const MAX_BATCH: usize = 512;

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
    /// Starts the writer thread on its own connection.
    pub fn start(url: &str, broker: Broker) -> Result<Self, String> {
        let mut conn = super::connect(url)?;
        let next_seq =
            messages::max_seq(&mut conn).map_err(|e| format!("cannot read database: {e}"))? + 1;
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tidings-writer".into())
            .spawn(move || run(conn, rx, broker, next_seq))
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

fn run(mut conn: Conn, jobs: Receiver<Job>, broker: Broker, mut next_seq: i64) {
    let mut publishes = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        let mut job = Some(first);
        while let Some(current) = job.take() {
            match current {
                Job::Publish { message, reply } => publishes.push((message, reply)),
                Job::Other(other) => {
                    commit(&mut conn, &mut publishes, &broker, &mut next_seq);
                    maintain(&mut conn, other);
                }
            }
            if publishes.len() < MAX_BATCH {
                job = jobs.try_recv().ok();
            }
        }
        commit(&mut conn, &mut publishes, &broker, &mut next_seq);
    }
}

/// Commits the pending publishes in one transaction, then delivers and acknowledges them.
fn commit(
    conn: &mut Conn,
    pending: &mut Vec<(Message, oneshot::Sender<ApiResult<Arc<Envelope>>>)>,
    broker: &Broker,
    next_seq: &mut i64,
) {
    if pending.is_empty() {
        return;
    }
    for (i, (message, _)) in pending.iter_mut().enumerate() {
        message.seq = *next_seq + i as i64;
    }
    let rows: Vec<MessageRow> = pending.iter().map(|(m, _)| MessageRow::from(m)).collect();
    let stored = conn.immediate_transaction(|conn| messages::insert_batch(conn, &rows));
    match stored {
        Ok(_) => {
            *next_seq += pending.len() as i64;
            METRICS.published(pending.len() as u64);
            for (message, reply) in pending.drain(..) {
                let envelope = Arc::new(Envelope::new(message));
                broker.deliver(envelope.clone());
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

fn maintain(conn: &mut Conn, job: Maintenance) {
    match job {
        Maintenance::Prune { now } => match messages::prune(conn, now) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "pruned expired messages"),
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        },
        Maintenance::DeleteTopic { topic, reply } => {
            let result = messages::delete_topic(conn, &topic);
            let _ = reply.send(result.map(drop).map_err(ApiError::from));
        }
    }
}
