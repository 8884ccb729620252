//! The `tidings` binary run as a command: the admin CLI against a test server's
//! database, the publish/subscribe client, and start-ups that are themselves under test.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::TestServer;

/// How long a command may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// `tidings ARGS`, [`isolate`]d with `env`.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.args(args);
    isolate(&mut command, env);
    command
}

/// Gives `command` `env` and no other `TIDINGS_*` or `TIDINGSCLIENT_*` variable nor
/// client config file of the user running the tests, stdin closed.
pub fn isolate(command: &mut Command, env: &[(&str, &str)]) {
    for (name, _) in std::env::vars() {
        if name.starts_with("TIDINGS") {
            command.env_remove(name);
        }
    }
    command.env("XDG_CONFIG_HOME", "/nonexistent");
    command.envs(env.iter().copied());
    command.stdin(Stdio::null());
}

/// What a finished command printed.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From the spawn to the exit.
    pub took: Duration,
}

/// Runs `tidings ARGS` with `env` to completion; kills it and fails if it is still
/// running after [`CLI_TIMEOUT`].
pub fn run(args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    run_with_input(args, env, None)
}

/// Like [`run`], with `input` (if any) written to its standard input, then closed.
pub fn run_with_input(args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> CliOutput {
    let started = Instant::now();
    let mut command = command(args, env);
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidings");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A command that exits without reading has its own answer to check.
        let _ = stdin.write_all(input.as_bytes());
    }
    loop {
        match child.try_wait().expect("wait for tidings") {
            Some(_) => break,
            None if started.elapsed() >= CLI_TIMEOUT => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("reap tidings");
                panic!(
                    "tidings {args:?} still running after {CLI_TIMEOUT:?}; stderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            // A process's exit cannot be awaited with a deadline: poll it.
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let output = child.wait_with_output().expect("read tidings output");
    CliOutput {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// Runs `tidings ARGS` with nothing from the environment.
pub fn tidings(args: &[&str]) -> CliOutput {
    run(args, &[])
}

/// The `--config` and `--database-url` of a running test server.
pub fn server_paths(server: &TestServer) -> (String, String) {
    (
        server.dir().join("tidings.toml").display().to_string(),
        server.database_url().to_string(),
    )
}

/// `tidings user --config F --database-url D ACTION…` against the server's database,
/// asserting success: what it printed.
pub fn admin(server: &TestServer, action: &[&str]) -> String {
    admin_with_input(server, action, None)
}

/// `tidings user … add ACTION…` with `password` on its standard input, asserting
/// success: what it printed.
pub fn add_user(server: &TestServer, action: &[&str], password: &str) -> String {
    let mut args = vec!["add"];
    args.extend_from_slice(action);
    admin_with_input(server, &args, Some(&format!("{password}\n")))
}

fn admin_with_input(server: &TestServer, action: &[&str], input: Option<&str>) -> String {
    let (config, db) = server_paths(server);
    let mut args = vec!["user", "--config", &config, "--database-url", &db];
    args.extend_from_slice(action);
    let out = run_with_input(&args, &[], input);
    assert!(out.success, "tidings {args:?} failed: {}", out.stderr);
    out.stdout
}
