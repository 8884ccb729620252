//! Storage: the connection pool, embedded migrations, and the queries per table.
//! Only this module (and its children) speaks Diesel.

pub mod clients;
pub mod keys;
pub mod messages;
pub mod schema;
pub mod settings;
pub mod topics;
pub mod users;
pub mod writer;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool as R2d2Pool};
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub type Conn = SqliteConnection;
pub type Pool = R2d2Pool<ConnectionManager<Conn>>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Settings every connection gets: wait for locks instead of failing, enforce keys,
/// and a WAL journal whose commits survive a crash of the process.
const CONNECTION_PRAGMAS: &str =
    "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<Conn, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut Conn) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(CONNECTION_PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// `sqlite://PATH`, `sqlite:PATH` and a bare path all name a SQLite file.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// Opens one connection with the shared settings (the writer owns one of these).
pub fn connect(url: &str) -> Result<Conn, String> {
    let path = sqlite_path(url);
    let mut conn =
        Conn::establish(path).map_err(|e| format!("cannot open database {path}: {e}"))?;
    conn.batch_execute(CONNECTION_PRAGMAS)
        .map_err(|e| format!("cannot open database {path}: {e}"))?;
    Ok(conn)
}

/// Opens the database, switches it to WAL, applies pending migrations and returns a pool.
pub fn open(url: &str) -> Result<Pool, String> {
    let path = sqlite_path(url).to_string();
    let mut conn = connect(url)?;
    conn.batch_execute("PRAGMA journal_mode = WAL;")
        .map_err(|e| format!("cannot open database {path}: {e}"))?;
    conn.run_pending_migrations(MIGRATIONS)
        .map_err(|e| format!("cannot migrate database {path}: {e}"))?;
    R2d2Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(Pragmas))
        .build(ConnectionManager::new(path.clone()))
        .map_err(|e| format!("cannot open database {path}: {e}"))
}
