//! The permission table of the contract (§4), cell by cell: every kind of credential
//! (none, the owner's JWT and API key, read and write topic tokens, another account's
//! JWT and API key) against public and private topics, for subscribing (SSE, WebSocket,
//! JSON stream, history), publishing and managing; and wrong credentials, which are
//! refused even where none is needed.

mod common;

use common::*;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    OwnerJwt,
    OwnerKey,
    OtherJwt,
    OtherKey,
    ReadToken,
    WriteToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Sse,
    Ws,
    Json,
    History,
    Publish,
    Manage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    /// Refused with this status and `detail` ("" when the contract leaves it open).
    Refused(u16, &'static str),
}

use Outcome::{Allowed as OK, Refused};
const NO_CREDENTIAL: Outcome = Refused(401, NOT_AUTHENTICATED);
const NOT_ALLOWED: Outcome = Refused(403, FORBIDDEN);
/// A private topic of someone else is not shown to exist.
const HIDDEN: Outcome = Refused(404, "");

/// `[subscribe, publish, manage]` on a public topic, then on a private one.
/// Topic tokens on a public topic are tokens of a private topic made public.
const TABLE: [(Who, [Outcome; 3], [Outcome; 3]); 7] = [
    (
        Who::Anonymous,
        [OK, NO_CREDENTIAL, NO_CREDENTIAL],
        [NO_CREDENTIAL; 3],
    ),
    (Who::OwnerJwt, [OK, OK, OK], [OK, OK, OK]),
    (Who::OwnerKey, [OK, OK, OK], [OK, OK, OK]),
    (
        Who::OtherJwt,
        [OK, OK, NOT_ALLOWED],
        [NOT_ALLOWED, NOT_ALLOWED, HIDDEN],
    ),
    (
        Who::OtherKey,
        [OK, OK, NOT_ALLOWED],
        [NOT_ALLOWED, NOT_ALLOWED, HIDDEN],
    ),
    (
        Who::ReadToken,
        [NOT_ALLOWED; 3],
        [OK, NOT_ALLOWED, NOT_ALLOWED],
    ),
    (
        Who::WriteToken,
        [NOT_ALLOWED; 3],
        [NOT_ALLOWED, OK, NOT_ALLOWED],
    ),
];

const OPS: [Op; 6] = [
    Op::Sse,
    Op::Ws,
    Op::Json,
    Op::History,
    Op::Publish,
    Op::Manage,
];

fn expected(row: &[Outcome; 3], op: Op) -> Outcome {
    match op {
        Op::Sse | Op::Ws | Op::Json | Op::History => row[0],
        Op::Publish => row[1],
        Op::Manage => row[2],
    }
}

/// The ways a credential can travel for an operation: streams take both forms.
fn forms(op: Op, who: Who) -> &'static [Via] {
    match op {
        Op::Sse | Op::Ws | Op::Json if who != Who::Anonymous => &[Via::Header, Via::Query],
        _ => &[Via::Header],
    }
}

/// Performs `op` on `topic`: `Ok` when allowed, else the refusal.
async fn attempt(
    server: &common::TestServer,
    op: Op,
    topic: &str,
    cred: &Cred,
    via: Via,
) -> Result<(), (u16, serde_json::Value)> {
    let stream = |transport| async move {
        subscribe(server, transport, topic, cred, via)
            .await
            .map(drop)
    };
    let answer = match op {
        Op::Sse => return stream(Transport::Sse).await,
        Op::Ws => return stream(Transport::Ws).await,
        Op::Json => return stream(Transport::Json).await,
        Op::History => get(server, &format!("/api/topics/{topic}/messages"), cred).await,
        Op::Publish => publish_via(server, topic, cred, via, "table").await,
        Op::Manage => {
            let change = json!({"description": "changed"});
            patch(server, &format!("/api/topics/{topic}"), cred, &change).await
        }
    };
    if answer.0 == 200 {
        Ok(())
    } else {
        Err(answer)
    }
}

#[actix_rt::test]
async fn every_cell_of_the_permission_table_holds_for_every_credential_and_transport() {
    let server = TestServer::without_limits();
    let owner = register(&server, "owner").await;
    let other = register(&server, "other").await;
    let (public, private, flipped) = ("perm-public", "perm-private", "perm-flipped");
    create_topic(&server, &owner.jwt(), public, "public").await;
    create_topic(&server, &owner.jwt(), private, "private").await;
    create_topic(&server, &owner.jwt(), flipped, "private").await;
    let (_, read) = token(&server, &owner.jwt(), private, "read").await;
    let (_, write) = token(&server, &owner.jwt(), private, "write").await;
    let (_, flipped_read) = token(&server, &owner.jwt(), flipped, "read").await;
    let (_, flipped_write) = token(&server, &owner.jwt(), flipped, "write").await;
    set_visibility(&server, &owner.jwt(), flipped, "public").await;

    let mut failures = Vec::new();
    let mut cells = 0;
    for (who, on_public, on_private) in TABLE {
        for (visibility, row) in [("public", on_public), ("private", on_private)] {
            let (topic, cred) = match (who, visibility) {
                (Who::Anonymous, "public") => (public, Cred::None),
                (Who::Anonymous, _) => (private, Cred::None),
                (Who::OwnerJwt, "public") => (public, owner.jwt()),
                (Who::OwnerJwt, _) => (private, owner.jwt()),
                (Who::OwnerKey, "public") => (public, owner.key()),
                (Who::OwnerKey, _) => (private, owner.key()),
                (Who::OtherJwt, "public") => (public, other.jwt()),
                (Who::OtherJwt, _) => (private, other.jwt()),
                (Who::OtherKey, "public") => (public, other.key()),
                (Who::OtherKey, _) => (private, other.key()),
                (Who::ReadToken, "public") => (flipped, flipped_read.clone()),
                (Who::ReadToken, _) => (private, read.clone()),
                (Who::WriteToken, "public") => (flipped, flipped_write.clone()),
                (Who::WriteToken, _) => (private, write.clone()),
            };
            for op in OPS {
                let want = expected(&row, op);
                for &via in forms(op, who) {
                    cells += 1;
                    let got = attempt(&server, op, topic, &cred, via).await;
                    let ok = match (&got, want) {
                        (Ok(()), Outcome::Allowed) => true,
                        (Err((status, body)), Outcome::Refused(s, text)) => {
                            *status == s && (text.is_empty() || detail(body) == text)
                        }
                        _ => false,
                    };
                    if !ok {
                        failures.push(format!(
                            "{who:?} {op:?} on a {visibility} topic via {via:?}: \
                             expected {want:?}, got {got:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[actix_rt::test]
async fn subscribers_the_table_allows_receive_what_publishers_it_allows_send() {
    let server = TestServer::without_limits();
    let owner = register(&server, "owner").await;
    let other = register(&server, "other").await;
    create_topic(&server, &owner.jwt(), "flow-public", "public").await;
    create_topic(&server, &owner.jwt(), "flow-private", "private").await;
    let (_, read) = token(&server, &owner.jwt(), "flow-private", "read").await;
    let (_, write) = token(&server, &owner.jwt(), "flow-private", "write").await;

    let mut public_subs = [
        open(
            &server,
            Transport::Sse,
            "flow-public",
            &Cred::None,
            Via::Header,
        )
        .await,
        open(
            &server,
            Transport::Ws,
            "flow-public",
            &other.key(),
            Via::Query,
        )
        .await,
    ];
    for (publisher, text) in [(other.jwt(), "from other"), (owner.key(), "from owner")] {
        assert_all_receive(&server, "flow-public", &publisher, text, &mut public_subs).await;
    }
    let mut private_subs = [
        open(&server, Transport::Json, "flow-private", &read, Via::Query).await,
        open(
            &server,
            Transport::Sse,
            "flow-private",
            &owner.jwt(),
            Via::Query,
        )
        .await,
    ];
    for (publisher, text) in [(write, "from token"), (owner.jwt(), "from owner")] {
        assert_all_receive(&server, "flow-private", &publisher, text, &mut private_subs).await;
    }
}

#[actix_rt::test]
async fn a_wrong_credential_is_refused_even_on_a_public_topic() {
    let server = TestServer::without_limits();
    let owner = register(&server, "owner").await;
    create_topic(&server, &owner.jwt(), "open-topic", "public").await;
    let wrong = [
        ("garbage JWT", Cred::Bearer("not.a.jwt".into())),
        (
            "unknown API key",
            Cred::ApiKey(format!("noti_{}", "B".repeat(43))),
        ),
        (
            "unknown topic token",
            Cred::TopicToken(format!("tk_{}", "C".repeat(43))),
        ),
    ];
    for (what, cred) in &wrong {
        for op in [Op::Sse, Op::Ws, Op::Json, Op::History, Op::Publish] {
            for &via in forms(op, Who::OwnerJwt) {
                let got = attempt(&server, op, "open-topic", cred, via).await;
                let got = got.expect_err(&format!("{what} {op:?} via {via:?} was allowed"));
                assert_error(&got, 401, INVALID, &format!("{what} {op:?} via {via:?}"));
            }
        }
    }
    for header in ["Basic b3duZXI6cGFzcw==", "Bearer", "Token abc"] {
        let (status, _, body) = server
            .request("GET", "/open-topic/sse", &[("Authorization", header)], "")
            .await;
        let got = (status, common::parse_json(&body, header));
        assert_error(&got, 401, INVALID, &format!("Authorization: {header}"));
    }
}

#[actix_rt::test]
async fn a_wrong_credential_next_to_a_valid_one_is_not_ignored() {
    let server = TestServer::without_limits();
    let owner = register(&server, "owner").await;
    create_topic(&server, &owner.jwt(), "two-creds", "public").await;
    let valid_key = ("X-API-Key", owner.api_key.as_str());
    // A valid header with a wrong query credential, on a stream and on publish.
    let url = server.url("/two-creds/sse?token=not.a.jwt");
    let mut stream = common::LineStream::connect(&url, &[valid_key]).await;
    let status = stream.status;
    let body = match status {
        200 => String::new(),
        _ => stream
            .lines_until_eof(WAIT)
            .await
            .unwrap_or_default()
            .join("\n"),
    };
    assert_eq!(
        (status, body.contains(INVALID)),
        (401, true),
        "valid X-API-Key with a wrong ?token= on SSE: {body}"
    );
    let (status, _, body) = server
        .request("POST", "/two-creds?api_key=noti_wrong", &[valid_key], "hi")
        .await;
    let got = (status, common::parse_json(&body, "publish"));
    assert_error(&got, 401, INVALID, "valid X-API-Key with a wrong ?api_key=");
    let wrong_bearer = ("Authorization", "Bearer not.a.jwt");
    let (status, _, body) = server
        .request("POST", "/two-creds", &[valid_key, wrong_bearer], "hi")
        .await;
    let got = (status, common::parse_json(&body, "publish"));
    assert_error(
        &got,
        401,
        INVALID,
        "valid X-API-Key with a wrong Authorization",
    );
}
