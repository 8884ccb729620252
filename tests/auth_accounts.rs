//! Accounts: registration, login, refresh-token rotation and theft detection, logout,
//! `GET /api/me`, access-token expiry, and the admin CLI working on a running server.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[actix_rt::test]
async fn register_returns_the_user_a_token_pair_and_a_first_api_key() {
    let server = TestServer::default_config();
    let (status, body) = register_raw(&server, "Ann@Example.com", "ann", PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    let user = &body["user"];
    assert!(user["id"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
    assert_eq!(
        user["email"], "ann@example.com",
        "emails are kept in lower case"
    );
    assert_eq!(user["username"], "ann");
    assert_eq!(user["tier"], "free");
    assert_eq!(body["token_type"], "bearer");
    let access = body["access_token"].as_str().expect("access_token");
    assert!(access.starts_with("eyJ"), "access token is a JWT: {access}");
    assert!(body["refresh_token"]
        .as_str()
        .is_some_and(|s| s.len() >= 32));

    let key = &body["api_key"];
    let secret = key["key"].as_str().expect("api_key.key");
    assert!(
        secret.starts_with("noti_") && secret.len() >= 5 + 32,
        "{secret}"
    );
    assert_eq!(key["prefix"], &secret[5..13]);
    assert!(key["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(key["name"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(is_rfc3339_utc(&key["created_at"]), "{key}");
    assert!(key["expires_at"].is_null(), "{key}");
    assert!(key["last_used_at"].is_null(), "{key}");
    assert_eq!(key["active"], true);

    // Both credentials work at once.
    for cred in [
        Cred::Bearer(access.to_string()),
        Cred::ApiKey(secret.to_string()),
    ] {
        let me = get(&server, "/api/me", &cred).await;
        assert_status(&me, 200, "GET /api/me");
        assert_eq!(me.1["id"], user["id"]);
        assert_eq!(me.1["username"], "ann");
    }
}

#[actix_rt::test]
async fn register_refuses_a_taken_email_or_username_with_409() {
    let server = TestServer::without_limits();
    register(&server, "bob").await;
    let cases = [
        ("bob@example.com", "bobby", "same email"),
        ("BOB@example.COM", "bobby", "same email in other case"),
        ("other@example.com", "bob", "same username"),
    ];
    for (email, username, what) in cases {
        let got = register_raw(&server, email, username, PASSWORD).await;
        assert_status(&got, 409, what);
        assert!(!detail(&got.1).is_empty(), "{what}: {}", got.1);
    }
    // Nothing half-made: the original still logs in, the refused names stay free.
    assert_status(
        &login(&server, "bob@example.com", PASSWORD).await,
        200,
        "login",
    );
    assert_status(
        &register_raw(&server, "bobby@example.com", "bobby", PASSWORD).await,
        201,
        "register bobby",
    );
}

#[actix_rt::test]
async fn register_refuses_a_password_shorter_than_8_with_422() {
    let server = TestServer::without_limits();
    let got = register_raw(&server, "c@example.com", "carol", "1234567").await;
    assert_status(&got, 422, "7-character password");
    assert!(!detail(&got.1).is_empty(), "{}", got.1);
    let got = register_raw(&server, "c@example.com", "carol", "12345678").await;
    assert_status(&got, 201, "8-character password");
}

#[actix_rt::test]
async fn register_is_403_registration_is_closed_when_closed_by_config() {
    let server = TestServer::unlimited("registration = \"closed\"", "");
    let got = register_raw(&server, "d@example.com", "dave", PASSWORD).await;
    assert_error(&got, 403, REGISTRATION_CLOSED, "register while closed");
    assert_error(
        &login(&server, "d@example.com", PASSWORD).await,
        401,
        INCORRECT_LOGIN,
        "no account was made",
    );
}

#[actix_rt::test]
async fn login_returns_a_working_token_pair_and_the_user() {
    let server = TestServer::without_limits();
    let account = register(&server, "erin").await;
    let (status, body) = login(&server, "ERIN@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["user"]["id"], account.id.as_str());
    assert_eq!(body["user"]["email"], "erin@example.com");
    assert_eq!(body["user"]["username"], "erin");
    let access = body["access_token"].as_str().expect("access_token");
    let me = get(&server, "/api/me", &Cred::Bearer(access.into())).await;
    assert_status(&me, 200, "me with the login's access token");
    assert_eq!(me.1["id"], account.id.as_str());
    let refresh_token = body["refresh_token"].as_str().expect("refresh_token");
    assert_status(
        &refresh(&server, refresh_token).await,
        200,
        "login's refresh token",
    );
}

#[actix_rt::test]
async fn wrong_password_and_unknown_email_both_get_incorrect_email_or_password() {
    let server = TestServer::without_limits();
    register(&server, "frank").await;
    let wrong_password = login(&server, "frank@example.com", "not the password").await;
    assert_error(&wrong_password, 401, INCORRECT_LOGIN, "wrong password");
    let unknown = login(&server, "nobody@example.com", PASSWORD).await;
    assert_error(&unknown, 401, INCORRECT_LOGIN, "unknown email");
    assert_eq!(wrong_password.1, unknown.1, "the two answers look the same");
}

#[actix_rt::test]
async fn refresh_gives_a_new_pair_and_the_old_refresh_token_stops_working() {
    let server = TestServer::without_limits();
    let account = register(&server, "gina").await;
    let (status, body) = refresh(&server, &account.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    let next = body["refresh_token"].as_str().expect("refresh_token");
    assert_ne!(next, account.refresh_token, "the refresh token is rotated");
    let access = body["access_token"].as_str().expect("access_token");
    let me = get(&server, "/api/me", &Cred::Bearer(access.into())).await;
    assert_status(&me, 200, "new access token");
    assert_eq!(me.1["id"], account.id.as_str());

    // The new one works once more; the old one is refused.
    assert_status(&refresh(&server, next).await, 200, "rotated token");
    assert_error(
        &refresh(&server, "not-a-refresh-token").await,
        401,
        INVALID,
        "unknown refresh token",
    );
}

#[actix_rt::test]
async fn reusing_a_rotated_refresh_token_revokes_its_whole_family() {
    let server = TestServer::without_limits();
    let account = register(&server, "hank").await;
    let other_session = login(&server, &account.email, PASSWORD).await;
    assert_status(&other_session, 200, "second login");
    let first = refresh(&server, &account.refresh_token).await;
    assert_status(&first, 200, "first rotation");
    let newest = first.1["refresh_token"].as_str().unwrap().to_string();

    // Someone replays the token that was already exchanged.
    assert_error(
        &refresh(&server, &account.refresh_token).await,
        401,
        INVALID,
        "replayed refresh token",
    );
    // The legitimate holder's newest token of that family is dead too.
    assert_error(
        &refresh(&server, &newest).await,
        401,
        INVALID,
        "newest token of a revoked family",
    );
    // Another login is another family and is untouched.
    let other = other_session.1["refresh_token"].as_str().unwrap();
    assert_status(&refresh(&server, other).await, 200, "another family");
}

#[actix_rt::test]
async fn logout_revokes_the_refresh_token_and_needs_a_credential() {
    let server = TestServer::without_limits();
    let account = register(&server, "ida").await;
    let body = json!({"refresh_token": account.refresh_token});
    assert_error(
        &post(&server, "/auth/logout", &Cred::None, &body).await,
        401,
        NOT_AUTHENTICATED,
        "logout without a credential",
    );
    // Someone else's refresh token cannot be revoked.
    let other = register(&server, "ivo").await;
    let foreign = json!({"refresh_token": other.refresh_token});
    let got = post(&server, "/auth/logout", &account.jwt(), &foreign).await;
    assert_status(&got, 401, "logout with another account's refresh token");
    assert_status(
        &refresh(&server, &other.refresh_token).await,
        200,
        "the other account's session survives",
    );

    let got = post(&server, "/auth/logout", &account.jwt(), &body).await;
    assert_status(&got, 204, "logout");
    assert_error(
        &refresh(&server, &account.refresh_token).await,
        401,
        INVALID,
        "refresh after logout",
    );
}

#[actix_rt::test]
async fn me_shows_the_tier_and_its_publish_limit() {
    let server = TestServer::default_config();
    let account = register(&server, "jill").await;
    let (status, me) = get(&server, "/api/me", &account.jwt()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], account.id.as_str());
    assert_eq!(me["email"], "jill@example.com");
    assert_eq!(me["username"], "jill");
    assert_eq!(me["tier"], "free");
    assert_eq!(me["publish_limit"], 10, "{me}");
    assert_error(
        &get(&server, "/api/me", &Cred::None).await,
        401,
        NOT_AUTHENTICATED,
        "me without a credential",
    );
}

#[actix_rt::test]
async fn an_access_token_expires_after_its_ttl_and_refresh_gives_a_fresh_one() {
    let server = TestServer::unlimited("", "[auth]\naccess_token_ttl = \"1s\"");
    let account = register(&server, "kim").await;
    let topic = "kim-news";
    create_topic(&server, &account.key(), topic, "public").await;
    // A token fresh from a login, so that slow set-up cannot eat its second.
    let fresh = login(&server, &account.email, PASSWORD).await;
    let account = Account {
        access_token: fresh.1["access_token"].as_str().unwrap().to_string(),
        ..account
    };
    assert_status(
        &get(&server, "/api/me", &account.jwt()).await,
        200,
        "fresh token",
    );

    let jwt = account.jwt();
    until_refused("the one-second token expires", || {
        get(&server, "/api/me", &jwt)
    })
    .await;
    assert_error(
        &get(&server, "/api/me", &account.jwt()).await,
        401,
        EXPIRED,
        "expired JWT on /api/me",
    );
    // An expired credential is an error even where none is needed.
    for transport in [Transport::Sse, Transport::Ws] {
        let got = refused(&server, transport, topic, &account.jwt(), Via::Query).await;
        assert_error(&got, 401, EXPIRED, "expired JWT as ?token=");
    }
    assert_error(
        &publish_as(&server, topic, &account.jwt(), "late").await,
        401,
        EXPIRED,
        "publish with an expired JWT",
    );

    let renewed = refresh(&server, &account.refresh_token).await;
    assert_status(&renewed, 200, "refresh");
    let access = renewed.1["access_token"].as_str().unwrap().to_string();
    assert_status(
        &get(&server, "/api/me", &Cred::Bearer(access)).await,
        200,
        "renewed access token",
    );
}

#[actix_rt::test]
async fn a_malformed_or_foreign_access_token_is_401_could_not_validate_credentials() {
    let server = TestServer::without_limits();
    let other_server = server_with_other_secret();
    let foreign = register(&other_server, "lee").await;
    let account = register(&server, "lee").await;
    let mut tampered = account.access_token.clone();
    tampered.push('x');
    let cases = [
        ("garbage", Cred::Bearer("garbage".into())),
        ("tampered signature", Cred::Bearer(tampered)),
        ("signed by another server", foreign.jwt()),
    ];
    for (what, cred) in cases {
        assert_error(&get(&server, "/api/me", &cred).await, 401, INVALID, what);
    }
    let basic = server
        .request("GET", "/api/me", &[("Authorization", "Basic YTpi")], "")
        .await;
    let basic = (basic.0, common::parse_json(&basic.2, "basic"));
    assert_error(&basic, 401, INVALID, "Authorization: Basic");
}

fn server_with_other_secret() -> TestServer {
    TestServer::unlimited(
        "",
        "[auth]\njwt_secret = \"a different secret for this server\"",
    )
}

// ---------------------------------------------------------------------------
// Admin CLI against the running server's database
// ---------------------------------------------------------------------------

#[actix_rt::test]
async fn cli_user_add_creates_an_account_that_can_log_in_and_use_its_key() {
    let server = TestServer::without_limits();
    let out = add_user(
        &server,
        &[
            "--email",
            "mia@example.com",
            "--username",
            "mia",
            "--tier",
            "essentials",
        ],
        PASSWORD,
    );
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("noti_"))
        .unwrap_or_else(|| panic!("no API key printed: {out}"))
        .to_string();

    let (status, body) = login(&server, "mia@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["username"], "mia");
    let me = get(&server, "/api/me", &Cred::ApiKey(key)).await;
    assert_status(&me, 200, "the printed API key");
    assert_eq!(me.1["tier"], "essentials");
    assert_eq!(me.1["publish_limit"], 30);
}

#[actix_rt::test]
async fn cli_user_list_shows_every_account_with_its_tier() {
    let server = TestServer::without_limits();
    register(&server, "ned").await;
    register(&server, "olga").await;
    let out = admin(&server, &["list"]);
    for (email, username) in [("ned@example.com", "ned"), ("olga@example.com", "olga")] {
        let line = out
            .lines()
            .find(|l| l.contains(email))
            .unwrap_or_else(|| panic!("{email} not listed:\n{out}"));
        assert!(line.contains(username), "{line}");
        assert!(line.contains("unlimited"), "tier shown: {line}");
    }
}

#[actix_rt::test]
async fn cli_user_tier_is_seen_by_the_running_server_within_2_seconds() {
    let server = TestServer::without_limits();
    let account = register(&server, "pat").await;
    let me = get(&server, "/api/me", &account.key()).await;
    assert_eq!(me.1["tier"], "unlimited", "{}", me.1);
    admin(&server, &["tier", "pat@example.com", "team"]);
    eventually(
        Duration::from_secs(2),
        "the tier change is seen",
        || async {
            let (_, me) = get(&server, "/api/me", &account.key()).await;
            me["tier"] == "team" && me["publish_limit"] == 100
        },
    )
    .await;
    let (_, me) = get(&server, "/api/me", &account.jwt()).await;
    assert_eq!(me["tier"], "team", "also through the JWT: {me}");
}

#[actix_rt::test]
async fn cli_user_delete_makes_the_users_credentials_fail_within_2_seconds() {
    let server = TestServer::without_limits();
    let account = register(&server, "quinn").await;
    let bystander = register(&server, "rita").await;
    assert_status(
        &get(&server, "/api/me", &account.key()).await,
        200,
        "key before delete",
    );
    admin(&server, &["delete", "quinn@example.com"]);
    eventually(
        Duration::from_secs(2),
        "the deleted user's API key is refused",
        || async { get(&server, "/api/me", &account.key()).await.0 == 401 },
    )
    .await;
    assert_error(
        &get(&server, "/api/me", &account.key()).await,
        401,
        INVALID,
        "deleted user's API key",
    );
    assert_error(
        &get(&server, "/api/me", &account.jwt()).await,
        401,
        INVALID,
        "deleted user's JWT",
    );
    assert_error(
        &login(&server, &account.email, PASSWORD).await,
        401,
        INCORRECT_LOGIN,
        "deleted user's login",
    );
    assert_error(
        &refresh(&server, &account.refresh_token).await,
        401,
        INVALID,
        "deleted user's refresh token",
    );
    assert_status(
        &get(&server, "/api/me", &bystander.key()).await,
        200,
        "another user is untouched",
    );
}

#[actix_rt::test]
async fn cli_user_commands_accept_their_options_after_the_action() {
    let server = TestServer::without_limits();
    let (config, db) = server_paths(&server);
    let add = [
        "user",
        "add",
        "--config",
        &config,
        "--database-url",
        &db,
        "--email",
        "sam@example.com",
        "--username",
        "sam",
    ];
    let out = common::cli::run_with_input(&add, &[], Some(PASSWORD));
    assert!(out.success, "{}", out.stderr);
    let out = tidings(&["user", "list", "--config", &config, "--database-url", &db]);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("sam@example.com"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------
// Access-token signing, lifetimes and login timing
// ---------------------------------------------------------------------------

const SECRET: &str = "a shared secret only these tests know";

/// An HS256 JWT over `claims`, signed with `secret`.
fn sign(claims: &serde_json::Value, secret: &str) -> String {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign a test JWT")
}

/// A JWT with `alg` in its header and no valid signature for it.
fn unsigned(alg: &str, claims: &serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

#[actix_rt::test]
async fn access_tokens_are_checked_for_signature_algorithm_type_subject_and_expiry() {
    let server = TestServer::unlimited("", &format!("[auth]\njwt_secret = \"{SECRET}\""));
    let account = register(&server, "tess").await;
    let now = common::now_unix();
    let good = json!({"sub": account.id, "iat": now, "exp": now + 600, "typ": "access"});
    let me = get(&server, "/api/me", &Cred::Bearer(sign(&good, SECRET))).await;
    assert_status(&me, 200, "a token signed with the configured secret");
    assert_eq!(me.1["id"], account.id.as_str());

    let cases = [
        ("alg none", unsigned("none", &good), INVALID),
        ("wrong secret", sign(&good, "another secret"), INVALID),
        (
            "not an access token",
            sign(
                &json!({"sub": account.id, "exp": now + 600, "typ": "refresh"}),
                SECRET,
            ),
            INVALID,
        ),
        (
            "no expiry",
            sign(&json!({"sub": account.id, "typ": "access"}), SECRET),
            INVALID,
        ),
        (
            "unknown account",
            sign(
                &json!({"sub": "no-such-user", "exp": now + 600, "typ": "access"}),
                SECRET,
            ),
            INVALID,
        ),
        (
            "expired",
            sign(
                &json!({"sub": account.id, "iat": now - 120, "exp": now - 60, "typ": "access"}),
                SECRET,
            ),
            EXPIRED,
        ),
    ];
    for (what, token, expected) in cases {
        let got = get(&server, "/api/me", &Cred::Bearer(token.clone())).await;
        assert_error(&got, 401, expected, what);
        let got = refused(
            &server,
            Transport::Sse,
            "tess-open",
            &Cred::Bearer(token),
            Via::Query,
        )
        .await;
        assert_error(&got, 401, expected, &format!("{what} on a stream"));
    }
}

#[actix_rt::test]
async fn access_tokens_stay_valid_across_a_restart() {
    let mut server = TestServer::without_limits();
    let account = register(&server, "uma").await;
    server.restart();
    let me = get(&server, "/api/me", &account.jwt()).await;
    assert_status(&me, 200, "JWT issued before the restart");
    assert_status(
        &refresh(&server, &account.refresh_token).await,
        200,
        "refresh token issued before the restart",
    );
}

#[actix_rt::test]
async fn an_expired_refresh_token_is_refused() {
    let server = TestServer::unlimited("", "[auth]\nrefresh_token_ttl = \"1s\"");
    let account = register(&server, "vic").await;
    // Time itself is under test: the one-second refresh token must expire (trying it
    // would use it up, so it cannot be polled).
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    let got = refresh(&server, &account.refresh_token).await;
    assert_status(&got, 401, "expired refresh token");
    assert!([EXPIRED, INVALID].contains(&detail(&got.1)), "{}", got.1);
}

#[actix_rt::test]
async fn a_login_for_an_unknown_email_takes_about_as_long_as_a_wrong_password() {
    let server = TestServer::without_limits();
    register(&server, "wes").await;
    // Warm both paths once, then take the median of a few tries each.
    login(&server, "nobody@example.com", "x").await;
    login(&server, "wes@example.com", "x").await;
    let mut wrong_password = Vec::new();
    let mut unknown_email = Vec::new();
    for i in 0..5 {
        let start = std::time::Instant::now();
        let got = login(&server, "wes@example.com", &format!("wrong {i}")).await;
        wrong_password.push(start.elapsed());
        assert_error(&got, 401, INCORRECT_LOGIN, "wrong password");
        let start = std::time::Instant::now();
        let got = login(&server, &format!("nobody{i}@example.com"), PASSWORD).await;
        unknown_email.push(start.elapsed());
        assert_error(&got, 401, INCORRECT_LOGIN, "unknown email");
    }
    wrong_password.sort();
    unknown_email.sort();
    let (wrong, unknown) = (wrong_password[2], unknown_email[2]);
    assert!(
        unknown * 3 >= wrong,
        "an unknown email is answered much faster ({unknown:?}) than a wrong password ({wrong:?})"
    );
}

#[actix_rt::test]
async fn with_registration_closed_the_admin_cli_still_adds_accounts() {
    let server = TestServer::unlimited("registration = \"closed\"", "");
    add_user(
        &server,
        &["--email", "xia@example.com", "--username", "xia"],
        PASSWORD,
    );
    assert_status(
        &login(&server, "xia@example.com", PASSWORD).await,
        200,
        "login of a CLI-made account",
    );
}

#[actix_rt::test]
async fn a_deleted_users_live_subscription_gets_nothing_from_a_new_topic_of_the_same_name() {
    let server = TestServer::without_limits();
    let gone = register(&server, "yan").await;
    create_topic(&server, &gone.jwt(), "vault", "private").await;
    let mut stale = open(&server, Transport::Sse, "vault", &gone.key(), Via::Header).await;
    admin(&server, &["delete", "yan@example.com"]);
    eventually(
        Duration::from_secs(2),
        "the deleted user's API key is refused",
        || async { get(&server, "/api/me", &gone.key()).await.0 == 401 },
    )
    .await;

    // Someone else takes the name and posts something private.
    let heir = register(&server, "zed").await;
    create_topic(&server, &heir.jwt(), "vault", "private").await;
    assert_status(
        &publish_as(&server, "vault", &heir.key(), "for zed only").await,
        200,
        "publish",
    );
    let leaked = stale.next_message(Duration::from_secs(1)).await;
    assert!(
        leaked.is_none(),
        "a deleted account's subscription received another account's private message: {leaked:?}"
    );
}

#[actix_rt::test]
async fn numbers_of_messages_deleted_with_an_account_are_not_reused_after_a_restart() {
    let mut server = TestServer::without_limits();
    let rita = register(&server, "rita").await;
    let quinn = register(&server, "quinn").await;
    let (status, _) = publish_as(&server, "rita-news", &rita.key(), "older").await;
    assert_eq!(status, 200);
    let (status, newest) = publish_as(&server, "quinn-news", &quinn.key(), "newest").await;
    assert_eq!(status, 200, "{newest}");
    // The CLI deletes the newest message, with quinn's topic, from another process.
    admin(&server, &["delete", "quinn@example.com"]);
    server.restart();
    let (status, after) = publish_as(&server, "rita-news", &rita.key(), "after").await;
    assert_eq!(status, 200, "{after}");
    // An id starts with its sequence number (7 ordered characters).
    let number = |m: &serde_json::Value| m["id"].as_str().unwrap()[..7].to_string();
    assert!(
        number(&after) > number(&newest),
        "{after} reuses the number of deleted {newest}"
    );
}

#[actix_rt::test]
async fn messages_deleted_with_an_account_do_not_come_back_to_a_new_topic_of_that_name() {
    let mut server = TestServer::without_limits();
    let gone = register(&server, "uma").await;
    create_topic(&server, &gone.jwt(), "diary", "private").await;
    for text in ["first secret", "second secret"] {
        let (status, m) = publish_as(&server, "diary", &gone.key(), text).await;
        assert_eq!(status, 200, "{m}");
    }
    // Deleted from another process while the server has just stored them.
    admin(&server, &["delete", "uma@example.com"]);
    server.restart();

    let heir = register(&server, "vic").await;
    create_topic(&server, &heir.jwt(), "diary", "private").await;
    let (status, after) = publish_as(&server, "diary", &heir.key(), "vic's own").await;
    assert_eq!(status, 200, "{after}");
    let (status, history) = get(&server, "/api/topics/diary/messages?since=all", &heir.key()).await;
    assert_eq!(status, 200, "{history}");
    let texts: Vec<&str> = history
        .as_array()
        .expect("history is an array")
        .iter()
        .map(|m| m["message"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        texts,
        ["vic's own"],
        "a deleted account's messages came back"
    );
}
