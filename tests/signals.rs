//! Signals: SIGTERM ends every stream with a final `close` event, stores every
//! acknowledged publish in the database file alone and exits 0 within 10 s; SIGHUP
//! reloads the configuration live, and keeps the running one when the new one is
//! broken.

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use awc::ws::CloseCode;
use common::signals::WsWatcher;
use common::{eventually, register, unique_topic, Subscriber, TestServer, Transport, WAIT};
use futures_util::future::join_all;

const SHUTTING_DOWN: &str = "Server shutting down";
/// What a clean shutdown may take at most.
const SHUTDOWN: Duration = Duration::from_secs(10);

/// Publishes to `topic` until the server stops answering; the ids acknowledged.
async fn publish_until_refused(server: &TestServer, topic: &str, acked: &RefCell<Vec<String>>) {
    let client = server.client();
    let mut n = 0;
    loop {
        let mut request = client.post(server.url(&format!("/{topic}")));
        for (k, v) in &server.publish_headers {
            request = request.insert_header((k.as_str(), v.as_str()));
        }
        let Ok(mut response) = request.send_body(format!("m{n}")).await else {
            return;
        };
        if response.status() != 200 {
            return;
        }
        let Ok(body) = response.body().await else {
            return;
        };
        let message = common::parse_json(&body, "publish");
        acked
            .borrow_mut()
            .push(message["id"].as_str().expect("id").to_string());
        n += 1;
    }
}

#[actix_rt::test]
async fn sigterm_closes_every_stream_stores_every_acknowledged_publish_and_exits_0() {
    let mut server = TestServer::broker("").await;
    let topic = unique_topic("shutdown");
    let mut streams = Vec::new();
    for transport in [Transport::Sse, Transport::Json, Transport::Raw] {
        streams.push(Subscriber::connect(&server, transport, &topic, "").await);
    }
    let mut ws = WsWatcher::open(&server, &format!("/{topic}/ws")).await;

    let acked = RefCell::new(Vec::new());
    let publishers = join_all((0..4).map(|_| publish_until_refused(&server, &topic, &acked)));
    let stop = async {
        eventually(WAIT, "publishes are acknowledged", || async {
            acked.borrow().len() >= 200
        })
        .await;
        server.signal(libc::SIGTERM);
        Instant::now()
    };
    let (_, signalled) = futures_util::join!(publishers, stop);

    for (stream, transport) in streams.iter_mut().zip(["SSE", "JSON", "raw"]) {
        if transport == "raw" {
            // A raw stream carries message texts only: it just ends.
            assert!(stream.ends_within(SHUTDOWN).await, "raw stream ends");
            continue;
        }
        let reason = stream.expect_closed(SHUTDOWN, transport).await;
        assert_eq!(reason, SHUTTING_DOWN, "{transport}");
    }
    let (events, close) = ws.until_closed(SHUTDOWN, None).await;
    let last = events.last().expect("WebSocket events");
    assert_eq!(
        (&last["event"], &last["message"]),
        (&"close".into(), &SHUTTING_DOWN.into())
    );
    let (code, description) = close.expect("a WebSocket close frame");
    assert_eq!(code, CloseCode::Away, "close code 1001");
    assert_eq!(description.as_deref(), Some("going away"));

    let status = server.exit_status(SHUTDOWN);
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log()
    );
    assert!(took < SHUTDOWN, "shutdown took {took:?}");
    eprintln!(
        "exited {took:?} after SIGTERM; {}",
        server.log().lines().last().unwrap_or("")
    );

    let stored = common::ids(&server.stored_alone(&topic).await);
    let acked = acked.into_inner();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged missing",
        missing.len(),
        acked.len()
    );
}

#[actix_rt::test]
async fn sigterm_with_2000_open_streams_exits_within_10_s() {
    let mut server = TestServer::broker("").await;
    let topic = unique_topic("many");
    let url = server.url(&format!("/{topic}/sse"));
    let streams = join_all((0..2000).map(|_| common::LineStream::connect(&url, &[]))).await;
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let ended = join_all(streams.into_iter().map(|mut s| async move {
        s.lines_until_eof(SHUTDOWN)
            .await
            .is_some_and(|lines| lines.iter().any(|l| l.contains(SHUTTING_DOWN)))
    }))
    .await;
    let closed_in = signalled.elapsed();
    let status = server.exit_status(SHUTDOWN);
    let took = signalled.elapsed();
    eprintln!("2000 streams: all closed in {closed_in:?}, exited in {took:?}");
    assert_eq!(
        ended.iter().filter(|e| **e).count(),
        2000,
        "every stream got its close event"
    );
    assert!(status.success(), "exit status {status:?}");
    assert!(took < SHUTDOWN, "shutdown took {took:?}");
}

/// A server whose `free` tier allows `per_minute` publishes, and a `free` account's key.
fn tier_config(per_minute: u32) -> String {
    format!("[limits]\nanonymous_per_minute = 0\n[limits.tiers]\nfree = {per_minute}\n")
}

/// The statuses of `count` publishes with `key`.
async fn publish_statuses(server: &TestServer, topic: &str, key: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for n in 0..count {
        let (status, _) = server
            .publish_with(topic, format!("m{n}"), &[("X-API-Key", key)])
            .await;
        statuses.push(status);
    }
    statuses
}

async fn reloaded(server: &TestServer, line: &str) {
    eventually(WAIT, line, || async { server.log().contains(line) }).await;
}

#[actix_rt::test]
async fn sighup_applies_a_lower_tier_limit_live_and_the_server_survives() {
    let server = TestServer::start(&tier_config(100));
    let account = register(&server, &unique_topic("tier").replace('-', "_")).await;
    let topic = unique_topic("tier");
    assert_eq!(
        publish_statuses(&server, &topic, &account.api_key, 5).await,
        [200; 5]
    );

    server.rewrite_config(&tier_config(3));
    server.signal(libc::SIGHUP);
    reloaded(&server, "configuration reloaded").await;
    assert!(server.log().contains("limits.tiers"), "{}", server.log());
    let statuses = publish_statuses(&server, &topic, &account.api_key, 4).await;
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "the new quota of 3 holds at once"
    );
    let (status, _) = server.get_json("/health").await;
    assert_eq!(status, 200, "still serving");
}

#[actix_rt::test]
async fn a_broken_config_on_sighup_keeps_the_running_one() {
    let server = TestServer::start(&tier_config(3));
    let account = register(&server, &unique_topic("broken").replace('-', "_")).await;
    let topic = unique_topic("broken");
    assert_eq!(
        publish_statuses(&server, &topic, &account.api_key, 2).await,
        [200; 2]
    );

    server.rewrite_config("[limits\nfree = ");
    server.signal(libc::SIGHUP);
    reloaded(&server, "configuration not reloaded").await;
    // The running quota (3) and what it counted (2) stay.
    let statuses = publish_statuses(&server, &topic, &account.api_key, 2).await;
    assert_eq!(statuses, [200, 429]);
    let (status, _) = server.get_json("/health").await;
    assert_eq!(status, 200, "still serving");
}

#[actix_rt::test]
async fn sighup_changes_the_log_level() {
    let server = TestServer::start(&tier_config(100));
    let account = register(&server, &unique_topic("level").replace('-', "_")).await;
    let topic = unique_topic("level");
    let reloads = || server.log().matches("configuration reloaded").count();

    server.rewrite_config(&format!("log_level = \"warn\"\n{}", tier_config(100)));
    server.signal(libc::SIGHUP);
    reloaded(&server, "configuration reloaded").await;
    assert!(server.log().contains("log_level"), "{}", server.log());
    // A reload at level `warn` applies, without an `info` line.
    server.rewrite_config(&format!("log_level = \"warn\"\n{}", tier_config(1)));
    server.signal(libc::SIGHUP);
    eventually(WAIT, "the quota of 1 applies", || async {
        publish_statuses(&server, &topic, &account.api_key, 1).await == [429]
    })
    .await;
    assert_eq!(reloads(), 1, "{}", server.log());
}
