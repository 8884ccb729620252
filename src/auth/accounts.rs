//! Account operations shared by the HTTP API and the admin CLI: creating users and
//! their credentials, logging in, rotating refresh tokens. All blocking; the HTTP
//! handlers run them off the workers.

use super::secrets::{
    digest, hash_password, new_id, random_secret, verify_password, API_KEY_PREFIX, SHOWN_PREFIX_LEN,
};
use crate::db::keys::{self, ApiKeyRow, RefreshRow};
use crate::db::users::{self, UserRow};
use crate::db::Conn;
use crate::error::{ApiError, ApiResult};
use crate::util::{now_unix, random_id};

pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted, in bytes: argon2 is never asked to hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// RFC 5321 §4.5.3.1: a local part of at most 64 octets, and (with the path's angle
/// brackets, 256 in all) an address of at most 254.
const MAX_EMAIL_LOCAL_BYTES: usize = 64;
const MAX_EMAIL_BYTES: usize = 254;
const CLIENT_KEY_PREFIX: &str = "pk_";

/// A new account as asked for.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub tier: &'a str,
}

/// Checks the fields of a new account: 422 with a reason when one is unusable.
pub fn validate(new: &NewUser) -> ApiResult<()> {
    let email = new.email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return Err(ApiError::Unprocessable("Invalid email address".into()));
    };
    if local.len() > MAX_EMAIL_LOCAL_BYTES || email.len() > MAX_EMAIL_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "Email address is too long (at most {MAX_EMAIL_LOCAL_BYTES} characters before the @ and {MAX_EMAIL_BYTES} in all)"
        )));
    }
    if local.is_empty() || !domain.contains('.') {
        return Err(ApiError::Unprocessable("Invalid email address".into()));
    }
    let username_ok = (3..=64).contains(&new.username.len())
        && new
            .username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !username_ok {
        return Err(ApiError::Unprocessable(
            "Invalid username (3-64 letters, digits, '_', '.' or '-')".into(),
        ));
    }
    if new.password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::Unprocessable(format!(
            "Password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if new.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "Password is too long (at most {MAX_PASSWORD_BYTES} bytes)"
        )));
    }
    Ok(())
}

/// Creates an account (409 when the email or username is taken).
pub fn create_user(conn: &mut Conn, new: &NewUser) -> ApiResult<UserRow> {
    validate(new)?;
    let email = new.email.trim().to_lowercase();
    let row = UserRow {
        id: new_id(),
        email,
        username: new.username.to_string(),
        password_hash: hash_password(new.password),
        tier: new.tier.to_string(),
        client_key: format!("{CLIENT_KEY_PREFIX}{}", random_id(32)),
        security_mode: true,
        created_at: now_unix(),
    };
    match users::insert_new(conn, &row)? {
        Some(reason) => Err(ApiError::Conflict(reason.into())),
        None => Ok(row),
    }
}

/// A freshly made API key with its secret (shown once).
pub struct NewApiKey {
    pub row: ApiKeyRow,
    pub secret: String,
}

fn key_parts() -> (String, String, String) {
    let secret = random_secret(API_KEY_PREFIX);
    let prefix = secret[API_KEY_PREFIX.len()..API_KEY_PREFIX.len() + SHOWN_PREFIX_LEN].to_string();
    let hash = digest(&secret);
    (secret, prefix, hash)
}

pub fn create_api_key(
    conn: &mut Conn,
    user_id: &str,
    name: &str,
    expires_at: Option<i64>,
) -> ApiResult<NewApiKey> {
    let (secret, prefix, key_hash) = key_parts();
    let row = ApiKeyRow {
        id: new_id(),
        user_id: user_id.to_string(),
        name: name.to_string(),
        prefix,
        key_hash,
        created_at: now_unix(),
        expires_at,
        last_used_at: None,
    };
    keys::insert_key(conn, &row)?;
    Ok(NewApiKey { row, secret })
}

/// Gives a key a new secret; the old one stops working. Also returns the old digest.
pub fn regenerate_api_key(conn: &mut Conn, user_id: &str, id: &str) -> ApiResult<NewApiKey> {
    keys::key_of(conn, user_id, id)?.ok_or_else(|| ApiError::not_found("API key"))?;
    let (secret, prefix, hash) = key_parts();
    let row = keys::replace_key_secret(conn, id, &prefix, &hash)?;
    Ok(NewApiKey { row, secret })
}

/// Starts a refresh-token family (`family: None`) or continues one; returns the secret.
pub fn issue_refresh(
    conn: &mut Conn,
    user_id: &str,
    family: Option<&str>,
    ttl_secs: i64,
) -> ApiResult<String> {
    let secret = random_secret("");
    let now = now_unix();
    keys::insert_refresh(
        conn,
        &RefreshRow {
            id: new_id(),
            user_id: user_id.to_string(),
            family: family.map_or_else(new_id, String::from),
            token_hash: digest(&secret),
            expires_at: now + ttl_secs,
            rotated: false,
            revoked: false,
            created_at: now,
        },
    )?;
    Ok(secret)
}

/// Exchanges a refresh token for the next one of its family. Presenting one that was
/// already exchanged revokes the whole family: someone else has a copy.
pub fn rotate_refresh(conn: &mut Conn, secret: &str, ttl_secs: i64) -> ApiResult<(String, String)> {
    let row = keys::refresh_by_hash(conn, &digest(secret))?.ok_or(ApiError::InvalidCredentials)?;
    if row.revoked {
        return Err(ApiError::InvalidCredentials);
    }
    if row.rotated || !keys::mark_rotated(conn, &row.id)? {
        keys::revoke_family(conn, &row.family)?;
        tracing::warn!(user = %row.user_id, "refresh token reused; token family revoked");
        return Err(ApiError::InvalidCredentials);
    }
    if row.expires_at <= now_unix() {
        return Err(ApiError::TokenExpired);
    }
    let next = issue_refresh(conn, &row.user_id, Some(&row.family), ttl_secs)?;
    Ok((row.user_id, next))
}

/// Ends the session a refresh token belongs to (its whole family).
pub fn revoke_refresh(conn: &mut Conn, secret: &str, user_id: &str) -> ApiResult<()> {
    let row = keys::refresh_by_hash(conn, &digest(secret))?
        .filter(|r| r.user_id == user_id)
        .ok_or(ApiError::InvalidCredentials)?;
    keys::revoke_family(conn, &row.family)?;
    Ok(())
}

/// Checks an email and password; unknown email and wrong password look the same and
/// take about the same time.
/// A password longer than any that can be set is wrong without being hashed.
pub fn login(conn: &mut Conn, email: &str, password: &str) -> ApiResult<UserRow> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::IncorrectLogin);
    }
    let user = users::by_email(conn, email.trim())?;
    match user {
        Some(user) if verify_password(password, &user.password_hash) => Ok(user),
        Some(_) => Err(ApiError::IncorrectLogin),
        None => {
            let dummy = DUMMY.get_or_init(|| hash_password("not a real password"));
            verify_password(password, dummy);
            Err(ApiError::IncorrectLogin)
        }
    }
}
