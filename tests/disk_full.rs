//! A full disk: publishes are refused with 503 `Storage full` and `/health` answers
//! 503 `{"status":"degraded","storage":"full"}` while storing fails for lack of space;
//! a server started on a full disk serves reads and streams; once there is room again
//! it stores by itself, and every acknowledged message is there exactly once. The
//! database lies on a small tmpfs that the test mounts and fills: a SQLite file, or in
//! the PostgreSQL pass a private PostgreSQL cluster whose data directory is there.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::services::{self, Postgres};
use common::{eventually, TestServer, NO_LIMITS};
use diesel::{Connection, RunQueryDsl};
use serde_json::{json, Value};

const STORAGE_FULL: &str = "Storage full";
/// How long storing may take to resume once there is room (the writer retries every
/// second).
const RESUME_WITHIN: Duration = Duration::from_secs(10);

/// A tmpfs mounted on a temp dir for one test; unmounted when dropped (after the
/// server, which must be declared after it).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `16m`); `None`, with the reason printed, where
    /// mounting is refused (not root, no capability).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("tidings-disk-")
            .tempdir()
            .expect("create temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs to fill ({}); the disk-full tests need root",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); the disk-full tests need root");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a file until the disk has no room left.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).expect("create the filler");
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let zeros = vec![0u8; chunk];
            while file.write_all(&zeros).is_ok() {}
        }
        let _ = file.sync_all();
    }

    /// Removes the filler: room again.
    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The disk a test fills, and the database server on it (PostgreSQL pass).
struct Disk {
    /// Declared first: stopped before the disk is unmounted.
    postgres: Option<Postgres>,
    tmpfs: Tmpfs,
}

impl std::ops::Deref for Disk {
    type Target = Tmpfs;

    fn deref(&self) -> &Tmpfs {
        &self.tmpfs
    }
}

/// A tmpfs and a server whose database lies on it, with a publisher; `None` (the
/// reason printed) where the test cannot run.
async fn server_on_tmpfs() -> Option<(Disk, TestServer)> {
    let on_postgres = services::on_postgres();
    // A PostgreSQL cluster takes some 40 MB, most of it one WAL segment.
    let tmpfs = Tmpfs::mount(if on_postgres { "128m" } else { "16m" })?;
    let (postgres, database) = if on_postgres {
        let postgres = Postgres::start_in(tmpfs.path());
        let database = services::create_database(&postgres.admin_url());
        // Copying the template database filled most of a WAL segment: writes from
        // here on go to a fresh one, made before the disk is full (PostgreSQL stops
        // when it cannot make a WAL segment, but refuses a write it cannot store).
        let mut admin = diesel::PgConnection::establish(&postgres.admin_url()).expect("admin");
        diesel::sql_query("CHECKPOINT")
            .execute(&mut admin)
            .expect("checkpoint");
        diesel::sql_query("SELECT pg_switch_wal()")
            .execute(&mut admin)
            .expect("switch WAL");
        (Some(postgres), database)
    } else {
        let database = tmpfs.path().join("tidings.db").display().to_string();
        (None, database)
    };
    let mut server = TestServer::start_on(NO_LIMITS, Some(&database));
    server.register_publisher().await;
    Some((Disk { postgres, tmpfs }, server))
}

/// A message body of about 2 KB, numbered.
fn body(i: usize) -> String {
    format!("{i:05} {}", "x".repeat(2000))
}

/// `GET /health`: `(status, body)`.
async fn health(server: &TestServer) -> (u16, Value) {
    server.get_json("/health").await
}

/// `/health` says the storage is full.
async fn assert_health_full(server: &TestServer) {
    let got = health(server).await;
    assert_eq!(
        got,
        (503, json!({"status": "degraded", "storage": "full"})),
        "/health on a full disk"
    );
}

/// Publishes to `topic` until one is refused, which must be for lack of space (room
/// reserved ahead still takes some); adds those stored to `acknowledged` and returns
/// how many they were. `/health` then says the storage is full.
async fn publish_until_full(
    server: &TestServer,
    topic: &str,
    acknowledged: &mut Vec<String>,
) -> usize {
    for i in 0..5000 {
        let (status, reply) = server.publish_with(topic, body(i), &[]).await;
        if status != 200 {
            assert_eq!(
                (status, reply["detail"].as_str()),
                (503, Some(STORAGE_FULL)),
                "{reply}"
            );
            assert_health_full(server).await;
            return i;
        }
        acknowledged.push(reply["id"].as_str().expect("id").to_string());
    }
    panic!("publishes are still stored on a full disk");
}

/// Publishes until `deadline`, once a second, until one is stored: its id.
async fn publish_once_there_is_room(server: &TestServer, topic: &str, text: &str) -> String {
    let what = "publishes are stored again once the disk has room";
    eventually(RESUME_WITHIN, what, || async {
        let (status, reply) = server.publish_with(topic, text.to_string(), &[]).await;
        if status == 200 {
            return Ok(reply["id"].as_str().expect("message id").to_string());
        }
        assert_eq!(reply["detail"], STORAGE_FULL, "{reply}");
        Err(reply)
    })
    .await
}

/// Waits for `/health` to answer 200 `{"status":"ok"}`.
async fn assert_health_recovers(server: &TestServer) {
    let what = "/health is ok again once the disk has room";
    eventually(RESUME_WITHIN, what, || async {
        let got = health(server).await;
        if got == (200, json!({"status": "ok"})) {
            Ok(())
        } else {
            Err(got)
        }
    })
    .await
}

/// The topic's stored messages are exactly `ids`, in order (none lost, none twice).
async fn assert_stored_exactly(server: &TestServer, topic: &str, ids: &[String]) {
    let stored = common::ids(&server.history(topic, "limit=10000").await);
    assert_eq!(stored.len(), ids.len(), "how many are stored");
    assert_eq!(
        stored, ids,
        "the acknowledged messages, in order, once each"
    );
}

#[actix_rt::test]
async fn a_full_disk_refuses_publishes_and_health_says_so_until_there_is_room() {
    let Some((disk, server)) = server_on_tmpfs().await else {
        return;
    };
    let topic = common::unique_topic("full");
    let before = server.publish(&topic, "before").await;
    let mut acknowledged = vec![before["id"].as_str().expect("id").to_string()];
    disk.fill();
    publish_until_full(&server, &topic, &mut acknowledged).await;
    // Reading still works, and has everything acknowledged.
    assert_stored_exactly(&server, &topic, &acknowledged).await;

    disk.free();
    acknowledged.push(publish_once_there_is_room(&server, &topic, "after").await);
    assert_health_recovers(&server).await;
    assert_stored_exactly(&server, &topic, &acknowledged).await;
}

#[actix_rt::test]
async fn a_server_started_on_a_full_disk_serves_reads_and_recovers_by_itself() {
    let Some((disk, mut server)) = server_on_tmpfs().await else {
        return;
    };
    let topic = common::unique_topic("restart");
    // On SQLite journaled, not yet moved into the database (that happens per 4096).
    let mut acknowledged = Vec::new();
    for i in 0..300 {
        let message = server.publish(&topic, &body(i)).await;
        acknowledged.push(message["id"].as_str().expect("id").to_string());
    }
    disk.fill();
    server.restart();

    // It starts, says its storage is full, refuses publishes, and serves reads. A
    // single SQLite node knows at once (the journal's messages could not move);
    // PostgreSQL tells when a write fails.
    if disk.postgres.is_none() {
        assert_health_full(&server).await;
    }
    let stored = publish_until_full(&server, &topic, &mut acknowledged).await;
    if disk.postgres.is_none() {
        assert_eq!(stored, 0, "no journal, no publish");
    }
    assert_stored_exactly(&server, &topic, &acknowledged).await;
    let replayed = server.poll(&topic, "since=all").await;
    assert_eq!(
        common::ids(&replayed),
        acknowledged,
        "a subscription replays them"
    );

    disk.free();
    acknowledged.push(publish_once_there_is_room(&server, &topic, "after").await);
    assert_health_recovers(&server).await;
    assert_stored_exactly(&server, &topic, &acknowledged).await;
    // Moved into the database: a restart finds them there, once each.
    server.restart();
    assert_stored_exactly(&server, &topic, &acknowledged).await;
}
