//! Storing published messages, in sequence order; only once stored are they handed
//! to the broker, in that order, and acknowledged.
//!
//! On a single SQLite node the publishing worker numbers its message and appends it
//! to the journal itself, in turn with the other workers (one short lock around a
//! `write(2)`; no thread hop). The writer thread moves the journal into `messages`
//! in bulk and runs deletes. Otherwise (PostgreSQL, cluster mode) publishes go to the
//! writer thread, which stores those that arrive together in one transaction (group
//! commit). Actix workers never wait on a database lock.
//!
//! A full disk refuses publishes (503) but stops nothing else: a start on it serves
//! what is stored, and the writer thread retries what failed (moving the journal,
//! making it) every [`RETRY_EVERY`] until there is room again.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::journal::{self, Journal, Recent};
use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::db::messages::{self, MessageRow};
use crate::db::space::{OutOfSpace, Space, Writes};
use crate::db::{self, Backend, Conn};
use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;
use crate::model::message::{Envelope, Message};
use diesel::r2d2::R2D2Connection;
use diesel::QueryResult;

/// At most this many publishes share one transaction.
const MAX_BATCH: usize = 512;

/// Messages in the journal move into `messages` once this many wait. A move's fixed
/// costs (the commit's WAL frames, among them one leaf of the topic index per topic,
/// a checkpoint, a fresh journal file) are shared by that many: at a steady 10 000
/// publishes/s, 4096 cost the writer 7.4 µs per message against 10.1 with 1024.
const MOVE_AT: usize = 4096;

/// Publishes wait while this many messages wait to move (the writer is behind)...
const BACKLOG_LIMIT: usize = 64 * 1024;
/// ...for at most this long; then the database counts as unavailable (503).
const BACKLOG_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// While a write failed (a move, making the journal, growing its room), the writer
/// thread tries it again this often, so that storing resumes by itself once there is
/// room.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The nice value of a single SQLite node's writer thread (see [`yield_to_publishers`]).
const MOVER_NICE: libc::c_int = 19;

enum Job {
    Publish {
        message: Message,
        reply: oneshot::Sender<ApiResult<Arc<Envelope>>>,
    },
    /// Move the journal into `messages`.
    Move,
    /// A journal write failed for lack of space: try again until there is room.
    Recover,
    Other(Maintenance),
    /// Shutdown: store what waits, move the journal in, checkpoint, and stop.
    Finish {
        done: oneshot::Sender<()>,
    },
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
    storage: Storage,
    space: Space,
}

/// What a single SQLite node's publishers share: the last number handed out and the
/// journal, taken in turn.
#[derive(Clone)]
struct Ledger {
    shared: Arc<Mutex<Book>>,
    /// The database's path, which names the journal's files.
    database: Arc<str>,
    /// The journal's messages, read without the lock.
    recent: Recent,
    broker: Broker,
    space: Space,
}

struct Book {
    /// This node is the only one storing messages, so it counts their numbers in
    /// memory, and writes the count to the stored counter before it deletes messages:
    /// numbers are never handed out twice, even after a restart.
    last: i64,
    /// `None` while it cannot be made (a full disk): publishes are refused, and what an
    /// earlier run journaled waits in [`Recent`] to be moved first.
    journal: Option<Journal>,
    /// Whether the writer thread was asked to move the journal and has not finished.
    moving: bool,
}

impl Ledger {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The moves run at a low priority; should they fall [`BACKLOG_LIMIT`] behind (a
    /// CPU busy for long, or moves that fail), publishes wait for them a while, so
    /// memory stays bounded.
    async fn wait_for_moves(&self) -> ApiResult<()> {
        let waited = std::time::Instant::now();
        while self.recent.len() >= BACKLOG_LIMIT {
            // Moves wait for room on the disk, not for the CPU: no use waiting.
            if self.space.full() {
                return Err(ApiError::StorageFull);
            }
            if waited.elapsed() >= BACKLOG_WAIT {
                tracing::error!("publishing waits on moves into messages that do not end");
                return Err(ApiError::DatabaseUnavailable);
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Numbers a message, journals it and hands it to the broker, all in turn with
    /// other publishes; asks `jobs` for a move once enough wait.
    fn publish(&self, mut message: Message, jobs: &Sender<Job>) -> ApiResult<Arc<Envelope>> {
        let mut book = self.book();
        let Book {
            last,
            journal,
            moving,
        } = &mut *book;
        let journal = journal.as_mut().ok_or(ApiError::StorageFull)?;
        number(std::slice::from_mut(&mut message), *last + 1);
        let envelope = Arc::new(Envelope::new(message));
        let appended = journal.append(std::slice::from_ref(&envelope));
        self.space.note(Writes::Publish, &appended);
        if let Err(error) = appended {
            tracing::error!(%error, "journaling a message failed");
            let _ = jobs.send(Job::Recover);
            return Err(refusal(&error));
        }
        *last += 1;
        self.broker.deliver(envelope.clone());
        if !*moving && journal.waiting() >= MOVE_AT {
            *moving = true;
            let _ = jobs.send(Job::Move);
        }
        drop(book);
        METRICS.published(1);
        Ok(envelope)
    }
}

impl Writer {
    /// Starts the writer thread on its own connection. In cluster mode it also
    /// announces every committed batch to the other nodes.
    pub fn start(url: &str, broker: Broker, cluster: Option<Cluster>) -> Result<Self, String> {
        let backend = Backend::parse(url)?;
        let mut conn = Link {
            url: url.to_string(),
            conn: Some(db::connect(url)?),
        };
        let space = Space::default();
        // Messages journaled by an earlier run move in first, whatever this run does;
        // on a full disk a single node keeps them for readers and moves them later.
        let mut unmoved = Vec::new();
        if let Backend::Sqlite(database) = &backend {
            let rows = journal::leftovers(database)
                .map_err(|e| format!("cannot read the journal of {database}: {e}"))?;
            let moved = conn.with(|conn| messages::move_in(conn, &rows));
            space.note(Writes::Move, &moved);
            match moved {
                Ok(moved) if !rows.is_empty() => {
                    tracing::info!(moved, "moved messages journaled by an earlier run");
                }
                Ok(_) => {}
                Err(e) if e.out_of_space() && cluster.is_none() => {
                    tracing::error!(
                        waiting = rows.len(),
                        "cannot move journaled messages yet: {e}"
                    );
                    unmoved = rows;
                }
                Err(e) => return Err(format!("cannot move journaled messages: {e}")),
            }
        }
        let recent = Recent::default();
        let storage = match &backend {
            // One node on SQLite: no one else stores messages.
            Backend::Sqlite(database) if cluster.is_none() => {
                let counted = conn
                    .with(messages::last_seq)
                    .map_err(|e| format!("cannot read the message counter: {e}"))?;
                let last = unmoved.last().map_or(counted, |row| row.seq.max(counted));
                let journal = if unmoved.is_empty() {
                    let made = Journal::create(database, recent.clone());
                    space.note(Writes::Publish, &made);
                    match made {
                        Ok(journal) => Some(journal),
                        Err(e) if e.out_of_space() => None,
                        Err(e) => {
                            return Err(format!("cannot open the journal of {database}: {e}"))
                        }
                    }
                } else {
                    recent.restore(unmoved);
                    None
                };
                let book = Book {
                    last,
                    journal,
                    moving: false,
                };
                let ledger = Ledger {
                    shared: Arc::new(Mutex::new(book)),
                    database: database.as_str().into(),
                    recent: recent.clone(),
                    broker: broker.clone(),
                    space: space.clone(),
                };
                Storage::Alone(ledger)
            }
            Backend::Sqlite(database) => {
                journal::remove(database)
                    .map_err(|e| format!("cannot remove the journal of {database}: {e}"))?;
                Storage::Shared(recent)
            }
            Backend::Postgres(_) => Storage::Shared(recent),
        };
        let (jobs, rx) = mpsc::channel();
        let fanout = Fanout { broker, cluster };
        // With no journal (a full disk), the writer tries to make one from the start.
        let retry = matches!(&storage, Storage::Alone(ledger) if ledger.book().journal.is_none());
        let store = Store {
            conn,
            storage: storage.clone(),
            space: space.clone(),
            retry,
        };
        std::thread::Builder::new()
            .name("tidings-writer".into())
            .spawn(move || run(store, rx, fanout))
            .map_err(|e| format!("cannot start writer thread: {e}"))?;
        Ok(Self {
            jobs,
            storage,
            space,
        })
    }

    /// Whether storing fails for lack of disk space (until a write succeeds again).
    pub fn storage_full(&self) -> bool {
        self.space.full()
    }

    /// Messages stored in the journal and not yet in `messages`, for readers.
    pub fn recent(&self) -> &Recent {
        match &self.storage {
            Storage::Alone(ledger) => &ledger.recent,
            Storage::Shared(none) => none,
        }
    }

    /// Stores a message; resolves once it is committed and handed to the broker.
    pub async fn publish(&self, message: Message) -> ApiResult<Arc<Envelope>> {
        if let Storage::Alone(ledger) = &self.storage {
            if ledger.recent.len() >= BACKLOG_LIMIT {
                ledger.wait_for_moves().await?;
            }
            return ledger.publish(message, &self.jobs);
        }
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

    /// At shutdown, once nothing publishes any more: stores every publish handed over,
    /// moves the journal into `messages` and checkpoints SQLite's WAL, so that the
    /// database file alone holds every acknowledged message. The writer thread then
    /// stops; publishes after this are refused.
    pub async fn finish(&self) {
        let (done, finished) = oneshot::channel();
        if self.send(Job::Finish { done }).is_ok() {
            let _ = finished.await;
        }
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
                match db::connect(&self.url) {
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
#[derive(Clone)]
enum Storage {
    /// This writer is the only one storing messages: publishers journal them (see
    /// [`Ledger`]), and it moves the journal into `messages` once [`MOVE_AT`] wait.
    Alone(Ledger),
    /// Other nodes may store messages too (PostgreSQL, or a database shared in cluster
    /// mode): each batch reserves its numbers from the stored counter, whose row lock
    /// orders every node's commits, and goes straight into `messages`. Nothing waits
    /// in a journal: readers find its [`Recent`] empty.
    Shared(Recent),
}

/// Everything the writer thread owns of the database.
struct Store {
    conn: Link,
    storage: Storage,
    space: Space,
    /// Whether a write failed that the writer thread tries again by itself.
    retry: bool,
}

/// Where committed messages go: this node's subscribers, and the other nodes.
struct Fanout {
    broker: Broker,
    cluster: Option<Cluster>,
}

type Reply = oneshot::Sender<ApiResult<Arc<Envelope>>>;
type Pending = Vec<(Message, Reply)>;

/// A stored batch, encoded.
type Stored = Vec<Arc<Envelope>>;

fn run(mut store: Store, jobs: Receiver<Job>, fanout: Fanout) {
    if matches!(store.storage, Storage::Alone(_)) {
        yield_to_publishers();
    }
    let mut publishes = Vec::with_capacity(MAX_BATCH);
    let mut finished = None;
    while finished.is_none() {
        let first = match jobs.recv_timeout(store.wait()) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                store.recover();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut job = Some(first);
        while let Some(current) = job.take() {
            match current {
                Job::Publish { message, reply } => publishes.push((message, reply)),
                Job::Move => {
                    store.commit(&mut publishes, &fanout);
                    store.move_journal();
                }
                Job::Recover => store.retry = true,
                Job::Other(other) => {
                    store.commit(&mut publishes, &fanout);
                    store.maintain(other);
                }
                Job::Finish { done } => finished = Some(done),
            }
            if publishes.len() < MAX_BATCH {
                job = jobs.try_recv().ok();
            }
        }
        store.commit(&mut publishes, &fanout);
    }
    if let Some(done) = finished {
        store.finish();
        let _ = done.send(());
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
        let stored = self.store(batch);
        self.space.note(Writes::Publish, &stored);
        match stored {
            Ok(envelopes) => {
                METRICS.published(count as u64);
                METRICS.batch_stored(count);
                // In cluster mode, messages come back through Redis to be delivered here
                // too, in the order every node sees; locally only while Redis is away.
                let through_cluster = fanout
                    .cluster
                    .as_ref()
                    .is_some_and(|cluster| cluster.announce_messages(&envelopes));
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
                    let _ = reply.send(Err(refusal(&error)));
                }
            }
        }
    }

    /// Numbers a batch and stores it in one transaction.
    fn store(&mut self, mut batch: Vec<Message>) -> QueryResult<Stored> {
        self.conn.with(|conn| {
            db::transaction(conn, |conn| {
                let first = messages::reserve_seqs(conn, batch.len() as i64)?;
                number(&mut batch, first);
                let rows: Vec<MessageRow> = batch.iter().map(MessageRow::from).collect();
                messages::insert_batch(conn, &rows)
            })
        })?;
        Ok(encode(batch))
    }

    /// How long the writer thread waits for a job before it tries again what failed.
    fn wait(&self) -> std::time::Duration {
        if self.retry {
            RETRY_EVERY
        } else {
            // A day: as good as for ever, with no overflow to fear.
            std::time::Duration::from_secs(86_400)
        }
    }

    /// Tries again what failed: a move (or, with no journal, moving what an earlier run
    /// left and making the journal), or growing the journal's room.
    fn recover(&mut self) {
        let Storage::Alone(ledger) = &self.storage else {
            self.retry = false;
            return;
        };
        let grown = {
            let mut book = ledger.book();
            match book.journal.as_mut() {
                Some(journal) if self.space.full() => Some(journal.grow()),
                _ => None,
            }
        };
        if let Some(grown) = &grown {
            self.space.note(Writes::Publish, grown);
        }
        self.move_journal();
    }

    /// With no journal (a full disk at start-up, or since): moves what [`Recent`]
    /// holds, then makes the journal, so publishes resume.
    fn make_journal(&mut self, ledger: &Ledger) {
        let count = ledger.recent.len();
        let rows = ledger.recent.rows(count);
        let moved = self.conn.with(|conn| messages::move_in(conn, &rows));
        self.space.note(Writes::Move, &moved);
        if let Err(e) = moved {
            tracing::debug!(error = %e, "journaled messages still cannot move");
            return;
        }
        let made = Journal::create(&ledger.database, ledger.recent.clone());
        self.space.note(Writes::Publish, &made);
        match made {
            Ok(journal) => {
                ledger.book().journal = Some(journal);
                self.retry = false;
                tracing::info!(moved = count, "storing messages again");
            }
            Err(e) => tracing::debug!(error = %e, "the journal still cannot be made"),
        }
    }

    /// Moves the journal's messages into `messages`. Publishes go on meanwhile, to a
    /// fresh journal file.
    fn move_journal(&mut self) {
        let Storage::Alone(ledger) = &self.storage else {
            return;
        };
        let ledger = ledger.clone();
        if ledger.book().journal.is_none() {
            self.retry = true;
            self.make_journal(&ledger);
            return;
        }
        if ledger.recent.is_empty() {
            ledger.book().moving = false;
            self.retry = self.space.full();
            return;
        }
        // Only the swap of files holds up publishers: the fresh one is made before (not
        // needed while an earlier move's file is still aside), and the old mapping
        // set_aside lets go of is dropped after the lock is released.
        let fresh = match journal::move_pending(&ledger.database) {
            true => Ok(None),
            false => journal::Fresh::create(&ledger.database).map(Some),
        };
        let aside = fresh.and_then(|fresh| match ledger.book().journal.as_mut() {
            Some(journal) => journal.set_aside(fresh),
            None => Err(std::io::Error::other("no journal")),
        });
        let count = match aside {
            Ok(aside) if aside.count > 0 => aside.count,
            other => {
                if let Err(e) = &other {
                    tracing::error!(error = %e, "cannot set the journal aside");
                    self.space.note(Writes::Move, &other);
                    self.retry = true;
                }
                ledger.book().moving = false;
                return;
            }
        };
        // Publishes go on meanwhile: they only add to the end.
        let rows = ledger.recent.rows(count);
        let started = std::time::Instant::now();
        let result = self.conn.with(|conn| messages::move_in(conn, &rows));
        self.space.note(Writes::Move, &result);
        self.retry = result.is_err() || self.space.full();
        // The moved messages are freed after the lock is released, as they are dropped.
        let _moved = {
            let mut book = ledger.book();
            book.moving = false;
            match book.journal.as_mut() {
                Some(journal) if result.is_ok() => Some(journal.moved(count)),
                _ => None,
            }
        };
        match result {
            Ok(moved) => {
                METRICS.batch_stored(moved);
                // Should removing the file fail, the next start skips what is stored.
                if let Err(e) = journal::remove_moved(&ledger.database) {
                    tracing::error!(error = %e, "cannot remove the moved journal");
                }
                tracing::debug!(moved, took = ?started.elapsed(), "moved journaled messages");
            }
            Err(e) => tracing::error!(error = %e, "moving journaled messages failed"),
        }
    }

    /// Moves everything journaled into `messages`, lets go of the journal (its file
    /// removed) and checkpoints the WAL.
    fn finish(&mut self) {
        if let Storage::Alone(ledger) = &self.storage {
            let ledger = ledger.clone();
            // A move that a failure left aside is retried first; bounded, so a full
            // disk cannot hold the shutdown (what stays journaled moves at next start).
            for _ in 0..3 {
                if ledger.recent.is_empty() {
                    break;
                }
                self.move_journal();
            }
            let moved = ledger.recent.is_empty();
            if moved && ledger.book().journal.take().is_some() {
                if let Err(e) = journal::remove(&ledger.database) {
                    tracing::error!(error = %e, "cannot remove the journal");
                }
            }
            if !moved {
                tracing::error!(
                    left = ledger.recent.len(),
                    "journaled messages stay to be moved at the next start"
                );
            }
        }
        match self.conn.with(db::checkpoint) {
            Ok(()) => tracing::info!("messages stored, database checkpointed"),
            Err(e) => tracing::error!(error = %e, "checkpointing the database failed"),
        }
    }

    /// Runs a delete, after the journal moved in so that it covers every message.
    fn maintain(&mut self, job: Maintenance) {
        self.move_journal();
        let counted = match &self.storage {
            Storage::Alone(ledger) => Some(ledger.book().last),
            Storage::Shared(_) => None,
        };
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

/// What a publisher is told when its message could not be stored.
fn refusal(error: &impl OutOfSpace) -> ApiError {
    if error.out_of_space() {
        ApiError::StorageFull
    } else {
        ApiError::DatabaseUnavailable
    }
}

/// Lowers the calling thread's priority: where the writer thread only moves the
/// journal into `messages` (work no publisher waits for), the HTTP workers go first
/// whenever both want a core, and moves take the time they leave.
fn yield_to_publishers() {
    // SAFETY: plain system calls on this thread's own id.
    let lowered = unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, MOVER_NICE)
    };
    if lowered != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "writer keeps its priority");
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
