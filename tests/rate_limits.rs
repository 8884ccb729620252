//! Rate limits: requests without a credential per client IP, and publishes per account
//! by tier (topic tokens charge the topic owner), with their 429 answer and headers.

mod common;

use std::time::{Duration, Instant};

use common::{admin, create_topic, eventually, get, header_refs, register, token, Account, Cred};
use common::{unique_topic, Reply, TestServer, RATE_LIMITED};

/// Anonymous requests unlimited, accounts on the default tier (`free`) unless `extra`
/// (more `[limits]` keys) says otherwise.
fn publish_limits_server(extra: &str) -> TestServer {
    TestServer::start(&format!("[limits]\nanonymous_per_minute = 0\n{extra}\n"))
}

impl Reply {
    /// Asserts the 429 answer: JSON detail, `Retry-After` ≥ 1 s, the limit, nothing left.
    #[track_caller]
    fn assert_rate_limited(&self, limit: u64) {
        assert_eq!(self.status, 429, "{}: body {}", self.path, self.body);
        assert_eq!(
            self.body,
            serde_json::json!({ "detail": RATE_LIMITED }),
            "{}",
            self.path
        );
        let content_type = self.header("Content-Type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{}: content type {content_type:?}",
            self.path
        );
        let retry_after = self.number("Retry-After");
        assert!(
            (1..=60).contains(&retry_after),
            "{}: Retry-After {retry_after}",
            self.path
        );
        assert_eq!(self.number("X-RateLimit-Limit"), limit, "{}", self.path);
        assert_eq!(self.number("X-RateLimit-Remaining"), 0, "{}", self.path);
    }
}

async fn anonymous_get(server: &TestServer, path: &str) -> Reply {
    server.reply("GET", path, &[], "").await
}

/// `POST /{topic}` with the credential's header form.
async fn publish(server: &TestServer, topic: &str, cred: &Cred, text: &str) -> Reply {
    let owned = cred.headers();
    let path = format!("/{topic}");
    server
        .reply("POST", &path, &header_refs(&owned), text.to_string())
        .await
}

/// Publishes once and asserts 200 with the quota headers.
#[track_caller]
fn assert_allowed(reply: &Reply, limit: u64, remaining: u64) {
    assert_eq!(reply.status, 200, "{}: body {}", reply.path, reply.body);
    assert_eq!(
        (
            reply.number("X-RateLimit-Limit"),
            reply.number("X-RateLimit-Remaining")
        ),
        (limit, remaining),
        "{}: quota headers",
        reply.path
    );
}

/// Publishes as `cred` to `topic` until the first 429 (at most `max` tries): how many
/// were allowed, and the refusal.
async fn publish_until_refused(
    server: &TestServer,
    topic: &str,
    cred: &Cred,
    max: usize,
) -> (usize, Reply) {
    for allowed in 0..max {
        let reply = publish(server, topic, cred, &format!("message {allowed}")).await;
        if reply.status != 200 {
            return (allowed, reply);
        }
    }
    panic!("{max} publishes to {topic} were all allowed");
}

// ---------------------------------------------------------------------------
// Requests without a credential
// ---------------------------------------------------------------------------

#[actix_rt::test]
async fn the_default_anonymous_quota_is_60_per_minute_then_429_with_headers() {
    let server = TestServer::start("");
    let poll = format!("/{}/json?poll=1", unique_topic("anon60"));
    let started = Instant::now();
    let mut allowed = 0;
    let refusal = loop {
        let reply = anonymous_get(&server, &poll).await;
        if reply.status != 200 {
            break reply;
        }
        allowed += 1;
        assert!(allowed <= 80, "80 anonymous requests were all allowed");
    };
    let elapsed = started.elapsed();
    refusal.assert_rate_limited(60);
    // 60 per minute refills one request a second: more are allowed only if it took that long.
    let refilled = elapsed.as_secs() as usize + 1;
    if elapsed < Duration::from_secs(1) {
        assert_eq!(allowed, 60, "allowed before the first 429");
    } else {
        assert!(
            (60..=60 + refilled).contains(&allowed),
            "allowed {allowed} in {elapsed:?}"
        );
    }
}

#[actix_rt::test]
async fn the_anonymous_quota_counts_every_path_and_says_when_to_retry() {
    let server = TestServer::start("[limits]\nanonymous_per_minute = 5\n");
    let poll = format!("/{}/json?poll=1", unique_topic("anon"));
    let history = format!("/api/topics/{}/messages", unique_topic("anon"));
    for path in [
        history.as_str(),
        poll.as_str(),
        history.as_str(),
        poll.as_str(),
        history.as_str(),
    ] {
        let reply = anonymous_get(&server, path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let refused = anonymous_get(&server, &poll).await;
    refused.assert_rate_limited(5);
    // 5 per minute refills one request every 12 s.
    let retry_after = refused.number("Retry-After");
    assert!((1..=12).contains(&retry_after), "Retry-After {retry_after}");
    anonymous_get(&server, &history)
        .await
        .assert_rate_limited(5);
    anonymous_get(&server, "/no/such/path/here")
        .await
        .assert_rate_limited(5);
}

#[actix_rt::test]
async fn a_request_with_a_credential_is_not_blocked_by_the_anonymous_quota() {
    let server = TestServer::start("[limits]\nanonymous_per_minute = 3\n");
    // Registering is itself an anonymous request (1 of 3).
    let account = register(&server, "anon_keyed").await;
    let key = account.api_key.clone();
    let poll = format!("/{}/json?poll=1", unique_topic("anon3"));
    for _ in 0..2 {
        assert_eq!(anonymous_get(&server, &poll).await.status, 200);
    }
    anonymous_get(&server, &poll).await.assert_rate_limited(3);
    for path in [poll.as_str(), "/api/me"] {
        let reply = server.reply("GET", path, &[("X-API-Key", &key)], "").await;
        assert_eq!(reply.status, 200, "{path} with an API key: {}", reply.body);
    }
    let topic = unique_topic("keyed");
    let reply = publish(&server, &topic, &account.key(), "hello").await;
    assert_eq!(reply.status, 200, "publish with an API key: {}", reply.body);
    anonymous_get(&server, &poll).await.assert_rate_limited(3);
}

#[actix_rt::test]
async fn an_anonymous_quota_of_0_is_unlimited() {
    let server = TestServer::start("[limits]\nanonymous_per_minute = 0\n");
    let topic = unique_topic("unlimited-anon");
    for i in 0..100 {
        let path = if i % 2 == 0 {
            format!("/api/topics/{topic}/messages")
        } else {
            format!("/{topic}/json?poll=1")
        };
        let reply = anonymous_get(&server, &path).await;
        assert_eq!(reply.status, 200, "request {i} {path}: {}", reply.body);
    }
}

// ---------------------------------------------------------------------------
// Publishing, per account by tier
// ---------------------------------------------------------------------------

#[actix_rt::test]
async fn a_free_account_publishes_10_per_minute_with_decreasing_remaining() {
    let server = publish_limits_server("");
    let account = register(&server, "free_pub").await;
    let topic = unique_topic("free");
    let left =
        || async { get(&server, "/api/me", &account.jwt()).await.1["publish_remaining"].clone() };
    assert_eq!(left().await, 10, "all of the minute is left");
    assert_eq!(left().await, 10, "telling what is left charges nothing");
    for i in 0..10u64 {
        let reply = publish(&server, &topic, &account.key(), &format!("m{i}")).await;
        assert_allowed(&reply, 10, 9 - i);
        assert_eq!(reply.body["message"], format!("m{i}"), "{}", reply.body);
    }
    assert_eq!(left().await, 0, "nothing left after the whole quota");
    let refused = publish(&server, &topic, &account.key(), "one too many").await;
    refused.assert_rate_limited(10);
    // 10 per minute refills one every 6 s.
    let retry_after = refused.number("Retry-After");
    assert!((1..=6).contains(&retry_after), "Retry-After {retry_after}");
    // The refused message was not stored.
    let history = server.history(&topic, "").await;
    assert_eq!(history.len(), 10, "stored messages");
    // Another free account has its own quota.
    let other = register(&server, "free_other").await;
    let reply = publish(&server, &topic, &other.key(), "from another account").await;
    assert_allowed(&reply, 10, 9);
}

#[actix_rt::test]
async fn the_publish_quota_is_per_account_across_topics() {
    let server = publish_limits_server("");
    let account = register(&server, "two_topics").await;
    let (a, b) = (unique_topic("first"), unique_topic("second"));
    for i in 0..10u64 {
        let topic = if i % 2 == 0 { &a } else { &b };
        let reply = publish(&server, topic, &account.key(), &format!("m{i}")).await;
        assert_allowed(&reply, 10, 9 - i);
    }
    publish(&server, &a, &account.key(), "over")
        .await
        .assert_rate_limited(10);
    publish(&server, &b, &account.key(), "over")
        .await
        .assert_rate_limited(10);
    // The JWT is the same account: same quota.
    publish(&server, &b, &account.jwt(), "over")
        .await
        .assert_rate_limited(10);
}

#[actix_rt::test]
async fn a_team_account_set_by_the_cli_gets_100_without_a_restart() {
    let server = publish_limits_server("");
    let account: Account = register(&server, "team_pub").await;
    let topic = unique_topic("team");
    let (allowed, refused) = publish_until_refused(&server, &topic, &account.key(), 20).await;
    assert_eq!(allowed, 10, "free quota before the tier change");
    refused.assert_rate_limited(10);

    admin(&server, &["tier", &account.email, "team"]);
    eventually(
        Duration::from_secs(3),
        "the running server sees the tier change",
        || async {
            let (_, me) = get(&server, "/api/me", &account.key()).await;
            me["tier"] == "team"
        },
    )
    .await;

    let started = Instant::now();
    let first = publish(&server, &topic, &account.key(), "as team").await;
    assert_allowed(&first, 100, 99);
    let (more, refused) = publish_until_refused(&server, &topic, &account.key(), 150).await;
    let elapsed = started.elapsed();
    refused.assert_rate_limited(100);
    // 100 per minute refills one every 0.6 s while the burst is being spent.
    let refilled = (elapsed.as_millis() / 600) as usize + 1;
    let allowed = more + 1;
    assert!(
        (100..=100 + refilled).contains(&allowed),
        "team account allowed {allowed} in {elapsed:?}"
    );
}

#[actix_rt::test]
async fn topic_token_publishes_drain_the_topic_owners_quota() {
    let server = publish_limits_server("");
    let owner = register(&server, "token_owner").await;
    let topic = unique_topic("private");
    create_topic(&server, &owner.jwt(), &topic, "private").await;
    let (_, tk) = token(&server, &owner.jwt(), &topic, "write").await;
    assert!(matches!(&tk, Cred::TopicToken(t) if t.starts_with("tk_")));

    for i in 0..6u64 {
        let reply = publish(&server, &topic, &owner.key(), &format!("owner {i}")).await;
        assert_allowed(&reply, 10, 9 - i);
    }
    for i in 0..4u64 {
        let reply = publish(&server, &topic, &tk, &format!("token {i}")).await;
        assert_allowed(&reply, 10, 3 - i);
    }
    publish(&server, &topic, &tk, "token over")
        .await
        .assert_rate_limited(10);
    publish(&server, &topic, &owner.key(), "owner over")
        .await
        .assert_rate_limited(10);

    // Another account's quota is untouched by the token's publishes.
    let other = register(&server, "token_bystander").await;
    let reply = publish(&server, &unique_topic("elsewhere"), &other.key(), "hi").await;
    assert_allowed(&reply, 10, 9);
}

#[actix_rt::test]
async fn an_unlimited_account_is_never_limited_and_gets_no_quota_headers() {
    let server = publish_limits_server("default_tier = \"unlimited\"");
    let account = register(&server, "unlimited_pub").await;
    let topic = unique_topic("unlimited");
    for i in 0..40 {
        let reply = publish(&server, &topic, &account.key(), &format!("m{i}")).await;
        assert_eq!(reply.status, 200, "publish {i}: {}", reply.body);
        for name in ["X-RateLimit-Limit", "X-RateLimit-Remaining", "Retry-After"] {
            assert_eq!(reply.header(name), None, "publish {i}: {name}");
        }
    }
}

#[actix_rt::test]
async fn an_account_moved_to_unlimited_by_the_cli_loses_its_limit() {
    let server = publish_limits_server("");
    let account = register(&server, "to_unlimited").await;
    let topic = unique_topic("to-unlimited");
    let (allowed, refused) = publish_until_refused(&server, &topic, &account.key(), 20).await;
    assert_eq!(allowed, 10);
    refused.assert_rate_limited(10);
    admin(&server, &["tier", &account.email, "unlimited"]);
    eventually(
        Duration::from_secs(3),
        "the tier change is seen",
        || async {
            let (_, me) = get(&server, "/api/me", &account.key()).await;
            me["tier"] == "unlimited"
        },
    )
    .await;
    for i in 0..15 {
        let reply = publish(&server, &topic, &account.key(), &format!("m{i}")).await;
        assert_eq!(reply.status, 200, "publish {i}: {}", reply.body);
        assert_eq!(reply.header("X-RateLimit-Limit"), None, "publish {i}");
    }
}
