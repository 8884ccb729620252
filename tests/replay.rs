//! Replay of stored messages (`since=all|<id>|<duration>|<unix time>`, `Last-Event-ID`)
//! followed by live delivery, with no gap and no duplicate even while publishers race
//! the subscribers.

mod common;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{eventually, SseClient, Subscriber, TestServer, Transport, TRANSPORTS, WAIT};
use futures_util::future::{join, join_all};
use serde_json::Value;

async fn publish_texts(server: &TestServer, topic: &str, texts: &[&str]) -> Vec<Value> {
    let mut sent = Vec::new();
    for text in texts {
        sent.push(server.publish(topic, text).await);
    }
    sent
}

/// Checks that `sub` gets exactly `expected` (texts), then a live message published now.
async fn expect_replay_then_live(
    server: &TestServer,
    sub: &mut Subscriber,
    topic: &str,
    expected: &[&str],
    what: &str,
) -> Value {
    let got = sub.take_texts(expected.len(), WAIT).await;
    assert_eq!(got, expected, "{what}: replayed messages");
    let text = format!("live after {what}");
    let live = server.publish(topic, &text).await;
    assert_eq!(
        sub.next_text(WAIT).await.as_deref(),
        Some(text.as_str()),
        "{what}: the next message is the live one (no extra replay)"
    );
    live
}

#[actix_rt::test]
async fn since_all_replays_every_stored_message_then_goes_live() {
    let server = TestServer::broker("").await;
    for transport in TRANSPORTS {
        let topic = format!("all-{transport}");
        publish_texts(&server, &topic, &["one", "two", "three"]).await;
        let mut sub = Subscriber::connect(&server, transport, &topic, "since=all").await;
        expect_replay_then_live(
            &server,
            &mut sub,
            &topic,
            &["one", "two", "three"],
            transport.path(),
        )
        .await;
    }
}

#[actix_rt::test]
async fn without_since_only_live_messages_are_sent() {
    let server = TestServer::broker("").await;
    for transport in TRANSPORTS {
        let topic = format!("none-{transport}");
        publish_texts(&server, &topic, &["old"]).await;
        let mut sub = Subscriber::connect(&server, transport, &topic, "").await;
        expect_replay_then_live(&server, &mut sub, &topic, &[], transport.path()).await;
    }
}

#[actix_rt::test]
async fn since_message_id_replays_only_what_follows_it() {
    let server = TestServer::broker("").await;
    for transport in TRANSPORTS {
        let topic = format!("id-{transport}");
        let sent = publish_texts(&server, &topic, &["m1", "m2", "m3", "m4"]).await;
        let query = format!("since={}", sent[1]["id"].as_str().unwrap());
        let mut sub = Subscriber::connect(&server, transport, &topic, &query).await;
        let live =
            expect_replay_then_live(&server, &mut sub, &topic, &["m3", "m4"], transport.path())
                .await;

        // The id of the newest message: nothing to replay.
        let query = format!("since={}", live["id"].as_str().unwrap());
        let mut sub = Subscriber::connect(&server, transport, &topic, &query).await;
        expect_replay_then_live(&server, &mut sub, &topic, &[], "newest id").await;
    }
}

#[actix_rt::test]
async fn since_duration_and_unix_time_replay_from_that_moment() {
    let server = TestServer::broker("").await;
    let old = server.publish("timed", "old").await;
    let old_time = old["time"].as_i64().unwrap();
    // Let the clock move two whole seconds past the old message.
    eventually(
        Duration::from_secs(4),
        "the clock is two seconds on",
        || async { common::now_unix() >= old_time + 2 },
    )
    .await;
    let new = server.publish("timed", "new").await;
    let new_time = new["time"].as_i64().unwrap();
    assert!(new_time >= old_time + 2);

    for transport in TRANSPORTS {
        // A duration counts back from now: 1s excludes the old message only.
        let mut sub = Subscriber::connect(&server, transport, "timed", "since=1s").await;
        assert_eq!(sub.take_texts(1, WAIT).await, vec!["new"], "{transport} 1s");
        let mut sub = Subscriber::connect(&server, transport, "timed", "since=1h").await;
        assert_eq!(
            sub.take_texts(2, WAIT).await,
            vec!["old", "new"],
            "{transport} 1h"
        );
        // A unix time is inclusive.
        let query = format!("since={new_time}");
        let mut sub = Subscriber::connect(&server, transport, "timed", &query).await;
        assert_eq!(
            sub.take_texts(1, WAIT).await,
            vec!["new"],
            "{transport} {query}"
        );
        let query = format!("since={old_time}");
        let mut sub = Subscriber::connect(&server, transport, "timed", &query).await;
        assert_eq!(
            sub.take_texts(2, WAIT).await,
            vec!["old", "new"],
            "{transport} {query}"
        );
    }
    // A time in the future replays nothing; the subscription still goes live.
    let query = format!("since={}", common::now_unix() + 3600);
    let mut sub = Subscriber::connect(&server, Transport::Json, "timed", &query).await;
    server.publish("timed", "later").await;
    assert_eq!(sub.next_text(WAIT).await.as_deref(), Some("later"));
    // The history endpoint agrees.
    assert_eq!(
        common::texts(&server.history("timed", &format!("since={new_time}")).await),
        vec!["new", "later"]
    );
}

#[actix_rt::test]
async fn last_event_id_header_replays_after_that_message() {
    let server = TestServer::broker("").await;
    let sent = publish_texts(&server, "resume", &["a", "b", "c"]).await;
    let first = sent[0]["id"].as_str().unwrap();
    let mut sse =
        SseClient::connect_with(&server, "/resume/sse", &[("Last-Event-ID", first)]).await;
    let open = sse.next_event(WAIT).await.expect("open");
    assert_eq!(open.event, "open");
    for expected in &sent[1..] {
        let event = sse.next_event(WAIT).await.expect("replayed event");
        assert_eq!(event.event, "message");
        assert_eq!(event.id.as_deref(), expected["id"].as_str());
        assert_eq!(&event.json(), expected);
    }
    let live = server.publish("resume", "d").await;
    assert_eq!(sse.next_message(WAIT).await, Some(live));
}

#[actix_rt::test]
async fn sse_reconnect_with_last_event_id_gets_exactly_the_missed_messages() {
    let server = TestServer::broker("").await;
    let mut sse = SseClient::connect(&server, "/reconnect/sse").await;
    assert_eq!(sse.next_event(WAIT).await.expect("open").event, "open");
    publish_texts(&server, "reconnect", &["r1", "r2"]).await;
    let mut last_id = None;
    for expected in ["r1", "r2"] {
        let event = sse.next_event(WAIT).await.expect("message");
        assert_eq!(event.json()["message"], expected);
        last_id = event.id;
    }
    drop(sse);

    publish_texts(&server, "reconnect", &["r3", "r4", "r5"]).await;
    let last_id = last_id.expect("SSE message events carry an id");
    let mut sse =
        SseClient::connect_with(&server, "/reconnect/sse", &[("Last-Event-ID", &last_id)]).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = sse.next_message(WAIT).await.expect("missed message");
        got.push(m["message"].as_str().unwrap().to_string());
    }
    assert_eq!(got, vec!["r3", "r4", "r5"]);
    server.publish("reconnect", "r6").await;
    let next = sse.next_message(WAIT).await.expect("live message");
    assert_eq!(next["message"], "r6");
}

#[actix_rt::test]
async fn replay_across_several_topics_keeps_publish_order() {
    let server = TestServer::broker("").await;
    let mut expected = Vec::new();
    for i in 0..6 {
        let topic = if i % 2 == 0 { "left" } else { "right" };
        let text = format!("{topic}-{i}");
        server.publish(topic, &text).await;
        expected.push(text);
    }
    server.publish("neither", "skip me").await;
    for transport in TRANSPORTS {
        let mut sub = Subscriber::connect(&server, transport, "left,right", "since=all").await;
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        expect_replay_then_live(&server, &mut sub, "right", &want, transport.path()).await;
        expected.push(format!("live after {transport}"));
    }
}

/// Publishes `p{publisher}-{n}` for n in 0..count, counting acknowledged ones.
async fn publisher(
    server: &TestServer,
    topic: &str,
    publisher: usize,
    count: usize,
    acked: &Cell<usize>,
) {
    for n in 0..count {
        server.publish(topic, &format!("p{publisher}-{n}")).await;
        acked.set(acked.get() + 1);
    }
}

/// Connects with `since=all` once `start_after` publishes were acknowledged, then
/// reads `total` messages.
async fn late_subscriber(
    server: &TestServer,
    topic: &str,
    transport: Transport,
    start_after: usize,
    total: usize,
    acked: &Cell<usize>,
) -> (Subscriber, Vec<String>) {
    let what = format!("{start_after} publishes acknowledged");
    eventually(Duration::from_secs(30), &what, || async {
        let acked = acked.get();
        if acked >= start_after {
            Ok(())
        } else {
            Err(format!("publishers at {acked}"))
        }
    })
    .await;
    let mut sub = Subscriber::connect(server, transport, topic, "since=all").await;
    let texts = sub.take_texts(total, Duration::from_secs(30)).await;
    (sub, texts)
}

/// Checks one subscriber's texts: every message exactly once, each publisher's in order,
/// and the whole in the stored order.
fn check_no_gap_no_duplicate(
    who: &str,
    got: &[String],
    stored: &[String],
    publishers: usize,
    per_publisher: usize,
) {
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "{who}: duplicates among {} messages",
        got.len()
    );
    assert_eq!(
        got.len(),
        publishers * per_publisher,
        "{who}: got {} of {} messages",
        got.len(),
        publishers * per_publisher
    );
    let mut next: HashMap<usize, usize> = HashMap::new();
    for text in got {
        let (p, n) = text
            .strip_prefix('p')
            .and_then(|t| t.split_once('-'))
            .map(|(p, n)| (p.parse::<usize>().unwrap(), n.parse::<usize>().unwrap()))
            .unwrap_or_else(|| panic!("{who}: unexpected message {text:?}"));
        let expected = next.entry(p).or_insert(0);
        assert_eq!(n, *expected, "{who}: publisher {p} out of order");
        *expected += 1;
    }
    assert_eq!(got, stored, "{who}: not in the stored order");
}

/// Several publishers race several subscribers that join with `since=all` at different
/// moments; every subscriber must end up with every message exactly once, in order.
async fn race(publishers: usize, per_publisher: usize, topic: &str) {
    let server = TestServer::broker("").await;
    let total = publishers * per_publisher;
    let acked = Cell::new(0);
    let joiners = [
        (Transport::Sse, total / 10),
        (Transport::Json, total * 3 / 10),
        (Transport::Ws, total / 2),
        (Transport::Raw, total * 7 / 10),
        (Transport::Sse, total * 9 / 10),
        (Transport::Json, total - 1),
    ];
    let pubs =
        join_all((0..publishers).map(|p| publisher(&server, topic, p, per_publisher, &acked)));
    let subs = join_all(joiners.iter().map(|(transport, after)| {
        late_subscriber(&server, topic, *transport, *after, total, &acked)
    }));
    let (_, results) = join(pubs, subs).await;
    assert_eq!(acked.get(), total);

    let stored = common::texts(&server.history(topic, "since=all&limit=10000").await);
    assert_eq!(stored.len(), total, "every acknowledged message is stored");
    let mut subs = Vec::new();
    for ((transport, after), (sub, got)) in joiners.iter().zip(results) {
        let who = format!("{transport} subscriber joining after {after}");
        check_no_gap_no_duplicate(&who, &got, &stored, publishers, per_publisher);
        subs.push((who, sub));
    }
    // Nothing more is pending: the next message each one gets is a new one.
    server.publish(topic, "end").await;
    for (who, mut sub) in subs {
        assert_eq!(sub.next_text(WAIT).await.as_deref(), Some("end"), "{who}");
    }
}

#[actix_rt::test]
async fn subscribers_joining_during_concurrent_publishing_get_every_message_once() {
    race(4, 100, "race").await;
}

#[actix_rt::test]
async fn replay_longer_than_one_page_joins_live_without_gap() {
    // More stored messages than one replay page (500) while publishing goes on.
    race(4, 300, "bigrace").await;
}

#[actix_rt::test]
async fn filtered_replay_spanning_several_pages_finds_every_match() {
    let server = TestServer::broker("").await;
    let acked = Cell::new(0);
    // 1200 stored messages (more than two replay pages); every 100th is urgent.
    join_all((0..4).map(|p| {
        let (server, acked) = (&server, &acked);
        async move {
            for n in 0..300 {
                let i = n * 4 + p;
                let priority = if i % 100 == 0 { "5" } else { "2" };
                let (status, m) = server
                    .publish_with("paged", format!("m{i}"), &[("X-Priority", priority)])
                    .await;
                assert_eq!(status, 200, "{m}");
                acked.set(acked.get() + 1);
            }
        }
    }))
    .await;
    assert_eq!(acked.get(), 1200);
    let stored = common::texts(&server.history("paged", "since=all&limit=10000").await);
    let mut urgent: Vec<String> = stored
        .iter()
        .filter(|t| t[1..].parse::<usize>().unwrap() % 100 == 0)
        .cloned()
        .collect();
    assert_eq!(urgent.len(), 12);
    for transport in TRANSPORTS {
        let mut sub =
            Subscriber::connect(&server, transport, "paged", "since=all&priority=5").await;
        let got = sub.take_texts(urgent.len(), WAIT).await;
        assert_eq!(got, urgent, "{transport}");
        let live = server
            .publish_with("paged", format!("live-{transport}"), &[("X-Priority", "5")])
            .await
            .1;
        assert_eq!(
            sub.next_text(WAIT).await.as_deref(),
            live["message"].as_str()
        );
        urgent.push(format!("live-{transport}"));
    }
    let all = server.poll("paged", "since=all").await;
    assert_eq!(
        all.len(),
        1204,
        "poll=1 returns every stored message, across pages"
    );
}
