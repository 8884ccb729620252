//! Browser access (§7): an account's client key (`pk_…`) with an RS256 user key, or in
//! development mode with a bare user id. What such credentials may read and never do,
//! the user keys that are refused, signing-key rotation, the settings endpoints, and
//! the account's allowed origins on SSE, the WebSocket upgrade and CORS preflights.

mod common;

use std::time::{Duration, Instant};

use awc::http::header::HeaderMap;
use awc::http::Method;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ORIGIN_NOT_ALLOWED: &str = "Origin not allowed";
/// The reason of the `close` event that ends a subscription whose access changed.
const ACCESS_REVOKED: &str = "Access revoked";
/// How soon live browser subscriptions must end after their account's access changed.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------
// Client credentials and the account's browser-access settings
// ---------------------------------------------------------------------------

/// Client credentials as a browser presents them.
#[derive(Debug, Clone)]
struct Client {
    key: String,
    user_key: Option<String>,
    user_id: Option<String>,
}

impl Client {
    /// Secure mode: the client key with a signed user key.
    fn signed(key: &str, user_key: &str) -> Client {
        Client {
            key: key.to_string(),
            user_key: Some(user_key.to_string()),
            user_id: None,
        }
    }

    /// Development mode: the client key with a bare user id.
    fn dev(key: &str, user_id: &str) -> Client {
        Client {
            key: key.to_string(),
            user_key: None,
            user_id: Some(user_id.to_string()),
        }
    }

    /// `X-Client-Key` with `X-User-Key` / `X-User-Id`.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("X-Client-Key", self.key.clone())];
        if let Some(k) = &self.user_key {
            headers.push(("X-User-Key", k.clone()));
        }
        if let Some(id) = &self.user_id {
            headers.push(("X-User-Id", id.clone()));
        }
        headers
    }

    /// `client_key=…&user_key=…` / `&user_id=…` (every value is URL-safe here).
    fn query(&self) -> String {
        let mut query = format!("client_key={}", self.key);
        if let Some(k) = &self.user_key {
            query.push_str(&format!("&user_key={k}"));
        }
        if let Some(id) = &self.user_id {
            query.push_str(&format!("&user_id={id}"));
        }
        query
    }
}

/// An account with its client key and the signing key generated for it.
struct Tenant {
    account: Account,
    client_key: String,
    private_pem: String,
    public_pem: String,
}

impl Tenant {
    /// The owner's API key.
    fn owner(&self) -> Cred {
        self.account.key()
    }

    /// Client credentials with a fresh user key for `sub` listing `topics`.
    fn client(&self, sub: &str, topics: &[&str]) -> Client {
        Client::signed(&self.client_key, &self.user_key(sub, topics))
    }

    /// A user key signed with the current signing key: `iat` now, `exp` in 10 minutes.
    fn user_key(&self, sub: &str, topics: &[&str]) -> String {
        let now = common::now_unix();
        sign(
            &self.private_pem,
            &json!({"sub": sub, "iat": now, "exp": now + 600, "topics": topics}),
        )
    }
}

/// Registers `name` and generates its signing key.
async fn tenant(server: &common::TestServer, name: &str) -> Tenant {
    let account = register(server, name).await;
    let client_key = settings(server, &account.jwt()).await["client_key"]
        .as_str()
        .expect("client_key")
        .to_string();
    let key = new_signing_key(server, &account.jwt()).await;
    Tenant {
        client_key,
        private_pem: key["private_key_pem"].as_str().expect("PEM").to_string(),
        public_pem: key["public_key_pem"].as_str().expect("PEM").to_string(),
        account,
    }
}

/// `GET /api/client-auth`, asserting 200.
async fn settings(server: &common::TestServer, owner: &Cred) -> Value {
    let got = get(server, "/api/client-auth", owner).await;
    assert_status(&got, 200, "GET /api/client-auth");
    got.1
}

/// `POST /api/client-auth/signing-key`, asserting 201.
async fn new_signing_key(server: &common::TestServer, owner: &Cred) -> Value {
    let got = post(server, "/api/client-auth/signing-key", owner, &json!({})).await;
    assert_status(&got, 201, "POST /api/client-auth/signing-key");
    got.1
}

/// `PATCH /api/client-auth {"security_mode": on}`, asserting 200 and the new mode.
async fn set_security_mode(server: &common::TestServer, owner: &Cred, on: bool) -> Value {
    let got = patch(
        server,
        "/api/client-auth",
        owner,
        &json!({ "security_mode": on }),
    )
    .await;
    assert_status(&got, 200, "PATCH /api/client-auth");
    assert_eq!(got.1["security_mode"], on, "{}", got.1);
    got.1
}

/// `PUT /api/client-auth/allowed-origins`: `(status, body)`.
async fn put_origins(server: &common::TestServer, owner: &Cred, origins: &[&str]) -> (u16, Value) {
    call(
        server,
        "PUT",
        "/api/client-auth/allowed-origins",
        owner,
        Some(&json!({ "origins": origins })),
    )
    .await
}

/// Sets the allowed origins, asserting 200: the settings.
async fn set_origins(server: &common::TestServer, owner: &Cred, origins: &[&str]) -> Value {
    let got = put_origins(server, owner, origins).await;
    assert_status(&got, 200, "PUT /api/client-auth/allowed-origins");
    got.1
}

// ---------------------------------------------------------------------------
// User keys, good and forged
// ---------------------------------------------------------------------------

/// An RS256 JWT of `claims` signed with a private key PEM.
fn sign(private_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("RSA private key PEM");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign user key")
}

/// An HS256 JWT of `claims` with `secret` as the HMAC key.
fn sign_hs256(secret: &[u8], claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign HS256")
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// An unsigned JWT (`alg: none`, empty signature).
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

/// `token` with its payload replaced by `claims`, header and signature kept.
fn with_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    format!("{}.{}.{}", parts[0], b64(claims), parts[2])
}

// ---------------------------------------------------------------------------
// Requests with client credentials
// ---------------------------------------------------------------------------

/// Path and headers for `path` with client credentials sent as `via`, plus `Origin`.
fn client_request_parts(
    path: &str,
    client: &Client,
    via: Via,
    origin: Option<&str>,
) -> (String, Vec<(&'static str, String)>) {
    let (path, mut headers) = match via {
        Via::Header => (path.to_string(), client.headers()),
        Via::Query => {
            let sep = if path.contains('?') { '&' } else { '?' };
            (format!("{path}{sep}{}", client.query()), Vec::new())
        }
    };
    if let Some(origin) = origin {
        headers.push(("Origin", origin.to_string()));
    }
    (path, headers)
}

/// Opens `/{topics}/{transport}` with client credentials (and an `Origin`).
async fn client_subscribe(
    server: &common::TestServer,
    transport: Transport,
    topics: &str,
    client: &Client,
    via: Via,
    origin: Option<&str>,
) -> Result<Subscriber, (u16, Value)> {
    let path = format!("/{topics}/{}", transport.path());
    let (path, headers) = client_request_parts(&path, client, via, origin);
    subscribe_with(server, transport, &path, &header_refs(&headers)).await
}

/// A subscription with client credentials that must be allowed.
async fn client_open(
    server: &common::TestServer,
    transport: Transport,
    topics: &str,
    client: &Client,
    via: Via,
    origin: Option<&str>,
) -> Subscriber {
    match client_subscribe(server, transport, topics, client, via, origin).await {
        Ok(live) => live,
        Err((status, body)) => panic!(
            "{transport:?} /{topics} via {via:?} from {origin:?} with {client:?}: {status} {body}"
        ),
    }
}

/// A subscription with client credentials that must be refused: `(status, body)`.
async fn client_refused(
    server: &common::TestServer,
    transport: Transport,
    topics: &str,
    client: &Client,
    via: Via,
    origin: Option<&str>,
) -> (u16, Value) {
    match client_subscribe(server, transport, topics, client, via, origin).await {
        Ok(_) => panic!(
            "{transport:?} /{topics} via {via:?} from {origin:?} with {client:?} was allowed"
        ),
        Err(refusal) => refusal,
    }
}

/// Asserts that subscribing is refused with `status` and `detail` over SSE (headers)
/// and WebSocket (query), the two ways a browser uses.
async fn assert_subscribe_refused(
    server: &common::TestServer,
    topics: &str,
    client: &Client,
    origin: Option<&str>,
    (status, expected): (u16, &str),
    what: &str,
) {
    for (transport, via) in [(Transport::Sse, Via::Header), (Transport::Ws, Via::Query)] {
        let what = format!("{what}: {transport:?} via {via:?}");
        match client_subscribe(server, transport, topics, client, via, origin).await {
            Ok(_) => panic!("{what}: allowed"),
            Err(got) => assert_error(&got, status, expected, &what),
        }
    }
}

/// Any request with client credentials as headers and an optional JSON body.
async fn client_call(
    server: &common::TestServer,
    method: &str,
    path: &str,
    client: &Client,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut owned = client.headers();
    let text = match body {
        Some(b) => {
            owned.push(("Content-Type", "application/json".to_string()));
            b.to_string()
        }
        None => "message from a browser".to_string(),
    };
    let (status, _, bytes) = server
        .request(method, path, &header_refs(&owned), text)
        .await;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        common::parse_json(&bytes, &format!("{method} {path}"))
    };
    (status, value)
}

/// Sends a request and returns its status and headers without reading the body (which
/// may be an endless stream).
async fn head(
    server: &common::TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = common::client().request(method, server.url(path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
    (resp.status().as_u16(), resp.headers().clone())
}

/// A CORS preflight for a GET carrying the client headers: `(status, headers, body)`.
async fn preflight(
    server: &common::TestServer,
    path: &str,
    origin: &str,
) -> (u16, HeaderMap, Value) {
    let headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "x-client-key, x-user-key"),
    ];
    let (status, response_headers) = head(server, "OPTIONS", path, &headers).await;
    let (again, _, body) = server.request("OPTIONS", path, &headers, "").await;
    assert_eq!(status, again, "{path}: the same preflight answered twice");
    let body = if body.is_empty() {
        Value::Null
    } else {
        common::parse_json(&body, &format!("OPTIONS {path}"))
    };
    (status, response_headers, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Whether a comma-separated header value lists `item` (case-insensitive).
fn lists(headers: &HeaderMap, name: &str, item: &str) -> bool {
    header(headers, name)
        .split(',')
        .any(|v| v.trim().eq_ignore_ascii_case(item))
}

/// Asserts the CORS headers of a response to an allowed `origin`.
#[track_caller]
fn assert_cors_allowed(headers: &HeaderMap, origin: &str, what: &str) {
    assert_eq!(
        header(headers, "Access-Control-Allow-Origin"),
        origin,
        "{what}: {headers:?}"
    );
    assert!(lists(headers, "Vary", "Origin"), "{what}: {headers:?}");
}

/// Whether any of the server's database files (the WAL included) holds `text`.
fn database_contains(server: &common::TestServer, text: &str) -> bool {
    let url = server.database_url();
    if url.starts_with("postgres") {
        let dump = std::process::Command::new("pg_dump")
            .args(["--data-only", "--dbname", url])
            .output()
            .expect("run pg_dump");
        assert!(dump.status.success(), "pg_dump failed");
        return String::from_utf8_lossy(&dump.stdout).contains(text);
    }
    std::fs::read_dir(server.dir())
        .expect("read the server's directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("tidings.db"))
        })
        .any(|path| {
            let bytes = std::fs::read(&path).unwrap_or_default();
            bytes.windows(text.len()).any(|w| w == text.as_bytes())
        })
}

/// A private topic of `owner`.
async fn private_topic(server: &common::TestServer, owner: &Tenant, name: &str) {
    create_topic(server, &owner.account.jwt(), name, "private").await;
}

/// Waits for the `close` event (reason `Access revoked`) of every one of `subs`, each
/// within `CLOSE_WITHIN` of `since`, and for each stream to end after it.
async fn assert_all_closed(subs: &mut [Subscriber], since: Instant, what: &str) {
    for (i, live) in subs.iter_mut().enumerate() {
        let left = CLOSE_WITHIN.saturating_sub(since.elapsed());
        let reason = live
            .expect_closed(left, &format!("{what}: subscription {i}"))
            .await;
        assert_eq!(reason, ACCESS_REVOKED, "{what}: subscription {i}");
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[actix_rt::test]
async fn every_account_has_a_client_key_and_settings_in_the_documented_shape() {
    let server = TestServer::without_limits();
    let owner = register(&server, "ada").await;
    let other = register(&server, "ben").await;

    let fresh = settings(&server, &owner.jwt()).await;
    let keys: Vec<&String> = fresh.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        [
            "allowed_origins",
            "client_key",
            "security_mode",
            "signing_key"
        ],
        "{fresh}"
    );
    let client_key = fresh["client_key"]
        .as_str()
        .expect("client_key")
        .to_string();
    assert!(
        client_key.starts_with("pk_") && client_key.len() >= 3 + 32,
        "{client_key}"
    );
    assert_eq!(fresh["security_mode"], true, "secure by default: {fresh}");
    assert!(fresh["signing_key"].is_null(), "{fresh}");
    assert_eq!(fresh["allowed_origins"], json!([]), "{fresh}");
    assert_eq!(
        settings(&server, &owner.key()).await,
        fresh,
        "the API key sees the same settings"
    );
    let others = settings(&server, &other.jwt()).await;
    assert!(
        others["client_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("pk_"))
            && others["client_key"] != fresh["client_key"],
        "each account has its own client key: {others}"
    );
    assert_error(
        &get(&server, "/api/client-auth", &Cred::None).await,
        401,
        NOT_AUTHENTICATED,
        "settings without a credential",
    );

    // A signing key: the private half is shown once, in two forms, and not kept.
    let made = new_signing_key(&server, &owner.jwt()).await;
    let fields: Vec<&String> = made.as_object().expect("an object").keys().collect();
    assert_eq!(
        fields,
        [
            "created_at",
            "id",
            "private_key_base64",
            "private_key_pem",
            "public_key_pem"
        ],
        "{made}"
    );
    let private = made["private_key_pem"].as_str().expect("private_key_pem");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{private}"
    );
    let decoded = STANDARD
        .decode(
            made["private_key_base64"]
                .as_str()
                .expect("private_key_base64"),
        )
        .expect("private_key_base64 is base64");
    assert_eq!(decoded, private.as_bytes(), "the base64 form is the PEM");
    let public = made["public_key_pem"].as_str().expect("public_key_pem");
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    assert!(
        made["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{made}"
    );
    assert!(is_rfc3339_utc(&made["created_at"]), "{made}");
    assert!(
        database_contains(&server, public.lines().nth(1).expect("a PEM body line")),
        "the public key is kept (and the database files can be searched)"
    );
    assert!(
        !database_contains(&server, private.lines().nth(1).expect("a PEM body line")),
        "the private key was stored"
    );

    let with_key = settings(&server, &owner.jwt()).await;
    assert_eq!(
        with_key["signing_key"],
        json!({"id": made["id"], "public_key_pem": public, "created_at": made["created_at"]}),
        "only the public half is shown afterwards"
    );
    assert!(
        !with_key.to_string().contains("PRIVATE"),
        "private key shown again: {with_key}"
    );
    assert_eq!(with_key["client_key"], client_key.as_str());

    // Security mode and allowed origins; each answer is the whole settings object.
    let dev = set_security_mode(&server, &owner.jwt(), false).await;
    assert_eq!(dev["signing_key"], with_key["signing_key"], "{dev}");
    let unchanged = patch(&server, "/api/client-auth", &owner.jwt(), &json!({})).await;
    assert_status(&unchanged, 200, "PATCH without a field");
    assert_eq!(unchanged.1, dev, "a field left out is kept");
    set_security_mode(&server, &owner.jwt(), true).await;

    let listed = set_origins(
        &server,
        &owner.jwt(),
        &[
            "https://b.example.com",
            "https://a.example.com/",
            "http://localhost:3000",
            "https://a.example.com",
        ],
    )
    .await;
    assert_eq!(
        listed["allowed_origins"],
        json!([
            "http://localhost:3000",
            "https://a.example.com",
            "https://b.example.com"
        ]),
        "{listed}"
    );
    assert_eq!(
        settings(&server, &owner.key()).await["allowed_origins"],
        listed["allowed_origins"]
    );
    for bad in [
        "app.example.com",
        "https://app.example.com/path",
        "https://",
    ] {
        let got = put_origins(&server, &owner.jwt(), &[bad]).await;
        assert!(
            [400, 422].contains(&got.0) && !detail(&got.1).is_empty(),
            "origin {bad:?}: {got:?}"
        );
    }
    assert_eq!(
        settings(&server, &owner.jwt()).await["allowed_origins"],
        listed["allowed_origins"],
        "a refused list changes nothing"
    );
    let cleared = set_origins(&server, &owner.jwt(), &[]).await;
    assert_eq!(cleared["allowed_origins"], json!([]));
    assert_eq!(
        cleared["client_key"],
        client_key.as_str(),
        "the client key stays"
    );
    assert_eq!(
        settings(&server, &other.jwt()).await,
        others,
        "another account's settings are untouched"
    );
}

#[actix_rt::test]
async fn a_user_key_listing_private_topics_subscribes_over_sse_and_websocket() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "cleo").await;
    private_topic(&server, &t, "cleo-inbox").await;
    private_topic(&server, &t, "cleo-news").await;
    let client = t.client("user-1", &["cleo-inbox", "cleo-news"]);

    let mut subs = vec![
        client_open(
            &server,
            Transport::Sse,
            "cleo-inbox",
            &client,
            Via::Header,
            None,
        )
        .await,
        client_open(
            &server,
            Transport::Ws,
            "cleo-inbox",
            &client,
            Via::Query,
            None,
        )
        .await,
        client_open(
            &server,
            Transport::Sse,
            "cleo-inbox",
            &client,
            Via::Query,
            None,
        )
        .await,
        client_open(
            &server,
            Transport::Ws,
            "cleo-inbox",
            &client,
            Via::Header,
            None,
        )
        .await,
        client_open(
            &server,
            Transport::Json,
            "cleo-inbox,cleo-news",
            &client,
            Via::Query,
            None,
        )
        .await,
    ];
    assert_all_receive(&server, "cleo-inbox", &t.owner(), "hello", &mut subs).await;
    subs[4]
        .assert_delivers(&server, "cleo-news", &t.account.jwt(), "news")
        .await;

    let history = client_call(
        &server,
        "GET",
        "/api/topics/cleo-inbox/messages?since=all",
        &client,
        None,
    )
    .await;
    assert_status(&history, 200, "history with client credentials");
    assert_eq!(
        history.1.as_array().map(|a| common::texts(a)),
        Some(vec!["hello".to_string()])
    );
}

#[actix_rt::test]
async fn a_topic_the_user_key_does_not_list_is_403() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "dora").await;
    let other = tenant(&server, "emil").await;
    private_topic(&server, &t, "dora-inbox").await;
    private_topic(&server, &t, "dora-secret").await;
    create_topic(&server, &t.account.jwt(), "dora-open", "public").await;
    private_topic(&server, &other, "emil-inbox").await;
    create_topic(&server, &other.account.jwt(), "emil-open", "public").await;
    // Topics of another account and topics that do not exist are never the account's,
    // even when the key lists them.
    let client = t.client(
        "user-2",
        &["dora-inbox", "emil-inbox", "emil-open", "dora-later"],
    );
    let mut allowed = client_open(
        &server,
        Transport::Sse,
        "dora-inbox",
        &client,
        Via::Header,
        None,
    )
    .await;

    for topics in [
        "dora-secret",
        "dora-open",
        "emil-inbox",
        "emil-open",
        "dora-later",
        "dora-inbox,dora-secret",
    ] {
        assert_subscribe_refused(&server, topics, &client, None, (403, FORBIDDEN), topics).await;
    }
    let history = client_call(
        &server,
        "GET",
        "/api/topics/dora-secret/messages",
        &client,
        None,
    )
    .await;
    assert_error(&history, 403, FORBIDDEN, "history of an unlisted topic");

    let now = common::now_unix();
    let no_topics = Client::signed(
        &t.client_key,
        &sign(&t.private_pem, &json!({"sub": "user-2", "iat": now})),
    );
    assert_subscribe_refused(
        &server,
        "dora-inbox",
        &no_topics,
        None,
        (403, FORBIDDEN),
        "a user key without a topics claim",
    )
    .await;

    allowed
        .assert_delivers(&server, "dora-inbox", &t.owner(), "still open")
        .await;
}

#[actix_rt::test]
async fn user_keys_not_signed_rs256_by_the_accounts_current_key_are_401() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "finn").await;
    let other = tenant(&server, "gwen").await;
    let unkeyed = register(&server, "hugo").await;
    private_topic(&server, &t, "finn-inbox").await;
    let now = common::now_unix();
    let claims = |extra: Value| {
        let mut c =
            json!({"sub": "user-3", "iat": now, "exp": now + 600, "topics": ["finn-inbox"]});
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let good = claims(json!({}));
    let valid = sign(&t.private_pem, &good);
    let mut without_sub = good.clone();
    without_sub.as_object_mut().unwrap().remove("sub");
    let mut wider = good.clone();
    wider["topics"] = json!(["finn-inbox", "finn-other"]);

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "HS256 with the account's public key as secret",
            sign_hs256(t.public_pem.as_bytes(), &good),
            INVALID,
        ),
        (
            "HS256 with some secret",
            sign_hs256(b"some shared secret", &good),
            INVALID,
        ),
        ("alg none", unsigned(&good), INVALID),
        (
            "alg none with the RS256 signature kept",
            format!(
                "{}.{}",
                unsigned(&good).trim_end_matches('.'),
                valid.rsplit('.').next().unwrap()
            ),
            INVALID,
        ),
        (
            "signed with another account's key",
            sign(&other.private_pem, &good),
            INVALID,
        ),
        (
            "payload changed after signing",
            with_payload(&valid, &wider),
            INVALID,
        ),
        (
            "expired",
            sign(&t.private_pem, &claims(json!({"exp": now - 60}))),
            EXPIRED,
        ),
        ("without sub", sign(&t.private_pem, &without_sub), INVALID),
        (
            "empty sub",
            sign(&t.private_pem, &claims(json!({"sub": ""}))),
            INVALID,
        ),
        (
            "nbf in the future",
            sign(&t.private_pem, &claims(json!({"nbf": now + 600}))),
            INVALID,
        ),
        (
            "iat in the future",
            sign(&t.private_pem, &claims(json!({"iat": now + 600}))),
            INVALID,
        ),
        ("not a JWT", "not-a-jwt".to_string(), INVALID),
    ];
    for (what, user_key, expected) in &cases {
        let client = Client::signed(&t.client_key, user_key);
        assert_subscribe_refused(&server, "finn-inbox", &client, None, (401, expected), what).await;
        let history = client_call(
            &server,
            "GET",
            "/api/topics/finn-inbox/messages",
            &client,
            None,
        )
        .await;
        assert_error(&history, 401, expected, &format!("{what}: history"));
    }

    // The same claims, properly signed, are accepted; so are past `nbf`/`iat` and a key
    // with no time claims at all (`exp` is checked when present).
    for (what, claims) in [
        ("valid", good.clone()),
        (
            "nbf and iat in the past",
            claims(json!({"nbf": now - 60, "iat": now - 60})),
        ),
        (
            "no time claims",
            json!({"sub": "user-3", "topics": ["finn-inbox"]}),
        ),
    ] {
        let client = Client::signed(&t.client_key, &sign(&t.private_pem, &claims));
        for (transport, via) in [(Transport::Sse, Via::Header), (Transport::Ws, Via::Query)] {
            if let Err(got) =
                client_subscribe(&server, transport, "finn-inbox", &client, via, None).await
            {
                panic!("{what}: {transport:?} refused: {got:?}");
            }
        }
    }

    // A valid user key with an unknown client key, or another account's.
    let forged = Client::signed(&format!("pk_{}", "A".repeat(43)), &valid);
    assert_subscribe_refused(
        &server,
        "finn-inbox",
        &forged,
        None,
        (401, INVALID),
        "unknown client key",
    )
    .await;
    let other_client = Client::signed(&other.client_key, &valid);
    assert_subscribe_refused(
        &server,
        "finn-inbox",
        &other_client,
        None,
        (401, INVALID),
        "another account's client key",
    )
    .await;
    // An account without a signing key accepts no user key at all.
    let unkeyed_client_key = settings(&server, &unkeyed.jwt()).await["client_key"]
        .as_str()
        .unwrap()
        .to_string();
    create_topic(&server, &unkeyed.jwt(), "hugo-inbox", "private").await;
    let unkeyed_claims = json!({"sub": "user-3", "topics": ["hugo-inbox"]});
    let client = Client::signed(&unkeyed_client_key, &sign(&t.private_pem, &unkeyed_claims));
    assert_subscribe_refused(
        &server,
        "hugo-inbox",
        &client,
        None,
        (401, INVALID),
        "account without a signing key",
    )
    .await;
    // A client key alone.
    let bare = Client {
        key: t.client_key.clone(),
        user_key: None,
        user_id: None,
    };
    assert_subscribe_refused(
        &server,
        "finn-inbox",
        &bare,
        None,
        (401, NOT_AUTHENTICATED),
        "client key without a user key",
    )
    .await;
}

#[actix_rt::test]
async fn a_new_signing_key_invalidates_old_user_keys_and_closes_their_subscriptions() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "ivan").await;
    let other = tenant(&server, "jade").await;
    private_topic(&server, &t, "ivan-inbox").await;
    private_topic(&server, &other, "jade-inbox").await;
    let old = t.client("user-4", &["ivan-inbox"]);
    let before = settings(&server, &t.owner()).await;

    let mut old_subs = vec![
        client_open(
            &server,
            Transport::Sse,
            "ivan-inbox",
            &old,
            Via::Header,
            None,
        )
        .await,
        client_open(&server, Transport::Ws, "ivan-inbox", &old, Via::Query, None).await,
        client_open(
            &server,
            Transport::Json,
            "ivan-inbox",
            &old,
            Via::Query,
            None,
        )
        .await,
    ];
    assert_all_receive(&server, "ivan-inbox", &t.owner(), "before", &mut old_subs).await;
    let mut owner_sub = open(
        &server,
        Transport::Sse,
        "ivan-inbox",
        &t.owner(),
        Via::Header,
    )
    .await;
    let mut neighbour = client_open(
        &server,
        Transport::Sse,
        "jade-inbox",
        &other.client("user-4", &["jade-inbox"]),
        Via::Header,
        None,
    )
    .await;

    let rotated = new_signing_key(&server, &t.account.jwt()).await;
    let rotated_at = Instant::now();
    assert_all_closed(&mut old_subs, rotated_at, "after a new signing key").await;
    assert_ne!(rotated["id"], before["signing_key"]["id"], "{rotated}");
    assert_eq!(
        settings(&server, &t.owner()).await["signing_key"]["id"],
        rotated["id"]
    );

    assert_subscribe_refused(
        &server,
        "ivan-inbox",
        &old,
        None,
        (401, INVALID),
        "a user key of the old signing key",
    )
    .await;
    let new_key = sign(
        rotated["private_key_pem"]
            .as_str()
            .expect("new private key"),
        &json!({"sub": "user-4", "iat": common::now_unix(), "topics": ["ivan-inbox"]}),
    );
    let mut renewed = client_open(
        &server,
        Transport::Sse,
        "ivan-inbox",
        &Client::signed(&t.client_key, &new_key),
        Via::Header,
        None,
    )
    .await;
    renewed
        .assert_delivers(&server, "ivan-inbox", &t.owner(), "renewed")
        .await;
    let seen = owner_sub.next_message(WAIT).await;
    assert_eq!(
        seen.map(|m| m["message"].clone()),
        Some(json!("renewed")),
        "the owner's subscription stays open"
    );
    owner_sub
        .assert_delivers(&server, "ivan-inbox", &t.owner(), "owner still here")
        .await;
    neighbour
        .assert_delivers(&server, "jade-inbox", &other.owner(), "other account")
        .await;
}

#[actix_rt::test]
async fn development_mode_lets_a_user_id_read_any_topic_of_the_account() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "kira").await;
    let other = tenant(&server, "liam").await;
    private_topic(&server, &t, "kira-a").await;
    private_topic(&server, &t, "kira-b").await;
    create_topic(&server, &t.account.jwt(), "kira-pub", "public").await;
    private_topic(&server, &other, "liam-a").await;
    let dev = Client::dev(&t.client_key, "visitor-7");

    // Secure mode (the default): a user id is not enough.
    assert_subscribe_refused(
        &server,
        "kira-a",
        &dev,
        None,
        (401, INVALID),
        "user id in secure mode",
    )
    .await;

    set_security_mode(&server, &t.account.jwt(), false).await;
    let mut subs = vec![
        client_open(&server, Transport::Sse, "kira-a", &dev, Via::Header, None).await,
        client_open(&server, Transport::Ws, "kira-a", &dev, Via::Query, None).await,
        client_open(&server, Transport::Sse, "kira-b", &dev, Via::Query, None).await,
        client_open(&server, Transport::Ws, "kira-pub", &dev, Via::Header, None).await,
    ];
    assert_all_receive(&server, "kira-a", &t.owner(), "dev a", &mut subs[..2]).await;
    subs[2]
        .assert_delivers(&server, "kira-b", &t.owner(), "dev b")
        .await;
    subs[3]
        .assert_delivers(&server, "kira-pub", &t.owner(), "dev pub")
        .await;
    // A user key still works in development mode.
    let signed = t.client("user-5", &["kira-b"]);
    client_open(
        &server,
        Transport::Sse,
        "kira-b",
        &signed,
        Via::Header,
        None,
    )
    .await;
    // Only the account's own topics.
    for topics in ["liam-a", "kira-missing", "kira-a,liam-a"] {
        assert_subscribe_refused(&server, topics, &dev, None, (403, FORBIDDEN), topics).await;
    }
    let empty = Client::dev(&t.client_key, "");
    let got = client_refused(&server, Transport::Sse, "kira-a", &empty, Via::Query, None).await;
    assert_error(&got, 401, INVALID, "an empty user id");

    // Back to secure mode: the development-mode subscriptions end and stay out.
    set_security_mode(&server, &t.account.jwt(), true).await;
    let switched_at = Instant::now();
    assert_all_closed(&mut subs, switched_at, "after security mode is back on").await;
    for (transport, via) in [
        (Transport::Sse, Via::Header),
        (Transport::Sse, Via::Query),
        (Transport::Ws, Via::Query),
        (Transport::Ws, Via::Header),
    ] {
        let got = client_refused(&server, transport, "kira-a", &dev, via, None).await;
        assert_error(&got, 401, INVALID, &format!("{transport:?} via {via:?}"));
    }
}

#[actix_rt::test]
async fn development_mode_survives_a_restart_and_is_warned_about_at_start_up() {
    let mut server = TestServer::without_limits();
    let t = tenant(&server, "mona").await;
    register(&server, "nils").await;
    private_topic(&server, &t, "mona-a").await;
    set_security_mode(&server, &t.account.jwt(), false).await;
    let start_up_warning = "client authentication is in development mode";
    assert!(!server.log().contains(start_up_warning), "{}", server.log());

    server.restart();
    let log = server.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(start_up_warning))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning per account in development mode:\n{log}"
    );
    assert!(warnings[0].contains("mona"), "{}", warnings[0]);
    let dev = Client::dev(&t.client_key, "visitor-8");
    let mut live = client_open(&server, Transport::Sse, "mona-a", &dev, Via::Header, None).await;
    live.assert_delivers(&server, "mona-a", &t.owner(), "after restart")
        .await;
}

#[actix_rt::test]
async fn client_credentials_never_publish_or_manage() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "olga").await;
    private_topic(&server, &t, "olga-inbox").await;
    create_topic(&server, &t.account.jwt(), "olga-pub", "public").await;
    let topics = ["olga-inbox", "olga-pub", "olga-new"];
    let signed = t.client("user-6", &topics);
    let before = settings(&server, &t.owner()).await;

    let attempts: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "/olga-inbox", None),
        ("PUT", "/olga-pub", None),
        ("POST", "/olga-new", None),
        (
            "POST",
            "/",
            Some(json!({"topic": "olga-inbox", "message": "hi"})),
        ),
        ("GET", "/api/topics", None),
        (
            "POST",
            "/api/topics",
            Some(json!({"name": "olga-made", "visibility": "public"})),
        ),
        (
            "PATCH",
            "/api/topics/olga-inbox",
            Some(json!({"visibility": "public"})),
        ),
        ("DELETE", "/api/topics/olga-inbox", None),
        (
            "POST",
            "/api/topics/olga-inbox/access-tokens",
            Some(json!({"name": "x", "access_level": "read_write"})),
        ),
        ("GET", "/api/topics/olga-inbox/access-tokens", None),
        ("GET", "/api/keys", None),
        (
            "POST",
            "/api/keys",
            Some(json!({"name": "x", "expires_at": null})),
        ),
        ("GET", "/api/me", None),
        ("GET", "/api/client-auth", None),
        (
            "PATCH",
            "/api/client-auth",
            Some(json!({"security_mode": false})),
        ),
        ("POST", "/api/client-auth/signing-key", Some(json!({}))),
        (
            "PUT",
            "/api/client-auth/allowed-origins",
            Some(json!({"origins": ["https://evil.example"]})),
        ),
    ];
    let dev = Client::dev(&t.client_key, "visitor-9");
    for (mode, client) in [("secure mode", &signed), ("development mode", &dev)] {
        if client.user_id.is_some() {
            set_security_mode(&server, &t.account.jwt(), false).await;
        }
        // The credentials are valid: they read.
        client_open(
            &server,
            Transport::Sse,
            "olga-inbox",
            client,
            Via::Header,
            None,
        )
        .await;
        for (method, path, body) in &attempts {
            let got = client_call(&server, method, path, client, body.as_ref()).await;
            assert_error(&got, 403, FORBIDDEN, &format!("{mode}: {method} {path}"));
        }
        let query = format!("/olga-inbox?{}", client.query());
        let (status, _, body) = server.request("POST", &query, &[], "by query").await;
        assert_eq!(
            (status, detail(&common::parse_json(&body, "publish"))),
            (403, FORBIDDEN),
            "{mode}: publish with query credentials"
        );
    }
    set_security_mode(&server, &t.account.jwt(), true).await;

    // Nothing was published, created or changed.
    for topic in ["olga-inbox", "olga-pub"] {
        let history = get(
            &server,
            &format!("/api/topics/{topic}/messages?since=all"),
            &t.owner(),
        )
        .await;
        assert_eq!(history, (200, json!([])), "{topic}");
    }
    for (topic, visibility) in [("olga-inbox", "private"), ("olga-pub", "public")] {
        let got = get(&server, &format!("/api/topics/{topic}"), &t.owner()).await;
        assert_status(&got, 200, topic);
        assert_eq!(got.1["visibility"], visibility, "{topic}");
    }
    for topic in ["olga-new", "olga-made"] {
        let got = get(&server, &format!("/api/topics/{topic}"), &t.owner()).await;
        assert_status(&got, 404, &format!("{topic} was not created"));
    }
    assert!(list_tokens(&server, &t.owner(), "olga-inbox")
        .await
        .is_empty());
    assert_eq!(list_keys(&server, &t.owner()).await.len(), 1);
    assert_eq!(settings(&server, &t.owner()).await, before);
}

#[actix_rt::test]
async fn allowed_origins_refuse_other_origins_on_sse_websocket_and_preflight() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "petra").await;
    private_topic(&server, &t, "petra-inbox").await;
    let client = t.client("user-7", &["petra-inbox"]);
    let dev = Client::dev(&t.client_key, "visitor-10");
    let sse_path = format!("/petra-inbox/sse?{}", client.query());
    let evil = "https://evil.example";

    // No list yet: any origin, or none, may use the client key.
    client_open(
        &server,
        Transport::Sse,
        "petra-inbox",
        &client,
        Via::Header,
        Some(evil),
    )
    .await;
    client_open(
        &server,
        Transport::Ws,
        "petra-inbox",
        &client,
        Via::Query,
        Some(evil),
    )
    .await;
    client_open(
        &server,
        Transport::Sse,
        "petra-inbox",
        &client,
        Via::Query,
        None,
    )
    .await;

    set_origins(
        &server,
        &t.account.jwt(),
        &["https://app.example.com", "http://localhost:3000"],
    )
    .await;
    for origin in [
        evil,
        "https://app.example.com:8443",
        "http://app.example.com",
        "https://app.example.com.evil.example",
        "http://localhost:3001",
        "null",
    ] {
        for (transport, via) in [
            (Transport::Sse, Via::Header),
            (Transport::Sse, Via::Query),
            (Transport::Ws, Via::Query),
            (Transport::Ws, Via::Header),
        ] {
            let got = client_refused(
                &server,
                transport,
                "petra-inbox",
                &client,
                via,
                Some(origin),
            )
            .await;
            assert_error(
                &got,
                403,
                ORIGIN_NOT_ALLOWED,
                &format!("{transport:?} via {via:?} from {origin}"),
            );
        }
        let (path, owned) = client_request_parts(
            "/api/topics/petra-inbox/messages",
            &client,
            Via::Header,
            Some(origin),
        );
        let (status, _, body) = server.request("GET", &path, &header_refs(&owned), "").await;
        let got = (status, common::parse_json(&body, "history"));
        assert_error(
            &got,
            403,
            ORIGIN_NOT_ALLOWED,
            &format!("history from {origin}"),
        );
        let (status, headers, body) = preflight(&server, &sse_path, origin).await;
        assert_eq!(
            (status, detail(&body)),
            (403, ORIGIN_NOT_ALLOWED),
            "preflight from {origin}"
        );
        assert!(
            headers.get("Access-Control-Allow-Origin").is_none(),
            "refused preflight from {origin} allows it: {headers:?}"
        );
    }

    // Requests with client credentials must carry a listed Origin.
    assert_subscribe_refused(
        &server,
        "petra-inbox",
        &client,
        None,
        (403, ORIGIN_NOT_ALLOWED),
        "no Origin",
    )
    .await;
    // The list holds before the user key or id is looked at, in both modes.
    set_security_mode(&server, &t.account.jwt(), false).await;
    assert_subscribe_refused(
        &server,
        "petra-inbox",
        &dev,
        Some(evil),
        (403, ORIGIN_NOT_ALLOWED),
        "user id from another origin",
    )
    .await;
    // Other credentials are not bound by the account's list.
    let mut owner_sub = subscribe_with(
        &server,
        Transport::Sse,
        "/petra-inbox/sse",
        &[("X-API-Key", t.account.api_key.as_str()), ("Origin", evil)],
    )
    .await
    .unwrap_or_else(|e| panic!("the owner's API key from another origin: {e:?}"));
    owner_sub
        .assert_delivers(&server, "petra-inbox", &t.owner(), "owner")
        .await;
}

#[actix_rt::test]
async fn a_listed_origin_is_allowed_with_the_cors_headers() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "quinn").await;
    private_topic(&server, &t, "quinn-inbox").await;
    let client = t.client("user-8", &["quinn-inbox"]);
    set_origins(
        &server,
        &t.account.jwt(),
        &["https://app.example.com/", "http://localhost:3000"],
    )
    .await;

    let mut subs = Vec::new();
    for origin in ["https://app.example.com", "http://localhost:3000"] {
        for (path, transport) in [
            (format!("/quinn-inbox/sse?{}", client.query()), "sse"),
            (format!("/quinn-inbox/ws?{}", client.query()), "ws"),
        ] {
            let (status, headers, _) = preflight(&server, &path, origin).await;
            assert_eq!(
                status, 204,
                "{transport} preflight from {origin}: {headers:?}"
            );
            assert_cors_allowed(&headers, origin, &format!("{transport} preflight"));
            assert!(
                lists(&headers, "Access-Control-Allow-Methods", "GET"),
                "{headers:?}"
            );
            for name in ["X-Client-Key", "X-User-Key", "X-User-Id"] {
                assert!(
                    lists(&headers, "Access-Control-Allow-Headers", name),
                    "preflight does not allow {name}: {headers:?}"
                );
            }
        }

        let (path, owned) =
            client_request_parts("/quinn-inbox/sse", &client, Via::Header, Some(origin));
        let (status, headers) = head(&server, "GET", &path, &header_refs(&owned)).await;
        assert_eq!(status, 200, "SSE from {origin}: {headers:?}");
        assert_cors_allowed(&headers, origin, "SSE response");
        let history = client_request_parts(
            "/api/topics/quinn-inbox/messages",
            &client,
            Via::Query,
            Some(origin),
        );
        let (status, headers) = head(&server, "GET", &history.0, &header_refs(&history.1)).await;
        assert_eq!(status, 200, "history from {origin}: {headers:?}");
        assert_cors_allowed(&headers, origin, "history response");

        for (transport, via) in [(Transport::Sse, Via::Header), (Transport::Ws, Via::Query)] {
            subs.push(
                client_open(
                    &server,
                    transport,
                    "quinn-inbox",
                    &client,
                    via,
                    Some(origin),
                )
                .await,
            );
        }
    }
    assert_all_receive(
        &server,
        "quinn-inbox",
        &t.owner(),
        "to allowed origins",
        &mut subs,
    )
    .await;
}

#[actix_rt::test]
async fn changing_the_allowed_origins_applies_to_live_and_new_subscriptions_at_once() {
    let server = TestServer::without_limits();
    let t = tenant(&server, "rosa").await;
    private_topic(&server, &t, "rosa-inbox").await;
    let client = t.client("user-9", &["rosa-inbox"]);
    let (first, second) = ("https://one.example.com", "https://two.example.com");
    set_origins(&server, &t.account.jwt(), &[first, second]).await;
    let mut subs = vec![
        client_open(
            &server,
            Transport::Sse,
            "rosa-inbox",
            &client,
            Via::Header,
            Some(first),
        )
        .await,
        client_open(
            &server,
            Transport::Ws,
            "rosa-inbox",
            &client,
            Via::Query,
            Some(first),
        )
        .await,
    ];

    set_origins(&server, &t.account.jwt(), &[second]).await;
    let changed_at = Instant::now();
    assert_all_closed(&mut subs, changed_at, "after the origin list changed").await;
    assert_subscribe_refused(
        &server,
        "rosa-inbox",
        &client,
        Some(first),
        (403, ORIGIN_NOT_ALLOWED),
        "an origin taken off the list",
    )
    .await;
    let mut again = client_open(
        &server,
        Transport::Sse,
        "rosa-inbox",
        &client,
        Via::Header,
        Some(second),
    )
    .await;
    again
        .assert_delivers(&server, "rosa-inbox", &t.owner(), "still listed")
        .await;
}
