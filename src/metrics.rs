//! Process-wide counters, rendered as Prometheus text at `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::broker::message::Transport;
use crate::error::ApiError;

#[derive(Default)]
pub struct Metrics {
    connections: [AtomicI64; 4],
    published: AtomicU64,
    delivered: AtomicU64,
    rate_limited: AtomicU64,
    auth_failures: [AtomicU64; 4],
}

pub static METRICS: Metrics = Metrics {
    connections: [const { AtomicI64::new(0) }; 4],
    published: AtomicU64::new(0),
    delivered: AtomicU64::new(0),
    rate_limited: AtomicU64::new(0),
    auth_failures: [const { AtomicU64::new(0) }; 4],
};

const TRANSPORTS: [Transport; 4] = [
    Transport::Sse,
    Transport::Ws,
    Transport::Json,
    Transport::Raw,
];
const AUTH_REASONS: [&str; 4] = ["not_authenticated", "invalid", "expired", "forbidden"];

fn transport_index(t: Transport) -> usize {
    TRANSPORTS.iter().position(|x| *x == t).unwrap_or(0)
}

impl Metrics {
    pub fn connection_opened(&self, t: Transport) {
        self.connections[transport_index(t)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, t: Transport) {
        self.connections[transport_index(t)].fetch_sub(1, Ordering::Relaxed);
    }

    pub fn published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
    }

    pub fn delivered(&self, n: u64) {
        if n > 0 {
            self.delivered.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an authentication or authorization failure by its kind.
    pub fn auth_failed(&self, error: &ApiError) {
        let reason = match error {
            ApiError::NotAuthenticated => 0,
            ApiError::InvalidCredentials => 1,
            ApiError::TokenExpired => 2,
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => 3,
            _ => return,
        };
        self.auth_failures[reason].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition; `extra` lines come from other parts (caches, broker).
    pub fn render(&self, extra: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# TYPE tidings_connections gauge\n");
        for (t, n) in TRANSPORTS.iter().zip(&self.connections) {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "tidings_connections{{transport=\"{}\"}} {n}", t.name());
        }
        let counters = [
            ("tidings_messages_published_total", &self.published),
            ("tidings_messages_delivered_total", &self.delivered),
            ("tidings_rate_limited_total", &self.rate_limited),
        ];
        for (name, value) in counters {
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out.push_str("# TYPE tidings_auth_failures_total counter\n");
        for (reason, n) in AUTH_REASONS.iter().zip(&self.auth_failures) {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tidings_auth_failures_total{{reason=\"{reason}\"}} {n}"
            );
        }
        for (name, kind, value) in extra {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}
