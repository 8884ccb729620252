//! Account rules: emails and usernames are unique without regard to case (through the
//! API and the admin CLI alike), an access token is refused before its `nbf`, and
//! emails (RFC 5321 lengths) and passwords (1024 bytes) are bounded before anything is
//! hashed, as are account request bodies.

mod common;

use serde_json::json;

use common::{
    assert_error, assert_status, get, login, register, register_raw, server_paths, Cred,
    TestServer, INVALID, PASSWORD,
};

const SECRET: &str = "the account rules test secret";
const EMAIL_TOO_LONG: &str =
    "Email address is too long (at most 64 characters before the @ and 254 in all)";
const PASSWORD_TOO_LONG: &str = "Password is too long (at most 1024 bytes)";

#[actix_rt::test]
async fn usernames_and_emails_are_unique_without_regard_to_case() {
    let server = TestServer::without_limits();
    let alice = register(&server, "alice").await;
    let got = register_raw(&server, "other@example.com", "ALICE", PASSWORD).await;
    assert_error(&got, 409, "Username already taken", "ALICE beside alice");
    let got = register_raw(&server, "other@example.com", "Alice", PASSWORD).await;
    assert_error(&got, 409, "Username already taken", "Alice beside alice");
    let got = register_raw(&server, "ALICE@Example.COM", "alice2", PASSWORD).await;
    assert_error(&got, 409, "Email already registered", "email in capitals");
    // Login by email in any case.
    let got = login(&server, "Alice@EXAMPLE.com", PASSWORD).await;
    assert_status(&got, 200, "login in capitals");
    assert_eq!(got.1["user"]["id"], alice.id.as_str());
}

#[actix_rt::test]
async fn the_admin_cli_refuses_a_username_or_email_taken_in_another_case() {
    let server = TestServer::without_limits();
    register(&server, "bob").await;
    let (config, db) = server_paths(&server);
    for (email, username, reason) in [
        ("bob2@example.com", "BOB", "Username already taken"),
        ("BOB@example.com", "bob2", "Email already registered"),
    ] {
        let add = [
            "user",
            "--config",
            &config,
            "--database-url",
            &db,
            "add",
            "--email",
            email,
            "--username",
            username,
        ];
        let out = common::cli::run_with_input(&add, &[], Some(PASSWORD));
        assert!(
            !out.success,
            "{username} <{email}> was added: {}",
            out.stdout
        );
        assert!(out.stderr.contains(reason), "{}", out.stderr);
    }
}

#[actix_rt::test]
async fn an_access_token_is_refused_before_its_nbf() {
    let server = TestServer::unlimited("", &format!("[auth]\njwt_secret = \"{SECRET}\""));
    let account = register(&server, "nora").await;
    let now = common::now_unix();
    let sign = |claims: serde_json::Value| {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        encode(&Header::new(Algorithm::HS256), &claims, &key).expect("sign a test JWT")
    };
    let claims = json!({"sub": account.id, "iat": now, "exp": now + 600, "typ": "access"});
    let got = get(&server, "/api/me", &Cred::Bearer(sign(claims.clone()))).await;
    assert_status(&got, 200, "a valid token");
    let mut later = claims.clone();
    later["nbf"] = json!(now + 300);
    let got = get(&server, "/api/me", &Cred::Bearer(sign(later))).await;
    assert_error(&got, 401, INVALID, "nbf ahead");
    let mut earlier = claims;
    earlier["nbf"] = json!(now - 5);
    let got = get(&server, "/api/me", &Cred::Bearer(sign(earlier))).await;
    assert_status(&got, 200, "nbf passed");
}

#[actix_rt::test]
async fn email_addresses_longer_than_rfc_5321_allows_are_422() {
    let server = TestServer::without_limits();
    let long_local = format!("{}@example.com", "a".repeat(300));
    let local_65 = format!("{}@example.com", "b".repeat(65));
    let domain = format!("{}.example.com", "d".repeat(190));
    let whole_255 = format!("{}@{domain}", "c".repeat(254 - domain.len()));
    for (n, email) in [long_local, local_65, whole_255].iter().enumerate() {
        let got = register_raw(&server, email, &format!("long{n}"), PASSWORD).await;
        assert_error(&got, 422, EMAIL_TOO_LONG, &format!("{} bytes", email.len()));
    }
    let local_64 = format!("{}@example.com", "e".repeat(64));
    let whole_254 = format!("{}@{domain}", "f".repeat(253 - domain.len()));
    for (n, email) in [local_64, whole_254].iter().enumerate() {
        let got = register_raw(&server, email, &format!("fits{n}"), PASSWORD).await;
        assert_status(&got, 201, &format!("{} bytes", email.len()));
    }
}

#[actix_rt::test]
async fn passwords_over_1024_bytes_are_refused_without_being_hashed() {
    let server = TestServer::without_limits();
    let longest = "p".repeat(1024);
    let got = register_raw(&server, "long@example.com", "longest", &longest).await;
    assert_status(&got, 201, "a 1024-byte password");
    assert_status(
        &login(&server, "long@example.com", &longest).await,
        200,
        "login",
    );
    // Bytes, not characters: 513 two-byte characters are 1026 bytes.
    for password in ["q".repeat(1025), "é".repeat(513)] {
        let got = register_raw(&server, "over@example.com", "over", &password).await;
        assert_error(&got, 422, PASSWORD_TOO_LONG, "register");
        let got = login(&server, "long@example.com", &password).await;
        assert_error(&got, 401, "Incorrect email or password", "login");
    }
    // A megabyte is refused as a body before it is read as JSON.
    let huge = "x".repeat(1 << 20);
    let got = register_raw(&server, "huge@example.com", "huge", &huge).await;
    assert_status(&got, 413, "a 1 MB password");
    let got = login(&server, "long@example.com", &huge).await;
    assert_status(&got, 413, "a 1 MB login");
}
