//! Queries on API keys and refresh tokens (both stored as SHA-256 hashes only).

use diesel::prelude::*;

use super::schema::{api_keys, refresh_tokens};
use super::{page, Conn, Page};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

pub fn insert_key(conn: &mut Conn, key: &ApiKeyRow) -> QueryResult<usize> {
    diesel::insert_into(api_keys::table)
        .values(key)
        .execute(conn)
}

pub fn key_by_hash(conn: &mut Conn, hash: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::key_hash.eq(hash))
        .first(conn)
        .optional()
}

/// One page of an account's keys, oldest first.
pub fn keys_of(conn: &mut Conn, user_id: &str, page: &Page) -> QueryResult<Vec<ApiKeyRow>> {
    let of_user = api_keys::table.filter(api_keys::user_id.eq(user_id));
    page!(of_user, api_keys::created_at, api_keys::id, page).load(conn)
}

pub fn key_of(conn: &mut Conn, user_id: &str, id: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::user_id.eq(user_id))
        .filter(api_keys::id.eq(id))
        .first(conn)
        .optional()
}

/// Replaces a key's secret; returns the updated row.
pub fn replace_key_secret(
    conn: &mut Conn,
    id: &str,
    prefix: &str,
    hash: &str,
) -> QueryResult<ApiKeyRow> {
    diesel::update(api_keys::table.find(id))
        .set((api_keys::prefix.eq(prefix), api_keys::key_hash.eq(hash)))
        .execute(conn)?;
    api_keys::table.find(id).first(conn)
}

pub fn delete_key(conn: &mut Conn, user_id: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
        api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .filter(api_keys::id.eq(id)),
    )
    .execute(conn)
}

pub fn touch_key(conn: &mut Conn, id: &str, at: i64) -> QueryResult<usize> {
    diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(at))
        .execute(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub id: String,
    pub user_id: String,
    pub family: String,
    pub token_hash: String,
    pub expires_at: i64,
    pub rotated: bool,
    pub revoked: bool,
    pub created_at: i64,
}

pub fn insert_refresh(conn: &mut Conn, row: &RefreshRow) -> QueryResult<usize> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)
}

pub fn refresh_by_hash(conn: &mut Conn, hash: &str) -> QueryResult<Option<RefreshRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .first(conn)
        .optional()
}

/// Marks a token as used, only if nobody did before; true when this call did.
pub fn mark_rotated(conn: &mut Conn, id: &str) -> QueryResult<bool> {
    let changed = diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::rotated.eq(false)),
    )
    .set(refresh_tokens::rotated.eq(true))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn revoke_family(conn: &mut Conn, family: &str) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table.filter(refresh_tokens::family.eq(family)))
        .set(refresh_tokens::revoked.eq(true))
        .execute(conn)
}
