//! Storage: the connection pool, embedded migrations, and the queries per table.
//! Only this module (and its children) speaks Diesel. One set of queries serves both
//! backends through [`Conn`], an enum over a SQLite and a PostgreSQL connection.

pub mod backup;
pub mod clients;
pub mod keys;
pub mod messages;
pub mod oidc;
pub mod quotas;
pub mod schema;
pub mod settings;
pub mod space;
pub mod topics;
pub mod users;
pub mod webpush;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ManageConnection, Pool as R2d2Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection, QueryResult, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// A connection to either backend; every query in this module runs on it.
#[derive(diesel::MultiConnection)]
pub enum Conn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = R2d2Pool<Manager>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
/// Run after [`MIGRATIONS`] on SQLite only: what the portable SQL cannot say (a
/// 64-bit rowid key is `INTEGER PRIMARY KEY` there, a 32-bit column on PostgreSQL).
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations-sqlite");

/// Settings every SQLite connection gets: wait for locks instead of failing, enforce
/// keys, a WAL journal whose commits survive a crash of the process, and checkpoints
/// every 8000 pages rather than 1000 (fewer copies of the same hot pages).
const SQLITE_PRAGMAS: &str =
    "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 8000;";

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://…` or `postgresql://…`, passed to libpq as it is.
    Postgres(String),
    /// `sqlite://PATH`, `sqlite:PATH` or a bare path.
    Sqlite(String),
}

/// What a database URL may start with, for the error that names them.
const SUPPORTED_URLS: &str = "sqlite://PATH (or a bare file path), postgres://, postgresql://";

impl Backend {
    /// The backend a URL names; any other `scheme://` (`mysql://…`) is refused rather
    /// than taken for a SQLite file of that name. The error names the scheme only,
    /// never the rest of the URL, which may hold a password.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(Self::Sqlite(path.to_string()));
        }
        match url.split_once("://") {
            Some((scheme, _)) if is_scheme(scheme) => Err(format!(
                "unsupported database URL scheme {scheme}:// (supported: {SUPPORTED_URLS})"
            )),
            _ => Ok(Self::Sqlite(url.to_string())),
        }
    }

    /// How the database is named in messages: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => path.clone(),
            Self::Postgres(url) => redact_password(url),
        }
    }

    fn establish(&self) -> Result<Conn, String> {
        let conn = match self {
            Self::Postgres(url) => PgConnection::establish(url).map(Conn::Postgres),
            Self::Sqlite(path) => {
                sqlite_multithreaded();
                SqliteConnection::establish(path).map(Conn::Sqlite)
            }
        };
        let mut conn = conn.map_err(|e| e.to_string())?;
        if let Conn::Sqlite(sqlite) = &mut conn {
            sqlite
                .batch_execute(SQLITE_PRAGMAS)
                .map_err(|e| e.to_string())?;
        }
        Ok(conn)
    }
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.` (RFC 3986).
fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Puts SQLite in multi-thread mode before its first connection: a connection is used
/// by one thread at a time (the writer's, or one checked out of the pool), so SQLite
/// need not take a lock of its own around every call on it.
fn sqlite_multithreaded() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called before the first connection of this process; should SQLite
        // be initialised already, it refuses and keeps its serialized mode, which is
        // just as safe.
        let status =
            unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MULTITHREAD) };
        if status != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(status, "SQLite stays in serialized mode");
        }
    });
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Opens pooled connections of the configured backend (never guesses another one).
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Conn, Self::Error> {
        self.backend.establish().map_err(|e| {
            diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(e))
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.is_broken()
    }
}

/// Logs when the pool can no longer open connections, and when it can again: once
/// each way, however many requests fail meanwhile.
#[derive(Debug, Clone, Default)]
struct Availability {
    down: Arc<AtomicBool>,
}

impl r2d2::HandleError<diesel::r2d2::Error> for Availability {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(%error, "database unavailable");
        }
    }
}

impl r2d2::HandleEvent for Availability {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("database available again");
        }
    }
}

/// Opens one connection with the shared settings (the writer owns one of these).
pub fn connect(url: &str) -> Result<Conn, String> {
    let backend = Backend::parse(url)?;
    backend
        .establish()
        .map_err(|e| format!("cannot open database {}: {e}", backend.display()))
}

/// Opens the database (SQLite: in WAL mode), applies pending migrations and returns a pool.
pub fn open(url: &str) -> Result<Pool, String> {
    let backend = Backend::parse(url)?;
    let name = backend.display();
    let mut conn = connect(url)?;
    if let Conn::Sqlite(sqlite) = &mut conn {
        sqlite
            // A new database gets 1 KiB pages: every touched page is written to the
            // WAL whole at each commit, and moving journaled messages into `messages`
            // touches one leaf of the topic index per topic among them. (4 KiB pages
            // halve the frames written but measured no faster under publish load,
            // with staged rows and again with the journal.)
            .batch_execute("PRAGMA page_size = 1024; PRAGMA journal_mode = WAL;")
            .map_err(|e| format!("cannot open database {name}: {e}"))?;
    }
    migrate(&mut conn).map_err(|e| format!("cannot migrate database {name}: {e}"))?;
    let availability = Availability::default();
    R2d2Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(5))
        .error_handler(Box::new(availability.clone()))
        .event_handler(Box::new(availability))
        .build(Manager { backend })
        .map_err(|e| format!("cannot open database {name}: {e}"))
}

/// Copies SQLite's WAL into the database file and empties it, so that the file alone
/// is a complete copy (at shutdown); nothing to do on PostgreSQL.
pub fn checkpoint(conn: &mut Conn) -> QueryResult<()> {
    match conn {
        Conn::Sqlite(sqlite) => sqlite.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);"),
        Conn::Postgres(_) => Ok(()),
    }
}

/// Runs the same Diesel expression on the concrete connection of either backend, for
/// the few statements the backend-neutral connection cannot express (multi-row inserts,
/// `RETURNING`).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Postgres($c) => $body,
            $crate::db::Conn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Where one page of a list starts and how long it is. Lists are ordered by
/// (`created_at`, id), so a page starts after the last row of the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The (`created_at`, id) of the last row already seen; `None` for the first page.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

impl Page {
    /// The first page's position lies before every row.
    pub fn position(&self) -> (i64, String) {
        self.after.clone().unwrap_or((i64::MIN, String::new()))
    }
}

/// Limits a query to one [`Page`] of rows ordered by (`$created_at`, `$id`): the rows
/// after the page's position, and one more than its limit, which tells whether
/// another page follows.
macro_rules! page {
    ($query:expr, $created_at:expr, $id:expr, $page:expr) => {{
        let (at, id) = $page.position();
        $query
            .filter($created_at.gt(at).or($created_at.eq(at).and($id.gt(id))))
            .order(($created_at.asc(), $id.asc()))
            .limit($page.limit + 1)
    }};
}
pub(crate) use page;

/// Runs `work` in a transaction. Every transaction here writes, so on SQLite it takes
/// the write lock as it begins (`BEGIN IMMEDIATE`, waiting for it like any lock):
/// a deferred one that reads first cannot wait for the lock when it comes to write
/// and another connection has committed since its read; it fails with
/// `SQLITE_BUSY` at once.
pub fn transaction<T, E, F>(conn: &mut Conn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E>,
    E: From<DieselError>,
{
    let Conn::Sqlite(sqlite) = conn else {
        return conn.transaction(work);
    };
    // Inside another transaction, this one is a savepoint of it.
    let outermost = matches!(
        AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth(),
        Ok(None)
    );
    if !outermost {
        return conn.transaction(work);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match work(conn) {
        Ok(value) => {
            <Conn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            <Conn as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// Applies pending migrations. On PostgreSQL, nodes starting together take turns
/// (a session advisory lock), so only the first one migrates.
fn migrate(conn: &mut Conn) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    const MIGRATION_LOCK: i64 = 0x7469_6469_6e67; // "tiding"
    if let Conn::Postgres(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(pg)?;
    }
    let mut result = conn.run_pending_migrations(MIGRATIONS).map(drop);
    if result.is_ok() && matches!(conn, Conn::Sqlite(_)) {
        result = conn.run_pending_migrations(SQLITE_MIGRATIONS).map(drop);
    }
    if let Conn::Postgres(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(pg)?;
    }
    result
}

/// A unique-key violation counts as "already there": `Ok(0)` rows.
/// Whether the database answers: one trivial statement.
pub fn ping(conn: &mut Conn) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

pub fn ignore_duplicate(result: QueryResult<usize>) -> QueryResult<usize> {
    match result {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(0),
        other => other,
    }
}

// Database failures as API errors: a missing row is a 404; anything else is logged
// here and answered 503 (`Storage full` when the disk is).

impl From<diesel::result::Error> for crate::error::ApiError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => Self::not_found(crate::error::Missing::Object),
            other => {
                tracing::error!(error = %other, "database error");
                if space::OutOfSpace::out_of_space(&other) {
                    Self::StorageFull
                } else {
                    Self::DatabaseUnavailable
                }
            }
        }
    }
}

impl From<diesel::r2d2::PoolError> for crate::error::ApiError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        tracing::error!(error = %e, "database pool error");
        Self::DatabaseUnavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_that_reads_first_still_writes_after_another_commits() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("t.db").display().to_string();
        let pool = open(&url).unwrap();
        let mut first = pool.get().unwrap();
        diesel::sql_query("CREATE TABLE notes (n INTEGER)")
            .execute(&mut first)
            .unwrap();
        let count = |conn: &mut Conn| {
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            diesel::sql_query("SELECT COUNT(*) AS n FROM notes")
                .get_result::<Count>(conn)
                .map(|c| c.n)
        };
        let other = std::thread::scope(|scope| {
            let result = transaction(&mut first, |conn| {
                let before = count(conn)?;
                // Another connection writes while this one is between its read and its
                // write; it waits for this transaction.
                let other = scope.spawn(|| {
                    let mut second = pool.get().unwrap();
                    diesel::sql_query("INSERT INTO notes VALUES (2)").execute(&mut second)
                });
                std::thread::sleep(Duration::from_millis(200));
                diesel::sql_query("INSERT INTO notes VALUES (1)").execute(conn)?;
                Ok::<_, DieselError>((before, other))
            });
            let (before, other) = result.expect("the transaction commits");
            assert_eq!(before, 0);
            other.join().unwrap()
        });
        assert_eq!(other.unwrap(), 1);
        assert_eq!(count(&mut first).unwrap(), 2);
    }

    #[test]
    fn urls_name_their_backend() {
        let cases = [
            ("a.db", Backend::Sqlite("a.db".into())),
            ("sqlite:///tmp/a.db", Backend::Sqlite("/tmp/a.db".into())),
            ("sqlite:a.db", Backend::Sqlite("a.db".into())),
            (
                "postgres://u@h/db",
                Backend::Postgres("postgres://u@h/db".into()),
            ),
            (
                "postgresql://u@h/db",
                Backend::Postgres("postgresql://u@h/db".into()),
            ),
        ];
        for (url, backend) in cases {
            assert_eq!(Backend::parse(url), Ok(backend), "{url}");
        }
    }

    #[test]
    fn other_schemes_are_refused_without_the_rest_of_the_url() {
        for url in ["mysql://root:s3cret@h/db", "mariadb://h/db", "redis://h"] {
            let error = Backend::parse(url).unwrap_err();
            let scheme = url.split("://").next().unwrap();
            assert!(error.contains(&format!("{scheme}://")), "{error}");
            assert!(error.contains("postgres://"), "{error}");
            assert!(
                !error.contains("s3cret") && !error.contains("@h"),
                "{error}"
            );
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            Backend::parse("postgres://tidings:s3cret@db:5432/t")
                .unwrap()
                .display(),
            "postgres://tidings:***@db:5432/t"
        );
        assert_eq!(
            Backend::parse("postgres://h/db").unwrap().display(),
            "postgres://h/db"
        );
    }
}
