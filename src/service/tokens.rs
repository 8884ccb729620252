//! Topic access tokens (`tk_…`): minted by a private topic's owner for reading,
//! writing or both; listed and revoked by the owner.

use serde::Deserialize;

use super::keys::{check_name, parse_expiry};
use super::{mint, Domain, Listing};
use crate::auth::permissions::Visibility;
use crate::auth::secrets::{new_id, TOPIC_TOKEN_PREFIX};
use crate::auth::Principal;
use crate::cluster::Change;
use crate::config::Quota;
use crate::db;
use crate::db::topics::TokenRow;
use crate::db::Page;
use crate::error::detail;
use crate::error::Missing;
use crate::error::{ApiError, ApiResult};
use crate::util::now_unix;

/// A token as asked for: its rights given as `permissions` or as `access_level`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    pub name: Option<String>,
    /// `publish`, `subscribe` (also `read`, `write`); wins over `access_level`.
    pub permissions: Option<Vec<String>>,
    /// `read`, `write` or `read_write`.
    pub access_level: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// A freshly minted token with its secret (shown once).
pub struct NewTopicToken {
    pub row: TokenRow,
    pub secret: String,
}

/// `permissions: ["publish","subscribe"]` or `access_level: read|write|read_write`
/// as (can_read, can_write).
pub fn token_rights(request: &TokenRequest) -> ApiResult<(bool, bool)> {
    let invalid = ApiError::unprocessable;
    if let Some(permissions) = &request.permissions {
        let mut rights = (false, false);
        for p in permissions {
            match p.as_str() {
                "subscribe" | "read" => rights.0 = true,
                "publish" | "write" => rights.1 = true,
                _ => return Err(invalid(detail::INVALID_PERMISSIONS)),
            }
        }
        if rights == (false, false) {
            return Err(invalid(detail::EMPTY_PERMISSIONS));
        }
        return Ok(rights);
    }
    match request.access_level.as_deref() {
        Some("read") => Ok((true, false)),
        Some("write") => Ok((false, true)),
        Some("read_write") => Ok((true, true)),
        _ => Err(invalid(detail::MISSING_RIGHTS)),
    }
}

impl Domain {
    /// A new token for an owned private topic, within the owner's quota and creation
    /// rate.
    pub async fn create_token(
        &self,
        principal: &Principal,
        topic: String,
        request: TokenRequest,
    ) -> ApiResult<NewTopicToken> {
        let (user, info) = self.owned_topic(principal, &topic).await?;
        if info.visibility == Visibility::Public {
            return Err(ApiError::bad_request(detail::TOKENS_ONLY_PRIVATE));
        }
        let (can_read, can_write) = token_rights(&request)?;
        let within = self.creation(&user, Quota::TopicTokens)?;
        let minted = mint(TOPIC_TOKEN_PREFIX);
        let row = TokenRow {
            id: new_id(),
            topic,
            name: check_name(request.name, "Access token")?,
            token_hash: minted.hash,
            can_read,
            can_write,
            created_by: user.id.clone(),
            created_at: now_unix(),
            expires_at: parse_expiry(request.expires_at.as_deref())?,
            last_used_at: None,
            total_requests: 0,
        };
        let stored = row.clone();
        self.db(move |conn| {
            within.create(conn, |conn| Ok(db::topics::insert_token(conn, &stored)?))
        })
        .await?;
        Ok(NewTopicToken {
            row,
            secret: minted.secret,
        })
    }

    /// One page of an owned topic's tokens, with their use up to date.
    pub async fn topic_tokens(
        &self,
        principal: &Principal,
        topic: String,
        page: ApiResult<Page>,
    ) -> ApiResult<Listing<TokenRow>> {
        self.owned_topic(principal, &topic).await?;
        let auth = self.auth.clone();
        self.list(page?, move |conn, page| {
            auth.usage().flush(conn);
            Ok(db::topics::tokens_of(conn, &topic, page)?)
        })
        .await
    }

    /// Deletes token `id` of an owned topic; it stops working at once, also for live
    /// subscriptions.
    pub async fn revoke_token(
        &self,
        principal: &Principal,
        topic: String,
        id: String,
    ) -> ApiResult<()> {
        self.owned_topic(principal, &topic).await?;
        let (t, i) = (topic.clone(), id.clone());
        let deleted = self
            .db(move |conn| Ok(db::topics::delete_token(conn, &t, &i)?))
            .await?;
        if deleted == 0 {
            return Err(ApiError::not_found(Missing::AccessToken));
        }
        self.changed(Change::TokenRevoked { topic, id }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(permissions: Option<&[&str]>, access_level: Option<&str>) -> ApiResult<(bool, bool)> {
        token_rights(&TokenRequest {
            permissions: permissions.map(|p| p.iter().map(|s| s.to_string()).collect()),
            access_level: access_level.map(String::from),
            ..TokenRequest::default()
        })
    }

    #[test]
    fn rights_come_from_permissions_first_then_the_access_level() {
        assert_eq!(
            rights(Some(&["publish"]), Some("read")).unwrap(),
            (false, true)
        );
        assert_eq!(
            rights(Some(&["subscribe", "write"]), None).unwrap(),
            (true, true)
        );
        assert_eq!(rights(None, Some("read")).unwrap(), (true, false));
        assert_eq!(rights(None, Some("read_write")).unwrap(), (true, true));
    }

    #[test]
    fn empty_unknown_or_missing_rights_are_refused() {
        for (permissions, level) in [
            (Some(&[][..]), None),
            (Some(&["admin"][..]), None),
            (None, Some("all")),
            (None, None),
        ] {
            let err = rights(permissions, level).unwrap_err();
            assert!(matches!(err, ApiError::Unprocessable(_)), "{err}");
        }
    }
}
