//! Web Push subscriptions (API.md §11): who may subscribe which topics, which push
//! endpoints are allowed, and the hand-off of each stored message of a subscribed
//! topic to the durable push queue that `push` drains.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::push::{expiry_ms, now_ms};
use super::Domain;
use crate::auth::permissions::{Action, Visibility};
use crate::auth::secrets::new_id;
use crate::auth::Principal;
use crate::cluster::Change;
use crate::db::webpush::{Queued, SubscriptionRow};
use crate::error::{detail, ApiError, ApiResult, Missing};
use crate::model::message::{Envelope, Message};
use crate::util::now_unix;

/// What a browser's `PushSubscription` gives, and the topics it wants.
pub struct NewSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub topics: Vec<String>,
}

/// A stored subscription with its topics.
pub struct Subscription {
    pub row: SubscriptionRow,
    pub topics: Vec<String>,
}

impl Domain {
    /// Stores a push subscription for the account, once it may read every topic and
    /// the endpoint is allowed.
    pub async fn subscribe_push(
        &self,
        principal: &Principal,
        new: NewSubscription,
    ) -> ApiResult<Subscription> {
        let user = principal.account()?.clone();
        check_keys(&new.p256dh, &new.auth)?;
        let mut topics = new.topics;
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            return Err(ApiError::unprocessable(detail::NO_PUSH_TOPICS));
        }
        for topic in &topics {
            crate::model::check_topic_name(topic)?;
            self.authorize_topic(principal, topic, Action::Subscribe)
                .await?;
        }
        check_endpoint(&new.endpoint, self.config.webhooks.allow_private).await?;
        let row = SubscriptionRow {
            id: new_id(),
            user_id: user.id.clone(),
            endpoint: new.endpoint,
            p256dh: new.p256dh,
            auth: new.auth,
            created_at: now_unix(),
        };
        let (stored, names) = (row.clone(), topics.clone());
        self.db(move |conn| {
            Ok(crate::db::webpush::insert_subscription(
                conn, &stored, &names,
            )?)
        })
        .await?;
        self.push.watch(&topics);
        let change = Change::PushSubscribed {
            topics: topics.clone(),
        };
        self.changed(change).await?;
        Ok(Subscription { row, topics })
    }

    /// The account's push subscriptions, oldest first.
    pub async fn push_subscriptions(&self, principal: &Principal) -> ApiResult<Vec<Subscription>> {
        let user_id = principal.account()?.id.clone();
        let rows = self
            .db(move |conn| Ok(crate::db::webpush::subscriptions_of(conn, &user_id)?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(row, topics)| Subscription { row, topics })
            .collect())
    }

    /// Deletes one of the account's push subscriptions.
    pub async fn unsubscribe_push(&self, principal: &Principal, id: String) -> ApiResult<()> {
        let user_id = principal.account()?.id.clone();
        let deleted = self
            .db(move |conn| {
                Ok(crate::db::webpush::delete_subscription(
                    conn, &user_id, &id,
                )?)
            })
            .await?;
        if !deleted {
            return Err(ApiError::not_found(Missing::PushSubscription));
        }
        Ok(())
    }

    /// Queues a stored message for every push subscription of its topic, before the
    /// publisher is answered (so a restart loses no push). Without any subscription
    /// for the topic this is one look-up in memory.
    pub(super) async fn queue_pushes(&self, envelope: &Envelope) -> ApiResult<()> {
        let message = &envelope.message;
        if !self.push.wants(&message.topic) {
            return Ok(());
        }
        // Who may read it now: a private topic's owner alone, or anyone.
        let info = self.auth.topic(&message.topic).await?;
        let only_user = info
            .filter(|t| t.visibility != Visibility::Public)
            .map(|t| t.owner_id.clone());
        let topic = message.topic.clone();
        let payload = push_payload(envelope);
        let priority = i32::from(message.priority);
        let now = now_ms();
        let give_up_at = now + expiry_ms(message.priority);
        let queued = self
            .db(move |conn| {
                let queued = Queued {
                    topic: &topic,
                    only_user: only_user.as_deref(),
                    payload: &payload,
                    priority,
                    now_ms: now,
                    give_up_at,
                };
                Ok(crate::db::webpush::enqueue(conn, &queued)?)
            })
            .await?;
        if queued > 0 {
            self.push.wake();
        }
        Ok(())
    }
}

/// The most plaintext a push carries: push services take 4096 bytes, which is 3993 of
/// plaintext in `aes128gcm`'s single record (RFC 8291 §4), less `ece`'s padding.
const PUSH_PLAINTEXT_LIMIT: usize = 3800;

/// The message object as pushed: its JSON, with the text cut short (ending in `…`)
/// when the whole would not fit in one push.
fn push_payload(envelope: &Envelope) -> String {
    let json = envelope.json.to_string();
    if json.len() <= PUSH_PLAINTEXT_LIMIT {
        return json;
    }
    let mut message = envelope.message.clone();
    let text = std::mem::take(&mut message.message);
    let with = |message: &mut Message, keep: usize| {
        message.message = format!("{}…", &text[..keep]);
        serde_json::to_string(message).unwrap_or_default()
    };
    // The longest start of the text (at a character boundary) that fits: escapes
    // make the JSON longer than the text by a varying amount, so search for it.
    let (mut fits, mut too_long) = (0, text.len());
    while too_long - fits > 1 {
        let mut mid = (fits + too_long) / 2;
        while !text.is_char_boundary(mid) {
            mid -= 1;
        }
        if mid == fits {
            break;
        }
        if with(&mut message, mid).len() <= PUSH_PLAINTEXT_LIMIT {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    with(&mut message, fits)
}

/// The browser's key (an uncompressed P-256 point) and its 16-byte auth secret, both
/// base64url.
fn check_keys(p256dh: &str, auth: &str) -> ApiResult<()> {
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('='));
    match (decode(p256dh), decode(auth)) {
        (Ok(key), Ok(secret)) if key.len() == 65 && key[0] == 4 && secret.len() == 16 => Ok(()),
        _ => Err(ApiError::unprocessable(detail::INVALID_PUSH_KEYS)),
    }
}

/// How long a push endpoint's name may take to resolve.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A push endpoint must be an `https` URL whose host resolves only to public
/// addresses; `allow_private` also allows `http` and any address (tests, LANs).
pub async fn check_endpoint(endpoint: &str, allow_private: bool) -> ApiResult<url::Url> {
    let refused = || ApiError::bad_request(detail::PUSH_ENDPOINT_NOT_ALLOWED);
    let url = url::Url::parse(endpoint).map_err(|_| refused())?;
    let scheme_ok = url.scheme() == "https" || (allow_private && url.scheme() == "http");
    if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
        return Err(refused());
    }
    let port = url.port_or_known_default().ok_or_else(refused)?;
    let addresses: Vec<IpAddr> = match url.host().ok_or_else(refused)? {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(_) if allow_private => return Ok(url),
        url::Host::Domain(name) => {
            // A resolver that does not answer is a refusal, not a hang.
            let lookup = tokio::net::lookup_host((name, port));
            tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
                .await
                .map_err(|_| refused())?
                .map_err(|_| refused())?
                .map(|a| a.ip())
                .collect()
        }
    };
    if addresses.is_empty() || !(allow_private || addresses.iter().all(is_public)) {
        return Err(refused());
    }
    Ok(url)
}

/// Not loopback, private, link-local, shared, multicast, documentation or unspecified.
pub fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(&IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(text: &str) -> Envelope {
        Envelope::new(Message {
            id: "0000000001ab".into(),
            time: 1,
            event: "message",
            topic: "t".into(),
            message: text.into(),
            title: None,
            priority: 3,
            tags: Vec::new(),
            expires: 2,
            seq: 1,
        })
    }

    #[test]
    fn a_message_too_long_for_one_push_is_cut_short() {
        assert_eq!(push_payload(&envelope("short")), *envelope("short").json);
        for text in ["a".repeat(5000), "é\"".repeat(2000), "\u{1}".repeat(4000)] {
            let payload = push_payload(&envelope(&text));
            assert!(payload.len() <= PUSH_PLAINTEXT_LIMIT, "{}", payload.len());
            let cut: serde_json::Value = serde_json::from_str(&payload).unwrap();
            let cut = cut["message"].as_str().unwrap();
            assert!(cut.ends_with('…') && text.starts_with(cut.trim_end_matches('…')));
            assert!(cut.len() > 500, "as much kept as fits");
        }
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(&ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(&ip.parse().unwrap()), "{ip}");
        }
    }
}
