//! What ntfy's clients send works unchanged (API.md §1, §6): `GET /{topics}/auth`
//! answers as subscribing would; `Authorization: Bearer` with an API key or topic token,
//! and `Basic` with one of them as the password or with an account's email or username
//! and password, on publish, streams and the check, also as ntfy's `?auth=`; a wrong Basic password is an
//! invalid credential, and every Basic password is a login attempt, limited as one.

mod common;

use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use serde_json::{json, Value};

use common::{
    assert_error, basic, create_topic, detail, get, register, subscribe_with, token, Account, Cred,
    TestServer, Transport, FORBIDDEN, INVALID, NOT_AUTHENTICATED, PASSWORD, RATE_LIMITED, WAIT,
};

/// `GET path` with one `Authorization` header (none for `None`): `(status, body)`.
async fn get_as(server: &TestServer, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    let (status, _, body) = server.request("GET", path, &headers, "").await;
    (status, common::parse_json(&body, path))
}

/// An owner with a private and a public topic, and a stranger.
struct Setup {
    server: TestServer,
    owner: Account,
    stranger: Account,
    private: String,
    public: String,
}

async fn setup(toml: &str) -> Setup {
    let server = TestServer::start(toml);
    let owner = register(&server, &common::unique_topic("owner").replace('-', "_")).await;
    let stranger = register(&server, &common::unique_topic("other").replace('-', "_")).await;
    let private = common::unique_topic("private");
    let public = common::unique_topic("public");
    create_topic(&server, &owner.key(), &private, "private").await;
    create_topic(&server, &owner.key(), &public, "public").await;
    Setup {
        server,
        owner,
        stranger,
        private,
        public,
    }
}

#[actix_rt::test]
async fn the_auth_check_answers_as_subscribing_would() {
    let s = setup(common::NO_LIMITS).await;
    let (private, public) = (&s.private, &s.public);
    let (_, reader) = token(&s.server, &s.owner.key(), private, "read").await;
    let (_, writer) = token(&s.server, &s.owner.key(), private, "write").await;
    let both = format!("/{private},{public}/auth");
    let allowed = [
        (format!("/{private}/auth"), s.owner.key(), "owner's key"),
        (both.clone(), s.owner.jwt(), "owner's JWT, two topics"),
        (format!("/{private}/auth"), reader.clone(), "read token"),
        (format!("/{public}/auth"), Cred::None, "anyone, public"),
        (
            format!("/{public}/auth"),
            s.stranger.key(),
            "stranger, public",
        ),
    ];
    for (path, cred, what) in allowed {
        let got = get(&s.server, &path, &cred).await;
        assert_eq!(got, (200, json!({"success": true})), "{what}");
    }
    let refused = [
        (
            both.clone(),
            Cred::None,
            401,
            NOT_AUTHENTICATED,
            "anyone, one private",
        ),
        (both, s.stranger.key(), 403, FORBIDDEN, "stranger"),
        (
            format!("/{private}/auth"),
            writer,
            403,
            FORBIDDEN,
            "write-only token",
        ),
        (
            format!("/{public}/auth"),
            reader,
            401,
            INVALID,
            "token of another topic",
        ),
        (
            format!("/{public}/auth"),
            Cred::ApiKey("noti_bogus".into()),
            401,
            INVALID,
            "unknown key, public",
        ),
    ];
    for (path, cred, status, text, what) in refused {
        assert_error(&get(&s.server, &path, &cred).await, status, text, what);
    }
    let bad_name = get(&s.server, "/no%20spaces/auth", &Cred::None).await;
    assert_eq!(bad_name.0, 400, "{}", bad_name.1);
    // `auth` is a check, not a transport: the same check on a first request of a
    // connection, which the front would stream for `sse`, `json` or `raw`.
    let head = format!("GET /{public}/auth HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut raw = common::raw_connect(s.server.addr(), head.as_bytes());
    let answer = common::raw_response(&mut raw, WAIT);
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"success": true}))
    );
}

#[actix_rt::test]
async fn ntfy_authorization_forms_are_credentials() {
    let s = setup(common::NO_LIMITS).await;
    let (_, read_write) = token(&s.server, &s.owner.key(), &s.private, "read_write").await;
    let Cred::TopicToken(tk) = read_write else {
        unreachable!()
    };
    let key = &s.owner.api_key;
    let forms = [
        (format!("Bearer {key}"), "Bearer API key"),
        (format!("Bearer {tk}"), "Bearer topic token"),
        (basic("", key), "Basic, API key as password"),
        (basic("anyone", &tk), "Basic, topic token as password"),
        (basic(&s.owner.email, PASSWORD), "Basic, email and password"),
        (
            basic(&s.owner.username, PASSWORD),
            "Basic, username and password",
        ),
    ];
    for (authorization, what) in &forms {
        let headers = [("Authorization", authorization.as_str())];
        let check = get_as(
            &s.server,
            &format!("/{}/auth", s.private),
            Some(authorization),
        )
        .await;
        assert_eq!(check, (200, json!({"success": true})), "{what}: auth");
        // As a header, and as ntfy's `?auth=` (the header's value in base64url), which
        // browsers' WebSocket and EventSource use.
        let auth = BASE64_URL_SAFE_NO_PAD.encode(authorization);
        let ways = [
            (Transport::Sse, String::new(), &headers[..]),
            (Transport::Ws, String::new(), &headers[..]),
            (Transport::Ws, format!("?auth={auth}"), &[][..]),
            (Transport::Json, format!("?since=none&auth={auth}"), &[][..]),
        ];
        for (transport, query, sent) in ways {
            let path = format!("/{}/{transport}{query}", s.private);
            let mut live = subscribe_with(&s.server, transport, &path, sent)
                .await
                .unwrap_or_else(|refusal| panic!("{what}: {path} refused: {refusal:?}"));
            let text = format!("{what} over {path}");
            let (status, _, body) = s
                .server
                .request("POST", &format!("/{}", s.private), &headers, text.clone())
                .await;
            assert_eq!(status, 200, "{what}: publish: {body:?}");
            let got = live.next_text(WAIT).await;
            assert_eq!(got.as_deref(), Some(text.as_str()), "{what}: {path}");
        }
    }
}

#[actix_rt::test]
async fn a_wrong_basic_password_is_an_invalid_credential_everywhere() {
    let s = setup(common::NO_LIMITS).await;
    let wrong = [
        basic(&s.owner.username, "not the password"),
        basic(&s.owner.email, "not the password"),
        basic("nobody", PASSWORD),
        basic("", "noti_not_a_key"),
        basic("x", "tk_not_a_token"),
        "Basic not-base64!".to_string(),
        format!("Basic {}", BASE64_STANDARD.encode("no colon")),
    ];
    for authorization in &wrong {
        let headers = [("Authorization", authorization.as_str())];
        for path in [format!("/{}/auth", s.public), format!("/{}/sse", s.public)] {
            let got = get_as(&s.server, &path, Some(authorization)).await;
            assert_error(&got, 401, INVALID, &format!("{authorization} on {path}"));
        }
        let (status, _, body) = s
            .server
            .request("POST", &format!("/{}", s.public), &headers, "x")
            .await;
        let got = (status, common::parse_json(&body, "publish"));
        assert_error(&got, 401, INVALID, &format!("{authorization} publishing"));
        let auth = BASE64_URL_SAFE_NO_PAD.encode(authorization);
        let path = format!("/{}/sse?auth={auth}", s.public);
        assert_error(&get_as(&s.server, &path, None).await, 401, INVALID, &path);
    }
    let garbled = format!("/{}/sse?auth=not%20base64", s.public);
    assert_error(
        &get_as(&s.server, &garbled, None).await,
        401,
        INVALID,
        &garbled,
    );
}

#[actix_rt::test]
async fn basic_passwords_are_login_attempts_limited_per_account_and_per_ip() {
    // Three failures per account; clients told apart by `X-Forwarded-For`.
    let s = setup(
        "behind_proxy = true\n[limits]\ndefault_tier = \"unlimited\"\nanonymous_per_minute = 0\n\
         login_failures_per_email = 3\nlogin_per_ip_per_minute = 0\n",
    )
    .await;
    let path = format!("/{}/auth", s.private);
    let from = |ip: &'static str, authorization: String| {
        auth_check(&s.server, path.clone(), ip, authorization)
    };
    // Guesses by username and by email count against the same account.
    let guesses = [
        basic(&s.owner.username, "guess 1"),
        basic(&s.owner.email.to_uppercase(), "guess 2"),
        basic(&s.owner.username, "guess 3"),
    ];
    for (n, guess) in guesses.into_iter().enumerate() {
        assert_error(
            &from("10.0.9.1", guess).await,
            401,
            INVALID,
            &format!("guess {n}"),
        );
    }
    let right = basic(&s.owner.username, PASSWORD);
    let got = from("10.0.9.2", right.clone()).await;
    assert_error(
        &got,
        429,
        RATE_LIMITED,
        "the right password, over the account's quota",
    );
    let login = common::login(&s.server, &s.owner.email, PASSWORD).await;
    assert_error(
        &login,
        429,
        RATE_LIMITED,
        "POST /auth/login for that account too",
    );
    // Other accounts, and the account's keys, are not held back.
    let stranger = basic(&s.stranger.username, PASSWORD);
    assert_eq!(
        from("10.0.9.1", stranger).await.0,
        403,
        "another account logs in"
    );
    let key = format!("Bearer {}", s.owner.api_key);
    assert_eq!(from("10.0.9.1", key).await.0, 200, "the account's API key");

    // Every Basic password, right or wrong, counts against the IP's login quota.
    let per_ip = TestServer::start(
        "behind_proxy = true\n[limits]\ndefault_tier = \"unlimited\"\nanonymous_per_minute = 0\n\
         login_failures_per_email = 0\nlogin_per_ip_per_minute = 2\n",
    );
    let account = register(&per_ip, "basic_ip").await;
    let topic = common::unique_topic("ip");
    create_topic(&per_ip, &account.key(), &topic, "private").await;
    let ask = |ip: &'static str, authorization: String| {
        auth_check(&per_ip, format!("/{topic}/auth"), ip, authorization)
    };
    let right = basic(&account.username, PASSWORD);
    assert_eq!(ask("10.0.9.5", right.clone()).await.0, 200);
    assert_eq!(
        ask("10.0.9.5", basic(&account.username, "wrong")).await.0,
        401
    );
    let third = ask("10.0.9.5", right.clone()).await;
    assert_eq!(
        (third.0, detail(&third.1)),
        (429, RATE_LIMITED),
        "{}",
        third.1
    );
    assert_eq!(ask("10.0.9.6", right).await.0, 200, "another IP");
}

/// `GET path` (a `/{topics}/auth` check) from client `ip` (through the proxy) with an
/// `Authorization` header: `(status, body)`.
async fn auth_check(
    server: &TestServer,
    path: String,
    ip: &str,
    authorization: String,
) -> (u16, Value) {
    let headers = [
        ("Authorization", authorization.as_str()),
        ("X-Forwarded-For", ip),
    ];
    let (status, _, body) = server.request("GET", &path, &headers, "").await;
    (status, common::parse_json(&body, "auth"))
}
