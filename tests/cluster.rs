//! Cluster mode, black-box: several `tidings serve` nodes on one real PostgreSQL
//! database and one real Redis, each started on 127.0.0.1 for the test. Also: a node
//! whose PostgreSQL goes away answers 503 and recovers by itself.
//!
//! Every test name starts with `cluster_`: they run once (the second, PostgreSQL pass
//! of `./test.sh` skips them, as they bring their own PostgreSQL).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::services::{create_database, Postgres, Redis};
use common::*;
use futures_util::future::join_all;

/// Rate limits out of the way, and room for a backlog while a test publishes.
const UNLIMITED: &str = "[limits]\ndefault_tier = \"unlimited\"\nanonymous_per_minute = 0\n";

struct Cluster {
    nodes: Vec<TestServer>,
    redis: Redis,
    _postgres: Postgres,
}

/// `n` nodes on a fresh database of a private PostgreSQL, sharing a private Redis;
/// returns once every node reports itself connected to Redis.
async fn cluster(n: usize, sections: &str) -> Cluster {
    let postgres = Postgres::start();
    let redis = Redis::start();
    let database = create_database(&postgres.admin_url());
    let config = format!(
        "redis_url = \"{}\"\nsubscriber_queue = 4096\n{sections}",
        redis.url()
    );
    let nodes: Vec<TestServer> = (0..n)
        .map(|_| TestServer::start_on(&config, Some(&database)))
        .collect();
    for node in &nodes {
        wait_for_redis(node, "connected").await;
    }
    Cluster {
        nodes,
        redis,
        _postgres: postgres,
    }
}

/// Waits until `/health` says `"redis": state` (`connected` or `disconnected`).
async fn wait_for_redis(node: &TestServer, state: &str) {
    eventually(
        Duration::from_secs(15),
        &format!("{} reports redis {state}", node.addr()),
        || async {
            let (status, body) = node.get_json("/health").await;
            status == 200 && body["redis"] == state
        },
    )
    .await;
}

#[actix_rt::test]
async fn cluster_every_subscriber_on_every_node_gets_every_message_once_in_order() {
    const SUBSCRIBERS: usize = 100;
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 250;
    let c = cluster(3, UNLIMITED).await;
    let owner = register(&c.nodes[0], "owner").await.key();
    create_topic(&c.nodes[1], &owner, "spread", "public").await;

    let mut subscribers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let node = &c.nodes[i % 3];
        let transport = STREAMS[(i / 3) % STREAMS.len()];
        subscribers.push(open(node, transport, "spread", &Cred::None, Via::Header).await);
    }

    // Each publisher goes round-robin over the nodes, waiting for every 200.
    let publishers = (0..PUBLISHERS).map(|p| {
        let (nodes, owner) = (&c.nodes, owner.clone());
        async move {
            for i in 0..PER_PUBLISHER {
                let node = &nodes[(p + i) % nodes.len()];
                let got = publish_as(node, "spread", &owner, &format!("{p}:{i}")).await;
                assert_status(&got, 200, "publish");
            }
        }
    });
    let readers = subscribers
        .iter_mut()
        .enumerate()
        .map(|(n, live)| async move {
            let mut got = Vec::new();
            while got.len() < PUBLISHERS * PER_PUBLISHER {
                match live.next_message(Duration::from_secs(30)).await {
                    Some(message) => got.push(message["message"].as_str().unwrap().to_string()),
                    None => break,
                }
            }
            (n, got)
        });
    let (_, received) = futures_util::join!(join_all(publishers), join_all(readers));

    for (n, texts) in received {
        assert_eq!(
            texts.len(),
            PUBLISHERS * PER_PUBLISHER,
            "subscriber {n} on node {}",
            n % 3
        );
        let mut next: HashMap<&str, usize> = HashMap::new();
        for text in &texts {
            let (p, i) = text.split_once(':').unwrap();
            let expected = next.entry(p).or_default();
            assert_eq!(
                i.parse::<usize>().unwrap(),
                *expected,
                "subscriber {n}: publisher {p} out of order or duplicated"
            );
            *expected += 1;
        }
    }
    // Nothing extra arrives afterwards.
    for live in subscribers.iter_mut().take(6) {
        assert!(live
            .next_message(Duration::from_millis(300))
            .await
            .is_none());
    }
    // Replay from the shared history is the same on every node, in commit order.
    let mut histories = Vec::new();
    for node in &c.nodes {
        let all = node.poll("spread", "since=all").await;
        assert_eq!(
            all.len(),
            PUBLISHERS * PER_PUBLISHER,
            "poll on {}",
            node.addr()
        );
        histories.push(common::ids(&all));
    }
    assert!(histories.windows(2).all(|w| w[0] == w[1]));
}

#[actix_rt::test]
async fn cluster_revocations_on_one_node_close_subscriptions_on_another_within_a_second() {
    let c = cluster(3, UNLIMITED).await;
    let (a, b, node_c) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let owner = register(a, "owner").await;
    create_topic(a, &owner.key(), "secret", "private").await;
    let (token_id, reader) = token(a, &owner.key(), "secret", "read").await;
    let mut by_token = open(node_c, Transport::Sse, "secret", &reader, Via::Query).await;
    by_token
        .assert_delivers(b, "secret", &owner.key(), "before")
        .await;

    let started = Instant::now();
    let got = delete(
        a,
        &format!("/api/topics/secret/access-tokens/{token_id}"),
        &owner.key(),
    )
    .await;
    assert_status(&got, 204, "revoke token");
    let reason = by_token
        .expect_closed(Duration::from_secs(1), "token subscription on node C")
        .await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(reason, "Access revoked");
    let refused_again = refused(node_c, Transport::Sse, "secret", &reader, Via::Query).await;
    assert_error(&refused_again, 401, INVALID, "revoked token on node C");

    // A second API key revoked on B: its subscription on C closes too.
    let second = create_key(b, &owner.jwt(), "second", None).await;
    let key = Cred::ApiKey(second["key"].as_str().unwrap().to_string());
    let key_id = second["id"].as_str().unwrap();
    let mut by_key = open(node_c, Transport::Ws, "secret", &key, Via::Query).await;
    let got = delete(b, &format!("/api/keys/{key_id}"), &owner.jwt()).await;
    assert_status(&got, 204, "revoke key");
    by_key
        .expect_closed(Duration::from_secs(1), "API key subscription on node C")
        .await;

    // A public topic turned private on A: anonymous readers on C are closed.
    create_topic(a, &owner.key(), "news", "public").await;
    let mut anonymous = open(node_c, Transport::Json, "news", &Cred::None, Via::Header).await;
    set_visibility(a, &owner.key(), "news", "private").await;
    anonymous
        .expect_closed(
            Duration::from_secs(1),
            "anonymous reader of a topic made private",
        )
        .await;

    // A topic deleted on B: its subscribers on C are closed.
    let mut owner_sub = open(node_c, Transport::Sse, "news", &owner.key(), Via::Header).await;
    let got = delete(b, "/api/topics/news", &owner.key()).await;
    assert_status(&got, 204, "delete topic");
    let reason = owner_sub
        .expect_closed(Duration::from_secs(1), "subscriber of a deleted topic")
        .await;
    assert_eq!(reason, "Topic deleted");
}

#[actix_rt::test]
async fn cluster_a_free_account_gets_its_quota_once_across_nodes() {
    let c = cluster(
        2,
        "[limits]\ndefault_tier = \"free\"\nanonymous_per_minute = 0\n",
    )
    .await;
    let account = register(&c.nodes[0], "owner").await;
    let owner = account.key();
    for i in 0..10 {
        let got = publish_as(&c.nodes[i % 2], "quota", &owner, "within").await;
        assert_status(&got, 200, &format!("publish {i}"));
        // Each node tells what is left of the one cluster-wide quota.
        let (_, me) = get(&c.nodes[(i + 1) % 2], "/api/me", &account.jwt()).await;
        assert_eq!(me["publish_remaining"], 9 - i, "{me}");
    }
    for node in &c.nodes {
        let got = publish_as(node, "quota", &owner, "over").await;
        assert_error(&got, 429, RATE_LIMITED, "11th publish");
    }
    let resp = common::client()
        .post(c.nodes[1].url("/quota"))
        .insert_header(("X-API-Key", api_key(&owner)))
        .send_body("over")
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!((1..=6).contains(&retry), "Retry-After {retry}");
    assert_eq!(header(&resp, "x-ratelimit-limit"), "10");
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "0");
}

#[actix_rt::test]
async fn cluster_redis_outage_keeps_local_delivery_and_since_fills_the_gap() {
    let mut c = cluster(2, UNLIMITED).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let owner = register(a, "owner").await.key();
    create_topic(a, &owner, "outage", "public").await;
    let mut local = open(a, Transport::Sse, "outage", &Cred::None, Via::Header).await;
    let mut remote = open(b, Transport::Sse, "outage", &Cred::None, Via::Header).await;
    let first = publish_as(a, "outage", &owner, "before").await;
    assert_status(&first, 200, "publish before");
    for live in [&mut local, &mut remote] {
        let got = live
            .next_message(WAIT)
            .await
            .expect("delivered before the outage");
        assert_eq!(got["message"], "before");
    }

    c.redis.kill();
    wait_for_redis(a, "disconnected").await;
    let (status, health) = a.get_json("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("degraded")));
    let during = publish_as(a, "outage", &owner, "during").await;
    assert_status(&during, 200, "publish during the outage");
    let got = local
        .next_message(WAIT)
        .await
        .expect("local delivery goes on");
    assert_eq!(got["message"], "during");

    c.redis.start_again();
    wait_for_redis(a, "connected").await;
    wait_for_redis(b, "connected").await;
    let after = publish_as(a, "outage", &owner, "after").await;
    assert_status(&after, 200, "publish after the outage");
    let got = remote
        .next_message(WAIT)
        .await
        .expect("cross-node delivery resumes");
    assert_eq!(
        got["message"], "after",
        "the outage's message came live: {got}"
    );

    // A reconnect with since= the last message seen before the outage fills the gap.
    let since = first.1["id"].as_str().unwrap();
    let replayed = b.poll("outage", &format!("since={since}")).await;
    assert_eq!(common::texts(&replayed), ["during", "after"]);
}

#[actix_rt::test]
async fn cluster_node_answers_503_while_postgres_is_down_and_recovers_by_itself() {
    let postgres = Postgres::start();
    let database = create_database(&postgres.admin_url());
    let node = TestServer::start_on(UNLIMITED, Some(&database));
    let owner = register(&node, "owner").await.key();
    assert_status(
        &publish_as(&node, "db", &owner, "stored").await,
        200,
        "publish",
    );

    postgres.stop();
    for i in 0..3 {
        let got = publish_as(&node, "db", &owner, "lost").await;
        assert_error(
            &got,
            503,
            "Database unavailable",
            &format!("publish {i} while down"),
        );
    }
    let (status, _) = node.get_json("/health").await;
    assert_eq!(status, 503, "health while the database is down");
    assert!(
        node.log().contains("database unavailable"),
        "{}",
        node.log()
    );

    postgres.start_again();
    eventually(Duration::from_secs(15), "publishing recovers", || async {
        publish_as(&node, "db", &owner, "again").await.0 == 200
    })
    .await;
    let texts = common::texts(&node.poll("db", "since=all").await);
    assert_eq!(texts.first().map(String::as_str), Some("stored"));
    assert!(texts.iter().all(|t| t != "lost"), "{texts:?}");
    let (status, _) = node.get_json("/health").await;
    assert_eq!(status, 200);
    let log = node.log();
    let back = log.find("database available again");
    assert!(back > log.find("database unavailable"), "{log}");
}

fn api_key(cred: &Cred) -> String {
    match cred {
        Cred::ApiKey(key) => key.clone(),
        other => panic!("not an API key: {other:?}"),
    }
}

fn header<S>(resp: &awc::ClientResponse<S>, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

#[actix_rt::test]
async fn cluster_a_push_subscription_made_on_one_node_is_pushed_from_another_at_once() {
    let sections = format!("{UNLIMITED}[webhooks]\nallow_private = true\n");
    let c = cluster(2, &sections).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let owner = register(a, "pusher").await;
    create_topic(a, &owner.key(), "paged", "private").await;
    let endpoint = webpush::PushEndpoint::start().await;
    let keys = webpush::BrowserKeys::new();
    let body = serde_json::json!({
        "endpoint": endpoint.url("phone"), "keys": keys.json(), "topics": ["paged"],
    });
    let got = post(a, "/api/webpush/subscriptions", &owner.jwt(), &body).await;
    assert_status(&got, 201, "subscribe on node A");
    // Node B reads the subscribed topics again only every 10 s; the cluster tells it
    // at once. It publishes until a push arrives, for 3 s at most.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sent = Vec::new();
    while endpoint.received().is_empty() && Instant::now() < deadline {
        let text = format!("page {}", sent.len());
        assert_status(
            &publish_as(b, "paged", &owner.key(), &text).await,
            200,
            "publish",
        );
        sent.push(text);
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    let received = endpoint.received();
    assert!(
        !received.is_empty(),
        "no push within 3 s of {} publishes on node B",
        sent.len()
    );
    let message = keys.decrypt(&received[0]);
    assert!(
        sent.iter().any(|t| message["message"] == t.as_str()),
        "{message}"
    );
}
