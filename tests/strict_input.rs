//! Strict input: a `since=` that is none of its forms is 400 `Invalid since` (not a
//! replay of everything), a database URL of an unsupported scheme stops start-up with
//! one line naming the supported ones, and ntfy's publish options that tidings does not
//! implement are refused with 400 naming the header, in every form ntfy reads them.

mod common;

use common::cli::run;
use common::{texts, unique_topic, TestServer};
use serde_json::{json, Value};

const INVALID_SINCE: &str = "Invalid since";

/// `GET path`: the status and the `detail` of the JSON answer (empty when none).
async fn detail_of(server: &TestServer, path: &str) -> (u16, String) {
    let reply = server.reply("GET", path, &[], "").await;
    let detail = reply.body["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (reply.status, detail)
}

#[actix_rt::test]
async fn a_since_that_is_none_of_its_forms_is_400_on_every_read() {
    let server = TestServer::broker("").await;
    let topic = unique_topic("since");
    let first = server.publish(&topic, "first").await;
    server.publish(&topic, "second").await;
    for bad in ["bogus", "10min", "-5", "1.5h", "ten", "abcdefghijklmnop"] {
        for path in [
            format!("/{topic}/json?poll=1&since={bad}"),
            format!("/{topic}/sse?since={bad}"),
            format!("/{topic}/raw?since={bad}"),
            format!("/api/topics/{topic}/messages?since={bad}"),
        ] {
            assert_eq!(
                detail_of(&server, &path).await,
                (400, INVALID_SINCE.to_string()),
                "{path}"
            );
        }
        let reply = server
            .reply(
                "GET",
                &format!("/{topic}/sse"),
                &[("Last-Event-ID", bad)],
                "",
            )
            .await;
        assert_eq!(reply.status, 400, "Last-Event-ID {bad}: {}", reply.body);
        assert_eq!(reply.body["detail"], INVALID_SINCE);
    }
    // Each of the four forms still works.
    let id = first["id"].as_str().expect("message id");
    for (since, expected) in [
        ("all", vec!["first", "second"]),
        ("10m", vec!["first", "second"]),
        ("0", vec!["first", "second"]),
        (id, vec!["second"]),
    ] {
        let got = server.poll(&topic, &format!("since={since}")).await;
        assert_eq!(texts(&got), expected, "since={since}");
    }
}

#[test]
fn a_database_url_of_another_scheme_stops_start_up_naming_the_supported_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tidings.toml");
    std::fs::write(&config, "").expect("write config");
    let config = config.to_str().expect("UTF-8 path");
    let url = "mysql://root:s3cret@db.example/tidings";
    let serve = [
        "serve",
        "--config",
        config,
        "--database-url",
        url,
        "--listen",
        "127.0.0.1:0",
    ];
    let admin = ["user", "list", "--config", config, "--database-url", url];
    for args in [&serve[..], &admin[..]] {
        let out = run(args, &[]);
        assert!(!out.success, "{args:?} succeeded: {}", out.stdout);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line:\n{}", out.stderr);
        let line = lines[0];
        assert!(line.starts_with("error: "), "{line}");
        for name in ["mysql://", "sqlite://", "postgres://"] {
            assert!(line.contains(name), "{line} does not name {name}");
        }
        assert!(!line.contains("s3cret"), "the password is shown: {line}");
        assert!(!out.stdout.contains("listening"), "{}", out.stdout);
    }
}

/// A publish with extra `headers` to `path` (the publisher's credential added).
async fn publish(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    server.publish_raw("POST", path, "hello", headers).await
}

/// Headers sent, query string, and the header the refusal names.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[actix_rt::test]
async fn ntfy_options_tidings_lacks_are_refused_naming_the_header() {
    let server = TestServer::broker("").await;
    let topic = unique_topic("options");
    let cases: [Case; 14] = [
        (&[("X-Delay", "10m")], "", "X-Delay"),
        (&[("Delay", "tomorrow, 10am")], "", "X-Delay"),
        (&[("X-In", "30m")], "", "X-Delay"),
        (&[], "delay=10m", "X-Delay"),
        (&[], "at=1700000000", "X-Delay"),
        (&[("X-Email", "a@example.com")], "", "X-Email"),
        (&[("E-Mail", "a@example.com")], "", "X-Email"),
        (&[], "email=a@example.com", "X-Email"),
        (&[("X-Call", "yes")], "", "X-Call"),
        (&[("Attach", "https://example.com/a.jpg")], "", "X-Attach"),
        (&[("X-Click", "https://example.com")], "", "X-Click"),
        (
            &[("X-Actions", "view, Open, https://example.com")],
            "",
            "X-Actions",
        ),
        (&[("X-Markdown", "yes")], "", "X-Markdown"),
        (&[("Cache", "no")], "", "X-Cache"),
    ];
    for (headers, query, named) in cases {
        let path = format!("/{topic}?{query}");
        let (status, body) = publish(&server, &path, headers).await;
        assert_eq!(status, 400, "{headers:?} {query}: {body}");
        assert_eq!(
            body["detail"],
            format!("Unsupported header: {named}"),
            "{headers:?} {query}"
        );
    }
    for (field, value) in [("delay", json!("10m")), ("email", json!("a@example.com"))] {
        let mut body = json!({ "topic": topic, "message": "hello" });
        body[field] = value;
        let (status, answer) = server.publish_json(&body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["detail"], format!("Unsupported field: {field}"));
    }
    assert!(
        server.poll(&topic, "").await.is_empty(),
        "a refused publish was stored"
    );
    // Values that ask for what tidings does anyway are no request for anything.
    let harmless = [
        ("Cache", "yes"),
        ("X-Firebase", "no"),
        ("Markdown", "false"),
    ];
    let (status, body) = publish(&server, &format!("/{topic}"), &harmless).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .publish_json(&json!({ "topic": topic, "message": "json", "markdown": false }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(texts(&server.poll(&topic, "").await), ["hello", "json"]);
}
