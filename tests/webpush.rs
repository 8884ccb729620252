//! Web Push (API.md §11): subscriptions, and pushes received by a push endpoint of
//! the test's own, which decrypts them (RFC 8291) and checks their VAPID signature
//! (RFC 8292); retries, deletion on 410, a restart in between, the endpoint rules.

mod common;

use std::time::{Duration, Instant};

use common::webpush::{check_vapid, BrowserKeys, PushEndpoint, Received, HANG};
use common::*;
use serde_json::{json, Value};

/// Lets the push endpoint on 127.0.0.1 be used.
const ALLOW_PRIVATE: &str = "[webhooks]\nallow_private = true\n";

fn private_server() -> TestServer {
    TestServer::unlimited("", ALLOW_PRIVATE)
}

async fn vapid_key(server: &TestServer) -> String {
    let (status, body) = server.get_json("/api/webpush").await;
    assert_eq!(status, 200, "{body}");
    body["public_key"].as_str().expect("public_key").to_string()
}

/// `POST /api/webpush/subscriptions` as it was answered.
async fn subscribe_raw(
    server: &TestServer,
    cred: &Cred,
    endpoint: &str,
    keys: &BrowserKeys,
    topics: &[&str],
) -> (u16, Value) {
    let body = json!({"endpoint": endpoint, "keys": keys.json(), "topics": topics});
    post(server, "/api/webpush/subscriptions", cred, &body).await
}

/// A push subscription of `cred`'s account at `/push/{path}` of `endpoint`, asserting 201.
async fn subscribe_at(
    server: &TestServer,
    cred: &Cred,
    endpoint: &PushEndpoint,
    path: &str,
    keys: &BrowserKeys,
    topic: &str,
) {
    let got = subscribe_raw(server, cred, &endpoint.url(path), keys, &[topic]).await;
    assert_status(&got, 201, "subscribe");
}

/// An account with a topic and a push subscription for it at `endpoint`.
async fn subscribed(server: &TestServer, endpoint: &str, keys: &BrowserKeys) -> (Account, String) {
    let account = register(server, &unique_topic("pusher").replace('-', "_")).await;
    let topic = unique_topic("pushed");
    create_topic(server, &account.key(), &topic, "private").await;
    let got = subscribe_raw(server, &account.jwt(), endpoint, keys, &[&topic]).await;
    assert_status(&got, 201, "subscribe");
    (account, topic)
}

/// A server that allows private endpoints, a push endpoint answering `answers` first,
/// and an account subscribed there (at `/push/{path}`) to a topic of its own.
async fn setup(
    path: &str,
    answers: &[u16],
) -> (TestServer, PushEndpoint, BrowserKeys, Account, String) {
    let server = private_server();
    let endpoint = PushEndpoint::start().await;
    endpoint.answer(answers);
    let keys = BrowserKeys::new();
    let (account, topic) = subscribed(&server, &endpoint.url(path), &keys).await;
    (server, endpoint, keys, account, topic)
}

async fn pushes(endpoint: &PushEndpoint, count: usize) -> Vec<Received> {
    eventually(Duration::from_secs(10), "pushes received", || async {
        let got = endpoint.received();
        if got.len() >= count {
            Ok(got)
        } else {
            Err(format!("{} of {count}", got.len()))
        }
    })
    .await
}

async fn publish_priority(
    server: &TestServer,
    cred: &Cred,
    topic: &str,
    text: &str,
    p: u8,
) -> Value {
    let body = json!({"topic": topic, "message": text, "title": "Hello", "priority": p});
    let got = post(server, "/", cred, &body).await;
    assert_status(&got, 200, "publish");
    got.1
}

#[actix_rt::test]
async fn pushes_are_encrypted_signed_and_carry_ttl_and_urgency() {
    let (server, endpoint, keys, account, topic) = setup("a", &[]).await;
    let url = endpoint.url("a");
    let key = vapid_key(&server).await;

    let listed = get(&server, "/api/webpush/subscriptions", &account.key()).await;
    assert_status(&listed, 200, "list");
    let list = listed.1.as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["endpoint"], url.as_str());
    assert_eq!(list[0]["topics"], json!([topic]));
    assert!(list[0]["id"].is_string() && list[0]["created_at"].is_string());

    let mut latencies = Vec::new();
    for (n, (priority, ttl, urgency)) in [
        (5, "86400", "high"),
        (3, "43200", "normal"),
        (1, "3600", "very-low"),
    ]
    .into_iter()
    .enumerate()
    {
        let sent = Instant::now();
        let published =
            publish_priority(&server, &account.key(), &topic, "<b>hi</b>", priority).await;
        let push = pushes(&endpoint, n + 1).await[n].clone();
        latencies.push(push.at - sent);
        assert_eq!(push.path, "/push/a");
        assert_eq!(
            keys.decrypt(&push),
            published,
            "the decrypted push is the message"
        );
        check_vapid(&push, &key, &format!("http://127.0.0.1:{}", endpoint.port));
        assert_eq!(push.headers["ttl"], ttl, "TTL for priority {priority}");
        assert_eq!(
            push.headers["urgency"], urgency,
            "Urgency for priority {priority}"
        );
    }
    println!("publish → push endpoint: {latencies:?}");
    // Another topic has no subscription: nothing more arrives with its message, and
    // the next one of the subscribed topic is the fourth push.
    publish_priority(&server, &account.key(), &unique_topic("unpushed"), "x", 3).await;
    publish_priority(&server, &account.key(), &topic, "last", 3).await;
    let all = pushes(&endpoint, 4).await;
    assert_eq!(keys.decrypt(&all[3])["message"], "last");
}

#[actix_rt::test]
async fn gone_subscription_is_deleted() {
    let (server, endpoint, _, account, topic) = setup("gone", &[410]).await;
    publish_priority(&server, &account.key(), &topic, "one", 3).await;
    pushes(&endpoint, 1).await;
    eventually(WAIT, "the subscription deleted", || async {
        let (_, list) = get(&server, "/api/webpush/subscriptions", &account.key()).await;
        list.as_array().is_some_and(Vec::is_empty)
    })
    .await;
}

#[actix_rt::test]
async fn server_errors_are_retried_and_delivered_once() {
    let (server, endpoint, keys, account, topic) = setup("retry", &[500, 503]).await;
    publish_priority(&server, &account.key(), &topic, "first", 3).await;
    let tries = pushes(&endpoint, 3).await;
    assert!(tries.iter().all(|p| keys.decrypt(p)["message"] == "first"));
    // The third try was accepted: the next push is a new message, not a fourth try.
    publish_priority(&server, &account.key(), &topic, "second", 3).await;
    let all = pushes(&endpoint, 4).await;
    assert_eq!(keys.decrypt(&all[3])["message"], "second");
    assert_eq!(endpoint.received().len(), 4);
}

#[actix_rt::test]
async fn a_push_accepted_before_a_restart_is_delivered_after_it() {
    let mut server = private_server();
    let endpoint = PushEndpoint::start().await;
    let port = endpoint.port;
    let keys = BrowserKeys::new();
    let (account, topic) = subscribed(&server, &endpoint.url("later"), &keys).await;
    let key = vapid_key(&server).await;
    endpoint.stop();
    let published = publish_priority(&server, &account.key(), &topic, "kept", 4).await;
    // Killed once the failed attempt is stored (a kill during an attempt only delays
    // the push by the attempt's lease, 15 s).
    eventually(WAIT, "a failed attempt", || async {
        server.log().contains("will retry")
    })
    .await;
    server.kill9();
    let endpoint = PushEndpoint::start_on(port).await;
    server.restart();
    let push = pushes(&endpoint, 1).await[0].clone();
    assert_eq!(keys.decrypt(&push), published);
    assert_eq!(
        vapid_key(&server).await,
        key,
        "the VAPID key survives a restart"
    );
    check_vapid(&push, &key, &format!("http://127.0.0.1:{port}"));
}

#[actix_rt::test]
async fn refusals() {
    let server = TestServer::without_limits();
    let keys = BrowserKeys::new();
    let owner = register(&server, "owner").await;
    let other = register(&server, "other").await;
    create_topic(&server, &owner.key(), "secret", "private").await;
    let ok = "https://push.example.net/x";
    let got = subscribe_raw(&server, &other.jwt(), ok, &keys, &["secret"]).await;
    assert_error(
        &got,
        403,
        "Insufficient permissions to access this topic",
        "a topic it may not read",
    );
    for url in [
        "http://127.0.0.1:9/push",
        "https://10.0.0.1/push",
        "https://127.0.0.1/push",
        "https://localhost/push",
        "ftp://x",
    ] {
        let got = subscribe_raw(&server, &owner.key(), url, &keys, &["secret"]).await;
        assert_error(&got, 400, "Push endpoint not allowed", url);
    }
    let got = subscribe_raw(&server, &Cred::None, ok, &keys, &["secret"]).await;
    assert_status(&got, 401, "no credential");
    let bad = json!({"endpoint": "https://8.8.8.8/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}, "topics": ["secret"]});
    let got = post(&server, "/api/webpush/subscriptions", &owner.key(), &bad).await;
    assert_status(&got, 422, "bad keys");

    // A public address is accepted; its subscription is the owner's alone. The same
    // endpoint again replaces it.
    let public = "https://8.8.8.8/x";
    let got = subscribe_raw(&server, &owner.key(), public, &keys, &["secret"]).await;
    assert_status(&got, 201, "a public endpoint");
    let got = subscribe_raw(&server, &owner.key(), public, &keys, &["secret", "more"]).await;
    assert_status(&got, 201, "the same endpoint again");
    assert_eq!(got.1["topics"], json!(["more", "secret"]));
    let (_, list) = get(&server, "/api/webpush/subscriptions", &owner.key()).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "replaced: {list}");
    let id = got.1["id"].as_str().unwrap().to_string();
    let path = format!("/api/webpush/subscriptions/{id}");
    assert_status(
        &delete(&server, &path, &other.key()).await,
        404,
        "someone else's",
    );
    assert_status(&delete(&server, &path, &owner.key()).await, 204, "delete");
    assert_error(
        &delete(&server, &path, &owner.key()).await,
        404,
        "Push subscription not found",
        "twice",
    );
}

#[actix_rt::test]
async fn a_push_refused_for_good_is_dropped_and_the_subscription_kept() {
    let (server, endpoint, keys, account, topic) = setup("big", &[413]).await;
    publish_priority(&server, &account.key(), &topic, "too big", 3).await;
    pushes(&endpoint, 1).await;
    publish_priority(&server, &account.key(), &topic, "next", 3).await;
    let all = pushes(&endpoint, 2).await;
    assert_eq!(keys.decrypt(&all[1])["message"], "next", "not retried");
    let (_, list) = get(&server, "/api/webpush/subscriptions", &account.key()).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "kept: {list}");
}

#[actix_rt::test]
async fn a_topic_made_private_is_pushed_to_its_owner_alone() {
    let server = private_server();
    let endpoint = PushEndpoint::start().await;
    let (owner_keys, reader_keys) = (BrowserKeys::new(), BrowserKeys::new());
    let (owner, topic) = subscribed(&server, &endpoint.url("owner"), &owner_keys).await;
    set_visibility(&server, &owner.key(), &topic, "public").await;
    let reader = register(&server, "reader").await;
    subscribe_at(
        &server,
        &reader.key(),
        &endpoint,
        "reader",
        &reader_keys,
        &topic,
    )
    .await;

    let to = |path: &str| {
        let keys = if path == "/push/owner" {
            &owner_keys
        } else {
            &reader_keys
        };
        endpoint
            .received()
            .iter()
            .filter(|p| p.path == path)
            .map(|p| keys.decrypt(p)["message"].as_str().unwrap().to_string())
            .collect::<Vec<String>>()
    };
    publish_priority(&server, &owner.key(), &topic, "public", 3).await;
    set_visibility(&server, &owner.key(), &topic, "private").await;
    publish_priority(&server, &owner.key(), &topic, "private", 3).await;
    set_visibility(&server, &owner.key(), &topic, "public").await;
    publish_priority(&server, &owner.key(), &topic, "public again", 3).await;
    pushes(&endpoint, 5).await;
    let mut owner_got = to("/push/owner");
    owner_got.sort();
    assert_eq!(owner_got, ["private", "public", "public again"]);
    let mut reader_got = to("/push/reader");
    reader_got.sort();
    assert_eq!(reader_got, ["public", "public again"], "no private message");
}

#[actix_rt::test]
async fn deleting_an_account_deletes_its_subscriptions_and_pushes() {
    let (server, endpoint, _, account, topic) = setup("deleted", &[]).await;
    endpoint.stop();
    // Queued and waiting: the endpoint is gone.
    publish_priority(&server, &account.key(), &topic, "waiting", 3).await;
    admin(&server, &["delete", &account.email]);
    // The server drops its credential caches within a second of the CLI's change.
    eventually(WAIT, "the account gone", || async {
        get(&server, "/api/webpush/subscriptions", &account.key())
            .await
            .0
            == 401
    })
    .await;
}

#[actix_rt::test]
async fn a_message_too_long_for_one_push_arrives_cut_short() {
    let (server, endpoint, keys, account, topic) = setup("long", &[]).await;
    let text = "ü".repeat(2000);
    publish_priority(&server, &account.key(), &topic, &text, 3).await;
    let push = pushes(&endpoint, 1).await[0].clone();
    assert!(
        push.body.len() <= 4096,
        "one record: {} bytes",
        push.body.len()
    );
    let got = keys.decrypt(&push);
    let cut = got["message"].as_str().unwrap();
    assert!(
        cut.ends_with('…') && text.starts_with(cut.trim_end_matches('…')),
        "{cut}"
    );
}

#[actix_rt::test]
async fn a_configured_vapid_key_signs_the_pushes() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let expected = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vapid");
    std::fs::write(
        &file,
        format!("{}\n", URL_SAFE_NO_PAD.encode(secret.to_bytes())),
    )
    .unwrap();
    let sections = format!("{ALLOW_PRIVATE}[webpush]\nvapid_private_key_file = {file:?}\n");
    let server = TestServer::unlimited("", &sections);
    assert_eq!(vapid_key(&server).await, expected);

    let endpoint = PushEndpoint::start().await;
    let keys = BrowserKeys::new();
    let (account, topic) = subscribed(&server, &endpoint.url("configured"), &keys).await;
    publish_priority(&server, &account.key(), &topic, "signed", 3).await;
    let push = pushes(&endpoint, 1).await[0].clone();
    check_vapid(
        &push,
        &expected,
        &format!("http://127.0.0.1:{}", endpoint.port),
    );
}

#[actix_rt::test]
async fn a_push_service_that_never_answers_holds_up_no_other_push() {
    let (server, endpoint, keys, account, topic) = setup("slow", &[HANG]).await;
    let other = unique_topic("other");
    create_topic(&server, &account.key(), &other, "private").await;
    subscribe_at(&server, &account.key(), &endpoint, "fast", &keys, &other).await;
    publish_priority(&server, &account.key(), &topic, "stuck", 3).await;
    pushes(&endpoint, 1).await;
    let sent = Instant::now();
    publish_priority(&server, &account.key(), &other, "through", 3).await;
    let all = pushes(&endpoint, 2).await;
    assert_eq!(all[1].path, "/push/fast");
    assert!(
        all[1].at - sent < Duration::from_secs(2),
        "{:?}",
        all[1].at - sent
    );
}
