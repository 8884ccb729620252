//! `GET /metrics` read by a real Prometheus text parser (`prometheus_client`'s, see
//! `tests/common/metrics.rs`): every family has `# HELP` and `# TYPE`, the process's
//! own metrics are there, counters and histograms move under a small load, an
//! authentication failure, a 429 and a connection over the per-IP cap are counted
//! with their labels, a subscriber too slow to keep up is counted as dropped, and
//! `metrics_listen` serves the same text on a port of its own, never rate-limited (an
//! address it cannot bind stops start-up with one line).
//! Without the parser (a plain `cargo test`) each test that needs it is skipped with
//! a warning.

mod common;

use common::metrics::{fetch, prometheus_python, scrape, Scrape};
use common::{
    create_topic, delete, eventually, login, raw_connect, raw_response, register, Subscriber,
    TcpSse, TestServer, Transport, WAIT,
};

/// What the process collector reports on Linux.
const PROCESS: [&str; 6] = [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
];

/// Series every scrape has, labelled ones with each of their labels.
const SERIES: [(&str, &[(&str, &str)]); 12] = [
    ("tidings_connections", &[("transport", "sse")]),
    ("tidings_connections_opened_total", &[("transport", "raw")]),
    ("tidings_messages_published_total", &[]),
    ("tidings_messages_delivered_total", &[]),
    ("tidings_slow_subscribers_dropped_total", &[]),
    ("tidings_rate_limited_total", &[("limit", "anonymous")]),
    (
        "tidings_auth_failures_total",
        &[("reason", "incorrect_login")],
    ),
    ("tidings_publish_latency_seconds_count", &[]),
    ("tidings_delivery_latency_seconds_count", &[]),
    ("tidings_writer_batch_messages_count", &[]),
    ("tidings_journal_backlog_messages", &[]),
    ("tidings_live_topics", &[]),
];

const N: usize = 40;

#[actix_rt::test]
async fn every_family_has_help_and_type_and_the_process_is_measured() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let server = TestServer::without_limits();
    let scrape = scrape(&python, &server).await;
    for family in &scrape.families {
        let help = family["help"].as_str().unwrap_or_default();
        assert!(!help.is_empty(), "no HELP: {family}");
        assert_ne!(family["type"], "unknown", "no TYPE: {family}");
    }
    for name in PROCESS {
        scrape.value(name, &[]);
    }
    assert!(scrape.value("process_resident_memory_bytes", &[]) > 1e6);
    assert!(scrape.value("process_open_fds", &[]) >= 3.0);
    for (name, labels) in SERIES {
        scrape.value(name, labels);
    }
    // A histogram's buckets end at +Inf, which counts every observation.
    let inf = [("le", "+Inf")];
    assert_eq!(
        scrape.value("tidings_publish_latency_seconds_bucket", &inf),
        scrape.value("tidings_publish_latency_seconds_count", &[])
    );
}

#[actix_rt::test]
async fn counters_and_histograms_move_under_load() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let server = TestServer::without_limits();
    let owner = register(&server, "metrics_load").await;
    let topic = common::unique_topic("load");
    let before = scrape(&python, &server).await;
    let mut sse = Subscriber::connect(&server, Transport::Sse, &topic, "").await;
    let mut ws = Subscriber::connect(&server, Transport::Ws, &topic, "").await;
    let open = scrape(&python, &server).await;
    for transport in ["sse", "ws"] {
        let label = [("transport", transport)];
        assert!(
            open.value("tidings_connections", &label) >= 1.0,
            "{transport}"
        );
        let opened = "tidings_connections_opened_total";
        assert!(open.value(opened, &label) > before.value(opened, &label));
    }

    let key = [("X-API-Key", owner.api_key.as_str())];
    for i in 0..N {
        let path = format!("/{topic}");
        let (status, _, body) = server.request("POST", &path, &key, format!("m{i}")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    for subscriber in [&mut sse, &mut ws] {
        assert_eq!(subscriber.take_texts(N, WAIT).await.len(), N);
    }
    let delta = |now: &Scrape, name: &str| now.value(name, &[]) - before.value(name, &[]);
    let after = eventually(WAIT, "deliveries counted", || async {
        let now = scrape(&python, &server).await;
        let delivered = delta(&now, "tidings_messages_delivered_total");
        if delivered >= (2 * N) as f64 {
            Ok(now)
        } else {
            Err(delivered)
        }
    })
    .await;
    assert_eq!(delta(&after, "tidings_messages_published_total"), N as f64);
    assert!(delta(&after, "tidings_publish_latency_seconds_count") >= N as f64);
    assert!(delta(&after, "tidings_publish_latency_seconds_sum") > 0.0);
    // Once per message fanned out, however many subscribers it reached.
    assert_eq!(
        delta(&after, "tidings_delivery_latency_seconds_count"),
        N as f64
    );
    assert!(after.value("tidings_live_topics", &[]) >= 1.0);

    // On SQLite the messages wait in the journal until a move, which deleting a topic
    // makes at once; elsewhere each commit is a batch already.
    let sqlite = !server.database_url().starts_with("postgres");
    if sqlite {
        assert!(after.value("tidings_journal_backlog_messages", &[]) >= N as f64);
    }
    let scratch = common::unique_topic("scratch");
    create_topic(&server, &owner.key(), &scratch, "public").await;
    let deleted = delete(&server, &format!("/api/topics/{scratch}"), &owner.key()).await;
    assert_eq!(deleted.0, 204, "{}", deleted.1);
    let batches = eventually(WAIT, "a batch stored", || async {
        let now = scrape(&python, &server).await;
        let stored = delta(&now, "tidings_writer_batch_messages_sum");
        if stored >= N as f64 {
            Ok(now)
        } else {
            Err(stored)
        }
    })
    .await;
    assert!(delta(&batches, "tidings_writer_batch_messages_count") >= 1.0);
    assert_eq!(batches.value("tidings_journal_backlog_messages", &[]), 0.0);
}

#[actix_rt::test]
async fn an_auth_failure_and_a_429_are_counted_with_their_labels() {
    let Some(python) = prometheus_python() else {
        return;
    };
    // Six requests without a valid credential a minute; publishes on the free tier.
    let server = TestServer::start("[limits]\nanonymous_per_minute = 6\n");
    let before = scrape(&python, &server).await;
    let account = register(&server, "metrics_limits").await;
    assert_eq!(login(&server, &account.email, "wrong").await.0, 401);
    // A junk key counts against the IP's quota, which the fifth no longer has.
    let junk = [("X-API-Key", "noti_junk")];
    for attempt in 1..=5 {
        let (status, _, _) = server.request("GET", "/t/json?poll=1", &junk, "").await;
        assert_eq!(
            status,
            if attempt < 5 { 401 } else { 429 },
            "attempt {attempt}"
        );
    }
    // The free tier publishes 10 a minute.
    let key = [("X-API-Key", account.api_key.as_str())];
    for attempt in 1..=11 {
        let (status, _, _) = server.request("POST", "/quota", &key, "m").await;
        assert_eq!(
            status,
            if attempt <= 10 { 200 } else { 429 },
            "publish {attempt}"
        );
    }
    let after = scrape(&python, &server).await;
    let delta = |name: &str, label: (&str, &str)| {
        after.value(name, &[label]) - before.value(name, &[label])
    };
    let failures = "tidings_auth_failures_total";
    assert_eq!(delta(failures, ("reason", "invalid")), 5.0);
    assert_eq!(delta(failures, ("reason", "incorrect_login")), 1.0);
    let limited = "tidings_rate_limited_total";
    assert_eq!(delta(limited, ("limit", "anonymous")), 1.0);
    assert_eq!(delta(limited, ("limit", "publish")), 1.0);
    assert_eq!(delta(limited, ("limit", "login")), 0.0);
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

#[actix_rt::test]
async fn metrics_listen_serves_the_same_text_on_its_own_port_never_limited() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let port = free_port();
    let server = TestServer::start(&format!(
        "metrics_listen = \"127.0.0.1:{port}\"\n[limits]\nanonymous_per_minute = 2\n"
    ));
    let own = format!("http://127.0.0.1:{port}/metrics");
    for i in 0..20 {
        assert_eq!(fetch(&own).await.0, 200, "scrape {i} on metrics_listen");
        let (status, _, _) = server.request("GET", "/metrics", &[], "").await;
        assert_eq!(status, 200, "scrape {i} on the main port");
    }
    let main = scrape(&python, &server).await;
    let side = Scrape::parse(&python, &fetch(&own).await.1);
    assert_eq!(main.names(), side.names());
    // One process behind both.
    let started = "process_start_time_seconds";
    assert_eq!(main.value(started, &[]), side.value(started, &[]));
    // Only /metrics is served there.
    let (status, body) = fetch(&format!("http://127.0.0.1:{port}/health")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"detail\""), "{body}");
}

#[actix_rt::test]
async fn a_connection_over_the_ip_cap_is_counted_and_metrics_listen_still_answers() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let port = free_port();
    let server = TestServer::start(&format!(
        "metrics_listen = \"127.0.0.1:{port}\"\n{}",
        "[limits]\nanonymous_per_minute = 0\nconnections_per_ip = 2\n"
    ));
    let own = format!("http://127.0.0.1:{port}/metrics");
    let limited = "tidings_rate_limited_total";
    let label = [("limit", "connections")];
    let before = Scrape::parse(&python, &fetch(&own).await.1).value(limited, &label);
    let topic = common::unique_topic("capped");
    let streams: Vec<TcpSse> = (0..2)
        .map(|_| TcpSse::connect(server.addr(), &format!("/{topic}/sse"), WAIT))
        .collect();
    assert!(streams.iter().all(|s| s.status == 200));
    let mut third = raw_connect(server.addr(), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(raw_response(&mut third, WAIT).status, 429);
    // The main port is full for this address; the metrics listener is not.
    let after = Scrape::parse(&python, &fetch(&own).await.1);
    assert_eq!(after.value(limited, &label), before + 1.0);
    assert_eq!(
        after.value("tidings_connections", &[("transport", "sse")]),
        2.0
    );
}

#[actix_rt::test]
async fn a_subscriber_too_slow_to_keep_up_is_counted_as_dropped() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let server = TestServer::broker("subscriber_queue = 4\nmessage_size_limit = 65536\n").await;
    let dropped = "tidings_slow_subscribers_dropped_total";
    let before = scrape(&python, &server).await.value(dropped, &[]);
    // Reads its head and `open` event, then nothing: the socket's buffers fill, then
    // its queue.
    let topic = common::unique_topic("stuck");
    let mut stuck = TcpSse::connect(server.addr(), &format!("/{topic}/sse"), WAIT);
    assert_eq!(stuck.next_event(WAIT).expect("open").event, "open");
    let body = bytes::Bytes::from("x".repeat(60_000));
    let mut published = 0;
    while scrape(&python, &server).await.value(dropped, &[]) == before {
        assert!(
            published < 2000,
            "still not dropped after {published} messages"
        );
        for _ in 0..50 {
            assert_eq!(server.publish_with(&topic, body.clone(), &[]).await.0, 200);
        }
        published += 50;
    }
    assert_eq!(
        scrape(&python, &server).await.value(dropped, &[]),
        before + 1.0
    );
}

#[actix_rt::test]
async fn the_grafana_dashboard_uses_only_series_that_exist() {
    let dashboard = include_str!("../docs/grafana-dashboard.json");
    let server = TestServer::without_limits();
    let (status, text) = fetch(&server.url("/metrics")).await;
    assert_eq!(status, 200, "{text}");
    let mut named = 0;
    for (at, _) in dashboard
        .match_indices("tidings_")
        .chain(dashboard.match_indices("process_"))
    {
        let name: String = dashboard[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let sampled = text.lines().any(|line| {
            line.strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        });
        assert!(sampled, "the dashboard uses {name}, which /metrics lacks");
        named += 1;
    }
    assert!(named >= 12, "the dashboard names {named} series");
}

#[test]
fn a_metrics_listen_address_in_use_stops_start_up_with_one_line() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = busy.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("a temp dir");
    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = common::cli::run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database,
        ],
        &[("TIDINGS_METRICS_LISTEN", &addr)],
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(&addr) && last.contains("metrics_listen"),
        "{}",
        out.stderr
    );
}
