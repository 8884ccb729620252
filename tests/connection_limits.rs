//! What one client can hold of the server: request bodies have a deadline, connections
//! per IP are capped, a reserve below the file limit keeps `/health` answering; and who
//! is a client: the proxy's own `X-Forwarded-For` hop, an allowed WebSocket origin.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    raw_closed_within, raw_connect, raw_read_until, raw_response, RawResponse, TcpSse, TestServer,
    NO_LIMITS,
};

const WAIT: Duration = Duration::from_secs(10);
/// How soon after its deadline a connection is closed.
const CLOSE_MARGIN: Duration = Duration::from_millis(1500);
const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// A publish that announces 100 bytes of body and sends one.
fn slow_publish(addr: &str) -> TcpStream {
    raw_connect(
        addr,
        b"POST /slow-body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nx",
    )
}

fn health(addr: &str) -> RawResponse {
    let mut stream = raw_connect(addr, HEALTH);
    raw_response(&mut stream, Duration::from_secs(3))
}

/// The 408 of a body cut at its deadline, then the server's close of the connection
/// (after at most a second spent reading what the client still sends, so that it
/// reads the answer rather than a reset).
fn assert_cut_at_deadline(stream: &mut TcpStream, started: Instant, deadline: Duration) {
    let response = raw_response(stream, deadline + WAIT);
    assert_eq!(response.status, 408, "{response:?}");
    assert_eq!(response.json()["detail"], "Request timeout");
    assert_eq!(response.header("connection"), Some("close"));
    let answered = started.elapsed();
    assert!(answered >= deadline, "answered after {answered:?}");
    assert!(
        raw_closed_within(stream, deadline + CLOSE_MARGIN - started.elapsed()),
        "still open {:?} after the request began",
        started.elapsed()
    );
}

#[test]
fn a_trickled_body_is_cut_at_its_deadline_and_the_connection_closed() {
    let server = TestServer::start(&format!("{NO_LIMITS}body_timeout = \"1s\"\n"));
    let started = Instant::now();
    let mut stream = slow_publish(server.addr());
    // One more byte a little later: trickling does not move the deadline (a slow
    // client is under test, so this waits on purpose).
    std::thread::sleep(Duration::from_millis(500));
    stream.write_all(b"y").expect("write");
    assert_cut_at_deadline(&mut stream, started, Duration::from_secs(1));
}

#[test]
fn a_trickled_chunked_body_is_cut_at_its_deadline_too() {
    let server = TestServer::start(&format!("{NO_LIMITS}body_timeout = \"1s\"\n"));
    let started = Instant::now();
    let mut stream = raw_connect(
        server.addr(),
        b"POST /slow-chunks HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n",
    );
    assert_cut_at_deadline(&mut stream, started, Duration::from_secs(1));
}

/// A chunked body the server answers without reading (here a 404) is not drained for
/// as long as the client trickles it: the connection closes after the answer.
#[test]
fn a_chunked_body_left_unread_does_not_hold_the_connection() {
    let server = TestServer::start(&format!("{NO_LIMITS}body_timeout = \"10s\"\n"));
    let mut stream = raw_connect(
        server.addr(),
        b"POST /no/such/path/here HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n",
    );
    let response = raw_response(&mut stream, WAIT);
    assert_eq!(response.status, 404, "{response:?}");
    assert!(raw_closed_within(&mut stream, Duration::from_secs(3)));
}

#[test]
fn a_body_on_a_kept_alive_connection_has_the_same_deadline() {
    let server = TestServer::start(&format!("{NO_LIMITS}body_timeout = \"1s\"\n"));
    let mut stream = raw_connect(server.addr(), HEALTH);
    assert_eq!(raw_response(&mut stream, WAIT).status, 200);
    // A JSON body this time, read by the JSON extractor.
    let started = Instant::now();
    stream
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"email\"",
        )
        .expect("write");
    assert_cut_at_deadline(&mut stream, started, Duration::from_secs(1));
}

#[actix_rt::test]
async fn streams_and_websockets_outlive_the_body_deadline() {
    let mut server = TestServer::start(&format!("{NO_LIMITS}body_timeout = \"1s\"\n"));
    server.register_publisher().await;
    let topic = common::unique_topic("outlive");
    let mut sse = common::Subscriber::connect(&server, common::Transport::Sse, &topic, "").await;
    let mut ws = common::Subscriber::connect(&server, common::Transport::Ws, &topic, "").await;
    // Time itself is under test: the streams must outlive the one-second deadline.
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    server.publish(&topic, "still here").await;
    for sub in [&mut sse, &mut ws] {
        assert_eq!(sub.next_text(WAIT).await.as_deref(), Some("still here"));
    }
}

#[test]
fn connections_over_the_cap_per_ip_get_429_and_are_closed() {
    let server = TestServer::start(
        "[limits]\nanonymous_per_minute = 0\nconnections_per_ip = 3\ndefault_tier = \"unlimited\"\n",
    );
    // Streams count too.
    let topic = common::unique_topic("capped");
    let mut streams: Vec<TcpSse> = (0..3)
        .map(|_| TcpSse::connect(server.addr(), &format!("/{topic}/sse"), WAIT))
        .collect();
    assert!(streams.iter().all(|s| s.status == 200));
    let mut stream = raw_connect(server.addr(), HEALTH);
    let response = raw_response(&mut stream, WAIT);
    assert_eq!(response.status, 429, "{response:?}");
    assert_eq!(response.json()["detail"], common::RATE_LIMITED);
    assert!(response.header("retry-after").is_some(), "{response:?}");
    assert!(raw_closed_within(&mut stream, Duration::from_secs(3)));
    // A connection closed frees its place.
    streams.pop();
    common::eventually_blocking(WAIT, "the cap frees a place", || {
        health(server.addr()).status == 200
    });
}

/// Lowers the server's limit on open files, as an operator's `prlimit` would.
fn set_file_limit(pid: u32, files: u64) {
    let limit = libc::rlimit {
        rlim_cur: files,
        rlim_max: files,
    };
    // SAFETY: prlimit reads the struct it is given and writes nothing back (null).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn health_answers_while_slow_bodies_fill_the_file_limit() {
    let deadline = Duration::from_secs(3);
    let server = TestServer::start(&format!("{NO_LIMITS}body_timeout = \"3s\"\n"));
    set_file_limit(server.pid(), 256);
    let started = Instant::now();
    let mut held: Vec<TcpStream> = (0..300).map(|_| slow_publish(server.addr())).collect();
    let response = health(server.addr());
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json()["status"], "ok");
    assert!(
        started.elapsed() < deadline,
        "too slow to test the deadline"
    );
    // Those past the reserve were refused at once, the others cut at the deadline.
    let mut statuses = std::collections::BTreeMap::new();
    for stream in &mut held {
        let response = raw_response(stream, deadline + WAIT);
        if response.status == 503 {
            assert_eq!(
                response.json()["detail"],
                "Server is at its connection limit"
            );
        }
        *statuses.entry(response.status).or_insert(0) += 1;
    }
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(statuses[&503] > 0 && statuses[&408] > 0, "{statuses:?}");
    let close_by = deadline + CLOSE_MARGIN;
    for stream in &mut held {
        let left = close_by.saturating_sub(started.elapsed());
        assert!(
            raw_closed_within(stream, left),
            "open after {:?}",
            started.elapsed()
        );
    }
}

/// `behind_proxy`: the proxy appends its hop to the last `X-Forwarded-For` header, so
/// headers the client sent before it must not choose the client IP.
#[test]
fn behind_a_proxy_the_last_hop_of_the_last_forwarded_header_is_the_client() {
    let server = TestServer::start(
        "behind_proxy = true\n[limits]\nanonymous_per_minute = 2\nconnections_per_ip = 0\n",
    );
    let status = |first: &str, last: &str| {
        let request = format!(
            "GET /proxied/json?poll=1 HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: {first}\r\n\
             X-Forwarded-For: 10.0.0.1, {last}\r\nConnection: close\r\n\r\n"
        );
        raw_response(&mut raw_connect(server.addr(), request.as_bytes()), WAIT).status
    };
    assert_eq!(status("1.1.1.1", "9.9.9.9"), 200);
    assert_eq!(status("1.1.1.2", "9.9.9.9"), 200);
    assert_eq!(status("1.1.1.3", "9.9.9.9"), 429);
    assert_eq!(status("1.1.1.3", "8.8.8.8"), 200);
}

/// A WebSocket upgrade request with the given `Origin` header line (or none).
fn websocket_upgrade(server: &TestServer, origin: &str) -> RawResponse {
    let request = format!(
        "GET /{}/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n",
        common::unique_topic("origin")
    );
    raw_response(&mut raw_connect(server.addr(), request.as_bytes()), WAIT)
}

#[test]
fn a_websocket_from_an_origin_not_allowed_is_refused_like_its_preflight() {
    let server = TestServer::start(&format!(
        "{NO_LIMITS}\n[cors]\nallowed_origins = [\"https://good.example\"]\n"
    ));
    let refused = websocket_upgrade(&server, "Origin: https://evil.example\r\n");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json()["detail"], "Origin not allowed");
    let preflight =
        b"OPTIONS /x/ws HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\n\
        Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n";
    let preflight = raw_response(&mut raw_connect(server.addr(), preflight), WAIT);
    assert_eq!(preflight.status, 403);
    assert_eq!(
        websocket_upgrade(&server, "Origin: https://good.example\r\n").status,
        101
    );
    // Clients that are not browsers send no Origin.
    assert_eq!(websocket_upgrade(&server, "").status, 101);
}

#[test]
fn any_origin_may_open_a_websocket_by_default() {
    let server = TestServer::start(NO_LIMITS);
    assert_eq!(
        websocket_upgrade(&server, "Origin: https://anywhere.example\r\n").status,
        101
    );
}

#[actix_rt::test]
async fn a_later_request_that_stalls_on_a_kept_alive_connection_is_closed() {
    let mut server = TestServer::start(&format!("{NO_LIMITS}body_timeout = \"1s\"\n"));
    server.register_publisher().await;
    // The answer must start within 5 s (head) + 1 s (body) + 5 s (handler) of the
    // request's first byte.
    let limit = Duration::from_secs(11);
    let topic = common::unique_topic("stall");
    // A stream opened as a connection's second request sends nothing more: it is
    // answered, not stalled, and outlives the limit.
    let mut stream = raw_connect(server.addr(), HEALTH);
    assert_eq!(raw_response(&mut stream, WAIT).status, 200);
    let open = format!("GET /{topic}/sse HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(open.as_bytes()).expect("write");
    raw_read_until(&mut stream, "event: open", WAIT);
    // A second request's head trickled a byte at a time.
    let mut stalled = raw_connect(server.addr(), HEALTH);
    assert_eq!(raw_response(&mut stalled, WAIT).status, 200);
    let started = Instant::now();
    for byte in b"GET /health HTTP/1.1\r\nHo" {
        stalled.write_all(&[*byte]).expect("write");
        // A client trickling its head is under test: the pause is the point.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        raw_closed_within(&mut stalled, limit + CLOSE_MARGIN - started.elapsed()),
        "a stalled request still holds its connection after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() >= limit - Duration::from_millis(200));
    server.publish(&topic, "still here").await;
    raw_read_until(&mut stream, "still here", WAIT);
}
