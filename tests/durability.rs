//! Durability: a 200 means the message is stored. After `kill -9` and a restart on the
//! same database every acknowledged message is still there, in order, and replayable.

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{eventually, SseClient, TestServer, WAIT};
use futures_util::future::{join, join_all};
use serde_json::Value;

#[actix_rt::test]
async fn acknowledged_messages_survive_kill_9_in_order() {
    let mut server = TestServer::broker("").await;
    let mut sent = Vec::new();
    for n in 0..200 {
        sent.push(server.publish("durable", &format!("msg-{n}")).await);
    }
    server.kill9();
    server.restart();

    let polled = server.poll("durable", "since=all").await;
    assert_eq!(
        common::ids(&polled),
        common::ids(&sent),
        "every acknowledged id, in publish order"
    );
    assert_eq!(polled, sent, "stored messages are unchanged");
    let history = server.history("durable", "since=all&limit=1000").await;
    assert_eq!(history, sent);
}

#[actix_rt::test]
async fn concurrent_acknowledged_publishes_survive_kill_9() {
    let mut server = TestServer::broker("").await;
    let publishers = 8;
    let per_publisher = 50;
    let results = join_all((0..publishers).map(|p| {
        let server = &server;
        async move {
            let mut ids = Vec::new();
            for n in 0..per_publisher {
                let m = server.publish("grouped", &format!("p{p}-{n}")).await;
                ids.push(m["id"].as_str().unwrap().to_string());
            }
            ids
        }
    }))
    .await;
    server.kill9();
    server.restart();

    let polled = server.poll("grouped", "since=all").await;
    let stored = common::ids(&polled);
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no duplicates");
    assert_eq!(stored.len(), publishers * per_publisher);
    for ids in &results {
        // Each publisher's messages are stored in the order they were acknowledged.
        let positions: Vec<usize> = ids
            .iter()
            .map(|id| {
                stored
                    .iter()
                    .position(|s| s == id)
                    .unwrap_or_else(|| panic!("acknowledged id {id} was lost"))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "publisher order kept: {positions:?}"
        );
    }
}

/// Publishes until a request fails; returns the acknowledged messages.
async fn publish_until_failure(
    url: String,
    headers: Vec<(String, String)>,
    publisher: usize,
    acked: &RefCell<Vec<Value>>,
) {
    let client = common::client();
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in 0.. {
        assert!(Instant::now() < deadline, "the server was never killed");
        let mut req = client.post(url.as_str());
        for (k, v) in &headers {
            req = req.insert_header((k.as_str(), v.as_str()));
        }
        let Ok(mut resp) = req.send_body(format!("p{publisher}-{n}")).await else {
            return;
        };
        if resp.status().as_u16() != 200 {
            return;
        }
        let Ok(Ok(body)) = actix_rt::time::timeout(WAIT, resp.body()).await else {
            return;
        };
        acked
            .borrow_mut()
            .push(common::parse_json(&body, "publish response"));
    }
}

#[actix_rt::test]
async fn kill_9_during_publishing_loses_no_acknowledged_message() {
    let mut server = TestServer::broker("").await;
    let acked = RefCell::new(Vec::new());
    let url = server.url("/inflight");
    let headers = server.publish_headers.clone();
    let publishers =
        join_all((0..4).map(|p| publish_until_failure(url.clone(), headers.clone(), p, &acked)));
    let killer = async {
        eventually(
            Duration::from_secs(15),
            "300 publishes acknowledged",
            || async { acked.borrow().len() >= 300 },
        )
        .await;
        // Requests are in flight right now.
        server.kill9();
    };
    join(publishers, killer).await;
    server.restart();

    let acked = acked.into_inner();
    assert!(acked.len() >= 300);
    let stored = server.poll("inflight", "since=all").await;
    let stored_ids: HashSet<String> = common::ids(&stored).into_iter().collect();
    assert_eq!(
        stored_ids.len(),
        stored.len(),
        "no duplicates after restart"
    );
    for m in &acked {
        let id = m["id"].as_str().unwrap();
        assert!(
            stored_ids.contains(id),
            "acknowledged message {m} lost ({} acknowledged, {} stored)",
            acked.len(),
            stored.len()
        );
    }
}

#[actix_rt::test]
async fn after_a_restart_new_messages_follow_the_stored_ones() {
    let mut server = TestServer::broker("").await;
    let before = server.publish("continued", "before crash").await;
    server.kill9();
    server.restart();

    let mut sse = SseClient::connect(&server, "/continued/sse?since=all").await;
    assert_eq!(sse.next_event(WAIT).await.expect("open").event, "open");
    assert_eq!(sse.next_message(WAIT).await, Some(before.clone()));
    let after = server.publish("continued", "after restart").await;
    assert_eq!(sse.next_message(WAIT).await, Some(after.clone()));
    assert_ne!(before["id"], after["id"]);

    assert_eq!(
        server.poll("continued", "since=all").await,
        vec![before.clone(), after.clone()]
    );
    // A message id from before the crash still works as a starting point.
    let since = format!("since={}", before["id"].as_str().unwrap());
    assert_eq!(server.poll("continued", &since).await, vec![after.clone()]);
    let last_id = before["id"].as_str().unwrap().to_string();
    let mut resumed =
        SseClient::connect_with(&server, "/continued/sse", &[("Last-Event-ID", &last_id)]).await;
    assert_eq!(resumed.next_message(WAIT).await, Some(after));

    // And a second crash keeps both.
    server.kill9();
    server.restart();
    assert_eq!(
        common::texts(&server.poll("continued", "since=all").await),
        vec!["before crash", "after restart"]
    );
}

#[actix_rt::test]
async fn a_long_run_of_messages_is_replayed_whole_before_and_after_a_restart() {
    // Enough messages that some have already moved on to the indexed table (every
    // 4096) while the newest still wait in the recent one.
    const COUNT: usize = 4200;
    let mut server = TestServer::broker("").await;
    let mut published = Vec::new();
    for i in 0..COUNT {
        published.push(server.publish("longrun", &format!("m{i}")).await);
        if i % 100 == 0 {
            server.publish("elsewhere", &format!("other {i}")).await;
        }
    }
    let check = |got: Vec<Value>, from: usize, when: &str| {
        assert_eq!(got.len(), COUNT - from, "{when}: count");
        assert!(
            got == published[from..],
            "{when}: messages differ from the published ones"
        );
    };
    check(
        server.poll("longrun", "since=all").await,
        0,
        "before the restart",
    );
    // Starting points on either side of the last move.
    for from in [10, 4100, COUNT - 5] {
        let since = format!("since={}", published[from - 1]["id"].as_str().unwrap());
        check(server.poll("longrun", &since).await, from, "since an id");
    }
    assert_eq!(
        server.poll("elsewhere", "since=all").await.len(),
        COUNT.div_ceil(100)
    );

    server.kill9();
    server.restart();
    check(
        server.poll("longrun", "since=all").await,
        0,
        "after the restart",
    );
    let since = format!("since={}", published[COUNT - 2]["id"].as_str().unwrap());
    check(
        server.poll("longrun", &since).await,
        COUNT - 1,
        "since an id after the restart",
    );
    let after = server.publish("longrun", "after").await;
    assert!(after["id"].as_str() > published[COUNT - 1]["id"].as_str());
    assert_eq!(server.poll("longrun", "since=latest").await, vec![after]);
}

/// A small file system of its own (tmpfs), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` where this machine does not let the test mount one.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self { dir })
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount the small disk");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[actix_rt::test]
async fn a_full_disk_refuses_publishes_and_loses_none_it_acknowledged() {
    if common::services::on_postgres() {
        return; // the journal belongs to a single SQLite node
    }
    let Some(disk) = SmallDisk::mount("3m") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let url = disk.dir.path().join("tidings.db").display().to_string();
    let mut server = TestServer::start_on(common::NO_LIMITS, Some(&url));
    server.register_publisher().await;
    let body = "x".repeat(4000);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for n in 0..2000 {
        let (status, reply) = server
            .publish_with("full", format!("{n} {body}"), &[])
            .await;
        match status {
            200 => acknowledged.push(reply),
            _ => {
                refused = Some((status, reply));
                break;
            }
        }
    }
    let (status, reply) = refused.expect("a 3 MiB disk fills before 8 MB of messages");
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["detail"], "Storage full");
    assert!(acknowledged.len() > 100, "{} stored", acknowledged.len());
    assert!(
        server.log().contains("journaling a message failed"),
        "the journal found no room: {}",
        server.log()
    );

    // Room again: a restart finds every acknowledged message, and publishing works.
    server.kill9();
    disk.resize("64m");
    server.restart();
    let polled = server.poll("full", "since=all").await;
    assert_eq!(common::ids(&polled), common::ids(&acknowledged));
    server.publish("full", "after").await;
}

#[actix_rt::test]
async fn publishes_get_503_once_moves_into_messages_stay_blocked() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    if common::services::on_postgres() {
        return; // the journal belongs to a single SQLite node
    }
    let server = TestServer::broker("").await;
    server.publish("piled", "creates the topic").await;
    // Another process holds the database's write lock: every move of the journal into
    // `messages` waits, then fails, and messages pile up in the journal.
    let mut blocker = diesel::SqliteConnection::establish(server.database_url()).unwrap();
    blocker.batch_execute("BEGIN EXCLUSIVE").unwrap();

    let backlog = 64 * 1024;
    let publishers = 16;
    let statuses = join_all((0..publishers).map(|p| {
        let server = &server;
        async move {
            let mut codes = Vec::new();
            for n in 0..(backlog / publishers + 64) {
                let (status, _) = server.publish_with("piled", format!("{p}-{n}"), &[]).await;
                codes.push(status);
                if status != 200 {
                    break;
                }
            }
            codes
        }
    }))
    .await;
    let codes: Vec<u16> = statuses.into_iter().flatten().collect();
    let acknowledged = codes.iter().filter(|&&c| c == 200).count();
    assert!(
        codes.iter().all(|&c| c == 200 || c == 503),
        "only 200s and 503s"
    );
    assert!(codes.contains(&503), "a publish is refused at last");
    // With the first one, the whole backlog was acknowledged before any refusal.
    assert!(
        acknowledged + 1 >= backlog,
        "{acknowledged} acknowledged first"
    );

    // Once the lock goes, the moves catch up and publishing works again.
    blocker.batch_execute("ROLLBACK").unwrap();
    eventually(Duration::from_secs(60), "publishing resumes", || async {
        server.publish_with("piled", "again", &[]).await.0 == 200
    })
    .await;
}
