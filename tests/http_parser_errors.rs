//! Requests the HTTP parser refuses are answered like every other error: a JSON
//! `{"detail"}` body, and the connection closed.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{raw_closed_within, raw_connect, raw_response, TestServer, NO_LIMITS};

const WAIT: Duration = Duration::from_secs(10);

/// Sends `request` as a connection's first bytes and checks the JSON error it gets.
fn assert_refused(request: &[u8], status: u16, detail: &str) {
    let server = TestServer::start(NO_LIMITS);
    let mut stream = raw_connect(server.addr(), request);
    let response = raw_response(&mut stream, WAIT);
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.json()["detail"], detail, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"));
    assert!(raw_closed_within(&mut stream, Duration::from_secs(3)));
}

fn post_with(headers: &str) -> Vec<u8> {
    format!("POST /parser-test HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n\r\nx").into_bytes()
}

#[test]
fn a_duplicate_content_length_is_a_json_400() {
    let request = post_with("Content-Length: 1\r\nContent-Length: 1");
    assert_refused(&request, 400, "Duplicate Content-Length");
}

#[test]
fn content_length_with_transfer_encoding_is_a_json_400() {
    let request = post_with("Content-Length: 1\r\nTransfer-Encoding: chunked");
    assert_refused(
        &request,
        400,
        "Content-Length and Transfer-Encoding together",
    );
}

#[test]
fn a_bare_carriage_return_is_a_json_400() {
    let request = b"GET /health HTTP/1.1\r\nHost: localhost\rX-Other: a\r\n\r\n";
    assert_refused(request, 400, "Malformed request head");
}

#[test]
fn a_100_kb_url_is_a_json_414() {
    let request = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    assert_refused(request.as_bytes(), 414, "URI too long");
}

#[test]
fn too_many_headers_are_a_json_431() {
    let many: String = (0..200).map(|i| format!("X-Header-{i}: 1\r\n")).collect();
    let request = format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    assert_refused(request.as_bytes(), 431, "Request header fields too large");
}

#[test]
fn too_large_headers_are_a_json_431() {
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(140 * 1024)
    );
    assert_refused(request.as_bytes(), 431, "Request header fields too large");
}

#[test]
fn a_head_slower_than_five_seconds_is_a_json_408() {
    let server = TestServer::start(NO_LIMITS);
    let started = Instant::now();
    let mut stream = raw_connect(server.addr(), b"GET /health HTTP/1.1\r\nHost: l");
    let response = raw_response(&mut stream, WAIT);
    assert_eq!(response.status, 408, "{response:?}");
    assert_eq!(response.json()["detail"], "Request timeout");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4900) && waited < Duration::from_secs(7),
        "answered after {waited:?}"
    );
    assert!(raw_closed_within(&mut stream, Duration::from_secs(2)));
}

/// The front reads the head before the dispatcher does: a head that arrives in
/// pieces, and the requests after it on the same connection, are served as before.
#[test]
fn a_head_in_pieces_and_the_requests_after_it_are_served() {
    let server = TestServer::start(NO_LIMITS);
    let mut stream = raw_connect(server.addr(), b"GET /hea");
    for piece in [&b"lth HTTP/1.1\r\nHo"[..], b"st: localhost\r\n", b"\r\n"] {
        // A head in pieces is under test: the pause keeps them apart.
        std::thread::sleep(Duration::from_millis(200));
        stream.write_all(piece).expect("write");
    }
    let first = raw_response(&mut stream, WAIT);
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json()["status"], "ok");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let second = raw_response(&mut stream, WAIT);
    assert_eq!(second.status, 200, "{second:?}");
}

/// Sends `request` as a kept-alive connection's second request (the dispatcher's
/// parser reads it, not the front's) and checks it gets a JSON error too.
fn assert_refused_later(request: &[u8], status: u16, detail: &str) {
    let server = TestServer::start(NO_LIMITS);
    let mut stream = raw_connect(
        server.addr(),
        b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(raw_response(&mut stream, WAIT).status, 200);
    stream.write_all(request).expect("write");
    let response = raw_response(&mut stream, WAIT);
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json()["detail"], detail, "{response:?}");
    assert!(raw_closed_within(&mut stream, Duration::from_secs(3)));
}

#[test]
fn a_malformed_later_request_on_a_kept_alive_connection_is_a_json_400() {
    let request = post_with("Content-Length: 1\r\nContent-Length: 1");
    assert_refused_later(&request, 400, "Malformed request head");
    let request = b"GET /health HTTP/1.1\r\nHost: localhost\rX-Other: a\r\n\r\n";
    assert_refused_later(request, 400, "Malformed request head");
}

#[test]
fn too_many_headers_on_a_later_request_are_a_json_431() {
    let many: String = (0..200).map(|i| format!("X-Header-{i}: 1\r\n")).collect();
    let request = format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    assert_refused_later(request.as_bytes(), 431, "Request header fields too large");
}
