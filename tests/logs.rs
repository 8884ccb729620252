//! The server's log: one access line per request and one line per authentication
//! failure, in text and in JSON, with every credential redacted; streams' ends; the
//! Redis link; the log format from the flag, the environment or the file.

mod common;

use common::*;
use serde_json::{json, Value};

/// A request the log must show once: what its access line says.
struct Expected {
    method: &'static str,
    /// As logged: the query's credentials already `REDACTED`.
    path: String,
    status: u16,
    credential: &'static str,
}

/// What [`exercise`] did: the access lines to find and every secret it used.
struct Exercised {
    expected: Vec<Expected>,
    secrets: Vec<String>,
}

/// Makes requests with each kind of credential, in headers and in the query, and
/// with a wrong key and a wrong password.
async fn exercise(server: &TestServer) -> Exercised {
    let owner = register(server, &unique_topic("logger").replace('-', "_")).await;
    let topic = unique_topic("logged");
    let private = unique_topic("private");
    create_topic(server, &owner.key(), &private, "private").await;
    let (_, topic_token) = token(server, &owner.key(), &private, "read").await;
    let Cred::TopicToken(topic_secret) = &topic_token else {
        unreachable!("a topic token")
    };
    let wrong_key = "noti_thisisnotakeyofanyone0123456789";
    let wrong_password = "not the password at all";
    let mut expected = Vec::new();
    let mut expect = |method, path: String, status, credential| {
        expected.push(Expected {
            method,
            path,
            status,
            credential,
        })
    };

    let got = publish_as(server, &topic, &owner.key(), "hello").await;
    assert_status(&got, 200, "publish with the key in a header");
    expect("POST", format!("/{topic}"), 200, "api_key");

    let got = publish_via(server, &topic, &owner.key(), Via::Query, "again").await;
    assert_status(&got, 200, "publish with the key in the query");
    expect("POST", format!("/{topic}?api_key=REDACTED"), 200, "api_key");

    // A stream opened as a connection's first request (answered by the front).
    let path = format!("/{topic}/json?poll=1&since=all&api_key={}", owner.api_key);
    assert_eq!(
        poll(server, &path, &Cred::None).await,
        200,
        "key in the query"
    );
    let logged = format!("/{topic}/json?poll=1&since=all&api_key=REDACTED");
    expect("GET", logged, 200, "api_key");

    assert_status(&get(server, "/api/me", &owner.jwt()).await, 200, "me");
    expect("GET", "/api/me".into(), 200, "jwt");

    let path = format!("/{topic}/json?poll=1&token={}", owner.access_token);
    assert_eq!(poll(server, &path, &Cred::None).await, 200);
    expect(
        "GET",
        format!("/{topic}/json?poll=1&token=REDACTED"),
        200,
        "jwt",
    );

    let path = format!("/{private}/json?poll=1");
    assert_eq!(poll(server, &path, &topic_token).await, 200);
    expect("GET", path, 200, "topic_token");

    let path = format!("/{private}/json?token={topic_secret}&poll=1");
    assert_eq!(poll(server, &path, &Cred::None).await, 200);
    let logged = format!("/{private}/json?token=REDACTED&poll=1");
    expect("GET", logged, 200, "topic_token");

    // ntfy's Basic form with the account's password.
    let path = format!("/{private}/json?poll=1&since=all");
    let basic = basic(&owner.email, &owner.password);
    let got = server
        .request("GET", &path, &[("Authorization", &basic)], "")
        .await;
    assert_eq!(got.0, 200, "Basic with the password");
    expect("GET", path, 200, "password");

    let wrong = Cred::ApiKey(wrong_key.into());
    let got = publish_as(server, &topic, &wrong, "refused").await;
    assert_error(&got, 401, INVALID, "a wrong key");
    expect("POST", format!("/{topic}"), 401, "api_key");

    let got = login(server, &owner.email, wrong_password).await;
    assert_eq!(got.0, 401, "a wrong password: {}", got.1);
    expect("POST", "/auth/login".into(), 401, "none");

    Exercised {
        expected,
        secrets: vec![
            owner.api_key.clone(),
            owner.access_token.clone(),
            owner.refresh_token.clone(),
            owner.password.clone(),
            topic_secret.clone(),
            wrong_key.into(),
            wrong_password.into(),
        ],
    }
}

/// A poll of NDJSON lines: its status.
async fn poll(server: &TestServer, path: &str, cred: &Cred) -> u16 {
    let owned = cred.headers();
    server
        .request("GET", path, &header_refs(&owned), "")
        .await
        .0
}

/// No secret used appears anywhere in the log.
fn assert_no_secret(log: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows the secret {secret}:\n{log}"
        );
    }
}

/// A text log's access lines: the `key=value` text each request's line must hold.
fn text_line(e: &Expected) -> String {
    format!(
        "tidings::access: request method={} path={} status={} ",
        e.method, e.path, e.status
    )
}

#[actix_rt::test]
async fn text_access_lines_name_each_request_and_no_secret() {
    let server = TestServer::without_limits();
    let done = exercise(&server).await;
    let log = eventually(WAIT, "the last access line", || async {
        let log = server.log();
        let last = text_line(done.expected.last().unwrap());
        if log.contains(&last) {
            Ok(log)
        } else {
            Err(log)
        }
    })
    .await;
    for e in &done.expected {
        let start = text_line(e);
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&start)).collect();
        let [line] = lines[..] else {
            panic!("one access line with `{start}`, got {lines:?}\nlog:\n{log}");
        };
        let fields = format!(" ip=127.0.0.1 credential={}", e.credential);
        assert!(line.contains(&fields), "`{fields}` in {line}");
        assert!(line.contains(" duration_ms="), "{line}");
    }
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tidings::auth: authentication failed"))
        .collect();
    let has = |reason: &str| {
        failures.iter().any(|l| {
            l.contains(&format!("reason={reason} "))
                && l.contains("ip=127.0.0.1")
                && l.contains("WARN")
        })
    };
    assert!(
        has("invalid"),
        "a failure line for the wrong key: {failures:?}"
    );
    assert!(
        has("incorrect_login"),
        "one for the wrong password: {failures:?}"
    );
    assert_no_secret(&log, &done.secrets);
}

#[actix_rt::test]
async fn json_access_lines_parse_with_their_fields() {
    let server = TestServer::unlimited("log_format = \"json\"", "");
    let done = exercise(&server).await;
    let lines = eventually(WAIT, "the last access line as JSON", || async {
        let log = server.log();
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let last = done.expected.last().unwrap();
        let seen = lines.iter().any(|l| is_access(l, last));
        if seen {
            Ok(lines)
        } else {
            Err(log)
        }
    })
    .await;
    for e in &done.expected {
        let found: Vec<&Value> = lines.iter().filter(|l| is_access(l, e)).collect();
        let [line] = found[..] else {
            panic!("one access object for {} {}: {found:?}", e.method, e.path);
        };
        assert_eq!(line["ip"], "127.0.0.1", "{line}");
        assert_eq!(line["credential"], e.credential, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    let failure = lines
        .iter()
        .find(|l| l["target"] == "tidings::auth" && l["reason"] == "invalid")
        .unwrap_or_else(|| panic!("an authentication failure object: {lines:?}"));
    assert_eq!(failure["message"], "authentication failed");
    assert_eq!(failure["ip"], "127.0.0.1");
    assert_eq!(failure["detail"], INVALID);
    assert_eq!(failure["credential"], "api_key");
    assert_no_secret(&server.log(), &done.secrets);
}

/// Whether a JSON log object is `e`'s access line.
fn is_access(line: &Value, e: &Expected) -> bool {
    line["target"] == "tidings::access"
        && line["message"] == "request"
        && line["method"] == e.method
        && line["path"] == e.path.as_str()
        && line["status"] == json!(e.status)
}

#[actix_rt::test]
async fn every_transport_logs_its_opening_and_its_end() {
    let server = TestServer::without_limits();
    for transport in TRANSPORTS {
        let topic = unique_topic("ended");
        let path = format!("/{topic}/{transport}?since=all");
        // A plain socket for the streams, closed for sure when dropped.
        let subscriber = match transport {
            Transport::Ws => Ok(Subscriber::connect(&server, transport, &topic, "since=all").await),
            _ => Err(TcpSse::connect(server.addr(), &path, WAIT)),
        };
        // A WebSocket is answered 101 by the dispatcher; the others 200, by the front.
        let status = if transport == Transport::Ws { 101 } else { 200 };
        let opened = format!("tidings::access: request method=GET path={path} status={status} ");
        eventually(WAIT, &format!("{transport} opened"), || async {
            server.log().contains(&opened)
        })
        .await;
        drop(subscriber);
        let ended = format!("tidings::access: stream ended path={path} duration_ms=");
        eventually(WAIT, &format!("{transport} ended"), || async {
            server.log().contains(&ended)
        })
        .await;
    }
}

#[actix_rt::test]
async fn behind_a_proxy_the_forwarded_client_is_logged() {
    let server = TestServer::unlimited("behind_proxy = true", "");
    let topic = unique_topic("proxied");
    let forwarded = [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")];
    for path in [format!("/{topic}/json?poll=1"), "/health".to_string()] {
        let (status, _, _) = server.request("GET", &path, &forwarded, "").await;
        assert_eq!(status, 200, "{path}");
        let line = format!("request method=GET path={path} status=200 ");
        let log = eventually(WAIT, &format!("{path} logged"), || async {
            let log = server.log();
            log.lines()
                .find(|l| l.contains(&line))
                .map(str::to_string)
                .ok_or(log)
        })
        .await;
        assert!(log.contains(" ip=203.0.113.7 "), "{log}");
    }
}

#[actix_rt::test]
async fn the_redis_link_is_logged_as_it_drops_and_comes_back() {
    let mut redis = services::Redis::start();
    let server = TestServer::unlimited(&format!("redis_url = \"{}\"", redis.url()), "");
    let count = |what: &str| server.log().matches(what).count();
    let joined = "joined the cluster through Redis";
    eventually(WAIT, "joined", || async { count(joined) == 1 }).await;
    redis.kill();
    eventually(WAIT, "the drop logged", || async {
        server
            .log()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("lost the connection to Redis"))
    })
    .await;
    redis.start_again();
    // Reconnection backs off up to 5 s.
    let within = WAIT + std::time::Duration::from_secs(5);
    eventually(within, "the return logged", || async { count(joined) == 2 }).await;
}

#[actix_rt::test]
async fn unreachable_redis_is_warned_of_at_start() {
    let server = TestServer::unlimited("redis_url = \"redis://127.0.0.1:1\"", "");
    eventually(WAIT, "a warning that Redis cannot be reached", || async {
        let log = server.log();
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("cannot reach Redis"))
    })
    .await;
    // It still serves.
    assert_eq!(server.get_json("/health").await.0, 200);
}

/// `tidings serve` started by hand with `args` and `env`: its stderr once it listens.
fn first_log_lines(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("stderr.log");
    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut all = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
    ];
    all.extend_from_slice(args);
    let mut child = cli::command(&all, env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn tidings");
    let listening = listening_addr(&mut child, START_TIMEOUT);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually_blocking(WAIT, "the start-up line", || {
        let text = read();
        text.contains("tidings started").then_some(()).ok_or(text)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.is_some(), "tidings did not start: {}", read());
    read()
}

#[test]
fn the_log_format_comes_from_the_flag_or_the_environment() {
    let is_json = |log: &str| {
        log.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v.is_object()))
    };
    let flag = first_log_lines(&["--log-format", "json"], &[]);
    assert!(is_json(&flag), "{flag}");
    let env = first_log_lines(&[], &[("TIDINGS_LOG_FORMAT", "json")]);
    assert!(is_json(&env), "{env}");
    // The flag wins over the environment.
    let text = first_log_lines(&["--log-format", "text"], &[("TIDINGS_LOG_FORMAT", "json")]);
    assert!(
        text.contains(" INFO tidings::server: tidings started"),
        "{text}"
    );
    let bad = cli::tidings(&["serve", "--log-format", "xml", "--listen", "127.0.0.1:0"]);
    assert!(!bad.success);
    assert!(
        bad.stderr.contains("xml") && bad.stderr.contains("log_format"),
        "{}",
        bad.stderr
    );
}

#[actix_rt::test]
async fn a_connection_the_front_refuses_has_a_line_without_its_request() {
    let server = TestServer::without_limits();
    let secret = "tk_neverlogged0123456789";
    let garbage = format!("GET /t?token={secret} HTTP/1.1\r\nBad Header\r\n\r\n");
    let mut stream = raw_connect(server.addr(), garbage.as_bytes());
    let answer = raw_response(&mut stream, WAIT);
    assert_eq!(answer.status, 400, "a malformed head");
    let log = eventually(WAIT, "the refusal logged", || async {
        let log = server.log();
        if log.contains("tidings::access: refused") {
            Ok(log)
        } else {
            Err(log)
        }
    })
    .await;
    let line = log
        .lines()
        .find(|l| l.contains("tidings::access: refused"))
        .expect("a refused line");
    assert!(line.contains("status=400"), "{line}");
    assert!(line.contains("ip=127.0.0.1"), "{line}");
    assert_no_secret(&log, &[secret.to_string()]);
}
