//! What an account may create: topics (made with `POST /api/topics` or by a first
//! publish), API keys and topic tokens are limited per account by tier (403 `Limit
//! reached: …`), creations are rate-limited per account (429), and every list of them
//! is paged (`limit`, `cursor`, `X-Next-Cursor`, `Link`).

mod common;

use std::collections::HashSet;

use futures_util::future::join_all;
use serde_json::{json, Value};

use common::*;

/// `free` accounts may own 3 topics, 3 API keys (the one made at registration
/// included) and 2 topic tokens; `team` accounts 5, 5 and 4. No rate limit decides
/// these tests.
const SMALL_QUOTAS: &str = "[limits]
anonymous_per_minute = 0
creations_per_minute = 0
default_tier = \"free\"

[limits.tiers]
free = 0
team = 0

[limits.quotas.free]
topics = 3
api_keys = 3
topic_tokens = 2

[limits.quotas.team]
topics = 5
api_keys = 5
topic_tokens = 4
";

fn limit_reached(what: &str) -> String {
    format!("Limit reached: {what}")
}

async fn new_topic(server: &TestServer, cred: &Cred, name: &str) -> (u16, Value) {
    let body = json!({"name": name, "visibility": "private"});
    post(server, "/api/topics", cred, &body).await
}

async fn new_key(server: &TestServer, cred: &Cred) -> (u16, Value) {
    post(server, "/api/keys", cred, &json!({"name": "more"})).await
}

async fn new_token(server: &TestServer, cred: &Cred, topic: &str) -> (u16, Value) {
    let body = json!({"name": "t", "access_level": "read"});
    create_token_raw(server, cred, topic, &body).await
}

/// Any request as `cred`, with the answer's headers.
async fn send(server: &TestServer, method: &str, path: &str, cred: &Cred, body: &Value) -> Reply {
    let owned = cred.headers();
    let mut headers = header_refs(&owned);
    headers.push(("Content-Type", "application/json"));
    server.reply(method, path, &headers, body.to_string()).await
}

#[actix_rt::test]
async fn topics_stop_at_the_quota_and_a_deleted_one_frees_a_slot() {
    let server = TestServer::start(SMALL_QUOTAS);
    let amy = register(&server, "amy").await;
    for name in ["amy-1", "amy-2", "amy-3"] {
        assert_status(&new_topic(&server, &amy.jwt(), name).await, 201, name);
    }
    let refused = new_topic(&server, &amy.key(), "amy-4").await;
    assert_error(&refused, 403, &limit_reached("topics"), "a 4th topic");
    let published = publish_as(&server, "amy-5", &amy.key(), "hello").await;
    assert_error(
        &published,
        403,
        &limit_reached("topics"),
        "auto-create a 4th",
    );
    assert_status(
        &get(&server, "/api/topics/amy-5", &amy.jwt()).await,
        404,
        "a refused topic is not made",
    );
    let own = publish_as(&server, "amy-1", &amy.key(), "still fine").await;
    assert_status(&own, 200, "publishing to an own topic at the quota");
    // A taken name is a conflict, not a creation.
    let taken = new_topic(&server, &amy.jwt(), "amy-1").await;
    assert_eq!(taken.0, 409, "{}", taken.1);

    assert_status(
        &delete(&server, "/api/topics/amy-2", &amy.jwt()).await,
        204,
        "delete",
    );
    assert_status(
        &new_topic(&server, &amy.jwt(), "amy-4").await,
        201,
        "the freed slot",
    );
    let refused = new_topic(&server, &amy.jwt(), "amy-6").await;
    assert_error(&refused, 403, &limit_reached("topics"), "full again");

    // Another account has its own count.
    let bob = register(&server, "bob").await;
    assert_status(&new_topic(&server, &bob.jwt(), "bob-1").await, 201, "bob");
}

#[actix_rt::test]
async fn topics_made_by_publishing_count_against_the_quota() {
    let server = TestServer::start(SMALL_QUOTAS);
    let cid = register(&server, "cid").await;
    for name in ["cid-1", "cid-2", "cid-3"] {
        assert_status(&publish_as(&server, name, &cid.key(), "x").await, 200, name);
    }
    let refused = publish_as(&server, "cid-4", &cid.key(), "x").await;
    assert_error(
        &refused,
        403,
        &limit_reached("topics"),
        "a 4th by publishing",
    );
    let refused = new_topic(&server, &cid.jwt(), "cid-5").await;
    assert_error(&refused, 403, &limit_reached("topics"), "a 4th by POST");
    assert_status(
        &publish_as(&server, "cid-3", &cid.key(), "y").await,
        200,
        "publish to an existing topic",
    );
    let (_, mine) = get(&server, "/api/topics", &cid.jwt()).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(3), "{mine}");
}

#[actix_rt::test]
async fn another_tier_has_its_own_quotas() {
    let server = TestServer::start(SMALL_QUOTAS);
    let dee = register(&server, "dee").await;
    for name in ["dee-1", "dee-2", "dee-3"] {
        assert_status(&new_topic(&server, &dee.jwt(), name).await, 201, name);
    }
    assert_error(
        &new_topic(&server, &dee.jwt(), "dee-4").await,
        403,
        &limit_reached("topics"),
        "free quota",
    );
    admin(&server, &["tier", "dee@example.com", "team"]);
    // The running server sees the new tier within a second or so.
    eventually(WAIT, "the team quota applies", || async {
        new_topic(&server, &dee.jwt(), "dee-4").await.0 == 201
    })
    .await;
    assert_status(&new_topic(&server, &dee.jwt(), "dee-5").await, 201, "5th");
    assert_error(
        &new_topic(&server, &dee.jwt(), "dee-6").await,
        403,
        &limit_reached("topics"),
        "team quota",
    );
    for i in 0..4 {
        assert_status(
            &new_key(&server, &dee.jwt()).await,
            201,
            &format!("key {i}"),
        );
    }
    assert_error(
        &new_key(&server, &dee.jwt()).await,
        403,
        &limit_reached("api keys"),
        "team key quota",
    );
}

#[actix_rt::test]
async fn api_keys_stop_at_the_quota_and_regenerating_is_no_new_key() {
    let server = TestServer::start(SMALL_QUOTAS);
    let eve = register(&server, "eve").await;
    // The key made at registration is the first of three.
    let second = new_key(&server, &eve.jwt()).await;
    assert_status(&second, 201, "2nd key");
    assert_status(&new_key(&server, &eve.key()).await, 201, "3rd key");
    let refused = new_key(&server, &eve.jwt()).await;
    assert_error(&refused, 403, &limit_reached("api keys"), "a 4th key");

    let id = second.1["id"].as_str().unwrap();
    let regenerated = post(
        &server,
        &format!("/api/keys/{id}/regenerate"),
        &eve.jwt(),
        &json!({}),
    )
    .await;
    assert_status(&regenerated, 200, "regenerate at the quota");
    assert_status(
        &delete(&server, &format!("/api/keys/{id}"), &eve.jwt()).await,
        204,
        "revoke",
    );
    assert_status(&new_key(&server, &eve.jwt()).await, 201, "the freed slot");
    assert_eq!(list_keys(&server, &eve.jwt()).await.len(), 3);
}

#[actix_rt::test]
async fn topic_tokens_count_across_all_topics_of_the_account() {
    let server = TestServer::start(SMALL_QUOTAS);
    let fay = register(&server, "fay").await;
    for name in ["fay-a", "fay-b"] {
        assert_status(&new_topic(&server, &fay.jwt(), name).await, 201, name);
    }
    let first = new_token(&server, &fay.jwt(), "fay-a").await;
    assert_status(&first, 201, "token on a");
    assert_status(&new_token(&server, &fay.jwt(), "fay-b").await, 201, "on b");
    let refused = new_token(&server, &fay.jwt(), "fay-a").await;
    assert_error(&refused, 403, &limit_reached("topic tokens"), "a 3rd token");

    let id = first.1["id"].as_str().unwrap();
    let path = format!("/api/topics/fay-a/access-tokens/{id}");
    assert_status(&delete(&server, &path, &fay.jwt()).await, 204, "revoke");
    assert_status(&new_token(&server, &fay.jwt(), "fay-a").await, 201, "freed");
    // Deleting a topic frees the slots of its tokens.
    assert_status(
        &delete(&server, "/api/topics/fay-b", &fay.jwt()).await,
        204,
        "delete b",
    );
    assert_status(
        &new_token(&server, &fay.jwt(), "fay-a").await,
        201,
        "freed by b",
    );
}

#[actix_rt::test]
async fn concurrent_creations_never_pass_the_quota() {
    let server = TestServer::start(SMALL_QUOTAS);
    let gus = register(&server, "gus").await;
    let cred = gus.jwt();
    let attempts = (0..12).map(|i| {
        let (server, cred) = (&server, &cred);
        async move { new_topic(server, cred, &format!("gus-{i}")).await }
    });
    let results = join_all(attempts).await;
    let made = results.iter().filter(|r| r.0 == 201).count();
    let refused = results
        .iter()
        .filter(|r| r.0 == 403 && detail(&r.1) == limit_reached("topics"))
        .count();
    assert_eq!((made, refused), (3, 9), "{results:?}");
    let keys = join_all((0..8).map(|_| new_key(&server, &cred))).await;
    let made = keys.iter().filter(|r| r.0 == 201).count();
    assert_eq!(made, 2, "{keys:?}");
}

#[actix_rt::test]
async fn creations_are_rate_limited_per_account() {
    let server = TestServer::start(
        "[limits]\nanonymous_per_minute = 0\ndefault_tier = \"unlimited\"\ncreations_per_minute = 4\n",
    );
    let hal = register(&server, "hal").await;
    for name in ["hal-1", "hal-2"] {
        assert_status(&new_topic(&server, &hal.jwt(), name).await, 201, name);
    }
    assert_status(&new_token(&server, &hal.jwt(), "hal-1").await, 201, "token");
    let key = new_key(&server, &hal.jwt()).await;
    assert_status(&key, 201, "key");
    let id = key.1["id"].as_str().unwrap();
    let attempts = [
        ("POST", "/api/topics".to_string(), json!({"name": "hal-3"})),
        ("POST", "/api/keys".to_string(), json!({"name": "k"})),
        (
            "POST",
            "/api/topics/hal-1/access-tokens".to_string(),
            json!({"name": "t", "access_level": "read"}),
        ),
        ("POST", format!("/api/keys/{id}/regenerate"), json!({})),
    ];
    for (method, path, body) in &attempts {
        let reply = send(&server, method, path, &hal.jwt(), body).await;
        assert_eq!(reply.status, 429, "{path}: {}", reply.body);
        assert_eq!(reply.body, json!({ "detail": RATE_LIMITED }), "{path}");
        let retry_after: u64 = reply.header("Retry-After").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{path}: {retry_after}");
    }
    let published = publish_as(&server, "hal-4", &hal.key(), "x").await;
    assert_eq!(
        published.0, 429,
        "auto-creating is a creation: {}",
        published.1
    );
    assert_status(
        &publish_as(&server, "hal-1", &hal.key(), "x").await,
        200,
        "publishing to an existing topic creates nothing",
    );
    let ivy = register(&server, "ivy").await;
    assert_status(&new_topic(&server, &ivy.jwt(), "ivy-1").await, 201, "ivy");
}

/// Walks a list page by page with `limit`, following `X-Next-Cursor`: the `key` of
/// every item, and the sizes of the pages.
async fn walk(
    server: &TestServer,
    path: &str,
    cred: &Cred,
    limit: Option<usize>,
    key: &str,
) -> (Vec<String>, Vec<usize>) {
    let mut next = match limit {
        Some(n) => format!("{path}?limit={n}"),
        None => path.to_string(),
    };
    let (mut items, mut pages) = (Vec::new(), Vec::new());
    loop {
        let reply = send(server, "GET", &next, cred, &Value::Null).await;
        assert_eq!(reply.status, 200, "{next}: {}", reply.body);
        let page = reply.body.as_array().expect("a JSON array");
        pages.push(page.len());
        items.extend(page.iter().map(|i| i[key].as_str().unwrap().to_string()));
        let (cursor, link) = (reply.header("X-Next-Cursor"), reply.header("Link"));
        let Some(cursor) = cursor else {
            assert_eq!(link, None, "{next}: a Link without a cursor");
            return (items, pages);
        };
        let link = link.unwrap_or_else(|| panic!("{next}: a cursor without a Link"));
        let url = link
            .strip_prefix('<')
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .unwrap_or_else(|| panic!("{next}: Link {link:?}"));
        assert!(url.starts_with(path), "{url}");
        assert!(url.contains(&format!("cursor={cursor}")), "{url}");
        next = url.to_string();
        assert!(pages.len() < 200, "{path}: the walk does not end");
    }
}

/// Asserts that walking `path` yields `expected` once each, in pages of `sizes`.
async fn assert_walk(
    server: &TestServer,
    path: &str,
    cred: &Cred,
    limit: Option<usize>,
    key: &str,
    expected: &HashSet<String>,
    sizes: &[usize],
) {
    let (items, pages) = walk(server, path, cred, limit, key).await;
    assert_eq!(pages, sizes, "{path} with limit {limit:?}");
    let unique: HashSet<String> = items.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        items.len(),
        "{path}: an item twice: {items:?}"
    );
    assert_eq!(&unique, expected, "{path}");
}

#[actix_rt::test]
async fn every_list_is_paged_and_walks_each_item_once() {
    let server = TestServer::start(NO_LIMITS);
    let joy = register(&server, "joy").await;
    let mut topics = HashSet::new();
    for i in 0..101 {
        let name = format!("joy-{i:03}");
        assert_status(&new_topic(&server, &joy.jwt(), &name).await, 201, &name);
        topics.insert(name);
    }
    let (jwt, path) = (joy.jwt(), "/api/topics");
    assert_walk(&server, path, &jwt, None, "name", &topics, &[100, 1]).await;
    assert_walk(
        &server,
        path,
        &jwt,
        Some(40),
        "name",
        &topics,
        &[40, 40, 21],
    )
    .await;
    assert_walk(&server, path, &jwt, Some(101), "name", &topics, &[101]).await;
    assert_walk(&server, path, &jwt, Some(1000), "name", &topics, &[101]).await;

    let mut keys = HashSet::from([joy.api_key_id.clone()]);
    for _ in 0..6 {
        keys.insert(
            new_key(&server, &jwt).await.1["id"]
                .as_str()
                .unwrap()
                .into(),
        );
    }
    assert_walk(&server, "/api/keys", &jwt, Some(3), "id", &keys, &[3, 3, 1]).await;

    let mut tokens = HashSet::new();
    for _ in 0..7 {
        let made = new_token(&server, &jwt, "joy-000").await;
        tokens.insert(made.1["id"].as_str().unwrap().to_string());
    }
    let path = "/api/topics/joy-000/access-tokens";
    assert_walk(&server, path, &jwt, Some(3), "id", &tokens, &[3, 3, 1]).await;
    assert_walk(&server, path, &jwt, None, "id", &tokens, &[7]).await;
}

#[actix_rt::test]
async fn list_limits_are_bounded_and_a_bad_cursor_is_refused() {
    let server = TestServer::start(NO_LIMITS);
    let kit = register(&server, "kit").await;
    assert_status(&new_topic(&server, &kit.jwt(), "kit-1").await, 201, "topic");
    let lists = [
        "/api/topics",
        "/api/keys",
        "/api/topics/kit-1/access-tokens",
    ];
    for list in lists {
        for limit in ["0", "1001", "-1", "many"] {
            let got = get(&server, &format!("{list}?limit={limit}"), &kit.jwt()).await;
            assert_error(
                &got,
                400,
                "Invalid limit (1-1000)",
                &format!("{list} {limit}"),
            );
        }
        for cursor in ["garbage!", "bm90IGEgY3Vyc29y", "MTIzNDU"] {
            let got = get(&server, &format!("{list}?cursor={cursor}"), &kit.jwt()).await;
            assert_error(&got, 400, "Invalid cursor", &format!("{list} {cursor}"));
        }
        let got = get(&server, &format!("{list}?limit=1000"), &kit.jwt()).await;
        assert_status(&got, 200, list);
    }
}
