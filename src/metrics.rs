//! Process-wide metrics in one Prometheus registry (the `prometheus` crate), rendered
//! as text at `GET /metrics`: connections by transport, messages published and
//! delivered, slow subscribers dropped, rate-limit refusals by limit, authentication
//! failures by reason, latency and batch-size histograms, and the process's own CPU,
//! memory and open files.
//!
//! Every labelled series is resolved once, when [`METRICS`] is first used, and kept
//! here: the hot paths (a publish, a fan-out) only add to atomics, with no lookup by
//! name and no allocation.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::error::ApiError;
use crate::model::message::Transport;

/// What the series' names start with.
const PREFIX: &str = "tidings";

const TRANSPORTS: [Transport; 4] = [
    Transport::Sse,
    Transport::Ws,
    Transport::Json,
    Transport::Raw,
];

/// The reasons authentication failures are counted (and logged) with.
const AUTH_REASONS: [&str; 6] = [
    "not_authenticated",
    "invalid",
    "expired",
    "incorrect_login",
    "forbidden",
    "login_refused",
];

/// Which limit refused a request (the `limit` label of `tidings_rate_limited_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Requests without a valid credential, per IP.
    Anonymous,
    /// Login attempts per IP.
    Login,
    /// Failed logins per email.
    LoginEmail,
    /// Registrations per IP.
    Register,
    /// Refresh-token exchanges per IP.
    Refresh,
    /// Publishes per account, by tier.
    Publish,
    /// Creations (topics, keys, tokens) per account.
    Creation,
    /// Open connections per IP.
    Connections,
}

impl Limit {
    const ALL: [Limit; 8] = [
        Self::Anonymous,
        Self::Login,
        Self::LoginEmail,
        Self::Register,
        Self::Refresh,
        Self::Publish,
        Self::Creation,
        Self::Connections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Login => "login",
            Self::LoginEmail => "login_email",
            Self::Register => "register",
            Self::Refresh => "refresh",
            Self::Publish => "publish",
            Self::Creation => "creation",
            Self::Connections => "connections",
        }
    }
}

/// The reason an authentication failure is counted and logged with; `None` for
/// errors that are not one.
pub fn auth_failure_reason(error: &ApiError) -> Option<&'static str> {
    Some(match error {
        ApiError::NotAuthenticated => AUTH_REASONS[0],
        ApiError::InvalidCredentials => AUTH_REASONS[1],
        ApiError::TokenExpired => AUTH_REASONS[2],
        ApiError::IncorrectLogin => AUTH_REASONS[3],
        ApiError::Forbidden | ApiError::ForbiddenBecause(_) => AUTH_REASONS[4],
        ApiError::LoginRefused => AUTH_REASONS[5],
        _ => return None,
    })
}

/// Latencies from 50 µs to 5 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// Messages per commit, powers of two up to a whole journal move and beyond.
const BATCH_BUCKETS: [f64; 15] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0,
];

pub struct Metrics {
    registry: Registry,
    connections_opened: [IntCounter; 4],
    connections: [IntGauge; 4],
    published: IntCounter,
    delivered: IntCounter,
    slow_dropped: IntCounter,
    rate_limited: [IntCounter; Limit::ALL.len()],
    auth_failures: [IntCounter; AUTH_REASONS.len()],
    /// Credential checks that had to ask the database.
    pub auth_db_lookups: IntCounter,
    /// Topics with a live actor; set when scraped.
    pub live_topics: IntGauge,
    /// Messages journaled and not yet moved into the table; set when scraped.
    pub journal_backlog: IntGauge,
    publish_seconds: Histogram,
    delivery_seconds: Histogram,
    writer_batch: Histogram,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Registers `collector` and hands it back; a name clash is a bug caught by the tests.
fn register<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(PREFIX)
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::with_opts(opts(name, help)).expect("valid"),
    )
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help)
        .namespace(PREFIX)
        .buckets(buckets.to_vec());
    register(registry, Histogram::with_opts(opts).expect("valid"))
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let opened = IntCounterVec::new(
            opts("connections_opened_total", "Streams opened, by transport."),
            &["transport"],
        );
        let opened = register(r, opened.expect("valid"));
        let open = IntGaugeVec::new(
            opts("connections", "Streams open now, by transport."),
            &["transport"],
        );
        let open = register(r, open.expect("valid"));
        let limited = IntCounterVec::new(
            opts(
                "rate_limited_total",
                "Requests refused with 429, by the limit that refused them.",
            ),
            &["limit"],
        );
        let limited = register(r, limited.expect("valid"));
        let failures = IntCounterVec::new(
            opts(
                "auth_failures_total",
                "Requests whose credentials (or their lack) were refused, by reason.",
            ),
            &["reason"],
        );
        let failures = register(r, failures.expect("valid"));
        let gauge = |name: &str, help: &str| {
            register(r, IntGauge::with_opts(opts(name, help)).expect("valid"))
        };
        let metrics = Self {
            connections_opened: TRANSPORTS.map(|t| opened.with_label_values(&[t.name()])),
            connections: TRANSPORTS.map(|t| open.with_label_values(&[t.name()])),
            published: counter(
                r,
                "messages_published_total",
                "Messages stored and acknowledged.",
            ),
            delivered: counter(
                r,
                "messages_delivered_total",
                "Messages queued for subscribers (one per subscriber that gets it).",
            ),
            slow_dropped: counter(
                r,
                "slow_subscribers_dropped_total",
                "Subscribers disconnected because their queue was full.",
            ),
            rate_limited: Limit::ALL.map(|l| limited.with_label_values(&[l.name()])),
            auth_failures: AUTH_REASONS.map(|reason| failures.with_label_values(&[reason])),
            auth_db_lookups: counter(
                r,
                "auth_db_lookups_total",
                "Credential checks that were not in the caches and asked the database.",
            ),
            live_topics: gauge(
                "live_topics",
                "Topics with subscribers (live topic actors).",
            ),
            journal_backlog: gauge(
                "journal_backlog_messages",
                "Messages journaled and not yet moved into the messages table.",
            ),
            publish_seconds: histogram(
                r,
                "publish_latency_seconds",
                "Time from a publish request's arrival to its 200.",
                &LATENCY_BUCKETS,
            ),
            delivery_seconds: histogram(
                r,
                "delivery_latency_seconds",
                "Time from a message's acknowledgement to its fan-out into subscribers' queues.",
                &LATENCY_BUCKETS,
            ),
            writer_batch: histogram(
                r,
                "writer_batch_messages",
                "Messages stored per commit into the messages table.",
                &BATCH_BUCKETS,
            ),
            registry,
        };
        #[cfg(target_os = "linux")]
        metrics
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("metric names are unique");
        metrics
    }

    fn transport(&self, t: Transport) -> usize {
        TRANSPORTS.iter().position(|x| *x == t).unwrap_or(0)
    }

    pub fn connection_opened(&self, t: Transport) {
        let i = self.transport(t);
        self.connections_opened[i].inc();
        self.connections[i].inc();
    }

    pub fn connection_closed(&self, t: Transport) {
        self.connections[self.transport(t)].dec();
    }

    pub fn published(&self, n: u64) {
        self.published.inc_by(n);
    }

    pub fn delivered(&self, n: u64) {
        if n > 0 {
            self.delivered.inc_by(n);
        }
    }

    pub fn slow_subscriber_dropped(&self) {
        self.slow_dropped.inc();
    }

    pub fn rate_limited(&self, limit: Limit) {
        self.rate_limited[limit as usize].inc();
    }

    /// Counts an authentication or authorization failure by its reason.
    pub fn auth_failed(&self, error: &ApiError) {
        if let Some(reason) = auth_failure_reason(error) {
            let i = AUTH_REASONS.iter().position(|r| *r == reason);
            self.auth_failures[i.unwrap_or(0)].inc();
        }
    }

    /// A publish answered 200, `started` when its request arrived.
    pub fn publish_answered(&self, started: Instant) {
        self.publish_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// A message acknowledged at `acked` is now in its subscribers' queues.
    pub fn fanned_out(&self, acked: Instant, now: Instant) {
        self.delivery_seconds
            .observe(now.saturating_duration_since(acked).as_secs_f64());
    }

    /// A commit stored `n` messages in the messages table.
    pub fn batch_stored(&self, n: usize) {
        self.writer_batch.observe(n as f64);
    }

    /// The text exposition of every series, `# HELP` and `# TYPE` on each.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into memory fails only on a metric without a value: none here.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "metrics not rendered");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_and_the_labelled_ones_show_every_label() {
        let text = String::from_utf8(METRICS.render()).unwrap();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        for family in &families {
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
        }
        for limit in Limit::ALL {
            let line = format!("tidings_rate_limited_total{{limit=\"{}\"}}", limit.name());
            assert!(text.contains(&line), "{line}");
        }
        // Other tests in this process count too: only the series are certain.
        assert!(text.contains("tidings_connections{transport=\"ws\"} "));
        assert!(families.contains(&"process_resident_memory_bytes"));
    }
}
