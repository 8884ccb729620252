//! Web Push delivery: the VAPID key pair (RFC 8292), each push encrypted for its
//! browser (RFC 8291, `aes128gcm`, through the `ece` crate) and sent to its push
//! service with `reqwest`; a background task drains the durable queue in the
//! database, retrying 429 and 5xx with back-off and forgetting subscriptions whose
//! push service answers 404 or 410.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::SecretKey;
use tokio::sync::{Notify, Semaphore};

use super::webpush::check_endpoint;
use crate::db::webpush::{PushRow, SubscriptionRow};
use crate::db::{self, Pool};

/// Settings row of the generated VAPID private key (32 bytes, base64url).
const VAPID_SETTING: &str = "vapid_private_key";
/// Pushes taken from the queue at once.
const BATCH: i64 = 64;
/// Attempts under way at once.
const IN_FLIGHT: usize = 256;
/// How long one attempt may take; a push taken by a node that died meanwhile is
/// tried again after this and a margin.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const LEASE_MS: i64 = 15_000;
/// Back-off between attempts: doubling from 1 s, at most 1 h.
const FIRST_RETRY_MS: i64 = 1_000;
const LAST_RETRY_MS: i64 = 3_600_000;
/// How often the set of subscribed topics is read again (subscriptions made or
/// deleted on other nodes, or by the push services' 404/410).
const TOPICS_REFRESH: Duration = Duration::from_secs(10);

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `TTL` (seconds) by priority: low-priority notifications are not worth showing a
/// day late; urgent ones are kept as long as push services do.
pub fn ttl_secs(priority: u8) -> i64 {
    match priority {
        1 | 2 => 3_600,
        3 => 12 * 3_600,
        _ => 24 * 3_600,
    }
}

/// How long a push is retried: as long as its `TTL`.
pub fn expiry_ms(priority: u8) -> i64 {
    ttl_secs(priority) * 1000
}

/// RFC 8030's `Urgency` by priority.
pub fn urgency(priority: u8) -> &'static str {
    match priority {
        1 => "very-low",
        2 => "low",
        3 => "normal",
        _ => "high",
    }
}

/// The server's VAPID key pair.
pub struct Vapid {
    key: SigningKey,
    /// The uncompressed public point, base64url: `GET /api/webpush` and `k=`.
    pub public_key: String,
}

impl Vapid {
    fn from_secret(secret: &SecretKey) -> Self {
        let point = secret.public_key().to_encoded_point(false);
        Self {
            key: SigningKey::from(secret),
            public_key: URL_SAFE_NO_PAD.encode(point.as_bytes()),
        }
    }

    /// The configured key (32 bytes base64url, or a PKCS#8 PEM), or the one kept in
    /// the database, made on the first start.
    pub fn load(configured: Option<&str>, pool: &Pool) -> Result<Self, String> {
        let text = match configured {
            Some(text) => text.trim().to_string(),
            None => {
                let mut conn = pool
                    .get()
                    .map_err(|e| format!("cannot open database: {e}"))?;
                let fresh = SecretKey::random(&mut rand::rngs::OsRng);
                let fresh = URL_SAFE_NO_PAD.encode(fresh.to_bytes());
                db::settings::get_or_init(&mut conn, VAPID_SETTING, &fresh)
                    .map_err(|e| format!("cannot read database: {e}"))?
            }
        };
        let secret = if text.starts_with("-----BEGIN") {
            use p256::pkcs8::DecodePrivateKey;
            SecretKey::from_pkcs8_pem(&text).ok()
        } else {
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .ok()
                .and_then(|bytes| SecretKey::from_slice(&bytes).ok())
        };
        let secret = secret.ok_or("webpush.vapid_private_key: not a P-256 private key (32 bytes base64url, or a PKCS#8 PEM)")?;
        Ok(Self::from_secret(&secret))
    }

    /// `Authorization: vapid t=<ES256 JWT>, k=<public key>` for a push service at
    /// `audience` (the endpoint's origin), valid for 12 hours.
    fn authorization(&self, audience: &str, subject: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "exp": crate::util::now_unix() + 12 * 3600,
            "sub": subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: Signature = self.key.sign(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        format!("vapid t={signed}.{signature}, k={}", self.public_key)
    }
}

/// Web Push as a running server has it: the key pair, which topics have
/// subscriptions, and the wake-up of the delivery task.
#[derive(Clone)]
pub struct Push(Arc<Inner>);

struct Inner {
    pub vapid: Vapid,
    /// Topics with at least one subscription: a publish to any other topic does no
    /// database work for Web Push.
    topics: RwLock<HashSet<String>>,
    /// Whether `topics` has any: without subscriptions a publish costs one load.
    any: AtomicBool,
    /// Attempts under way at once, at most.
    in_flight: Arc<Semaphore>,
    wake: Notify,
    pool: Pool,
    client: reqwest::Client,
    /// VAPID's `sub`: the server's `base_url` (a `mailto:` works too).
    subject: String,
    /// `webhooks.allow_private`: endpoints on private addresses, over `http` too.
    allow_private: bool,
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    /// The subscription no longer exists (404, 410), or can never work.
    Gone,
    /// This push can never be accepted (a 4xx other than 404, 410 and 429: too
    /// large, say); the subscription stays.
    Refused,
    /// Not now (429, 5xx, no answer, an endpoint not allowed now): why.
    Retry(String),
}

impl Push {
    pub fn new(
        vapid: Vapid,
        pool: Pool,
        subject: String,
        allow_private: bool,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tidings/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the Web Push client: {e}"))?;
        Ok(Self(Arc::new(Inner {
            vapid,
            topics: RwLock::default(),
            any: AtomicBool::new(false),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            wake: Notify::new(),
            pool,
            client,
            subject,
            allow_private,
        })))
    }

    pub fn public_key(&self) -> &str {
        &self.0.vapid.public_key
    }

    /// Whether `topic` has any push subscription.
    pub fn wants(&self, topic: &str) -> bool {
        self.0.any.load(Ordering::Relaxed)
            && (self.0.topics.read())
                .unwrap_or_else(PoisonError::into_inner)
                .contains(topic)
    }

    /// Changes the set of subscribed topics.
    fn change_topics(&self, change: impl FnOnce(&mut HashSet<String>)) {
        let mut set = self
            .0
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut set);
        self.0.any.store(!set.is_empty(), Ordering::Relaxed);
    }

    /// Adds topics that now have a subscription.
    pub fn watch(&self, topics: &[String]) {
        self.change_topics(|set| set.extend(topics.iter().cloned()));
    }

    /// Tells the delivery task that pushes are waiting.
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Starts the delivery task (and reads the subscribed topics first).
    pub fn spawn(&self) {
        let push = self.clone();
        actix_web::rt::spawn(async move {
            let mut refreshed = tokio::time::Instant::now() - TOPICS_REFRESH;
            loop {
                if refreshed.elapsed() >= TOPICS_REFRESH {
                    push.refresh_topics().await;
                    refreshed = tokio::time::Instant::now();
                }
                let sent = push.deliver_due().await;
                if sent < BATCH as usize {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), push.0.wake.notified()).await;
                }
            }
        });
    }

    async fn refresh_topics(&self) {
        let pool = self.0.pool.clone();
        let read = crate::cores::block(move || {
            let mut conn = pool.get().ok()?;
            db::webpush::subscribed_topics(&mut conn).ok()
        })
        .await;
        if let Ok(Some(topics)) = read {
            self.change_topics(|set| *set = topics.into_iter().collect());
        }
    }

    /// Runs blocking queue work; a database error is logged, and the work is tried
    /// again on a later round.
    async fn queue<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut db::Conn) -> diesel::QueryResult<T> + Send + 'static,
    ) -> Option<T> {
        let pool = self.0.pool.clone();
        let done = crate::cores::block(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            work(&mut conn).map_err(|e| e.to_string())
        })
        .await;
        match done {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Web Push queue");
                None
            }
            Err(_) => None,
        }
    }

    /// Starts an attempt at every push that is due (a batch at a time), each taken
    /// from the queue first so that no other node (and no later round) sends it
    /// meanwhile, and sent on a task of its own, so a slow push service holds up no
    /// other; returns how many were due.
    async fn deliver_due(&self) -> usize {
        let now = now_ms();
        let Some(due) = self.queue(move |c| db::webpush::due(c, now, BATCH)).await else {
            return 0;
        };
        let count = due.len();
        for (push, sub) in due {
            let Ok(permit) = self.0.in_flight.clone().acquire_owned().await else {
                break;
            };
            let taken = push.clone();
            let claimed = self
                .queue(move |c| db::webpush::claim(c, &taken, now_ms() + LEASE_MS))
                .await;
            if claimed == Some(true) {
                let this = self.clone();
                actix_web::rt::spawn(async move {
                    this.attempt(push, sub).await;
                    drop(permit);
                });
            }
        }
        count
    }

    /// One attempt at one push (already taken from the queue), and what follows it.
    async fn attempt(&self, push: PushRow, sub: SubscriptionRow) {
        let outcome = self.send(&push, &sub).await;
        let (id, sub_id) = (push.id.clone(), sub.id.clone());
        match outcome {
            Outcome::Delivered => self.queue(move |c| db::webpush::done(c, &id)).await,
            Outcome::Refused => {
                tracing::warn!(subscription = %sub_id, "Web Push: a push refused for good");
                self.queue(move |c| db::webpush::done(c, &id)).await
            }
            Outcome::Gone => {
                tracing::info!(subscription = %sub_id, "push subscription gone; deleted");
                self.queue(move |c| db::webpush::forget(c, &sub_id)).await
            }
            Outcome::Retry(why) => {
                let attempts = push.attempts + 1;
                let wait = (FIRST_RETRY_MS << (attempts - 1).min(20)).min(LAST_RETRY_MS);
                let at = now_ms() + wait;
                if at > push.give_up_at {
                    tracing::warn!(subscription = %sub_id, attempts, %why, "Web Push: push given up");
                    self.queue(move |c| db::webpush::done(c, &id)).await
                } else {
                    let done = self
                        .queue(move |c| db::webpush::retry_at(c, &id, attempts, at))
                        .await;
                    // Logged once the next attempt is stored.
                    tracing::warn!(subscription = %sub_id, attempts, retry_in_ms = wait, %why, "Web Push: push not accepted; will retry");
                    done
                }
            }
        };
    }

    async fn send(&self, push: &PushRow, sub: &SubscriptionRow) -> Outcome {
        // Checked again at each delivery: the name may resolve elsewhere by now.
        if check_endpoint(&sub.endpoint, self.0.allow_private)
            .await
            .is_err()
        {
            return Outcome::Retry("endpoint not allowed now".into());
        }
        let request = match self.request(push, sub) {
            Ok(request) => request,
            Err(outcome) => return outcome,
        };
        match request.send().await {
            Ok(answer) => match answer.status().as_u16() {
                200..=299 => Outcome::Delivered,
                404 | 410 => Outcome::Gone,
                status @ (400..=428 | 430..=499) => {
                    tracing::warn!(status, "Web Push: push service refused a push");
                    Outcome::Refused
                }
                status => Outcome::Retry(format!("status {status}")),
            },
            Err(e) => Outcome::Retry(format!("push service unreachable: {e}")),
        }
    }

    /// The encrypted push with its headers; `Gone` when the subscription's keys or
    /// endpoint can never work, `Refused` when this push cannot be encrypted.
    fn request(
        &self,
        push: &PushRow,
        sub: &SubscriptionRow,
    ) -> Result<reqwest::RequestBuilder, Outcome> {
        let decode = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok();
        let keys = decode(&sub.p256dh).zip(decode(&sub.auth));
        let endpoint = url::Url::parse(&sub.endpoint).ok();
        let ((public, auth), endpoint) = keys.zip(endpoint).ok_or(Outcome::Gone)?;
        let body = match ece::encrypt(&public, &auth, push.payload.as_bytes()) {
            Ok(body) => body,
            // A key that is no P-256 point is the subscription's fault.
            Err(
                ece::Error::InvalidKeyLength
                | ece::Error::InvalidAuthSecret
                | ece::Error::OpenSSLError(_),
            ) => return Err(Outcome::Gone),
            Err(_) => return Err(Outcome::Refused),
        };
        let audience = endpoint.origin().ascii_serialization();
        let priority = u8::try_from(push.priority).unwrap_or(3);
        // What is left of the TTL after the time already spent queued or retrying.
        let waited = expiry_ms(priority) - (push.give_up_at - now_ms());
        let ttl = (ttl_secs(priority) - waited.max(0) / 1000).max(0);
        Ok(self
            .0
            .client
            .post(endpoint)
            .header(
                "Authorization",
                self.0.vapid.authorization(&audience, &self.0.subject),
            )
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("TTL", ttl.to_string())
            .header("Urgency", urgency(priority))
            .body(body))
    }
}
