//! How stream subscriptions use their connection: a first request that opens a stream
//! is answered straight on the socket and the connection closes with the stream; a
//! stream asked for later on a kept-alive connection, or whose head arrives in
//! pieces, is served all the same; errors on stream paths are JSON with a length; a
//! client that hangs up an idle stream is noticed at once.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{eventually, unique_topic, TcpSse, TestServer, WAIT};

/// Reads from `socket` until `needle` has arrived or `WAIT` passes; returns all read.
fn read_until(socket: &mut TcpStream, needle: &str) -> String {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set read timeout");
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains(needle) {
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&seen).to_string()
}

/// `GET path` on a new connection, read until the server closes it; the head (lower
/// case) and the body.
fn get_until_closed(server: &TestServer, path: &str) -> (String, String) {
    let mut socket = TcpStream::connect(server.addr()).expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr());
    socket.write_all(request.as_bytes()).expect("send");
    socket
        .set_read_timeout(Some(WAIT))
        .expect("set read timeout");
    let mut answer = String::new();
    socket
        .read_to_string(&mut answer)
        .expect("the server closes the connection after the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_ascii_lowercase(), body.to_string())
}

fn sse_connections(metrics: &str) -> i64 {
    metrics
        .lines()
        .find(|l| l.starts_with("tidings_connections{transport=\"sse\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no SSE connection gauge in /metrics:\n{metrics}"))
}

async fn metrics(server: &TestServer) -> String {
    let (status, _, body) = server.request("GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body).to_string()
}

#[actix_rt::test]
async fn a_stream_opened_first_is_written_whole_and_closes_the_connection_when_done() {
    let server = TestServer::broker("").await;
    let topic = unique_topic("direct");
    server.publish(&topic, "stored before").await;
    let (head, body) = get_until_closed(&server, &format!("/{topic}/json?poll=1"));
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(
        head.contains("content-type: application/x-ndjson"),
        "{head}"
    );
    assert!(head.contains("connection: close"), "{head}");
    assert!(head.contains("\r\ndate: "), "{head}");
    assert!(body.contains("\"message\":\"stored before\""), "{body}");
}

#[actix_rt::test]
async fn a_stream_asked_for_after_another_request_on_the_same_connection_still_streams() {
    let server = TestServer::broker("").await;
    let topic = unique_topic("keptalive");
    let mut socket = TcpStream::connect(server.addr()).expect("connect");
    let host = server.addr();
    // Both requests in one write: the first is not a stream, so the connection is the
    // dispatcher's, and it must serve the second as a stream too.
    let requests = format!(
        "GET /health HTTP/1.1\r\nHost: {host}\r\n\r\nGET /{topic}/sse HTTP/1.1\r\nHost: {host}\r\n\r\n"
    );
    socket.write_all(requests.as_bytes()).expect("send");
    let seen = read_until(&mut socket, "event: open");
    assert!(seen.contains("{\"status\":\"ok\"}"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(seen.contains("event: open"), "{seen}");
    server.publish(&topic, "after open").await;
    let seen = read_until(&mut socket, "after open");
    assert!(seen.contains("\"message\":\"after open\""), "{seen}");
}

#[actix_rt::test]
async fn a_stream_request_whose_head_arrives_in_pieces_is_served() {
    let server = TestServer::broker("").await;
    let topic = unique_topic("pieces");
    let mut socket = TcpStream::connect(server.addr()).expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    socket
        .write_all(format!("GET /{topic}/sse HTTP/1.1\r\nHo").as_bytes())
        .expect("send first piece");
    // A head in pieces is under test: the pause keeps them apart.
    std::thread::sleep(Duration::from_millis(150));
    socket
        .write_all(format!("st: {}\r\n\r\n", server.addr()).as_bytes())
        .expect("send the rest");
    let seen = read_until(&mut socket, "event: open");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("event: open"), "{seen}");
}

#[actix_rt::test]
async fn an_error_on_a_stream_path_is_json_with_its_length() {
    let server = TestServer::broker("").await;
    let (head, body) = get_until_closed(&server, "/alerts/sse?priority=9");
    assert!(head.starts_with("http/1.1 400 bad request"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let detail: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert!(
        detail["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Invalid priority")),
        "{body}"
    );
}

#[actix_rt::test]
async fn a_client_that_hangs_up_an_idle_stream_is_noticed() {
    let server = TestServer::broker("").await;
    let topic = unique_topic("hangup");
    let before = sse_connections(&metrics(&server).await);
    let mut sse = TcpSse::connect(server.addr(), &format!("/{topic}/sse"), WAIT);
    assert_eq!(sse.status, 200);
    assert!(sse.next_event(WAIT).is_some_and(|e| e.event == "open"));
    assert_eq!(sse_connections(&metrics(&server).await), before + 1);
    drop(sse);
    eventually(WAIT, "the closed stream is no longer counted", || async {
        sse_connections(&metrics(&server).await) == before
    })
    .await;
}
