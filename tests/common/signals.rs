//! Signals to the server process, its exit, a WebSocket that reports its close frame,
//! and what a copy of the database file alone holds.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use awc::ws::{CloseCode, Frame};
use futures_util::StreamExt;
use serde_json::Value;

use super::{eventually_blocking, parse_json, remaining, services, TestServer, NO_LIMITS};
use super::{REQUEST_TIMEOUT, WAIT};

impl TestServer {
    /// Sends `signal` (`libc::SIGTERM`, …) to the server process.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: a plain system call on the pid of a child this server still owns.
        let sent = unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        assert_eq!(
            sent,
            0,
            "kill({signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Waits until the process has exited (it must within `within`): its status.
    pub fn exit_status(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("server is running");
        let status = eventually_blocking(within, "the server exits", || {
            child
                .try_wait()
                .expect("wait for the server")
                .ok_or("still running")
        });
        self.child = None;
        status
    }

    /// Rewrites the configuration file the server was started with.
    pub fn rewrite_config(&self, toml: &str) {
        std::fs::write(self.dir().join("tidings.toml"), toml).expect("write config");
    }

    /// Stored messages of `topic` as read back from the database alone: on SQLite a
    /// server started on a copy of the database file only (no WAL, no journal) in a
    /// fresh directory; on PostgreSQL a server on the same database.
    pub async fn stored_alone(&self, topic: &str) -> Vec<Value> {
        let copy = tempfile::tempdir().expect("temp dir");
        let url = if services::on_postgres() {
            self.database_url().to_string()
        } else {
            let alone = copy.path().join("alone.db");
            std::fs::copy(self.database_url(), &alone).expect("copy the database file");
            alone.display().to_string()
        };
        let reader = TestServer::start_on(NO_LIMITS, Some(&url));
        reader.poll(topic, "since=all").await
    }
}

/// A WebSocket subscriber that keeps the close frame the server ends with.
pub struct WsWatcher {
    frames:
        Box<dyn futures_util::Stream<Item = Result<Frame, awc::error::WsProtocolError>> + Unpin>,
}

impl WsWatcher {
    /// Opens `path` and waits for the `open` event.
    pub async fn open(server: &TestServer, path: &str) -> WsWatcher {
        let url = server.ws_url(path);
        let (_, framed) =
            actix_rt::time::timeout(REQUEST_TIMEOUT, server.client().ws(url.as_str()).connect())
                .await
                .expect("WebSocket connect timed out")
                .unwrap_or_else(|e| panic!("WebSocket {url}: {e}"));
        let mut watcher = WsWatcher {
            frames: Box::new(framed),
        };
        let (events, _) = watcher.until_closed(WAIT, Some("open")).await;
        assert_eq!(
            events.last().map(|e| e["event"].clone()),
            Some("open".into())
        );
        watcher
    }

    /// Reads frames until the server closes (or, with `stop_at`, until that event):
    /// the events seen and the close code.
    pub async fn until_closed(
        &mut self,
        within: Duration,
        stop_at: Option<&str>,
    ) -> (Vec<Value>, Option<(CloseCode, Option<String>)>) {
        let deadline = Instant::now() + within;
        let mut events = Vec::new();
        loop {
            let frame = actix_rt::time::timeout(remaining(deadline), self.frames.next())
                .await
                .unwrap_or_else(|_| panic!("WebSocket: nothing within {within:?}; got {events:?}"));
            match frame {
                Some(Ok(Frame::Text(text))) => {
                    let event = parse_json(&text, "WS frame");
                    let stop = stop_at.is_some_and(|s| event["event"] == s);
                    events.push(event);
                    if stop {
                        return (events, None);
                    }
                }
                Some(Ok(Frame::Close(reason))) => {
                    return (events, reason.map(|r| (r.code, r.description)));
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return (events, None),
            }
        }
    }
}
