//! The journal of a single SQLite node: every acknowledged message not yet moved into
//! `messages`. Each message is one JSON line (its contract JSON, already encoded for
//! subscribers) in a file beside the database (`<database>-recent`), written before
//! its publisher is answered, and kept in memory for readers until the writer moves
//! the lot into `messages` in one transaction.
//!
//! A batch is one `write(2)`: like a SQLite commit with `synchronous = NORMAL`, it
//! survives a crash or kill of the process once written, with no index to update.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Arc, PoisonError, RwLock};

use serde::Deserialize;

use super::messages::MessageRow;
use crate::broker::message::{Envelope, Message, MESSAGE_EVENT};
use crate::broker::since::Since;

/// The journal file of the SQLite database at `database`.
pub fn path_of(database: &str) -> String {
    format!("{database}-recent")
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
        self.read()
            .iter()
            .map(|e| &e.message)
            .filter(|m| topics.contains(&m.topic) && wanted(m))
            .cloned()
            .collect()
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

    /// The rows to move into `messages`.
    pub fn rows(&self) -> Vec<MessageRow> {
        self.read()
            .iter()
            .map(|e| MessageRow::from(&e.message))
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Envelope>>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Envelope>>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The open journal file and what it holds.
pub struct Journal {
    file: File,
    /// Bytes written so far: where a failed write is cut back to.
    len: u64,
    recent: Recent,
}

impl Journal {
    /// Starts an empty journal for the database at `database`; whatever an earlier run
    /// left there must have been moved first (see [`leftovers`]).
    pub fn create(database: &str, recent: Recent) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path_of(database))?;
        file.set_len(0)?;
        recent.write().clear();
        Ok(Self {
            file,
            len: 0,
            recent,
        })
    }

    /// Writes a numbered batch, then shows it to readers. On failure nothing of the
    /// batch stays in the file.
    pub fn append(&mut self, batch: &[Arc<Envelope>]) -> io::Result<()> {
        let mut lines = Vec::with_capacity(batch.iter().map(|e| e.json.len() + 1).sum());
        for envelope in batch {
            lines.extend_from_slice(envelope.json.as_bytes());
            lines.push(b'\n');
        }
        if let Err(e) = self.file.write_all(&lines) {
            if let Err(cut) = self.file.set_len(self.len) {
                tracing::error!(error = %cut, "cannot cut back the journal after a failed write");
            }
            return Err(e);
        }
        self.len += lines.len() as u64;
        self.recent.write().extend(batch.iter().cloned());
        Ok(())
    }

    /// Empties the journal once its messages are committed to `messages`.
    pub fn clear(&mut self) -> io::Result<()> {
        self.recent.write().clear();
        self.len = 0;
        self.file.set_len(0)
    }

    pub fn recent(&self) -> &Recent {
        &self.recent
    }
}

/// One journal line: a message's contract JSON (its sequence number leads its id).
#[derive(Deserialize)]
struct Line {
    id: String,
    time: i64,
    topic: String,
    message: String,
    #[serde(default)]
    title: Option<String>,
    priority: u8,
    #[serde(default)]
    tags: Vec<String>,
    expires: i64,
}

impl Line {
    fn into_row(self) -> Option<MessageRow> {
        let seq = crate::util::message_seq(&self.id)?;
        let message = Message {
            id: self.id,
            time: self.time,
            event: MESSAGE_EVENT,
            topic: self.topic,
            message: self.message,
            title: self.title,
            priority: self.priority,
            tags: self.tags,
            expires: self.expires,
            seq,
        };
        Some(MessageRow::from(&message))
    }
}

/// What an earlier run left in the journal of the database at `database`, in
/// sequence order. A line cut short by a crash was never acknowledged and is skipped;
/// where a number appears twice (a write that failed and could not be cut back), the
/// later line is the one that was acknowledged.
pub fn leftovers(database: &str) -> io::Result<Vec<MessageRow>> {
    let text = match std::fs::read(path_of(database)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut rows = BTreeMap::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Line>(line)
            .ok()
            .and_then(Line::into_row)
        {
            Some(row) => {
                rows.insert(row.seq, row);
            }
            None => tracing::warn!(bytes = line.len(), "skipping an unreadable journal line"),
        }
    }
    Ok(rows.into_values().collect())
}

/// Removes the journal of the database at `database` once its leftovers are moved
/// and this run keeps none.
pub fn remove(database: &str) -> io::Result<()> {
    match std::fs::remove_file(path_of(database)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn written_batches_come_back_in_order_and_cut_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let db = db.to_str().unwrap();
        let mut journal = Journal::create(db, Recent::default()).unwrap();
        let first = envelope(1, "a", 10);
        journal
            .append(&[first.clone(), envelope(2, "b", 11)])
            .unwrap();
        journal.append(&[envelope(3, "a", 12)]).unwrap();
        // A number written twice: the later line is the acknowledged one.
        let again = envelope(3, "c", 13);
        journal.append(std::slice::from_ref(&again)).unwrap();
        // A crash in the middle of a write leaves half a line.
        let mut file = OpenOptions::new().append(true).open(path_of(db)).unwrap();
        file.write_all(br#"{"id":"0000004abcde","ti"#).unwrap();

        let rows = leftovers(db).unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let messages: Vec<Message> = rows.into_iter().map(Message::from).collect();
        assert_eq!(messages[0], first.message);
        assert_eq!(messages[2], again.message);
    }

    #[test]
    fn readers_see_what_since_asks_for_until_it_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let db = db.to_str().unwrap();
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
        assert_eq!(recent.rows().len(), 3);

        journal.clear().unwrap();
        assert!(recent.is_empty());
        assert!(leftovers(db).unwrap().is_empty());
        remove(db).unwrap();
        remove(db).unwrap();
    }
}
