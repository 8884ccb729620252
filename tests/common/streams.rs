//! Streaming subscribers over awc: SSE, NDJSON, raw lines and WebSocket, each read with
//! a time limit, and one [`Subscriber`] over all four that can be opened with any
//! credential or header.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::stream::LocalBoxStream;
use futures_util::StreamExt;
use serde_json::Value;

use super::server::{content_type, TestServer, REQUEST_TIMEOUT};
use super::{parse_json, remaining};

/// A streaming HTTP response read line by line.
pub struct LineStream {
    pub status: u16,
    pub content_type: String,
    body: LocalBoxStream<'static, Result<Bytes, String>>,
    buf: BytesMut,
    eof: bool,
}

impl LineStream {
    /// `GET url` with extra headers; the response must start within the request timeout.
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> LineStream {
        let mut req = super::tls::client_for(url).get(url);
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        let status = resp.status().as_u16();
        let content_type = content_type(resp.headers());
        LineStream {
            status,
            content_type,
            body: resp.map(|r| r.map_err(|e| e.to_string())).boxed_local(),
            buf: BytesMut::new(),
            eof: false,
        }
    }

    /// `GET path_and_query` on the server, asserting a 200.
    pub async fn open(
        server: &TestServer,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> LineStream {
        let lines = Self::connect(&server.url(path_and_query), headers).await;
        assert_eq!(lines.status, 200, "GET {path_and_query}");
        lines
    }

    /// Whether the server ended the body.
    pub fn is_eof(&self) -> bool {
        self.eof && self.buf.is_empty()
    }

    /// The next line (without its `\n`), or `None` on timeout or end of body.
    pub async fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let text = String::from_utf8_lossy(&line[..pos]);
                return Some(text.trim_end_matches('\r').to_string());
            }
            if self.eof {
                return None;
            }
            let left = remaining(deadline);
            match actix_rt::time::timeout(left, self.body.next()).await {
                Err(_) => return None,
                Ok(None) => self.eof = true,
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(Some(Err(e))) => panic!("stream read error: {e}"),
            }
        }
    }

    /// Every remaining line up to the end of the body; `None` if it did not end in time.
    pub async fn lines_until_eof(&mut self, timeout: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = remaining(deadline);
            match self.next_line(left).await {
                Some(line) => lines.push(line),
                None if self.eof => {
                    if !self.buf.is_empty() {
                        lines.push(String::from_utf8_lossy(&self.buf).to_string());
                        self.buf.clear();
                    }
                    return Some(lines);
                }
                None => return None,
            }
        }
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        parse_json(self.data.as_bytes(), "SSE data")
    }
}

/// `GET /{topics}/sse?...`.
pub struct SseClient {
    pub lines: LineStream,
}

impl SseClient {
    /// `path_and_query` is e.g. `/a,b/sse?since=all`.
    pub async fn connect(server: &TestServer, path_and_query: &str) -> SseClient {
        Self::connect_with(server, path_and_query, &[]).await
    }

    pub async fn connect_with(
        server: &TestServer,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> SseClient {
        let lines = LineStream::open(server, path_and_query, headers).await;
        SseClient { lines }
    }

    /// The next event of any kind, or `None` on timeout or end of stream.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + timeout;
        let mut event = SseEvent {
            event: "message".into(),
            id: None,
            data: String::new(),
        };
        let mut seen_field = false;
        loop {
            let left = remaining(deadline);
            let line = self.lines.next_line(left).await?;
            if line.is_empty() {
                if seen_field {
                    return Some(event);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            seen_field = true;
            match field {
                "event" => event.event = value.to_string(),
                "id" => event.id = Some(value.to_string()),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => {}
            }
        }
    }

    /// The data of the next `message` event, skipping `open`, `keepalive` and others.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = remaining(deadline);
            let event = self.next_event(left).await?;
            if event.event == "message" {
                return Some(event.json());
            }
        }
    }
}

/// `GET /{topics}/json?...`: one JSON object per line.
pub struct JsonStream {
    pub lines: LineStream,
}

impl JsonStream {
    pub async fn connect(server: &TestServer, path_and_query: &str) -> JsonStream {
        let lines = LineStream::open(server, path_and_query, &[]).await;
        JsonStream { lines }
    }

    /// The next object of any event, or `None` on timeout or end of stream.
    pub async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = remaining(deadline);
            let line = self.lines.next_line(left).await?;
            if line.trim().is_empty() {
                continue;
            }
            return Some(parse_json(line.as_bytes(), "NDJSON line"));
        }
    }

    /// The next object whose `event` is `message`.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        next_message_of(self, timeout).await
    }
}

/// A client whose events arrive as JSON objects (NDJSON lines, WebSocket frames).
trait JsonEvents {
    async fn next_json(&mut self, timeout: Duration) -> Option<Value>;
}

impl JsonEvents for JsonStream {
    async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        JsonStream::next_json(self, timeout).await
    }
}

impl JsonEvents for WsClient {
    async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        WsClient::next_json(self, timeout).await
    }
}

/// The next object whose `event` is `message`, skipping the others.
async fn next_message_of(client: &mut impl JsonEvents, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let value = client.next_json(remaining(deadline)).await?;
        if value["event"] == "message" {
            return Some(value);
        }
    }
}

/// `GET /{topics}/raw?...`: one line per message text (keepalives are empty lines).
pub struct RawStream {
    pub lines: LineStream,
}

impl RawStream {
    pub async fn connect(server: &TestServer, path_and_query: &str) -> RawStream {
        let lines = LineStream::open(server, path_and_query, &[]).await;
        RawStream { lines }
    }

    /// The next line, empty ones (keepalives) included.
    pub async fn next_line(&mut self, timeout: Duration) -> Option<String> {
        self.lines.next_line(timeout).await
    }

    /// The next non-empty line.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = remaining(deadline);
            let line = self.lines.next_line(left).await?;
            if !line.is_empty() {
                return Some(line);
            }
        }
    }
}

/// `GET /{topics}/ws?...` over WebSocket; one JSON object per text frame.
pub struct WsClient {
    conn: Box<dyn WsFramed>,
    closed: bool,
    /// Ping frames received from the server so far.
    pub pings: usize,
}

/// A WebSocket connection as awc gives it: frames in, messages out. (Its concrete type
/// is in `actix-codec`, which the tests do not depend on.)
trait WsFramed:
    futures_util::Stream<Item = Result<awc::ws::Frame, awc::error::WsProtocolError>>
    + futures_util::Sink<awc::ws::Message, Error = awc::error::WsProtocolError>
    + Unpin
{
}

impl<T> WsFramed for T where
    T: futures_util::Stream<Item = Result<awc::ws::Frame, awc::error::WsProtocolError>>
        + futures_util::Sink<awc::ws::Message, Error = awc::error::WsProtocolError>
        + Unpin
{
}

impl WsClient {
    pub async fn connect(server: &TestServer, path_and_query: &str) -> WsClient {
        Self::connect_with(server, path_and_query, &[])
            .await
            .unwrap_or_else(|status| panic!("WebSocket {path_and_query}: refused with {status}"))
    }

    /// Upgrades with extra headers; `Err(status)` when the server refuses the upgrade.
    pub async fn connect_with(
        server: &TestServer,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, u16> {
        Self::connect_url(&server.ws_url(path_and_query), headers).await
    }

    /// Upgrades at `url` (`ws://` or `wss://`); `Err(status)` when refused.
    pub async fn connect_url(url: &str, headers: &[(&str, &str)]) -> Result<WsClient, u16> {
        let mut request = super::tls::client_for(url).ws(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let connected = actix_rt::time::timeout(REQUEST_TIMEOUT, request.connect())
            .await
            .unwrap_or_else(|_| panic!("WebSocket {url}: connect timed out"));
        match connected {
            Ok((resp, framed)) => {
                assert_eq!(resp.status().as_u16(), 101, "WebSocket {url}");
                Ok(WsClient {
                    conn: Box::new(framed),
                    closed: false,
                    pings: 0,
                })
            }
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
            Err(e) => panic!("WebSocket {url}: {e}"),
        }
    }

    /// Sends a frame to the server.
    pub async fn send(&mut self, message: awc::ws::Message) {
        use futures_util::SinkExt;
        actix_rt::time::timeout(REQUEST_TIMEOUT, self.conn.send(message))
            .await
            .expect("WebSocket send timed out")
            .expect("WebSocket send");
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The next text frame as JSON (ping/pong frames skipped), or `None` on timeout or
    /// close (a read error counts as the server closing).
    pub async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        use awc::ws::Frame;
        let deadline = Instant::now() + timeout;
        loop {
            if self.closed {
                return None;
            }
            let left = remaining(deadline);
            match actix_rt::time::timeout(left, self.conn.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Ok(Frame::Close(_)))) => self.closed = true,
                Ok(Some(Ok(Frame::Ping(_)))) => self.pings += 1,
                Ok(Some(Ok(Frame::Text(text)))) => return Some(parse_json(&text, "WS frame")),
                Ok(Some(Ok(Frame::Binary(bin)))) => {
                    panic!(
                        "unexpected binary WS frame: {:?}",
                        String::from_utf8_lossy(&bin)
                    )
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) => self.closed = true,
            }
        }
    }

    /// The next object whose `event` is `message`.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        next_message_of(self, timeout).await
    }
}

// ---------------------------------------------------------------------------
// Any transport
// ---------------------------------------------------------------------------

/// The four ways to subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Json,
    Ws,
    Raw,
}

/// Every transport.
pub const TRANSPORTS: [Transport; 4] = [
    Transport::Sse,
    Transport::Json,
    Transport::Ws,
    Transport::Raw,
];

/// The streaming transports whose live subscriptions can be closed by the server with
/// a `close` event.
pub const STREAMS: [Transport; 3] = [Transport::Sse, Transport::Json, Transport::Ws];

impl Transport {
    /// The last segment of its path: `/{topics}/{path}`.
    pub fn path(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Json => "json",
            Transport::Ws => "ws",
            Transport::Raw => "raw",
        }
    }
}

/// Its path segment, as topic names and failure messages show it.
impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

/// An open subscription on any transport.
pub enum Subscriber {
    Sse(SseClient),
    Json(JsonStream),
    Ws(WsClient),
    Raw(RawStream),
}

impl Subscriber {
    /// `GET /{topics}/{transport}?{query}` without credentials; waits for the `open`
    /// event (an empty line on raw).
    pub async fn connect(
        server: &TestServer,
        transport: Transport,
        topics: &str,
        query: &str,
    ) -> Subscriber {
        let path = format!(
            "/{topics}/{}{}{query}",
            transport.path(),
            super::qmark(query)
        );
        subscribe_with(server, transport, &path, &[])
            .await
            .unwrap_or_else(|(status, body)| panic!("{path}: refused with {status} {body}"))
    }

    /// The next event of any kind as JSON (keepalives included), or `None` on timeout
    /// or end of stream. A raw line is a `message` event, an empty one a `keepalive`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        match self {
            Subscriber::Sse(c) => {
                let event = c.next_event(timeout).await?;
                let mut value = event.json();
                if value.get("event").is_none() {
                    value["event"] = Value::String(event.event);
                }
                Some(value)
            }
            Subscriber::Json(c) => c.next_json(timeout).await,
            Subscriber::Ws(c) => c.next_json(timeout).await,
            Subscriber::Raw(c) => {
                let line = c.next_line(timeout).await?;
                Some(if line.is_empty() {
                    serde_json::json!({ "event": "keepalive" })
                } else {
                    serde_json::json!({ "event": "message", "message": line })
                })
            }
        }
    }

    /// The next `message` event, skipping the others.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let event = self.next_event(remaining(deadline)).await?;
            if event["event"] == "message" {
                return Some(event);
            }
        }
    }

    /// The text of the next message (control events skipped), or `None` on timeout/end.
    pub async fn next_text(&mut self, timeout: Duration) -> Option<String> {
        let message = self.next_message(timeout).await?;
        message["message"].as_str().map(String::from)
    }

    /// Reads `count` message texts within `timeout` (fewer if they do not come).
    pub async fn take_texts(&mut self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut texts = Vec::with_capacity(count);
        while texts.len() < count {
            match self.next_text(remaining(deadline)).await {
                Some(t) => texts.push(t),
                None => break,
            }
        }
        texts
    }

    /// Waits for a `close` event (skipping keepalives and messages): its reason.
    pub async fn close_event(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let event = self.next_event(remaining(deadline)).await?;
            if event["event"] == "close" {
                return Some(event["message"].as_str().unwrap_or("").to_string());
            }
        }
    }

    /// Whether the server ends the stream within `timeout` (anything still sent is read
    /// and dropped).
    pub async fn ends_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = remaining(deadline);
            let lines = match self {
                Subscriber::Sse(SseClient { lines })
                | Subscriber::Json(JsonStream { lines })
                | Subscriber::Raw(RawStream { lines }) => lines,
                Subscriber::Ws(c) => {
                    if c.next_json(left).await.is_none() {
                        return c.is_closed();
                    }
                    continue;
                }
            };
            if lines.next_line(left).await.is_none() {
                return lines.is_eof();
            }
            if left.is_zero() {
                return false;
            }
        }
    }

    /// Asserts that a final `close` event arrives within `within` and that the stream
    /// then ends; the close reason.
    pub async fn expect_closed(&mut self, within: Duration, what: &str) -> String {
        let reason = self
            .close_event(within)
            .await
            .unwrap_or_else(|| panic!("{what}: no close event within {within:?}"));
        assert!(
            self.ends_within(super::WAIT).await,
            "{what}: stream did not end after its close event"
        );
        reason
    }
}

/// Opens `path_and_query` (as it is sent) on `transport` with `headers` added as given
/// (credentials, `Origin`, …). `Ok` once the `open` event has arrived; `Err((status,
/// body))` when the server refused. A refused WebSocket upgrade is asked again as a
/// plain GET to read its `detail`.
pub async fn subscribe_with(
    server: &TestServer,
    transport: Transport,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Subscriber, (u16, Value)> {
    let path = path_and_query;
    let refusal = |status: u16, body: &[u8]| (status, parse_json(body, &format!("GET {path}")));
    let mut subscriber = match transport {
        Transport::Ws => match WsClient::connect_with(server, path, headers).await {
            Ok(ws) => Subscriber::Ws(ws),
            Err(status) => {
                let (again, _, body) = server.request("GET", path, headers, "").await;
                assert_eq!(
                    again, status,
                    "{path}: plain GET answered differently from the upgrade"
                );
                return Err(refusal(again, &body));
            }
        },
        Transport::Sse | Transport::Json | Transport::Raw => {
            let mut lines = LineStream::connect(&server.url(path), headers).await;
            if lines.status != 200 {
                let body = lines
                    .lines_until_eof(super::WAIT)
                    .await
                    .unwrap_or_else(|| panic!("{path}: error body did not end"))
                    .join("\n");
                return Err(refusal(lines.status, body.as_bytes()));
            }
            match transport {
                Transport::Sse => Subscriber::Sse(SseClient { lines }),
                Transport::Json => Subscriber::Json(JsonStream { lines }),
                _ => {
                    let open = lines.next_line(REQUEST_TIMEOUT).await;
                    let open = open.unwrap_or_else(|| panic!("{path}: no raw open line"));
                    assert_eq!(open, "", "{path}: raw streams open with an empty line");
                    return Ok(Subscriber::Raw(RawStream { lines }));
                }
            }
        }
    };
    let open = subscriber
        .next_event(REQUEST_TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("{path}: no open event"));
    assert_eq!(open["event"], "open", "{path}: first event {open}");
    Ok(subscriber)
}
