//! Operations: `GET /health` answers 200 `{"status":"ok"}` while the database answers.

mod common;

use common::TestServer;

#[actix_rt::test]
async fn health_answers_ok_in_json() {
    let server = TestServer::broker("").await;
    let (status, content_type, body) = server.request("GET", "/health", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
    let value = common::parse_json(&body, "/health");
    assert_eq!(value, serde_json::json!({ "status": "ok" }));
}

#[actix_rt::test]
async fn health_still_ok_after_a_restart_on_the_same_database() {
    let mut server = TestServer::broker("").await;
    let topic = common::unique_topic("health");
    server.publish(&topic, "before restart").await;
    server.restart();
    let (status, value) = server.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(value["status"], "ok");
}
