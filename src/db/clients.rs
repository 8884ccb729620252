//! Queries for browser access: client keys, signing keys, allowed origins.

use diesel::prelude::*;

use super::schema::{allowed_origins, signing_keys, users};
use super::users::UserRow;
use super::Conn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub id: String,
    pub user_id: String,
    pub public_key_pem: String,
    pub created_at: i64,
}

/// An account's browser-access settings.
pub struct ClientSettings {
    pub user: UserRow,
    pub signing_key: Option<SigningKeyRow>,
    pub origins: Vec<String>,
}

pub fn settings_of(conn: &mut Conn, user: UserRow) -> QueryResult<ClientSettings> {
    let signing_key = signing_keys::table
        .filter(signing_keys::user_id.eq(&user.id))
        .first(conn)
        .optional()?;
    let origins = allowed_origins::table
        .filter(allowed_origins::user_id.eq(&user.id))
        .order(allowed_origins::origin.asc())
        .select(allowed_origins::origin)
        .load(conn)?;
    Ok(ClientSettings {
        user,
        signing_key,
        origins,
    })
}

pub fn by_client_key(conn: &mut Conn, client_key: &str) -> QueryResult<Option<ClientSettings>> {
    let user = users::table
        .filter(users::client_key.eq(client_key))
        .first::<UserRow>(conn)
        .optional()?;
    user.map(|u| settings_of(conn, u)).transpose()
}

/// Replaces the account's signing key (the old one stops working).
pub fn replace_signing_key(conn: &mut Conn, key: &SigningKeyRow) -> QueryResult<()> {
    super::transaction(conn, |conn| {
        diesel::delete(signing_keys::table.filter(signing_keys::user_id.eq(&key.user_id)))
            .execute(conn)?;
        diesel::insert_into(signing_keys::table)
            .values(key)
            .execute(conn)
            .map(drop)
    })
}

pub fn set_security_mode(conn: &mut Conn, user_id: &str, on: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set(users::security_mode.eq(on))
        .execute(conn)
}

pub fn set_origins(conn: &mut Conn, user_id: &str, origins: &[String]) -> QueryResult<()> {
    super::transaction(conn, |conn| {
        diesel::delete(allowed_origins::table.filter(allowed_origins::user_id.eq(user_id)))
            .execute(conn)?;
        let rows: Vec<_> = origins
            .iter()
            .map(|o| {
                (
                    allowed_origins::user_id.eq(user_id),
                    allowed_origins::origin.eq(o),
                )
            })
            .collect();
        super::on_backend!(conn, |c| diesel::insert_into(allowed_origins::table)
            .values(&rows)
            .execute(c))
        .map(drop)
    })
}

/// Usernames of accounts in development mode (warned about at start-up).
pub fn in_development_mode(conn: &mut Conn) -> QueryResult<Vec<String>> {
    users::table
        .filter(users::security_mode.eq(false))
        .select(users::username)
        .load(conn)
}
