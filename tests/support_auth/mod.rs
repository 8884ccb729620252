//! Helpers for the account and credential tests: accounts, API keys, topics, topic
//! access tokens, credentials sent every supported way, live subscriptions that can be
//! opened with any of them, the admin CLI, and the metrics endpoint.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use awc::ws::Frame;
use futures_util::stream::LocalBoxStream;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::{self, JsonStream, LineStream, SseClient, TestServer};

/// Upper bound for anything that should happen at once.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a CLI command may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

pub const NOT_AUTHENTICATED: &str = "Not authenticated";
pub const INVALID: &str = "Could not validate credentials";
pub const EXPIRED: &str = "Token has expired";
pub const FORBIDDEN: &str = "Insufficient permissions to access this topic";
pub const INCORRECT_LOGIN: &str = "Incorrect email or password";
pub const REGISTRATION_CLOSED: &str = "Registration is closed";
pub const ONLY_PRIVATE: &str = "Topic access tokens are only available for private topics";

pub const PASSWORD: &str = "correct horse battery";

/// Starts a server whose accounts have no publish quota and whose anonymous requests
/// are not rate-limited, so that limits never decide an auth test. `top_level` holds
/// top-level keys, `sections` further TOML sections (not `[limits]`).
pub fn start(top_level: &str, sections: &str) -> TestServer {
    TestServer::start(&format!("{top_level}\n{}\n{sections}\n", common::NO_LIMITS))
}

pub fn server() -> TestServer {
    start("", "")
}

// ---------------------------------------------------------------------------
// Credentials and requests
// ---------------------------------------------------------------------------

/// A credential as a request presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cred {
    None,
    /// An access JWT: `Authorization: Bearer` or `?token=`.
    Bearer(String),
    /// An API key: `X-API-Key` or `?api_key=`.
    ApiKey(String),
    /// A topic access token: `X-Topic-Token` or `?token=`.
    TopicToken(String),
}

impl Cred {
    /// The header form.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Cred::None => Vec::new(),
            Cred::Bearer(t) => vec![("Authorization", format!("Bearer {t}"))],
            Cred::ApiKey(k) => vec![("X-API-Key", k.clone())],
            Cred::TopicToken(t) => vec![("X-Topic-Token", t.clone())],
        }
    }

    /// The query-parameter form (`token=…`, `api_key=…`); empty for none.
    pub fn query(&self) -> String {
        match self {
            Cred::None => String::new(),
            Cred::Bearer(t) | Cred::TopicToken(t) => format!("token={t}"),
            Cred::ApiKey(k) => format!("api_key={k}"),
        }
    }
}

/// How a credential travels on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Header,
    Query,
}

/// `path` with the credential's query parameter added when `via` is `Query`.
pub fn with_query(path: &str, cred: &Cred, via: Via) -> String {
    let query = cred.query();
    if via == Via::Header || query.is_empty() {
        return path.to_string();
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{query}")
}

fn header_refs<'a>(owned: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    owned.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Any request with a credential (as headers) and an optional JSON body:
/// `(status, body as JSON)`, `Null` for an empty body.
pub async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    cred: &Cred,
    body: Option<&Value>,
) -> (u16, Value) {
    let owned = cred.headers();
    let mut headers = header_refs(&owned);
    let text = match body {
        Some(b) => {
            headers.push(("Content-Type", "application/json"));
            b.to_string()
        }
        None => String::new(),
    };
    let (status, _, bytes) = server.request(method, path, &headers, text).await;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        common::parse_json(&bytes, &format!("{method} {path}"))
    };
    (status, value)
}

pub async fn get(server: &TestServer, path: &str, cred: &Cred) -> (u16, Value) {
    call(server, "GET", path, cred, None).await
}

pub async fn post(server: &TestServer, path: &str, cred: &Cred, body: &Value) -> (u16, Value) {
    call(server, "POST", path, cred, Some(body)).await
}

pub async fn patch(server: &TestServer, path: &str, cred: &Cred, body: &Value) -> (u16, Value) {
    call(server, "PATCH", path, cred, Some(body)).await
}

pub async fn delete(server: &TestServer, path: &str, cred: &Cred) -> (u16, Value) {
    call(server, "DELETE", path, cred, None).await
}

/// `POST /{topic}` with `text` as the body and the credential in its header form.
pub async fn publish_as(server: &TestServer, topic: &str, cred: &Cred, text: &str) -> (u16, Value) {
    publish_via(server, topic, cred, Via::Header, text).await
}

/// `POST /{topic}` with the credential sent as `via` says.
pub async fn publish_via(
    server: &TestServer,
    topic: &str,
    cred: &Cred,
    via: Via,
    text: &str,
) -> (u16, Value) {
    let owned = if via == Via::Header {
        cred.headers()
    } else {
        Vec::new()
    };
    let path = with_query(&format!("/{topic}"), cred, via);
    let (status, _, bytes) = server
        .request("POST", &path, &header_refs(&owned), text.to_string())
        .await;
    (status, common::parse_json(&bytes, &format!("POST {path}")))
}

/// The `detail` of an error body ("" when there is none).
pub fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or("")
}

/// Asserts an error answer: status and exact `detail`.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, expected: &str, what: &str) {
    assert_eq!(
        (got.0, detail(&got.1)),
        (status, expected),
        "{what}: body {}",
        got.1
    );
}

/// Asserts a status, showing the body when it differs.
#[track_caller]
pub fn assert_status(got: &(u16, Value), status: u16, what: &str) {
    assert_eq!(got.0, status, "{what}: body {}", got.1);
}

/// An RFC 3339 UTC time `secs` from now.
pub fn rfc3339_in(secs: i64) -> String {
    rfc3339(common::now_unix() + secs)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (days-from-civil, no dependency needed).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Whether a JSON value is an RFC 3339 UTC time string (`…Z`).
pub fn is_rfc3339_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() >= 20
            && s.ends_with('Z')
            && s.as_bytes()[4] == b'-'
            && s.as_bytes()[10] == b'T'
            && s.as_bytes()[13] == b':'
    })
}

// ---------------------------------------------------------------------------
// Accounts, keys, topics, tokens
// ---------------------------------------------------------------------------

/// A registered account with the credentials registration gave it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub username: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
    pub api_key: String,
    pub api_key_id: String,
}

impl Account {
    /// Its access JWT.
    pub fn jwt(&self) -> Cred {
        Cred::Bearer(self.access_token.clone())
    }

    /// Its first API key.
    pub fn key(&self) -> Cred {
        Cred::ApiKey(self.api_key.clone())
    }
}

/// `POST /auth/register` as it was sent: `(status, body)`.
pub async fn register_raw(
    server: &TestServer,
    email: &str,
    username: &str,
    password: &str,
) -> (u16, Value) {
    let body = json!({"email": email, "username": username, "password": password});
    post(server, "/auth/register", &Cred::None, &body).await
}

/// Registers `name@example.com` / `name`, asserting 201.
pub async fn register(server: &TestServer, name: &str) -> Account {
    let email = format!("{name}@example.com");
    let got = register_raw(server, &email, name, PASSWORD).await;
    assert_status(&got, 201, "register");
    let body = got.1;
    let text = |v: &Value| {
        v.as_str()
            .unwrap_or_else(|| panic!("expected a string in {body}"))
            .to_string()
    };
    Account {
        id: text(&body["user"]["id"]),
        email,
        username: name.to_string(),
        password: PASSWORD.to_string(),
        access_token: text(&body["access_token"]),
        refresh_token: text(&body["refresh_token"]),
        api_key: text(&body["api_key"]["key"]),
        api_key_id: text(&body["api_key"]["id"]),
    }
}

/// `POST /auth/login`.
pub async fn login(server: &TestServer, email: &str, password: &str) -> (u16, Value) {
    let body = json!({"email": email, "password": password});
    post(server, "/auth/login", &Cred::None, &body).await
}

/// `POST /auth/refresh`.
pub async fn refresh(server: &TestServer, refresh_token: &str) -> (u16, Value) {
    let body = json!({"refresh_token": refresh_token});
    post(server, "/auth/refresh", &Cred::None, &body).await
}

/// `POST /api/keys`, asserting 201: the key object (with `key`).
pub async fn create_key(
    server: &TestServer,
    cred: &Cred,
    name: &str,
    expires_at: Option<&str>,
) -> Value {
    let got = post(
        server,
        "/api/keys",
        cred,
        &json!({"name": name, "expires_at": expires_at}),
    )
    .await;
    assert_status(&got, 201, "create API key");
    got.1
}

/// `GET /api/keys`, asserting 200: the list.
pub async fn list_keys(server: &TestServer, cred: &Cred) -> Vec<Value> {
    let got = get(server, "/api/keys", cred).await;
    assert_status(&got, 200, "list API keys");
    got.1.as_array().expect("a list of keys").clone()
}

/// `POST /api/topics`, asserting 201: the topic object.
pub async fn create_topic(
    server: &TestServer,
    owner: &Cred,
    name: &str,
    visibility: &str,
) -> Value {
    let got = post(
        server,
        "/api/topics",
        owner,
        &json!({"name": name, "visibility": visibility}),
    )
    .await;
    assert_status(&got, 201, &format!("create topic {name}"));
    got.1
}

/// `PATCH /api/topics/{name}` with a new visibility, asserting 200.
pub async fn set_visibility(server: &TestServer, owner: &Cred, name: &str, visibility: &str) {
    let got = patch(
        server,
        &format!("/api/topics/{name}"),
        owner,
        &json!({ "visibility": visibility }),
    )
    .await;
    assert_status(&got, 200, &format!("make {name} {visibility}"));
    assert_eq!(got.1["visibility"], visibility, "{}", got.1);
}

/// `POST /api/topics/{topic}/access-tokens`: `(status, body)`.
pub async fn create_token_raw(
    server: &TestServer,
    owner: &Cred,
    topic: &str,
    body: &Value,
) -> (u16, Value) {
    post(
        server,
        &format!("/api/topics/{topic}/access-tokens"),
        owner,
        body,
    )
    .await
}

/// A token created with `body`, asserting 201: the token object (with `token`).
pub async fn create_token(server: &TestServer, owner: &Cred, topic: &str, body: &Value) -> Value {
    let got = create_token_raw(server, owner, topic, body).await;
    assert_status(&got, 201, &format!("create token on {topic}"));
    got.1
}

/// A token with `access_level` (`read`, `write`, `read_write`): `(id, credential)`.
pub async fn token(
    server: &TestServer,
    owner: &Cred,
    topic: &str,
    access_level: &str,
) -> (String, Cred) {
    let body = json!({"name": format!("{access_level} token"), "access_level": access_level});
    let made = create_token(server, owner, topic, &body).await;
    let id = made["id"].as_str().expect("token id").to_string();
    let secret = made["token"].as_str().expect("token secret").to_string();
    (id, Cred::TopicToken(secret))
}

/// `GET /api/topics/{topic}/access-tokens`, asserting 200.
pub async fn list_tokens(server: &TestServer, owner: &Cred, topic: &str) -> Vec<Value> {
    let got = get(server, &format!("/api/topics/{topic}/access-tokens"), owner).await;
    assert_status(&got, 200, "list tokens");
    got.1.as_array().expect("a list of tokens").clone()
}

/// Calls `check` every 100 ms until it returns true or `within` passes; whether it did.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// Live subscriptions
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Json,
    Ws,
}

/// The streaming transports whose live subscriptions can be closed by the server.
pub const STREAMS: [Transport; 3] = [Transport::Sse, Transport::Json, Transport::Ws];

impl Transport {
    pub fn path(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Json => "json",
            Transport::Ws => "ws",
        }
    }
}

/// A WebSocket subscription opened with arbitrary headers.
pub struct WsConn {
    frames: LocalBoxStream<'static, Result<Frame, String>>,
    closed: bool,
}

/// An open subscription on any streaming transport.
pub enum Live {
    Sse(SseClient),
    Json(JsonStream),
    Ws(WsConn),
}

/// Opens `/{topics}/{transport}` with `cred` sent as `via`. `Ok` once the `open` event
/// has arrived; `Err((status, body))` when the server refused.
pub async fn subscribe(
    server: &TestServer,
    transport: Transport,
    topics: &str,
    cred: &Cred,
    via: Via,
) -> Result<Live, (u16, Value)> {
    let path = with_query(&format!("/{topics}/{}", transport.path()), cred, via);
    let owned = if via == Via::Header {
        cred.headers()
    } else {
        Vec::new()
    };
    subscribe_with(server, transport, &path, &header_refs(&owned)).await
}

/// A subscription that must be allowed.
pub async fn open(
    server: &TestServer,
    transport: Transport,
    topics: &str,
    cred: &Cred,
    via: Via,
) -> Live {
    match subscribe(server, transport, topics, cred, via).await {
        Ok(live) => live,
        Err((status, body)) => {
            panic!("{transport:?} /{topics} with {cred:?} via {via:?}: {status} {body}")
        }
    }
}

/// A subscription that must be refused: `(status, body)`.
pub async fn refused(
    server: &TestServer,
    transport: Transport,
    topics: &str,
    cred: &Cred,
    via: Via,
) -> (u16, Value) {
    match subscribe(server, transport, topics, cred, via).await {
        Ok(_) => panic!("{transport:?} /{topics} with {cred:?} via {via:?} was allowed"),
        Err(refusal) => refusal,
    }
}

impl Live {
    /// The next event of any kind as JSON (keepalives included), or `None` on timeout
    /// or end of stream.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        match self {
            Live::Sse(c) => {
                let event = c.next_event(timeout).await?;
                let mut value = event.json();
                if value.get("event").is_none() {
                    value["event"] = Value::String(event.event);
                }
                Some(value)
            }
            Live::Json(c) => c.next_json(timeout).await,
            Live::Ws(c) => c.next_json(timeout).await,
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
            match self {
                Live::Sse(c) => {
                    if c.lines.next_line(left).await.is_none() {
                        return c.lines.is_eof();
                    }
                }
                Live::Json(c) => {
                    if c.lines.next_line(left).await.is_none() {
                        return c.lines.is_eof();
                    }
                }
                Live::Ws(c) => {
                    if c.next_json(left).await.is_none() {
                        return c.closed;
                    }
                }
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
            self.ends_within(WAIT).await,
            "{what}: stream did not end after its close event"
        );
        reason
    }

    /// Asserts that the subscription is still open and delivers: `publisher` publishes
    /// `text` to `topic` and it must arrive.
    pub async fn assert_delivers(
        &mut self,
        server: &TestServer,
        topic: &str,
        publisher: &Cred,
        text: &str,
    ) {
        let got = publish_as(server, topic, publisher, text).await;
        assert_status(&got, 200, "publish");
        let message = self
            .next_message(WAIT)
            .await
            .unwrap_or_else(|| panic!("{text:?} not delivered on {topic}"));
        assert_eq!(message["message"], text, "{message}");
    }
}

/// `publisher` publishes `text` to `topic`; every one of `subscribers` must get it.
pub async fn assert_all_receive(
    server: &TestServer,
    topic: &str,
    publisher: &Cred,
    text: &str,
    subscribers: &mut [Live],
) {
    let got = publish_as(server, topic, publisher, text).await;
    assert_status(&got, 200, &format!("publish {text:?} with {publisher:?}"));
    for (i, live) in subscribers.iter_mut().enumerate() {
        let message = live
            .next_message(WAIT)
            .await
            .unwrap_or_else(|| panic!("{text:?} not delivered to subscriber {i} of {topic}"));
        assert_eq!(message["message"], text, "subscriber {i}: {message}");
    }
}

impl WsConn {
    /// The next text frame as JSON (other frames skipped), or `None` on timeout or close.
    async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.closed {
                return None;
            }
            match actix_rt::time::timeout(remaining(deadline), self.frames.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Ok(Frame::Close(_)))) | Ok(Some(Err(_))) => self.closed = true,
                Ok(Some(Ok(Frame::Text(text)))) => {
                    return Some(common::parse_json(&text, "WS frame"))
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

// ---------------------------------------------------------------------------
// Metrics and the admin CLI
// ---------------------------------------------------------------------------

/// The value of an unlabelled metric in `GET /metrics`.
pub async fn metric(server: &TestServer, name: &str) -> u64 {
    let (status, _, body) = server.request("GET", "/metrics", &[], "").await;
    assert_eq!(status, 200, "GET /metrics");
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("metric {name} not in:\n{text}")) as u64
}

/// What a finished CLI command printed.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tidings ARGS` with the server's config file and nothing from the environment.
pub fn tidings(args: &[&str]) -> CliOutput {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("TIDINGS_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidings CLI");
    let deadline = Instant::now() + CLI_TIMEOUT;
    loop {
        match child.try_wait().expect("wait for tidings CLI") {
            Some(_) => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tidings {args:?} did not finish within {CLI_TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let output = child.wait_with_output().expect("read tidings CLI output");
    CliOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The `--config` and `--database-url` of a running test server.
pub fn server_paths(server: &TestServer) -> (String, String) {
    (
        server.dir().join("tidings.toml").display().to_string(),
        server.database_url().to_string(),
    )
}

/// `tidings user --config F --database-url D ACTION…` against the server's database,
/// asserting success: what it printed.
pub fn admin(server: &TestServer, action: &[&str]) -> String {
    let (config, db) = server_paths(server);
    let mut args = vec!["user", "--config", &config, "--database-url", &db];
    args.extend_from_slice(action);
    let out = tidings(&args);
    assert!(out.success, "tidings {args:?} failed: {}", out.stderr);
    out.stdout
}

// ---------------------------------------------------------------------------
// Subscriptions with any headers and query
// ---------------------------------------------------------------------------

/// Like [`subscribe`], for a request built by the caller: `path_and_query` as it is
/// sent and `headers` added as given (credentials, `Origin`, …). `Ok` once the `open`
/// event has arrived; `Err((status, body))` when the server refused. A refused
/// WebSocket upgrade is asked again as a plain GET to read its `detail`.
pub async fn subscribe_with(
    server: &TestServer,
    transport: Transport,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Live, (u16, Value)> {
    let path = path_and_query;
    let mut live = match transport {
        Transport::Sse | Transport::Json => {
            let mut lines = LineStream::connect(&server.url(path), headers).await;
            if lines.status != 200 {
                let body = lines
                    .lines_until_eof(WAIT)
                    .await
                    .unwrap_or_else(|| panic!("{path}: error body did not end"))
                    .join("\n");
                return Err((
                    lines.status,
                    common::parse_json(body.as_bytes(), &format!("GET {path}")),
                ));
            }
            if transport == Transport::Sse {
                Live::Sse(SseClient { lines })
            } else {
                Live::Json(JsonStream { lines })
            }
        }
        Transport::Ws => {
            let url = server.ws_url(path);
            let mut request = common::client().ws(url.as_str());
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let connected = actix_rt::time::timeout(WAIT, request.connect())
                .await
                .unwrap_or_else(|_| panic!("WebSocket {path}: connect timed out"));
            match connected {
                Ok((resp, framed)) => {
                    assert_eq!(resp.status().as_u16(), 101, "WebSocket {path}");
                    Live::Ws(WsConn {
                        frames: framed.map(|r| r.map_err(|e| e.to_string())).boxed_local(),
                        closed: false,
                    })
                }
                Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                    let (again, _, body) = server.request("GET", path, headers, "").await;
                    assert_eq!(
                        again,
                        status.as_u16(),
                        "{path}: plain GET answered differently from the upgrade"
                    );
                    return Err((again, common::parse_json(&body, &format!("GET {path}"))));
                }
                Err(e) => panic!("WebSocket {path}: {e}"),
            }
        }
    };
    let open = live
        .next_event(WAIT)
        .await
        .unwrap_or_else(|| panic!("{path}: no open event"));
    assert_eq!(open["event"], "open", "{path}: first event {open}");
    Ok(live)
}
