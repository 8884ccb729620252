//! Typed configuration: defaults < TOML file < `TIDINGS_*` environment < command-line flags.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::{Table, Value};

/// Environment variables start with this; sections are joined by `__`.
pub const ENV_PREFIX: &str = "TIDINGS_";
/// Environment variables read by the command line itself, not by the configuration.
const ENV_NOT_CONFIG: &[&str] = &["TIDINGS_CONFIG", "TIDINGS_LOG"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub database_url: String,
    pub behind_proxy: bool,
    pub registration: Registration,
    pub auto_create_topics: bool,
    #[serde(deserialize_with = "duration")]
    pub cache_duration: Duration,
    #[serde(deserialize_with = "duration")]
    pub keepalive_interval: Duration,
    pub message_size_limit: usize,
    /// Frames queued for one subscriber before it is dropped as too slow.
    pub subscriber_queue: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Pins each HTTP worker to a core of its own (when there are enough cores).
    pub pin_workers: bool,
    pub redis_url: Option<String>,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub cors: CorsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Closed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub jwt_secret: Option<String>,
    #[serde(deserialize_with = "duration")]
    pub access_token_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_token_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub anonymous_per_minute: u32,
    /// Failed logins per email within `login_window` (GCRA: one comes back every
    /// `login_window / login_failures_per_email`).
    pub login_failures_per_email: u32,
    #[serde(deserialize_with = "duration")]
    pub login_window: Duration,
    pub login_per_ip_per_minute: u32,
    /// Registrations per IP within `register_window`.
    pub register_per_ip: u32,
    #[serde(deserialize_with = "duration")]
    pub register_window: Duration,
    pub refresh_per_ip_per_minute: u32,
    /// Open connections one client IP may hold, streams included; 0 means no cap.
    /// Not applied behind a proxy, where every connection comes from the proxy.
    pub connections_per_ip: u32,
    /// How long a request body may take to arrive, from its head.
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    pub default_tier: String,
    pub tiers: BTreeMap<String, u32>,
    /// Topics, API keys and topic tokens made per minute by one account; 0 = unlimited.
    pub creations_per_minute: u32,
    /// `[limits.quotas.<tier>]`: what an account of that tier may own, over the
    /// built-in numbers ([`QuotaTable::builtin`]).
    pub quotas: BTreeMap<String, QuotaTable>,
}

/// What an account may own at once, counted per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Topics,
    ApiKeys,
    /// Across all of the account's topics.
    TopicTokens,
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Topics => "topics",
            Self::ApiKeys => "api keys",
            Self::TopicTokens => "topic tokens",
        })
    }
}

/// One tier's quotas; 0 = unlimited. In a configured table a key left out keeps the
/// built-in number of that tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaTable {
    pub topics: Option<u32>,
    pub api_keys: Option<u32>,
    pub topic_tokens: Option<u32>,
    /// Webhooks per account, counted once webhooks exist.
    pub webhooks: Option<u32>,
}

impl QuotaTable {
    /// The built-in quotas of `tier`; a tier not named here starts from `free`'s, so a
    /// tier added to `[limits.tiers]` is never unlimited by omission.
    pub fn builtin(tier: &str) -> Self {
        let (topics, api_keys, topic_tokens, webhooks) = match tier {
            "unlimited" => (0, 0, 0, 0),
            "team" => (1000, 100, 2000, 100),
            "essentials" => (250, 25, 500, 25),
            _ => (50, 10, 100, 10),
        };
        Self {
            topics: Some(topics),
            api_keys: Some(api_keys),
            topic_tokens: Some(topic_tokens),
            webhooks: Some(webhooks),
        }
    }

    fn get(&self, quota: Quota) -> Option<u32> {
        match quota {
            Quota::Topics => self.topics,
            Quota::ApiKeys => self.api_keys,
            Quota::TopicTokens => self.topic_tokens,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    pub allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://tidings.db".into(),
            behind_proxy: false,
            registration: Registration::Open,
            auto_create_topics: true,
            cache_duration: Duration::from_secs(12 * 3600),
            keepalive_interval: Duration::from_secs(30),
            message_size_limit: 4096,
            subscriber_queue: 1024,
            workers: 0,
            pin_workers: true,
            redis_url: None,
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            cors: CorsConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl: Duration::from_secs(30 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let tiers = [
            ("free", 10),
            ("essentials", 30),
            ("team", 100),
            ("unlimited", 0),
        ];
        Self {
            anonymous_per_minute: 60,
            login_failures_per_email: 10,
            login_window: Duration::from_secs(15 * 60),
            login_per_ip_per_minute: 20,
            register_per_ip: 5,
            register_window: Duration::from_secs(3600),
            refresh_per_ip_per_minute: 30,
            connections_per_ip: 256,
            body_timeout: Duration::from_secs(10),
            default_tier: "free".into(),
            tiers: tiers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            creations_per_minute: 30,
            quotas: BTreeMap::new(),
        }
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: vec!["*".into()],
        }
    }
}

/// Overrides given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<std::path::PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
}

impl Config {
    /// Builds the configuration from every layer, reading the process environment.
    pub fn load(overrides: &Overrides) -> Result<Self, String> {
        Self::load_with_env(overrides, std::env::vars())
    }

    pub fn load_with_env(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, String> {
        let mut table = match &overrides.config_file {
            Some(path) => read_toml(path)?,
            None => Table::new(),
        };
        for (name, raw) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if ENV_NOT_CONFIG.contains(&name.as_str()) {
                continue;
            }
            let path: Vec<String> = key.split("__").map(str::to_lowercase).collect();
            set_path(&mut table, &path, env_value(&raw))
                .map_err(|e| format!("environment variable {name}: {e}"))?;
        }
        if let Some(listen) = &overrides.listen {
            table.insert("listen".into(), Value::String(listen.clone()));
        }
        let flags = [
            ("database_url", &overrides.database_url),
            ("redis_url", &overrides.redis_url),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                table.insert(key.into(), Value::String(value.clone()));
            }
        }
        let config: Config = Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| format!("configuration: {}", one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !self.limits.tiers.contains_key(&self.limits.default_tier) {
            return Err(format!(
                "configuration: limits.default_tier `{}` is not one of limits.tiers",
                self.limits.default_tier
            ));
        }
        if let Some(tier) =
            (self.limits.quotas.keys()).find(|t| !self.limits.tiers.contains_key(*t))
        {
            return Err(format!(
                "configuration: limits.quotas.{tier} is not one of limits.tiers"
            ));
        }
        if self.message_size_limit == 0 || self.subscriber_queue < 2 {
            return Err(
                "configuration: message_size_limit must be > 0 and subscriber_queue >= 2".into(),
            );
        }
        if self.keepalive_interval.is_zero() || self.cache_duration.is_zero() {
            return Err("configuration: keepalive_interval and cache_duration must be > 0".into());
        }
        if self.limits.login_window.is_zero() || self.limits.register_window.is_zero() {
            return Err(
                "configuration: limits.login_window and limits.register_window must be > 0".into(),
            );
        }
        if self.limits.body_timeout.is_zero() {
            return Err("configuration: limits.body_timeout must be > 0".into());
        }
        Ok(())
    }

    /// Publish quota per minute for a tier; `None` means unlimited (or an unknown tier).
    pub fn tier_limit(&self, tier: &str) -> Option<u32> {
        self.limits.tiers.get(tier).copied().filter(|n| *n > 0)
    }

    /// How many of `quota` an account on `tier` may own; `None` means unlimited.
    pub fn quota(&self, tier: &str, quota: Quota) -> Option<u32> {
        let configured = self.limits.quotas.get(tier).and_then(|t| t.get(quota));
        configured
            .or_else(|| QuotaTable::builtin(tier).get(quota))
            .filter(|n| *n > 0)
    }
}

fn read_toml(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    text.parse::<Table>().map_err(|e| {
        format!(
            "config file {}: {}",
            path.display(),
            one_line(&e.to_string())
        )
    })
}

/// An environment value is read as a TOML value when it parses as one (`60`, `true`,
/// `["*"]`), otherwise as a plain string (`5s`, `sqlite://x.db`).
fn env_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

fn set_path(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a section"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `500ms`, `30s`, `10m`, `12h`, `7d` (and combinations such as `1h 30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration `{text}`: {e}"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Config, String> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_with_env(&Overrides::default(), env)
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.cache_duration, Duration::from_secs(43200));
        assert_eq!(c.limits.body_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.connections_per_ip, 256);
        assert_eq!(c.tier_limit("free"), Some(10));
        assert_eq!(c.tier_limit("unlimited"), None);
        assert_eq!(c.limits.creations_per_minute, 30);
        assert_eq!(c.quota("free", Quota::Topics), Some(50));
        assert_eq!(c.quota("free", Quota::ApiKeys), Some(10));
        assert_eq!(c.quota("free", Quota::TopicTokens), Some(100));
        assert_eq!(QuotaTable::builtin("free").webhooks, Some(10));
        assert_eq!(c.quota("unlimited", Quota::Topics), None);
    }

    #[test]
    fn a_quota_table_overrides_only_the_keys_it_gives() {
        let c = load(&[
            ("TIDINGS_LIMITS__QUOTAS__TEAM__TOPICS", "7"),
            ("TIDINGS_LIMITS__QUOTAS__FREE__API_KEYS", "0"),
        ])
        .unwrap();
        assert_eq!(c.quota("team", Quota::Topics), Some(7));
        assert_eq!(c.quota("team", Quota::ApiKeys), Some(100));
        assert_eq!(c.quota("free", Quota::ApiKeys), None, "0 = unlimited");
        assert_eq!(c.quota("free", Quota::Topics), Some(50));
        // A tier without built-in quotas is held to free's.
        assert_eq!(c.quota("gold", Quota::Topics), Some(50));
        let err = load(&[("TIDINGS_LIMITS__QUOTAS__GOLD__TOPICS", "1")]).unwrap_err();
        assert!(err.contains("limits.quotas.gold"), "{err}");
        let err = load(&[("TIDINGS_LIMITS__QUOTAS__FREE__NOPE", "1")]).unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn environment_sets_nested_keys_and_typed_values() {
        let c = load(&[
            ("TIDINGS_AUTH__ACCESS_TOKEN_TTL", "5s"),
            ("TIDINGS_MESSAGE_SIZE_LIMIT", "100"),
            ("TIDINGS_CORS__ALLOWED_ORIGINS", "[\"https://a.example\"]"),
            ("OTHER", "x"),
        ])
        .unwrap();
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(5));
        assert_eq!(c.message_size_limit, 100);
        assert_eq!(c.cors.allowed_origins, vec!["https://a.example"]);
    }

    #[test]
    fn flags_win_over_environment() {
        let overrides = Overrides {
            listen: Some("127.0.0.1:1".into()),
            ..Default::default()
        };
        let env = [("TIDINGS_LISTEN".to_string(), "127.0.0.1:2".to_string())];
        let c = Config::load_with_env(&overrides, env).unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = load(&[("TIDINGS_NOPE", "1")]).unwrap_err();
        assert!(err.contains("nope"), "{err}");
        let err = load(&[("TIDINGS_CACHE_DURATION", "soon")]).unwrap_err();
        assert!(err.contains("soon"), "{err}");
        assert!(!err.contains('\n'));
    }
}
