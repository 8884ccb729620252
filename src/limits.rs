//! Rate limits (GCRA): requests per client IP (without a valid credential, and for
//! logins, registrations and refreshes), failed logins per email, and publishes per
//! account by tier. Limiter state of idle keys is evicted regularly, so many distinct
//! IPs, emails or accounts do not grow memory without bound. The quotas can change
//! while the server runs ([`Limits::reconfigure`]); a limiter whose quota did not
//! change keeps what it counted.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::cluster::Cluster;
use crate::config::{Config, LimitsConfig};
pub use crate::error::Allowance;
use crate::error::ApiError;
use crate::metrics::{Limit, METRICS};

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock, StateInformationMiddleware>;

const MINUTE: Duration = Duration::from_secs(60);

/// The paths monitoring polls (`/health`, `/metrics`): never charged to any limit, so a
/// prober that polls every second is never told 429, nor pushes a client off its quota.
pub const PROBES: [&str; 2] = ["/health", "/metrics"];

/// Whether a request for `path` is a probe (see [`PROBES`]).
pub fn is_probe(path: &str) -> bool {
    PROBES.contains(&path)
}

/// A limiter of `limit` per period, made afresh or kept across a reload.
trait Quotaed: Sized {
    /// `None` for 0 (unlimited).
    fn new(kind: Limit, limit: u32, period: Duration) -> Option<Self>;

    /// Its limit and period.
    fn quota(&self) -> (u32, Duration);

    /// The limiter for `limit` per `period`: `old` when that is its quota already (so
    /// what it counted holds), else a fresh one.
    fn keep_or_new(
        old: Option<&Arc<Self>>,
        kind: Limit,
        limit: u32,
        period: Duration,
    ) -> Option<Arc<Self>> {
        match old {
            Some(old) if old.quota() == (limit, period) => Some(old.clone()),
            _ => Self::new(kind, limit, period).map(Arc::new),
        }
    }
}

/// A keyed limiter allowing `limit` per `period`: a burst of the whole quota, refilled
/// evenly over the period.
struct Limiter<K: Hash + Eq + Clone> {
    /// What it limits, for the metrics.
    kind: Limit,
    limit: u32,
    period: Duration,
    limiter: Keyed<K>,
}

impl<K: Hash + Eq + Clone> Quotaed for Limiter<K> {
    fn new(kind: Limit, limit: u32, period: Duration) -> Option<Self> {
        let n = NonZeroU32::new(limit)?;
        let quota = Quota::with_period(period / limit)?.allow_burst(n);
        Some(Self {
            kind,
            limit,
            period,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        })
    }

    fn quota(&self) -> (u32, Duration) {
        (self.limit, self.period)
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn check(&self, key: &K) -> Result<Allowance, ApiError> {
        match self.limiter.check_key(key) {
            Ok(state) => Ok(Allowance {
                limit: self.limit,
                remaining: state.remaining_burst_capacity(),
            }),
            Err(not_until) => Err(refused(
                self.kind,
                self.limit,
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
        }
    }

    fn evict(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The 429 for a quota of `limit` that has room again after `wait` (counted by
/// `kind`).
fn refused(kind: Limit, limit: u32, wait: Duration) -> ApiError {
    METRICS.rate_limited(kind);
    ApiError::rate_limited(limit, wait)
}

/// A keyed quota counted as governor and the cluster's Redis script count theirs
/// (GCRA: a burst of the whole quota, one cell back every `window / limit`), which can
/// also give a charge back and say what is left without charging — two things
/// governor cannot do. Failed logins need the first: an attempt is charged before it
/// is made and given back when it succeeds (a check made before any answer would let
/// a burst of concurrent attempts all through). Publishes need the second: an account
/// is shown what is left of its minute.
struct Cells {
    /// What it limits, for the metrics.
    kind: Limit,
    limit: u32,
    window: Duration,
    /// One cell comes back every `interval`.
    interval: Duration,
    /// How far ahead of now the theoretical arrival time may be: the rest of the burst.
    tolerance: Duration,
    /// Theoretical arrival time per key.
    tat: DashMap<String, Instant>,
}

impl Quotaed for Cells {
    fn new(kind: Limit, limit: u32, window: Duration) -> Option<Self> {
        let interval = window.checked_div(limit)?.max(Duration::from_nanos(1));
        Some(Self {
            kind,
            limit,
            window,
            interval,
            tolerance: interval * (limit - 1),
            tat: DashMap::new(),
        })
    }

    fn quota(&self) -> (u32, Duration) {
        (self.limit, self.window)
    }
}

impl Cells {
    /// How far ahead of `now` the key's theoretical arrival time is.
    fn ahead(&self, key: &str, now: Instant) -> Duration {
        (self.tat.get(key)).map_or(Duration::ZERO, |tat| tat.saturating_duration_since(now))
    }

    /// Charges one cell of `key`, or refuses it while the key is over its quota.
    fn take(&self, key: &str) -> Result<Allowance, ApiError> {
        let now = Instant::now();
        // A key seen before is found without allocating its copy.
        let mut tat = match self.tat.get_mut(key) {
            Some(tat) => tat,
            None => self.tat.entry(key.to_string()).or_insert(now),
        };
        let ahead = tat.saturating_duration_since(now);
        if ahead > self.tolerance {
            return Err(refused(self.kind, self.limit, ahead - self.tolerance));
        }
        *tat = now.max(*tat) + self.interval;
        let remaining = (self.tolerance - ahead).as_nanos() / self.interval.as_nanos();
        Ok(Allowance {
            limit: self.limit,
            remaining: remaining as u32,
        })
    }

    /// How many cells `key` could take now, without taking any.
    fn left(&self, key: &str) -> u32 {
        match self.tolerance.checked_sub(self.ahead(key, Instant::now())) {
            Some(room) => (room.as_nanos() / self.interval.as_nanos()) as u32 + 1,
            None => 0,
        }
    }

    /// Gives back a cell of `key` (an attempt that succeeded).
    fn give_back(&self, key: &str) {
        if let Some(mut tat) = self.tat.get_mut(key) {
            *tat = tat.checked_sub(self.interval).unwrap_or(*tat);
        }
    }

    /// Forgets keys whose quota is full again.
    fn evict(&self) {
        let now = Instant::now();
        self.tat.retain(|_, tat| *tat > now);
        self.tat.shrink_to_fit();
    }
}

/// What a per-IP limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerIp {
    /// Requests without a valid credential, on every path.
    Anonymous,
    /// Login attempts, right or wrong.
    Login,
    /// Registration attempts.
    Register,
    /// Refresh-token exchanges.
    Refresh,
}

impl PerIp {
    const ALL: [PerIp; 4] = [Self::Anonymous, Self::Login, Self::Register, Self::Refresh];

    /// How its refusals are counted.
    fn kind(self) -> Limit {
        match self {
            Self::Anonymous => Limit::Anonymous,
            Self::Login => Limit::Login,
            Self::Register => Limit::Register,
            Self::Refresh => Limit::Refresh,
        }
    }

    /// The quota and its period.
    fn quota(self, limits: &LimitsConfig) -> (u32, Duration) {
        match self {
            Self::Anonymous => (limits.anonymous_per_minute, MINUTE),
            Self::Login => (limits.login_per_ip_per_minute, MINUTE),
            Self::Register => (limits.register_per_ip, limits.register_window),
            Self::Refresh => (limits.refresh_per_ip_per_minute, MINUTE),
        }
    }
}

/// A login attempt charged to its email; [`Limits::login_done`] settles it.
#[must_use]
pub struct LoginAttempt {
    email: Option<String>,
}

/// Every limiter of one configuration.
struct Table {
    per_ip: [Option<Arc<Limiter<IpAddr>>>; 4],
    login_failures: Option<Arc<Cells>>,
    tiers: HashMap<String, Arc<Cells>>,
    creations: Option<Arc<Limiter<String>>>,
}

impl Table {
    /// The limiters of `limits`, keeping those of `old` whose quota is the same.
    fn new(limits: &LimitsConfig, old: Option<&Table>) -> Self {
        let login_failures = Cells::keep_or_new(
            old.and_then(|o| o.login_failures.as_ref()),
            Limit::LoginEmail,
            limits.login_failures_per_email,
            limits.login_window,
        );
        Self {
            per_ip: PerIp::ALL.map(|what| {
                let (limit, period) = what.quota(limits);
                let old = old.and_then(|o| o.per_ip[what as usize].as_ref());
                Limiter::keep_or_new(old, what.kind(), limit, period)
            }),
            login_failures,
            tiers: (limits.tiers.iter())
                .filter_map(|(tier, n)| {
                    let old = old.and_then(|o| o.tiers.get(tier));
                    let limiter = Cells::keep_or_new(old, Limit::Publish, *n, MINUTE)?;
                    Some((tier.clone(), limiter))
                })
                .collect(),
            creations: Limiter::keep_or_new(
                old.and_then(|o| o.creations.as_ref()),
                Limit::Creation,
                limits.creations_per_minute,
                MINUTE,
            ),
        }
    }
}

pub struct Limits {
    /// Swapped whole when the configuration is reloaded; a check holds the read lock
    /// only for its own in-memory step (no writer waits on a publish, and a reload is
    /// rare).
    table: RwLock<Arc<Table>>,
    /// In cluster mode publish quotas are charged in Redis, so they hold across nodes.
    cluster: Option<Cluster>,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Self {
            table: RwLock::new(Arc::new(Table::new(&config.limits, None))),
            cluster: None,
        }
    }

    /// Applies changed quotas from now on. A limiter whose quota is unchanged keeps
    /// what it counted; a changed one starts afresh with its new quota.
    pub fn reconfigure(&self, limits: &LimitsConfig) {
        let fresh = Arc::new(Table::new(limits, Some(&self.table())));
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    fn table(&self) -> RwLockReadGuard<'_, Arc<Table>> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Charges publish quotas cluster-wide through `cluster` (this node's own limiters
    /// stay the fallback while Redis cannot answer).
    pub fn with_cluster(mut self, cluster: Option<Cluster>) -> Self {
        self.cluster = cluster;
        self
    }

    /// One request of kind `what` from `ip`; `None` when that kind is unlimited.
    pub fn check_ip(&self, what: PerIp, ip: IpAddr) -> Result<Option<Allowance>, ApiError> {
        self.table().per_ip[what as usize]
            .as_ref()
            .map(|l| l.check(&ip))
            .transpose()
    }

    /// One request without a valid credential from `ip`.
    pub fn check_anonymous(&self, ip: IpAddr) -> Result<Option<Allowance>, ApiError> {
        self.check_ip(PerIp::Anonymous, ip)
    }

    /// Charges a login attempt for `email` to the email's failed-login quota (keyed
    /// without regard to case or surrounding blanks); refused while that email is
    /// over its quota, whatever the password.
    pub fn login_attempt(&self, email: &str) -> Result<LoginAttempt, ApiError> {
        let Some(failures) = self.table().login_failures.clone() else {
            return Ok(LoginAttempt { email: None });
        };
        let email = email.trim().to_lowercase();
        failures.take(&email)?;
        Ok(LoginAttempt { email: Some(email) })
    }

    /// Settles a login attempt: only a failed one stays charged.
    pub fn login_done(&self, attempt: LoginAttempt, failed: bool) {
        let failures = self.table().login_failures.clone();
        if let (Some(failures), Some(email), false) = (failures, attempt.email, failed) {
            failures.give_back(&email);
        }
    }

    /// One publish charged to `account` on `tier`; `None` when the tier is unlimited.
    pub fn check_publish(&self, account: &str, tier: &str) -> Result<Option<Allowance>, ApiError> {
        self.table()
            .tiers
            .get(tier)
            .map(|l| l.take(account))
            .transpose()
    }

    /// One creation (a topic, an API key or its new secret, a topic token) by
    /// `account`, on this node.
    pub fn check_creation(&self, account: &str) -> Result<(), ApiError> {
        let table = self.table();
        let Some(limiter) = &table.creations else {
            return Ok(());
        };
        limiter.check(&account.to_string()).map(drop)
    }

    /// Charges one publish of `account` on `tier`: across the cluster when there is
    /// one and Redis answers, else on this node. `None` for an unlimited tier.
    pub async fn charge_publish(
        &self,
        account: &str,
        tier: &str,
    ) -> Result<Option<Allowance>, ApiError> {
        let shared = |cluster: &Cluster, id: &str, per_minute| {
            let charged = cluster.charge(id, per_minute)?;
            if charged.is_err() {
                METRICS.rate_limited(Limit::Publish);
            }
            Some(charged)
        };
        (self.publish_quota(account, tier, shared, Cells::take).await).transpose()
    }

    /// What is left of `account`'s publish quota on `tier` this minute, without
    /// charging it: across the cluster when there is one and Redis answers. `None` for
    /// an unlimited tier.
    pub async fn publish_left(&self, account: &str, tier: &str) -> Option<u32> {
        let shared = |cluster: &Cluster, id: &str, per_minute| cluster.left(id, per_minute);
        self.publish_quota(account, tier, shared, Cells::left).await
    }

    /// Asks `tier`'s publish quota for `account`: `shared` asks the cluster's, when
    /// there is a cluster and Redis answers (`None` when it cannot); else `here` asks
    /// this node's. `None` for an unlimited tier.
    async fn publish_quota<T: Send + 'static>(
        &self,
        account: &str,
        tier: &str,
        shared: impl FnOnce(&Cluster, &str, u32) -> Option<T> + Send + 'static,
        here: impl FnOnce(&Cells, &str) -> T,
    ) -> Option<T> {
        let limiter = self.table().tiers.get(tier).cloned()?;
        if let Some(cluster) = self.cluster.clone() {
            let (id, per_minute) = (account.to_string(), limiter.limit);
            let answer = crate::cores::block(move || shared(&cluster, &id, per_minute)).await;
            if let Ok(Some(answer)) = answer {
                return Some(answer);
            }
        }
        Some(here(&limiter, account))
    }

    /// Forgets keys whose quota is full again.
    pub fn evict(&self) {
        let table = self.table().clone();
        table.per_ip.iter().flatten().for_each(|l| l.evict());
        table.tiers.values().for_each(|l| l.evict());
        if let Some(failures) = &table.login_failures {
            failures.evict();
        }
        table.creations.iter().for_each(|l| l.evict());
    }

    /// Keys with limiter state (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        let table = self.table();
        let per_ip: usize = table.per_ip.iter().flatten().map(|l| l.limiter.len()).sum();
        per_ip
            + table.tiers.values().map(|l| l.tat.len()).sum::<usize>()
            + table.login_failures.as_ref().map_or(0, |f| f.tat.len())
            + table.creations.as_ref().map_or(0, |l| l.limiter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_allows_its_quota_then_refuses_with_retry_after() {
        let limits = Limits::new(&Config::default());
        for i in 0..10 {
            let allowance = limits.check_publish("acct", "free").unwrap().unwrap();
            assert_eq!(allowance.remaining, 9 - i);
        }
        match limits.check_publish("acct", "free") {
            Err(ApiError::RateLimited {
                retry_after_secs,
                limit: 10,
                remaining: 0,
            }) => assert!((1..=6).contains(&retry_after_secs)),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(limits.check_publish("other", "free").is_ok());
        assert_eq!(limits.check_publish("acct", "unlimited").unwrap(), None);
    }

    #[test]
    fn a_reconfigured_quota_applies_at_once_and_unchanged_ones_keep_their_count() {
        let mut config = Config::default();
        let limits = Limits::new(&config);
        for _ in 0..3 {
            limits.check_publish("acct", "free").unwrap();
            limits.check_publish("acct", "team").unwrap();
        }
        config.limits.tiers.insert("free".into(), 2);
        limits.reconfigure(&config.limits);
        let free = |n| {
            (0..n)
                .map(|_| limits.check_publish("acct", "free"))
                .collect::<Vec<_>>()
        };
        assert!(free(2).iter().all(Result::is_ok), "a fresh quota of 2");
        assert!(free(1)[0].is_err());
        let team = limits.check_publish("acct", "team").unwrap().unwrap();
        assert_eq!(team.remaining, 96, "unchanged: still counting");
    }

    #[test]
    fn idle_keys_are_evicted() {
        let limits = Limits::new(&Config::default());
        for i in 0..1000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            limits.check_anonymous(ip).unwrap();
        }
        assert_eq!(limits.tracked_keys(), 1000);
        // One request of 60/min is fully refilled after two emission intervals (2 s).
        std::thread::sleep(std::time::Duration::from_millis(2100));
        limits.evict();
        assert_eq!(limits.tracked_keys(), 0);
    }

    #[test]
    fn a_quota_over_any_period_allows_its_burst_then_says_when_one_comes_back() {
        let hourly = Limiter::new(Limit::Register, 5, Duration::from_secs(3600)).unwrap();
        for i in 0..5 {
            assert_eq!(hourly.check(&1).unwrap().remaining, 4 - i);
        }
        match hourly.check(&1) {
            Err(ApiError::RateLimited {
                retry_after_secs,
                limit: 5,
                ..
            }) => assert!((700..=720).contains(&retry_after_secs)),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(Limiter::<u8>::new(Limit::Register, 0, MINUTE).is_none());
    }

    #[test]
    fn failures_are_charged_first_and_given_back_on_success() {
        let failures = Cells::new(Limit::LoginEmail, 3, Duration::from_millis(300)).unwrap();
        // Attempts that succeed give their charge back: no limit for them.
        for _ in 0..10 {
            assert_eq!(failures.take("a").unwrap().remaining, 2);
            failures.give_back("a");
        }
        for left in [2, 1, 0] {
            assert_eq!(failures.take("a").unwrap().remaining, left);
        }
        match failures.take("a") {
            Err(ApiError::RateLimited {
                retry_after_secs: 1,
                limit: 3,
                remaining: 0,
            }) => {}
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(failures.take("b").is_ok(), "keys are separate");
        // One attempt comes back every 100 ms, and the rest after the window.
        std::thread::sleep(Duration::from_millis(110));
        assert_eq!(failures.take("a").unwrap().remaining, 0);
        assert!(failures.take("a").is_err());
        std::thread::sleep(Duration::from_millis(310));
        failures.evict();
        assert!(failures.tat.is_empty());
    }

    #[test]
    fn what_is_left_is_told_without_charging() {
        let cells = Cells::new(Limit::Publish, 3, Duration::from_millis(300)).unwrap();
        assert_eq!((cells.left("a"), cells.left("a")), (3, 3));
        cells.take("a").unwrap();
        assert_eq!(cells.left("a"), 2);
        cells.take("a").unwrap();
        cells.take("a").unwrap();
        assert_eq!(cells.left("a"), 0);
        assert!(cells.take("a").is_err());
        assert_eq!(cells.left("b"), 3, "keys are separate");
        std::thread::sleep(Duration::from_millis(110));
        assert_eq!(cells.left("a"), 1, "one cell back every 100 ms");
    }

    #[test]
    fn login_failures_are_keyed_without_regard_to_case_or_blanks() {
        let mut config = Config::default();
        config.limits.login_failures_per_email = 2;
        let limits = Limits::new(&config);
        for email in ["Ann@Example.com", " ann@example.COM "] {
            let attempt = limits.login_attempt(email).unwrap();
            limits.login_done(attempt, true);
        }
        assert!(limits.login_attempt("ann@example.com").is_err());
        assert!(limits.login_attempt("ben@example.com").is_ok());
    }
}
