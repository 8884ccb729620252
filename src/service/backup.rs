//! `tidings backup` and `tidings restore` on SQLite: a copy of a live database that
//! holds every message acknowledged before it began (those still in the journal
//! too), and putting one back while nothing has the database open. PostgreSQL has
//! `pg_dump` and `pg_restore` for that.

use std::path::Path;

use crate::db::{self, Backend};
use crate::pipeline::journal;

/// Copies the live SQLite database of `database_url` into `file` (replaced if there);
/// what to tell the operator.
pub fn backup(database_url: &str, file: &Path) -> Result<String, String> {
    let database = sqlite_path(database_url, "backup", "pg_dump")?;
    let target = file.display().to_string();
    // The journal is read before the copy is made: a message moved out of it
    // meanwhile is in the copy (see `journal::leftovers`).
    let journaled = journal::leftovers(&database)
        .map_err(|e| format!("cannot read the journal of {database}: {e}"))?;
    let partial = format!("{target}.partial");
    remove_if_there(&partial)?;
    let made = db::backup::snapshot(&database, &partial)
        .and_then(|()| db::backup::complete(&partial, &journaled))
        .and_then(|added| {
            // Durable before it takes the backup's name.
            let synced = std::fs::File::open(&partial).and_then(|f| f.sync_all());
            synced
                .and_then(|()| std::fs::rename(&partial, file))
                .map(|()| added)
                .map_err(|e| format!("cannot write {target}: {e}"))
        });
    if made.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let added = made?;
    Ok(format!(
        "backed up {database} to {target} ({added} messages from its journal)"
    ))
}

/// Puts the backup `file` in place of the SQLite database of `database_url`, which no
/// process may have open; its WAL and journal go too. What to tell the operator.
pub fn restore(database_url: &str, file: &Path) -> Result<String, String> {
    let database = sqlite_path(database_url, "restore", "pg_restore")?;
    let source = file.display().to_string();
    let messages = db::backup::check(&source)?;
    if Path::new(&database).exists() && db::backup::in_use(&database)? {
        return Err(format!(
            "database {database} is in use (a running server or command has it open): stop it first"
        ));
    }
    let restoring = format!("{database}.restoring");
    let copied = std::fs::copy(file, &restoring)
        .and_then(|_| std::fs::File::open(&restoring)?.sync_all())
        .and_then(|()| db::backup::remove_wal(&database))
        .and_then(|()| journal::remove(&database))
        .and_then(|()| std::fs::rename(&restoring, &database));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&restoring);
        return Err(format!("cannot restore {database} from {source}: {e}"));
    }
    Ok(format!(
        "restored {database} from {source} ({messages} messages)"
    ))
}

/// The SQLite file of `database_url`; on PostgreSQL, the one line that points to its
/// own tool.
fn sqlite_path(database_url: &str, command: &str, tool: &str) -> Result<String, String> {
    match Backend::parse(database_url)? {
        Backend::Sqlite(path) => Ok(path),
        Backend::Postgres(_) => Err(format!(
            "tidings {command} covers SQLite; on PostgreSQL use {tool} (see docs/deployment.md)"
        )),
    }
}

fn remove_if_there(path: &str) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {path}: {e}"))
        }
        _ => Ok(()),
    }
}
