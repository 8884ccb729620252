//! Bounds every later request on a kept-alive connection, as the front bounds the
//! first: once the client has sent bytes, an answer must start within a limit, or the
//! connection is closed. A client that trickles a second request's head (or stalls
//! half-way through one) cannot hold its connection for ever.
//!
//! Costs a clock read when a request's first bytes arrive and a store when an answer
//! is written; the one timer per connection is touched only when it fires.

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::timer::LazyTimer;

/// Watches one connection.
pub struct Stall {
    limit: Duration,
    /// When the client sent bytes that no answer has followed yet.
    waiting_since: Option<Instant>,
    timer: LazyTimer,
    /// After a protocol upgrade (WebSocket) the connection is no longer request and
    /// answer; its own keepalives watch it.
    off: bool,
}

impl Stall {
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            waiting_since: None,
            timer: LazyTimer::default(),
            off: false,
        }
    }

    /// The client sent bytes.
    pub fn received(&mut self) {
        if self.waiting_since.is_none() && !self.off {
            self.waiting_since = Some(Instant::now());
        }
    }

    /// The server wrote `bytes` (the start of a write).
    pub fn answered(&mut self, bytes: &[u8]) {
        self.waiting_since = None;
        if bytes.starts_with(b"HTTP/1.1 101 ") {
            self.off = true;
        }
    }

    /// Ready once the client has waited past the limit for an answer it is still
    /// sending the request of; otherwise registers `cx` to be woken then.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(since) = self.waiting_since.filter(|_| !self.off) else {
            return Poll::Pending;
        };
        self.timer.poll_until(since + self.limit, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(200);

    fn expired(stall: &mut Stall) -> bool {
        stall
            .poll_expired(&mut Context::from_waker(std::task::Waker::noop()))
            .is_ready()
    }

    async fn wait(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[tokio::test]
    async fn a_request_unanswered_past_the_limit_expires() {
        let mut stall = Stall::new(LIMIT);
        assert!(!expired(&mut stall), "nothing sent, nothing to wait for");
        stall.received();
        wait(120).await;
        assert!(!expired(&mut stall));
        stall.answered(b"HTTP/1.1 200 OK\r\n");
        wait(120).await;
        assert!(!expired(&mut stall), "answered: the clock stopped");
        stall.received();
        wait(120).await;
        assert!(
            !expired(&mut stall),
            "the timer set for the first request moves on"
        );
        wait(120).await;
        assert!(expired(&mut stall));
    }

    #[tokio::test]
    async fn an_upgraded_connection_is_not_watched() {
        let mut stall = Stall::new(LIMIT);
        stall.received();
        stall.answered(b"HTTP/1.1 101 Switching Protocols\r\n");
        stall.received();
        wait(300).await;
        assert!(!expired(&mut stall));
    }
}
