//! The web app (API.md §11) as the binary serves it: its page and assets over HTTP
//! (CSP, caching, precompressed forms, client routes, the browser redirect of `GET /`),
//! and the whole app end to end in a real browser (`tests/browser/e2e.mjs`: Chromium
//! driven by playwright-core, axe-core on every page, screenshots into
//! `docs/screenshots/`).
//!
//! The browser test needs Node.js, `npm ci` in `tests/browser/` and Debian's
//! `chromium`; `test.sh` installs them and sets `TEST_BROWSER=1`, which turns
//! a missing piece into a failure. Without it the test says loudly that it skipped.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::webpush::{check_vapid, BrowserKeys, PushEndpoint};
use common::TestServer;
use serde_json::Value;

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots");

async fn get(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, awc::http::header::HeaderMap, Vec<u8>) {
    let (status, headers, body) = server.exchange("GET", path, headers, "").await;
    (status, headers, body.to_vec())
}

fn header(headers: &awc::http::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The hashed script `index.html` loads.
fn script_path(index: &[u8]) -> String {
    let html = String::from_utf8_lossy(index);
    let start = html
        .find("/app/assets/")
        .expect("index.html names its assets");
    let end = start + html[start..].find('"').expect("a quoted asset path");
    let path = &html[start..end];
    assert!(path.ends_with(".js"), "first asset is the script: {path}");
    path.to_string()
}

#[actix_rt::test]
async fn the_page_has_a_strict_csp_and_is_never_cached_stale() {
    let server = TestServer::start("");
    let (status, headers, body) = get(&server, "/app/", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
    let csp = header(&headers, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(!csp.contains("http"), "no foreign origin: {csp}");
    let html = String::from_utf8_lossy(&body);
    assert!(!html.contains("<script>"), "no inline script: {html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    // Revalidation: the same ETag answers 304.
    let etag = header(&headers, "etag");
    let (status, _, body) = get(&server, "/app/", &[("If-None-Match", &etag)]).await;
    assert_eq!((status, body.len()), (304, 0));

    // The app's own routes are the same page; a missing hashed asset is a JSON 404.
    for path in [
        "/app/topics/alerts/tokens",
        "/app/settings/keys",
        "/app/login",
    ] {
        let (status, headers, routed) = get(&server, path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(routed, body_of_index(&server).await, "{path}");
        assert!(header(&headers, "content-security-policy").contains("default-src"));
    }
    let (status, headers, body) = get(&server, "/app/assets/index-missing.js", &[]).await;
    assert_eq!(status, 404);
    assert!(header(&headers, "content-type").starts_with("application/json"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["detail"],
        "Not found"
    );
}

async fn body_of_index(server: &TestServer) -> Vec<u8> {
    get(server, "/app/", &[]).await.2
}

#[actix_rt::test]
async fn assets_are_precompressed_and_cached_for_good() {
    let server = TestServer::start("");
    let script = script_path(&body_of_index(&server).await);
    let (status, headers, plain) = get(&server, &script, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(header(&headers, "vary"), "Accept-Encoding");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    for (accept, encoding) in [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip;q=0.5", "gzip"),
        ("identity", ""),
    ] {
        let (status, headers, body) = get(&server, &script, &[("Accept-Encoding", accept)]).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-encoding"), encoding, "{accept}");
        if encoding.is_empty() {
            assert_eq!(body, plain);
        } else {
            assert!(body.len() < plain.len() / 2, "{encoding} is smaller");
        }
    }
}

/// Where a `GET` is redirected to (302), not followed; `None` for any other answer.
async fn redirect(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Option<String> {
    let client = awc::Client::builder().disable_redirects().finish();
    let mut request = client.get(server.url(path));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let response = request.send().await.expect("request");
    (response.status() == 302).then(|| header(response.headers(), "location"))
}

#[actix_rt::test]
async fn browsers_are_sent_to_the_app_and_loading_it_costs_no_quota() {
    let server = TestServer::start("");
    let browser = [(
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )];
    assert_eq!(
        redirect(&server, "/", &browser).await.as_deref(),
        Some("/app/")
    );
    assert_eq!(
        redirect(&server, "/app", &[]).await.as_deref(),
        Some("/app/")
    );
    let json = [("Accept", "application/json")];
    assert_eq!(redirect(&server, "/", &json).await, None, "only browsers");

    // More page loads than the anonymous per-IP quota (60 a minute) allows requests.
    let script = script_path(&body_of_index(&server).await);
    for _ in 0..40 {
        assert_eq!(get(&server, "/app/", &[]).await.0, 200);
        assert_eq!(get(&server, &script, &[]).await.0, 200);
    }
}

/// Whether the browser test can run: Node.js, the test project's packages, Chromium.
fn browser_ready() -> Result<(), String> {
    if !Path::new(BROWSER_DIR)
        .join("node_modules/playwright-core")
        .exists()
    {
        return Err(format!(
            "no node_modules in {BROWSER_DIR} (run `npm ci` there)"
        ));
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("no node on the PATH".into()),
    }
}

/// Runs `script` of `tests/browser/` in Chromium against the server at `url`, with
/// `env` set: whether it passed, or `None` when it cannot run here (it skips loudly or,
/// with `TEST_BROWSER` set, fails).
fn node(script: &str, url: &str, env: &[(&str, String)]) -> Option<bool> {
    if let Err(missing) = browser_ready() {
        assert!(
            std::env::var_os("TEST_BROWSER").is_none(),
            "TEST_BROWSER is set but the browser test cannot run: {missing}"
        );
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED the web app's browser test {script}: {missing}. `./test.sh` \
             installs what it needs. !!!!!!!!\n"
        );
        return None;
    }
    let started = Instant::now();
    let status = Command::new("node")
        .arg(script)
        .current_dir(BROWSER_DIR)
        .env("TIDINGS_URL", url)
        .env("SCREENSHOTS", SCREENSHOTS)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .expect("run node");
    eprintln!("{script}: {:.1} s", started.elapsed().as_secs_f64());
    Some(status.success())
}

/// [`node`] with `script` against `server`, which must pass.
fn run_in_browser(script: &str, server: &TestServer) {
    if let Some(passed) = node(script, &server.url(""), &[]) {
        assert!(
            passed,
            "{script} failed (its steps are above); server log:\n{}",
            server.log()
        );
    }
}

/// A Web Push subscription made by the app's own code (`webpush.mjs`: the service
/// worker, PushManager with the server's VAPID key, the registration with the server)
/// receives a message at the test's push endpoint, which decrypts it with the keys
/// made in the page and checks its VAPID signature.
#[actix_rt::test]
async fn a_web_push_subscription_made_by_the_app_receives_messages() {
    let server = TestServer::start("[webhooks]\nallow_private = true\n");
    let endpoint = PushEndpoint::start().await;
    let keys_file = server.dir().join("push-keys.json");
    let env = vec![
        ("PUSH_ENDPOINT", endpoint.url("app")),
        ("PUSH_KEYS", keys_file.display().to_string()),
    ];
    let url = server.url("");
    // Off this thread: the push endpoint runs on it meanwhile.
    let ran = actix_rt::task::spawn_blocking(move || node("webpush.mjs", &url, &env))
        .await
        .expect("node ran");
    let Some(passed) = ran else { return };
    assert!(passed, "webpush.mjs failed; server log:\n{}", server.log());
    let push = common::eventually(common::WAIT, "the push", || async {
        endpoint
            .received()
            .into_iter()
            .next()
            .ok_or("none yet".to_string())
    })
    .await;
    let page: Value = serde_json::from_slice(&std::fs::read(&keys_file).expect("keys")).unwrap();
    let text = |name: &str| page[name].as_str().expect(name).to_string();
    let keys = BrowserKeys::from_page(&text("d"), &text("p256dh"), &text("auth"));
    let message = keys.decrypt(&push);
    assert_eq!(message["message"], "pushed to the browser");
    assert_eq!(message["title"], "Hi");
    assert_eq!(message["topic"], page["topic"]);
    let (_, key) = server.get_json("/api/webpush").await;
    let key = key["public_key"].as_str().expect("public_key");
    assert_eq!(
        text("application_server_key"),
        key,
        "the app subscribed with the VAPID key"
    );
    check_vapid(&push, key, &format!("http://127.0.0.1:{}", endpoint.port));
}

/// Sign up, a private topic, a read token used from a second browser, live delivery,
/// revocation, API keys, browser access, account, log out and in; XSS, axe, screenshots.
#[actix_rt::test]
async fn the_app_end_to_end_in_chromium() {
    run_in_browser("e2e.mjs", &TestServer::start(""));
}

/// With access tokens that live 5 seconds, the live view and the API calls carry on.
#[actix_rt::test]
async fn an_expired_access_token_is_renewed_silently_in_chromium() {
    let server = TestServer::start("[auth]\naccess_token_ttl = \"5s\"\n");
    run_in_browser("expiry.mjs", &server);
}

/// The app's EventSource asks for `since=all`; when the browser reconnects it repeats
/// that URL with `Last-Event-ID`, which must win, so nothing is replayed twice.
#[actix_rt::test]
async fn a_reconnecting_event_source_resumes_from_last_event_id() {
    let server = TestServer::broker("").await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        sent.push(server.publish("resumed", text).await);
    }
    let first = sent[0]["id"].as_str().unwrap();
    let mut sse = common::SseClient::connect_with(
        &server,
        "/resumed/sse?since=all",
        &[("Last-Event-ID", first)],
    )
    .await;
    for expected in &sent[1..] {
        assert_eq!(
            sse.next_message(common::WAIT).await.as_ref(),
            Some(expected)
        );
    }
    let live = server.publish("resumed", "four").await;
    assert_eq!(sse.next_message(common::WAIT).await, Some(live));
}
