//! Accounts: registering (also the admin CLI's `user add`), logging in, refresh
//! tokens (rotated in families), logging out, and the account's own view of itself.

use std::net::IpAddr;
use std::sync::Arc;

use super::keys::{create_api_key, NewApiKey};
use super::{mint, Domain};
use crate::auth::credential::{Credential, Login};
use crate::auth::secrets::{digest, hash_password, new_id, verify_password};
use crate::auth::{Principal, UserInfo};
use crate::config::Registration;
use crate::db::keys::{self, RefreshRow};
use crate::db::users::{self, UserRow};
use crate::db::Conn;
use crate::error::detail;
use crate::error::{ApiError, ApiResult};
use crate::limits::PerIp;
use crate::metrics::METRICS;
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
    /// `None`: an account that signs in only through an OpenID Connect provider.
    pub password: Option<&'a str>,
    pub tier: &'a str,
}

/// Checks the fields of a new account: 422 with a reason when one is unusable.
pub fn validate(new: &NewUser) -> ApiResult<()> {
    let email = new.email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return Err(ApiError::unprocessable(detail::INVALID_EMAIL));
    };
    if local.len() > MAX_EMAIL_LOCAL_BYTES || email.len() > MAX_EMAIL_BYTES {
        return Err(ApiError::email_too_long(
            MAX_EMAIL_LOCAL_BYTES,
            MAX_EMAIL_BYTES,
        ));
    }
    if local.is_empty() || !domain.contains('.') {
        return Err(ApiError::unprocessable(detail::INVALID_EMAIL));
    }
    let username_ok = (3..=64).contains(&new.username.len())
        && new
            .username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !username_ok {
        return Err(ApiError::unprocessable(detail::INVALID_USERNAME));
    }
    let Some(password) = new.password else {
        return Ok(());
    };
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::password_too_short(MIN_PASSWORD_LEN));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::password_too_long(MAX_PASSWORD_BYTES));
    }
    Ok(())
}

/// Creates an account with its first API key: what registering and the admin CLI's
/// `user add` both do.
pub fn create_account(conn: &mut Conn, new: &NewUser) -> ApiResult<(UserRow, NewApiKey)> {
    let user = create_user(conn, new)?;
    let key = create_api_key(conn, &user.id, "Default", None)?;
    Ok((user, key))
}

/// Creates an account (409 when the email or username is taken).
pub fn create_user(conn: &mut Conn, new: &NewUser) -> ApiResult<UserRow> {
    validate(new)?;
    let email = new.email.trim().to_lowercase();
    let row = UserRow {
        id: new_id(),
        email,
        username: new.username.to_string(),
        // No password: no hash, which no password matches (see `check_login`).
        password_hash: new.password.map(hash_password).unwrap_or_default(),
        tier: new.tier.to_string(),
        client_key: format!("{CLIENT_KEY_PREFIX}{}", random_id(32)),
        security_mode: true,
        created_at: now_unix(),
    };
    match users::insert_new(conn, &row)? {
        Some(users::Taken::Email) => Err(ApiError::conflict(detail::EMAIL_TAKEN)),
        Some(users::Taken::Username) => Err(ApiError::conflict(detail::USERNAME_TAKEN)),
        None => Ok(row),
    }
}

/// Starts a refresh-token family (`family: None`) or continues one; returns the secret.
pub(super) fn issue_refresh(
    conn: &mut Conn,
    user_id: &str,
    family: Option<&str>,
    ttl_secs: i64,
) -> ApiResult<String> {
    let minted = mint("");
    let now = now_unix();
    keys::insert_refresh(
        conn,
        &RefreshRow {
            id: new_id(),
            user_id: user_id.to_string(),
            family: family.map_or_else(new_id, String::from),
            token_hash: minted.hash,
            expires_at: now + ttl_secs,
            rotated: false,
            revoked: false,
            created_at: now,
        },
    )?;
    Ok(minted.secret)
}

/// Exchanges a refresh token for the next one of its family. Presenting one that was
/// already exchanged revokes the whole family: someone else has a copy.
fn rotate_refresh(conn: &mut Conn, secret: &str, ttl_secs: i64) -> ApiResult<(String, String)> {
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
fn revoke_refresh(conn: &mut Conn, secret: &str, user_id: &str) -> ApiResult<()> {
    let row = keys::refresh_by_hash(conn, &digest(secret))?
        .filter(|r| r.user_id == user_id)
        .ok_or(ApiError::InvalidCredentials)?;
    keys::revoke_family(conn, &row.family)?;
    Ok(())
}

/// Checks an email and password; unknown email, an account without a password (one
/// that signs in through a provider) and a wrong password look the same and take
/// about the same time.
/// A password longer than any that can be set is wrong without being hashed.
fn check_login(conn: &mut Conn, email: &str, password: &str) -> ApiResult<UserRow> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::IncorrectLogin);
    }
    let user = users::by_email(conn, email.trim())?;
    match user {
        Some(user) if !user.password_hash.is_empty() => {
            match verify_password(password, &user.password_hash) {
                true => Ok(user),
                false => Err(ApiError::IncorrectLogin),
            }
        }
        _ => {
            let dummy = DUMMY.get_or_init(|| hash_password("not a real password"));
            verify_password(password, dummy);
            Err(ApiError::IncorrectLogin)
        }
    }
}

/// What a login may name its account by: `POST /auth/login` takes an email,
/// `Authorization: Basic` an email or a username.
#[derive(Clone, Copy)]
enum Names {
    Emails,
    Usernames,
}

/// A fresh access token and the refresh token that renews it.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// A new account, its first API key and its first tokens.
pub struct Registered {
    pub user: UserRow,
    pub key: NewApiKey,
    pub tokens: Tokens,
}

/// The account that logged in and its tokens.
pub struct LoggedIn {
    pub user: UserRow,
    pub tokens: Tokens,
}

/// An account as it sees itself.
pub struct Me {
    pub user: Arc<UserInfo>,
    /// Publishes per minute its tier allows (`None`: unlimited).
    pub publish_limit: Option<u32>,
    /// What is left of that this minute (`None`: unlimited).
    pub publish_remaining: Option<u32>,
}

impl Domain {
    pub(super) fn new_tokens(&self, user_id: &str, refresh_token: String) -> Tokens {
        let ttl = self.config.auth.access_token_ttl.as_secs() as i64;
        Tokens {
            access_token: self.auth.jwt().issue(user_id, now_unix(), ttl),
            refresh_token,
        }
    }

    pub fn refresh_ttl(&self) -> i64 {
        self.config.auth.refresh_token_ttl.as_secs() as i64
    }

    /// Opens an account on the default tier (unless registration is closed), limited
    /// per IP.
    pub async fn register(
        &self,
        ip: Option<IpAddr>,
        email: String,
        username: String,
        password: String,
    ) -> ApiResult<Registered> {
        if self.config.registration == Registration::Closed {
            return Err(ApiError::forbidden_because(detail::REGISTRATION_CLOSED));
        }
        self.charge_ip(PerIp::Register, ip)?;
        let tier = self.config.limits.default_tier.clone();
        let refresh_ttl = self.refresh_ttl();
        let (user, key, refresh) = self
            .db(move |conn| {
                let new = NewUser {
                    email: &email,
                    username: &username,
                    password: Some(&password),
                    tier: &tier,
                };
                let (user, key) = create_account(conn, &new)?;
                let refresh = issue_refresh(conn, &user.id, None, refresh_ttl)?;
                Ok((user, key, refresh))
            })
            .await?;
        let tokens = self.new_tokens(&user.id, refresh);
        Ok(Registered { user, key, tokens })
    }

    /// A login attempt, limited per IP (every attempt) and per account (failed
    /// attempts, counted by email: while an email is over its quota even the right
    /// password is refused, until the quota refills). `name` is an email or, where
    /// `Names::Usernames` allows it, a username. The password is checked on the
    /// blocking pool, where `then` runs with the account.
    async fn attempt_login<T: Send + 'static>(
        &self,
        ip: Option<IpAddr>,
        name: (String, Names),
        password: String,
        then: impl FnOnce(&mut Conn, UserRow) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        self.charge_ip(PerIp::Login, ip)?;
        let email = match name {
            (username, Names::Usernames) if !username.contains('@') => {
                self.email_of(username).await?
            }
            (email, _) => email,
        };
        let attempt = self.limits.login_attempt(&email)?;
        let result = self
            .db(move |conn| {
                let user = check_login(conn, &email, &password)?;
                then(conn, user)
            })
            .await;
        let failed = matches!(result, Err(ApiError::IncorrectLogin));
        self.limits.login_done(attempt, failed);
        result
    }

    /// The email of `username`'s account, so that failed logins count per account
    /// whichever name they give; a name no account has stays as it is (and fails).
    async fn email_of(&self, username: String) -> ApiResult<String> {
        self.db(move |conn| {
            let account = users::by_username(conn, username.trim())?;
            Ok(account.map_or(username, |user| user.email))
        })
        .await
    }

    /// `POST /auth/login`: an email and password for fresh tokens.
    pub async fn login(
        &self,
        ip: Option<IpAddr>,
        email: String,
        password: String,
    ) -> ApiResult<LoggedIn> {
        let refresh_ttl = self.refresh_ttl();
        let issue = move |conn: &mut Conn, user: UserRow| {
            let refresh = issue_refresh(conn, &user.id, None, refresh_ttl)?;
            Ok((user, refresh))
        };
        let (user, refresh) = self
            .attempt_login(ip, (email, Names::Emails), password, issue)
            .await
            .inspect_err(|e| METRICS.auth_failed(e))?;
        let tokens = self.new_tokens(&user.id, refresh);
        Ok(LoggedIn { user, tokens })
    }

    /// Who a request's credentials say it is (see [`crate::auth::Auth::resolve_all`]).
    /// An email or username with a password (`Authorization: Basic`, as ntfy's clients
    /// send it) is a login attempt from `ip`, limited as one; a wrong one is an invalid
    /// credential, as on any other request.
    pub async fn identify(
        &self,
        credentials: Vec<Credential>,
        origin: Option<&str>,
        ip: Option<IpAddr>,
    ) -> ApiResult<Principal> {
        let check_login = async |login: Login| {
            let name = (login.name, Names::Usernames);
            let user_id = |_: &mut Conn, user: UserRow| Ok(user.id);
            match self.attempt_login(ip, name, login.password, user_id).await {
                Err(ApiError::IncorrectLogin) => Err(ApiError::InvalidCredentials),
                other => other,
            }
        };
        self.auth
            .resolve_all(credentials, origin, check_login)
            .await
    }

    /// Exchanges a refresh token for a new pair, limited per IP; the account must
    /// still exist.
    pub async fn refresh(&self, ip: Option<IpAddr>, refresh_token: String) -> ApiResult<Tokens> {
        self.charge_ip(PerIp::Refresh, ip)?;
        let refresh_ttl = self.refresh_ttl();
        let (user_id, next) = self
            .db(move |conn| rotate_refresh(conn, &refresh_token, refresh_ttl))
            .await?;
        self.auth
            .user(&user_id)
            .await?
            .ok_or(ApiError::InvalidCredentials)?;
        Ok(self.new_tokens(&user_id, next))
    }

    /// Ends the session of one of the account's refresh tokens.
    pub async fn logout(&self, principal: &Principal, refresh_token: String) -> ApiResult<()> {
        let user_id = principal.account()?.id.clone();
        self.db(move |conn| revoke_refresh(conn, &refresh_token, &user_id))
            .await
    }

    pub async fn me(&self, principal: &Principal) -> ApiResult<Me> {
        let user = principal.account()?.clone();
        let publish_limit = self.config.tier_limit(&user.tier);
        let publish_remaining = self.limits.publish_left(&user.id, &user.tier).await;
        Ok(Me {
            user,
            publish_limit,
            publish_remaining,
        })
    }
}
