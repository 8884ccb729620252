//! Retention: with `cache_duration = "2s"` a message's `expires` is two seconds after its
//! `time`, and it disappears from polls, replays and history a few seconds later.

mod common;

use std::time::Duration;

use common::{eventually, Subscriber, TestServer, Transport};

#[actix_rt::test]
async fn expired_messages_are_pruned_from_poll_replay_and_history() {
    let server = TestServer::broker("cache_duration = \"2s\"\n").await;
    let m = server.publish("fleeting", "soon gone").await;
    let time = m["time"].as_i64().unwrap();
    assert_eq!(m["expires"].as_i64().unwrap(), time + 2, "{m}");
    assert_eq!(server.poll("fleeting", "").await, vec![m.clone()]);
    assert_eq!(server.history("fleeting", "").await, vec![m.clone()]);

    eventually(Duration::from_secs(10), "pruned", || async {
        let polled = server.poll("fleeting", "since=all").await;
        let history = server.history("fleeting", "since=all").await;
        if polled.is_empty() && history.is_empty() {
            Ok(())
        } else {
            Err(format!("poll {polled:?}, history {history:?}"))
        }
    })
    .await;
    // Not pruned before it expired.
    let gone_at = common::now_unix();
    assert!(
        gone_at >= time + 2,
        "pruned at {gone_at}, before it expired (published at {time})"
    );
    let mut sub = Subscriber::connect(&server, Transport::Json, "fleeting", "since=all").await;
    let fresh = server.publish("fleeting", "fresh").await;
    assert_eq!(
        sub.next_text(Duration::from_secs(5)).await.as_deref(),
        Some("fresh"),
        "the expired message is not replayed"
    );
    assert_eq!(server.poll("fleeting", "").await, vec![fresh]);
}

#[actix_rt::test]
async fn messages_are_kept_until_they_expire() {
    let server = TestServer::broker("cache_duration = \"5s\"\n").await;
    let m = server.publish("kept", "still here").await;
    // Well inside the retention period it is still there (time itself is under test).
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.poll("kept", "").await, vec![m]);
}

#[actix_rt::test]
async fn numbers_of_pruned_messages_are_not_handed_out_again_after_a_restart() {
    let mut server = TestServer::broker("cache_duration = \"1s\"\n").await;
    let first = server.publish("renumbered", "one").await;
    let second = server.publish("renumbered", "two").await;
    eventually(Duration::from_secs(10), "pruned", || async {
        server.poll("renumbered", "since=all").await.is_empty()
    })
    .await;
    server.kill9();
    server.restart();
    let after = server.publish("renumbered", "three").await;
    let ids: Vec<&str> = [&first, &second, &after]
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // An id starts with its sequence number, so ids sort in publishing order.
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
}
