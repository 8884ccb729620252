//! The journal of a single SQLite node: every acknowledged message not yet moved into
//! `messages`. Each message is one JSON line (its contract JSON, already encoded for
//! subscribers) in a file beside the database (`<database>-recent`), written before
//! its publisher is answered, and kept in memory for readers until the writer moves
//! them into `messages` in one transaction.
//!
//! The file is mapped into memory, its room reserved on disk ahead (`fallocate`), so a
//! write is a copy into the page cache with no system call: like a SQLite commit with
//! `synchronous = NORMAL`, it survives a crash or kill of the process once copied, and
//! a full disk is found when room is reserved, before anything is acknowledged. What
//! follows the last line is zeros. A move first sets the file aside
//! (`<database>-recent.moving`) so that new messages go on to a fresh one meanwhile,
//! and deletes it once its messages are committed.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, PoisonError, RwLock};

use memmap2::MmapMut;

use crate::db::messages::MessageRow;
use crate::model::message::{Envelope, Message};
use crate::model::since::Since;

/// The journal file of the SQLite database at `database`.
pub fn path_of(database: &str) -> String {
    format!("{database}-recent")
}

/// Where the journal file waits while its messages move into `messages`.
fn moving_path_of(database: &str) -> String {
    format!("{database}-recent.moving")
}

/// Where the fresh journal file is made before it takes the current one's place.
fn next_path_of(database: &str) -> String {
    format!("{database}-recent.next")
}

/// Messages written to the journal and not yet moved, oldest first; shared by the
/// writer (the only one to change it) and the readers of stored messages. Always
/// empty where messages go straight into `messages` (PostgreSQL, cluster mode).
#[derive(Clone, Default)]
pub struct Recent(Arc<RwLock<Vec<Arc<Envelope>>>>);

impl Recent {
    /// Messages of `topics` that `since` asks for, oldest first.
    pub fn of(&self, topics: &[String], since: &Since, known: Option<i64>) -> Vec<Message> {
        let wanted = |m: &Message| match since {
            Since::None => false,
            Since::All | Since::Latest => true,
            Since::Time(t) => m.time >= *t,
            Since::Seq(seq) => m.seq > *seq,
            Since::Id(_) => m.seq > known.unwrap_or(0),
        };
        // Arcs only under the lock, so publishes never wait for a reader's copies.
        let found: Vec<Arc<Envelope>> = self
            .read()
            .iter()
            .filter(|e| topics.contains(&e.message.topic) && wanted(&e.message))
            .cloned()
            .collect();
        found.iter().map(|e| e.message.clone()).collect()
    }

    /// The sequence number of the message with this id, if it is here.
    pub fn find(&self, id: &str) -> Option<i64> {
        self.read()
            .iter()
            .find(|e| e.message.id == id)
            .map(|e| e.seq())
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shows readers the messages an earlier run journaled, while they cannot be moved
    /// into `messages` yet (a start on a full disk).
    pub fn restore(&self, rows: Vec<MessageRow>) {
        let restored = rows
            .into_iter()
            .map(|row| Arc::new(Envelope::new(Message::from(row))));
        self.write().extend(restored);
    }

    /// The first `count` messages, as rows to move into `messages`.
    pub fn rows(&self, count: usize) -> Vec<MessageRow> {
        // Arcs only under the lock; the rows are made after it.
        let first: Vec<Arc<Envelope>> = self.read().iter().take(count).cloned().collect();
        first.iter().map(|e| MessageRow::from(&e.message)).collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Envelope>>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Envelope>>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Room a fresh journal file starts with; it doubles whenever a write would not fit.
const FIRST_ROOM: usize = 1 << 20;

/// The open journal file and what it holds.
pub struct Journal {
    file: Mapped,
    recent: Recent,
    /// The database's path, which names the journal's files.
    database: String,
}

/// A journal file mapped into memory, with room reserved on disk for all of it.
struct Mapped {
    file: File,
    map: MmapMut,
    /// Bytes written so far; zeros follow.
    len: usize,
}

impl Mapped {
    /// Creates (or empties) the file at `path` with [`FIRST_ROOM`] reserved, its
    /// pages mapped ahead (no page fault on the first write to each).
    fn create(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        let map = reserve(&file, FIRST_ROOM, true)?;
        Ok(Self { file, map, len: 0 })
    }

    /// Copies `lines` in after what is written, each ending in a newline, first
    /// making room if needed. Fails (writing nothing) only when no room can be reserved.
    fn write_lines<'a>(&mut self, lines: impl Iterator<Item = &'a [u8]> + Clone) -> io::Result<()> {
        self.make_room(self.len + lines.clone().map(|line| line.len() + 1).sum::<usize>())?;
        for line in lines {
            let at = self.len;
            self.map[at..at + line.len()].copy_from_slice(line);
            self.map[at + line.len()] = b'\n';
            self.len = at + line.len() + 1;
        }
        Ok(())
    }
}

impl Mapped {
    /// Makes `end` bytes fit, reserving more room (at least twice as much) if needed.
    fn make_room(&mut self, end: usize) -> io::Result<()> {
        if end > self.map.len() {
            let room = end.next_power_of_two().max(2 * self.map.len());
            self.map = reserve(&self.file, room, false)?;
        }
        Ok(())
    }
}

/// Reserves `room` bytes on disk for `file` (zeros where nothing is written yet) and
/// maps all of it, its pages ahead when `populate`.
fn reserve(file: &File, room: usize, populate: bool) -> io::Result<MmapMut> {
    let length = libc::off_t::try_from(room).map_err(|_| io::ErrorKind::FileTooLarge)?;
    // SAFETY: a plain call on an open descriptor this function borrows.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, length) } {
        0 => {}
        error => return Err(io::Error::from_raw_os_error(error)),
    }
    let mut options = memmap2::MmapOptions::new();
    if populate {
        options.populate();
    }
    // SAFETY: only this journal writes the file while it is mapped; a start-up reads
    // it only after the process that wrote it is gone.
    unsafe { options.map_mut(file) }
}

/// A fresh journal file for the database at `database`, made ahead of a move without
/// holding up publishers.
pub struct Fresh {
    file: Mapped,
}

impl Fresh {
    pub fn create(database: &str) -> io::Result<Self> {
        Ok(Self {
            file: Mapped::create(&next_path_of(database))?,
        })
    }
}

impl Journal {
    /// Starts an empty journal for the database at `database`; whatever an earlier run
    /// left there must have been moved first (see [`leftovers`]).
    pub fn create(database: &str, recent: Recent) -> io::Result<Self> {
        remove(database)?;
        recent.write().clear();
        Ok(Self {
            file: Mapped::create(&path_of(database))?,
            recent,
            database: database.to_string(),
        })
    }

    /// Reserves the room the next write that does not fit would take: whether the
    /// disk has room again, once a write failed for lack of it.
    pub fn grow(&mut self) -> io::Result<()> {
        self.file.make_room(self.file.map.len() + 1)
    }

    /// Writes a numbered batch, then shows it to readers. On failure nothing of the
    /// batch is in the file.
    pub fn append(&mut self, batch: &[Arc<Envelope>]) -> io::Result<()> {
        self.file
            .write_lines(batch.iter().map(|e| str::as_bytes(&e.json)))?;
        self.recent.write().extend(batch.iter().cloned());
        Ok(())
    }

    /// Starts a move: sets the file aside and puts `fresh` in its place, and says how
    /// many messages to move (the first ones of [`Recent`]). Where an earlier move
    /// failed, its file is still set aside (see [`move_pending`]): the current one
    /// then stays, no fresh one is needed, and the next start skips those of its lines
    /// already moved. Should a rename fail, publishes go on to the current file, which
    /// stays where it is.
    pub fn set_aside(&mut self, fresh: Option<Fresh>) -> io::Result<SetAside> {
        let database = &self.database;
        let (current, moving) = (path_of(database), moving_path_of(database));
        let next = next_path_of(database);
        let retired = if std::path::Path::new(&moving).exists() {
            if fresh.is_some() {
                let _ = std::fs::remove_file(&next);
            }
            fresh.map(|fresh| fresh.file)
        } else {
            let Some(Fresh { file }) = fresh else {
                return Err(io::Error::other("no fresh journal file to go on with"));
            };
            let swapped = std::fs::rename(&current, &moving).and_then(|()| {
                std::fs::rename(&next, &current).inspect_err(|_| {
                    let _ = std::fs::rename(&moving, &current);
                })
            });
            if let Err(e) = swapped {
                let _ = std::fs::remove_file(&next);
                return Err(e);
            }
            Some(std::mem::replace(&mut self.file, file))
        };
        Ok(SetAside {
            count: self.waiting(),
            _retired: retired,
        })
    }

    /// Ends a move of the first `count` messages, committed to `messages`; the file
    /// set aside is then [`remove_moved`]. Returns those messages, for the caller to
    /// drop once it no longer holds up publishers (freeing thousands takes a while).
    #[must_use = "drop the moved messages outside the publishers' lock"]
    pub fn moved(&mut self, count: usize) -> Vec<Arc<Envelope>> {
        self.recent.write().drain(..count).collect()
    }

    /// How many messages wait to be moved.
    pub fn waiting(&self) -> usize {
        self.recent.len()
    }
}

/// What [`Journal::set_aside`] did: how many messages to move, and the mapping it
/// let go of, for the caller to drop once it no longer holds up publishers
/// (unmapping a file takes a while).
pub struct SetAside {
    pub count: usize,
    _retired: Option<Mapped>,
}

/// What an earlier run left in the journal of the database at `database` (the file
/// set aside for a move too), in sequence order. The zeros after the last line are
/// room never written; a line cut short by a crash was never acknowledged and is
/// skipped. Also read while a server runs (a backup): the current file is read
/// before the one set aside, so a message moved meanwhile is read from the file set
/// aside, or, once that is gone, is committed to `messages`.
pub fn leftovers(database: &str) -> io::Result<Vec<MessageRow>> {
    let mut rows = BTreeMap::new();
    for path in [path_of(database), moving_path_of(database)] {
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let written = text
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        for line in text[..written]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            match Message::from_json(line).map(|m| MessageRow::from(&m)) {
                Some(row) => {
                    rows.insert(row.seq, row);
                }
                None => tracing::warn!(bytes = line.len(), "skipping an unreadable journal line"),
            }
        }
    }
    Ok(rows.into_values().collect())
}

/// Whether the file of an earlier move is still set aside (that move failed): the next
/// move takes its messages too, and needs no fresh file.
pub fn move_pending(database: &str) -> bool {
    std::path::Path::new(&moving_path_of(database)).exists()
}

/// Removes the file set aside for a move, once its messages are committed.
pub fn remove_moved(database: &str) -> io::Result<()> {
    remove_file(&moving_path_of(database))
}

/// Removes the journal of the database at `database`, once what it held is moved.
pub fn remove(database: &str) -> io::Result<()> {
    [
        moving_path_of(database),
        path_of(database),
        next_path_of(database),
    ]
    .iter()
    .try_for_each(|path| remove_file(path))
}

/// Removes a file; one that is not there counts as removed.
fn remove_file(path: &str) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::message::MESSAGE_EVENT;

    fn envelope(seq: i64, topic: &str, time: i64) -> Arc<Envelope> {
        Arc::new(Envelope::new(Message {
            id: crate::util::message_id(seq),
            time,
            event: MESSAGE_EVENT,
            topic: topic.into(),
            message: format!("m{seq}\nsecond line"),
            title: (seq % 2 == 0).then(|| "title".to_string()),
            priority: 4,
            tags: vec!["a".into(), "b".into()],
            expires: time + 60,
            seq,
        }))
    }

    /// A database path in a fresh temp dir (kept while the dir lives).
    fn temp_database() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db").display().to_string();
        (dir, db)
    }

    #[test]
    fn written_batches_come_back_in_order_and_cut_lines_are_skipped() {
        use std::os::unix::fs::FileExt;
        let (_dir, db) = temp_database();
        let db = db.as_str();
        let mut journal = Journal::create(db, Recent::default()).unwrap();
        let first = envelope(1, "a", 10);
        journal
            .append(&[first.clone(), envelope(2, "b", 11)])
            .unwrap();
        let third = envelope(3, "a", 12);
        journal.append(std::slice::from_ref(&third)).unwrap();
        // Zeros follow the last line: the room reserved ahead.
        let written = journal.file.len as u64;
        assert_eq!(
            std::fs::metadata(path_of(db)).unwrap().len(),
            FIRST_ROOM as u64
        );
        // A crash in the middle of a copy leaves half a line before the zeros.
        let file = OpenOptions::new().write(true).open(path_of(db)).unwrap();
        file.write_all_at(br#"{"id":"0000004abcde","ti"#, written)
            .unwrap();

        let rows = leftovers(db).unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let messages: Vec<Message> = rows.into_iter().map(Message::from).collect();
        assert_eq!(messages[0], first.message);
        assert_eq!(messages[2], third.message);
    }

    #[test]
    fn the_file_grows_past_its_first_room() {
        let (_dir, db) = temp_database();
        let db = db.as_str();
        let mut journal = Journal::create(db, Recent::default()).unwrap();
        let batch: Vec<_> = (1..=12000).map(|seq| envelope(seq, "a", seq)).collect();
        let bytes: usize = batch.iter().map(|e| e.json.len() + 1).sum();
        assert!(bytes > FIRST_ROOM);
        for chunk in batch.chunks(7) {
            journal.append(chunk).unwrap();
        }
        assert_eq!(journal.waiting(), 12000);
        let room = std::fs::metadata(path_of(db)).unwrap().len();
        assert!(room >= bytes as u64 && room > FIRST_ROOM as u64);
        let seqs: Vec<i64> = leftovers(db).unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=12000).collect::<Vec<_>>());
    }

    #[test]
    fn readers_see_what_since_asks_for_until_it_is_cleared() {
        let (_dir, db) = temp_database();
        let db = db.as_str();
        let recent = Recent::default();
        let mut journal = Journal::create(db, recent.clone()).unwrap();
        journal
            .append(&[envelope(5, "a", 100), envelope(6, "b", 101)])
            .unwrap();
        journal.append(&[envelope(7, "a", 102)]).unwrap();
        let a = ["a".to_string()];
        let seqs = |since: &Since, known| {
            recent
                .of(&a, since, known)
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(&Since::All, None), [5, 7]);
        assert_eq!(seqs(&Since::Time(102), None), [7]);
        assert_eq!(seqs(&Since::Seq(5), None), [7]);
        assert_eq!(seqs(&Since::Id("x".into()), Some(6)), [7]);
        assert!(seqs(&Since::None, None).is_empty());
        // An id's random tail must match too.
        assert_eq!(recent.find(&crate::util::message_id(6)), None);
        let id = recent.read()[1].message.id.clone();
        assert_eq!(recent.find(&id), Some(6));
        assert_eq!(recent.rows(2).len(), 2);

        // A move sets the file aside; a publish meanwhile goes to a fresh one.
        assert_eq!(
            journal
                .set_aside(Some(Fresh::create(db).unwrap()))
                .unwrap()
                .count,
            3
        );
        journal.append(&[envelope(8, "a", 103)]).unwrap();
        let both = |db| {
            leftovers(db)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(both(db), [5, 6, 7, 8]);
        drop(journal.moved(3));
        remove_moved(db).unwrap();
        assert_eq!(seqs(&Since::All, None), [8]);
        assert_eq!(both(db), [8]);
        remove(db).unwrap();
        remove(db).unwrap();
    }

    #[test]
    fn a_failed_move_is_tried_again_without_a_fresh_file() {
        let (_dir, db) = temp_database();
        let db = db.as_str();
        let mut journal = Journal::create(db, Recent::default()).unwrap();
        journal.append(&[envelope(1, "a", 10)]).unwrap();
        assert!(
            journal.set_aside(None).is_err(),
            "a first move needs a fresh file"
        );
        let fresh = Fresh::create(db).unwrap();
        assert_eq!(journal.set_aside(Some(fresh)).unwrap().count, 1);
        assert!(move_pending(db));
        // That move failed; the next one takes what came since too.
        journal.append(&[envelope(2, "a", 11)]).unwrap();
        assert_eq!(journal.set_aside(None).unwrap().count, 2);
        drop(journal.moved(2));
        remove_moved(db).unwrap();
        assert!(!move_pending(db));
        // Growing the room is how a full disk is found to have room again.
        journal.grow().unwrap();
        let room = std::fs::metadata(path_of(db)).unwrap().len();
        assert_eq!(room, 2 * FIRST_ROOM as u64);
    }
}
