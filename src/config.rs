//! Typed configuration: defaults < TOML file < `TIDINGS_*` environment < command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
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
    /// Serves HTTPS (and WSS) on this address as well, with `tls_cert` and `tls_key`.
    pub listen_tls: Option<String>,
    /// PEM: the certificate chain, the server's own certificate first.
    pub tls_cert: Option<PathBuf>,
    /// PEM: the private key (PKCS#8, RSA or EC).
    pub tls_key: Option<PathBuf>,
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
    /// Where users reach the server (the redirect URIs of sign-in providers); `None`:
    /// `http://` and the address the server listens on.
    pub base_url: Option<String>,
    /// Where `GET /metrics` is also served, on a listener of its own (e.g.
    /// `127.0.0.1:9090`); `None`: only on `listen`.
    pub metrics_listen: Option<String>,
    /// How log lines are written on stderr.
    pub log_format: LogFormat,
    /// The log's level filter (`info`, `debug`, `tidings=debug,warn`); `None` keeps
    /// `TIDINGS_LOG`'s, or `info`. `TIDINGS_LOG`, when set, wins.
    pub log_level: Option<String>,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub cors: CorsConfig,
    pub webhooks: WebhooksConfig,
    pub webpush: WebPushConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Closed,
}

/// `text`: one human-readable line per event; `json`: one JSON object per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub jwt_secret: Option<String>,
    #[serde(deserialize_with = "duration")]
    pub access_token_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_token_ttl: Duration,
    /// `[[auth.oidc]]`: the OpenID Connect providers users may sign in with.
    pub oidc: Vec<OidcProvider>,
}

/// One `[[auth.oidc]]` table: a provider users sign in with at `/auth/{name}`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    pub name: String,
    /// The button text; the preset's, or the name.
    label: Option<String>,
    /// Discovery is at `{issuer}/.well-known/openid-configuration`; a preset has its own.
    issuer: Option<String>,
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<String>,
    scopes: Option<Vec<String>>,
}

/// Providers known by name: a table named so needs only its client id and secret.
const OIDC_PRESETS: [(&str, &str, &str); 1] = [("google", "Google", "https://accounts.google.com")];
/// Paths under `/auth/` that a provider's name must not take.
const AUTH_PATHS: [&str; 5] = ["login", "register", "refresh", "logout", "providers"];

impl OidcProvider {
    fn preset(&self) -> Option<(&'static str, &'static str)> {
        OIDC_PRESETS
            .iter()
            .find(|(name, _, _)| *name == self.name)
            .map(|(_, label, issuer)| (*label, *issuer))
    }

    pub fn label(&self) -> &str {
        self.label
            .as_deref()
            .or(self.preset().map(|(label, _)| label))
            .unwrap_or(&self.name)
    }

    /// The issuer, without a trailing `/`; checked to be there by [`Config::validate`].
    pub fn issuer(&self) -> &str {
        let issuer = self.issuer.as_deref().or(self.preset().map(|(_, i)| i));
        issuer.unwrap_or_default().trim_end_matches('/')
    }

    /// The scopes asked for: `openid` always, then those configured (default `email`
    /// and `profile`).
    pub fn scopes(&self) -> Vec<String> {
        let configured = self.scopes.clone();
        let configured = configured.unwrap_or_else(|| vec!["email".into(), "profile".into()]);
        let mut scopes = vec!["openid".to_string()];
        scopes.extend(configured.into_iter().filter(|s| s != "openid"));
        scopes
    }

    fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let name_ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if !name_ok {
            return Err(format!(
                "configuration: auth.oidc name `{name}` must be 1-32 of a-z, 0-9, '_' and '-'"
            ));
        }
        if AUTH_PATHS.contains(&name.as_str()) {
            return Err(format!(
                "configuration: auth.oidc name `{name}` collides with /auth/{name}"
            ));
        }
        let issuer = self.issuer();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!(
                "configuration: auth.oidc `{name}` needs an issuer URL (https://…)"
            ));
        }
        if self.client_id.is_empty() {
            return Err(format!(
                "configuration: auth.oidc `{name}` needs a client_id"
            ));
        }
        Ok(())
    }
}

/// The client secret is never printed.
impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("scopes", &self.scopes)
            .finish()
    }
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

/// `[webhooks]`: delivery to other services; `allow_private` also guards Web Push
/// endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// How long a failing delivery is retried.
    #[serde(deserialize_with = "duration")]
    pub retry_for: Duration,
    /// Allows `http` and loopback/private addresses (tests, LANs).
    pub allow_private: bool,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            retry_for: Duration::from_secs(24 * 3600),
            allow_private: false,
        }
    }
}

/// `[webpush]`: the VAPID key pair; without one it is generated once and kept in the
/// database.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebPushConfig {
    /// The P-256 private key: 32 bytes, base64url (or a PKCS#8 PEM).
    pub vapid_private_key: Option<String>,
}

impl std::fmt::Debug for WebPushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.vapid_private_key.as_ref().map(|_| "…");
        f.debug_struct("WebPushConfig")
            .field("vapid_private_key", &set)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            listen_tls: None,
            tls_cert: None,
            tls_key: None,
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
            base_url: None,
            metrics_listen: None,
            log_format: LogFormat::Text,
            log_level: None,
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            cors: CorsConfig::default(),
            webhooks: WebhooksConfig::default(),
            webpush: WebPushConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl: Duration::from_secs(30 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            oidc: Vec::new(),
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
    pub log_format: Option<String>,
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
            (DATABASE_URL, &overrides.database_url),
            ("redis_url", &overrides.redis_url),
            ("log_format", &overrides.log_format),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                table.insert(key.into(), Value::String(value.clone()));
            }
        }
        for (section, key) in SECRET_FILES {
            read_secret_file(&mut table, section, key)?;
        }
        read_oidc_secret_files(&mut table)?;
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
        if self.listen_tls.is_some() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err("configuration: listen_tls needs both tls_cert and tls_key".into());
        }
        if self.limits.body_timeout.is_zero() {
            return Err("configuration: limits.body_timeout must be > 0".into());
        }
        if let Some(url) = &self.base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!(
                    "configuration: base_url `{url}` must start with https:// or http://"
                ));
            }
        }
        for (i, provider) in self.auth.oidc.iter().enumerate() {
            provider.validate()?;
            if self.auth.oidc[..i].iter().any(|p| p.name == provider.name) {
                return Err(format!(
                    "configuration: auth.oidc name `{}` is given twice",
                    provider.name
                ));
            }
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

/// The top-level key of the database URL.
const DATABASE_URL: &str = "database_url";

/// Settings that may instead be read from a file named by `<key>_file` (a secret kept
/// out of the configuration file and the environment, as systemd credentials and
/// Docker secrets give them): the section they are in (`None`: top level) and the key.
const SECRET_FILES: [(Option<&str>, &str); 3] = [
    (None, DATABASE_URL),
    (Some("auth"), "jwt_secret"),
    (Some("webpush"), "vapid_private_key"),
];

/// Replaces `<key>_file` in `section` by `key`, set to what the file holds without its
/// trailing newline. Giving both forms (in any layers) is an error.
fn read_secret_file(table: &mut Table, section: Option<&str>, key: &str) -> Result<(), String> {
    let table = match section {
        None => table,
        Some(section) => match table.get_mut(section).and_then(Value::as_table_mut) {
            Some(inner) => inner,
            None => return Ok(()),
        },
    };
    secret_from_file(table, section.unwrap_or_default(), key)
}

/// `client_secret_file` in each `[[auth.oidc]]` table.
fn read_oidc_secret_files(table: &mut Table) -> Result<(), String> {
    let providers = table
        .get_mut("auth")
        .and_then(Value::as_table_mut)
        .and_then(|auth| auth.get_mut("oidc"))
        .and_then(Value::as_array_mut);
    for (i, provider) in providers.into_iter().flatten().enumerate() {
        if let Some(provider) = provider.as_table_mut() {
            secret_from_file(provider, &format!("auth.oidc[{i}]"), "client_secret")?;
        }
    }
    Ok(())
}

/// [`read_secret_file`] within one table, named `section` in messages.
fn secret_from_file(table: &mut Table, section: &str, key: &str) -> Result<(), String> {
    let name = |k: &str| match section {
        "" => k.to_string(),
        s => format!("{s}.{k}"),
    };
    let file_key = format!("{key}_file");
    let Some(path) = table.remove(&file_key) else {
        return Ok(());
    };
    let (key_name, file_name) = (name(key), name(&file_key));
    if table.contains_key(key) {
        return Err(format!(
            "configuration: {key_name} and {file_name} are both given; use one"
        ));
    }
    let path = path
        .as_str()
        .ok_or_else(|| format!("configuration: {file_name} must be a file path"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("configuration: cannot read {file_name} {path}: {e}"))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(format!("configuration: {file_name} {path} is empty"));
    }
    table.insert(key.to_string(), Value::String(value.to_string()));
    Ok(())
}

/// The configuration as last loaded, for the settings a running server applies live
/// ([`Config::changes`]); everything else keeps the values the server started with.
pub struct Live(RwLock<Arc<Config>>);

impl Live {
    pub fn new(config: Arc<Config>) -> Self {
        Self(RwLock::new(config))
    }

    pub fn get(&self) -> Arc<Config> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, config: Arc<Config>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = config;
    }
}

/// What differs between two configurations, by key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Applied at once by a running server.
    pub live: Vec<&'static str>,
    /// Kept as they were until the server restarts.
    pub restart: Vec<&'static str>,
}

impl Config {
    /// The keys whose values differ from `self` in `new`, sorted into those a running
    /// server applies at once and those that wait for a restart.
    pub fn changes(&self, new: &Config) -> Changes {
        let mut changes = Changes::default();
        // Each key once, by its path in the file; values compared as they print.
        macro_rules! compare {
            ($to:ident: $($($field:ident).+),+) => {$(
                if format!("{:?}", self.$($field).+) != format!("{:?}", new.$($field).+) {
                    changes.$to.push(stringify!($($field).+));
                }
            )+};
        }
        compare!(live: log_level, keepalive_interval, cors.allowed_origins);
        compare!(live: limits.anonymous_per_minute, limits.login_failures_per_email);
        compare!(live: limits.login_window, limits.login_per_ip_per_minute);
        compare!(live: limits.register_per_ip, limits.register_window);
        compare!(live: limits.refresh_per_ip_per_minute, limits.tiers);
        compare!(live: limits.creations_per_minute);
        compare!(restart: listen, database_url, redis_url, behind_proxy, registration);
        compare!(restart: listen_tls, tls_cert, tls_key, base_url);
        compare!(restart: auto_create_topics, cache_duration, message_size_limit);
        compare!(restart: subscriber_queue, workers, pin_workers, auth, log_format);
        compare!(restart: limits.connections_per_ip, limits.body_timeout);
        compare!(restart: limits.default_tier, limits.quotas, metrics_listen);
        compare!(restart: webhooks.allow_private, webhooks.retry_for, webpush);
        changes
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
        assert_eq!(c.log_format, LogFormat::Text);
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
        let c = load(&[("TIDINGS_LOG_FORMAT", "json")]).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        let err = load(&[("TIDINGS_LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.contains("xml"), "{err}");
    }

    #[test]
    fn changes_are_sorted_into_live_and_restart() {
        let old = load(&[]).unwrap();
        let new = load(&[
            ("TIDINGS_LIMITS__TIERS__FREE", "3"),
            ("TIDINGS_KEEPALIVE_INTERVAL", "5s"),
            ("TIDINGS_LISTEN", "127.0.0.1:1"),
            ("TIDINGS_AUTH__JWT_SECRET", "s"),
        ])
        .unwrap();
        let changes = old.changes(&new);
        assert_eq!(changes.live, ["keepalive_interval", "limits.tiers"]);
        let tls = load(&[
            ("TIDINGS_LISTEN_TLS", "127.0.0.1:8443"),
            ("TIDINGS_TLS_CERT", "cert.pem"),
            ("TIDINGS_TLS_KEY", "key.pem"),
        ])
        .unwrap();
        let restart = old.changes(&tls).restart;
        assert_eq!(restart, ["listen_tls", "tls_cert", "tls_key"]);
        assert_eq!(
            old.changes(&load(&[("TIDINGS_LOG_LEVEL", "debug")]).unwrap())
                .live,
            ["log_level"]
        );
        assert_eq!(changes.restart, ["listen", "auth"]);
        assert_eq!(old.changes(&old), Changes::default());
    }

    #[test]
    fn listen_tls_needs_a_certificate_and_a_key() {
        let err = load(&[
            ("TIDINGS_LISTEN_TLS", "127.0.0.1:8443"),
            ("TIDINGS_TLS_CERT", "cert.pem"),
        ])
        .unwrap_err();
        assert!(err.contains("tls_cert and tls_key"), "{err}");
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

    #[test]
    fn secrets_are_read_from_files_without_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let (url, secret) = (dir.path().join("url"), dir.path().join("secret"));
        std::fs::write(&url, "sqlite:///var/lib/t.db\n").unwrap();
        std::fs::write(&secret, "s3cret\r\n").unwrap();
        let (url, secret) = (url.display().to_string(), secret.display().to_string());
        let c = load(&[
            ("TIDINGS_DATABASE_URL_FILE", &url),
            ("TIDINGS_AUTH__JWT_SECRET_FILE", &secret),
        ])
        .unwrap();
        assert_eq!(c.database_url, "sqlite:///var/lib/t.db");
        assert_eq!(c.auth.jwt_secret.as_deref(), Some("s3cret"));

        let both = load(&[
            ("TIDINGS_AUTH__JWT_SECRET_FILE", &secret),
            ("TIDINGS_AUTH__JWT_SECRET", "x"),
        ]);
        let err = both.unwrap_err();
        assert!(
            err.contains("auth.jwt_secret and auth.jwt_secret_file"),
            "{err}"
        );
        let missing = dir.path().join("missing").display().to_string();
        let err = load(&[("TIDINGS_DATABASE_URL_FILE", &missing)]).unwrap_err();
        assert!(
            err.contains("database_url_file") && err.contains(&missing),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    fn load_toml(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, text).unwrap();
        let overrides = Overrides {
            config_file: Some(path),
            ..Default::default()
        };
        Config::load_with_env(&overrides, [])
    }

    #[test]
    fn oidc_providers_have_a_google_preset_and_a_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "shh\n").unwrap();
        let c = load_toml(&format!(
            "[[auth.oidc]]\nname = \"google\"\nclient_id = \"g\"\nclient_secret = \"s\"\n\
             [[auth.oidc]]\nname = \"corp\"\nissuer = \"https://id.example/\"\n\
             client_id = \"c\"\nclient_secret_file = {:?}\nscopes = [\"email\"]\n",
            secret.display().to_string()
        ))
        .unwrap();
        let (google, corp) = (&c.auth.oidc[0], &c.auth.oidc[1]);
        assert_eq!(google.issuer(), "https://accounts.google.com");
        assert_eq!(google.label(), "Google");
        assert_eq!(google.scopes(), ["openid", "email", "profile"]);
        assert_eq!(
            (corp.issuer(), corp.label()),
            ("https://id.example", "corp")
        );
        assert_eq!(corp.client_secret.as_deref(), Some("shh"));
        assert_eq!(corp.scopes(), ["openid", "email"]);
        assert!(!format!("{c:?}").contains("shh"));
    }

    #[test]
    fn oidc_names_that_collide_or_lack_an_issuer_are_refused_in_one_line() {
        for (table, expected) in [
            (
                "name = \"login\"\nissuer = \"https://a.example\"",
                "collides with /auth/login",
            ),
            (
                "name = \"providers\"\nissuer = \"https://a.example\"",
                "/auth/providers",
            ),
            ("name = \"corp\"", "needs an issuer"),
            (
                "name = \"Bad/Name\"\nissuer = \"https://a.example\"",
                "must be 1-32",
            ),
        ] {
            let err =
                load_toml(&format!("[[auth.oidc]]\n{table}\nclient_id = \"c\"\n")).unwrap_err();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let twice = "[[auth.oidc]]\nname = \"google\"\nclient_id = \"a\"\n".repeat(2);
        assert!(load_toml(&twice).unwrap_err().contains("given twice"));
        let err = load_toml("base_url = \"notify.example\"").unwrap_err();
        assert!(err.contains("base_url"), "{err}");
    }
}
