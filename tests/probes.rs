//! Probes are never rate-limited: `/health` and `/metrics` answer every poll, and
//! polling them leaves the anonymous per-IP quota of other paths as it was.

mod common;

use common::{unique_topic, TestServer, RATE_LIMITED};

/// More probes than the default anonymous quota (60 a minute) allows requests.
const PROBES: usize = 200;

#[actix_rt::test]
async fn probes_are_never_rate_limited_while_other_anonymous_paths_are() {
    let server = TestServer::start("");
    for i in 0..PROBES {
        let path = if i % 2 == 0 { "/health" } else { "/metrics" };
        let reply = server.reply("GET", path, &[], "").await;
        assert_eq!(reply.status, 200, "probe {i} {path}: {}", reply.body);
        assert!(
            reply.header("X-RateLimit-Limit").is_none(),
            "{path} is charged to a quota"
        );
    }
    // The probes took nothing from the quota: the 60 requests of another anonymous
    // path are all there (more only as the minute refills them), then 429.
    let poll = format!("/{}/json?poll=1", unique_topic("probe"));
    let mut allowed = 0;
    let refused = loop {
        let reply = server.reply("GET", &poll, &[], "").await;
        if reply.status != 200 {
            break reply;
        }
        allowed += 1;
        assert!(allowed <= 80, "80 anonymous polls were all allowed");
    };
    assert!(allowed >= 60, "only {allowed} polls before the 429");
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["detail"], RATE_LIMITED);
    // Probes still answer while that IP is over its quota.
    for path in ["/health", "/metrics"] {
        let reply = server.reply("GET", path, &[], "").await;
        assert_eq!(reply.status, 200, "{path} over the quota: {}", reply.body);
    }
}
