//! Topics: create, list, read, change and delete, who may do each, auto-creation on
//! first publish, and live subscriptions ended by a deletion or a change of visibility.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[actix_rt::test]
async fn creating_a_topic_returns_it_with_its_owner() {
    let server = TestServer::without_limits();
    let owner = register(&server, "ann").await;
    let got = post(
        &server,
        "/api/topics",
        &owner.jwt(),
        &json!({"name": "ann-alerts", "visibility": "private", "description": "Pager"}),
    )
    .await;
    assert_status(&got, 201, "create");
    let topic = got.1;
    assert_eq!(topic["name"], "ann-alerts");
    assert_eq!(topic["visibility"], "private");
    assert_eq!(topic["description"], "Pager");
    assert_eq!(topic["owner"]["id"], owner.id.as_str());
    assert_eq!(topic["owner"]["username"], "ann");
    assert!(is_rfc3339_utc(&topic["created_at"]), "{topic}");

    let plain = create_topic(&server, &owner.key(), "ann-news", "public").await;
    assert_eq!(plain["visibility"], "public");
    assert!(plain["description"].is_null(), "{plain}");

    let got = post(
        &server,
        "/api/topics",
        &Cred::None,
        &json!({"name": "anon-topic", "visibility": "public"}),
    )
    .await;
    assert_error(&got, 401, NOT_AUTHENTICATED, "create without a credential");
}

#[actix_rt::test]
async fn a_taken_topic_name_is_409() {
    let server = TestServer::without_limits();
    let owner = register(&server, "bob").await;
    let other = register(&server, "cyd").await;
    create_topic(&server, &owner.jwt(), "bob-topic", "public").await;
    assert_status(
        &publish_as(&server, "bob-auto", &owner.key(), "first").await,
        200,
        "auto-create",
    );
    for (name, cred, what) in [
        ("bob-topic", owner.jwt(), "own topic again"),
        ("bob-topic", other.jwt(), "someone else's topic"),
        ("bob-auto", other.key(), "an auto-created topic"),
    ] {
        let got = post(
            &server,
            "/api/topics",
            &cred,
            &json!({"name": name, "visibility": "private"}),
        )
        .await;
        assert_status(&got, 409, what);
    }
    let (_, topic) = get(&server, "/api/topics/bob-topic", &other.jwt()).await;
    assert_eq!(
        topic["owner"]["username"], "bob",
        "owner unchanged: {topic}"
    );
    assert_eq!(topic["visibility"], "public");
}

#[actix_rt::test]
async fn reserved_or_invalid_topic_names_are_400() {
    let server = TestServer::without_limits();
    let owner = register(&server, "dee").await;
    let too_long = "x".repeat(65);
    let names = [
        "api",
        "auth",
        "health",
        "metrics",
        "docs",
        "static",
        "app",
        "v1",
        "API",
        "",
        "has space",
        "dot.ted",
        "slash/ed",
        "ünï",
        too_long.as_str(),
    ];
    for name in names {
        let got = post(
            &server,
            "/api/topics",
            &owner.jwt(),
            &json!({"name": name, "visibility": "public"}),
        )
        .await;
        assert_status(&got, 400, &format!("topic name {name:?}"));
        assert!(!detail(&got.1).is_empty(), "{name:?}: {}", got.1);
    }
    let longest = "y".repeat(64);
    create_topic(&server, &owner.jwt(), &longest, "public").await;
    create_topic(&server, &owner.jwt(), "A-z_0-9", "public").await;
}

#[actix_rt::test]
async fn listing_topics_shows_only_the_callers_own() {
    let server = TestServer::without_limits();
    let eve = register(&server, "eve").await;
    let fay = register(&server, "fay").await;
    create_topic(&server, &eve.jwt(), "eve-1", "public").await;
    create_topic(&server, &eve.jwt(), "eve-2", "private").await;
    create_topic(&server, &fay.jwt(), "fay-1", "public").await;
    let mine = |list: serde_json::Value| {
        let mut names: Vec<String> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let got = get(&server, "/api/topics", &eve.key()).await;
    assert_status(&got, 200, "eve's list");
    assert_eq!(mine(got.1), ["eve-1", "eve-2"]);
    let got = get(&server, "/api/topics", &fay.jwt()).await;
    assert_eq!(mine(got.1), ["fay-1"]);
    assert_error(
        &get(&server, "/api/topics", &Cred::None).await,
        401,
        NOT_AUTHENTICATED,
        "list without a credential",
    );
}

#[actix_rt::test]
async fn a_public_topic_is_shown_to_anyone_and_a_private_one_only_to_its_owner() {
    let server = TestServer::without_limits();
    let owner = register(&server, "gil").await;
    let other = register(&server, "hal").await;
    create_topic(&server, &owner.jwt(), "gil-pub", "public").await;
    create_topic(&server, &owner.jwt(), "gil-priv", "private").await;
    for cred in [owner.jwt(), owner.key(), other.jwt(), Cred::None] {
        let got = get(&server, "/api/topics/gil-pub", &cred).await;
        assert_status(&got, 200, &format!("public topic for {cred:?}"));
        assert_eq!(got.1["owner"]["username"], "gil");
    }
    let got = get(&server, "/api/topics/gil-priv", &owner.key()).await;
    assert_status(&got, 200, "private topic for its owner");
    assert_eq!(got.1["visibility"], "private");
    assert_status(
        &get(&server, "/api/topics/gil-priv", &other.jwt()).await,
        404,
        "private topic for another account",
    );
    let anonymous = get(&server, "/api/topics/gil-priv", &Cred::None).await;
    assert!(
        [401, 404].contains(&anonymous.0),
        "private topic for nobody: {anonymous:?}"
    );
    assert!(!anonymous.1.to_string().contains("gil"), "{}", anonymous.1);
    assert_status(
        &get(&server, "/api/topics/no-such-topic", &owner.jwt()).await,
        404,
        "missing topic",
    );
}

#[actix_rt::test]
async fn the_owner_can_change_visibility_and_description() {
    let server = TestServer::without_limits();
    let owner = register(&server, "ida").await;
    create_topic(&server, &owner.jwt(), "ida-t", "public").await;
    let got = patch(
        &server,
        "/api/topics/ida-t",
        &owner.jwt(),
        &json!({"description": "Deploys"}),
    )
    .await;
    assert_status(&got, 200, "change description");
    assert_eq!(got.1["description"], "Deploys");
    assert_eq!(got.1["visibility"], "public");
    let got = patch(
        &server,
        "/api/topics/ida-t",
        &owner.key(),
        &json!({"visibility": "private"}),
    )
    .await;
    assert_status(&got, 200, "change visibility");
    assert_eq!(got.1["visibility"], "private");
    assert_eq!(got.1["description"], "Deploys", "description kept");
    let (_, topic) = get(&server, "/api/topics/ida-t", &owner.jwt()).await;
    assert_eq!(topic["visibility"], "private");
    assert_eq!(topic["description"], "Deploys");
    let got = patch(
        &server,
        "/api/topics/ida-t",
        &owner.jwt(),
        &json!({"description": null}),
    )
    .await;
    assert_status(&got, 200, "clear description");
    assert_eq!(got.1["description"], serde_json::Value::Null);
    assert_eq!(got.1["visibility"], "private", "visibility kept");
}

#[actix_rt::test]
async fn non_owners_cannot_change_or_delete_a_topic() {
    let server = TestServer::without_limits();
    let owner = register(&server, "joe").await;
    let other = register(&server, "kai").await;
    create_topic(&server, &owner.jwt(), "joe-pub", "public").await;
    create_topic(&server, &owner.jwt(), "joe-priv", "private").await;
    let change = json!({"description": "mine now"});
    for (topic, status) in [("joe-pub", 403), ("joe-priv", 404)] {
        let path = format!("/api/topics/{topic}");
        for cred in [other.jwt(), other.key()] {
            let got = patch(&server, &path, &cred, &change).await;
            assert_status(&got, status, &format!("PATCH {topic} by another account"));
            let got = delete(&server, &path, &cred).await;
            assert_status(&got, status, &format!("DELETE {topic} by another account"));
            if status == 403 {
                assert_error(&got, 403, FORBIDDEN, "DELETE a public topic of another");
            }
        }
        assert_error(
            &patch(&server, &path, &Cred::None, &change).await,
            401,
            NOT_AUTHENTICATED,
            "PATCH without a credential",
        );
        assert_error(
            &delete(&server, &path, &Cred::None).await,
            401,
            NOT_AUTHENTICATED,
            "DELETE without a credential",
        );
        let (status, kept) = get(&server, &path, &owner.jwt()).await;
        assert_eq!(status, 200, "{topic} still there");
        assert!(kept["description"].is_null(), "unchanged: {kept}");
    }
}

#[actix_rt::test]
async fn deleting_a_topic_ends_its_subscriptions_and_removes_its_messages_and_tokens() {
    let server = TestServer::without_limits();
    let owner = register(&server, "lou").await;
    let topic = "lou-private";
    create_topic(&server, &owner.jwt(), topic, "private").await;
    let (_, reader) = token(&server, &owner.jwt(), topic, "read_write").await;
    for text in ["one", "two"] {
        assert_status(
            &publish_as(&server, topic, &owner.key(), text).await,
            200,
            "publish",
        );
    }
    let mut subscribers = [
        open(&server, Transport::Sse, topic, &owner.jwt(), Via::Header).await,
        open(&server, Transport::Ws, topic, &owner.key(), Via::Query).await,
        open(&server, Transport::Json, topic, &reader, Via::Query).await,
    ];

    assert_status(
        &delete(&server, &format!("/api/topics/{topic}"), &owner.jwt()).await,
        204,
        "delete",
    );
    for (i, live) in subscribers.iter_mut().enumerate() {
        live.expect_closed(WAIT, &format!("subscriber {i}")).await;
    }
    assert_status(
        &get(&server, &format!("/api/topics/{topic}"), &owner.jwt()).await,
        404,
        "deleted topic",
    );
    assert_error(
        &publish_as(&server, topic, &reader, "after").await,
        401,
        INVALID,
        "token of a deleted topic",
    );
    // The name is free again; nothing of the old topic comes with it.
    let newcomer = register(&server, "max").await;
    create_topic(&server, &newcomer.jwt(), topic, "private").await;
    let history = get(
        &server,
        &format!("/api/topics/{topic}/messages?since=all"),
        &newcomer.jwt(),
    )
    .await;
    assert_status(&history, 200, "history of the new topic");
    assert_eq!(history.1, json!([]), "old messages are gone");
    assert!(list_tokens(&server, &newcomer.jwt(), topic)
        .await
        .is_empty());
    assert_error(
        &refused(&server, Transport::Sse, topic, &reader, Via::Header).await,
        401,
        INVALID,
        "old token on the new topic",
    );
}

#[actix_rt::test]
async fn deleting_a_public_topic_ends_anonymous_subscriptions() {
    let server = TestServer::without_limits();
    let owner = register(&server, "moe").await;
    create_topic(&server, &owner.jwt(), "mo-pub", "public").await;
    assert_status(
        &publish_as(&server, "mo-pub", &owner.key(), "kept?").await,
        200,
        "publish",
    );
    let mut live = Vec::new();
    for transport in STREAMS {
        live.push(open(&server, transport, "mo-pub", &Cred::None, Via::Header).await);
    }
    assert_status(
        &delete(&server, "/api/topics/mo-pub", &owner.key()).await,
        204,
        "delete",
    );
    for (transport, sub) in STREAMS.iter().zip(live.iter_mut()) {
        sub.expect_closed(WAIT, &format!("anonymous {transport:?}"))
            .await;
    }
    let history = get(
        &server,
        "/api/topics/mo-pub/messages?since=all",
        &Cred::None,
    )
    .await;
    assert_status(&history, 200, "history");
    assert_eq!(history.1, json!([]), "messages of a deleted topic are gone");
}

#[actix_rt::test]
async fn publishing_with_an_account_to_a_missing_topic_creates_it_public_for_the_publisher() {
    let server = TestServer::without_limits();
    let publisher = register(&server, "ned").await;
    let mut anonymous = open(
        &server,
        Transport::Sse,
        "ned-auto",
        &Cred::None,
        Via::Header,
    )
    .await;
    let got = publish_as(&server, "ned-auto", &publisher.key(), "hello").await;
    assert_status(&got, 200, "publish to a missing topic");
    let (status, topic) = get(&server, "/api/topics/ned-auto", &Cred::None).await;
    assert_eq!(status, 200, "{topic}");
    assert_eq!(topic["visibility"], "public");
    assert_eq!(topic["owner"]["id"], publisher.id.as_str());
    assert_eq!(topic["owner"]["username"], "ned");
    let message = anonymous.next_message(WAIT).await.expect("delivered");
    assert_eq!(message["message"], "hello");
    let (_, mine) = get(&server, "/api/topics", &publisher.jwt()).await;
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "ned-auto"),
        "{mine}"
    );
}

#[actix_rt::test]
async fn with_auto_create_off_publishing_to_a_missing_topic_is_404() {
    let server = TestServer::unlimited("auto_create_topics = false", "");
    let publisher = register(&server, "ozzy").await;
    let got = publish_as(&server, "oz-missing", &publisher.key(), "hello").await;
    assert_status(&got, 404, "publish to a missing topic");
    assert_status(
        &get(&server, "/api/topics/oz-missing", &publisher.jwt()).await,
        404,
        "not created",
    );
    create_topic(&server, &publisher.jwt(), "oz-missing", "public").await;
    assert_status(
        &publish_as(&server, "oz-missing", &publisher.key(), "hello").await,
        200,
        "publish after creating it",
    );
}

#[actix_rt::test]
async fn making_a_public_topic_private_closes_subscriptions_that_lose_access() {
    let server = TestServer::without_limits();
    let owner = register(&server, "pam").await;
    let other = register(&server, "rex").await;
    let topic = "pam-t";
    create_topic(&server, &owner.jwt(), topic, "public").await;
    let mut losing = [
        (
            "anonymous SSE",
            open(&server, Transport::Sse, topic, &Cred::None, Via::Header).await,
        ),
        (
            "anonymous WebSocket",
            open(&server, Transport::Ws, topic, &Cred::None, Via::Header).await,
        ),
        (
            "anonymous JSON",
            open(&server, Transport::Json, topic, &Cred::None, Via::Header).await,
        ),
        (
            "other account",
            open(&server, Transport::Sse, topic, &other.jwt(), Via::Header).await,
        ),
    ];
    let mut owners = [
        open(&server, Transport::Sse, topic, &owner.jwt(), Via::Header).await,
        open(&server, Transport::Ws, topic, &owner.key(), Via::Query).await,
    ];

    set_visibility(&server, &owner.jwt(), topic, "private").await;
    for (what, live) in losing.iter_mut() {
        live.expect_closed(Duration::from_secs(1), what).await;
    }
    for live in owners.iter_mut() {
        live.assert_delivers(&server, topic, &owner.key(), "owners stay")
            .await;
    }
    assert_error(
        &refused(&server, Transport::Sse, topic, &Cred::None, Via::Header).await,
        401,
        NOT_AUTHENTICATED,
        "anonymous after the change",
    );
}

#[actix_rt::test]
async fn an_anonymous_subscription_made_before_a_topic_exists_ends_when_it_is_created_private() {
    let server = TestServer::without_limits();
    let owner = register(&server, "sue").await;
    let mut early = open(&server, Transport::Sse, "sue-new", &Cred::None, Via::Header).await;
    create_topic(&server, &owner.jwt(), "sue-new", "private").await;
    early
        .expect_closed(Duration::from_secs(1), "anonymous early subscriber")
        .await;
}
