//! Topic access tokens (`tk_…`): creation by permissions or access level, the list and
//! its usage counts, the ways a token is sent, wrong-topic and expired tokens, and live
//! subscriptions ended by revoking a token or making its topic public.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A server with an owner and a private topic.
async fn setup(name: &str) -> (common::TestServer, Account, String) {
    let server = TestServer::without_limits();
    let owner = register(&server, name).await;
    let topic = format!("{name}-private");
    create_topic(&server, &owner.jwt(), &topic, "private").await;
    (server, owner, topic)
}

fn assert_token_fields(token: &Value, topic: &str, level: &str, permissions: Value) {
    assert_eq!(token["topic"], topic, "{token}");
    assert_eq!(token["access_level"], level, "{token}");
    assert_eq!(token["permissions"], permissions, "{token}");
    let (read, write) = match level {
        "read" => (true, false),
        "write" => (false, true),
        _ => (true, true),
    };
    assert_eq!(token["can_read"], read, "{token}");
    assert_eq!(token["can_write"], write, "{token}");
}

#[actix_rt::test]
async fn a_token_made_with_permissions_is_shown_once_with_every_field() {
    let (server, owner, topic) = setup("ann").await;
    let cases = [
        (json!(["publish"]), "write", json!(["publish"])),
        (json!(["subscribe"]), "read", json!(["subscribe"])),
        (
            json!(["subscribe", "publish"]),
            "read_write",
            json!(["publish", "subscribe"]),
        ),
    ];
    for (asked, level, shown) in cases {
        let body = json!({"name": format!("{level} device"), "permissions": asked});
        let token = create_token(&server, &owner.jwt(), &topic, &body).await;
        let secret = token["token"].as_str().expect("token");
        assert!(
            secret.starts_with("tk_") && secret.len() >= 3 + 32,
            "{secret}"
        );
        assert!(token["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(token["name"], format!("{level} device"));
        assert_token_fields(&token, &topic, level, shown);
        assert!(is_rfc3339_utc(&token["created_at"]), "{token}");
        assert!(token["expires_at"].is_null(), "{token}");
        assert!(token["last_used_at"].is_null(), "{token}");
    }
}

#[actix_rt::test]
async fn a_token_made_with_an_access_level_gets_the_matching_permissions() {
    let (server, owner, topic) = setup("bob").await;
    let cases = [
        ("read", json!(["subscribe"])),
        ("write", json!(["publish"])),
        ("read_write", json!(["publish", "subscribe"])),
    ];
    for (level, permissions) in cases {
        let body = json!({"name": level, "access_level": level});
        let token = create_token(&server, &owner.key(), &topic, &body).await;
        assert_token_fields(&token, &topic, level, permissions);
    }
    let expires_at = rfc3339_in(3600);
    let body = json!({"name": "later", "access_level": "read", "expires_at": expires_at});
    let token = create_token(&server, &owner.jwt(), &topic, &body).await;
    assert_eq!(token["expires_at"], expires_at.as_str());
    for (what, body) in [
        ("neither permissions nor access_level", json!({"name": "x"})),
        (
            "unknown access level",
            json!({"name": "x", "access_level": "admin"}),
        ),
        (
            "unknown permission",
            json!({"name": "x", "permissions": ["delete"]}),
        ),
        (
            "expiry in the past",
            json!({"name": "x", "access_level": "read", "expires_at": rfc3339_in(-60)}),
        ),
    ] {
        let got = create_token_raw(&server, &owner.jwt(), &topic, &body).await;
        assert!(
            [400, 422].contains(&got.0) && !detail(&got.1).is_empty(),
            "{what}: {got:?}"
        );
    }
}

#[actix_rt::test]
async fn tokens_are_only_for_private_topics() {
    let server = TestServer::without_limits();
    let owner = register(&server, "cat").await;
    create_topic(&server, &owner.jwt(), "cat-pub", "public").await;
    let got = create_token_raw(
        &server,
        &owner.jwt(),
        "cat-pub",
        &json!({"name": "x", "access_level": "read"}),
    )
    .await;
    assert_error(&got, 400, ONLY_PRIVATE, "token on a public topic");
}

#[actix_rt::test]
async fn only_the_owner_manages_a_topics_tokens() {
    let (server, owner, topic) = setup("dan").await;
    let other = register(&server, "eli").await;
    let (id, tk) = token(&server, &owner.jwt(), &topic, "read_write").await;
    let list_path = format!("/api/topics/{topic}/access-tokens");
    let token_path = format!("{list_path}/{id}");
    let body = json!({"name": "x", "access_level": "read"});
    let cases: [(&str, Cred, u16, &str); 3] = [
        ("another account", other.jwt(), 404, ""),
        ("nobody", Cred::None, 401, NOT_AUTHENTICATED),
        ("the token itself", tk.clone(), 403, FORBIDDEN),
    ];
    for (who, cred, status, text) in cases {
        for got in [
            post(&server, &list_path, &cred, &body).await,
            get(&server, &list_path, &cred).await,
            delete(&server, &token_path, &cred).await,
        ] {
            assert_status(&got, status, who);
            if !text.is_empty() {
                assert_error(&got, status, text, who);
            }
        }
    }
    assert_status(
        &post(
            &server,
            "/api/topics/no-such-topic/access-tokens",
            &owner.jwt(),
            &body,
        )
        .await,
        404,
        "missing topic",
    );
    // Nothing was revoked: the token still works.
    assert_status(
        &publish_as(&server, &topic, &tk, "still valid").await,
        200,
        "token after refused revocations",
    );
    assert_eq!(list_tokens(&server, &owner.jwt(), &topic).await.len(), 1);
}

#[actix_rt::test]
async fn the_token_list_hides_secrets_and_shows_usage() {
    let (server, owner, topic) = setup("fox").await;
    let (read_id, reader) = token(&server, &owner.jwt(), &topic, "read").await;
    let (write_id, writer) = token(&server, &owner.jwt(), &topic, "write").await;
    let tokens = list_tokens(&server, &owner.jwt(), &topic).await;
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    for token in &tokens {
        assert!(token.get("token").is_none(), "secret listed: {token}");
        assert!(token["last_used_at"].is_null(), "{token}");
        assert_eq!(token["total_requests"], 0, "{token}");
        assert_eq!(token["created_by"], owner.id.as_str(), "{token}");
        assert_eq!(token["topic"], topic.as_str());
    }

    let mut live = open(&server, Transport::Sse, &topic, &reader, Via::Header).await;
    for i in 0..3 {
        let got = publish_as(&server, &topic, &writer, &format!("m{i}")).await;
        assert_status(&got, 200, "publish with the write token");
        let message = live.next_message(WAIT).await.expect("delivered");
        assert_eq!(message["message"], format!("m{i}"));
    }

    let used = eventually(WAIT, "both tokens are marked used", || async {
        let used = list_tokens(&server, &owner.jwt(), &topic).await;
        if used.iter().all(|t| !t["last_used_at"].is_null()) {
            Ok(used)
        } else {
            Err(used)
        }
    })
    .await;
    let by_id = |id: &str| used.iter().find(|t| t["id"] == id).cloned().unwrap();
    let (read, write) = (by_id(&read_id), by_id(&write_id));
    for t in [&read, &write] {
        assert!(is_rfc3339_utc(&t["last_used_at"]), "not marked used: {t}");
    }
    assert!(read["total_requests"].as_i64() >= Some(1), "{read}");
    assert!(write["total_requests"].as_i64() >= Some(3), "{write}");
}

#[actix_rt::test]
async fn a_token_works_as_header_or_query_parameter_on_every_transport() {
    let (server, owner, topic) = setup("gus").await;
    let (_, tk) = token(&server, &owner.jwt(), &topic, "read_write").await;
    let mut subscribers = Vec::new();
    for via in [Via::Header, Via::Query] {
        for transport in STREAMS {
            subscribers.push(open(&server, transport, &topic, &tk, via).await);
        }
    }
    for (i, via) in [Via::Header, Via::Query].into_iter().enumerate() {
        let text = format!("via {via:?}");
        let got = publish_via(&server, &topic, &tk, via, &text).await;
        assert_status(&got, 200, &text);
        for live in subscribers.iter_mut() {
            let message = live.next_message(WAIT).await.expect("delivered");
            assert_eq!(message["message"], text.as_str(), "message {i}");
        }
    }
    let history = get(
        &server,
        &format!("/api/topics/{topic}/messages?since=all"),
        &tk,
    )
    .await;
    assert_status(&history, 200, "history with the token");
    assert_eq!(history.1.as_array().map(Vec::len), Some(2));
}

#[actix_rt::test]
async fn a_token_used_on_another_topic_is_401() {
    let (server, owner, topic) = setup("hap").await;
    create_topic(&server, &owner.jwt(), "hap-other", "private").await;
    create_topic(&server, &owner.jwt(), "hap-pub", "public").await;
    let (_, tk) = token(&server, &owner.jwt(), &topic, "read_write").await;
    for other in ["hap-other", "hap-pub", "hap-missing"] {
        for transport in [Transport::Sse, Transport::Ws] {
            let got = refused(&server, transport, other, &tk, Via::Query).await;
            assert_error(&got, 401, INVALID, &format!("{transport:?} on {other}"));
        }
        let got = publish_as(&server, other, &tk, "elsewhere").await;
        assert_error(&got, 401, INVALID, &format!("publish on {other}"));
    }
    let both = format!("{topic},hap-pub");
    assert_error(
        &refused(&server, Transport::Sse, &both, &tk, Via::Header).await,
        401,
        INVALID,
        "its own topic together with another",
    );
    let forged = Cred::TopicToken(format!("tk_{}", "A".repeat(43)));
    assert_error(
        &refused(&server, Transport::Sse, &topic, &forged, Via::Header).await,
        401,
        INVALID,
        "unknown token",
    );
}

#[actix_rt::test]
async fn an_expired_token_is_401_token_has_expired() {
    let (server, owner, topic) = setup("ike").await;
    let body = json!({"name": "brief", "access_level": "read_write", "expires_at": rfc3339_in(2)});
    let made = create_token(&server, &owner.jwt(), &topic, &body).await;
    let tk = Cred::TopicToken(made["token"].as_str().unwrap().to_string());
    assert_status(
        &publish_as(&server, &topic, &tk, "in time").await,
        200,
        "before expiry",
    );
    until_refused("the token passes its expires_at", || {
        publish_as(&server, &topic, &tk, "in time")
    })
    .await;
    assert_error(
        &publish_as(&server, &topic, &tk, "late").await,
        401,
        EXPIRED,
        "publish",
    );
    for transport in STREAMS {
        let got = refused(&server, transport, &topic, &tk, Via::Query).await;
        assert_error(&got, 401, EXPIRED, &format!("{transport:?}"));
    }
}

#[actix_rt::test]
async fn revoking_a_token_closes_its_live_subscriptions_within_one_second() {
    let (server, owner, topic) = setup("jan").await;
    let (id, tk) = token(&server, &owner.jwt(), &topic, "read_write").await;
    let (_, kept_token) = token(&server, &owner.jwt(), &topic, "read").await;
    let mut revoked = [
        open(&server, Transport::Sse, &topic, &tk, Via::Header).await,
        open(&server, Transport::Ws, &topic, &tk, Via::Query).await,
        open(&server, Transport::Json, &topic, &tk, Via::Query).await,
    ];
    let mut kept = [
        open(&server, Transport::Sse, &topic, &kept_token, Via::Query).await,
        open(&server, Transport::Ws, &topic, &owner.key(), Via::Query).await,
    ];

    let path = format!("/api/topics/{topic}/access-tokens/{id}");
    assert_status(&delete(&server, &path, &owner.jwt()).await, 204, "revoke");
    let revoked_at = Instant::now();
    for (transport, live) in STREAMS.iter().zip(revoked.iter_mut()) {
        let left = Duration::from_secs(1).saturating_sub(revoked_at.elapsed());
        live.expect_closed(left, &format!("{transport:?} of the revoked token"))
            .await;
    }

    assert_error(
        &publish_as(&server, &topic, &tk, "after").await,
        401,
        INVALID,
        "publish with a revoked token",
    );
    for transport in STREAMS {
        let got = refused(&server, transport, &topic, &tk, Via::Query).await;
        assert_error(&got, 401, INVALID, &format!("{transport:?} after revoke"));
    }
    for live in kept.iter_mut() {
        live.assert_delivers(&server, &topic, &owner.jwt(), "others stay")
            .await;
    }
    assert_status(
        &delete(&server, &path, &owner.jwt()).await,
        404,
        "revoke twice",
    );
    assert_eq!(list_tokens(&server, &owner.jwt(), &topic).await.len(), 1);
}

#[actix_rt::test]
async fn a_token_cannot_be_revoked_through_another_topics_path() {
    let (server, owner, topic) = setup("kit").await;
    create_topic(&server, &owner.jwt(), "kit-other", "private").await;
    let (id, tk) = token(&server, &owner.jwt(), &topic, "read_write").await;
    let wrong = format!("/api/topics/kit-other/access-tokens/{id}");
    assert_status(
        &delete(&server, &wrong, &owner.jwt()).await,
        404,
        "wrong topic",
    );
    assert_status(
        &publish_as(&server, &topic, &tk, "still").await,
        200,
        "token still valid",
    );
}

#[actix_rt::test]
async fn making_a_private_topic_public_ends_token_subscriptions_and_tokens_get_403() {
    let (server, owner, topic) = setup("lea").await;
    let (_, reader) = token(&server, &owner.jwt(), &topic, "read").await;
    let (_, writer) = token(&server, &owner.jwt(), &topic, "write").await;
    let mut token_subs = Vec::new();
    for transport in STREAMS {
        token_subs.push(open(&server, transport, &topic, &reader, Via::Query).await);
    }
    let mut owner_sub = open(&server, Transport::Sse, &topic, &owner.jwt(), Via::Header).await;

    set_visibility(&server, &owner.jwt(), &topic, "public").await;
    for (transport, live) in STREAMS.iter().zip(token_subs.iter_mut()) {
        live.expect_closed(Duration::from_secs(1), &format!("token {transport:?}"))
            .await;
    }
    owner_sub
        .assert_delivers(&server, &topic, &owner.key(), "owner stays")
        .await;
    assert_error(
        &refused(&server, Transport::Sse, &topic, &reader, Via::Header).await,
        403,
        FORBIDDEN,
        "read token on a now-public topic",
    );
    assert_error(
        &publish_as(&server, &topic, &writer, "no").await,
        403,
        FORBIDDEN,
        "write token on a now-public topic",
    );
    // The topic itself is open to anyone now.
    open(&server, Transport::Sse, &topic, &Cred::None, Via::Header).await;
}
