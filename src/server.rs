//! Starting the server: database, writer, broker, pruning, and the HTTP listener.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::auth::permissions::Revocation;
use crate::auth::Auth;
use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::db::{self, writer::Writer, Pool};
use crate::http::{self, AppState};
use crate::limits::Limits;
use crate::util::now_unix;

/// A topic actor with no subscribers stops after this long.
const TOPIC_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens everything and serves until the process is told to stop.
/// Prints `tidings listening on http://ADDR` once the port is bound.
pub async fn run(config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let pool = db::open(&config.database_url)?;
    let broker = Broker::new(TOPIC_IDLE_TIMEOUT);
    let cluster = config.redis_url.as_deref().map(Cluster::new).transpose()?;
    let writer = Writer::start(&config.database_url, broker.clone(), cluster.clone())?;
    let file_limit = http::raise_file_limit();
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;

    warn_development_mode(&pool);
    let auth = Auth::start(pool.clone(), jwt_secret(&config, &pool)?.as_bytes(), 2);
    spawn_pruner(writer.clone(), config.cache_duration);
    spawn_auth_upkeep(auth.clone(), pool.clone(), broker.clone());
    if let Some(cluster) = &cluster {
        let (auth2, pool2, broker2) = (auth.clone(), pool.clone(), broker.clone());
        cluster.listen(broker.clone(), auth.clone(), move || {
            auth2.clear();
            recheck_subscriptions(&pool2, &broker2);
        });
    }

    let state = web::Data::new(AppState {
        config: config.clone(),
        pool,
        broker,
        writer,
        auth,
        limits: Limits::new(&config).with_cluster(cluster.clone()),
        cluster,
    });
    spawn_limit_eviction(state.clone());
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let server = http::front::serve(listener, workers, config.pin_workers, state)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("tidings listening on http://{addr}");
    let database = db::Backend::parse(&config.database_url).display();
    tracing::info!(%addr, %database, ?file_limit, "tidings started");
    server.await.map_err(|e| format!("server error: {e}"))
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
