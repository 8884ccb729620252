//! Authentication: turning a presented credential into a [`Principal`].
//!
//! Credentials seen before are answered from in-memory caches (DashMap) without the
//! database; the rest is looked up by the [`actor::Authenticator`] actor. Anything
//! revoked, regenerated or deleted is dropped from the caches at once, and a change
//! made by another process (the admin CLI) empties them within a second.

pub mod actor;
pub mod client;
pub mod credential;
pub mod jwt;
pub mod permissions;
pub mod secrets;
pub mod usage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::{Addr, SyncArbiter};
use dashmap::DashMap;

use crate::db::Pool;
use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;
use crate::util::now_unix;
use actor::{Authenticator, LoadApiKey, LoadClient, LoadTopic, LoadTopicToken, LoadUser};
use client::{ClientAccount, ClientUser};
use credential::{Credential, Login};
use jwt::JwtKeys;
use permissions::TopicInfo;
use secrets::{digest, same};
use usage::Usage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub id: String,
    pub email: String,
    pub username: String,
    pub tier: String,
    pub created_at: i64,
    /// The account's browser client key (`pk_…`): the way to its allowed origins.
    pub client_key: String,
}

#[derive(Debug, Clone)]
pub struct ApiKeyInfo {
    pub id: String,
    pub user_id: String,
    pub key_hash: String,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub topic: String,
    /// The topic's owner, whose quota the token's publishes use.
    pub owner_id: String,
    pub token_hash: String,
    pub can_read: bool,
    pub can_write: bool,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountVia {
    AccessToken,
    ApiKey(String),
    /// `Authorization: Basic` with the account's password.
    Password,
}

/// Who is asking. `expires_at` (unix seconds) is when the credentials presented stop
/// being valid: the earliest expiry among them, `None` when none expires.
#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    Account {
        user: Arc<UserInfo>,
        via: AccountVia,
        expires_at: Option<i64>,
    },
    TopicToken {
        token: Arc<TokenInfo>,
        expires_at: Option<i64>,
    },
    /// A browser end user of an account (subscribe only).
    Client {
        account: Arc<ClientAccount>,
        user: ClientUser,
        expires_at: Option<i64>,
    },
}

impl Principal {
    /// The account, for endpoints that need one (API keys, topics management, …).
    pub fn account(&self) -> ApiResult<&Arc<UserInfo>> {
        match self {
            Self::Account { user, .. } => Ok(user),
            Self::Anonymous => Err(ApiError::NotAuthenticated),
            Self::TopicToken { .. } | Self::Client { .. } => Err(ApiError::Forbidden),
        }
    }

    /// When the request's credentials expire (unix seconds); a live subscription ends
    /// then.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Self::Anonymous => None,
            Self::Account { expires_at, .. }
            | Self::TopicToken { expires_at, .. }
            | Self::Client { expires_at, .. } => *expires_at,
        }
    }

    /// Lowers the expiry to `at` when that is earlier (another credential presented).
    fn expires_no_later_than(&mut self, at: Option<i64>) {
        if let Self::Account { expires_at, .. }
        | Self::TopicToken { expires_at, .. }
        | Self::Client { expires_at, .. } = self
        {
            *expires_at = earliest(*expires_at, at);
        }
    }
}

/// The earlier of two expiries, `None` standing for never.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    jwt: JwtKeys,
    lookups: Addr<Authenticator>,
    users: DashMap<String, Arc<UserInfo>>,
    api_keys: DashMap<String, Arc<ApiKeyInfo>>,
    tokens: DashMap<String, Arc<TokenInfo>>,
    topics: DashMap<String, Option<Arc<TopicInfo>>>,
    clients: DashMap<String, Arc<ClientAccount>>,
    usage: Usage,
    /// Advanced by every forget: a look-up that raced with one is not cached, so an
    /// answer read before a change never outlives it in the cache.
    generation: AtomicU64,
}

impl Auth {
    /// Starts the auth actor on `threads` threads of its own.
    pub fn start(pool: Pool, jwt_secret: &[u8], threads: usize) -> Self {
        let lookups = SyncArbiter::start(threads, move || Authenticator { pool: pool.clone() });
        Self {
            inner: Arc::new(Inner {
                jwt: JwtKeys::new(jwt_secret),
                lookups,
                users: DashMap::new(),
                api_keys: DashMap::new(),
                tokens: DashMap::new(),
                topics: DashMap::new(),
                clients: DashMap::new(),
                usage: Usage::default(),
                generation: AtomicU64::new(0),
            }),
        }
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }

    pub fn usage(&self) -> &Usage {
        &self.inner.usage
    }

    /// How many times a check had to ask the database, in this process (the
    /// `tidings_auth_db_lookups_total` counter).
    pub fn db_lookups(&self) -> u64 {
        METRICS.auth_db_lookups.get()
    }

    /// Asks the database (through the auth actor); the answer comes with whether it
    /// may be cached (no forget happened meanwhile).
    async fn lookup<M>(&self, msg: M) -> ApiResult<(M::Result, bool)>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Authenticator: actix::Handler<M>,
    {
        METRICS.auth_db_lookups.inc();
        let before = self.inner.generation.load(Ordering::SeqCst);
        let answer = self.inner.lookups.send(msg).await?;
        Ok((
            answer,
            self.inner.generation.load(Ordering::SeqCst) == before,
        ))
    }

    /// Called after every removal from the caches.
    fn forgot(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Resolves what a request presents: no credential is anonymous; every credential
    /// presented must be valid (none is silently ignored); the first one decides who
    /// asks, and the one that expires first when the answer expires.
    /// `origin` is the request's `Origin` header (checked for client credentials);
    /// `check_login` checks an email or username and password, as a login attempt
    /// (rate limits are the domain's), and answers the account's id.
    pub async fn resolve_all(
        &self,
        credentials: Vec<Credential>,
        origin: Option<&str>,
        check_login: impl AsyncFn(Login) -> ApiResult<String>,
    ) -> ApiResult<Principal> {
        let mut principal = Principal::Anonymous;
        for (i, credential) in credentials.into_iter().enumerate() {
            let resolved = match credential {
                Credential::Password(login) => {
                    let user_id = check_login(login).await?;
                    let user = self.user(&user_id).await?;
                    Principal::Account {
                        user: user.ok_or(ApiError::InvalidCredentials)?,
                        via: AccountVia::Password,
                        expires_at: None,
                    }
                }
                other => self.resolve(other, origin).await?,
            };
            if i == 0 {
                principal = resolved;
            } else {
                principal.expires_no_later_than(resolved.expires_at());
            }
        }
        Ok(principal)
    }

    /// Resolves one credential; one that is present but not valid is an error. A
    /// password is checked only by [`Auth::resolve_all`], as a login attempt.
    pub async fn resolve(
        &self,
        credential: Credential,
        origin: Option<&str>,
    ) -> ApiResult<Principal> {
        match credential {
            Credential::Password(_) => Err(ApiError::InvalidCredentials),
            Credential::Client {
                client_key,
                user_key,
                user_id,
            } => {
                let account = self
                    .client(&client_key)
                    .await?
                    .ok_or(ApiError::InvalidCredentials)?;
                account.check_origin(origin)?;
                let (user, expires_at) = match (user_key, user_id) {
                    (Some(key), _) => client::verify_user_key(&account, &key, now_unix())?,
                    (None, Some(id)) => (client::dev_user(&account, &id)?, None),
                    (None, None) => return Err(ApiError::NotAuthenticated),
                };
                Ok(Principal::Client {
                    account,
                    user,
                    expires_at,
                })
            }
            Credential::AccessToken(token) => {
                let (user_id, expires_at) = self.inner.jwt.verify(&token)?;
                let user = self.user(&user_id).await?;
                Ok(Principal::Account {
                    user: user.ok_or(ApiError::InvalidCredentials)?,
                    via: AccountVia::AccessToken,
                    expires_at: Some(expires_at),
                })
            }
            Credential::ApiKey(secret) => {
                let hash = digest(&secret);
                let load = LoadApiKey { hash: hash.clone() };
                let key = self.by_digest(&self.inner.api_keys, &hash, load).await?;
                let now = now_unix();
                check_secret(&key.key_hash, &hash, key.expires_at, now)?;
                let user = self.user(&key.user_id).await?;
                let user = user.ok_or(ApiError::InvalidCredentials)?;
                self.inner.usage.key_used(&key.id, now);
                Ok(Principal::Account {
                    user,
                    via: AccountVia::ApiKey(key.id.clone()),
                    expires_at: key.expires_at,
                })
            }
            Credential::TopicToken(secret) => {
                let hash = digest(&secret);
                let load = LoadTopicToken { hash: hash.clone() };
                let token = self.by_digest(&self.inner.tokens, &hash, load).await?;
                let now = now_unix();
                check_secret(&token.token_hash, &hash, token.expires_at, now)?;
                self.inner.usage.token_used(&token.id, now);
                Ok(Principal::TopicToken {
                    expires_at: token.expires_at,
                    token,
                })
            }
        }
    }

    /// A secret's record from `cache`, or from the database (then cached); unknown
    /// secrets are invalid credentials.
    async fn by_digest<T, M>(
        &self,
        cache: &DashMap<String, Arc<T>>,
        hash: &str,
        load: M,
    ) -> ApiResult<Arc<T>>
    where
        T: Send + 'static,
        M: actix::Message<Result = ApiResult<Option<T>>> + Send + 'static,
        Authenticator: actix::Handler<M>,
    {
        if let Some(hit) = cache.get(hash) {
            return Ok(hit.clone());
        }
        let (found, cacheable) = self.lookup(load).await?;
        let record = Arc::new(found?.ok_or(ApiError::InvalidCredentials)?);
        if cacheable {
            cache.insert(hash.to_string(), record.clone());
        }
        Ok(record)
    }

    pub async fn user(&self, id: &str) -> ApiResult<Option<Arc<UserInfo>>> {
        if let Some(user) = self.inner.users.get(id) {
            return Ok(Some(user.clone()));
        }
        let (found, cacheable) = self.lookup(LoadUser { id: id.to_string() }).await?;
        Ok(found?.map(|user| {
            let user = Arc::new(user);
            if cacheable {
                self.inner.users.insert(id.to_string(), user.clone());
            }
            user
        }))
    }

    /// The topic's owner and visibility; `None` when it does not exist (also cached).
    pub async fn topic(&self, name: &str) -> ApiResult<Option<Arc<TopicInfo>>> {
        if let Some(topic) = self.inner.topics.get(name) {
            return Ok(topic.clone());
        }
        let (found, cacheable) = self
            .lookup(LoadTopic {
                name: name.to_string(),
            })
            .await?;
        let topic = found?.map(Arc::new);
        if cacheable {
            self.inner.topics.insert(name.to_string(), topic.clone());
        }
        Ok(topic)
    }

    /// A topic was created, changed or deleted: look it (and its tokens) up afresh.
    pub fn forget_topic(&self, name: &str) {
        self.inner.topics.remove(name);
        self.inner.tokens.retain(|_, t| t.topic != name);
        self.forgot();
    }

    /// The browser-access settings behind a client key (`None`: no such key).
    pub async fn client(&self, client_key: &str) -> ApiResult<Option<Arc<ClientAccount>>> {
        if let Some(account) = self.inner.clients.get(client_key) {
            return Ok(Some(account.clone()));
        }
        let (found, cacheable) = self
            .lookup(LoadClient {
                client_key: client_key.to_string(),
            })
            .await?;
        Ok(found?.map(|account| {
            let account = Arc::new(account);
            if cacheable {
                self.inner
                    .clients
                    .insert(client_key.to_string(), account.clone());
            }
            account
        }))
    }

    /// An account's browser-access settings changed.
    pub fn forget_client(&self, user_id: &str) {
        self.inner.clients.retain(|_, c| c.user_id != user_id);
        self.forgot();
    }

    pub fn forget_api_key(&self, id: &str) {
        self.inner.api_keys.retain(|_, k| k.id != id);
        self.forgot();
    }

    pub fn forget_token(&self, id: &str) {
        self.inner.tokens.retain(|_, t| t.id != id);
        self.forgot();
    }

    pub fn forget_user(&self, id: &str) {
        self.inner.users.remove(id);
        self.forgot();
    }

    /// Drops every cached credential, account and topic.
    pub fn clear(&self) {
        self.inner.users.clear();
        self.inner.api_keys.clear();
        self.inner.tokens.clear();
        self.inner.topics.clear();
        self.inner.clients.clear();
        self.forgot();
    }
}

/// The stored digest matches (in constant time) and has not expired.
fn check_secret(stored: &str, presented: &str, expires_at: Option<i64>, now: i64) -> ApiResult<()> {
    if !same(stored, presented) {
        return Err(ApiError::InvalidCredentials);
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::TokenExpired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_expiry_wins_and_none_is_never() {
        assert_eq!(earliest(Some(5), Some(3)), Some(3));
        assert_eq!(earliest(None, Some(3)), Some(3));
        assert_eq!(earliest(Some(5), None), Some(5));
        assert_eq!(earliest(None, None), None);
    }
}
