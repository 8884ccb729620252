//! Server-wide values kept in the database.

use diesel::prelude::*;

use super::schema::settings;
use super::Conn;

/// Bumped by every out-of-process change to accounts or credentials (the admin
/// CLI); a running server that sees it change drops its credential caches.
pub const AUTH_EPOCH: &str = "auth_epoch";
pub const JWT_SECRET: &str = "jwt_secret";

pub fn get(conn: &mut Conn, name: &str) -> QueryResult<Option<String>> {
    settings::table
        .find(name)
        .select(settings::value)
        .first(conn)
        .optional()
}

/// Stores `value` unless `name` is already set; returns the value in force.
pub fn get_or_init(conn: &mut Conn, name: &str, value: &str) -> QueryResult<String> {
    // Read first: a start on a full disk writes nothing when the setting exists.
    if let Some(stored) = get(conn, name)? {
        return Ok(stored);
    }
    super::ignore_duplicate(
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(value)))
            .execute(conn),
    )?;
    settings::table
        .find(name)
        .select(settings::value)
        .first(conn)
}

pub fn bump_auth_epoch(conn: &mut Conn) -> QueryResult<()> {
    let next = crate::util::random_id(16);
    let updated = diesel::update(settings::table.find(AUTH_EPOCH))
        .set(settings::value.eq(&next))
        .execute(conn)?;
    if updated == 0 {
        super::ignore_duplicate(
            diesel::insert_into(settings::table)
                .values((settings::name.eq(AUTH_EPOCH), settings::value.eq(&next)))
                .execute(conn),
        )?;
    }
    Ok(())
}
