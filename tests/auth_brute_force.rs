//! Password guessing and floods: a junk credential counts against its IP like none
//! (on every path, login included, and in the metrics), logins are limited per email
//! (failures; the refusal ends by itself) and per IP, registrations and refreshes per
//! IP; every refusal is 429 `Rate limit exceeded` with `Retry-After` and the quota
//! headers. Clients are told apart by `X-Forwarded-For` (the server is behind a proxy).

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::{
    detail, eventually, metric, register, Reply, TestServer, INCORRECT_LOGIN, PASSWORD,
    RATE_LIMITED,
};

/// The per-IP and per-email limits, each off unless a test sets it.
const LIMITS: [&str; 5] = [
    "anonymous_per_minute",
    "login_failures_per_email",
    "login_per_ip_per_minute",
    "register_per_ip",
    "refresh_per_ip_per_minute",
];

/// A server behind a proxy whose limits are all off except those in `set`
/// (`[limits]` keys and their TOML values).
fn server(set: &[(&str, &str)]) -> TestServer {
    let mut toml = String::from("behind_proxy = true\n[limits]\ndefault_tier = \"unlimited\"\n");
    for key in LIMITS {
        if !set.iter().any(|(k, _)| *k == key) {
            toml.push_str(&format!("{key} = 0\n"));
        }
    }
    for (key, value) in set {
        toml.push_str(&format!("{key} = {value}\n"));
    }
    TestServer::start(&toml)
}

impl Reply {
    fn number_if_sent(&self, name: &str) -> Option<u64> {
        Some(self.header(name)?.parse().expect("a number"))
    }

    /// Asserts a 429 `Rate limit exceeded` with its headers, for a quota of `limit`.
    #[track_caller]
    fn assert_limited(&self, limit: u64, what: &str) {
        assert_eq!(
            (self.status, detail(&self.body)),
            (429, RATE_LIMITED),
            "{what}: {}",
            self.body
        );
        let retry_after = self.number_if_sent("Retry-After").expect("Retry-After");
        assert!(retry_after >= 1, "{what}: Retry-After {retry_after}");
        assert_eq!(
            self.number_if_sent("X-RateLimit-Limit"),
            Some(limit),
            "{what}"
        );
        assert_eq!(
            self.number_if_sent("X-RateLimit-Remaining"),
            Some(0),
            "{what}"
        );
    }
}

/// `method path` from `ip` (as `X-Forwarded-For`) with extra headers and a JSON body.
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    ip: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut all = vec![("X-Forwarded-For", ip)];
    all.extend_from_slice(headers);
    let text = match body {
        Some(body) => {
            all.push(("Content-Type", "application/json"));
            body.to_string()
        }
        None => String::new(),
    };
    server.reply(method, path, &all, text).await
}

async fn login(
    server: &TestServer,
    ip: &str,
    headers: &[(&str, &str)],
    email: &str,
    password: &str,
) -> Reply {
    let body = json!({"email": email, "password": password});
    send(server, "POST", "/auth/login", ip, headers, Some(body)).await
}

async fn register_from(server: &TestServer, ip: &str, headers: &[(&str, &str)], n: u32) -> Reply {
    let name = format!("{}_{n}", common::unique_topic("flood").replace('-', "_"));
    let body =
        json!({"email": format!("{name}@example.com"), "username": name, "password": PASSWORD});
    send(server, "POST", "/auth/register", ip, headers, Some(body)).await
}

/// Headers sent with a request.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// Each junk credential form, with the IP it is sent from: header, query, Basic.
const JUNK: [(&str, &str, Headers); 3] = [
    ("10.0.1.1", "/auth/login", &[("X-API-Key", "noti_bogus")]),
    ("10.0.1.2", "/auth/login?api_key=x", &[]),
    ("10.0.1.3", "/auth/login", &[("Authorization", "Basic x")]),
];

#[actix_rt::test]
async fn password_guesses_with_a_junk_credential_count_against_the_ip_like_none() {
    let server = server(&[("anonymous_per_minute", "5")]);
    let account = register(&server, "victim").await;
    for (ip, path, headers) in JUNK {
        let body = |password: &str| Some(json!({"email": account.email, "password": password}));
        for guess in 0..5 {
            let reply = send(&server, "POST", path, ip, headers, body("wrong guess")).await;
            assert_eq!(reply.status, 401, "{path} {headers:?} guess {guess}");
        }
        let reply = send(&server, "POST", path, ip, headers, body("wrong guess")).await;
        reply.assert_limited(5, &format!("{path} {headers:?}: 6th guess"));
        let reply = send(&server, "POST", path, ip, headers, body(PASSWORD)).await;
        reply.assert_limited(5, &format!("{path} {headers:?}: the right password"));
    }
    // The IP limit is the IP's: the account itself logs in from elsewhere.
    let reply = login(&server, "10.0.1.9", &[], &account.email, PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[actix_rt::test]
async fn a_junk_credential_on_any_path_counts_against_the_ip_and_in_the_metrics() {
    let server = server(&[("anonymous_per_minute", "4")]);
    let invalid = "tidings_auth_failures_total{reason=\"invalid\"}";
    let before = metric(&server, invalid).await;
    let junk = [("X-API-Key", "noti_bogus")];
    for attempt in 1..=5 {
        let path = "/some-topic/json?poll=1";
        let reply = send(&server, "GET", path, "10.0.2.1", &junk, None).await;
        if attempt <= 4 {
            assert_eq!(reply.status, 401, "{}", reply.body);
        } else {
            reply.assert_limited(4, "5th request with a junk key");
        }
    }
    // Login never looked at credentials: its junk ones are failures too.
    for _ in 0..3 {
        let reply = login(&server, "10.0.2.2", &junk, "a@example.com", "wrong guess").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    assert_eq!(metric(&server, invalid).await, before + 8);
}

#[actix_rt::test]
async fn the_right_password_is_refused_while_the_email_is_over_its_failure_quota_then_allowed() {
    let server = server(&[
        ("login_failures_per_email", "3"),
        ("login_window", r#""3s""#),
    ]);
    let account = register(&server, "alice").await;
    let other = register(&server, "bob").await;
    // Logins that succeed use none of the quota.
    for _ in 0..4 {
        let reply = login(&server, "10.0.3.1", &[], &account.email, PASSWORD).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Failures from several IPs, under any spelling of the email, add up.
    let spellings = [
        " ALICE@example.com",
        "alice@EXAMPLE.com",
        "alice@example.com ",
    ];
    for (i, email) in spellings.iter().enumerate() {
        let ip = format!("10.0.3.{}", 10 + i);
        let reply = login(&server, &ip, &[("X-API-Key", "noti_bogus")], email, "wrong").await;
        assert_eq!(
            (reply.status, detail(&reply.body)),
            (401, INCORRECT_LOGIN),
            "{email}"
        );
    }
    let reply = login(&server, "10.0.3.20", &[], &account.email, PASSWORD).await;
    reply.assert_limited(3, "the right password while over the quota");
    assert!(reply.number_if_sent("Retry-After").unwrap() <= 3);
    // Another account is not affected.
    let reply = login(&server, "10.0.3.20", &[], &other.email, PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // No lockout: the quota refills and the right password works again.
    eventually(
        Duration::from_secs(5),
        "the right password works again after the window",
        || async {
            login(&server, "10.0.3.21", &[], &account.email, PASSWORD)
                .await
                .status
                == 200
        },
    )
    .await;
}

#[actix_rt::test]
async fn logins_are_limited_per_ip() {
    let server = server(&[("login_per_ip_per_minute", "4")]);
    for n in 0..4 {
        let email = format!("nobody{n}@example.com");
        let reply = login(&server, "10.0.4.1", &[], &email, "wrong").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let reply = login(&server, "10.0.4.1", &[], "nobody9@example.com", "wrong").await;
    reply.assert_limited(4, "5th login from one IP");
    let reply = login(&server, "10.0.4.2", &[], "nobody9@example.com", "wrong").await;
    assert_eq!(reply.status, 401, "another IP: {}", reply.body);
}

#[actix_rt::test]
async fn a_registration_flood_from_one_ip_reaches_429_with_or_without_a_junk_credential() {
    let server = server(&[("register_per_ip", "3"), ("register_window", r#""1h""#)]);
    let forms: [(&str, &[(&str, &str)]); 2] = [
        ("10.0.5.1", &[]),
        ("10.0.5.2", &[("X-API-Key", "noti_bogus")]),
    ];
    for (ip, headers) in forms {
        for n in 0..3 {
            let reply = register_from(&server, ip, headers, n).await;
            assert_eq!(reply.status, 201, "{headers:?}: {}", reply.body);
        }
        let reply = register_from(&server, ip, headers, 3).await;
        reply.assert_limited(3, &format!("4th registration {headers:?}"));
        // One comes back every 20 minutes.
        let retry_after = reply.number_if_sent("Retry-After").unwrap();
        assert!((1100..=1200).contains(&retry_after), "{retry_after}");
    }
}

#[actix_rt::test]
async fn an_ip_over_its_anonymous_quota_cannot_register_with_a_junk_credential() {
    let server = server(&[("anonymous_per_minute", "2")]);
    for n in 0..2 {
        let reply = register_from(&server, "10.0.6.1", &[], n).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    for (n, headers) in [
        &[("X-API-Key", "noti_bogus")] as &[(&str, &str)],
        &[("Authorization", "Basic x")],
    ]
    .into_iter()
    .enumerate()
    {
        let reply = register_from(&server, "10.0.6.1", headers, 10 + n as u32).await;
        reply.assert_limited(2, &format!("registration with {headers:?}"));
    }
}

#[actix_rt::test]
async fn the_default_registration_quota_is_5_per_hour_per_ip() {
    let server = TestServer::start("");
    for n in 0..5 {
        let reply = register_from(&server, "10.0.7.1", &[], n).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    register_from(&server, "10.0.7.1", &[], 5)
        .await
        .assert_limited(5, "6th registration");
}

#[actix_rt::test]
async fn refreshes_are_limited_per_ip() {
    let server = server(&[("refresh_per_ip_per_minute", "3")]);
    let account = register(&server, "carol").await;
    let refresh = |token: &str| Some(json!({ "refresh_token": token }));
    for _ in 0..3 {
        let reply = send(
            &server,
            "POST",
            "/auth/refresh",
            "10.0.8.1",
            &[],
            refresh("guess"),
        )
        .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let token = account.refresh_token.as_str();
    send(
        &server,
        "POST",
        "/auth/refresh",
        "10.0.8.1",
        &[],
        refresh(token),
    )
    .await
    .assert_limited(3, "4th refresh from one IP");
    let reply = send(
        &server,
        "POST",
        "/auth/refresh",
        "10.0.8.2",
        &[],
        refresh(token),
    )
    .await;
    assert_eq!(reply.status, 200, "another IP: {}", reply.body);
}

#[actix_rt::test]
async fn a_valid_api_key_is_not_charged_against_the_anonymous_quota() {
    let server = server(&[("anonymous_per_minute", "3")]);
    let account = register(&server, "dave").await;
    let key = [("X-API-Key", account.api_key.as_str())];
    for _ in 0..10 {
        let reply = send(&server, "GET", "/api/me", "10.0.9.1", &key, None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // The IP still has its whole anonymous quota.
    for _ in 0..3 {
        let reply = send(&server, "GET", "/api/me", "10.0.9.1", &[], None).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    send(&server, "GET", "/api/me", "10.0.9.1", &[], None)
        .await
        .assert_limited(3, "4th anonymous request");
}
