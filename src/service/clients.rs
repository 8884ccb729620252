//! Browser access settings of an account: its client key, security mode, RS256
//! signing key and allowed origins. Every change ends the account's live browser
//! subscriptions, which reconnect under the new rules.

use super::Domain;
use crate::auth::client::{check_origin_syntax, generate_signing_key};
use crate::auth::secrets::new_id;
use crate::auth::Principal;
use crate::cluster::Change;
use crate::db;
use crate::db::clients::{ClientSettings, SigningKeyRow};
use crate::error::{ApiError, ApiResult};
use crate::util::now_unix;

/// At most this many allowed origins per account.
const MAX_ORIGINS: usize = 100;

/// A new signing key: the public half as stored, and the private half (shown once,
/// never stored).
pub struct NewSigningKey {
    pub row: SigningKeyRow,
    pub private_pem: String,
}

/// Origins as given: trimmed, without a trailing `/`, sorted, without repeats.
fn normalize_origins(origins: Vec<String>) -> Vec<String> {
    let mut origins: Vec<String> = origins
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .collect();
    origins.sort();
    origins.dedup();
    origins
}

impl Domain {
    /// The browser access settings of the account.
    pub async fn client_settings(&self, principal: &Principal) -> ApiResult<ClientSettings> {
        let user_id = principal.account()?.id.clone();
        self.client_settings_of(user_id).await
    }

    async fn client_settings_of(&self, user_id: String) -> ApiResult<ClientSettings> {
        self.db(move |conn| {
            let user = db::users::by_id(conn, &user_id)?.ok_or(ApiError::InvalidCredentials)?;
            Ok(db::clients::settings_of(conn, user)?)
        })
        .await
    }

    /// Browser access of `user_id` changed: caches forget it and live browser
    /// subscriptions of that account end (they reconnect under the new rules).
    async fn client_access_changed(&self, user_id: &str) -> ApiResult<()> {
        self.changed(Change::ClientAccess {
            user_id: user_id.to_string(),
        })
        .await
    }

    /// Turns the security mode on (browser users need a key signed by the account)
    /// or off (development: any user id may subscribe); `None` changes nothing.
    pub async fn set_security_mode(
        &self,
        principal: &Principal,
        on: Option<bool>,
    ) -> ApiResult<ClientSettings> {
        let user_id = principal.account()?.id.clone();
        if let Some(on) = on {
            let id = user_id.clone();
            self.db(move |conn| Ok(db::clients::set_security_mode(conn, &id, on)?))
                .await?;
            if !on {
                tracing::warn!(account = %user_id, "client authentication switched to development mode");
            }
            self.client_access_changed(&user_id).await?;
        }
        self.client_settings_of(user_id).await
    }

    /// A new RS256 key pair for signing browser users' keys; it replaces the old one.
    pub async fn new_signing_key(&self, principal: &Principal) -> ApiResult<NewSigningKey> {
        let user_id = principal.account()?.id.clone();
        let (private_pem, public_pem) =
            crate::cores::block(generate_signing_key)
                .await?
                .map_err(|e| {
                    tracing::error!(error = %e, "RSA key generation failed");
                    ApiError::Internal
                })?;
        let row = SigningKeyRow {
            id: new_id(),
            user_id: user_id.clone(),
            public_key_pem: public_pem,
            created_at: now_unix(),
        };
        let stored = row.clone();
        self.db(move |conn| Ok(db::clients::replace_signing_key(conn, &stored)?))
            .await?;
        self.client_access_changed(&user_id).await?;
        Ok(NewSigningKey { row, private_pem })
    }

    /// Replaces the origins browsers may subscribe from.
    pub async fn set_origins(
        &self,
        principal: &Principal,
        origins: Vec<String>,
    ) -> ApiResult<ClientSettings> {
        let user_id = principal.account()?.id.clone();
        let origins = normalize_origins(origins);
        if origins.len() > MAX_ORIGINS {
            return Err(ApiError::too_many_origins(MAX_ORIGINS));
        }
        origins.iter().try_for_each(|o| check_origin_syntax(o))?;
        let id = user_id.clone();
        self.db(move |conn| Ok(db::clients::set_origins(conn, &id, &origins)?))
            .await?;
        self.client_access_changed(&user_id).await?;
        self.client_settings_of(user_id).await
    }

    /// Whether a browser at `origin` may reach `topics`, by their owners' allowed
    /// origins (§7): `None` when no owner of an existing topic has a list, so the
    /// server's own CORS settings decide. Every look-up is cached.
    pub async fn owners_allow(&self, topics: &[String], origin: &str) -> ApiResult<Option<bool>> {
        let mut decided = None;
        for name in topics {
            let Some(topic) = self.auth.topic(name).await? else {
                continue;
            };
            let Some(owner) = self.auth.user(&topic.owner_id).await? else {
                continue;
            };
            let Some(client) = self.auth.client(&owner.client_key).await? else {
                continue;
            };
            if !client.origins.is_empty() {
                let allowed = client.check_origin(Some(origin)).is_ok();
                decided = Some(decided.unwrap_or(true) && allowed);
            }
        }
        Ok(decided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_trimmed_sorted_and_kept_once() {
        let given = [
            "https://b.example/ ",
            " https://a.example",
            "https://b.example",
        ];
        let origins = normalize_origins(given.iter().map(|o| o.to_string()).collect());
        assert_eq!(origins, ["https://a.example", "https://b.example"]);
    }
}
