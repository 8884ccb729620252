//! Queries on stored messages.

use diesel::prelude::*;

use super::schema::{counters, messages, recent_messages, stored_messages};
use serde::{Deserialize, Serialize};

use super::Conn;
use crate::broker::message::{split_list, Message, MESSAGE_EVENT};
use crate::broker::since::Since;

/// A stored message; also what cluster nodes send each other.
#[derive(Debug, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = messages)]
// A missing title is bound as NULL: the insert is then one statement, prepared once.
#[diesel(treat_none_as_default_value = false)]
pub struct MessageRow {
    pub seq: i64,
    pub id: String,
    pub topic: String,
    pub time: i64,
    pub expires: i64,
    pub message: String,
    pub title: Option<String>,
    pub priority: i32,
    pub tags: String,
}

impl From<&Message> for MessageRow {
    fn from(m: &Message) -> Self {
        Self {
            seq: m.seq,
            id: m.id.clone(),
            topic: m.topic.clone(),
            time: m.time,
            expires: m.expires,
            message: m.message.clone(),
            title: m.title.clone(),
            priority: i32::from(m.priority),
            tags: m.tags.join(","),
        }
    }
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Self {
            id: r.id,
            time: r.time,
            event: MESSAGE_EVENT,
            topic: r.topic,
            message: r.message,
            title: r.title,
            priority: u8::try_from(r.priority).unwrap_or(3),
            tags: split_list(&r.tags),
            expires: r.expires,
            seq: r.seq,
        }
    }
}

pub fn insert_batch(conn: &mut Conn, rows: &[MessageRow]) -> QueryResult<usize> {
    match conn {
        // One round trip for the whole batch.
        Conn::Postgres(c) => diesel::insert_into(messages::table).values(rows).execute(c),
        // In-process: one prepared statement, cached, run per row, is cheaper than
        // parsing a multi-row statement of a new size for every batch.
        Conn::Sqlite(c) => rows
            .iter()
            .map(|row| diesel::insert_into(messages::table).values(row).execute(c))
            .sum(),
    }
}

/// Stores rows in `recent_messages`, which has no index: a commit writes the page they
/// go to, not a leaf of each index of `messages` and one per topic. Only a writer that
/// is the only one storing messages does this, and [`move_recent`] moves them on in bulk.
pub fn insert_recent(conn: &mut Conn, rows: &[MessageRow]) -> QueryResult<usize> {
    use recent_messages as r;
    rows.iter()
        .map(|row| {
            let insert = diesel::insert_into(r::table).values((
                r::seq.eq(row.seq),
                r::id.eq(&row.id),
                r::topic.eq(&row.topic),
                r::time.eq(row.time),
                r::expires.eq(row.expires),
                r::message.eq(&row.message),
                // Bound as NULL when missing: the insert stays one cached statement.
                r::title.eq(row.title.as_deref()),
                r::priority.eq(row.priority),
                r::tags.eq(&row.tags),
            ));
            // On the backend's own connection, whose statement cache keeps it prepared.
            super::on_backend!(&mut *conn, |c| insert.execute(c))
        })
        .sum()
}

/// Moves every row of `recent_messages` into `messages` in one transaction; returns
/// how many. A batch of many rows writes each touched index leaf once.
pub fn move_recent(conn: &mut Conn) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let moved = diesel::insert_into(messages::table)
            .values(recent_messages::table.select(recent_messages::all_columns))
            .into_columns(messages::all_columns)
            .execute(conn)?;
        diesel::delete(recent_messages::table).execute(conn)?;
        Ok(moved)
    })
}

/// Reserves `count` sequence numbers from the stored counter and returns the first.
/// Called inside the transaction that stores them: the counter's row stays locked
/// until it commits, so commits (of every node sharing the database) happen in
/// sequence order.
pub fn reserve_seqs(conn: &mut Conn, count: i64) -> QueryResult<i64> {
    let last: i64 = super::on_backend!(conn, |c| diesel::update(seq_counter())
        .set(counters::value.eq(counters::value + count))
        .returning(counters::value)
        .get_result(c))?;
    Ok(last - count + 1)
}

/// The last sequence number handed out: the stored counter, or a stored message's if
/// that is higher (numbers counted in memory are written back only before deletes).
pub fn last_seq(conn: &mut Conn) -> QueryResult<i64> {
    let counted: i64 = seq_counter().select(counters::value).first(conn)?;
    Ok(counted.max(newest_stored_seq(conn)?))
}

/// Raises the stored counter to the newest stored message's number. Called by anyone
/// but the writer before deleting messages (the admin CLI), so that a restart does not
/// hand those numbers out again.
pub fn record_stored_seq(conn: &mut Conn) -> QueryResult<()> {
    let newest = newest_stored_seq(conn)?;
    record_seq(conn, newest)
}

/// Raises the stored counter to `last`, so that numbers of deleted messages are not
/// handed out again after a restart.
pub fn record_seq(conn: &mut Conn, last: i64) -> QueryResult<()> {
    diesel::update(seq_counter().filter(counters::value.lt(last)))
        .set(counters::value.eq(last))
        .execute(conn)
        .map(drop)
}

/// The number of the newest stored message; 0 when none is stored.
fn newest_stored_seq(conn: &mut Conn) -> QueryResult<i64> {
    // Each table on its own: its key answers at once (the view would be scanned).
    let indexed: Option<i64> = messages::table
        .select(diesel::dsl::max(messages::seq))
        .first(conn)?;
    let recent: Option<i64> = recent_messages::table
        .select(diesel::dsl::max(recent_messages::seq))
        .first(conn)?;
    Ok(indexed.max(recent).unwrap_or(0))
}

/// The counter row of message sequence numbers. Its name is written into the
/// statement, not bound: SQLite re-plans a statement whenever a value compared with an
/// indexed column is bound again, and this one runs for every batch that reserves.
fn seq_counter(
) -> diesel::dsl::Filter<counters::table, diesel::expression::SqlLiteral<diesel::sql_types::Bool>> {
    counters::table.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "name = 'message_seq'",
    ))
}

/// Removes messages whose expiry is before `now`; returns how many.
pub fn prune(conn: &mut Conn, now: i64) -> QueryResult<usize> {
    Ok(
        diesel::delete(messages::table.filter(messages::expires.lt(now))).execute(conn)?
            + diesel::delete(recent_messages::table.filter(recent_messages::expires.lt(now)))
                .execute(conn)?,
    )
}

/// Removes every stored message of `topics`; returns how many.
pub fn delete_topics(conn: &mut Conn, topics: &[String]) -> QueryResult<usize> {
    Ok(
        diesel::delete(messages::table.filter(messages::topic.eq_any(topics))).execute(conn)?
            + diesel::delete(recent_messages::table.filter(recent_messages::topic.eq_any(topics)))
                .execute(conn)?,
    )
}

/// Stored messages of `topics` after `since`, oldest first, at most `limit`.
pub fn since(
    conn: &mut Conn,
    topics: &[String],
    since: &Since,
    limit: i64,
) -> QueryResult<Vec<Message>> {
    let mut query = stored_messages::table
        .filter(stored_messages::topic.eq_any(topics))
        .select(stored_messages::all_columns)
        .order(stored_messages::seq.asc())
        .limit(limit)
        .into_boxed();
    query = match since {
        Since::None => return Ok(Vec::new()),
        Since::All => query,
        Since::Time(t) => query.filter(stored_messages::time.ge(*t)),
        Since::Seq(seq) => query.filter(stored_messages::seq.gt(*seq)),
        Since::Id(id) => {
            // An id starts with its message's sequence number: the row is found by
            // the primary key of `messages` (or among the few recent ones), and the
            // id must match in full.
            let seq = crate::util::message_seq(id).unwrap_or(-1);
            let known: Option<i64> = stored_messages::table
                .filter(stored_messages::seq.eq(seq).and(stored_messages::id.eq(id)))
                .select(stored_messages::seq)
                .first(conn)
                .optional()?;
            // A pruned or unknown id: everything still stored is newer.
            query.filter(stored_messages::seq.gt(known.unwrap_or(0)))
        }
        Since::Latest => query.order(stored_messages::seq.desc()).limit(1),
    };
    Ok(query
        .load::<MessageRow>(conn)?
        .into_iter()
        .map(Message::from)
        .collect())
}
