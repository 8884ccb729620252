//! Creating within a quota: counting what an account owns and adding one more happen
//! in one transaction that holds the account, so concurrent creations by one account
//! take turns and two of them cannot both take its last free slot.

use diesel::prelude::*;

use super::schema::{api_keys, topic_tokens, topics, users};
use super::Conn;
use crate::config::Quota;
use crate::error::{ApiError, ApiResult};

/// Leave to create one more of `quota` for the account `owner_id`, if it owns fewer
/// than `limit` (`None`: no limit).
#[derive(Debug, Clone)]
pub struct Within {
    pub owner_id: String,
    pub quota: Quota,
    pub limit: Option<u32>,
}

impl Within {
    /// Runs `create` when the account has room, else answers 403 `Limit reached: …`.
    /// On SQLite the transaction holds the write lock from its start; on PostgreSQL it
    /// locks the account's row before counting.
    pub fn create<T>(
        &self,
        conn: &mut Conn,
        create: impl FnOnce(&mut Conn) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let Some(limit) = self.limit else {
            return create(conn);
        };
        super::transaction(conn, |conn| {
            lock_account(conn, &self.owner_id)?;
            if count(conn, &self.owner_id, self.quota)? >= i64::from(limit) {
                return Err(ApiError::LimitReached(self.quota));
            }
            create(conn)
        })
    }
}

/// Holds the account's row until the transaction ends (PostgreSQL; SQLite's
/// transaction already excludes every other writer).
fn lock_account(conn: &mut Conn, owner_id: &str) -> QueryResult<()> {
    if let Conn::Postgres(pg) = conn {
        users::table
            .find(owner_id)
            .select(users::id)
            .for_update()
            .first::<String>(pg)
            .optional()?;
    }
    Ok(())
}

/// How many of `quota` the account owns now.
fn count(conn: &mut Conn, owner_id: &str, quota: Quota) -> QueryResult<i64> {
    match quota {
        Quota::Topics => topics::table
            .filter(topics::owner_id.eq(owner_id))
            .count()
            .get_result(conn),
        Quota::ApiKeys => api_keys::table
            .filter(api_keys::user_id.eq(owner_id))
            .count()
            .get_result(conn),
        Quota::TopicTokens => topic_tokens::table
            .inner_join(topics::table)
            .filter(topics::owner_id.eq(owner_id))
            .count()
            .get_result(conn),
    }
}
