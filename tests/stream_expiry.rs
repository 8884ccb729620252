//! A live stream ends when the credential that opened it expires: an API key's or a
//! topic token's `expires_at`, an access JWT's `exp`, a browser user key's `exp`. On
//! every transport (SSE, JSON, WebSocket, raw) the stream delivers what is published
//! before, then gets a `close` event `Token has expired` within a second of the
//! expiry, and ends.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use common::{LineStream, TestServer};
use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// How soon after its credential's expiry a stream must be closed.
const CLOSE_WITHIN: f64 = 1.0;
/// Credentials made here expire this many seconds ahead (counted in whole seconds, so
/// 2–3 s from now).
const EXPIRES_IN: i64 = 3;

/// A server whose access JWTs live [`EXPIRES_IN`] seconds, with an account that owns
/// a private topic: `(server, owner, topic)`.
async fn private_topic() -> (TestServer, Account, String) {
    let server = TestServer::unlimited(
        "",
        &format!("[auth]\naccess_token_ttl = \"{EXPIRES_IN}s\"\n"),
    );
    let owner = register(&server, &common::unique_topic("owner").replace('-', "_")).await;
    let topic = common::unique_topic("expiring");
    create_topic(&server, &owner.key(), &topic, "private").await;
    (server, owner, topic)
}

/// Unix time now, with its fraction.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// One open stream, of any transport.
enum Stream {
    Subscriber(Subscriber),
    /// Raw streams carry no event names: every event but a message is an empty line.
    Raw(LineStream),
}

impl Stream {
    /// Opens `/{topic}/{transport}?{credential}` and waits for its `open` event.
    async fn open(server: &TestServer, topic: &str, transport: &str, credential: &str) -> Stream {
        let path = format!("/{topic}/{transport}?{credential}");
        let live = match transport {
            "sse" => Transport::Sse,
            "json" => Transport::Json,
            "ws" => Transport::Ws,
            _ => {
                let mut lines = LineStream::connect(&server.url(&path), &[]).await;
                assert_eq!(lines.status, 200, "GET {path}");
                let open = lines.next_line(WAIT).await;
                assert_eq!(open.as_deref(), Some(""), "{path}: no open line");
                return Stream::Raw(lines);
            }
        };
        match subscribe_with(server, live, &path, &[]).await {
            Ok(live) => Stream::Subscriber(live),
            Err((status, body)) => panic!("GET {path}: {status} {body}"),
        }
    }

    /// Waits for `text`, then for the stream to close: when it closed (unix time) and
    /// the close reason (`None` on raw streams, whose close event is an empty line).
    async fn message_then_close(mut self, text: &str, what: &str) -> (f64, Option<String>) {
        let wait = Duration::from_secs(EXPIRES_IN as u64 + 3);
        match &mut self {
            Stream::Subscriber(live) => {
                let message = live
                    .next_message(WAIT)
                    .await
                    .unwrap_or_else(|| panic!("{what}: message not delivered"));
                assert_eq!(message["message"], text, "{what}: {message}");
                let reason = live.expect_closed(wait, what).await;
                (now(), Some(reason))
            }
            Stream::Raw(lines) => {
                let line = lines.next_line(WAIT).await;
                assert_eq!(line.as_deref(), Some(text), "{what}: message not delivered");
                let rest = lines
                    .lines_until_eof(wait)
                    .await
                    .unwrap_or_else(|| panic!("{what}: the stream did not end"));
                let ended = now();
                assert!(
                    rest.iter().all(String::is_empty),
                    "{what}: only empty lines (the close event) follow: {rest:?}"
                );
                (ended, None)
            }
        }
    }
}

/// Opens a stream on every transport with `credential` (a query string), publishes
/// before `expires_at` (unix seconds), and checks that each stream gets the message,
/// then closes with `Token has expired` within [`CLOSE_WITHIN`] of the expiry.
async fn every_stream_ends_at_expiry(
    server: &TestServer,
    owner: &Account,
    topic: &str,
    credential: &str,
    expires_at: i64,
    what: &str,
) {
    let transports = ["sse", "json", "ws", "raw"];
    let streams = join_all(
        transports
            .iter()
            .map(|t| Stream::open(server, topic, t, credential)),
    )
    .await;
    let text = format!("before the {what} expires");
    let got = publish_as(server, topic, &owner.key(), &text).await;
    assert_status(&got, 200, "publish");
    assert!(
        now() < expires_at as f64,
        "{what}: setting up took past the expiry; the machine is too slow for this test"
    );
    let text = text.as_str();
    let closes = join_all(
        streams
            .into_iter()
            .zip(transports)
            .map(|(stream, t)| async move {
                let what = format!("{what} on {t}");
                let (closed, reason) = stream.message_then_close(text, &what).await;
                (what, closed, reason)
            }),
    )
    .await;
    for (what, closed, reason) in closes {
        let late = closed - expires_at as f64;
        assert!(
            (-0.05..=CLOSE_WITHIN).contains(&late),
            "{what}: closed {late:.2} s after the expiry"
        );
        if let Some(reason) = reason {
            assert_eq!(reason, EXPIRED, "{what}");
        }
    }
    // A new request with the credential is refused the same way (a JWT counts as
    // expired once its `exp` second has passed).
    let path = format!("/{topic}/json?poll=1&{credential}");
    eventually(
        Duration::from_secs(2),
        &format!("{what}: a new request is refused as expired"),
        || async { get(server, &path, &Cred::None).await == (401, json!({ "detail": EXPIRED })) },
    )
    .await;
}

#[actix_rt::test]
async fn an_api_key_that_expires_ends_its_streams() {
    let (server, owner, topic) = private_topic().await;
    let expires_at = common::now_unix() + EXPIRES_IN;
    let key = create_key(&server, &owner.key(), "short", Some(&rfc3339(expires_at))).await;
    let key = key["key"].as_str().expect("key secret");
    let credential = format!("api_key={key}");
    every_stream_ends_at_expiry(&server, &owner, &topic, &credential, expires_at, "API key").await;
}

#[actix_rt::test]
async fn a_stream_ends_when_the_first_of_its_credentials_expires() {
    let (server, owner, topic) = private_topic().await;
    let expires_at = common::now_unix() + EXPIRES_IN;
    let key = create_key(&server, &owner.key(), "short", Some(&rfc3339(expires_at))).await;
    let key = key["key"].as_str().expect("key secret");
    // The owner's first key, which never expires, decides who asks; the second one
    // presented expires.
    let credential = format!("api_key={}&token={key}", owner.api_key);
    let what = "second of two API keys";
    every_stream_ends_at_expiry(&server, &owner, &topic, &credential, expires_at, what).await;
}

#[actix_rt::test]
async fn a_topic_token_that_expires_ends_its_streams() {
    let (server, owner, topic) = private_topic().await;
    let expires_at = common::now_unix() + EXPIRES_IN;
    let body = json!({"name": "short", "access_level": "read", "expires_at": rfc3339(expires_at)});
    let token = create_token(&server, &owner.key(), &topic, &body).await;
    let credential = format!("token={}", token["token"].as_str().expect("token secret"));
    every_stream_ends_at_expiry(
        &server,
        &owner,
        &topic,
        &credential,
        expires_at,
        "topic token",
    )
    .await;
}

#[actix_rt::test]
async fn an_access_token_that_expires_ends_its_streams() {
    let (server, owner, topic) = private_topic().await;
    let got = login(&server, &owner.email, &owner.password).await;
    assert_status(&got, 200, "login");
    let jwt = got.1["access_token"].as_str().expect("access token");
    let expires_at = claim_exp(jwt);
    let credential = format!("token={jwt}");
    every_stream_ends_at_expiry(
        &server,
        &owner,
        &topic,
        &credential,
        expires_at,
        "access token",
    )
    .await;
}

#[actix_rt::test]
async fn a_user_key_that_expires_ends_its_streams() {
    let (server, owner, topic) = private_topic().await;
    let got = get(&server, "/api/client-auth", &owner.key()).await;
    assert_status(&got, 200, "client settings");
    let client_key = got.1["client_key"]
        .as_str()
        .expect("client key")
        .to_string();
    let got = post(
        &server,
        "/api/client-auth/signing-key",
        &owner.key(),
        &json!({}),
    )
    .await;
    assert_status(&got, 201, "signing key");
    let pem = got.1["private_key_pem"].as_str().expect("private key");
    let expires_at = common::now_unix() + EXPIRES_IN;
    let claims = json!({"sub": "reader", "exp": expires_at, "topics": [topic]});
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA private key");
    let user_key =
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("sign");
    let credential = format!("client_key={client_key}&user_key={user_key}");
    every_stream_ends_at_expiry(&server, &owner, &topic, &credential, expires_at, "user key").await;
}

/// The `exp` claim of a JWT (read, not verified).
fn claim_exp(jwt: &str) -> i64 {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
            .expect("JSON claims");
    claims["exp"].as_i64().expect("exp claim")
}
