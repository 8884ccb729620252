//! `GET /metrics` read through a real Prometheus text parser: `prometheus_client`'s,
//! run by the Python in `$TEST_PROMETHEUS_PYTHON` (a virtual environment that
//! `test.sh` makes, see `need_prometheus_python` in `tests/services.sh`).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::TestServer;

const PARSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/prometheus/parse.py");
const PYTHON_ENV: &str = "TEST_PROMETHEUS_PYTHON";

/// The Python that has `prometheus_client`, or `None` after a loud warning: a plain
/// `cargo test` has none, and the tests that need it are skipped.
pub fn prometheus_python() -> Option<String> {
    let python = std::env::var(PYTHON_ENV).ok().filter(|p| p != "none");
    if python.is_none() {
        eprintln!(
            "WARNING: skipped: {PYTHON_ENV} is not set, so there is no Prometheus text \
             parser (./test.sh makes one: `source tests/services.sh; need_prometheus_python`)"
        );
    }
    python
}

/// One scrape, as the parser read it.
pub struct Scrape {
    pub families: Vec<Value>,
}

impl Scrape {
    /// Parses `text` with `python`'s `prometheus_client`; fails when the parser does.
    pub fn parse(python: &str, text: &str) -> Scrape {
        let mut child = Command::new(python)
            .arg(PARSER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} {PARSER}: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(text.as_bytes())
            .expect("write to the parser");
        drop(stdin);
        let out = child.wait_with_output().expect("the parser ends");
        assert!(
            out.status.success(),
            "prometheus_client refused /metrics: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let families = serde_json::from_slice(&out.stdout).expect("the parser prints JSON");
        Scrape { families }
    }

    /// The value of the sample `name` with exactly `labels`; fails when there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sample(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in /metrics"))
    }

    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        self.families
            .iter()
            .flat_map(|f| f["samples"].as_array().into_iter().flatten())
            .find(|s| s["name"] == name && s["labels"].as_object() == Some(&wanted))
            .and_then(|s| s["value"].as_f64())
    }

    /// The names of every family, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .families
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    }
}

/// `GET url` (any server's `/metrics`): the status and the text.
pub async fn fetch(url: &str) -> (u16, String) {
    let mut response = super::client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = response.body().limit(1 << 20).await.expect("a body");
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// `GET /metrics` of `server`, parsed.
pub async fn scrape(python: &str, server: &TestServer) -> Scrape {
    let (status, text) = fetch(&server.url("/metrics")).await;
    assert_eq!(status, 200, "GET /metrics: {text}");
    Scrape::parse(python, &text)
}
