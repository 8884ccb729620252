//! API keys: create (within the tier's quota), list, regenerate, revoke; and the name
//! and expiry rules that topic access tokens share.

use super::{mint, Domain, Listing};
use crate::auth::secrets::{new_id, API_KEY_PREFIX, SHOWN_PREFIX_LEN};
use crate::auth::Principal;
use crate::cluster::Change;
use crate::config::Quota;
use crate::db;
use crate::db::keys::ApiKeyRow;
use crate::db::{Conn, Page};
use crate::error::detail;
use crate::error::Missing;
use crate::error::{ApiError, ApiResult};
use crate::util::{now_unix, parse_rfc3339};

/// A freshly made API key with its secret (shown once).
pub struct NewApiKey {
    pub row: ApiKeyRow,
    pub secret: String,
}

/// A new key secret, the part of it that is shown in lists, and its digest.
fn key_parts() -> (String, String, String) {
    let minted = mint(API_KEY_PREFIX);
    let prefix =
        minted.secret[API_KEY_PREFIX.len()..API_KEY_PREFIX.len() + SHOWN_PREFIX_LEN].to_string();
    (minted.secret, prefix, minted.hash)
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
    db::keys::insert_key(conn, &row)?;
    Ok(NewApiKey { row, secret })
}

/// Gives a key a new secret; the old one stops working.
fn regenerate_api_key(conn: &mut Conn, user_id: &str, id: &str) -> ApiResult<NewApiKey> {
    db::keys::key_of(conn, user_id, id)?.ok_or_else(|| ApiError::not_found(Missing::ApiKey))?;
    let (secret, prefix, hash) = key_parts();
    let row = db::keys::replace_key_secret(conn, id, &prefix, &hash)?;
    Ok(NewApiKey { row, secret })
}

/// An optional RFC 3339 expiry that must lie in the future.
pub fn parse_expiry(text: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(text) = text else { return Ok(None) };
    let at =
        parse_rfc3339(text).ok_or_else(|| ApiError::unprocessable(detail::EXPIRY_NOT_RFC3339))?;
    if at <= now_unix() {
        return Err(ApiError::unprocessable(detail::EXPIRY_IN_PAST));
    }
    Ok(Some(at))
}

/// A name for a key or token: 1-128 characters.
pub fn check_name(name: Option<String>, default: &str) -> ApiResult<String> {
    let name = name
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| default.into());
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::unprocessable(detail::INVALID_NAME));
    }
    Ok(name)
}

impl Domain {
    /// A new key of the account (`name` defaults to "API key"; `expires_at` is
    /// RFC 3339), within its tier's quota and creation rate.
    pub async fn create_key(
        &self,
        principal: &Principal,
        name: Option<String>,
        expires_at: Option<&str>,
    ) -> ApiResult<NewApiKey> {
        let user = principal.account()?;
        let expires_at = parse_expiry(expires_at)?;
        let name = check_name(name, "API key")?;
        let within = self.creation(user, Quota::ApiKeys)?;
        self.db(move |conn| {
            within.create(conn, |conn| {
                create_api_key(conn, &within.owner_id, &name, expires_at)
            })
        })
        .await
    }

    /// One page of the account's keys, with their last use up to date.
    pub async fn keys(
        &self,
        principal: &Principal,
        page: ApiResult<Page>,
    ) -> ApiResult<Listing<ApiKeyRow>> {
        let user_id = principal.account()?.id.clone();
        let auth = self.auth.clone();
        self.list(page?, move |conn, page| {
            auth.usage().flush(conn);
            Ok(db::keys::keys_of(conn, &user_id, page)?)
        })
        .await
    }

    /// A new secret for key `id`; the old one stops working at once, also for live
    /// subscriptions.
    pub async fn regenerate_key(&self, principal: &Principal, id: String) -> ApiResult<NewApiKey> {
        let user_id = principal.account()?.id.clone();
        // A new secret is no new key (the quota is unchanged), but it is a creation.
        self.limits.check_creation(&user_id)?;
        let key_id = id.clone();
        let key = self
            .db(move |conn| regenerate_api_key(conn, &user_id, &key_id))
            .await?;
        self.changed(Change::ApiKeyRevoked { id }).await?;
        Ok(key)
    }

    /// Deletes key `id`; it stops working at once, also for live subscriptions.
    pub async fn revoke_key(&self, principal: &Principal, id: String) -> ApiResult<()> {
        let user_id = principal.account()?.id.clone();
        let key_id = id.clone();
        let deleted = self
            .db(move |conn| Ok(db::keys::delete_key(conn, &user_id, &key_id)?))
            .await?;
        if deleted == 0 {
            return Err(ApiError::not_found(Missing::ApiKey));
        }
        self.changed(Change::ApiKeyRevoked { id }).await
    }
}
