//! Shared harness for the black-box tests: starts the `tidings` binary on a free port
//! with its own temporary database, and offers HTTP, SSE, NDJSON, raw and WebSocket
//! clients that never wait without a time limit.
#![allow(dead_code)]

pub mod services;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use awc::http::Method;
use bytes::{Bytes, BytesMut};
use futures_util::stream::LocalBoxStream;
use futures_util::StreamExt;
use serde_json::Value;

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Configuration that keeps rate limits out of the way of tests about something else.
pub const NO_LIMITS: &str = "[limits]\ndefault_tier = \"unlimited\"\nanonymous_per_minute = 0\n\
    login_failures_per_email = 0\nlogin_per_ip_per_minute = 0\nregister_per_ip = 0\n\
    refresh_per_ip_per_minute = 0\ncreations_per_minute = 0\nconnections_per_ip = 0\n";
/// Limit on any one plain HTTP exchange made by the helpers.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Body size accepted by the helpers for non-streaming responses.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// A running `tidings serve` on 127.0.0.1 with its own temp dir, config and database.
pub struct TestServer {
    dir: tempfile::TempDir,
    database_url: String,
    child: Option<Child>,
    addr: String,
    /// Added to every request the `publish*` helpers make (publisher credentials).
    pub publish_headers: Vec<(String, String)>,
}

impl TestServer {
    /// Writes `extra_toml` as the config file and starts the server.
    /// The database is a SQLite file in the temp dir, or a fresh PostgreSQL database
    /// when the suite runs against PostgreSQL (see [`services`]).
    pub fn start(extra_toml: &str) -> TestServer {
        Self::start_on(extra_toml, None)
    }

    /// Like [`TestServer::start`], on the given database (`None`: a fresh one), e.g.
    /// several nodes of one cluster on a shared PostgreSQL database.
    pub fn start_on(extra_toml: &str, database_url: Option<&str>) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("tidings-test-")
            .tempdir()
            .expect("create temp dir");
        std::fs::write(dir.path().join("tidings.toml"), extra_toml).expect("write config");
        let database_url = database_url
            .map(str::to_string)
            .unwrap_or_else(|| services::fresh_database_url(dir.path()));
        let (child, addr) = spawn(dir.path(), &database_url);
        TestServer {
            dir,
            database_url,
            child: Some(child),
            addr,
            publish_headers: Vec::new(),
        }
    }

    /// Starts with the default configuration.
    pub fn default_config() -> TestServer {
        Self::start("")
    }

    /// A server for the publish/subscribe tests: `top_level_toml` (top-level keys only)
    /// plus no rate limits, with a registered publisher whose credential is in
    /// `publish_headers`.
    pub async fn broker(top_level_toml: &str) -> TestServer {
        let mut server = Self::start(&format!("{top_level_toml}\n{NO_LIMITS}"));
        server.register_publisher().await;
        server
    }

    /// Registers an account and makes its first API key the publisher credential.
    /// A build without accounts (404) publishes without one.
    pub async fn register_publisher(&mut self) {
        let name = unique_topic("publisher").replace('-', "_");
        let body = serde_json::json!({
            "email": format!("{name}@example.com"),
            "username": name,
            "password": "publisher password",
        });
        let (status, _, reply) = self
            .request(
                "POST",
                "/auth/register",
                &[("Content-Type", "application/json")],
                body.to_string(),
            )
            .await;
        if status == 404 {
            return;
        }
        let reply = parse_json(&reply, "/auth/register");
        assert_eq!(status, 201, "registering the publisher: {reply}");
        let key = reply["api_key"]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("registration gives an API key: {reply}"));
        self.publish_headers = vec![("X-API-Key".to_string(), key.to_string())];
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server was given as `--database-url`.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same temp dir, config and database (new port).
    pub fn restart(&mut self) {
        self.kill9();
        let (child, addr) = spawn(self.dir.path(), &self.database_url);
        self.child = Some(child);
        self.addr = addr;
    }

    /// Resident set size of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// An HTTP client with no connection limit and the helpers' request timeout.
    pub fn client(&self) -> awc::Client {
        client()
    }

    /// Any request: `(status, content type, body)`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, String, Bytes) {
        let method = Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut req = client().request(method, self.url(path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let body: Bytes = body.into();
        let mut resp = req
            .send_body(body)
            .await
            .unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
        let status = resp.status().as_u16();
        let content_type = content_type(resp.headers());
        let body = actix_rt::time::timeout(REQUEST_TIMEOUT, resp.body().limit(BODY_LIMIT))
            .await
            .unwrap_or_else(|_| panic!("{path}: response body timed out"))
            .unwrap_or_else(|e| panic!("{path}: reading response body failed: {e}"));
        (status, content_type, body)
    }

    /// Like [`TestServer::request`], with `publish_headers` added.
    pub async fn publish_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, String, Bytes) {
        let mut all: Vec<(&str, &str)> = self
            .publish_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(headers);
        self.request(method, path, &all, body).await
    }

    /// `GET path`, body parsed as JSON (status returned alongside).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.request("GET", path, &[], Bytes::new()).await;
        (status, parse_json(&body, path))
    }

    /// Publishes `body` to `topic` (with `publish_headers`), asserting 200; the message object.
    pub async fn publish(&self, topic: &str, body: &str) -> Value {
        let (status, value) = self.publish_with(topic, body.to_string(), &[]).await;
        assert_eq!(status, 200, "publish to {topic} failed: {value}");
        value
    }

    /// `POST /{topic}` (a path, may carry a query) with extra headers.
    pub async fn publish_with(
        &self,
        topic: &str,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.publish_raw("POST", &format!("/{topic}"), body, headers)
            .await
    }

    /// A publish request with any method and path; `publish_headers` are added.
    pub async fn publish_raw(
        &self,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (status, _, body) = self.publish_request(method, path, headers, body).await;
        (status, parse_json(&body, path))
    }

    /// `POST /` with a JSON body (ntfy-compatible publish).
    pub async fn publish_json(&self, body: &Value) -> (u16, Value) {
        let text = body.to_string();
        self.publish_raw("POST", "/", text, &[("Content-Type", "application/json")])
            .await
    }

    /// `GET /{topics}/json?poll=1&{query}` read to the end: the message objects.
    pub async fn poll(&self, topics: &str, query: &str) -> Vec<Value> {
        let path = format!("/{topics}/json?poll=1{}{query}", sep(query));
        let (status, _, body) = self.request("GET", &path, &[], Bytes::new()).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let text = std::str::from_utf8(&body).expect("poll body is UTF-8");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }

    /// `GET /api/topics/{topic}/messages?{query}`.
    pub async fn history(&self, topic: &str, query: &str) -> Vec<Value> {
        let path = format!("/api/topics/{topic}/messages{}{query}", qmark(query));
        let (status, value) = self.get_json(&path).await;
        assert_eq!(status, 200, "{path}: {value}");
        value.as_array().expect("history is an array").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn sep(query: &str) -> &'static str {
    if query.is_empty() {
        ""
    } else {
        "&"
    }
}

fn qmark(query: &str) -> &'static str {
    if query.is_empty() {
        ""
    } else {
        "?"
    }
}

/// Starts the binary in `dir` and waits for its listening line.
fn spawn(dir: &Path, database_url: &str) -> (Child, String) {
    let log_path = dir.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("open server log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("serve")
        .arg("--config")
        .arg(dir.join("tidings.toml"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--database-url")
        .arg(database_url)
        .env_remove("TIDINGS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn tidings");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("tidings listening on http://") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
        // Keep draining so the server never blocks on a full pipe.
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(addr) => (child, addr),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!(
                "tidings did not print its listening line within {START_TIMEOUT:?}; log:\n{log}"
            );
        }
    }
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// An HTTP client with no connection limit.
pub fn client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0))
        .timeout(REQUEST_TIMEOUT)
        .finish()
}

fn content_type(headers: &awc::http::header::HeaderMap) -> String {
    headers
        .get(awc::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Parses a body as JSON, failing with the body shown.
pub fn parse_json(body: &[u8], what: &str) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    })
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A topic name unlikely to be used by anything else.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", N.fetch_add(1, Ordering::Relaxed))
}

/// The `message` field of each object.
pub fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["message"].as_str().expect("message text").to_string())
        .collect()
}

/// The `id` field of each object.
pub fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().expect("message id").to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Streaming clients (awc)
// ---------------------------------------------------------------------------

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
        let mut req = client().get(url);
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
            let left = deadline.saturating_duration_since(Instant::now());
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
            let left = deadline.saturating_duration_since(Instant::now());
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
        let lines = LineStream::connect(&server.url(path_and_query), headers).await;
        assert_eq!(lines.status, 200, "GET {path_and_query}");
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
            let left = deadline.saturating_duration_since(Instant::now());
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
            let left = deadline.saturating_duration_since(Instant::now());
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
        let lines = LineStream::connect(&server.url(path_and_query), &[]).await;
        assert_eq!(lines.status, 200, "GET {path_and_query}");
        JsonStream { lines }
    }

    /// The next object of any event, or `None` on timeout or end of stream.
    pub async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.next_line(left).await?;
            if line.trim().is_empty() {
                continue;
            }
            return Some(parse_json(line.as_bytes(), "NDJSON line"));
        }
    }

    /// The next object whose `event` is `message`.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let value = self.next_json(left).await?;
            if value["event"] == "message" {
                return Some(value);
            }
        }
    }
}

/// `GET /{topics}/raw?...`: one line per message text (keepalives are empty lines).
pub struct RawStream {
    pub lines: LineStream,
}

impl RawStream {
    pub async fn connect(server: &TestServer, path_and_query: &str) -> RawStream {
        let lines = LineStream::connect(&server.url(path_and_query), &[]).await;
        assert_eq!(lines.status, 200, "GET {path_and_query}");
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
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.next_line(left).await?;
            if !line.is_empty() {
                return Some(line);
            }
        }
    }
}

/// A WebSocket connection as awc gives it: frames in, messages out.
trait WsConn:
    futures_util::Stream<Item = Result<awc::ws::Frame, awc::error::WsProtocolError>>
    + futures_util::Sink<awc::ws::Message, Error = awc::error::WsProtocolError>
    + Unpin
{
}

impl<T> WsConn for T where
    T: futures_util::Stream<Item = Result<awc::ws::Frame, awc::error::WsProtocolError>>
        + futures_util::Sink<awc::ws::Message, Error = awc::error::WsProtocolError>
        + Unpin
{
}

/// `GET /{topics}/ws?...` over WebSocket; one JSON object per text frame.
pub struct WsClient {
    conn: Box<dyn WsConn>,
    closed: bool,
    /// Ping frames received from the server so far.
    pub pings: usize,
}

impl WsClient {
    pub async fn connect(server: &TestServer, path_and_query: &str) -> WsClient {
        let url = server.ws_url(path_and_query);
        let connect = client().ws(url.as_str()).connect();
        let (resp, framed) = actix_rt::time::timeout(REQUEST_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| panic!("WebSocket {url}: connect timed out"))
            .unwrap_or_else(|e| panic!("WebSocket {url}: {e}"));
        assert_eq!(resp.status().as_u16(), 101, "WebSocket {url}");
        WsClient {
            conn: Box::new(framed),
            closed: false,
            pings: 0,
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

    /// The next text frame as JSON (ping/pong frames skipped), or `None` on timeout or close.
    pub async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        use awc::ws::Frame;
        let deadline = Instant::now() + timeout;
        loop {
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
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
                Ok(Some(Err(e))) => panic!("WebSocket read error: {e}"),
            }
        }
    }

    /// The next object whose `event` is `message`.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let value = self.next_json(left).await?;
            if value["event"] == "message" {
                return Some(value);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Blocking raw-socket subscriber (for threads and for clients that must not read)
// ---------------------------------------------------------------------------

/// The body of an HTTP/1.1 response, with chunked transfer coding removed.
struct Body {
    inner: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes left in the current chunk.
    remaining: usize,
    /// A chunk-size line read in part before a timeout.
    size_line: Vec<u8>,
    /// The last chunk (or the end of the connection) was seen.
    ended: bool,
    bytes_read: usize,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        if self.chunked && self.remaining == 0 {
            // A size line, possibly after the CRLF that ends the previous chunk.
            loop {
                let before = self.size_line.len();
                self.inner.read_until(b'\n', &mut self.size_line)?;
                self.bytes_read += self.size_line.len() - before;
                if self.size_line.len() == before || !self.size_line.ends_with(b"\n") {
                    self.ended = true;
                    return Ok(0);
                }
                let line = String::from_utf8_lossy(&self.size_line).trim().to_string();
                self.size_line.clear();
                if line.is_empty() {
                    continue;
                }
                let size_text = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
                if size == 0 {
                    self.ended = true;
                    return Ok(0);
                }
                self.remaining = size;
                break;
            }
        }
        let want = if self.chunked {
            buf.len().min(self.remaining)
        } else {
            buf.len()
        };
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.ended = true;
        }
        if self.chunked {
            self.remaining -= n;
        }
        self.bytes_read += n;
        Ok(n)
    }
}

/// An SSE subscription over a plain `std::net::TcpStream`: the HTTP/1.1 request is
/// written by hand and the chunked body decoded here, so it can run on a thread, or
/// simply never read.
pub struct TcpSse {
    /// For setting read timeouts.
    socket: TcpStream,
    reader: BufReader<Body>,
    /// A line read in part before a timeout.
    line: Vec<u8>,
    /// The event being assembled.
    event: Option<SseEvent>,
    pub status: u16,
    /// The response ended (its last chunk, or the connection's end, was read).
    pub ended: bool,
}

impl TcpSse {
    /// Connects and sends the request; reads nothing.
    pub fn send_request(addr: &str, path_and_query: &str) -> TcpSse {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("send request");
        let socket = stream.try_clone().expect("clone socket");
        let body = Body {
            inner: BufReader::with_capacity(64 * 1024, stream),
            chunked: false,
            remaining: 0,
            size_line: Vec::new(),
            ended: false,
            bytes_read: 0,
        };
        TcpSse {
            socket,
            reader: BufReader::with_capacity(64 * 1024, body),
            line: Vec::new(),
            event: None,
            status: 0,
            ended: false,
        }
    }

    /// Connects and reads the response head.
    pub fn connect(addr: &str, path_and_query: &str, timeout: Duration) -> TcpSse {
        let mut sse = Self::send_request(addr, path_and_query);
        sse.read_head(timeout);
        sse
    }

    /// Every byte received so far (head, chunk framing and body).
    pub fn bytes_read(&self) -> usize {
        self.reader.get_ref().bytes_read
    }

    /// Reads the status line and headers.
    pub fn read_head(&mut self, timeout: Duration) {
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("set read timeout");
        let inner = &mut self.reader.get_mut().inner;
        let mut head = Vec::new();
        loop {
            let before = head.len();
            let n = inner
                .read_until(b'\n', &mut head)
                .unwrap_or_else(|e| panic!("no response head within {timeout:?}: {e}"));
            assert!(n > 0, "connection closed before the response head");
            if head[before..].trim_ascii().is_empty() {
                break;
            }
        }
        self.reader.get_mut().bytes_read += head.len();
        let head = String::from_utf8_lossy(&head).to_string();
        let mut lines = head.lines();
        self.status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.reader.get_mut().chunked = lines.any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
    }

    /// The next line of the body (without `\n`); `None` on timeout or end.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.socket
                .set_read_timeout(Some(left))
                .expect("set read timeout");
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(_) if self.line.ends_with(b"\n") => {
                    self.line.pop();
                    let text = String::from_utf8_lossy(&self.line).to_string();
                    self.line.clear();
                    return Some(text);
                }
                Ok(_) => {
                    // End of the body.
                    self.ended = true;
                    return None;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(_) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    /// The next event, or `None` on timeout or end of stream.
    pub fn next_event(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.next_line(deadline)?;
            if line.is_empty() {
                if let Some(event) = self.event.take() {
                    return Some(event);
                }
                continue;
            }
            let event = self.event.get_or_insert_with(|| SseEvent {
                event: "message".into(),
                id: None,
                data: String::new(),
            });
            if let Some(v) = line.strip_prefix("event: ") {
                event.event = v.to_string();
            } else if let Some(v) = line.strip_prefix("id: ") {
                event.id = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                event.data.push_str(v);
            }
        }
    }

    /// Events until the stream ends or `timeout` passes.
    pub fn events_until_end(&mut self, timeout: Duration) -> Vec<SseEvent> {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        while let Some(event) = self.next_event(deadline.saturating_duration_since(Instant::now()))
        {
            events.push(event);
        }
        events
    }
}

/// Any of the four transports, read as message texts.
pub enum Subscriber {
    Sse(SseClient),
    Json(JsonStream),
    Ws(WsClient),
    Raw(RawStream),
}

impl Subscriber {
    /// `GET /{topics}/{transport}?{query}`; waits for the `open` event (an empty line on raw).
    pub async fn connect(
        server: &TestServer,
        transport: &str,
        topics: &str,
        query: &str,
    ) -> Subscriber {
        let path = format!("/{topics}/{transport}{}{query}", qmark(query));
        let wait = Duration::from_secs(10);
        match transport {
            "sse" => {
                let mut c = SseClient::connect(server, &path).await;
                let open = c.next_event(wait).await.expect("SSE open event");
                assert_eq!(open.event, "open", "{path}: first event {open:?}");
                Subscriber::Sse(c)
            }
            "json" => {
                let mut c = JsonStream::connect(server, &path).await;
                let open = c.next_json(wait).await.expect("JSON open event");
                assert_eq!(open["event"], "open", "{path}: first object {open}");
                Subscriber::Json(c)
            }
            "ws" => {
                let mut c = WsClient::connect(server, &path).await;
                let open = c.next_json(wait).await.expect("WebSocket open event");
                assert_eq!(open["event"], "open", "{path}: first frame {open}");
                Subscriber::Ws(c)
            }
            "raw" => {
                let mut c = RawStream::connect(server, &path).await;
                let open = c.next_line(wait).await.expect("raw open line");
                assert_eq!(open, "", "{path}: raw streams open with an empty line");
                Subscriber::Raw(c)
            }
            other => panic!("unknown transport {other}"),
        }
    }

    /// The text of the next message (control events skipped), or `None` on timeout/end.
    pub async fn next_text(&mut self, timeout: Duration) -> Option<String> {
        let text = |m: Value| m["message"].as_str().map(String::from);
        match self {
            Subscriber::Sse(c) => c.next_message(timeout).await.and_then(text),
            Subscriber::Json(c) => c.next_message(timeout).await.and_then(text),
            Subscriber::Ws(c) => c.next_message(timeout).await.and_then(text),
            Subscriber::Raw(c) => c.next_message(timeout).await,
        }
    }

    /// Reads `count` message texts within `timeout` (fewer if they do not come).
    pub async fn take_texts(&mut self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut texts = Vec::with_capacity(count);
        while texts.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_text(left).await {
                Some(t) => texts.push(t),
                None => break,
            }
        }
        texts
    }
}

/// Like [`TestServer::request`], keeping the response's headers: `(status, headers,
/// body as JSON)`, the body `Null` when it is empty.
pub async fn request_with_headers(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, awc::http::header::HeaderMap, Value) {
    let method = Method::from_bytes(method.as_bytes()).expect("valid method");
    let mut req = client().request(method, server.url(path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req
        .send_body(body)
        .await
        .unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
    let bytes = actix_rt::time::timeout(REQUEST_TIMEOUT, resp.body().limit(BODY_LIMIT))
        .await
        .unwrap_or_else(|_| panic!("{path}: response body timed out"))
        .unwrap_or_else(|e| panic!("{path}: reading response body failed: {e}"));
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        parse_json(&bytes, path)
    };
    (resp.status().as_u16(), resp.headers().clone(), json)
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 exchanges (for heads and bodies no client library would send)
// ---------------------------------------------------------------------------

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// The head's header lines, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, checking it is sent as JSON.
    pub fn json(&self) -> Value {
        let content_type = self.header("content-type").unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "status {}: content type {content_type:?}, body {:?}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        parse_json(&self.body, "raw response")
    }
}

/// Connects to `addr` and writes `bytes`.
pub fn raw_connect(addr: &str, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(bytes).expect("write request");
    stream
}

/// Reads from `stream` into `data` until `done` finds what it waits for in all that
/// has arrived, panicking when the connection closes first or `deadline` passes.
fn read_until_found<T>(
    stream: &mut TcpStream,
    deadline: Instant,
    data: &mut Vec<u8>,
    mut done: impl FnMut(&[u8]) -> Option<T>,
) -> T {
    let mut chunk = [0; 8192];
    loop {
        if let Some(found) = done(data) {
            return found;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not found in time: {data:?}");
        stream
            .set_read_timeout(Some(left))
            .expect("set read timeout");
        let n = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("not found in time ({e}): {data:?}"));
        assert!(n > 0, "connection closed first: {data:?}");
        data.extend_from_slice(&chunk[..n]);
    }
}

/// Reads from a raw socket until `wanted` has arrived, within `timeout`; returns all
/// that was read.
pub fn raw_read_until(stream: &mut TcpStream, wanted: &str, timeout: Duration) -> String {
    let mut data = Vec::new();
    read_until_found(stream, Instant::now() + timeout, &mut data, |seen| {
        String::from_utf8_lossy(seen).contains(wanted).then_some(())
    });
    String::from_utf8_lossy(&data).into_owned()
}

/// Reads one response (head, then a body of its `content-length`) within `timeout`.
pub fn raw_response(stream: &mut TcpStream, timeout: Duration) -> RawResponse {
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    let head_end = read_until_found(stream, deadline, &mut data, |seen| {
        Some(seen.windows(4).position(|w| w == b"\r\n\r\n")? + 4)
    });
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    read_until_found(stream, deadline, &mut data, |seen| {
        (seen.len() >= head_end + length).then_some(())
    });
    RawResponse {
        status,
        headers,
        body: data[head_end..head_end + length].to_vec(),
    }
}

/// Whether the server closes `stream` (end of file or reset) within `timeout`; what it
/// sends meanwhile is discarded.
pub fn raw_closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut sink = [0; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream
            .set_read_timeout(Some(left))
            .expect("set read timeout");
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}
