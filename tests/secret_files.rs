//! Secrets read from files (`auth.jwt_secret_file`, `database_url_file`, and their
//! `TIDINGS_*` forms), as systemd credentials and Docker secrets give them: a server
//! started with each works, the trailing newline is not part of the secret, and an
//! unreadable or empty file, or a secret given both ways, stops it with one line.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};

use common::cli::{command, run, CliOutput};
use common::server::{listening_addr, START_TIMEOUT};
use common::{register, services, unique_topic, TestServer, NO_LIMITS};
use serde_json::json;

/// Writes `text` to `name` in `dir`; its path.
fn secret_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write secret file");
    path.display().to_string()
}

/// `tidings serve` on a free port with `config` and `env`, and no `--database-url`.
fn serve(config: &str, env: &[(&str, &str)]) -> CliOutput {
    run(
        &["serve", "--config", config, "--listen", "127.0.0.1:0"],
        env,
    )
}

/// Asserts a start refused with one `error:` line naming each of `names`.
#[track_caller]
fn refused(out: &CliOutput, names: &[&str]) {
    assert!(!out.success, "it started: {}", out.stdout);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", out.stderr);
    for name in names {
        assert!(
            errors[0].contains(name),
            "{:?} not named: {}",
            name,
            errors[0]
        );
    }
}

#[actix_rt::test]
async fn the_jwt_secret_comes_from_its_file_without_the_newline() {
    let secrets = tempfile::tempdir().expect("temp dir");
    let path = secret_file(secrets.path(), "jwt_secret", "a secret from a file\n");
    let server = TestServer::start(&format!(
        "{NO_LIMITS}\n[auth]\njwt_secret_file = {path:?}\n"
    ));
    let account = register(&server, &unique_topic("jwt").replace('-', "_")).await;
    let key = jsonwebtoken::DecodingKey::from_secret(b"a secret from a file");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    let signed =
        jsonwebtoken::decode::<serde_json::Value>(&account.access_token, &key, &validation);
    assert!(
        signed.is_ok(),
        "not signed with the file's secret: {signed:?}"
    );
    let (status, body) = common::login(&server, &account.email, &account.password).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_rt::test]
async fn the_database_url_comes_from_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = services::fresh_database_url(dir.path());
    let url_file = secret_file(dir.path(), "database_url", &format!("{url}\n"));
    let config = secret_file(dir.path(), "tidings.toml", NO_LIMITS);
    // An account made in that database with the URL itself...
    let user = [
        "user",
        "--config",
        &config,
        "--database-url",
        &url,
        "add",
        "--email",
        "file@example.com",
        "--username",
        "file_user",
    ];
    let made = common::cli::run_with_input(&user, &[], Some("a long password"));
    assert!(made.success, "{}", made.stderr);
    let api_key = made
        .stdout
        .split_whitespace()
        .last()
        .expect("API key")
        .to_string();
    // ...logs in to a server given only the file.
    let args = ["serve", "--config", &config, "--listen", "127.0.0.1:0"];
    let mut child: Child = command(&args, &[("TIDINGS_DATABASE_URL_FILE", &url_file)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tidings");
    let addr = listening_addr(&mut child, START_TIMEOUT);
    let client = common::client();
    let base = format!("http://{}", addr.as_deref().unwrap_or("127.0.0.1:1"));
    let login = json!({"email": "file@example.com", "password": "a long password"});
    let logged_in = client
        .post(format!("{base}/auth/login"))
        .send_json(&login)
        .await;
    let published = client
        .post(format!("{base}/{}", unique_topic("file")))
        .insert_header(("X-API-Key", api_key))
        .send_body("stored where the file says")
        .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(addr.is_some(), "the server did not start");
    assert_eq!(logged_in.expect("login").status(), 200);
    assert_eq!(published.expect("publish").status(), 200);
}

#[test]
fn unreadable_or_empty_files_and_secrets_given_twice_stop_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = secret_file(
        dir.path(),
        "tidings.toml",
        "[auth]\njwt_secret = \"inline\"\n",
    );
    let missing = dir.path().join("missing").display().to_string();
    let empty = secret_file(dir.path(), "empty", "\n");

    let out = serve(&config, &[("TIDINGS_DATABASE_URL_FILE", &missing)]);
    refused(&out, &["database_url_file", &missing]);
    let out = serve(&config, &[("TIDINGS_DATABASE_URL_FILE", &empty)]);
    refused(&out, &["database_url_file", "empty"]);
    let out = serve(&config, &[("TIDINGS_AUTH__JWT_SECRET_FILE", &empty)]);
    refused(&out, &["auth.jwt_secret and auth.jwt_secret_file"]);
}
