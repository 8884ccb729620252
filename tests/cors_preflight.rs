//! CORS preflights for topic paths (§7): a browser's preflight carries no credential,
//! so one for a topic's paths follows the allowed origins of the topic's owner; an
//! unlisted origin gets 403 `Origin not allowed`. Topics whose owner has no list, and
//! other paths, follow the server's `cors.allowed_origins`.

mod common;

use common::{assert_status, call, create_topic, register, unique_topic, Reply, TestServer};
use serde_json::json;

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example";

/// `OPTIONS path` as a browser sends it before a request with a custom header.
async fn preflight(server: &TestServer, method: &str, path: &str, origin: &str) -> Reply {
    let headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
        ("Access-Control-Request-Headers", "x-api-key"),
    ];
    server.reply("OPTIONS", path, &headers, "").await
}

#[track_caller]
fn assert_allowed(reply: &Reply, origin: &str) {
    assert_eq!(
        reply.status, 204,
        "{} from {origin}: {}",
        reply.path, reply.body
    );
    assert_eq!(
        reply.header("Access-Control-Allow-Origin").as_deref(),
        Some(origin),
        "{}",
        reply.path
    );
}

#[track_caller]
fn assert_refused(reply: &Reply, origin: &str) {
    assert_eq!(
        reply.status, 403,
        "{} from {origin}: {}",
        reply.path, reply.body
    );
    assert_eq!(
        reply.body,
        json!({ "detail": "Origin not allowed" }),
        "{}",
        reply.path
    );
    assert!(
        reply.header("Access-Control-Allow-Origin").is_none(),
        "{}: a refused preflight allows {origin}",
        reply.path
    );
}

#[actix_rt::test]
async fn a_topic_preflight_follows_its_owners_allowed_origins() {
    let server = TestServer::without_limits();
    let owner = register(&server, &unique_topic("owner").replace('-', "_")).await;
    let other = register(&server, &unique_topic("other").replace('-', "_")).await;
    let (listed, open) = (unique_topic("listed"), unique_topic("open"));
    create_topic(&server, &owner.key(), &listed, "private").await;
    create_topic(&server, &other.key(), &open, "public").await;
    let got = call(
        &server,
        "PUT",
        "/api/client-auth/allowed-origins",
        &owner.key(),
        Some(&json!({ "origins": [APP] })),
    )
    .await;
    assert_status(&got, 200, "PUT allowed-origins");

    let listed_paths = [
        ("GET", format!("/{listed}/sse")),
        ("GET", format!("/{listed}/ws")),
        ("GET", format!("/{listed}/json")),
        ("GET", format!("/{listed}/auth")),
        ("GET", format!("/{open},{listed}/sse")),
        ("GET", format!("/api/topics/{listed}/messages")),
        ("POST", format!("/{listed}")),
    ];
    for (method, path) in &listed_paths {
        assert_allowed(&preflight(&server, method, path, APP).await, APP);
        assert_refused(&preflight(&server, method, path, EVIL).await, EVIL);
    }
    // The owner's list, not the credential, decides: a client key in the query too.
    let path = format!("/{listed}/sse?client_key=pk_unknown");
    assert_refused(&preflight(&server, "GET", &path, EVIL).await, EVIL);

    // No list: the server's own (`*` by default) decides.
    for path in [
        format!("/{open}/sse"),
        format!("/{}/sse", unique_topic("none")),
    ] {
        assert_allowed(&preflight(&server, "GET", &path, EVIL).await, EVIL);
    }
    assert_allowed(&preflight(&server, "GET", "/api/me", EVIL).await, EVIL);

    // A change of the list applies to the next preflight.
    let got = call(
        &server,
        "PUT",
        "/api/client-auth/allowed-origins",
        &owner.key(),
        Some(&json!({ "origins": [] })),
    )
    .await;
    assert_status(&got, 200, "PUT allowed-origins []");
    let path = format!("/{listed}/sse");
    assert_allowed(&preflight(&server, "GET", &path, EVIL).await, EVIL);
}
