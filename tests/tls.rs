//! HTTPS without a proxy (`listen_tls`, `tls_cert`, `tls_key`): publishing, polling,
//! SSE and WebSocket over TLS with a certificate made by the test; the same limits,
//! log and shutdown as plain HTTP; plain HTTP and stalled handshakes on the TLS port;
//! start-up refusals that name the file.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cli::run;
use common::tls::{client_config, tls_client, TlsServer};
use common::{unique_topic, LineStream, SseClient, Subscriber, WsClient, NO_LIMITS, WAIT};
use rustls::pki_types::ServerName;
use serde_json::Value;

/// What the front allows a new connection before its first head is in (handshake
/// included); see `REQUEST_TIMEOUT` in `src/http/front.rs`.
const HEAD_TIME: Duration = Duration::from_secs(5);

/// A server with HTTPS and no rate limits, and a registered publisher.
async fn https_broker() -> TlsServer {
    let mut server = TlsServer::start(NO_LIMITS);
    server.register_publisher().await;
    server
}

/// Publishes `text` to `topic` over HTTPS, asserting a 200: the message object.
async fn publish(server: &TlsServer, topic: &str, text: &str) -> Value {
    let (status, body) = server.https_publish(topic, text).await;
    let message = common::parse_json(&body, "HTTPS publish");
    assert_eq!(status, 200, "HTTPS publish: {message}");
    message
}

#[actix_rt::test]
async fn publish_and_poll_over_https() {
    let server = https_broker().await;
    let topic = unique_topic("https");
    let sent = publish(&server, &topic, "over TLS").await;

    let path = format!("/{topic}/json?poll=1");
    let (status, body) = server.https("GET", &path, &[], "").await;
    assert_eq!(status, 200);
    let polled: Value = serde_json::from_slice(body.trim_ascii()).expect("one JSON line");
    assert_eq!(
        (&polled["id"], &polled["message"]),
        (&sent["id"], &sent["message"])
    );
    // Both listeners serve one broker.
    assert_eq!(
        common::ids(&server.poll(&topic, "since=all").await),
        [sent["id"].as_str().unwrap()]
    );

    let (status, body) = server.https("GET", "/health", &[], "").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // The access log is the same on either listener, with the client's IP.
    let logged = format!("method=POST path=/{topic} status=200");
    common::eventually_blocking(WAIT, "the HTTPS publish in the access log", || {
        let log = server.log();
        log.lines()
            .any(|l| l.contains(&logged) && l.contains("ip=127.0.0.1"))
            .then_some(())
            .ok_or(log)
    });
}

#[actix_rt::test]
async fn sse_over_https_receives_a_published_message() {
    let server = https_broker().await;
    let topic = unique_topic("https-sse");
    let lines = LineStream::connect(&server.https_url(&format!("/{topic}/sse")), &[]).await;
    assert_eq!(lines.status, 200);
    assert_eq!(lines.content_type, "text/event-stream");
    let mut sse = SseClient { lines };
    let open = sse.next_event(WAIT).await.expect("the open event");
    assert_eq!(open.event, "open");

    let sent = publish(&server, &topic, "to SSE over TLS").await;
    let got = sse.next_message(WAIT).await.expect("the message over SSE");
    assert_eq!(
        (&got["id"], &got["message"]),
        (&sent["id"], &sent["message"])
    );
}

#[actix_rt::test]
async fn wss_receives_a_published_message() {
    let server = https_broker().await;
    let topic = unique_topic("wss");
    let mut ws = WsClient::connect_url(&server.wss_url(&format!("/{topic}/ws")), &[])
        .await
        .unwrap_or_else(|status| panic!("WSS refused with {status}"));
    let open = ws.next_json(WAIT).await.expect("the open event");
    assert_eq!(open["event"], "open");

    let sent = publish(&server, &topic, "to WSS").await;
    let got = ws.next_message(WAIT).await.expect("the message over WSS");
    assert_eq!(
        (&got["id"], &got["message"]),
        (&sent["id"], &sent["message"])
    );
}

#[actix_rt::test]
async fn sigterm_ends_https_streams_with_the_close_event() {
    let mut server = https_broker().await;
    let topic = unique_topic("tls-shutdown");
    let lines = LineStream::connect(&server.https_url(&format!("/{topic}/sse")), &[]).await;
    let mut sse = Subscriber::Sse(SseClient { lines });
    let ws = WsClient::connect_url(&server.wss_url(&format!("/{topic}/ws")), &[]).await;
    let mut ws = Subscriber::Ws(ws.unwrap_or_else(|status| panic!("WSS refused with {status}")));
    for stream in [&mut sse, &mut ws] {
        let open = stream.next_event(WAIT).await.expect("the open event");
        assert_eq!(open["event"], "open");
    }

    server.signal(libc::SIGTERM);
    let shutdown = Duration::from_secs(10);
    for (stream, name) in [(&mut sse, "SSE"), (&mut ws, "WSS")] {
        let reason = stream.expect_closed(shutdown, name).await;
        assert_eq!(reason, "Server shutting down", "{name}");
    }
    let status = server.exit_status(shutdown);
    assert!(status.success(), "{status:?}; log:\n{}", server.log());
}

#[actix_rt::test]
async fn tls_1_2_and_1_3_both_negotiate_http_1_1() {
    let server = TlsServer::start(NO_LIMITS);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .expect("version")
            .with_root_certificates(common::tls::roots())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let (tls, _) = handshake(&server.https_addr, config).await;
        let (_, connection) = tls.get_ref();
        assert_eq!(connection.protocol_version(), Some(version.version));
        assert_eq!(connection.alpn_protocol(), Some(&b"http/1.1"[..]));
    }
}

#[actix_rt::test]
async fn with_two_listeners_each_worker_still_has_a_core_of_its_own() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let server = TlsServer::start(&format!("workers = {cores}\n{NO_LIMITS}"));
    let (status, _) = server.https("GET", "/health", &[], "").await;
    assert_eq!(status, 200);
    // Each worker thread's `Cpus_allowed_list`: one core each, no two the same.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("threads");
    let mut pinned: Vec<String> = tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            let status = std::fs::read_to_string(path.join("status")).ok()?;
            let allowed = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            comm.starts_with("actix-rt|system")
                .then(|| allowed.trim().to_string())
        })
        .collect();
    assert_eq!(pinned.len(), cores, "{pinned:?}");
    assert!(
        pinned.iter().all(|c| c.parse::<usize>().is_ok()),
        "{pinned:?}"
    );
    pinned.sort_unstable();
    pinned.dedup();
    assert_eq!(pinned.len(), cores, "no two workers share a core");
}

#[actix_rt::test]
async fn plain_http_on_the_https_port_is_closed_and_harms_nothing() {
    let server = TlsServer::start(NO_LIMITS);
    let mut plain = TcpStream::connect(&server.https_addr).expect("connect");
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    plain.set_read_timeout(Some(WAIT)).expect("timeout");
    let started = Instant::now();
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(started.elapsed() < WAIT, "closed at once, not timed out");
    assert!(
        !reply.starts_with(b"HTTP/"),
        "no HTTP answer on the TLS port"
    );

    let (status, _) = server.https("GET", "/health", &[], "").await;
    assert_eq!(status, 200);
    let (status, _, _) = server.request("GET", "/health", &[], "").await;
    assert_eq!(status, 200);
}

#[test]
fn a_stalled_handshake_is_closed_within_the_head_time() {
    let server = TlsServer::start(NO_LIMITS);
    // A TLS record header that announces a ClientHello, and then nothing.
    let mut stalled = TcpStream::connect(&server.https_addr).expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("send");
    let mut silent = TcpStream::connect(&server.https_addr).expect("connect");
    let started = Instant::now();
    for socket in [&mut stalled, &mut silent] {
        socket
            .set_read_timeout(Some(HEAD_TIME * 2))
            .expect("timeout");
        let closed = matches!(socket.read(&mut [0; 64]), Ok(0) | Err(_));
        assert!(closed, "the server closed the connection");
    }
    let took = started.elapsed();
    assert!(
        took >= HEAD_TIME - Duration::from_millis(500),
        "closed after {took:?}"
    );
    assert!(
        took < HEAD_TIME + Duration::from_secs(2),
        "closed after {took:?}"
    );
}

#[actix_rt::test]
async fn handshakes_count_toward_connections_per_ip_on_both_listeners() {
    let limits = NO_LIMITS.replace("connections_per_ip = 0", "connections_per_ip = 2");
    let server = TlsServer::start(&limits);
    // Two connections that have not finished a handshake: the IP's cap is reached.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&server.https_addr).expect("connect"))
        .collect();
    common::eventually(WAIT, "an HTTPS request over the cap is refused", || async {
        let (status, body) = server.https("GET", "/health", &[], "").await;
        let detail = common::parse_json(&body, "refusal")["detail"].clone();
        (status == 429 && detail.is_string())
            .then_some(())
            .ok_or(status)
    })
    .await;
    let (status, _, _) = server.request("GET", "/health", &[], "").await;
    assert_eq!(status, 429, "the plain listener counts them too");

    drop(held);
    common::eventually(WAIT, "served again once they close", || async {
        server.https("GET", "/health", &[], "").await.0 == 200
    })
    .await;
}

/// A configuration with `listen_tls` and `files` (`tls_cert`, `tls_key` lines) in a
/// fresh directory: the error line `tidings serve` exits with.
fn start_up_error(dir: &Path, files: &str) -> String {
    let config = dir.join("tidings.toml");
    std::fs::write(&config, format!("listen_tls = \"127.0.0.1:0\"\n{files}")).expect("write");
    let (config, database) = (config.display().to_string(), dir.join("t.db"));
    let database = database.display().to_string();
    let args = ["serve", "--config", &config, "--listen", "127.0.0.1:0"];
    let out = run(&[&args[..], &["--database-url", &database]].concat(), &[]);
    assert!(matches!(out.code, Some(c) if c != 0), "exit {:?}", out.code);
    assert!(!out.stdout.contains("listening"), "{}", out.stdout);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line:\n{}", out.stderr);
    assert!(lines[0].starts_with("error: "), "{}", out.stderr);
    lines[0].to_string()
}

#[test]
fn bad_tls_settings_stop_start_up_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&cert, &common::tls::certificate().cert_pem).expect("write");
    std::fs::write(&key, &common::tls::certificate().key_pem).expect("write");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let missing = dir.path().join("missing.pem");
    let files = |cert: &Path, key: &Path| {
        format!(
            "tls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        )
    };
    let cases = [
        (
            files(&cert, &missing),
            vec!["tls_key", missing.to_str().unwrap()],
        ),
        (
            files(&missing, &key),
            vec!["tls_cert", missing.to_str().unwrap()],
        ),
        (
            files(&junk, &key),
            vec!["tls_cert", junk.to_str().unwrap(), "no PEM certificate"],
        ),
        (
            files(&cert, &junk),
            vec!["tls_key", junk.to_str().unwrap(), "no PEM private key"],
        ),
        (files(&cert, &cert), vec!["tls_key", cert.to_str().unwrap()]),
        (
            format!("tls_cert = {:?}\n", cert.display().to_string()),
            vec!["tls_key"],
        ),
    ];
    for (config, names) in cases {
        let error = start_up_error(dir.path(), &config);
        for name in names {
            assert!(error.contains(name), "{error:?} does not name {name:?}");
        }
    }
}

/// Connects to `addr` and completes a TLS handshake with `config` (server name
/// `127.0.0.1`): the stream and how long the handshake took.
async fn handshake(
    addr: &str,
    config: rustls::ClientConfig,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Duration,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let started = Instant::now();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    (tls, started.elapsed())
}

/// Not a check: publish round-trips per second over one kept-alive connection, HTTP
/// against HTTPS, and the handshake's time. `cargo test --test tls -- --ignored
/// --nocapture`.
#[actix_rt::test]
#[ignore]
async fn measure_https_against_http() {
    let server = https_broker().await;
    let topic = unique_topic("measure");
    let headers = server.publish_headers.clone();
    let rounds = 2000;
    for (name, client, url) in [
        ("HTTP ", server.client(), server.url(&format!("/{topic}"))),
        (
            "HTTPS",
            tls_client(),
            server.https_url(&format!("/{topic}")),
        ),
    ] {
        let started = Instant::now();
        for n in 0..rounds {
            let mut request = client.post(&url);
            for (k, v) in &headers {
                request = request.insert_header((k.as_str(), v.as_str()));
            }
            let mut response = request.send_body(format!("m{n}")).await.expect("publish");
            assert_eq!(response.status(), 200);
            response.body().await.expect("body");
        }
        let rate = f64::from(rounds) / started.elapsed().as_secs_f64();
        eprintln!("{name}: {rate:.0} publish round-trips/s over one connection");
    }
    let mut times = Vec::new();
    for _ in 0..200 {
        let config = Arc::unwrap_or_clone(client_config());
        times.push(handshake(&server.https_addr, config).await.1);
    }
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    eprintln!("TLS handshake (TCP connected to done): median {median:?}, p99 {p99:?}");
}
