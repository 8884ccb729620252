//! Whether storing fails for lack of disk space: marked by a write that fails so,
//! cleared by the next one of its kind that succeeds. `/health` reports it.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The kinds of write that can find the disk full, each cleared only by its own kind
/// succeeding (a publish that fits the journal's room says nothing of a move).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Storing a publish: appending to the journal (or making it), or committing a
    /// batch to the database.
    Publish = 1,
    /// Moving the journal into `messages`.
    Move = 2,
}

/// Shared by the writer (which marks it) and the health check (which reads it).
#[derive(Debug, Clone, Default)]
pub struct Space(Arc<AtomicU8>);

impl Space {
    /// Whether a write of any kind last failed for lack of space.
    pub fn full(&self) -> bool {
        self.0.load(Ordering::Relaxed) != 0
    }

    /// Notes how a write went: failing for lack of space marks its kind, succeeding
    /// clears it, failing for another reason changes nothing.
    pub fn note<T, E: OutOfSpace>(&self, writes: Writes, result: &Result<T, E>) {
        let bit = writes as u8;
        match result {
            Ok(_) => {
                let before = self.0.fetch_and(!bit, Ordering::Relaxed);
                if before == bit {
                    tracing::info!("storage has room again");
                }
            }
            Err(e) if e.out_of_space() => {
                if self.0.fetch_or(bit, Ordering::Relaxed) == 0 {
                    tracing::error!(
                        ?writes,
                        "storage is full: publishes are refused until there is room"
                    );
                }
            }
            Err(_) => {}
        }
    }
}

/// An error that may say the disk (or the database's) is full.
pub trait OutOfSpace {
    fn out_of_space(&self) -> bool;
}

impl OutOfSpace for io::Error {
    fn out_of_space(&self) -> bool {
        matches!(
            self.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) || matches!(self.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
    }
}

impl OutOfSpace for diesel::result::Error {
    /// SQLite says `database or disk is full` (`SQLITE_FULL`); PostgreSQL's server
    /// says `No space left on device` when it cannot extend a file.
    fn out_of_space(&self) -> bool {
        match self {
            diesel::result::Error::DatabaseError(_, info) => {
                let message = info.message();
                message.contains("database or disk is full")
                    || message.contains("No space left on device")
                    || message.contains("Disk quota exceeded")
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }

    #[test]
    fn each_kind_of_write_clears_only_its_own_mark() {
        let space = Space::default();
        space.note(
            Writes::Publish,
            &Err::<(), _>(io::Error::other("not space")),
        );
        assert!(!space.full());
        space.note(Writes::Publish, &Err::<(), _>(full()));
        space.note(Writes::Move, &Err::<(), _>(full()));
        space.note(Writes::Publish, &Ok::<_, io::Error>(()));
        assert!(space.full(), "a move still fails");
        space.note(Writes::Move, &Ok::<_, io::Error>(()));
        assert!(!space.full());
    }
}
