//! Sign-in with OpenID Connect (API.md §12), through a real OpenID Certified provider
//! (`oidc-provider`, `tests/oidc/`) driven as a browser would: accounts made, found and
//! linked; `state` single-use; the provider's refusal; bad ID tokens; key rotation; a
//! provider that is down; a sign-in finished on another node; `redirect_to` and the
//! refresh cookie of the web app (§11), also on login, register, refresh and logout.
//!
//! Without `tests/oidc/node_modules` (`./test.sh` installs it) every test is skipped,
//! loudly.

mod common;

use std::time::Duration;

use common::oidc::*;
use common::*;
use serde_json::{json, Value};

const INVALID_STATE: &str = "Invalid login state";
const REFUSED: &str = "Login cancelled or refused by the provider";
const NOT_VERIFIED: &str = "Email address is not verified";
const UNAVAILABLE: &str = "Identity provider unavailable";
const BAD_REDIRECT: &str = "redirect_to must be a path on this server";

/// A server with the providers of `provider` configured.
fn server_for(provider: &OidcProvider, top_level: &str) -> TestServer {
    TestServer::unlimited(top_level, &provider.config())
}

/// A login name (the provider's account email) no other test uses.
fn new_email(what: &str) -> String {
    format!("{}@example.com", unique_topic(what))
}

/// The fields of a successful sign-in's JSON answer.
#[track_caller]
fn signed_in(answer: &Answer, what: &str) -> Value {
    assert_eq!(answer.status, 200, "{what}: {:?}", answer.body);
    answer.json()
}

#[actix_rt::test]
async fn providers_are_listed_and_unknown_ones_are_404() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    let (status, list) = server.get_json("/auth/providers").await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!([
            {"name": "test", "label": "Test test", "login_url": "/auth/test"},
            {"name": "plain", "label": "Test plain", "login_url": "/auth/plain"},
            {"name": "bad", "label": "Test bad", "login_url": "/auth/bad"},
        ])
    );
    let (status, body) = server.get_json("/auth/nope").await;
    assert_eq!((status, detail(&body)), (404, "Not found"));
    let plain = TestServer::without_limits();
    assert_eq!(plain.get_json("/auth/providers").await, (200, json!([])));
    assert_eq!(plain.get_json("/auth/google").await.0, 404);
}

#[actix_rt::test]
async fn a_first_sign_in_makes_an_account_whose_tokens_work_and_the_next_finds_it() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    let email = new_email("first");
    let first = signed_in(&sign_in(&server, "test", &email).await, "first sign-in");
    assert_eq!(first["token_type"], "bearer");
    assert_eq!(first["user"]["email"], email.to_lowercase());
    let access = Cred::Bearer(first["access_token"].as_str().unwrap().into());
    let key = Cred::ApiKey(first["api_key"]["key"].as_str().unwrap().into());
    let topic = unique_topic("oidc");
    for cred in [&access, &key] {
        assert_status(
            &publish_as(&server, &topic, cred, "hi").await,
            200,
            "publish",
        );
    }
    let (status, me) = get(&server, "/api/me", &access).await;
    assert_eq!((status, &me["id"]), (200, &first["user"]["id"]));
    let refreshed = refresh(&server, first["refresh_token"].as_str().unwrap()).await;
    assert_status(&refreshed, 200, "refresh");

    let second = signed_in(&sign_in(&server, "test", &email).await, "second sign-in");
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert!(second.get("api_key").is_none(), "{second}");
}

#[actix_rt::test]
async fn an_email_only_from_the_userinfo_endpoint_is_used() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "log_level = \"tidings=debug\"");
    let email = new_email("userinfo");
    let answer = sign_in(&server, "plain", &email).await;
    assert_eq!(
        signed_in(&answer, "plain")["user"]["email"],
        email.to_lowercase()
    );
    let got = sign_in(&server, "plain", &new_email("unverified-userinfo")).await;
    assert_error(&got.reply(), 403, NOT_VERIFIED, "unverified, from userinfo");
    assert!(server
        .log()
        .contains("email asked of the userinfo endpoint"));
}

#[actix_rt::test]
async fn a_password_account_with_the_verified_email_is_linked_and_one_without_a_password_refuses_passwords(
) {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    let account = register(&server, &unique_topic("pw").replace('-', "_")).await;
    let linked = signed_in(&sign_in(&server, "test", &account.email).await, "link");
    assert_eq!(linked["user"]["id"], account.id.as_str());
    assert_status(
        &login(&server, &account.email, PASSWORD).await,
        200,
        "password",
    );

    let email = new_email("nopw");
    signed_in(&sign_in(&server, "test", &email).await, "new account");
    for password in ["", "anything at all", PASSWORD] {
        let got = login(&server, &email, password).await;
        assert_error(&got, 401, INCORRECT_LOGIN, "password-less account");
    }
}

#[actix_rt::test]
async fn an_unverified_email_or_closed_registration_is_403() {
    if !provider_installed() {
        return;
    }
    let provider = OidcProvider::shared();
    let server = server_for(provider, "");
    let got = sign_in(&server, "test", &new_email("unverified")).await;
    assert_error(&got.reply(), 403, NOT_VERIFIED, "unverified email");

    let closed = server_for(provider, "registration = \"closed\"");
    let got = sign_in(&closed, "test", &new_email("closed")).await;
    assert_error(
        &got.reply(),
        403,
        REGISTRATION_CLOSED,
        "registration closed",
    );
    // An account made by the admin CLI signs in all the same.
    let name = unique_topic("cli").replace('-', "_");
    let email = format!("{name}@example.com");
    add_user(&closed, &["--email", &email, "--username", &name], PASSWORD);
    let got = sign_in(&closed, "test", &email).await;
    assert_eq!(
        got.status, 200,
        "an existing account signs in: {:?}",
        got.body
    );
}

#[actix_rt::test]
async fn a_state_used_twice_unknown_or_expired_is_400() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    let email = new_email("state");
    let authorize = start_sign_in(&server, "/auth/test").await;
    let mut browser = Browser::new();
    let callback = browser.through_provider(&authorize, &email).await;
    signed_in(&browser.get(&callback).await, "first use");
    let again = browser.get(&callback).await;
    assert_error(&again.reply(), 400, INVALID_STATE, "the same state again");

    for query in ["code=x&state=unknown", "code=x", "state=&code=x"] {
        let path = format!("/auth/test/callback?{query}");
        let got = server.get_json(&path).await;
        assert_error(&got, 400, INVALID_STATE, &path);
    }

    let authorize = start_sign_in(&server, "/auth/test").await;
    let callback = browser.through_provider(&authorize, &email).await;
    expire_sign_ins(&server);
    let late = browser.get(&callback).await;
    assert_error(&late.reply(), 400, INVALID_STATE, "an expired state");

    // A state is good only at the provider it was made for.
    let authorize = start_sign_in(&server, "/auth/bad").await;
    let state = query_param(&authorize, "state").unwrap();
    let got = server
        .get_json(&format!("/auth/test/callback?code=x&state={state}"))
        .await;
    assert_error(&got, 400, INVALID_STATE, "another provider's state");
}

#[actix_rt::test]
async fn a_refusal_at_the_provider_is_401() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    let authorize = start_sign_in(&server, "/auth/test").await;
    let state = query_param(&authorize, "state").unwrap();
    let path =
        format!("/auth/test/callback?error=access_denied&error_description=no&state={state}");
    assert_error(&server.get_json(&path).await, 401, REFUSED, "access_denied");
}

/// Each defect of the bad issuer's ID tokens, and whether the token passes.
const DEFECTS: [(&str, u16); 10] = [
    ("good", 200),
    ("tampered", 401),
    ("audience", 401),
    ("nonce", 401),
    ("expired", 401),
    ("future", 401),
    ("issuer", 401),
    ("unknown-key", 401),
    ("none", 401),
    ("hs256", 401),
];

#[actix_rt::test]
async fn id_tokens_that_fail_a_check_are_401() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    for (defect, status) in DEFECTS {
        let authorize = start_sign_in(&server, "/auth/bad").await;
        let mut browser = Browser::new();
        let back = browser.get(&format!("{authorize}&defect={defect}")).await;
        let callback = back.location().expect("the bad issuer redirects back");
        let got = browser.get(&callback).await.reply();
        match status {
            200 => assert_status(&got, 200, defect),
            _ => assert_error(&got, status, INVALID, defect),
        }
    }
    // What the server saw in each case (its log names the check that failed).
    let log = server.log();
    let refusals: Vec<&str> = (log.lines())
        .filter(|l| l.contains("ID token refused") || l.contains("keys fetched again"))
        .collect();
    for line in &refusals {
        eprintln!("{line}");
    }
    assert!(
        log.contains("keys fetched again"),
        "an unknown key fetches the JWKS again"
    );
    let bad = DEFECTS.iter().filter(|(_, status)| *status != 200).count();
    let refused = refusals.iter().filter(|l| l.contains("ID token refused"));
    assert_eq!(refused.count(), bad, "one refusal for each bad token");
}

#[actix_rt::test]
async fn keys_rotated_at_the_provider_are_fetched_again() {
    if !provider_installed() {
        return;
    }
    let provider = OidcProvider::start();
    let server = server_for(&provider, "");
    let email = new_email("rotate");
    let before = signed_in(&sign_in(&server, "test", &email).await, "before");
    provider.rotate_keys().await;
    let after = signed_in(&sign_in(&server, "test", &email).await, "after rotation");
    assert_eq!(after["user"]["id"], before["user"]["id"]);
    assert!(
        server.log().contains("keys fetched again"),
        "{}",
        server.log()
    );
}

#[actix_rt::test]
async fn a_provider_that_is_down_is_502_until_it_is_back() {
    if !provider_installed() {
        return;
    }
    let mut provider = OidcProvider::start();
    provider.stop();
    let server = server_for(&provider, "");
    let got = server.get_json("/auth/test").await;
    assert_error(&got, 502, UNAVAILABLE, "not discovered yet");

    provider.start_again();
    // Found by a sign-in (which tries discovery again) or the background retries.
    eventually(Duration::from_secs(20), "discovered", || async {
        Browser::new().get(&server.url("/auth/test")).await.status == 302
    })
    .await;
    let email = new_email("back");
    signed_in(&sign_in(&server, "test", &email).await, "once it is back");

    // Down between the redirect to it and the callback: the code cannot be exchanged.
    let authorize = start_sign_in(&server, "/auth/test").await;
    let mut browser = Browser::new();
    let callback = browser.through_provider(&authorize, &email).await;
    provider.stop();
    let got = browser.get(&callback).await;
    assert_error(&got.reply(), 502, UNAVAILABLE, "token endpoint down");
}

#[actix_rt::test]
async fn a_sign_in_started_on_one_node_finishes_on_another() {
    if !provider_installed() {
        return;
    }
    let provider = OidcProvider::shared();
    // Two nodes of one cluster: one Redis, one database (PostgreSQL, or the same
    // SQLite file).
    let redis = common::services::Redis::start();
    let cluster = format!("redis_url = \"{}\"", redis.url());
    let a = server_for(provider, &cluster);
    let b = TestServer::start_on(
        &format!("{cluster}\n{NO_LIMITS}\n{}", provider.config()),
        Some(a.database_url()),
    );
    let authorize = start_sign_in(&a, "/auth/test").await;
    let mut browser = Browser::new();
    let callback = browser
        .through_provider(&authorize, &new_email("node"))
        .await;
    let on_b = browser.get(&on_server(&b, &callback)).await;
    let user = signed_in(&on_b, "finished on the other node");
    let again = browser.get(&callback).await;
    assert_error(
        &again.reply(),
        400,
        INVALID_STATE,
        "then again on the first",
    );
    let access = Cred::Bearer(user["access_token"].as_str().unwrap().into());
    assert_eq!(get(&a, "/api/me", &access).await.0, 200);
}

#[actix_rt::test]
async fn redirect_to_another_origin_is_refused() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    for target in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "app",
    ] {
        let path = format!("/auth/test?redirect_to={}", target.replace('/', "%2F"));
        assert_error(&server.get_json(&path).await, 400, BAD_REDIRECT, target);
    }
}

/// The `tidings_refresh` value of an answer's `Set-Cookie`, checking its attributes.
#[track_caller]
fn refresh_cookie(answer: &Answer, max_age: &str) -> String {
    let cookies = answer.set_cookies();
    let cookie = (cookies.iter())
        .find(|c| c.starts_with("tidings_refresh="))
        .unwrap_or_else(|| panic!("no refresh cookie in {cookies:?}"));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/auth", max_age] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not over plain HTTP: {cookie}");
    let value = cookie["tidings_refresh=".len()..]
        .split(';')
        .next()
        .unwrap();
    value.to_string()
}

/// A request in the web app's cookie session.
async fn in_session(
    server: &TestServer,
    path: &str,
    cookie: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut headers = vec![
        ("X-Tidings-Session", "cookie"),
        ("Content-Type", "application/json"),
    ];
    let jar = format!("tidings_refresh={cookie}");
    if !cookie.is_empty() {
        headers.push(("Cookie", jar.as_str()));
    }
    headers.extend_from_slice(extra);
    let (status, headers, body) = server
        .exchange("POST", path, &headers, body.to_string())
        .await;
    Answer {
        status,
        headers,
        body,
    }
}

#[actix_rt::test]
async fn redirect_to_sets_the_refresh_cookie_which_refreshes_and_logs_out() {
    if !provider_installed() {
        return;
    }
    let server = server_for(OidcProvider::shared(), "");
    let authorize = start_sign_in(&server, "/auth/test?redirect_to=%2Fapp%2Ftopics%3Fx%3D1").await;
    let mut browser = Browser::new();
    let callback = browser
        .through_provider(&authorize, &new_email("cookie"))
        .await;
    let landed = browser.get(&callback).await;
    assert_eq!(landed.status, 302, "{:?}", landed.body);
    assert_eq!(landed.location().as_deref(), Some("/app/topics?x=1"));
    let cookie = refresh_cookie(&landed, "Max-Age=604800");

    let refreshed = in_session(&server, "/auth/refresh", &cookie, &[], "").await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let body = refreshed.json();
    assert!(
        body["access_token"].is_string() && body.get("refresh_token").is_none(),
        "{body}"
    );
    let next = refresh_cookie(&refreshed, "Max-Age=604800");
    assert_ne!(next, cookie);

    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let auth = [("Authorization", bearer.as_str())];
    let out = in_session(&server, "/auth/logout", &next, &auth, "").await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    assert_eq!(refresh_cookie(&out, "Max-Age=0"), "");
    let after = in_session(&server, "/auth/refresh", &next, &[], "").await;
    assert_error(&after.reply(), 401, INVALID, "refresh after logout");
}

#[actix_rt::test]
async fn the_cookie_session_works_for_register_and_login_too() {
    // No provider needed: §11's cookie on the password routes.
    let server = TestServer::without_limits();
    let name = unique_topic("sess").replace('-', "_");
    let body =
        json!({"email": format!("{name}@example.com"), "username": name, "password": PASSWORD});
    let registered = in_session(&server, "/auth/register", "", &[], &body.to_string()).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    assert!(registered.json().get("refresh_token").is_none());
    let first = refresh_cookie(&registered, "Max-Age=604800");

    let body = json!({"email": format!("{name}@example.com"), "password": PASSWORD});
    let logged_in = in_session(&server, "/auth/login", "", &[], &body.to_string()).await;
    assert_eq!(logged_in.status, 200, "{:?}", logged_in.body);
    assert!(logged_in.json().get("refresh_token").is_none());
    let second = refresh_cookie(&logged_in, "Max-Age=604800");
    assert_ne!(first, second);

    let no_cookie = in_session(&server, "/auth/refresh", "", &[], "").await;
    assert_error(&no_cookie.reply(), 401, NOT_AUTHENTICATED, "no cookie");
    // Without the header the body's token is still the one read.
    let plain = refresh(&server, &second).await;
    assert_status(&plain, 200, "a body refresh");
    assert!(plain.1["refresh_token"].is_string());
}

#[test]
fn a_provider_named_like_an_auth_path_stops_start_up_with_one_line() {
    // No provider needed: the configuration is refused before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tidings.toml");
    let table =
        "[[auth.oidc]]\nname = \"logout\"\nissuer = \"https://id.example\"\nclient_id = \"c\"\n";
    std::fs::write(&config, table).unwrap();
    let database = dir.path().join("tidings.db");
    let out = common::cli::run(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--database-url",
            database.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("collides with /auth/logout"),
        "{}",
        lines[0]
    );
}

#[actix_rt::test]
async fn callbacks_count_as_login_attempts_of_their_ip() {
    // No provider needed: the callbacks are refused before one would be asked.
    let provider =
        "[[auth.oidc]]\nname = \"test\"\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"c\"\n";
    let limits = "[limits]\nanonymous_per_minute = 0\nlogin_per_ip_per_minute = 2\n";
    let server = TestServer::start(&format!("{limits}\n{provider}"));
    let path = "/auth/test/callback?code=x&state=unknown";
    for _ in 0..2 {
        assert_error(
            &server.get_json(path).await,
            400,
            INVALID_STATE,
            "within the limit",
        );
    }
    assert_error(&server.get_json(path).await, 429, RATE_LIMITED, "over it");
}
