//! Copies of a SQLite database: a consistent copy of a live one (`VACUUM INTO`), made
//! self-contained, checked before it is put back, and whether any process has a
//! database open.

use diesel::connection::SimpleConnection;
use diesel::{Connection, QueryDsl, RunQueryDsl, SqliteConnection};

use super::connect;
use super::messages::{self, MessageRow};

/// Copies the SQLite database at `database`, as one read transaction sees it, into
/// the new file `target`; writers go on meanwhile (WAL).
pub fn snapshot(database: &str, target: &str) -> Result<(), String> {
    let mut conn = sqlite(database)?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(target)
        .execute(&mut conn)
        .map(drop)
        .map_err(|e| format!("cannot copy {database}: {e}"))
}

/// Adds `rows` (messages not in `messages` yet: a journal's) to the copy at `target`,
/// skipping those already there, and makes it one file with no WAL beside it.
/// Returns how many were added.
pub fn complete(target: &str, rows: &[MessageRow]) -> Result<usize, String> {
    let failed = |e: diesel::result::Error| format!("cannot complete the copy {target}: {e}");
    let mut conn = connect(target)?;
    let added = messages::move_in(&mut conn, rows).map_err(failed)?;
    conn.batch_execute("PRAGMA journal_mode = DELETE;")
        .map_err(failed)?;
    Ok(added)
}

/// Checks that `file` is a sound tidings database; returns how many messages it holds.
pub fn check(file: &str) -> Result<i64, String> {
    let invalid = |e: String| format!("{file} is not a tidings SQLite database: {e}");
    let mut conn = sqlite(file).map_err(invalid)?;
    let verdict: Vec<Verdict> = diesel::sql_query("PRAGMA quick_check")
        .load(&mut conn)
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(bad) = verdict.iter().find(|v| v.quick_check != "ok") {
        return Err(invalid(bad.quick_check.clone()));
    }
    super::schema::messages::table
        .count()
        .get_result(&mut conn)
        .map_err(|e| invalid(e.to_string()))
}

#[derive(diesel::QueryableByName)]
struct Verdict {
    #[diesel(sql_type = diesel::sql_types::Text)]
    quick_check: String,
}

/// Whether another connection (a server, an admin command) has the SQLite database at
/// `database` open: every connection to a WAL database holds a shared lock on it, so
/// an exclusive lock is refused at once.
pub fn in_use(database: &str) -> Result<bool, String> {
    let mut conn = sqlite(database)?;
    // No busy timeout: refused is the answer, not a reason to wait.
    let claimed = conn.batch_execute(
        "PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;",
    );
    match claimed {
        Ok(()) => Ok(false),
        Err(e) if e.to_string().contains("locked") => Ok(true),
        Err(e) => Err(format!("cannot open database {database}: {e}")),
    }
}

/// Removes the WAL and its index beside the SQLite database at `database`, left by a
/// process that stopped without closing it: they belong to the file being replaced.
pub fn remove_wal(database: &str) -> std::io::Result<()> {
    for suffix in ["-wal", "-shm"] {
        match std::fs::remove_file(format!("{database}{suffix}")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// A plain connection to an existing SQLite file, without the pool's settings.
fn sqlite(path: &str) -> Result<SqliteConnection, String> {
    if !std::path::Path::new(path).is_file() {
        return Err(format!("no database file at {path}"));
    }
    SqliteConnection::establish(path).map_err(|e| format!("cannot open database {path}: {e}"))
}
