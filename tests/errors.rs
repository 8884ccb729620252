//! Bad input on publish, subscribe and history (§6): the status, and a JSON body
//! `{"detail": "..."}` that says what was wrong; unknown paths and wrong methods too.

mod common;

use common::TestServer;
use serde_json::{json, Value};

/// The limit configured for these tests.
const LIMIT: usize = 100;

async fn server() -> TestServer {
    TestServer::broker(&format!("message_size_limit = {LIMIT}\n")).await
}

/// Sends a request (with the publisher credential) and checks it fails with `status`
/// and a JSON `detail` string;
/// returns the detail.
async fn expect_error(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
    status: u16,
) -> String {
    let body: bytes::Bytes = body.into();
    // Names the case in every failure: the request as it was sent.
    let request = format!(
        "{method} {path} {headers:?} {:?}",
        String::from_utf8_lossy(&body[..body.len().min(120)])
    );
    let (got, content_type, body) = server.publish_request(method, path, headers, body).await;
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(got, status, "{request}: body {text:?}");
    assert!(
        content_type.starts_with("application/json"),
        "{request}: content type {content_type:?}, body {text:?}"
    );
    let value: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{request}: error body is not JSON ({e}): {text:?}"));
    let detail = value["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("{request}: no detail string in {value}"));
    assert!(!detail.trim().is_empty(), "{request}: empty detail");
    detail.to_string()
}

/// Like [`expect_error`] for a publish, also checking the detail mentions `word`.
async fn expect_publish_error(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
    status: u16,
    word: &str,
) {
    let detail = expect_error(server, "POST", path, headers, body, status).await;
    assert!(
        detail.to_lowercase().contains(&word.to_lowercase()),
        "POST {path} {headers:?}: detail {detail:?} should mention {word:?}"
    );
}

async fn expect_json_publish_error(server: &TestServer, body: &Value, status: u16, word: &str) {
    expect_publish_error(
        server,
        "/",
        &[("Content-Type", "application/json")],
        body.to_string(),
        status,
        word,
    )
    .await;
}

#[actix_rt::test]
async fn empty_body_is_400_message_is_empty() {
    let server = server().await;
    let json_body = json!({"topic": "errs", "message": ""}).to_string();
    let cases = [
        ("POST", "/errs", vec![], String::new()),
        ("PUT", "/errs", vec![], String::new()),
        (
            "POST",
            "/",
            vec![("Content-Type", "application/json")],
            json_body,
        ),
    ];
    for (method, path, headers, body) in cases {
        let detail = expect_error(&server, method, path, &headers, body, 400).await;
        assert_eq!(detail, "Message is empty", "{method} {path} {headers:?}");
    }
    assert!(server.poll("errs", "").await.is_empty());
}

#[actix_rt::test]
async fn body_over_the_size_limit_is_413_message_too_large() {
    let server = server().await;
    let exact = "x".repeat(LIMIT);
    let stored = server.publish("sizes", &exact).await;
    assert_eq!(stored["message"], exact.as_str());

    for size in [LIMIT + 1, 5 * LIMIT, 4 * 1024 * 1024] {
        let detail = expect_error(&server, "POST", "/sizes", &[], "y".repeat(size), 413).await;
        assert_eq!(detail, "Message too large", "{size} bytes");
    }
    let detail = expect_error(
        &server,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        json!({"topic": "sizes", "message": "z".repeat(LIMIT + 1)}).to_string(),
        413,
    )
    .await;
    assert_eq!(detail, "Message too large");
    assert_eq!(
        common::texts(&server.poll("sizes", "").await),
        vec![exact.clone()]
    );

    // The limit is in bytes: 50 two-byte characters fit, 51 do not.
    server.publish("sizes", &"é".repeat(LIMIT / 2)).await;
    let detail = expect_error(
        &server,
        "POST",
        "/sizes",
        &[],
        "é".repeat(LIMIT / 2 + 1),
        413,
    )
    .await;
    assert_eq!(detail, "Message too large");
    // The JSON around the text does not count against it.
    let (status, m) = server
        .publish_json(&json!({"topic": "sizes", "message": exact, "title": "t".repeat(200)}))
        .await;
    assert_eq!(status, 200, "{m}");
}

#[actix_rt::test]
async fn non_utf8_body_is_400() {
    let server = server().await;
    let body: &'static [u8] = b"caf\xe9 \xff\xfe";
    expect_publish_error(&server, "/bytes", &[], body, 400, "UTF-8").await;
    assert!(server.poll("bytes", "").await.is_empty());
}

/// A publish field refused the same way in every form it can be sent in.
struct BadField {
    /// The case's name, its topic, and a word its `detail` must mention.
    name: &'static str,
    /// The header that carries the field, and values refused there.
    header: &'static str,
    bad_headers: Vec<String>,
    /// A path with the field as a bad query parameter.
    bad_query: String,
    /// `POST /` JSON bodies with a bad value for the field.
    bad_json: Vec<Value>,
    /// A header value just within the limit, and the field as the stored message has it.
    accepted: Option<(String, Value)>,
}

#[actix_rt::test]
async fn bad_priority_tags_or_title_is_400_as_header_query_or_json() {
    let ten: Vec<String> = (1..=10).map(|i| format!("t{i}")).collect();
    let eleven: Vec<String> = (1..=11).map(|i| format!("t{i}")).collect();
    let (max_title, long_title) = ("t".repeat(256), "t".repeat(257));
    let cases = [
        BadField {
            name: "priority",
            header: "X-Priority",
            bad_headers: ["0", "6", "loud", "3.5", "-1"].map(String::from).to_vec(),
            bad_query: "/priority?priority=9".into(),
            bad_json: vec![
                json!({"topic": "priority", "message": "m", "priority": 9}),
                json!({"topic": "priority", "message": "m", "priority": "loud"}),
            ],
            accepted: None,
        },
        BadField {
            name: "tags",
            header: "X-Tags",
            bad_headers: vec![eleven.join(",")],
            bad_query: format!("/tags?tags={}", eleven.join(",")),
            bad_json: vec![json!({"topic": "tags", "message": "m", "tags": eleven})],
            accepted: Some((ten.join(","), json!(ten))),
        },
        BadField {
            name: "title",
            header: "X-Title",
            bad_headers: vec![long_title.clone()],
            bad_query: format!("/title?title={long_title}"),
            bad_json: vec![json!({"topic": "title", "message": "m", "title": long_title})],
            accepted: Some((max_title.clone(), json!(max_title))),
        },
    ];
    let server = server().await;
    for case in &cases {
        let (name, path) = (case.name, format!("/{}", case.name));
        if let Some((value, stored)) = &case.accepted {
            let (status, ok) = server
                .publish_with(name, "fits", &[(case.header, value)])
                .await;
            assert_eq!(status, 200, "{name}: {ok}");
            assert_eq!(&ok[name], stored, "{name}");
        }
        for bad in &case.bad_headers {
            expect_publish_error(&server, &path, &[(case.header, bad)], "m", 400, name).await;
        }
        expect_publish_error(&server, &case.bad_query, &[], "m", 400, name).await;
        for body in &case.bad_json {
            expect_json_publish_error(&server, body, 400, name).await;
        }
        let stored = server.poll(name, "").await.len();
        assert_eq!(stored, usize::from(case.accepted.is_some()), "{name}");
    }
}

#[actix_rt::test]
async fn title_length_counts_characters_not_bytes() {
    let server = server().await;
    // 256 two-byte characters: 512 bytes, still within the limit.
    let title = "é".repeat(256);
    let (status, ok) = server
        .publish_json(&json!({"topic": "chars", "message": "m", "title": title}))
        .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["title"], title.as_str());
}

#[actix_rt::test]
async fn invalid_topic_names_are_400() {
    let server = server().await;
    let long = "a".repeat(65);
    for topic in ["bad.topic", "bad%20topic", "caf%C3%A9", long.as_str()] {
        expect_publish_error(&server, &format!("/{topic}"), &[], "m", 400, "topic").await;
        expect_error(&server, "PUT", &format!("/{topic}"), &[], "m", 400).await;
        for transport in ["sse", "json", "raw", "ws"] {
            expect_error(
                &server,
                "GET",
                &format!("/{topic}/{transport}"),
                &[],
                "",
                400,
            )
            .await;
        }
        expect_error(
            &server,
            "GET",
            &format!("/api/topics/{topic}/messages"),
            &[],
            "",
            400,
        )
        .await;
    }
    // Publishing goes to one topic: a list is not a topic name.
    expect_publish_error(&server, "/one,two", &[], "m", 400, "topic").await;
    // One bad name in a list spoils the list.
    expect_error(&server, "GET", "/good,bad.one/json", &[], "", 400).await;
    expect_json_publish_error(
        &server,
        &json!({"topic": "bad topic", "message": "m"}),
        400,
        "topic",
    )
    .await;
    // 64 characters is still fine.
    server.publish(&"b".repeat(64), "m").await;
}

#[actix_rt::test]
async fn reserved_topic_names_are_400() {
    let server = server().await;
    for name in ["api", "auth", "docs", "static", "app", "v1"] {
        expect_publish_error(&server, &format!("/{name}"), &[], "m", 400, "reserved").await;
        expect_error(&server, "PUT", &format!("/{name}"), &[], "m", 400).await;
        expect_error(&server, "GET", &format!("/{name}/json"), &[], "", 400).await;
        expect_json_publish_error(
            &server,
            &json!({"topic": name, "message": "m"}),
            400,
            "reserved",
        )
        .await;
    }
    // `/health` and `/metrics` are endpoints of their own (other methods get 405),
    // but as topics they are refused all the same.
    for name in ["health", "metrics"] {
        expect_error(&server, "GET", &format!("/{name}/json"), &[], "", 400).await;
        expect_error(&server, "GET", &format!("/{name}/sse"), &[], "", 400).await;
        expect_json_publish_error(
            &server,
            &json!({"topic": name, "message": "m"}),
            400,
            "reserved",
        )
        .await;
    }
    // Case does not get around it.
    expect_publish_error(&server, "/API", &[], "m", 400, "reserved").await;
}

#[actix_rt::test]
async fn bad_json_on_post_root_is_400() {
    let server = server().await;
    let json_header = [("Content-Type", "application/json")];
    for body in [
        "{not json",
        "",
        "[]",
        "\"text\"",
        r#"{"message": "no topic"}"#,
        r#"{"topic": 5, "message": "m"}"#,
        r#"{"topic": "t", "message": "m", "tags": "not-a-list"}"#,
    ] {
        expect_error(&server, "POST", "/", &json_header, body, 400).await;
    }
}

#[actix_rt::test]
async fn unknown_path_is_404_json() {
    let server = server().await;
    for path in [
        "/a/b/c",
        "/sometopic/nope",
        "/api/nothing",
        "/api/topics/t/other",
    ] {
        expect_error(&server, "GET", path, &[], "", 404).await;
    }
}

#[actix_rt::test]
async fn wrong_method_is_405_json() {
    let server = server().await;
    for (method, path) in [
        ("GET", "/sometopic"),
        ("DELETE", "/sometopic"),
        ("PATCH", "/sometopic"),
        ("DELETE", "/health"),
        ("POST", "/health"),
        ("POST", "/sometopic/sse"),
        ("DELETE", "/sometopic/json"),
        ("POST", "/api/topics/t/messages"),
    ] {
        expect_error(&server, method, path, &[], "", 405).await;
    }
}

#[actix_rt::test]
async fn bad_since_is_400() {
    let server = server().await;
    server.publish("since", "m").await;
    for bad in ["not-valid!", "a%20b", "10%25", "-5"] {
        for transport in ["sse", "json", "raw"] {
            let path = format!("/since/{transport}?since={bad}");
            let detail = expect_error(&server, "GET", &path, &[], "", 400).await;
            assert!(
                detail.to_lowercase().contains("since"),
                "{path}: {detail:?}"
            );
        }
        let path = format!("/since/json?poll=1&since={bad}");
        expect_error(&server, "GET", &path, &[], "", 400).await;
        let path = format!("/api/topics/since/messages?since={bad}");
        expect_error(&server, "GET", &path, &[], "", 400).await;
    }
}

#[actix_rt::test]
async fn a_bad_subscribe_filter_or_history_limit_is_400_naming_it() {
    let server = server().await;
    let cases = [
        (
            "/filters/json?priority=",
            &["9", "loud", "1,7"][..],
            "priority",
        ),
        (
            "/api/topics/hist/messages?limit=",
            &["0", "-1", "abc", "100000"],
            "limit",
        ),
    ];
    for (prefix, bad_values, word) in cases {
        for bad in bad_values {
            let path = format!("{prefix}{bad}");
            let detail = expect_error(&server, "GET", &path, &[], "", 400).await;
            assert!(detail.to_lowercase().contains(word), "{path}: {detail:?}");
        }
    }
}

#[actix_rt::test]
async fn refused_publishes_store_nothing_and_reach_no_subscriber() {
    let server = server().await;
    let mut stream = common::JsonStream::connect(&server, "/refused/json").await;
    let open = stream
        .next_json(std::time::Duration::from_secs(5))
        .await
        .expect("open event");
    assert_eq!(open["event"], "open");
    expect_error(&server, "POST", "/refused", &[], "", 400).await;
    expect_error(&server, "POST", "/refused", &[], "x".repeat(LIMIT + 1), 413).await;
    expect_error(
        &server,
        "POST",
        "/refused",
        &[("X-Priority", "9")],
        "m",
        400,
    )
    .await;
    let ok = server.publish("refused", "the only one").await;
    let got = stream
        .next_message(std::time::Duration::from_secs(5))
        .await
        .expect("the accepted message");
    assert_eq!(got, ok);
    assert_eq!(server.poll("refused", "").await, vec![ok]);
}
