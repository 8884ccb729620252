//! Rate limits (governor, GCRA): requests without a credential per client IP, and
//! publishes per account by tier. Limiter state of idle keys is evicted regularly, so
//! many distinct IPs or accounts do not grow memory without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::METRICS;

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// A limiter with the number it allows per minute.
struct PerMinute<K: Hash + Eq + Clone> {
    per_minute: u32,
    limiter: Keyed<K>,
}

impl<K: Hash + Eq + Clone> PerMinute<K> {
    /// `None` for 0 (unlimited).
    fn new(per_minute: u32) -> Option<Self> {
        let n = NonZeroU32::new(per_minute)?;
        Some(Self {
            per_minute,
            limiter: RateLimiter::keyed(Quota::per_minute(n))
                .with_middleware::<StateInformationMiddleware>(),
        })
    }

    fn check(&self, key: &K) -> Result<Allowance, ApiError> {
        match self.limiter.check_key(key) {
            Ok(state) => Ok(Allowance {
                limit: self.per_minute,
                remaining: state.remaining_burst_capacity(),
            }),
            Err(not_until) => {
                METRICS.rate_limited();
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                    limit: self.per_minute,
                    remaining: 0,
                })
            }
        }
    }

    fn evict(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// What is left of a quota after an allowed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub remaining: u32,
}

pub struct Limits {
    anonymous: Option<PerMinute<IpAddr>>,
    tiers: HashMap<String, PerMinute<String>>,
    creations: Option<PerMinute<String>>,
    /// In cluster mode publish quotas are charged in Redis, so they hold across nodes.
    cluster: Option<Cluster>,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Self {
            anonymous: PerMinute::new(config.limits.anonymous_per_minute),
            tiers: config
                .limits
                .tiers
                .iter()
                .filter_map(|(tier, n)| Some((tier.clone(), PerMinute::new(*n)?)))
                .collect(),
            creations: PerMinute::new(config.limits.creations_per_minute),
            cluster: None,
        }
    }

    /// Charges publish quotas cluster-wide through `cluster` (this node's own limiters
    /// stay the fallback while Redis cannot answer).
    pub fn with_cluster(mut self, cluster: Option<Cluster>) -> Self {
        self.cluster = cluster;
        self
    }

    /// One request without a credential from `ip`.
    pub fn check_anonymous(&self, ip: IpAddr) -> Result<Option<Allowance>, ApiError> {
        self.anonymous.as_ref().map(|l| l.check(&ip)).transpose()
    }

    /// One publish charged to `account` on `tier`; `None` when the tier is unlimited.
    pub fn check_publish(&self, account: &str, tier: &str) -> Result<Option<Allowance>, ApiError> {
        self.tiers
            .get(tier)
            .map(|l| l.check(&account.to_string()))
            .transpose()
    }

    /// One creation (a topic, an API key or its new secret, a topic token) by
    /// `account`, on this node.
    pub fn check_creation(&self, account: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.creations else {
            return Ok(());
        };
        limiter.check(&account.to_string()).map(drop)
    }

    /// Forgets keys whose quota is full again.
    /// Charges one publish of `account` on `tier`: across the cluster when there is
    /// one and Redis answers, else on this node. `None` for an unlimited tier.
    pub async fn charge_publish(
        &self,
        account: &str,
        tier: &str,
    ) -> Result<Option<Allowance>, ApiError> {
        let Some(limiter) = self.tiers.get(tier) else {
            return Ok(None);
        };
        if let Some(cluster) = self.cluster.clone() {
            let (id, per_minute) = (account.to_string(), limiter.per_minute);
            let charged = crate::cores::block(move || cluster.charge(&id, per_minute)).await;
            if let Ok(Some(charged)) = charged {
                return charged.map(Some);
            }
        }
        limiter.check(&account.to_string()).map(Some)
    }

    pub fn evict(&self) {
        if let Some(l) = &self.anonymous {
            l.evict();
        }
        self.creations.iter().for_each(PerMinute::evict);
        self.tiers.values().for_each(PerMinute::evict);
    }

    /// Keys with limiter state (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.anonymous.as_ref().map_or(0, |l| l.limiter.len())
            + self.tiers.values().map(|l| l.limiter.len()).sum::<usize>()
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
}
