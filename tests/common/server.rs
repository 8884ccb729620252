//! The server under test: `tidings serve` started on a free port with its own temp dir,
//! config and database, restarted or killed at will, and plain HTTP requests to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use awc::http::header::HeaderMap;
use awc::http::Method;
use bytes::Bytes;
use serde_json::Value;

use super::{parse_json, qmark, sep, services, unique_topic};

/// How long a server may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
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
    /// The admin URL of the cluster holding a database this server made for itself,
    /// dropped with it so that a long run does not fill the disk.
    own_database: Option<String>,
    pub(super) child: Option<Child>,
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
        let own_database = database_url
            .is_none()
            .then(|| std::env::var(services::POSTGRES_ENV).ok())
            .flatten()
            .filter(|admin| !admin.is_empty());
        let database_url = database_url
            .map(str::to_string)
            .unwrap_or_else(|| services::fresh_database_url(dir.path()));
        let (child, addr) = spawn(dir.path(), &database_url);
        TestServer {
            dir,
            database_url,
            own_database,
            child: Some(child),
            addr,
            publish_headers: Vec::new(),
        }
    }

    /// Starts with the default configuration.
    pub fn default_config() -> TestServer {
        Self::start("")
    }

    /// A server whose rate limits and quotas never decide a test about something else:
    /// `top_level` holds top-level keys, `sections` further TOML sections (not
    /// `[limits]`).
    pub fn unlimited(top_level: &str, sections: &str) -> TestServer {
        Self::start(&format!("{top_level}\n{NO_LIMITS}\n{sections}\n"))
    }

    /// [`TestServer::unlimited`] with nothing else configured.
    pub fn without_limits() -> TestServer {
        Self::unlimited("", "")
    }

    /// A server for the publish/subscribe tests: [`TestServer::unlimited`] with a
    /// registered publisher whose credential is in `publish_headers`.
    pub async fn broker(top_level_toml: &str) -> TestServer {
        let mut server = Self::unlimited(top_level_toml, "");
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

    /// Any request: `(status, response headers, body)`.
    pub async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, HeaderMap, Bytes) {
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
        let body = actix_rt::time::timeout(REQUEST_TIMEOUT, resp.body().limit(BODY_LIMIT))
            .await
            .unwrap_or_else(|_| panic!("{path}: response body timed out"))
            .unwrap_or_else(|e| panic!("{path}: reading response body failed: {e}"));
        (resp.status().as_u16(), resp.headers().clone(), body)
    }

    /// Any request: `(status, content type, body)`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, String, Bytes) {
        let (status, response_headers, body) = self.exchange(method, path, headers, body).await;
        (status, content_type(&response_headers), body)
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
        if let Some(admin) = &self.own_database {
            services::drop_database(admin, &self.database_url);
        }
    }
}

/// One answer with its headers; the body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    /// The path it answered, for failure messages.
    pub path: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is text").to_string())
    }

    /// A numeric header that must be present.
    pub fn number(&self, name: &str) -> u64 {
        let text = self
            .header(name)
            .unwrap_or_else(|| panic!("{}: no {name} header ({})", self.path, self.status));
        text.parse()
            .unwrap_or_else(|_| panic!("{}: {name} is not a whole number: {text:?}", self.path))
    }
}

impl TestServer {
    /// Any request, keeping the response's headers.
    pub async fn reply(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let (status, headers, bytes) = self.exchange(method, path, headers, body).await;
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            path: path.to_string(),
        }
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
    match listening_addr(&mut child, START_TIMEOUT) {
        Some(addr) => (child, addr),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!(
                "tidings did not print its listening line within {START_TIMEOUT:?}; log:\n{log}"
            );
        }
    }
}

/// Waits up to `timeout` for a child started with piped stdout to print
/// `tidings listening on http://ADDR`: the address. Its stdout is drained from then on,
/// so that it never blocks on a full pipe.
pub fn listening_addr(child: &mut Child, timeout: Duration) -> Option<String> {
    let stdout = child.stdout.take().expect("child stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("tidings listening on http://") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    rx.recv_timeout(timeout).ok()
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

pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(awc::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
