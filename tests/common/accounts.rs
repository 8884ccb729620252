//! Accounts and credentials: the `detail` texts of the auth errors, credentials sent
//! every supported way, accounts, API keys, topics and topic access tokens made through
//! the API, subscriptions opened with a credential, and the metrics endpoint.

use std::time::Duration;

use serde_json::{json, Value};

use base64::prelude::{Engine, BASE64_STANDARD};

use super::streams::{subscribe_with, Subscriber, Transport};
use super::{eventually, parse_json, TestServer, WAIT};

// The `detail` texts of the auth errors (API.md §2).
pub const NOT_AUTHENTICATED: &str = "Not authenticated";
pub const INVALID: &str = "Could not validate credentials";
pub const EXPIRED: &str = "Token has expired";
pub const FORBIDDEN: &str = "Insufficient permissions to access this topic";
pub const INCORRECT_LOGIN: &str = "Incorrect email or password";
pub const REGISTRATION_CLOSED: &str = "Registration is closed";
pub const RATE_LIMITED: &str = "Rate limit exceeded";
pub const ONLY_PRIVATE: &str = "Topic access tokens are only available for private topics";

/// The password every test account registers with.
pub const PASSWORD: &str = "correct horse battery";

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

/// `Authorization: Basic` for `user:password` (ntfy's form).
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{user}:{password}"))
    )
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

    /// The header form when it travels as `via` says (none for a query parameter).
    pub fn headers_via(&self, via: Via) -> Vec<(&'static str, String)> {
        match via {
            Via::Header => self.headers(),
            Via::Query => Vec::new(),
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

pub fn header_refs<'a>(owned: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
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
        parse_json(&bytes, &format!("{method} {path}"))
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
    let owned = cred.headers_via(via);
    let path = with_query(&format!("/{topic}"), cred, via);
    let (status, _, bytes) = server
        .request("POST", &path, &header_refs(&owned), text.to_string())
        .await;
    (status, parse_json(&bytes, &format!("POST {path}")))
}

/// The `detail` of an error body ("" when there is none).
pub fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or("")
}

/// How long a credential that is about to expire may take to be refused.
const EXPIRY_WAIT: Duration = Duration::from_secs(6);

/// Repeats `attempt` until it is refused with 401 (a credential under test has passed
/// its expiry), so a test waits no longer than the expiry itself.
pub async fn until_refused<F, Fut>(what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    eventually(EXPIRY_WAIT, what, || {
        let answer = attempt();
        async move {
            let got = answer.await;
            if got.0 == 401 {
                Ok(())
            } else {
                Err(got)
            }
        }
    })
    .await
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

// ---------------------------------------------------------------------------
// Subscriptions with a credential
// ---------------------------------------------------------------------------

/// Opens `/{topics}/{transport}` with `cred` sent as `via`. `Ok` once the `open` event
/// has arrived; `Err((status, body))` when the server refused.
pub async fn subscribe(
    server: &TestServer,
    transport: Transport,
    topics: &str,
    cred: &Cred,
    via: Via,
) -> Result<Subscriber, (u16, Value)> {
    let path = with_query(&format!("/{topics}/{}", transport.path()), cred, via);
    let owned = cred.headers_via(via);
    subscribe_with(server, transport, &path, &header_refs(&owned)).await
}

/// A subscription that must be allowed.
pub async fn open(
    server: &TestServer,
    transport: Transport,
    topics: &str,
    cred: &Cred,
    via: Via,
) -> Subscriber {
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

impl Subscriber {
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
    subscribers: &mut [Subscriber],
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

// ---------------------------------------------------------------------------
// Metrics
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
