//! `tidings publish` and `tidings subscribe` against a running server.

mod common;

use common::TestServer;

/// `tidings ARGS`: `(success, stdout, stderr)`.
fn tidings(args: &[&str]) -> (bool, String, String) {
    let out = common::tidings(args);
    (out.success, out.stdout, out.stderr)
}

#[actix_rt::test]
async fn the_cli_publishes_and_a_poll_reads_it_back() {
    let server = TestServer::broker("").await;
    let key = server.publish_headers[0].1.clone();
    let url = server.url("");
    let (ok, stdout, stderr) = tidings(&[
        "publish",
        "--server",
        &url,
        "--api-key",
        &key,
        "--title",
        "Nightly",
        "--priority",
        "high",
        "--tags",
        "db,ok",
        "cli-topic",
        "Backup done",
    ]);
    assert!(ok, "publish failed: {stderr}");
    let published: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(published["message"], "Backup done");
    assert_eq!(published["title"], "Nightly");
    assert_eq!(published["priority"], 4);
    assert_eq!(published["tags"], serde_json::json!(["db", "ok"]));

    let (ok, stdout, stderr) = tidings(&[
        "subscribe",
        "--server",
        &url,
        "--poll",
        "--since",
        "all",
        "cli-topic",
    ]);
    assert!(ok, "subscribe failed: {stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["id"], published["id"]);
}

#[actix_rt::test]
async fn the_cli_reports_refusals_with_the_servers_detail() {
    let server = TestServer::broker("").await;
    let (ok, _, stderr) = tidings(&["publish", "--server", &server.url(""), "t", "x"]);
    assert!(!ok);
    assert!(stderr.contains("Not authenticated"), "{stderr}");
    let (ok, _, stderr) = tidings(&["publish", "--server", "http://127.0.0.1:1", "t", "x"]);
    assert!(!ok);
    assert!(stderr.starts_with("error: cannot reach"), "{stderr}");
}
