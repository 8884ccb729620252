//! Start-up of `tidings serve`: bad configuration, an unreadable config file, a busy
//! port, a database it cannot open, unknown environment keys and flags all stop it at
//! once with a one-line `error:`; `TIDINGS_LISTEN` works and `--listen` beats it.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::cli::{command, run, CliOutput};
use common::server::{listening_addr, START_TIMEOUT};

/// How long a failing start may take.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// Asserts a failed start: non-zero exit, and stderr ends with one `error:` line that
/// contains every one of `names` (case-insensitive). The error line.
#[track_caller]
fn assert_start_error(out: &CliOutput, names: &[&str]) -> String {
    assert!(
        matches!(out.code, Some(code) if code != 0),
        "exit code {:?}; stderr:\n{}",
        out.code,
        out.stderr
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("nothing on stderr (stdout {:?})", out.stdout));
    assert!(
        last.starts_with("error: "),
        "last stderr line is not the error:\n{}",
        out.stderr
    );
    let errors = lines.iter().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "one error line:\n{}", out.stderr);
    for name in names {
        assert!(
            last.to_lowercase().contains(&name.to_lowercase()),
            "error line does not name {name:?}: {last}"
        );
    }
    assert!(
        !out.stdout.contains("tidings listening on"),
        "it started listening: {}",
        out.stdout
    );
    assert!(out.took < EXIT_TIMEOUT, "took {:?}", out.took);
    last.to_string()
}

/// A temp dir with `tidings.toml` holding `toml`.
fn dir_with_config(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tidings-startup-")
        .tempdir()
        .expect("create temp dir");
    std::fs::write(dir.path().join("tidings.toml"), toml).expect("write config");
    dir
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("temp path is UTF-8").to_string()
}

/// `serve --config DIR/tidings.toml --database-url DIR/tidings.db` plus `extra`.
fn serve_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "serve".to_string(),
        "--config".to_string(),
        path_text(&dir.join("tidings.toml")),
        "--database-url".to_string(),
        path_text(&dir.join("tidings.db")),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A server that started: killed and reaped on drop.
struct Running {
    child: Child,
    addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts and waits for `tidings listening on http://ADDR`; fails (after killing it)
/// if the line does not come in time.
fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = command(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tidings");
    match listening_addr(&mut child, START_TIMEOUT) {
        Some(addr) => Running { child, addr },
        None => {
            let _ = child.kill();
            let status = child.wait();
            panic!("tidings {args:?} did not start within {START_TIMEOUT:?} ({status:?})");
        }
    }
}

/// A plain `GET /health` over a raw socket: the status line.
fn health_status_line(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send request");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.lines().next().unwrap_or("").to_string()
}

#[test]
fn an_unknown_key_in_the_config_file_is_named() {
    let dir = dir_with_config("nope = 1\n");
    let out = run(
        &refs(&serve_args(dir.path(), &["--listen", "127.0.0.1:0"])),
        &[],
    );
    assert_start_error(&out, &["nope"]);
}

#[test]
fn an_unknown_key_in_a_config_section_is_named() {
    let dir = dir_with_config("[limits]\nanonymous_per_minute = 5\nbogus_limit = 3\n");
    let out = run(
        &refs(&serve_args(dir.path(), &["--listen", "127.0.0.1:0"])),
        &[],
    );
    assert_start_error(&out, &["bogus_limit"]);
}

#[test]
fn a_bad_value_in_the_config_file_is_named() {
    let dir = dir_with_config("cache_duration = \"soon\"\n");
    let out = run(
        &refs(&serve_args(dir.path(), &["--listen", "127.0.0.1:0"])),
        &[],
    );
    assert_start_error(&out, &["soon"]);
}

#[test]
fn a_bad_value_error_names_the_key() {
    let dir = dir_with_config("cache_duration = \"soon\"\n");
    let out = run(
        &refs(&serve_args(dir.path(), &["--listen", "127.0.0.1:0"])),
        &[],
    );
    assert_start_error(&out, &["cache_duration"]);
}

#[test]
fn a_config_file_that_cannot_be_read_is_named() {
    let dir = dir_with_config("");
    let missing = path_text(&dir.path().join("missing").join("tidings.toml"));
    let db = path_text(&dir.path().join("tidings.db"));
    let out = run(
        &[
            "serve",
            "--config",
            &missing,
            "--database-url",
            &db,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_start_error(&out, &[&missing]);
}

#[test]
fn a_port_in_use_is_named() {
    let dir = dir_with_config("");
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = busy.local_addr().expect("local addr").to_string();
    let out = run(&refs(&serve_args(dir.path(), &["--listen", &addr])), &[]);
    assert_start_error(&out, &[&addr]);
    drop(busy);
}

#[test]
fn a_database_that_cannot_be_opened_is_named() {
    let dir = dir_with_config("");
    let config = path_text(&dir.path().join("tidings.toml"));
    let out = run(
        &[
            "serve",
            "--config",
            &config,
            "--database-url",
            "/nonexistent-dir/x/y.db",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let line = assert_start_error(&out, &["database"]);
    assert!(line.contains("/nonexistent-dir/x/y.db"), "{line}");
}

#[test]
fn an_unknown_environment_key_is_named() {
    let dir = dir_with_config("");
    let out = run(
        &refs(&serve_args(dir.path(), &["--listen", "127.0.0.1:0"])),
        &[("TIDINGS_NOPE", "1")],
    );
    assert_start_error(&out, &["nope"]);
}

#[test]
fn a_bad_environment_value_is_named() {
    let dir = dir_with_config("");
    let out = run(
        &refs(&serve_args(dir.path(), &["--listen", "127.0.0.1:0"])),
        &[("TIDINGS_CACHE_DURATION", "soon")],
    );
    assert_start_error(&out, &["soon"]);
}

#[test]
fn an_unknown_flag_is_refused_by_the_command_line() {
    let dir = dir_with_config("");
    let out = run(&refs(&serve_args(dir.path(), &["--nope"])), &[]);
    assert_eq!(out.code, Some(2), "stderr:\n{}", out.stderr);
    assert!(out.stderr.starts_with("error:"), "{}", out.stderr);
    assert!(out.stderr.contains("--nope"), "{}", out.stderr);
    assert!(
        !out.stdout.contains("tidings listening on"),
        "{}",
        out.stdout
    );
}

#[test]
fn tidings_listen_in_the_environment_is_used() {
    let dir = dir_with_config("");
    let server = start(
        &refs(&serve_args(dir.path(), &[])),
        &[("TIDINGS_LISTEN", "127.0.0.1:0")],
    );
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    let port: u16 = server.addr["127.0.0.1:".len()..]
        .parse()
        .unwrap_or_else(|_| panic!("listening line has no port: {}", server.addr));
    assert_ne!(port, 0);
    assert_ne!(port, 8080, "the default port was used, not TIDINGS_LISTEN");
    let status = health_status_line(&server.addr);
    assert!(status.contains(" 200"), "GET /health: {status}");
}

#[test]
fn the_listen_flag_beats_tidings_listen() {
    let dir = dir_with_config("");
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let busy_addr = busy.local_addr().expect("local addr").to_string();
    let server = start(
        &refs(&serve_args(dir.path(), &["--listen", "127.0.0.1:0"])),
        &[("TIDINGS_LISTEN", &busy_addr)],
    );
    assert_ne!(server.addr, busy_addr);
    let status = health_status_line(&server.addr);
    assert!(status.contains(" 200"), "GET /health: {status}");
    drop(busy);
}

#[test]
fn the_environment_beats_the_config_file() {
    let dir = dir_with_config("listen = \"127.0.0.1:1\"\n");
    let server = start(
        &refs(&serve_args(dir.path(), &[])),
        &[("TIDINGS_LISTEN", "127.0.0.1:0")],
    );
    assert_ne!(server.addr, "127.0.0.1:1");
}
