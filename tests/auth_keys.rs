//! API keys (`noti_…`): create, list by prefix, regenerate, delete, expiry,
//! `last_used_at`, ownership, and credential checks answered from the cache.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn find<'a>(keys: &'a [Value], id: &str) -> Option<&'a Value> {
    keys.iter().find(|k| k["id"] == id)
}

#[actix_rt::test]
async fn creating_a_key_shows_its_secret_once_and_the_list_shows_only_its_prefix() {
    let server = TestServer::without_limits();
    let account = register(&server, "ann").await;
    let made = create_key(&server, &account.jwt(), "ci runner", None).await;
    let secret = made["key"].as_str().expect("key").to_string();
    assert!(
        secret.starts_with("noti_") && secret.len() >= 5 + 32,
        "{secret}"
    );
    assert!(
        secret[5..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "url-safe: {secret}"
    );
    assert_eq!(made["name"], "ci runner");
    assert_eq!(made["prefix"], &secret[5..13]);
    assert!(is_rfc3339_utc(&made["created_at"]), "{made}");
    assert!(made["expires_at"].is_null(), "{made}");
    assert!(made["last_used_at"].is_null(), "{made}");
    assert_eq!(made["active"], true);
    let id = made["id"].as_str().expect("id");

    let keys = list_keys(&server, &account.jwt()).await;
    assert_eq!(
        keys.len(),
        2,
        "the registration key and the new one: {keys:?}"
    );
    for key in &keys {
        assert!(key.get("key").is_none(), "secret shown in the list: {key}");
        for field in [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "active",
        ] {
            assert!(key.get(field).is_some(), "{field} missing: {key}");
        }
    }
    let listed = find(&keys, id).expect("new key listed");
    assert_eq!(listed["prefix"], &secret[5..13]);
    assert_eq!(listed["name"], "ci runner");
    let first = find(&keys, &account.api_key_id).expect("registration key listed");
    assert_eq!(first["prefix"], &account.api_key[5..13]);

    let me = get(&server, "/api/me", &Cred::ApiKey(secret)).await;
    assert_status(&me, 200, "the new key");
    assert_eq!(me.1["id"], account.id.as_str());
}

#[actix_rt::test]
async fn keys_are_managed_with_either_account_credential_and_never_without_one() {
    let server = TestServer::without_limits();
    let account = register(&server, "bob").await;
    let made = create_key(&server, &account.key(), "made with a key", None).await;
    assert!(made["key"].as_str().is_some_and(|k| k.starts_with("noti_")));
    assert_eq!(list_keys(&server, &account.key()).await.len(), 2);
    let anonymous = [
        get(&server, "/api/keys", &Cred::None).await,
        post(&server, "/api/keys", &Cred::None, &json!({"name": "x"})).await,
    ];
    for got in &anonymous {
        assert_error(got, 401, NOT_AUTHENTICATED, "keys without a credential");
    }
    let past = rfc3339_in(-60);
    let got = post(
        &server,
        "/api/keys",
        &account.jwt(),
        &json!({"name": "old", "expires_at": past}),
    )
    .await;
    assert_status(&got, 422, "expires_at in the past");
}

#[actix_rt::test]
async fn regenerating_a_key_gives_a_new_secret_and_the_old_one_fails_at_once() {
    let server = TestServer::without_limits();
    let account = register(&server, "cat").await;
    // Used first, so the old secret sits in the credential cache.
    assert_status(
        &get(&server, "/api/me", &account.key()).await,
        200,
        "old key",
    );
    let path = format!("/api/keys/{}/regenerate", account.api_key_id);
    let got = post(&server, &path, &account.jwt(), &json!({})).await;
    assert_status(&got, 200, "regenerate");
    let fresh = got.1["key"].as_str().expect("new key").to_string();
    assert_ne!(fresh, account.api_key);
    assert_eq!(
        got.1["id"],
        account.api_key_id.as_str(),
        "same key, new secret"
    );
    assert_eq!(got.1["prefix"], &fresh[5..13]);

    assert_error(
        &get(&server, "/api/me", &account.key()).await,
        401,
        INVALID,
        "old secret after regenerate",
    );
    assert_status(
        &get(&server, "/api/me", &Cred::ApiKey(fresh.clone())).await,
        200,
        "new secret",
    );
    let keys = list_keys(&server, &account.jwt()).await;
    let listed = find(&keys, &account.api_key_id).expect("still listed");
    assert_eq!(listed["prefix"], &fresh[5..13]);
}

#[actix_rt::test]
async fn deleting_a_key_makes_it_fail_at_once() {
    let server = TestServer::without_limits();
    let account = register(&server, "dan").await;
    let spare = create_key(&server, &account.jwt(), "spare", None).await;
    let spare_key = Cred::ApiKey(spare["key"].as_str().unwrap().to_string());
    assert_status(&get(&server, "/api/me", &spare_key).await, 200, "spare key");

    let path = format!("/api/keys/{}", spare["id"].as_str().unwrap());
    assert_status(&delete(&server, &path, &account.jwt()).await, 204, "delete");
    assert_error(
        &get(&server, "/api/me", &spare_key).await,
        401,
        INVALID,
        "deleted key",
    );
    let keys = list_keys(&server, &account.jwt()).await;
    assert!(
        find(&keys, spare["id"].as_str().unwrap()).is_none(),
        "{keys:?}"
    );
    assert_status(
        &delete(&server, &path, &account.jwt()).await,
        404,
        "delete twice",
    );
    assert_status(
        &get(&server, "/api/me", &account.key()).await,
        200,
        "the other key still works",
    );
}

#[actix_rt::test]
async fn another_accounts_key_cannot_be_regenerated_or_deleted() {
    let server = TestServer::without_limits();
    let owner = register(&server, "eve").await;
    let intruder = register(&server, "fay").await;
    let regen = format!("/api/keys/{}/regenerate", owner.api_key_id);
    let got = post(&server, &regen, &intruder.jwt(), &json!({})).await;
    assert_status(&got, 404, "regenerate a foreign key");
    assert!(got.1.get("key").is_none(), "{}", got.1);
    let path = format!("/api/keys/{}", owner.api_key_id);
    assert_status(
        &delete(&server, &path, &intruder.key()).await,
        404,
        "delete a foreign key",
    );
    assert_status(
        &post(
            &server,
            "/api/keys/no-such-id/regenerate",
            &owner.jwt(),
            &json!({}),
        )
        .await,
        404,
        "unknown id",
    );
    assert_status(
        &get(&server, "/api/me", &owner.key()).await,
        200,
        "owner's key untouched",
    );
    let listed = list_keys(&server, &intruder.jwt()).await;
    assert!(find(&listed, &owner.api_key_id).is_none(), "{listed:?}");
}

#[actix_rt::test]
async fn last_used_at_is_set_once_a_key_is_used() {
    let server = TestServer::without_limits();
    let account = register(&server, "gus").await;
    let made = create_key(&server, &account.jwt(), "watched", None).await;
    let id = made["id"].as_str().unwrap().to_string();
    let keys = list_keys(&server, &account.jwt()).await;
    assert!(find(&keys, &id).unwrap()["last_used_at"].is_null());

    let key = Cred::ApiKey(made["key"].as_str().unwrap().to_string());
    assert_status(&get(&server, "/api/me", &key).await, 200, "use the key");
    let before = common::now_unix();
    // It may lag by a few seconds.
    let last_used = eventually(WAIT, "last_used_at is set after use", || async {
        let keys = list_keys(&server, &account.jwt()).await;
        let last_used = find(&keys, &id).unwrap()["last_used_at"].clone();
        if last_used.is_null() {
            Err("still null")
        } else {
            Ok(last_used)
        }
    })
    .await;
    assert!(is_rfc3339_utc(&last_used), "{last_used}");
    let text = last_used.as_str().unwrap();
    let (earliest, latest) = (rfc3339(before - 60), rfc3339(before + 60));
    assert!(
        text >= earliest.as_str() && text <= latest.as_str(),
        "last_used_at {text} is not about now ({})",
        rfc3339(before)
    );
}

#[actix_rt::test]
async fn a_key_stops_working_when_it_expires() {
    let server = TestServer::without_limits();
    let account = register(&server, "hal").await;
    let expires_at = rfc3339_in(2);
    let made = create_key(&server, &account.jwt(), "short", Some(&expires_at)).await;
    assert_eq!(made["expires_at"], expires_at.as_str());
    assert_eq!(made["active"], true);
    let key = Cred::ApiKey(made["key"].as_str().unwrap().to_string());
    assert_status(&get(&server, "/api/me", &key).await, 200, "before expiry");

    until_refused("the key passes its expires_at", || {
        get(&server, "/api/me", &key)
    })
    .await;
    assert_error(
        &get(&server, "/api/me", &key).await,
        401,
        EXPIRED,
        "expired key",
    );
    assert_error(
        &publish_as(&server, "hal-news", &key, "late").await,
        401,
        EXPIRED,
        "publish with an expired key",
    );
    let keys = list_keys(&server, &account.jwt()).await;
    assert_eq!(
        find(&keys, made["id"].as_str().unwrap()).unwrap()["active"],
        false
    );
}

#[actix_rt::test]
async fn a_live_subscription_opened_with_a_key_ends_when_the_key_is_deleted() {
    let server = TestServer::without_limits();
    let account = register(&server, "ivy").await;
    create_topic(&server, &account.jwt(), "ivy-private", "private").await;
    let spare = create_key(&server, &account.jwt(), "subscriber", None).await;
    let spare_key = Cred::ApiKey(spare["key"].as_str().unwrap().to_string());
    let mut live = open(
        &server,
        Transport::Sse,
        "ivy-private",
        &spare_key,
        Via::Query,
    )
    .await;
    let mut kept = open(
        &server,
        Transport::Sse,
        "ivy-private",
        &account.key(),
        Via::Header,
    )
    .await;
    let path = format!("/api/keys/{}", spare["id"].as_str().unwrap());
    assert_status(&delete(&server, &path, &account.jwt()).await, 204, "delete");
    live.expect_closed(Duration::from_secs(1), "subscription of the deleted key")
        .await;
    kept.assert_delivers(&server, "ivy-private", &account.jwt(), "still here")
        .await;
}

#[actix_rt::test]
async fn repeated_checks_of_the_same_api_key_do_not_touch_the_database() {
    let server = TestServer::without_limits();
    let account = register(&server, "jay").await;
    // The first check loads the key and the account into the cache: it is counted.
    let cold = metric(&server, "tidings_auth_db_lookups_total").await;
    assert_status(
        &get(&server, "/api/me", &account.key()).await,
        200,
        "warm up",
    );
    let warm = metric(&server, "tidings_auth_db_lookups_total").await;
    assert!(warm > cold, "a first check is a lookup ({cold} -> {warm})");
    let before = metric(&server, "tidings_auth_db_lookups_total").await;
    for i in 0..50 {
        let got = get(&server, "/api/me", &account.key()).await;
        assert_status(&got, 200, &format!("check {i}"));
    }
    let after = metric(&server, "tidings_auth_db_lookups_total").await;
    assert!(
        after - before <= 2,
        "50 checks of a cached API key made {} database lookups",
        after - before
    );
}

#[actix_rt::test]
async fn an_expiry_given_with_an_offset_is_shown_in_utc() {
    let server = TestServer::without_limits();
    let account = register(&server, "kip").await;
    let made = create_key(
        &server,
        &account.jwt(),
        "offset",
        Some("2099-01-01T12:00:00+02:00"),
    )
    .await;
    assert_eq!(made["expires_at"], "2099-01-01T10:00:00Z");
    let keys = list_keys(&server, &account.jwt()).await;
    let listed = find(&keys, made["id"].as_str().unwrap()).unwrap();
    assert_eq!(listed["expires_at"], "2099-01-01T10:00:00Z");
    assert_eq!(listed["active"], true);
}
