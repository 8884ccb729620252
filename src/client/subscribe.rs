//! `tidings subscribe`: the messages of a stream as JSON lines, the stream reopened
//! with back-off when the server restarts or the connection drops, from just after
//! the last message printed, so none is lost or printed twice.

use std::io::Write;
use std::time::Duration;

use awc::Client;
use futures_util::StreamExt;
use rand::Rng;
use serde_json::Value;

use super::{refusal, Target};

/// The first wait before reopening; it doubles with each failure in a row.
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// How long a request may wait for the answer's head.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// Silence after which a stream counts as dead: the server sends a keepalive at
/// least every 30 s, so three missed ones mean the connection is gone.
const SILENCE: Duration = Duration::from_secs(90);

/// What to subscribe to and how long to keep trying.
pub struct Subscription {
    /// One or more topics, comma-separated.
    pub topics: String,
    /// Where the first stream starts (`since=`).
    pub since: Option<String>,
    /// Print the stored messages and exit.
    pub poll: bool,
    /// Failed attempts in a row before giving up.
    pub max_retries: u32,
}

/// How one attempt ended.
enum Ended {
    /// A poll's answer was printed in full.
    Done,
    /// Worth another try: the server was unreachable or busy, or the stream ended.
    Dropped { streamed: bool, why: String },
    /// The server said no (a 4xx): trying again would get the same answer.
    Refused(String),
    /// Nobody reads our output any more.
    Unread,
}

/// Where the next stream starts, kept across attempts.
struct Position {
    /// What the user asked for, until a message has been printed.
    since: Option<String>,
    /// The id of the last message printed.
    last_id: Option<String>,
    /// The server's time when a live stream first opened, for a user who asked for
    /// live messages only: reopening from there misses none published meanwhile.
    opened_at: Option<i64>,
}

impl Position {
    fn since(&self) -> Option<String> {
        match (&self.last_id, &self.since, self.opened_at) {
            (Some(id), _, _) => Some(id.clone()),
            (None, Some(since), _) => Some(since.clone()),
            (None, None, Some(time)) => Some(time.to_string()),
            (None, None, None) => None,
        }
    }
}

/// Prints every message of the subscription (one JSON object a line). A live
/// subscription runs until the server refuses it (a 4xx) or `max_retries` attempts
/// in a row fail; a poll makes one attempt.
pub async fn subscribe(target: &Target, subscription: Subscription) -> Result<(), String> {
    let client = Client::builder().disable_timeout().finish();
    let mut position = Position {
        since: subscription.since.clone(),
        last_id: None,
        opened_at: None,
    };
    let mut failures = 0u32;
    loop {
        let why = match attempt(&client, target, &subscription, &mut position).await {
            Ended::Done | Ended::Unread => return Ok(()),
            Ended::Refused(why) => return Err(why),
            Ended::Dropped { why, .. } if subscription.poll => return Err(why),
            Ended::Dropped { streamed, why } => {
                if streamed {
                    failures = 0;
                }
                why
            }
        };
        failures += 1;
        if failures > subscription.max_retries {
            let plural = if failures == 1 { "" } else { "s" };
            return Err(format!("gave up after {failures} attempt{plural}: {why}"));
        }
        let delay = backoff(failures);
        eprintln!("{why}; retrying in {:.1} s", delay.as_secs_f64());
        tokio::time::sleep(delay).await;
    }
}

/// The wait before attempt `failures + 1`: doubling from [`FIRST_DELAY`] up to
/// [`MAX_DELAY`], then a random part of it taken off so that many clients cut off
/// by one restart do not all come back at once.
fn backoff(failures: u32) -> Duration {
    let doubled = FIRST_DELAY.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled
        .min(MAX_DELAY)
        .mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// One request and, when the server accepts it, its stream to the end.
async fn attempt(
    client: &Client,
    target: &Target,
    subscription: &Subscription,
    position: &mut Position,
) -> Ended {
    let mut query = Vec::new();
    if let Some(since) = position.since() {
        query.push(format!("since={since}"));
    }
    if subscription.poll {
        query.push("poll=1".to_string());
    }
    let path = format!("/{}/json?{}", subscription.topics, query.join("&"));
    let request = target.request(client, awc::http::Method::GET, &path).send();
    let dropped = |why: String| Ended::Dropped {
        streamed: false,
        why,
    };
    let mut res = match tokio::time::timeout(ANSWER_TIMEOUT, request).await {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => return dropped(target.unreachable(e)),
        Err(_) => return dropped(target.unreachable("no answer")),
    };
    let status = res.status();
    if !status.is_success() {
        let body = res.body().await.unwrap_or_default();
        let why = refusal(status, &body);
        // A server error or a rate limit may pass; any other refusal will not.
        let passes = status.is_server_error()
            || status == awc::http::StatusCode::TOO_MANY_REQUESTS
            || status == awc::http::StatusCode::REQUEST_TIMEOUT;
        return if passes {
            dropped(why)
        } else {
            Ended::Refused(why)
        };
    }
    let mut lines = Lines::default();
    let mut closed = None;
    let why = loop {
        let chunk = match tokio::time::timeout(SILENCE, res.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => break format!("stream broken: {e}"),
            Ok(None) => match closed.take() {
                Some(closed) => break closed,
                None if subscription.poll => return Ended::Done,
                None => break "stream ended".to_string(),
            },
            Err(_) => break format!("nothing from {} for {SILENCE:?}", target.server),
        };
        for line in lines.push(&chunk) {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match event["event"].as_str() {
                Some("message") => {
                    if writeln!(std::io::stdout(), "{line}").is_err() {
                        return Ended::Unread;
                    }
                    position.last_id = event["id"].as_str().map(str::to_string);
                }
                Some("open") if position.opened_at.is_none() => {
                    position.opened_at = event["time"].as_i64();
                }
                Some("gap") => eprintln!(
                    "messages of {} before {} are no longer kept",
                    event["topic"].as_str().unwrap_or_default(),
                    event["oldest_kept"].as_str().unwrap_or("now"),
                ),
                Some("close") => {
                    let reason = event["message"].as_str().unwrap_or_default();
                    closed = Some(format!("stream closed by the server: {reason}"));
                }
                _ => {}
            }
        }
    };
    Ended::Dropped {
        streamed: true,
        why,
    }
}

/// Splits a byte stream into lines.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_up_to_its_ceiling_with_jitter() {
        for failures in 1..40 {
            let ceiling = FIRST_DELAY
                .saturating_mul(1 << (failures - 1).min(16))
                .min(MAX_DELAY);
            let delay = backoff(failures);
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "{failures}: {delay:?}"
            );
        }
    }

    #[test]
    fn a_stream_resumes_after_the_last_message_printed() {
        let mut position = Position {
            since: None,
            last_id: None,
            opened_at: None,
        };
        assert_eq!(position.since(), None);
        position.opened_at = Some(1700000000);
        assert_eq!(position.since().as_deref(), Some("1700000000"));
        position.since = Some("all".into());
        assert_eq!(position.since().as_deref(), Some("all"));
        position.last_id = Some("abc".into());
        assert_eq!(position.since().as_deref(), Some("abc"));
    }

    #[test]
    fn lines_are_split_across_chunks() {
        let mut lines = Lines::default();
        assert!(lines.push(b"{\"a\":").is_empty());
        assert_eq!(
            lines.push(b"1}\n{\"b\":2}\r\n{"),
            ["{\"a\":1}", "{\"b\":2}"]
        );
    }
}
