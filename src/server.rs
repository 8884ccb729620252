//! Starting the server: database, writer, broker, pruning, and the HTTP listener;
//! and its signals: SIGTERM or SIGINT shut it down cleanly, SIGHUP reloads the
//! configuration.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_rt::signal::unix::{signal, Signal, SignalKind};
use actix_server::ServerHandle;
use actix_web::web;

use crate::auth::permissions::Revocation;
use crate::auth::Auth;
use crate::broker::Broker;
use crate::cluster::{self, Change, Cluster};
use crate::config::{Config, Overrides};
use crate::db::{self, Pool};
use crate::http::{self, front, AppState};
use crate::pipeline::writer::Writer;
use crate::service::push::{Push, Vapid};
use crate::service::sign_in::Providers;
use crate::service::Domain;
use crate::service::Outbound;
use crate::util::now_unix;

/// Sets the log's level filter; given by the binary, which owns the logger.
type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;
static LOG_LEVEL: OnceLock<SetLogLevel> = OnceLock::new();

/// How the configuration's `log_level` reaches the logger (called once, by `main`).
pub fn on_log_level(set: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let _ = LOG_LEVEL.set(Box::new(set));
}

/// Applies a `log_level` (`info` when it is not set), unless `TIDINGS_LOG` decides.
fn apply_log_level(level: Option<&str>) {
    let Some(set) = LOG_LEVEL.get() else { return };
    if std::env::var_os("TIDINGS_LOG").is_some() {
        return;
    }
    let level = level.unwrap_or("info");
    if let Err(error) = set(level) {
        tracing::error!(%error, level, "log_level not applied");
    }
}

/// How long a shutdown waits for the writer to store what was accepted and leave the
/// database complete; past that (a database gone away) it exits all the same: what a
/// single SQLite node journaled moves in at the next start.
const FINISH_WITHIN: Duration = Duration::from_secs(6);

/// A topic actor with no subscribers stops after this long.
const TOPIC_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens everything and serves until SIGTERM or SIGINT (then shuts down cleanly; see
/// [`shut_down`]); SIGHUP reloads the configuration from `overrides`' layers.
/// Prints `tidings listening on http://ADDR` once the port is bound.
pub async fn run(config: Config, overrides: Overrides) -> Result<(), String> {
    if config.log_level.is_some() {
        apply_log_level(config.log_level.as_deref());
    }
    let config = Arc::new(config);
    let pool = db::open(&config.database_url)?;
    let broker = Broker::new(TOPIC_IDLE_TIMEOUT);
    let cluster = config.redis_url.as_deref().map(Cluster::new).transpose()?;
    let writer = Writer::start(&config.database_url, broker.clone(), cluster.clone())?;
    let file_limit = http::raise_file_limit();
    let (listener, addr) = bind(&config.listen)?;
    let https = match (&config.listen_tls, &config.tls_cert, &config.tls_key) {
        (Some(listen), Some(cert), Some(key)) => {
            let acceptor = http::tls::acceptor(cert, key)?;
            let (tcp, addr) = bind(listen)?;
            Some((
                front::Listener {
                    tcp,
                    tls: Some(acceptor),
                },
                addr,
            ))
        }
        _ => None,
    };
    let metrics_listener = match &config.metrics_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .map_err(|e| format!("cannot listen on {at} (metrics_listen): {e}"))?,
        ),
        None => None,
    };

    warn_development_mode(&pool);
    let auth = Auth::start(pool.clone(), jwt_secret(&config, &pool)?.as_bytes(), 2);
    spawn_pruner(writer.clone(), config.cache_duration);
    spawn_auth_upkeep(auth.clone(), pool.clone(), broker.clone());
    let base_url = (config.base_url.clone()).unwrap_or_else(|| format!("http://{addr}"));
    let sign_in = Providers::new(&config, &base_url)?;
    sign_in.discover().await;
    let vapid = Vapid::load(config.webpush.vapid_private_key.as_deref(), &pool)?;
    let allow_private = config.webhooks.allow_private;
    let push = Push::new(vapid, pool.clone(), base_url.clone(), allow_private)?;
    push.spawn();
    if let Some(cluster) = &cluster {
        let hooks = ClusterHooks {
            auth: auth.clone(),
            pool: pool.clone(),
            broker: broker.clone(),
            push: push.clone(),
        };
        cluster.listen(broker.clone(), auth.clone(), hooks);
    }
    let state = web::Data::new(AppState {
        domain: Domain::new(
            config.clone(),
            pool,
            auth,
            broker,
            writer,
            cluster,
            Outbound { sign_in, push },
        ),
    });
    spawn_limit_eviction(state.clone());
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let mut signals = Signals::install()?;
    let https_addr = https.as_ref().map(|(_, addr)| *addr);
    let mut listeners = vec![front::Listener {
        tcp: listener,
        tls: None,
    }];
    listeners.extend(https.map(|(listener, _)| listener));
    let server = front::serve(listeners, workers, config.pin_workers, state.clone())
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let handle = server.handle();
    let mut serving = actix_web::rt::spawn(server);
    let metrics = metrics_listener
        .map(|listener| serve_metrics(listener, state.clone()))
        .transpose()?;
    println!("tidings listening on http://{addr}");
    if let Some(addr) = https_addr {
        println!("tidings listening on https://{addr}");
    }
    let database = db::Backend::parse(&config.database_url)?.display();
    let metrics_addr = metrics.as_ref().map(|(addr, _)| addr.to_string());
    tracing::info!(%addr, %database, ?file_limit, metrics = metrics_addr, "tidings started");
    if let Some(addr) = https_addr {
        tracing::info!(%addr, "serving HTTPS");
    }
    let stop = loop {
        tokio::select! {
            ended = &mut serving => {
                return match ended {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("server error: {e}")),
                    Err(e) => Err(format!("server error: {e}")),
                };
            }
            got = signals.next() => match got {
                Got::Reload => reload(&overrides, &state),
                Got::Stop(name) => break name,
            },
        }
    };
    if let Some((_, metrics)) = metrics {
        // Stopped alongside the main listener: a scrape in progress finishes.
        actix_web::rt::spawn(async move { metrics.stop(true).await });
    }
    shut_down(stop, handle, serving, &state).await;
    Ok(())
}

/// A listening socket on `addr`, and the address it got (`:0` picks a free port).
fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), String> {
    let fail = |e: std::io::Error| format!("cannot listen on {addr}: {e}");
    let listener = TcpListener::bind(addr).map_err(fail)?;
    let bound = listener.local_addr().map_err(fail)?;
    Ok((listener, bound))
}

/// Starts the `metrics_listen` server: its address and its handle.
fn serve_metrics(
    listener: TcpListener,
    state: web::Data<AppState>,
) -> Result<(SocketAddr, ServerHandle), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = http::metrics_listener::serve(listener, state)
        .map_err(|e| format!("cannot listen on {addr} (metrics_listen): {e}"))?;
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((addr, handle))
}

/// The signals the server handles itself (actix-server's own handling is off).
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

enum Got {
    Stop(&'static str),
    Reload,
}

impl Signals {
    fn install() -> Result<Self, String> {
        let on = |kind: SignalKind| signal(kind).map_err(|e| format!("cannot handle signals: {e}"));
        Ok(Self {
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Got {
        tokio::select! {
            _ = self.term.recv() => Got::Stop("SIGTERM"),
            _ = self.int.recv() => Got::Stop("SIGINT"),
            _ = self.hup.recv() => Got::Reload,
        }
    }
}

/// SIGHUP: reads the configuration again and applies what can change live; one that
/// does not load is logged and the running one stays.
fn reload(overrides: &Overrides, state: &AppState) {
    let config = match Config::load(overrides) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "configuration not reloaded: the running one stays");
            return;
        }
    };
    let level = config.log_level.clone();
    let changes = state.reload(config);
    // Said at the level in force until now, so that a change to `warn` is logged.
    tracing::info!(
        applied = ?changes.live,
        needs_restart = ?changes.restart,
        "configuration reloaded"
    );
    if changes.live.contains(&"log_level") {
        apply_log_level(level.as_deref());
    }
}

/// Stops accepting connections, ends every stream with a final `close` event
/// (`Server shutting down`), lets requests in progress finish (publishes among them;
/// at most the listener's shutdown timeout), then stores everything accepted and
/// leaves the database file complete on its own.
async fn shut_down(
    signal: &str,
    handle: ServerHandle,
    serving: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    state: &AppState,
) {
    let started = Instant::now();
    tracing::info!(signal, "shutting down");
    handle.pause().await;
    state.broker.shut_down();
    handle.stop(true).await;
    let _ = serving.await;
    let (auth, pool) = (state.auth.clone(), state.pool.clone());
    let store = async {
        // Credential usage gathered since the last second's flush, then the messages.
        let _ = crate::cores::block(move || {
            if let Ok(mut conn) = pool.get() {
                auth.usage().flush(&mut conn);
            }
        })
        .await;
        state.writer.finish().await;
    };
    if tokio::time::timeout(FINISH_WITHIN, store).await.is_err() {
        tracing::error!("storing accepted messages did not finish in time");
    }
    tracing::info!(took = ?started.elapsed(), "tidings stopped");
}

/// Removes expired messages regularly (a few times per cache duration, at most a minute apart).
fn spawn_pruner(writer: Writer, cache_duration: Duration) {
    let every = (cache_duration / 4).clamp(Duration::from_millis(500), Duration::from_secs(60));
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            writer.prune(now_unix());
        }
    });
}

/// The configured JWT secret, or one generated on first start and kept in the
/// database so that restarts do not log everyone out.
fn jwt_secret(config: &Config, pool: &Pool) -> Result<String, String> {
    if let Some(secret) = &config.auth.jwt_secret {
        return Ok(secret.clone());
    }
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot open database: {e}"))?;
    let fresh = crate::auth::secrets::random_secret("");
    db::settings::get_or_init(&mut conn, db::settings::JWT_SECRET, &fresh)
        .map_err(|e| format!("cannot read database: {e}"))
}

/// Every second: write gathered credential usage, and drop the credential caches
/// when another process (the admin CLI) changed accounts.
fn spawn_auth_upkeep(auth: Auth, pool: Pool, broker: Broker) {
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut seen: Option<String> = None;
        loop {
            ticks.tick().await;
            let (auth2, pool2) = (auth.clone(), pool.clone());
            let read = crate::cores::block(move || {
                let mut conn = pool2.get().ok()?;
                auth2.usage().flush(&mut conn);
                db::settings::get(&mut conn, db::settings::AUTH_EPOCH).ok()
            })
            .await;
            if let Ok(Some(epoch)) = read {
                if epoch != seen {
                    auth.clear();
                    seen = epoch;
                    let (pool, broker) = (pool.clone(), broker.clone());
                    let _ =
                        crate::cores::block(move || recheck_subscriptions(&pool, &broker)).await;
                }
            }
        }
    });
}

/// Forgets rate-limiter state of idle IPs and accounts once a minute.
fn spawn_limit_eviction(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticks.tick().await;
            state.limits.evict();
        }
    });
}

/// What this node does with what the cluster listener hears, beyond the caches and
/// subscriptions it updates itself.
struct ClusterHooks {
    auth: Auth,
    pool: Pool,
    broker: Broker,
    push: Push,
}

impl cluster::Hooks for ClusterHooks {
    fn resync(&self) {
        self.auth.clear();
        recheck_subscriptions(&self.pool, &self.broker);
    }

    fn changed(&self, change: &Change) {
        if let Change::PushSubscribed { topics } = change {
            self.push.watch(topics);
        }
    }
}

/// After changes this node did not see (another process, or a Redis outage), closes
/// live subscriptions whose account, API key or topic token no longer exists.
fn recheck_subscriptions(pool: &Pool, broker: &Broker) {
    let existing = pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| db::users::existing_ids(&mut conn).map_err(|e| e.to_string()));
    match existing {
        Ok(existing) => broker.revoke(None, Revocation::Existing(Arc::new(existing))),
        Err(e) => tracing::warn!(error = %e, "could not re-check live subscriptions"),
    }
}

/// Accounts whose browser access needs no signed user key are worth a warning.
fn warn_development_mode(pool: &Pool) {
    let Ok(mut conn) = pool.get() else { return };
    if let Ok(usernames) = db::clients::in_development_mode(&mut conn) {
        for username in usernames {
            tracing::warn!(account = %username, "client authentication is in development mode: any user id may subscribe to this account's topics");
        }
    }
}
