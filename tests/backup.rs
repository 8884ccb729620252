//! `tidings backup` of a live SQLite database under publish load, then `tidings
//! restore` into a new database: a server started on it has every message
//! acknowledged before the backup began, once. A restore refuses a database in use
//! and drops the stale journal of the one it replaces; on PostgreSQL both commands
//! point to `pg_dump` / `pg_restore`.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use common::cli::{run, server_paths, CliOutput};
use common::{unique_topic, TestServer, NO_LIMITS};

/// `tidings backup|restore --config C --database-url D FILE`.
fn copy_command(command: &str, config: &str, database: &str, file: &str) -> CliOutput {
    let args = [
        command,
        "--config",
        config,
        "--database-url",
        database,
        file,
    ];
    run(&args, &[])
}

/// Asserts success; what it printed.
#[track_caller]
fn succeeded(out: CliOutput) -> String {
    assert!(out.success, "failed: {}", out.stderr);
    out.stdout
}

/// Asserts a refusal: non-zero exit and one `error:` line naming `what`.
#[track_caller]
fn refused(out: &CliOutput, what: &str) {
    assert!(!out.success, "it did not fail: {}", out.stdout);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(what),
        "{}",
        lines[0]
    );
}

/// The ids of `messages`, asserting none is there twice.
#[track_caller]
fn unique_ids(messages: &[serde_json::Value]) -> HashSet<String> {
    let ids: Vec<String> = common::ids(messages);
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a message is there twice");
    unique
}

#[actix_rt::test]
async fn a_backup_under_publish_load_restores_every_acknowledged_message_once() {
    if common::services::on_postgres() {
        return; // `tidings backup` copies SQLite files; PostgreSQL has pg_dump
    }
    let mut server = TestServer::broker("").await;
    let (config, database) = server_paths(&server);
    let topic = unique_topic("backup");
    let mut first = Vec::new();
    // Some messages in `messages` (a restart moves the journal in), some in the journal.
    for i in 0..50 {
        first.push(server.publish(&topic, &format!("stored {i}")).await);
    }
    server.restart();
    for i in 0..50 {
        first.push(server.publish(&topic, &format!("journaled {i}")).await);
    }
    let acked = RefCell::new(first);

    let backed_up = Cell::new(false);
    let file = server.dir().join("backup.db").display().to_string();
    let load = async {
        let mut i = 0;
        while !backed_up.get() {
            let message = server.publish(&topic, &format!("under load {i}")).await;
            acked.borrow_mut().push(message);
            i += 1;
        }
    };
    let backup = async {
        let before = acked.borrow().len();
        let (c, d, f) = (config.clone(), database.clone(), file.clone());
        let out = actix_rt::task::spawn_blocking(move || copy_command("backup", &c, &d, &f))
            .await
            .expect("backup ran");
        let during = acked.borrow().len() - before;
        backed_up.set(true);
        (before, during, out)
    };
    let ((), (before, during, out)) = tokio::join!(load, backup);
    let said = succeeded(out);
    assert!(said.contains("backed up"), "{said}");
    assert!(
        during > 0,
        "no publish was acknowledged while the backup ran"
    );
    server.kill9();

    let target = tempfile::tempdir().expect("temp dir");
    let restored_db = target.path().join("restored.db").display().to_string();
    succeeded(copy_command("restore", &config, &restored_db, &file));
    let restored = TestServer::start_on(NO_LIMITS, Some(&restored_db));
    let found = unique_ids(&restored.poll(&topic, "since=all").await);
    let acked = acked.into_inner();
    let missing: Vec<String> = (unique_ids(&acked[..before]).difference(&found))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {before} messages acknowledged before the backup are missing: {missing:?}",
        missing.len()
    );
    assert!(
        found.is_subset(&unique_ids(&acked)),
        "the backup holds a message never acknowledged"
    );
}

#[actix_rt::test]
async fn a_restore_refuses_a_database_in_use_and_drops_its_stale_journal() {
    if common::services::on_postgres() {
        return; // `tidings restore` puts back SQLite files; PostgreSQL has pg_restore
    }
    let mut server = TestServer::broker("").await;
    let (config, database) = server_paths(&server);
    let topic = unique_topic("restore");
    let kept = server.publish(&topic, "in the backup").await;
    let file = server.dir().join("backup.db").display().to_string();
    succeeded(copy_command("backup", &config, &database, &file));
    server.publish(&topic, "after the backup").await;

    let out = copy_command("restore", &config, &database, &file);
    refused(&out, "in use");
    assert_eq!(
        server.poll(&topic, "since=all").await.len(),
        2,
        "the live database changed"
    );

    // Killed, the server leaves its journal (with the later message) behind.
    server.kill9();
    let said = succeeded(copy_command("restore", &config, &database, &file));
    assert!(said.contains("restored"), "{said}");
    server.restart();
    let messages = server.poll(&topic, "since=all").await;
    assert_eq!(common::ids(&messages), common::ids(&[kept]), "{messages:?}");
}

#[test]
fn postgresql_is_pointed_to_its_own_tools() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tidings.toml");
    std::fs::write(&config, "").expect("write config");
    let (config, file) = (config.display().to_string(), "/nonexistent/backup.db");
    let url = "postgres://tidings@127.0.0.1:1/tidings";
    refused(&copy_command("backup", &config, url, file), "pg_dump");
    refused(&copy_command("restore", &config, url, file), "pg_restore");
}
