//! Back-pressure: a subscriber (SSE or WebSocket) that never reads must not hold back
//! the others (a hundred of them) nor make the server's memory grow; it is cut off, and
//! when it finally reads it finds an in-order prefix of the messages, then a `close` event.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{TcpSse, TestServer};
use futures_util::future::join_all;

const READERS: usize = 100;
const MESSAGES: usize = 2000;
const BODY_BYTES: usize = 1000;
const PUBLISHERS: usize = 4;
/// 60 KB messages the stuck subscriber gets before the others subscribe.
const BALLAST: usize = 64;
const BULK_MESSAGES: usize = 300;
/// Allowed growth of the server's resident memory while all this goes on.
const RSS_GROWTH_LIMIT_KIB: u64 = 200 * 1024;

/// A subscriber on its own thread: waits for `open`, reports ready, then collects the
/// ids of `MESSAGES` message events (or stops at a `close` event or the deadline).
fn reader(addr: String, path: String, ready: mpsc::Sender<()>) -> thread::JoinHandle<Vec<String>> {
    reader_of(addr, path, ready, MESSAGES)
}

/// Like [`reader`], for `count` messages.
fn reader_of(
    addr: String,
    path: String,
    ready: mpsc::Sender<()>,
    count: usize,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut sse = TcpSse::connect(&addr, &path, Duration::from_secs(20));
        assert_eq!(sse.status, 200);
        let open = sse.next_event(Duration::from_secs(20)).expect("open event");
        assert_eq!(open.event, "open");
        ready.send(()).expect("report ready");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut ids = Vec::with_capacity(count);
        while ids.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = sse.next_event(left) else {
                break;
            };
            match event.event.as_str() {
                "message" => ids.push(event.id.expect("message events carry an id")),
                "close" => panic!(
                    "a reading subscriber was closed after {} messages: {}",
                    ids.len(),
                    event.data
                ),
                _ => {}
            }
        }
        ids
    })
}

#[actix_rt::test]
async fn a_subscriber_that_never_reads_does_not_hold_back_the_others() {
    let server = TestServer::broker("subscriber_queue = 64\nmessage_size_limit = 65536\n").await;
    let addr = server.addr().to_string();
    let pid = server.pid();
    let path = "/crowd/sse";
    let rss_before = server.rss_kib();

    // The stuck subscriber: reads its response head and open event, then nothing.
    let mut slow = TcpSse::connect(&addr, path, Duration::from_secs(10));
    assert_eq!(slow.status, 200);
    let open = slow
        .next_event(Duration::from_secs(10))
        .expect("slow subscriber's open event");
    assert_eq!(open.event, "open");
    // Ballast for it alone (published before the others subscribe), so that the
    // socket buffers between it and the server are about full when the crowd starts.
    let mut ballast = Vec::new();
    for n in 0..BALLAST {
        let m = server
            .publish("crowd", &format!("ballast-{n}-{}", "b".repeat(60_000)))
            .await;
        ballast.push(m["id"].as_str().unwrap().to_string());
    }

    let (ready_tx, ready_rx) = mpsc::channel();
    let readers: Vec<_> = (0..READERS)
        .map(|_| reader(addr.clone(), path.to_string(), ready_tx.clone()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..READERS {
        let left = deadline.saturating_duration_since(Instant::now());
        ready_rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {i} of {READERS} readers connected"));
    }

    // Watch the server's memory while publishing.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(common::rss_kib(pid), Ordering::Relaxed);
                // A sampling period, not a wait for a condition.
                thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let started = Instant::now();
    let per_publisher = MESSAGES / PUBLISHERS;
    join_all((0..PUBLISHERS).map(|p| {
        let server = &server;
        async move {
            for n in 0..per_publisher {
                let body = format!("p{p}-{n:06}-{}", "x".repeat(BODY_BYTES - 10));
                server.publish("crowd", &body).await;
            }
        }
    }))
    .await;
    let publish_time = started.elapsed();
    let stored = server.history("crowd", "since=all&limit=10000").await;
    let sent: Vec<String> = common::ids(&stored).split_off(BALLAST);
    assert_eq!(sent.len(), MESSAGES);

    for (i, handle) in readers.into_iter().enumerate() {
        let ids = handle.join().expect("reader thread");
        assert_eq!(
            ids.len(),
            MESSAGES,
            "reader {i} got {} of {MESSAGES} messages",
            ids.len()
        );
        assert!(
            ids == sent,
            "reader {i} got the messages out of stored order"
        );
    }
    let deliver_time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler thread");
    let rss_after = server.rss_kib();
    let peak = peak.load(Ordering::Relaxed).max(rss_after);
    eprintln!(
        "published {MESSAGES} in {publish_time:?}, all {READERS} readers done after \
         {deliver_time:?}; server RSS {rss_before} KiB before, peak {peak} KiB"
    );
    assert!(
        peak.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "server RSS grew from {rss_before} KiB to {peak} KiB"
    );

    // The stuck subscriber now reads: the messages in order, without a gap, up to
    // where it was cut off, then a `close` event and the end of the response.
    let events = slow.events_until_end(Duration::from_secs(10));
    let got: Vec<String> = events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| e.id.clone().expect("id"))
        .collect();
    let all: Vec<String> = ballast.iter().chain(&sent).cloned().collect();
    assert!(got.len() <= all.len());
    assert_eq!(
        got,
        all[..got.len()],
        "the slow subscriber got a prefix, in order"
    );
    eprintln!(
        "slow subscriber: {} of {} messages ({} bytes), response ended: {}",
        got.len(),
        all.len(),
        slow.bytes_read(),
        slow.ended
    );
    if got.len() < all.len() {
        assert!(slow.ended, "cut off, but its response did not end");
        let last = events.last().expect("events");
        assert_eq!(
            last.event, "close",
            "a cut-off subscriber's last event: {last:?}"
        );
    }
}

#[actix_rt::test]
async fn a_subscriber_that_reads_too_late_finds_a_prefix_then_a_close_event() {
    let server = TestServer::broker("subscriber_queue = 64\nmessage_size_limit = 65536\n").await;
    let addr = server.addr().to_string();
    let mut slow = TcpSse::connect(&addr, "/bulk/sse", Duration::from_secs(10));
    assert_eq!(
        slow.next_event(Duration::from_secs(10))
            .expect("open")
            .event,
        "open"
    );
    let (ready_tx, ready_rx) = mpsc::channel();
    let healthy = reader_of(addr.clone(), "/bulk/sse".into(), ready_tx, BULK_MESSAGES);
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("healthy reader ready");

    // Far more than socket buffers hold (about 4 MB each way on Linux) plus 64 frames.
    let mut sent = Vec::new();
    for n in 0..BULK_MESSAGES {
        let body = format!("{n:06}-{}", "y".repeat(60_000));
        let m = server.publish("bulk", &body).await;
        sent.push(m["id"].as_str().unwrap().to_string());
    }
    let healthy = healthy.join().expect("healthy reader");
    assert_eq!(healthy, sent, "a reading subscriber gets everything");

    let events = slow.events_until_end(Duration::from_secs(10));
    assert!(
        slow.ended,
        "the slow subscriber's response did not end ({} events, {} bytes)",
        events.len(),
        slow.bytes_read()
    );
    let got: Vec<String> = events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| e.id.clone().expect("id"))
        .collect();
    assert!(
        got.len() < sent.len(),
        "the slow subscriber was never cut off ({} bytes)",
        slow.bytes_read()
    );
    assert_eq!(got, sent[..got.len()], "it got a prefix, in order");
    let last = events.last().expect("events");
    assert_eq!(last.event, "close", "last event: {last:?}");
    let close = last.json();
    assert_eq!(close["event"], "close");
    assert_eq!(close["topic"], "bulk");
    assert!(
        close["message"].as_str().is_some_and(|m| !m.is_empty()),
        "the close event says why: {close}"
    );
    // Nothing after the close event but the end of the response.
    assert_eq!(
        events.iter().filter(|e| e.event == "close").count(),
        1,
        "exactly one close event"
    );
}

/// A WebSocket client on a plain `TcpStream`: handshake by hand, then it can stop
/// reading for as long as it likes, and later read the frames the server sent.
struct RawWs {
    reader: std::io::BufReader<std::net::TcpStream>,
    socket: std::net::TcpStream,
}

/// One frame from the server (which never masks).
enum WsFrame {
    Text(String),
    Close,
    Other,
}

impl RawWs {
    fn connect(addr: &str, path: &str) -> RawWs {
        use std::io::{BufRead, Write};
        let mut socket = std::net::TcpStream::connect(addr).expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        socket
            .write_all(request.as_bytes())
            .expect("send handshake");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut reader = std::io::BufReader::new(socket.try_clone().expect("clone"));
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 101 "), "handshake answered {status:?}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            if line.trim().is_empty() {
                break;
            }
        }
        RawWs { reader, socket }
    }

    /// The next frame, or `None` on timeout or end of connection.
    fn next_frame(&mut self, timeout: Duration) -> Option<WsFrame> {
        use std::io::Read;
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        let mut head = [0u8; 2];
        self.reader.read_exact(&mut head).ok()?;
        let opcode = head[0] & 0x0f;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.reader.read_exact(&mut b).ok()?;
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.reader.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let mut payload = vec![0u8; len];
        self.reader.read_exact(&mut payload).ok()?;
        Some(match opcode {
            0x1 => WsFrame::Text(String::from_utf8(payload).expect("UTF-8 text frame")),
            0x8 => WsFrame::Close,
            _ => WsFrame::Other,
        })
    }
}

#[actix_rt::test]
async fn a_websocket_subscriber_that_never_reads_does_not_hold_back_the_others() {
    let server = TestServer::broker("subscriber_queue = 64\nmessage_size_limit = 65536\n").await;
    let addr = server.addr().to_string();
    let rss_before = server.rss_kib();
    let mut stuck = RawWs::connect(&addr, "/wsbulk/ws");
    match stuck.next_frame(Duration::from_secs(10)) {
        Some(WsFrame::Text(open)) => assert!(open.contains("\"open\""), "{open}"),
        _ => panic!("no open frame"),
    }
    let (ready_tx, ready_rx) = mpsc::channel();
    let healthy = reader_of(addr.clone(), "/wsbulk/sse".into(), ready_tx, BULK_MESSAGES);
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("healthy reader ready");

    let started = Instant::now();
    let mut sent = Vec::new();
    for n in 0..BULK_MESSAGES {
        let body = format!("{n:06}-{}", "w".repeat(60_000));
        let m = server.publish("wsbulk", &body).await;
        sent.push(m["message"].as_str().unwrap().to_string());
    }
    let healthy = healthy.join().expect("healthy reader");
    assert_eq!(
        healthy.len(),
        BULK_MESSAGES,
        "a reading subscriber gets everything"
    );
    let rss_after = server.rss_kib();
    eprintln!(
        "published {BULK_MESSAGES} x 60 KB in {:?}; server RSS {rss_before} KiB -> {rss_after} KiB",
        started.elapsed()
    );
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "server RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // The stuck client reads at last: messages in order without a gap, then the
    // close event, then a Close frame.
    let mut texts = Vec::new();
    let mut close_event = None;
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(frame) = stuck.next_frame(deadline.saturating_duration_since(Instant::now())) {
        match frame {
            WsFrame::Text(text) => {
                let value = common::parse_json(text.as_bytes(), "WS frame");
                match value["event"].as_str() {
                    Some("message") => {
                        assert!(close_event.is_none(), "a message after the close event");
                        texts.push(value["message"].as_str().unwrap().to_string());
                    }
                    Some("close") => close_event = Some(value),
                    _ => {}
                }
            }
            WsFrame::Close => {
                closed = true;
                break;
            }
            WsFrame::Other => {}
        }
    }
    eprintln!(
        "stuck WebSocket subscriber got {} of {BULK_MESSAGES} messages",
        texts.len()
    );
    assert!(
        texts.len() < sent.len(),
        "the stuck subscriber was never cut off"
    );
    assert_eq!(texts, sent[..texts.len()], "it got a prefix, in order");
    let close_event = close_event.expect("a close event before the Close frame");
    assert_eq!(close_event["topic"], "wsbulk");
    assert!(
        closed,
        "the server closes the WebSocket after the close event"
    );
}
