//! ntfy's own client libraries work against tidings unchanged: `aiontfy` (the library
//! behind Home Assistant's ntfy integration) checks access, subscribes over WebSocket,
//! publishes and receives its message, with an API key or a topic token as its token
//! and with its username/password form (`tests/ntfy/aiontfy_check.py`).
//!
//! It needs Python 3.12 or later: `$TEST_PYTHON` (which `test.sh` sets), else
//! the first of `python3.13`, `python3.12`, `python3` on the PATH and pyenv's versions
//! that is recent enough. The client is installed, pinned (`tests/ntfy/requirements.txt`),
//! into a virtual environment under the target directory, made once and reused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{create_topic, get, register, token, Cred, TestServer};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ntfy/aiontfy_check.py");
const REQUIREMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ntfy/requirements.txt");

/// Whether `python` runs and is 3.12 or later.
fn recent_enough(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import sys; sys.exit(sys.version_info < (3, 12))"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A Python 3.12 or later, or a failure that says how to get one.
fn find_python() -> PathBuf {
    if let Some(python) = std::env::var_os("TEST_PYTHON") {
        let python = PathBuf::from(python);
        assert!(
            recent_enough(&python),
            "TEST_PYTHON={} is not a Python 3.12 or later",
            python.display()
        );
        return python;
    }
    let on_path = ["python3.13", "python3.12", "python3"].map(PathBuf::from);
    let pyenv = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".pyenv/versions"))
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path().join("bin/python3")));
    let mut pyenv: Vec<PathBuf> = pyenv.collect();
    pyenv.sort();
    pyenv.reverse();
    on_path
        .into_iter()
        .chain(pyenv)
        .find(|python| recent_enough(python))
        .unwrap_or_else(|| {
            panic!(
                "the ntfy client test needs Python 3.12 or later (aiontfy requires it), and \
                 none was found: install one (python3.12 or python3.13 on the PATH, or \
                 under pyenv) or set TEST_PYTHON to its path"
            )
        })
}

/// The virtual environment with the pinned client installed: made, or remade when
/// `requirements.txt` changed, once per run.
fn client_python() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ntfy-venv");
        let python = venv.join("bin/python");
        let stamp = venv.join("installed-requirements.txt");
        let wanted = std::fs::read_to_string(REQUIREMENTS).expect("read requirements.txt");
        if std::fs::read_to_string(&stamp).ok().as_ref() == Some(&wanted) && python.exists() {
            return python;
        }
        let _ = std::fs::remove_dir_all(&venv);
        let base = find_python();
        run_ok(
            Command::new(&base).arg("-m").arg("venv").arg(&venv),
            "python -m venv",
        );
        run_ok(
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                REQUIREMENTS,
            ]),
            "pip install -r tests/ntfy/requirements.txt",
        );
        std::fs::write(&stamp, wanted).expect("write the venv's stamp");
        python
    })
}

/// Runs `command` to its end (each command here ends by itself): its output, or a
/// failure naming `what` with what it printed.
fn run_ok(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Runs the aiontfy check against `topic` with `credential` (its arguments): the id of
/// the message it published and received.
fn aiontfy(server: &TestServer, topic: &str, credential: &[&str]) -> String {
    let what = format!("aiontfy with {}", credential[0]);
    let out = run_ok(
        Command::new(client_python())
            .arg(SCRIPT)
            .arg(server.url(""))
            .arg(topic)
            .args(credential),
        &what,
    );
    let id = out.trim().strip_prefix("OK ");
    id.unwrap_or_else(|| panic!("{what}: printed {out:?}"))
        .to_string()
}

#[actix_rt::test]
async fn aiontfy_publishes_and_subscribes_with_each_credential_form() {
    // test.sh says `none` after looking everywhere (PATH, pyenv, Debian) and warning:
    // the one test that needs what the machine may lack is skipped, not everything.
    if std::env::var_os("TEST_PYTHON").is_some_and(|python| python == "none") {
        eprintln!("skipped: no Python 3.12 or later on this machine (aiontfy needs one)");
        return;
    }
    let server = TestServer::start("");
    let owner = register(&server, "ntfy_client").await;
    let topic = common::unique_topic("aiontfy");
    create_topic(&server, &owner.key(), &topic, "private").await;
    let (_, topic_token) = token(&server, &owner.key(), &topic, "read_write").await;
    let Cred::TopicToken(topic_token) = topic_token else {
        unreachable!("a topic token")
    };
    let forms: [&[&str]; 4] = [
        &["--token", &owner.api_key],
        &["--token", &topic_token],
        &["--user", &owner.username, "--password", &owner.password],
        &["--user", &owner.email, "--password", &owner.password],
    ];
    let mut ids = Vec::new();
    for credential in forms {
        ids.push(aiontfy(&server, &topic, credential));
    }
    // Each message the client saw come back is the one stored.
    let history = get(
        &server,
        &format!("/api/topics/{topic}/messages"),
        &owner.key(),
    )
    .await;
    assert_eq!(history.0, 200, "{}", history.1);
    let stored = common::ids(history.1.as_array().expect("a list of messages"));
    assert_eq!(stored, ids);
}
