//! The one harness of the black-box tests: each test starts the real `tidings` binary
//! on a free port with its own temporary database ([`server`]) and talks to it over
//! HTTP, SSE, NDJSON, raw and WebSocket ([`streams`]) or raw TCP ([`raw`]), as an
//! account with any credential ([`accounts`]) or through the command line ([`cli`]).
//! Every wait has a deadline; conditions are polled with [`eventually`].
#![allow(dead_code)]

pub mod accounts;
pub mod cli;
pub mod raw;
pub mod server;
pub mod services;
pub mod streams;

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

// Each test file is its own crate and uses only part of the harness.
#[allow(unused_imports)]
pub use accounts::*;
#[allow(unused_imports)]
pub use cli::{add_user, admin, server_paths, tidings, CliOutput};
#[allow(unused_imports)]
pub use raw::*;
pub use server::*;
#[allow(unused_imports)]
pub use streams::*;

/// Upper bound for anything that should happen at once.
pub const WAIT: Duration = Duration::from_secs(5);
/// How often [`eventually`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// What a condition polled by [`eventually`] returns: `true`/`Ok` when it holds; an
/// `Err` says what was seen instead, for the failure message.
pub trait Polled {
    type Output;
    fn into_result(self) -> Result<Self::Output, String>;
}

impl Polled for bool {
    type Output = ();
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition did not hold".to_string())
        }
    }
}

impl<T, E: Debug> Polled for Result<T, E> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Checks `check` until it holds and returns at once with its value; panics naming
/// `what` (and the last thing seen) when it still does not hold after `within`.
pub async fn eventually<P, F, Fut>(within: Duration, what: &str, mut check: F) -> P::Output
where
    P: Polled,
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match check().await.into_result() {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: still not so after {within:?} ({last})"
        );
        actix_rt::time::sleep(POLL_EVERY.min(remaining(deadline))).await;
    }
}

/// Like [`eventually`], for tests that run on plain threads.
pub fn eventually_blocking<P: Polled>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> P,
) -> P::Output {
    let deadline = Instant::now() + within;
    loop {
        let last = match check().into_result() {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: still not so after {within:?} ({last})"
        );
        std::thread::sleep(POLL_EVERY.min(remaining(deadline)));
    }
}

/// Time left until `deadline` (zero once it has passed).
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// `&` before a non-empty query that follows another.
fn sep(query: &str) -> &'static str {
    if query.is_empty() {
        ""
    } else {
        "&"
    }
}

/// `?` before a non-empty query.
fn qmark(query: &str) -> &'static str {
    if query.is_empty() {
        ""
    } else {
        "?"
    }
}

/// Parses a body as JSON, failing with the body shown.
pub fn parse_json(body: &[u8], what: &str) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    })
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .expect("a time chrono can represent")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An RFC 3339 UTC time `secs` from now.
pub fn rfc3339_in(secs: i64) -> String {
    rfc3339(now_unix() + secs)
}

/// Whether a JSON value is an RFC 3339 UTC time string (`…Z`).
pub fn is_rfc3339_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.ends_with('Z')
            && s.as_bytes().get(10) == Some(&b'T')
            && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

/// A topic name unlikely to be used by anything else.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = chrono::Utc::now().timestamp_subsec_nanos();
    format!("{prefix}-{}-{nanos}", N.fetch_add(1, Ordering::Relaxed))
}

/// The `message` field of each object.
pub fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["message"].as_str().expect("message text").to_string())
        .collect()
}

/// The `id` field of each object.
pub fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().expect("message id").to_string())
        .collect()
}
pub mod cli_daily;
pub mod metrics;
pub mod oidc;
pub mod signals;
pub mod tls;
pub mod webpush;
