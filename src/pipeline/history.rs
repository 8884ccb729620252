//! Reading stored messages: the journal's messages not yet moved into the database
//! first, then the table, merged by sequence number. The one way history is read, by
//! the history endpoint and by a session's replay (through [`Replay`]).

use diesel::QueryResult;

use super::journal::Recent;
use crate::broker::session::Replay;
use crate::db::{messages, Conn, Pool};
use crate::error::ApiResult;
use crate::model::message::Message;
use crate::model::since::Since;

/// Where stored messages are read from: the database, and the journal's messages
/// not yet moved into it.
#[derive(Clone)]
pub struct History {
    pool: Pool,
    recent: Recent,
}

impl History {
    pub fn new(pool: Pool, recent: Recent) -> Self {
        Self { pool, recent }
    }

    /// Stored messages of `topics` after `since`, oldest first, at most `limit`, on a
    /// pooled connection (blocking).
    pub fn since(&self, topics: &[String], after: &Since, limit: i64) -> ApiResult<Vec<Message>> {
        let mut conn = self.pool.get()?;
        Ok(since(&mut conn, &self.recent, topics, after, limit)?)
    }
}

impl Replay for History {
    fn since(&self, topics: &[String], after: &Since, limit: i64) -> Result<Vec<Message>, String> {
        History::since(self, topics, after, limit).map_err(|e| e.to_string())
    }
}

/// Stored messages of `topics` after `since`, oldest first, at most `limit`: those in
/// `messages`, then those still in the journal (`recent`).
fn since(
    conn: &mut Conn,
    recent: &Recent,
    topics: &[String],
    since: &Since,
    limit: i64,
) -> QueryResult<Vec<Message>> {
    let known = match since {
        Since::None => return Ok(Vec::new()),
        Since::Id(id) => Some(match recent.find(id) {
            Some(seq) => seq,
            None => messages::stored_seq_of(conn, id)?,
        }),
        _ => None,
    };
    // Read before the table: a move in between shows its rows in both, never in neither.
    let waiting = recent.of(topics, since, known);
    let mut found = messages::stored_since(conn, topics, since, known, limit)?;
    let newest = found.last().map_or(i64::MIN, |m| m.seq);
    found.extend(waiting.into_iter().filter(|m| m.seq > newest));
    if *since == Since::Latest {
        return Ok(found.pop().into_iter().collect());
    }
    found.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(found)
}
