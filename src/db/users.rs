//! Queries on accounts.

use diesel::prelude::*;

use super::schema::users;
use super::Conn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub tier: String,
    pub client_key: String,
    pub security_mode: bool,
    pub created_at: i64,
}

pub fn insert(conn: &mut Conn, user: &UserRow) -> QueryResult<usize> {
    diesel::insert_into(users::table).values(user).execute(conn)
}

pub fn by_id(conn: &mut Conn, id: &str) -> QueryResult<Option<UserRow>> {
    users::table.find(id).first(conn).optional()
}

pub fn by_email(conn: &mut Conn, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .first(conn)
        .optional()
}

/// Which of `email` / `username` is already taken, if any.
pub fn taken(conn: &mut Conn, email: &str, username: &str) -> QueryResult<Option<&'static str>> {
    if by_email(conn, email)?.is_some() {
        return Ok(Some("Email already registered"));
    }
    let name_taken = users::table
        .filter(users::username.eq(username))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    Ok(name_taken.then_some("Username already taken"))
}

pub fn all(conn: &mut Conn) -> QueryResult<Vec<UserRow>> {
    users::table.order(users::created_at.asc()).load(conn)
}

pub fn set_tier(conn: &mut Conn, email: &str, tier: &str) -> QueryResult<usize> {
    diesel::update(users::table.filter(users::email.eq(email)))
        .set(users::tier.eq(tier))
        .execute(conn)
}

/// Deletes an account; its topics, keys and tokens go with it, and so do the
/// messages of its topics.
pub fn delete(conn: &mut Conn, email: &str) -> QueryResult<usize> {
    use super::schema::topics;
    super::transaction(conn, |conn| {
        let Some(user) = by_email(conn, email)? else {
            return Ok(0);
        };
        let owned: Vec<String> = topics::table
            .filter(topics::owner_id.eq(&user.id))
            .select(topics::name)
            .load(conn)?;
        super::messages::record_stored_seq(conn)?;
        super::messages::delete_topics(conn, &owned)?;
        diesel::delete(users::table.find(&user.id)).execute(conn)
    })
}

/// The ids of every account, API key and topic token that exists now.
pub fn existing_ids(conn: &mut Conn) -> QueryResult<crate::auth::permissions::Existing> {
    use super::schema::{api_keys, topic_tokens};
    Ok(crate::auth::permissions::Existing {
        users: users::table
            .select(users::id)
            .load::<String>(conn)?
            .into_iter()
            .collect(),
        api_keys: api_keys::table
            .select(api_keys::id)
            .load::<String>(conn)?
            .into_iter()
            .collect(),
        tokens: topic_tokens::table
            .select(topic_tokens::id)
            .load::<String>(conn)?
            .into_iter()
            .collect(),
    })
}
