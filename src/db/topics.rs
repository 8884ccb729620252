//! Queries on topics and their access tokens.

use diesel::prelude::*;

use super::schema::{topic_tokens, topics, users};
use super::{page, Conn, Page};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = topics)]
pub struct TopicRow {
    pub name: String,
    pub owner_id: String,
    pub visibility: String,
    pub description: Option<String>,
    pub created_at: i64,
}

/// A topic with its owner's username, as the API shows it.
pub type TopicWithOwner = (TopicRow, String);

pub fn insert(conn: &mut Conn, topic: &TopicRow) -> QueryResult<usize> {
    diesel::insert_into(topics::table)
        .values(topic)
        .execute(conn)
}

/// Inserts unless the name is taken; true when this call created it. Safe inside a
/// transaction: a taken name is no error, which on PostgreSQL would abort it.
pub fn insert_if_absent(conn: &mut Conn, topic: &TopicRow) -> QueryResult<bool> {
    let n = super::on_backend!(conn, |c| diesel::insert_into(topics::table)
        .values(topic)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

pub fn exists(conn: &mut Conn, name: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(topics::table.find(name))).get_result(conn)
}

pub fn get(conn: &mut Conn, name: &str) -> QueryResult<Option<TopicRow>> {
    topics::table.find(name).first(conn).optional()
}

pub fn get_with_owner(conn: &mut Conn, name: &str) -> QueryResult<Option<TopicWithOwner>> {
    topics::table
        .inner_join(users::table)
        .filter(topics::name.eq(name))
        .select((TopicRow::as_select(), users::username))
        .first(conn)
        .optional()
}

/// One page of an account's topics, oldest first.
pub fn owned_by(conn: &mut Conn, owner_id: &str, page: &Page) -> QueryResult<Vec<TopicWithOwner>> {
    let owned = topics::table
        .inner_join(users::table)
        .filter(topics::owner_id.eq(owner_id));
    page!(owned, topics::created_at, topics::name, page)
        .select((TopicRow::as_select(), users::username))
        .load(conn)
}

pub fn update(
    conn: &mut Conn,
    name: &str,
    visibility: &str,
    description: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(topics::table.find(name))
        .set((
            topics::visibility.eq(visibility),
            topics::description.eq(description),
        ))
        .execute(conn)
}

/// Deletes a topic and its tokens (messages go through the writer).
pub fn delete(conn: &mut Conn, name: &str) -> QueryResult<usize> {
    super::transaction(conn, |conn| {
        diesel::delete(topic_tokens::table.filter(topic_tokens::topic.eq(name))).execute(conn)?;
        diesel::delete(topics::table.find(name)).execute(conn)
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = topic_tokens)]
pub struct TokenRow {
    pub id: String,
    pub topic: String,
    pub name: String,
    pub token_hash: String,
    pub can_read: bool,
    pub can_write: bool,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub total_requests: i64,
}

pub fn insert_token(conn: &mut Conn, token: &TokenRow) -> QueryResult<usize> {
    diesel::insert_into(topic_tokens::table)
        .values(token)
        .execute(conn)
}

pub fn token_by_hash(conn: &mut Conn, hash: &str) -> QueryResult<Option<TokenRow>> {
    topic_tokens::table
        .filter(topic_tokens::token_hash.eq(hash))
        .first(conn)
        .optional()
}

/// One page of a topic's tokens, oldest first.
pub fn tokens_of(conn: &mut Conn, topic: &str, page: &Page) -> QueryResult<Vec<TokenRow>> {
    let of_topic = topic_tokens::table.filter(topic_tokens::topic.eq(topic));
    page!(of_topic, topic_tokens::created_at, topic_tokens::id, page).load(conn)
}

pub fn delete_token(conn: &mut Conn, topic: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
        topic_tokens::table
            .filter(topic_tokens::topic.eq(topic))
            .filter(topic_tokens::id.eq(id)),
    )
    .execute(conn)
}

/// Records `uses` requests, the last at `at`.
pub fn touch_token(conn: &mut Conn, id: &str, at: i64, uses: i64) -> QueryResult<usize> {
    diesel::update(topic_tokens::table.find(id))
        .set((
            topic_tokens::last_used_at.eq(at),
            topic_tokens::total_requests.eq(topic_tokens::total_requests + uses),
        ))
        .execute(conn)
}
