//! The command-line client as a daily tool: a subscriber that rides out a server
//! restart, gives up with one line when refused, credentials from the environment or
//! the client config file, a message from stdin, a password from stdin.

mod common;

use common::cli::{run, run_with_input, server_paths};
use common::cli_daily::{Relay, Running};
use common::{eventually, login, unique_topic, TestServer, PASSWORD, WAIT};

/// The id of a stored message object.
fn id(message: &serde_json::Value) -> String {
    message["id"].as_str().expect("a message id").to_string()
}

/// Waits until `subscriber` has printed exactly the messages `published`, in order.
async fn prints_exactly(subscriber: &Running, published: &[String], what: &str) {
    eventually(WAIT, what, || async {
        let ids = subscriber.ids();
        if ids == published {
            Ok(())
        } else {
            Err(ids)
        }
    })
    .await;
}

#[actix_rt::test]
async fn the_subscriber_rides_out_a_server_restart_with_nothing_lost_or_repeated() {
    let mut server = TestServer::broker("").await;
    // The subscriber keeps one address; the restarted server listens on another port.
    let relay = Relay::to(server.addr());
    let topic = unique_topic("daily");
    let mut published = vec![id(&server.publish(&topic, "before it starts").await)];
    let url = relay.url();
    let subscriber = Running::start(
        &["subscribe", "--server", &url, "--since", "all", &topic],
        &[],
    );
    published.push(id(&server.publish(&topic, "before the restart").await));
    prints_exactly(&subscriber, &published, "both messages printed").await;

    server.restart();
    // Published while the subscriber cannot reach the server: it has to ask for it.
    published.push(id(&server.publish(&topic, "while it is away").await));
    // Back only after an attempt or two found no server behind the address.
    eventually(WAIT, "attempts while the server is away", || async {
        subscriber.stderr().matches("cannot reach").count() >= 1
    })
    .await;
    relay.point_to(server.addr());
    prints_exactly(&subscriber, &published, "the message published while away").await;
    published.push(id(&server.publish(&topic, "after the restart").await));
    prints_exactly(&subscriber, &published, "every message once, in order").await;
    assert!(
        subscriber.stderr().contains("retrying in"),
        "{}",
        subscriber.stderr()
    );
}

#[actix_rt::test]
async fn a_live_only_subscriber_gets_what_was_published_while_it_was_away() {
    let mut server = TestServer::broker("").await;
    let relay = Relay::to(server.addr());
    let topic = unique_topic("daily");
    let url = relay.url();
    // No `--since`, nothing printed yet: it resumes from when its stream opened.
    let subscriber = Running::start(&["subscribe", "--server", &url, &topic], &[]);
    eventually(WAIT, "the stream opened", || async {
        relay.seen().contains(r#""event":"open""#)
    })
    .await;
    server.restart();
    let mut published = vec![id(&server.publish(&topic, "while it is away").await)];
    relay.point_to(server.addr());
    prints_exactly(&subscriber, &published, "the message published while away").await;
    published.push(id(&server.publish(&topic, "after the restart").await));
    prints_exactly(&subscriber, &published, "every message once, in order").await;
}

#[actix_rt::test]
async fn the_subscriber_gives_up_with_one_line_when_refused_or_unreachable() {
    let server = TestServer::broker("").await;
    let url = server.url("");
    let refused = run(
        &[
            "subscribe",
            "--server",
            &url,
            "--api-key",
            "noti_bogus",
            "t",
        ],
        &[],
    );
    assert!(!refused.success);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("error: 401"),
        "{}",
        refused.stderr
    );

    let args = [
        "subscribe",
        "--server",
        "http://127.0.0.1:1",
        "--max-retries",
        "2",
        "t",
    ];
    let unreachable = run(&args, &[]);
    assert!(!unreachable.success);
    let lines: Vec<&str> = unreachable.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "two retries, then the end: {lines:?}");
    assert!(
        lines[2].starts_with("error: gave up after 3 attempts: cannot reach"),
        "{lines:?}"
    );
    assert!(
        unreachable.took < std::time::Duration::from_secs(5),
        "{:?}",
        unreachable.took
    );
}

#[actix_rt::test]
async fn the_server_and_key_come_from_the_environment_or_the_client_config_file() {
    let server = TestServer::broker("").await;
    let key = server.publish_headers[0].1.clone();
    let url = server.url("");
    let topic = unique_topic("daily");
    let from_env = [
        ("TIDINGSCLIENT_SERVER", url.as_str()),
        ("TIDINGSCLIENT_API_KEY", key.as_str()),
    ];
    let args = ["publish", &topic, "from the environment"];
    let out = run(&args, &from_env);
    assert!(out.success, "{}", out.stderr);

    // The default file, under XDG_CONFIG_HOME, then one named by TIDINGSCLIENT_CONFIG.
    let home = tempfile::tempdir().expect("temp dir");
    let file = home.path().join("tidings").join("client.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, format!("server = \"{url}\"\napi_key = \"{key}\"\n")).unwrap();
    let xdg = home.path().display().to_string();
    let args = ["publish", &topic, "from the default file"];
    let out = run(&args, &[("XDG_CONFIG_HOME", &xdg)]);
    assert!(out.success, "{}", out.stderr);
    let named = file.display().to_string();
    let args = ["publish", &topic, "from a named file"];
    let out = run(&args, &[("TIDINGSCLIENT_CONFIG", &named)]);
    assert!(out.success, "{}", out.stderr);
    let args = ["subscribe", "--poll", "--since", "all", &topic];
    let out = run(&args, &[("TIDINGSCLIENT_CONFIG", &named)]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    assert!(!out.stdout.contains(&key));

    // The client's variables are not server settings: the server's commands ignore them.
    let (config, db) = server_paths(&server);
    let list = ["user", "list", "--config", &config, "--database-url", &db];
    let out = run(&list, &from_env);
    assert!(out.success, "{}", out.stderr);
}

#[actix_rt::test]
async fn publish_dash_reads_the_message_from_stdin() {
    let server = TestServer::broker("").await;
    let key = server.publish_headers[0].1.clone();
    let url = server.url("");
    let args = [
        "publish",
        "--server",
        &url,
        "--api-key",
        &key,
        "stdin-topic",
        "-",
    ];
    let out = run_with_input(&args, &[], Some("line one\nline two\n"));
    assert!(out.success, "{}", out.stderr);
    let message: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(message["message"], "line one\nline two");
}

#[actix_rt::test]
async fn user_add_reads_the_password_from_stdin_not_argv() {
    let server = TestServer::without_limits();
    let (config, db) = server_paths(&server);
    let user = ["user", "--config", &config, "--database-url", &db, "add"];
    let who = ["--email", "ivy@example.com", "--username", "ivy"];
    let add = [&user[..], &who[..]].concat();
    let out = run_with_input(&add, &[], Some(&format!("{PASSWORD}\n")));
    assert!(out.success, "{}", out.stderr);
    assert_eq!(login(&server, "ivy@example.com", PASSWORD).await.0, 200);

    let on_argv = [&add[..], &["--password", PASSWORD][..]].concat();
    let out = run_with_input(&on_argv, &[], Some(PASSWORD));
    assert!(!out.success, "a password on the command line is refused");
    let out = run(&add, &[]);
    assert!(
        !out.success && out.stderr.contains("no password"),
        "{}",
        out.stderr
    );

    // On a terminal: asked for twice, and what is typed is not shown.
    let who = ["--email", "tess@example.com", "--username", "tess"];
    let mut add = Running::on_a_terminal(&[&user[..], &who[..]].concat(), &[]);
    for prompt in ["Password: ", "Repeat password: "] {
        eventually(WAIT, prompt, || async { add.stdout().ends_with(prompt) }).await;
        add.type_line(PASSWORD);
    }
    let done = common::eventually_blocking(WAIT, "user add on a terminal", || {
        add.exited().ok_or_else(|| add.stdout())
    });
    assert!(done, "{}", add.stdout());
    assert!(!add.stdout().contains(PASSWORD), "echoed: {}", add.stdout());
    assert_eq!(login(&server, "tess@example.com", PASSWORD).await.0, 200);

    let help = run(&["user", "--help"], &[]);
    assert!(help.success, "{}", help.stderr);
    for absent in ["--listen", "--redis-url", "--server", "--api-key"] {
        assert!(
            !help.stdout.contains(absent),
            "{absent} in:\n{}",
            help.stdout
        );
    }
}
