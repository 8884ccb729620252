//! One subscriber over SSE or WebSocket: connects, then counts each message that
//! carries a `ts:<µs>:` send time and records its end-to-end latency.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use crate::http::{connect, Conn, Decoder, Template};
use crate::{now_us, ws};

const SHARDS: usize = 16;

/// Latencies up to one minute, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// What every subscriber adds to.
pub struct Tally {
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub received: AtomicU64,
    /// Connected subscribers per topic index.
    pub per_topic: Vec<AtomicU64>,
    latencies: Vec<Mutex<Histogram<u64>>>,
    pub first_error: Mutex<Option<String>>,
}

impl Tally {
    pub fn new(topics: usize) -> Self {
        Self {
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            received: AtomicU64::new(0),
            per_topic: (0..topics).map(|_| AtomicU64::new(0)).collect(),
            latencies: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
            first_error: Mutex::new(None),
        }
    }

    pub fn note_error(&self, error: String) {
        let mut first = self.first_error.lock().expect("error lock");
        first.get_or_insert(error);
    }

    /// All shards merged.
    pub fn latencies(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.latencies {
            all.add(&*shard.lock().expect("histogram lock"))
                .expect("same bounds");
        }
        all
    }

    /// Counts every timestamped message in `text`.
    fn record(&self, text: &[u8], shard: usize) {
        let now = now_us();
        let mut count = 0;
        let mut latencies = self.latencies[shard % SHARDS]
            .lock()
            .expect("histogram lock");
        let mut rest = text;
        while let Some(at) = rest.windows(3).position(|w| w == b"ts:") {
            rest = &rest[at + 3..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let sent = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|d| d.parse::<u64>().ok());
            if let Some(sent) = sent {
                latencies.saturating_record(now.saturating_sub(sent).max(1));
                count += 1;
            }
        }
        drop(latencies);
        if count > 0 {
            self.received.fetch_add(count, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transport {
    Sse,
    Ws,
}

pub struct Subscriber {
    pub transport: Transport,
    pub url: Arc<Template>,
    pub topic: usize,
    pub topic_name: String,
    pub source: Ipv4Addr,
    pub headers: Arc<String>,
    pub index: usize,
}

impl Subscriber {
    /// Connects (holding a permit of `connecting` until the answer), then reads until
    /// the connection ends or the run's runtime is shut down.
    pub async fn run(self, tally: Arc<Tally>, connecting: Arc<Semaphore>) {
        let permit = connecting.acquire_owned().await.expect("semaphore open");
        let conn = match self.open().await {
            Ok(conn) => conn,
            Err(e) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                tally.note_error(format!("subscribe: {e}"));
                return;
            }
        };
        drop(permit);
        tally.per_topic[self.topic].fetch_add(1, Ordering::Relaxed);
        tally.connected.fetch_add(1, Ordering::Relaxed);
        let ended = match conn {
            Open::Sse(conn, decoder) => self.read_sse(conn, decoder, &tally).await,
            Open::Ws(conn) => self.read_ws(conn, &tally).await,
        };
        tally.dropped.fetch_add(1, Ordering::Relaxed);
        tally.note_error(format!("subscriber ended: {ended}"));
    }

    async fn open(&self) -> std::io::Result<Open> {
        let stream = connect(self.url.addr, self.source).await?;
        let mut conn = Conn::new(stream);
        let path = self.url.path(&self.topic_name);
        let host = &self.url.host;
        let headers = &self.headers;
        let (request, expected) = match self.transport {
            Transport::Sse => (
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
                     {headers}\r\n"
                ),
                200,
            ),
            Transport::Ws => (
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Version: 13\r\n{headers}\r\n"
                ),
                101,
            ),
        };
        conn.send(request.as_bytes()).await?;
        let head = conn.head().await?;
        if head.status != expected {
            return Err(std::io::Error::other(format!("status {}", head.status)));
        }
        Ok(match self.transport {
            Transport::Sse => Open::Sse(conn, Decoder::new(head.chunked)),
            Transport::Ws => Open::Ws(conn),
        })
    }

    /// Counts complete lines only, so a send time is never read half-way.
    async fn read_sse(&self, mut conn: Conn, mut decoder: Decoder, tally: &Tally) -> String {
        let mut text = Vec::with_capacity(1024);
        loop {
            decoder.decode(&mut conn.buf, &mut text);
            if let Some(end) = text.iter().rposition(|&b| b == b'\n') {
                tally.record(&text[..end], self.index);
                text.drain(..=end);
            }
            if decoder.done() {
                return "stream closed".into();
            }
            if let Err(e) = conn.fill().await {
                return e.to_string();
            }
        }
    }

    async fn read_ws(&self, mut conn: Conn, tally: &Tally) -> String {
        loop {
            while let Some(frame) = ws::parse(&conn.buf) {
                conn.buf.drain(..frame.len);
                match frame.opcode {
                    ws::CLOSE => return "websocket closed".into(),
                    ws::PING => {
                        let pong = ws::frame(ws::PONG, &frame.payload, Some([1, 2, 3, 4]));
                        if let Err(e) = conn.send(&pong).await {
                            return e.to_string();
                        }
                    }
                    ws::PONG => {}
                    _ => tally.record(&frame.payload, self.index),
                }
            }
            if let Err(e) = conn.fill().await {
                return e.to_string();
            }
        }
    }
}

enum Open {
    Sse(Conn, Decoder),
    Ws(Conn),
}
