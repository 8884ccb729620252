//! Publishing and the four subscribe transports (SSE, WebSocket, NDJSON, raw): message
//! fields, `open` and keepalive events, several topics, filters, `poll=1`, the ways to
//! publish (POST, PUT, JSON `POST /`, headers, query parameters) and the history endpoint.

mod common;

use std::time::Duration;

use common::{JsonStream, LineStream, RawStream, SseClient, TestServer, WsClient, WAIT};
use serde_json::{json, Value};

/// Publishes a message that uses every optional field.
async fn publish_full(server: &TestServer, topic: &str) -> Value {
    let (status, message) = server
        .publish_with(
            topic,
            "héllo wörld 🌍",
            &[
                ("X-Title", "Disk full"),
                ("X-Priority", "high"),
                ("X-Tags", "warning,disk"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{message}");
    message
}

/// The message object as the contract describes it.
fn assert_full_message(message: &Value, topic: &str) {
    let now = common::now_unix();
    let id = message["id"].as_str().expect("id is a string");
    assert!(!id.is_empty(), "empty id");
    let time = message["time"].as_i64().expect("time is unix seconds");
    assert!(
        (now - 60..=now + 60).contains(&time),
        "time {time}, now {now}"
    );
    assert_eq!(message["event"], "message");
    assert_eq!(message["topic"], topic);
    assert_eq!(message["message"], "héllo wörld 🌍");
    assert_eq!(message["title"], "Disk full");
    assert_eq!(message["priority"], 4);
    assert_eq!(message["tags"], json!(["warning", "disk"]));
    let expires = message["expires"]
        .as_i64()
        .expect("expires is unix seconds");
    // Default retention is 12 hours.
    assert!(
        (time + 12 * 3600 - 60..=time + 12 * 3600 + 60).contains(&expires),
        "expires {expires}, time {time}"
    );
    let keys: Vec<&String> = message.as_object().unwrap().keys().collect();
    for key in &keys {
        assert!(
            ["id", "time", "event", "topic", "message", "title", "priority", "tags", "expires"]
                .contains(&key.as_str()),
            "unexpected field {key} in {message}"
        );
    }
}

fn assert_open(event: &Value, topics: &str) {
    assert_eq!(
        event["event"], "open",
        "first event should be open: {event}"
    );
    assert_eq!(event["topic"], topics, "{event}");
}

#[actix_rt::test]
async fn sse_sends_open_then_the_message_with_its_id_and_every_field() {
    let server = TestServer::broker("").await;
    let mut sse = SseClient::connect(&server, "/alerts/sse").await;
    assert!(
        sse.lines.content_type.starts_with("text/event-stream"),
        "{}",
        sse.lines.content_type
    );
    let open = sse.next_event(WAIT).await.expect("open event");
    assert_eq!(open.event, "open");
    assert_open(&open.json(), "alerts");

    let published = publish_full(&server, "alerts").await;
    assert_full_message(&published, "alerts");
    let event = sse.next_event(WAIT).await.expect("message event");
    assert_eq!(event.event, "message");
    assert_eq!(event.id.as_deref(), published["id"].as_str());
    assert_eq!(event.json(), published);
}

#[actix_rt::test]
async fn websocket_sends_open_then_the_message_with_every_field() {
    let server = TestServer::broker("").await;
    let mut ws = WsClient::connect(&server, "/alerts/ws").await;
    let open = ws.next_json(WAIT).await.expect("open event");
    assert_open(&open, "alerts");

    let published = publish_full(&server, "alerts").await;
    assert_full_message(&published, "alerts");
    let got = ws.next_json(WAIT).await.expect("message frame");
    assert_eq!(got, published);
}

#[actix_rt::test]
async fn json_stream_sends_open_then_the_message_with_every_field() {
    let server = TestServer::broker("").await;
    let mut stream = JsonStream::connect(&server, "/alerts/json").await;
    assert!(
        stream
            .lines
            .content_type
            .starts_with("application/x-ndjson"),
        "{}",
        stream.lines.content_type
    );
    let open = stream.next_json(WAIT).await.expect("open event");
    assert_open(&open, "alerts");

    let published = publish_full(&server, "alerts").await;
    assert_full_message(&published, "alerts");
    let got = stream.next_json(WAIT).await.expect("message line");
    assert_eq!(got, published);
}

#[actix_rt::test]
async fn raw_stream_sends_one_line_per_message_text() {
    let server = TestServer::broker("").await;
    let mut raw = RawStream::connect(&server, "/alerts/raw").await;
    assert!(
        raw.lines.content_type.starts_with("text/plain"),
        "{}",
        raw.lines.content_type
    );
    // The stream starts (its open event is an empty line); wait for it so the
    // subscription is in place before publishing.
    raw.next_line(WAIT).await.expect("raw stream opens");

    publish_full(&server, "alerts").await;
    server.publish("alerts", "two\nlines").await;
    assert_eq!(
        raw.next_message(WAIT).await.as_deref(),
        Some("héllo wörld 🌍")
    );
    assert_eq!(raw.next_message(WAIT).await.as_deref(), Some("two lines"));
}

#[actix_rt::test]
async fn a_message_published_right_after_open_is_delivered() {
    // Once a client has the open event, its subscription is in place: a message
    // published at once must reach it.
    let server = TestServer::broker("").await;
    for round in 0..100 {
        // Several topics, so that the last one is registered last.
        let topics: Vec<String> = (0..8).map(|i| format!("race{round}-{i}")).collect();
        let list = topics.join(",");
        let mut stream = JsonStream::connect(&server, &format!("/{list}/json")).await;
        let open = stream.next_json(WAIT).await.expect("open event");
        assert_open(&open, &list);
        let last = topics.last().unwrap();
        let published = server.publish(last, "right after open").await;
        let got = stream.next_message(WAIT).await;
        assert_eq!(got.as_ref(), Some(&published), "round {round}");
    }
}

#[actix_rt::test]
async fn several_topics_in_one_subscription_get_messages_of_each() {
    let server = TestServer::broker("").await;
    let mut sse = SseClient::connect(&server, "/first,second/sse").await;
    let open = sse.next_event(WAIT).await.expect("open event");
    assert_eq!(open.event, "open");
    let mut json = JsonStream::connect(&server, "/first,second/json").await;
    assert_eq!(json.next_json(WAIT).await.expect("open")["event"], "open");
    let mut ws = WsClient::connect(&server, "/first,second/ws").await;
    assert_eq!(ws.next_json(WAIT).await.expect("open")["event"], "open");

    let a = server.publish("first", "to first").await;
    server.publish("third", "to neither").await;
    let b = server.publish("second", "to second").await;
    let c = server.publish("first", "to first again").await;

    for expected in [&a, &b, &c] {
        assert_eq!(sse.next_message(WAIT).await.as_ref(), Some(expected));
        assert_eq!(json.next_message(WAIT).await.as_ref(), Some(expected));
        assert_eq!(ws.next_message(WAIT).await.as_ref(), Some(expected));
    }
}

/// Publishes each `(body, headers)`, then a final matching `sentinel` publish, and
/// returns the texts the subscriber got up to the sentinel.
async fn received_until_sentinel(
    server: &TestServer,
    topic: &str,
    query: &str,
    publishes: &[(&str, Vec<(&str, &str)>)],
    sentinel_headers: &[(&str, &str)],
) -> Vec<String> {
    let mut stream = JsonStream::connect(server, &format!("/{topic}/json?{query}")).await;
    assert_eq!(stream.next_json(WAIT).await.expect("open")["event"], "open");
    for (body, headers) in publishes {
        let (status, m) = server.publish_with(topic, body.to_string(), headers).await;
        assert_eq!(status, 200, "{m}");
    }
    let (status, m) = server
        .publish_with(topic, "sentinel", sentinel_headers)
        .await;
    assert_eq!(status, 200, "{m}");
    let mut got = Vec::new();
    loop {
        let message = stream
            .next_message(WAIT)
            .await
            .unwrap_or_else(|| panic!("{query}: sentinel not received; got {got:?}"));
        let text = message["message"].as_str().unwrap().to_string();
        if text == "sentinel" {
            return got;
        }
        got.push(text);
    }
}

#[actix_rt::test]
async fn priority_filter_passes_only_listed_priorities() {
    let server = TestServer::broker("").await;
    let publishes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("p1", vec![("X-Priority", "1")]),
        ("p2", vec![("X-Priority", "2")]),
        ("p3", vec![]),
        ("p4", vec![("X-Priority", "4")]),
        ("p5", vec![("X-Priority", "5")]),
    ];
    let got = received_until_sentinel(
        &server,
        "prio",
        "priority=4,5",
        &publishes,
        &[("X-Priority", "max")],
    )
    .await;
    assert_eq!(got, vec!["p4", "p5"]);
    // Names work in the filter too, and filters apply to stored messages.
    let polled = server.poll("prio", "priority=high,urgent").await;
    assert_eq!(common::texts(&polled), vec!["p4", "p5", "sentinel"]);
    let polled = server.poll("prio", "priority=default").await;
    assert_eq!(common::texts(&polled), vec!["p3"]);
}

#[actix_rt::test]
async fn tags_filter_requires_every_listed_tag() {
    let server = TestServer::broker("").await;
    let publishes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("only-a", vec![("X-Tags", "a")]),
        ("only-b", vec![("X-Tags", "b")]),
        ("a-and-b", vec![("X-Tags", "a,b")]),
        ("b-a-c", vec![("X-Tags", "b,a,c")]),
        ("none", vec![]),
    ];
    let got = received_until_sentinel(
        &server,
        "tagged",
        "tags=a,b",
        &publishes,
        &[("X-Tags", "a,b")],
    )
    .await;
    assert_eq!(got, vec!["a-and-b", "b-a-c"]);
    let polled = server.poll("tagged", "tags=c").await;
    assert_eq!(common::texts(&polled), vec!["b-a-c"]);
}

#[actix_rt::test]
async fn title_filter_matches_the_title() {
    let server = TestServer::broker("").await;
    let publishes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("match", vec![("X-Title", "Alert")]),
        ("other", vec![("X-Title", "Other")]),
        ("untitled", vec![]),
    ];
    let got = received_until_sentinel(
        &server,
        "titled",
        "title=Alert",
        &publishes,
        &[("X-Title", "Alert")],
    )
    .await;
    assert_eq!(got, vec!["match"]);
}

#[actix_rt::test]
async fn poll_returns_the_stored_messages_and_closes() {
    let server = TestServer::broker("").await;
    let sent: Vec<Value> = {
        let mut v = Vec::new();
        for i in 1..=3 {
            v.push(server.publish("polled", &format!("m{i}")).await);
        }
        v
    };
    server.publish("elsewhere", "not this one").await;

    let mut json = LineStream::connect(&server.url("/polled/json?poll=1"), &[]).await;
    assert_eq!(json.status, 200);
    let lines = json
        .lines_until_eof(WAIT)
        .await
        .expect("poll=1 ends the response");
    let got: Vec<Value> = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| common::parse_json(l.as_bytes(), "poll line"))
        .collect();
    assert_eq!(
        got, sent,
        "only the stored messages, oldest first, no open event"
    );

    let mut sse = LineStream::connect(&server.url("/polled/sse?poll=1"), &[]).await;
    let lines = sse.lines_until_eof(WAIT).await.expect("SSE poll ends");
    let ids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, common::ids(&sent));
    assert!(
        !lines.iter().any(|l| l == "event: open"),
        "no open event on poll: {lines:?}"
    );

    let mut raw = LineStream::connect(&server.url("/polled/raw?poll=1"), &[]).await;
    let lines = raw.lines_until_eof(WAIT).await.expect("raw poll ends");
    let texts: Vec<&String> = lines.iter().filter(|l| !l.is_empty()).collect();
    assert_eq!(texts, vec!["m1", "m2", "m3"]);

    // With a starting point, only what follows it.
    let after = server
        .poll(
            "polled",
            &format!("since={}", sent[0]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(after, sent[1..].to_vec());
    // An empty topic polls to an empty, finished response.
    assert!(server.poll("never-used", "").await.is_empty());
}

#[actix_rt::test]
async fn keepalives_arrive_on_every_transport() {
    let server = TestServer::broker("keepalive_interval = \"1s\"\n").await;
    let mut sse = SseClient::connect(&server, "/quiet/sse").await;
    let mut json = JsonStream::connect(&server, "/quiet/json").await;
    let mut ws = WsClient::connect(&server, "/quiet/ws").await;
    let mut raw = RawStream::connect(&server, "/quiet/raw").await;

    let limit = Duration::from_secs(4);
    assert_eq!(sse.next_event(WAIT).await.expect("open").event, "open");
    let keepalive = sse.next_event(limit).await.expect("SSE keepalive");
    assert_eq!(keepalive.event, "keepalive");
    assert_eq!(keepalive.json()["event"], "keepalive");
    assert_eq!(keepalive.json()["topic"], "quiet");

    assert_eq!(json.next_json(WAIT).await.expect("open")["event"], "open");
    let keepalive = json.next_json(limit).await.expect("JSON keepalive");
    assert_eq!(keepalive["event"], "keepalive");

    assert_eq!(ws.next_json(WAIT).await.expect("open")["event"], "open");
    let keepalive = ws.next_json(limit).await.expect("WebSocket keepalive");
    assert_eq!(keepalive["event"], "keepalive");
    assert!(ws.pings >= 1, "the server pings WebSocket clients");

    // Raw: the open and each keepalive are empty lines.
    raw.next_line(WAIT).await.expect("raw open");
    assert_eq!(raw.next_line(limit).await.as_deref(), Some(""));

    // Keepalives keep coming, and do not disturb messages.
    let m = server.publish("quiet", "after keepalives").await;
    assert_eq!(sse.next_message(limit).await, Some(m.clone()));
    assert_eq!(json.next_message(limit).await, Some(m.clone()));
    assert_eq!(ws.next_message(limit).await, Some(m));
    assert_eq!(
        raw.next_message(limit).await.as_deref(),
        Some("after keepalives")
    );
    let again = sse.next_event(limit).await.expect("another keepalive");
    assert_eq!(again.event, "keepalive");
}

#[actix_rt::test]
async fn put_publishes_like_post() {
    let server = TestServer::broker("").await;
    let mut stream = JsonStream::connect(&server, "/putty/json").await;
    assert_eq!(stream.next_json(WAIT).await.expect("open")["event"], "open");
    let (status, message) = server
        .publish_raw(
            "PUT",
            "/putty",
            "put body",
            &[("X-Title", "T"), ("X-Priority", "5"), ("X-Tags", "x")],
        )
        .await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["event"], "message");
    assert_eq!(message["topic"], "putty");
    assert_eq!(message["message"], "put body");
    assert_eq!(message["title"], "T");
    assert_eq!(message["priority"], 5);
    assert_eq!(message["tags"], json!(["x"]));
    assert_eq!(stream.next_message(WAIT).await, Some(message.clone()));
    assert_eq!(server.poll("putty", "").await, vec![message]);
}

#[actix_rt::test]
async fn json_publish_on_root_takes_topic_message_title_priority_and_tags() {
    let server = TestServer::broker("").await;
    let mut stream = JsonStream::connect(&server, "/jsonpub/json").await;
    assert_eq!(stream.next_json(WAIT).await.expect("open")["event"], "open");

    let (status, message) = server
        .publish_json(&json!({
            "topic": "jsonpub",
            "message": "from json",
            "title": "Json title",
            "priority": 4,
            "tags": ["a", "b"],
        }))
        .await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["topic"], "jsonpub");
    assert_eq!(message["message"], "from json");
    assert_eq!(message["title"], "Json title");
    assert_eq!(message["priority"], 4);
    assert_eq!(message["tags"], json!(["a", "b"]));
    assert_eq!(message["event"], "message");
    assert_eq!(stream.next_message(WAIT).await, Some(message));

    // Optional fields may be left out; a priority may be given by name.
    let (status, minimal) = server
        .publish_json(&json!({"topic": "jsonpub", "message": "minimal"}))
        .await;
    assert_eq!(status, 200, "{minimal}");
    assert_eq!(minimal["priority"], 3);
    assert!(minimal.get("title").is_none(), "{minimal}");
    assert!(minimal.get("tags").is_none(), "{minimal}");
    let (status, named) = server
        .publish_json(&json!({"topic": "jsonpub", "message": "named", "priority": "urgent"}))
        .await;
    assert_eq!(status, 200, "{named}");
    assert_eq!(named["priority"], 5);
}

#[actix_rt::test]
async fn priority_names_and_numbers_map_to_1_to_5() {
    let server = TestServer::broker("").await;
    let cases = [
        ("min", 1),
        ("low", 2),
        ("default", 3),
        ("high", 4),
        ("max", 5),
        ("urgent", 5),
        ("1", 1),
        ("2", 2),
        ("3", 3),
        ("4", 4),
        ("5", 5),
    ];
    for (given, expected) in cases {
        let (status, m) = server
            .publish_with("prios", "m", &[("X-Priority", given)])
            .await;
        assert_eq!(status, 200, "{given}: {m}");
        assert_eq!(m["priority"], expected, "X-Priority: {given}");
        let (status, m) = server
            .publish_raw("POST", &format!("/prios?priority={given}"), "m", &[])
            .await;
        assert_eq!(status, 200, "{given}: {m}");
        assert_eq!(m["priority"], expected, "?priority={given}");
    }
    let default = server.publish("prios", "no priority").await;
    assert_eq!(default["priority"], 3);
}

#[actix_rt::test]
async fn query_parameters_set_title_priority_and_tags() {
    let server = TestServer::broker("").await;
    let (status, m) = server
        .publish_raw(
            "POST",
            "/queried?title=From%20query&priority=5&tags=x,y",
            "body",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["title"], "From query");
    assert_eq!(m["priority"], 5);
    assert_eq!(m["tags"], json!(["x", "y"]));
    let (status, m) = server
        .publish_raw("PUT", "/queried?title=Put&priority=low&tags=z", "body", &[])
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["title"], "Put");
    assert_eq!(m["priority"], 2);
    assert_eq!(m["tags"], json!(["z"]));
    let stored = server.poll("queried", "").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["title"], "From query");
}

#[actix_rt::test]
async fn a_utf8_title_is_accepted_in_a_header_or_the_query() {
    // ntfy accepts UTF-8 header values; the title limit is in characters.
    let server = TestServer::broker("").await;
    let cases = [
        ("/umlauts", vec![("X-Title", "Grüße ✓")], "Grüße ✓"),
        ("/umlauts?title=Gr%C3%BC%C3%9Fe", vec![], "Grüße"),
    ];
    for (path, headers, title) in cases {
        let (status, m) = server.publish_raw("POST", path, "body", &headers).await;
        assert_eq!(status, 200, "{path} {headers:?}: {m}");
        assert_eq!(m["title"], title, "{path} {headers:?}");
    }
}

#[actix_rt::test]
async fn history_returns_stored_messages_oldest_first() {
    let server = TestServer::broker("").await;
    let mut sent = Vec::new();
    for i in 1..=5 {
        sent.push(server.publish("hist", &format!("h{i}")).await);
    }
    server.publish("other-hist", "not here").await;

    assert_eq!(server.history("hist", "").await, sent);
    assert_eq!(server.history("hist", "since=all").await, sent);
    let since_second = format!("since={}", sent[1]["id"].as_str().unwrap());
    assert_eq!(
        server.history("hist", &since_second).await,
        sent[2..].to_vec()
    );
    let now = common::now_unix();
    assert_eq!(
        server
            .history("hist", &format!("since={}", now - 3600))
            .await,
        sent
    );
    assert!(server
        .history("hist", &format!("since={}", now + 3600))
        .await
        .is_empty());
    assert_eq!(server.history("hist", "since=1h").await, sent);

    // A limit returns that many, still oldest first and without gaps.
    let two = server.history("hist", "since=all&limit=2").await;
    assert_eq!(two.len(), 2, "{two:?}");
    let start = sent
        .iter()
        .position(|m| m == &two[0])
        .expect("limited history holds stored messages");
    assert_eq!(two, sent[start..start + 2].to_vec());
    let limited_since = server
        .history("hist", &format!("{since_second}&limit=1"))
        .await;
    assert_eq!(limited_since.len(), 1);

    assert!(server.history("empty-hist", "").await.is_empty());
}

#[actix_rt::test]
async fn websocket_ignores_frames_the_client_sends() {
    use awc::ws::Message;
    let server = TestServer::broker("").await;
    let mut ws = WsClient::connect(&server, "/chatty/ws").await;
    assert_eq!(ws.next_json(WAIT).await.expect("open")["event"], "open");
    ws.send(Message::Text("hello server".into())).await;
    ws.send(Message::Text(
        "{\"event\":\"message\",\"message\":\"injected\"}".into(),
    ))
    .await;
    ws.send(Message::Binary(bytes::Bytes::from_static(b"\x00\x01")))
        .await;
    ws.send(Message::Ping(bytes::Bytes::from_static(b"are you there")))
        .await;
    let published = server.publish("chatty", "from the publisher").await;
    assert_eq!(ws.next_message(WAIT).await, Some(published));
    assert!(!ws.is_closed());
    // Nothing the client sent was published.
    assert_eq!(
        common::texts(&server.poll("chatty", "").await),
        vec!["from the publisher"]
    );
}

#[actix_rt::test]
async fn websocket_poll_sends_the_stored_messages_and_closes() {
    let server = TestServer::broker("").await;
    let a = server.publish("wspoll", "a").await;
    let b = server.publish("wspoll", "b").await;
    let mut ws = WsClient::connect(&server, "/wspoll/ws?poll=1").await;
    assert_eq!(ws.next_json(WAIT).await, Some(a));
    assert_eq!(ws.next_json(WAIT).await, Some(b));
    assert_eq!(ws.next_json(WAIT).await, None);
    assert!(ws.is_closed(), "the server closes a poll=1 WebSocket");
}

#[actix_rt::test]
async fn a_topic_named_twice_in_a_subscription_delivers_once() {
    let server = TestServer::broker("").await;
    let mut json = JsonStream::connect(&server, "/twice,twice/json").await;
    assert_eq!(json.next_json(WAIT).await.expect("open")["event"], "open");
    let first = server.publish("twice", "once").await;
    let second = server.publish("twice", "twice").await;
    assert_eq!(json.next_message(WAIT).await, Some(first));
    assert_eq!(json.next_message(WAIT).await, Some(second));
    let replayed = server.poll("twice,twice", "").await;
    assert_eq!(common::texts(&replayed), vec!["once", "twice"]);
}
