//! Queries for Web Push: subscriptions with their topics, and the queue of pushes
//! not yet accepted by their push service.

use diesel::prelude::*;

use super::schema::{webpush_queue, webpush_subscriptions, webpush_topics};
use super::Conn;

/// A browser's push subscription (its topics are in `webpush_topics`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webpush_subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub user_id: String,
    pub endpoint: String,
    /// The browser's P-256 public key, base64url (RFC 8291's `ua_public`).
    pub p256dh: String,
    /// The browser's authentication secret, base64url.
    pub auth: String,
    pub created_at: i64,
}

/// A push waiting for its push service.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webpush_queue)]
pub struct PushRow {
    pub id: String,
    pub subscription_id: String,
    /// The message object's JSON, the plaintext that is encrypted.
    pub payload: String,
    pub priority: i32,
    pub attempts: i32,
    /// Unix milliseconds.
    pub next_attempt_at: i64,
    /// Unix milliseconds: after this the push is dropped.
    pub give_up_at: i64,
}

/// Stores a subscription and its topics in one transaction; it replaces the
/// account's earlier subscription of the same endpoint (a browser subscribing again).
pub fn insert_subscription(
    conn: &mut Conn,
    row: &SubscriptionRow,
    topics: &[String],
) -> QueryResult<()> {
    super::transaction(conn, |conn| {
        let earlier: Vec<String> = webpush_subscriptions::table
            .filter(webpush_subscriptions::user_id.eq(&row.user_id))
            .filter(webpush_subscriptions::endpoint.eq(&row.endpoint))
            .select(webpush_subscriptions::id)
            .load(conn)?;
        for id in &earlier {
            forget(conn, id)?;
        }
        diesel::insert_into(webpush_subscriptions::table)
            .values(row)
            .execute(conn)?;
        for topic in topics {
            diesel::insert_into(webpush_topics::table)
                .values((
                    webpush_topics::subscription_id.eq(&row.id),
                    webpush_topics::topic.eq(topic),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The account's subscriptions, oldest first, each with its topics.
pub fn subscriptions_of(
    conn: &mut Conn,
    user_id: &str,
) -> QueryResult<Vec<(SubscriptionRow, Vec<String>)>> {
    let rows: Vec<SubscriptionRow> = webpush_subscriptions::table
        .filter(webpush_subscriptions::user_id.eq(user_id))
        .order((webpush_subscriptions::created_at, webpush_subscriptions::id))
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|row| {
            let topics = topics_of(conn, &row.id)?;
            Ok((row, topics))
        })
        .collect()
}

fn topics_of(conn: &mut Conn, subscription_id: &str) -> QueryResult<Vec<String>> {
    webpush_topics::table
        .filter(webpush_topics::subscription_id.eq(subscription_id))
        .order(webpush_topics::topic)
        .select(webpush_topics::topic)
        .load(conn)
}

/// Deletes one of the account's subscriptions (its topics and queued pushes with
/// it); false when it has none by that id.
pub fn delete_subscription(conn: &mut Conn, user_id: &str, id: &str) -> QueryResult<bool> {
    super::transaction(conn, |conn| {
        let owned = webpush_subscriptions::table
            .filter(webpush_subscriptions::user_id.eq(user_id))
            .filter(webpush_subscriptions::id.eq(id));
        if owned.count().get_result::<i64>(conn)? == 0 {
            return Ok(false);
        }
        forget(conn, id)?;
        Ok(true)
    })
}

/// Deletes a subscription that its push service says is gone.
pub fn forget(conn: &mut Conn, id: &str) -> QueryResult<()> {
    // Children first: SQLite enforces the keys, and not every connection cascades.
    diesel::delete(webpush_queue::table.filter(webpush_queue::subscription_id.eq(id)))
        .execute(conn)?;
    diesel::delete(webpush_topics::table.filter(webpush_topics::subscription_id.eq(id)))
        .execute(conn)?;
    diesel::delete(webpush_subscriptions::table.find(id)).execute(conn)?;
    Ok(())
}

/// Every topic some subscription receives.
pub fn subscribed_topics(conn: &mut Conn) -> QueryResult<Vec<String>> {
    webpush_topics::table
        .select(webpush_topics::topic)
        .distinct()
        .load(conn)
}

/// What one message gives every subscription of its topic.
pub struct Queued<'a> {
    pub topic: &'a str,
    /// Only this account's subscriptions (a private topic's owner); `None`: all.
    pub only_user: Option<&'a str>,
    pub payload: &'a str,
    pub priority: i32,
    pub now_ms: i64,
    pub give_up_at: i64,
}

/// Queues a message for the subscriptions of its topic; returns how many.
pub fn enqueue(conn: &mut Conn, queued: &Queued) -> QueryResult<usize> {
    let Queued {
        topic,
        only_user,
        payload,
        priority,
        now_ms,
        give_up_at,
    } = *queued;
    super::transaction(conn, |conn| {
        let mut query = webpush_topics::table
            .inner_join(webpush_subscriptions::table)
            .filter(webpush_topics::topic.eq(topic))
            .select(webpush_topics::subscription_id)
            .into_boxed();
        if let Some(user) = only_user {
            query = query.filter(webpush_subscriptions::user_id.eq(user));
        }
        let subscribers: Vec<String> = query.load(conn)?;
        for subscription_id in &subscribers {
            diesel::insert_into(webpush_queue::table)
                .values(PushRow {
                    id: crate::util::random_id(24),
                    subscription_id: subscription_id.clone(),
                    payload: payload.to_string(),
                    priority,
                    attempts: 0,
                    next_attempt_at: now_ms,
                    give_up_at,
                })
                .execute(conn)?;
        }
        Ok(subscribers.len())
    })
}

/// Up to `limit` pushes due by `now_ms`, each with its subscription, soonest first.
pub fn due(
    conn: &mut Conn,
    now_ms: i64,
    limit: i64,
) -> QueryResult<Vec<(PushRow, SubscriptionRow)>> {
    webpush_queue::table
        .inner_join(webpush_subscriptions::table)
        .filter(webpush_queue::next_attempt_at.le(now_ms))
        .order((webpush_queue::next_attempt_at, webpush_queue::id))
        .limit(limit)
        .select((PushRow::as_select(), SubscriptionRow::as_select()))
        .load(conn)
}

/// Takes a due push for one attempt: moves its next attempt to `until`, unless
/// another node took it first (then false).
pub fn claim(conn: &mut Conn, push: &PushRow, until: i64) -> QueryResult<bool> {
    let taken = diesel::update(
        webpush_queue::table
            .find(&push.id)
            .filter(webpush_queue::next_attempt_at.eq(push.next_attempt_at)),
    )
    .set(webpush_queue::next_attempt_at.eq(until))
    .execute(conn)?;
    Ok(taken == 1)
}

/// A push delivered, or given up.
pub fn done(conn: &mut Conn, id: &str) -> QueryResult<()> {
    diesel::delete(webpush_queue::table.find(id)).execute(conn)?;
    Ok(())
}

/// A push to try again at `at` (unix milliseconds).
pub fn retry_at(conn: &mut Conn, id: &str, attempts: i32, at: i64) -> QueryResult<()> {
    diesel::update(webpush_queue::table.find(id))
        .set((
            webpush_queue::attempts.eq(attempts),
            webpush_queue::next_attempt_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}
