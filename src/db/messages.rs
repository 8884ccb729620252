//! Queries on stored messages.

use std::borrow::Borrow;
use std::collections::HashSet;

use diesel::prelude::*;

use super::schema::{counters, messages, topics};
use serde::{Deserialize, Serialize};

use super::Conn;
use crate::model::message::{split_list, Message, MESSAGE_EVENT};
use crate::model::since::Since;

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

pub fn insert_batch<R: Borrow<MessageRow>>(conn: &mut Conn, rows: &[R]) -> QueryResult<usize> {
    match conn {
        // One round trip for the whole batch.
        Conn::Postgres(c) => diesel::insert_into(messages::table)
            .values(
                rows.iter()
                    .map(Borrow::borrow)
                    .collect::<Vec<&MessageRow>>(),
            )
            .execute(c),
        // In-process: one prepared statement, cached, run per row, is cheaper than
        // parsing a multi-row statement of a new size for every batch.
        Conn::Sqlite(c) => rows
            .iter()
            .map(|row| {
                diesel::insert_into(messages::table)
                    .values(row.borrow())
                    .execute(c)
            })
            .sum(),
    }
}

/// Moves messages from the journal into `messages` in one transaction; returns how
/// many. Rows already stored (a journal not emptied after its move) and rows of
/// topics deleted meanwhile (by the command line, while they waited) are left out;
/// the stored counter still passes their numbers, so none is handed out again.
pub fn move_in(conn: &mut Conn, rows: &[MessageRow]) -> QueryResult<usize> {
    let Some(last) = rows.iter().map(|r| r.seq).max() else {
        return Ok(0);
    };
    super::transaction(conn, |conn| {
        record_seq(conn, last)?;
        let newest = newest_stored_seq(conn)?;
        let mut names: Vec<&str> = rows.iter().map(|r| r.topic.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let existing: HashSet<String> = topics::table
            .filter(topics::name.eq_any(&names))
            .select(topics::name)
            .load(conn)?
            .into_iter()
            .collect();
        let keep: Vec<&MessageRow> = rows
            .iter()
            .filter(|r| r.seq > newest && existing.contains(&r.topic))
            .collect();
        insert_batch(conn, &keep)
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

/// The number of the newest message in `messages`; 0 when none is there.
fn newest_stored_seq(conn: &mut Conn) -> QueryResult<i64> {
    let newest: Option<i64> = messages::table
        .select(diesel::dsl::max(messages::seq))
        .first(conn)?;
    Ok(newest.unwrap_or(0))
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
    diesel::delete(messages::table.filter(messages::expires.lt(now))).execute(conn)
}

/// Removes every stored message of `topics`; returns how many.
pub fn delete_topics(conn: &mut Conn, topics: &[String]) -> QueryResult<usize> {
    diesel::delete(messages::table.filter(messages::topic.eq_any(topics))).execute(conn)
}

/// Stored messages of `topics` after `since`, oldest first, at most `limit` (`Latest`:
/// the newest). `known` is the sequence number `Since::Id` stands for (0 when neither
/// stored nor waiting in the journal).
pub fn stored_since(
    conn: &mut Conn,
    topics: &[String],
    since: &Since,
    known: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Message>> {
    let mut query = messages::table
        .filter(messages::topic.eq_any(topics))
        .select(MessageRow::as_select())
        .order(messages::seq.asc())
        .limit(limit)
        .into_boxed();
    query = match since {
        Since::Time(t) => query.filter(messages::time.ge(*t)),
        Since::Seq(seq) => query.filter(messages::seq.gt(*seq)),
        // A pruned or unknown id: everything still stored is newer.
        Since::Id(_) => query.filter(messages::seq.gt(known.unwrap_or(0))),
        Since::Latest => query.order(messages::seq.desc()).limit(1),
        Since::All | Since::None => query,
    };
    Ok(query
        .load::<MessageRow>(conn)?
        .into_iter()
        .map(Message::from)
        .collect())
}

/// The sequence number of a message in `messages` by its id; 0 when it is not there.
/// An id starts with its message's sequence number: the row is found by the primary
/// key, and the id must match in full.
pub fn stored_seq_of(conn: &mut Conn, id: &str) -> QueryResult<i64> {
    let seq = crate::util::message_seq(id).unwrap_or(-1);
    let found: Option<i64> = messages::table
        .filter(messages::seq.eq(seq).and(messages::id.eq(id)))
        .select(messages::seq)
        .first(conn)
        .optional()?;
    Ok(found.unwrap_or(0))
}
