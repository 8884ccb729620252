//! Real PostgreSQL and Redis servers on 127.0.0.1 for the tests that need them.
//!
//! `./test.sh` installs both from Debian when missing and starts one shared PostgreSQL
//! cluster; its URL arrives in `TEST_POSTGRES_URL`, and with it set every test
//! server gets a fresh database there instead of a SQLite file. Tests that stop or
//! break a service start a private instance of their own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};

/// Admin URL of the shared PostgreSQL cluster, when the suite runs against PostgreSQL.
pub const POSTGRES_ENV: &str = "TEST_POSTGRES_URL";

/// The database a new test server uses: a fresh PostgreSQL database when the suite
/// runs against PostgreSQL, else a SQLite file in `dir`.
pub fn fresh_database_url(dir: &Path) -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(admin) if !admin.is_empty() => create_database(&admin),
        _ => dir.join("tidings.db").display().to_string(),
    }
}

/// Whether this run stores in PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(POSTGRES_ENV).is_ok_and(|v| !v.is_empty())
}

/// Creates an empty database on the server of `admin_url`; its URL.
pub fn create_database(admin_url: &str) -> String {
    let name = format!("t_{}", super::unique_topic("db").replace('-', "_"));
    let mut conn = PgConnection::establish(admin_url)
        .unwrap_or_else(|e| panic!("connect to PostgreSQL at {admin_url}: {e}"));
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("admin URL names a database");
    format!("{base}/{name}")
}

/// Drops the database of `url` (made by [`create_database`] on the cluster of
/// `admin_url`), closing what still uses it; a failure only leaves it behind.
pub fn drop_database(admin_url: &str, url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut conn) = PgConnection::establish(admin_url) {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn);
    }
}

/// A free TCP port on 127.0.0.1, below the ephemeral range so that no client
/// connection of the tests takes it while a service restarts on it.
pub fn free_port() -> u16 {
    loop {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), 20_000..32_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A private PostgreSQL cluster in a temp dir, stopped when dropped.
pub struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Postgres {
    /// `initdb` (trust authentication) and start on a free port.
    pub fn start() -> Postgres {
        Self::start_in(&std::env::temp_dir())
    }

    /// Like [`Postgres::start`], with the cluster's files in a new directory under
    /// `parent` (a small file system of a test's own, say).
    pub fn start_in(parent: &Path) -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::Builder::new()
            .prefix("tidings-pg-")
            .tempdir_in(parent)
            .expect("create temp dir");
        let data = dir.path().join("data");
        if is_root() {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        run(as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        let server = Postgres {
            _dir: dir,
            data,
            port: free_port(),
            bin,
        };
        server.start_again();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (connections are cut).
    pub fn stop(&self) {
        run(self.pg_ctl().args(["-m", "immediate", "-w", "stop"]));
    }

    /// Starts it again on the same port and data; returns once it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.data.display()
        );
        run(self
            .pg_ctl()
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-w", "-o", &options, "start"]));
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = as_postgres(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(&self.data);
        cmd
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A private `redis-server` on a free port (no persistence), killed when dropped.
pub struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(),
        };
        redis.start_again();
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: every client connection drops.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port; returns once it answers.
    pub fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (run ./test.sh, which installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The directory of Debian's PostgreSQL server programs (the newest version there).
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (run ./test.sh, which installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version with pg_ctl")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) {
    let output = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
