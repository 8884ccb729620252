//! The domain: every operation on accounts, sign-ins through OpenID Connect providers,
//! API keys, topics, topic access tokens and browser client settings, written once for the HTTP handlers and the admin CLI.
//!
//! An operation validates its input, checks who may do it (the 404-vs-403 ownership
//! rule lives here), runs its queries through `db` off the async workers, reports what
//! it changed, and returns a plain result for its caller to render. Errors are
//! `ApiError`s, so the HTTP layer answers them as they are and the CLI prints them.

pub mod accounts;
pub mod backup;
pub mod clients;
pub mod health;
pub mod keys;
pub mod oidc;
pub mod publish;
pub mod push;
pub mod sign_in;
pub mod streams;
pub mod tokens;
pub mod topics;
pub mod users;
pub mod webpush;

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use crate::auth::permissions::{authorize, Action, Grant, TopicInfo};
use crate::auth::secrets::{digest, random_secret};
use crate::auth::{Auth, Principal, UserInfo};
use crate::broker::Broker;
use crate::cluster::{Change, Cluster};
use crate::config::{Changes as ConfigChanges, Config, Live, Quota};
use crate::db::quotas::Within;
use crate::db::{Conn, Page, Pool};
use crate::error::ApiResult;
use crate::limits::{Limits, PerIp};
use crate::metrics::METRICS;
use crate::pipeline::writer::Writer;
use push::Push;
use sign_in::Providers;

/// Where changes to credentials and topics go.
#[derive(Clone)]
pub enum Changes {
    /// This process serves: a change is applied to its caches and live subscriptions
    /// at once and, in cluster mode, announced to every other node.
    Served {
        auth: Auth,
        broker: Broker,
        cluster: Option<Cluster>,
    },
    /// No server runs in this process (the admin CLI): the servers sharing the
    /// database see a new auth epoch and empty their caches within a second.
    Elsewhere,
}

/// What every operation needs, in the server and in the admin CLI alike: the
/// configuration, the database, and where changes go.
pub struct Store {
    pub config: Arc<Config>,
    pub pool: Pool,
    changes: Changes,
}

impl Store {
    /// The store of a process that serves nothing (the admin CLI).
    pub fn elsewhere(config: Arc<Config>, pool: Pool) -> Self {
        Self {
            config,
            pool,
            changes: Changes::Elsewhere,
        }
    }

    /// Runs blocking database work on the blocking pool with a pooled connection.
    pub async fn db<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> ApiResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        crate::cores::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// Reads one page with `read` on the blocking pool.
    async fn list<R, F>(&self, page: Page, read: F) -> ApiResult<Listing<R>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn, &Page) -> ApiResult<Vec<R>> + Send + 'static,
    {
        let wanted = page.clone();
        let rows = self.db(move |conn| read(conn, &wanted)).await?;
        Ok(Listing { page, rows })
    }

    /// Reports a change to credentials or topics (see [`Changes`]).
    pub async fn changed(&self, change: Change) -> ApiResult<()> {
        match &self.changes {
            Changes::Served {
                auth,
                broker,
                cluster,
            } => {
                change.apply(auth, broker);
                if let Some(cluster) = cluster.clone() {
                    actix_web::rt::spawn(crate::cores::block(move || cluster.announce(change)));
                }
                Ok(())
            }
            Changes::Elsewhere => self.accounts_changed().await,
        }
    }

    /// Accounts changed in a way no single [`Change`] names (a tier, a deletion with
    /// everything the account owned): every server on this database empties its
    /// credential caches within a second and re-checks its live subscriptions.
    pub async fn accounts_changed(&self) -> ApiResult<()> {
        self.db(|conn| Ok(crate::db::settings::bump_auth_epoch(conn)?))
            .await
    }
}

/// The domain as a server runs it: the [`Store`] (reached through `Deref`), the
/// credential caches, the live topics, the rate limiters and the message writer.
pub struct Domain {
    store: Store,
    pub auth: Auth,
    pub broker: Broker,
    pub writer: Writer,
    pub limits: Limits,
    /// The configuration as last reloaded, for the settings that apply live.
    pub live: Live,
    /// Set in cluster mode (`redis_url`).
    pub cluster: Option<Cluster>,
    /// The OpenID Connect providers users may sign in with.
    pub sign_in: Providers,
    /// Web Push: the VAPID keys, the subscribed topics, the delivery task.
    pub push: Push,
}

/// The services outside that a server reaches: identity providers and push services.
pub struct Outbound {
    pub sign_in: Providers,
    pub push: Push,
}

impl Deref for Domain {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Domain {
    pub fn new(
        config: Arc<Config>,
        pool: Pool,
        auth: Auth,
        broker: Broker,
        writer: Writer,
        cluster: Option<Cluster>,
        outbound: Outbound,
    ) -> Self {
        let changes = Changes::Served {
            auth: auth.clone(),
            broker: broker.clone(),
            cluster: cluster.clone(),
        };
        Self {
            limits: Limits::new(&config).with_cluster(cluster.clone()),
            live: Live::new(config.clone()),
            store: Store {
                config,
                pool,
                changes,
            },
            auth,
            broker,
            writer,
            cluster,
            sign_in: outbound.sign_in,
            push: outbound.push,
        }
    }

    /// Applies a reloaded configuration: what can change live does at once (rate
    /// limits, keepalive, CORS origins); returns what changed.
    /// Settings that need a restart are compared with those the server started with.
    pub fn reload(&self, config: Config) -> ConfigChanges {
        let changes = ConfigChanges {
            live: self.live.get().changes(&config).live,
            restart: self.config.changes(&config).restart,
        };
        self.limits.reconfigure(&config.limits);
        self.live.set(Arc::new(config));
        changes
    }

    /// Leave for `owner` to create one more of `quota`: one creation off its rate (429
    /// when spent), and the tier's quota that the creation must fit in.
    pub fn creation(&self, owner: &UserInfo, quota: Quota) -> ApiResult<Within> {
        self.limits.check_creation(&owner.id)?;
        Ok(Within {
            owner_id: owner.id.clone(),
            quota,
            limit: self.config.quota(&owner.tier, quota),
        })
    }

    /// Charges one request of kind `what` to the client's IP (when it is known).
    pub fn charge_ip(&self, what: PerIp, ip: Option<IpAddr>) -> ApiResult<()> {
        match ip {
            Some(ip) => self.limits.check_ip(what, ip).map(drop),
            None => Ok(()),
        }
    }

    /// Checks `principal` against a topic's permissions; also returns the topic
    /// (`None` when it does not exist yet).
    pub async fn authorize_topic(
        &self,
        principal: &Principal,
        topic: &str,
        action: Action,
    ) -> ApiResult<(Grant, Option<Arc<TopicInfo>>)> {
        let info = self.auth.topic(topic).await?;
        let grant = authorize(principal, topic, info.as_ref(), action)
            .inspect_err(|e| METRICS.auth_failed(e))?;
        Ok((grant, info))
    }
}

/// A freshly minted secret (shown once) and the digest that is stored instead.
pub struct Minted {
    pub secret: String,
    pub hash: String,
}

/// Mints a secret starting with `prefix`: API keys, topic tokens, refresh tokens.
pub fn mint(prefix: &str) -> Minted {
    let secret = random_secret(prefix);
    let hash = digest(&secret);
    Minted { secret, hash }
}

/// One page of a list, with the page it was read for (the next cursor comes from it).
pub struct Listing<R> {
    pub page: Page,
    pub rows: Vec<R>,
}
