//! Queries for sign-in with OpenID Connect: sign-ins in progress (each used once) and
//! the provider identities linked to accounts.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::{oidc_identities, oidc_logins};
use super::Conn;

/// A sign-in sent to its provider and not yet back.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_logins)]
pub struct LoginRow {
    /// The digest of the `state` sent to the provider.
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The redirect URI the authorization request named; the token request repeats it.
    pub redirect_uri: String,
    pub redirect_to: Option<String>,
    pub expires_at: i64,
}

/// Stores a sign-in in progress, and drops those that expired before `now`.
pub fn insert_login(conn: &mut Conn, login: &LoginRow, now: i64) -> QueryResult<()> {
    diesel::delete(oidc_logins::table.filter(oidc_logins::expires_at.lt(now))).execute(conn)?;
    diesel::insert_into(oidc_logins::table)
        .values(login)
        .execute(conn)?;
    Ok(())
}

/// Takes the sign-in of `state_hash` out of the table: of two callbacks with the same
/// `state`, only the one whose delete removed the row gets it.
pub fn take_login(conn: &mut Conn, state_hash: &str) -> QueryResult<Option<LoginRow>> {
    let row: Option<LoginRow> = oidc_logins::table
        .find(state_hash)
        .select(LoginRow::as_select())
        .first(conn)
        .optional()?;
    let deleted = diesel::delete(oidc_logins::table.find(state_hash)).execute(conn)?;
    Ok(row.filter(|_| deleted == 1))
}

/// The account linked to `subject` at `issuer`.
pub fn linked_user(conn: &mut Conn, issuer: &str, subject: &str) -> QueryResult<Option<String>> {
    oidc_identities::table
        .find((issuer, subject))
        .select(oidc_identities::user_id)
        .first(conn)
        .optional()
}

/// Links `subject` at `issuer` to an account; a link made meanwhile by another
/// sign-in of the same identity stands, and its account is returned.
pub fn link(
    conn: &mut Conn,
    issuer: &str,
    subject: &str,
    user_id: &str,
    now: i64,
) -> QueryResult<String> {
    let inserted = diesel::insert_into(oidc_identities::table)
        .values((
            oidc_identities::issuer.eq(issuer),
            oidc_identities::subject.eq(subject),
            oidc_identities::user_id.eq(user_id),
            oidc_identities::created_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(user_id.to_string()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            linked_user(conn, issuer, subject)?.ok_or(DieselError::NotFound)
        }
        Err(e) => Err(e),
    }
}
