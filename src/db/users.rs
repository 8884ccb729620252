//! Queries on accounts.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Text;
use std::collections::HashSet;

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

diesel::define_sql_function!(fn lower(x: Text) -> Text);

/// What of a new account another one already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Email,
    Username,
}

/// Inserts a new account unless its email or username is taken (without regard to
/// case); then says which one is.
pub fn insert_new(conn: &mut Conn, user: &UserRow) -> QueryResult<Option<Taken>> {
    let inserted = super::transaction(conn, |conn| {
        if let Some(reason) = taken(conn, &user.email, &user.username)? {
            return Ok(Some(reason));
        }
        diesel::insert_into(users::table)
            .values(user)
            .execute(conn)
            .map(|_| None)
    });
    match inserted {
        // Another connection took one of them between the check and the insert: the
        // unique indexes on `lower(email)` and `lower(username)` refused it.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(Some(
            taken(conn, &user.email, &user.username)?.unwrap_or(Taken::Username),
        )),
        other => other,
    }
}

pub fn by_id(conn: &mut Conn, id: &str) -> QueryResult<Option<UserRow>> {
    users::table.find(id).first(conn).optional()
}

/// The account of `email`, compared without regard to case.
pub fn by_email(conn: &mut Conn, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(lower(users::email).eq(email.to_lowercase()))
        .first(conn)
        .optional()
}

/// The account of `username`, compared without regard to case.
pub fn by_username(conn: &mut Conn, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(lower(users::username).eq(username.to_lowercase()))
        .first(conn)
        .optional()
}

/// Which of `email` / `username` is already taken (without regard to case), if any.
fn taken(conn: &mut Conn, email: &str, username: &str) -> QueryResult<Option<Taken>> {
    if by_email(conn, email)?.is_some() {
        return Ok(Some(Taken::Email));
    }
    Ok(by_username(conn, username)?.map(|_| Taken::Username))
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

/// The ids that exist right now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Existing {
    pub users: HashSet<String>,
    pub api_keys: HashSet<String>,
    pub tokens: HashSet<String>,
}

/// The ids of every account, API key and topic token that exists now.
pub fn existing_ids(conn: &mut Conn) -> QueryResult<Existing> {
    use super::schema::{api_keys, topic_tokens};
    Ok(Existing {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, email: &str, username: &str) -> UserRow {
        UserRow {
            id: id.into(),
            email: email.into(),
            username: username.into(),
            password_hash: String::new(),
            tier: "free".into(),
            client_key: format!("pk_{id}"),
            security_mode: true,
            created_at: 0,
        }
    }

    #[test]
    fn the_database_refuses_an_email_or_username_taken_in_another_case() {
        let dir = tempfile::tempdir().unwrap();
        let pool = super::super::open(&dir.path().join("t.db").display().to_string()).unwrap();
        let mut conn = pool.get().unwrap();
        let insert = |conn: &mut Conn, user: &UserRow| {
            diesel::insert_into(users::table).values(user).execute(conn)
        };
        insert(&mut conn, &row("1", "ann@example.com", "ann")).unwrap();
        for user in [
            row("2", "ANN@example.com", "ann2"),
            row("3", "ann2@example.com", "Ann"),
        ] {
            assert!(matches!(
                insert(&mut conn, &user),
                Err(DieselError::DatabaseError(
                    DatabaseErrorKind::UniqueViolation,
                    _
                ))
            ));
        }
        assert_eq!(
            insert_new(&mut conn, &row("4", "bob@example.com", "ANN")).unwrap(),
            Some(Taken::Username)
        );
        assert_eq!(
            by_email(&mut conn, "Ann@Example.COM").unwrap().unwrap().id,
            "1"
        );
    }
}
