//! The auth actor: looks credentials, accounts and topics up in the database for the
//! in-memory caches of [`super::Auth`] when they do not know them yet.

use actix::prelude::*;

use super::client::ClientAccount;
use super::permissions::{TopicInfo, Visibility};
use super::{ApiKeyInfo, TokenInfo, UserInfo};
use crate::db::{self, Pool};
use crate::error::ApiResult;

/// Runs on a few threads of its own (a `SyncArbiter`), so lookups never block the
/// HTTP workers.
pub struct Authenticator {
    pub pool: Pool,
}

impl Actor for Authenticator {
    type Context = SyncContext<Self>;
}

#[derive(Message)]
#[rtype(result = "ApiResult<Option<UserInfo>>")]
pub struct LoadUser {
    pub id: String,
}

#[derive(Message)]
#[rtype(result = "ApiResult<Option<ApiKeyInfo>>")]
pub struct LoadApiKey {
    pub hash: String,
}

#[derive(Message)]
#[rtype(result = "ApiResult<Option<TokenInfo>>")]
pub struct LoadTopicToken {
    pub hash: String,
}

#[derive(Message)]
#[rtype(result = "ApiResult<Option<TopicInfo>>")]
pub struct LoadTopic {
    pub name: String,
}

#[derive(Message)]
#[rtype(result = "ApiResult<Option<ClientAccount>>")]
pub struct LoadClient {
    pub client_key: String,
}

impl Handler<LoadClient> for Authenticator {
    type Result = ApiResult<Option<ClientAccount>>;

    fn handle(&mut self, msg: LoadClient, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        let Some(settings) = db::clients::by_client_key(&mut conn, &msg.client_key)? else {
            return Ok(None);
        };
        let signing_key = match &settings.signing_key {
            Some(k) => Some(
                jsonwebtoken::DecodingKey::from_rsa_pem(k.public_key_pem.as_bytes()).map_err(
                    |e| {
                        tracing::error!(error = %e, "stored signing key is unreadable");
                        crate::error::ApiError::Internal
                    },
                )?,
            ),
            None => None,
        };
        Ok(Some(ClientAccount {
            user_id: settings.user.id,
            security_mode: settings.user.security_mode,
            signing_key,
            origins: settings.origins,
        }))
    }
}

impl Handler<LoadUser> for Authenticator {
    type Result = ApiResult<Option<UserInfo>>;

    fn handle(&mut self, msg: LoadUser, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(db::users::by_id(&mut conn, &msg.id)?.map(UserInfo::from))
    }
}

impl Handler<LoadApiKey> for Authenticator {
    type Result = ApiResult<Option<ApiKeyInfo>>;

    fn handle(&mut self, msg: LoadApiKey, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        let key = db::keys::key_by_hash(&mut conn, &msg.hash)?;
        Ok(key.map(|k| ApiKeyInfo {
            id: k.id,
            user_id: k.user_id,
            key_hash: k.key_hash,
            expires_at: k.expires_at,
        }))
    }
}

impl Handler<LoadTopicToken> for Authenticator {
    type Result = ApiResult<Option<TokenInfo>>;

    fn handle(&mut self, msg: LoadTopicToken, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        let Some(token) = db::topics::token_by_hash(&mut conn, &msg.hash)? else {
            return Ok(None);
        };
        let Some(topic) = db::topics::get(&mut conn, &token.topic)? else {
            return Ok(None);
        };
        Ok(Some(TokenInfo {
            id: token.id,
            topic: token.topic,
            owner_id: topic.owner_id,
            token_hash: token.token_hash,
            can_read: token.can_read,
            can_write: token.can_write,
            expires_at: token.expires_at,
        }))
    }
}

impl Handler<LoadTopic> for Authenticator {
    type Result = ApiResult<Option<TopicInfo>>;

    fn handle(&mut self, msg: LoadTopic, _: &mut SyncContext<Self>) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(db::topics::get(&mut conn, &msg.name)?.map(TopicInfo::from))
    }
}

impl From<db::users::UserRow> for UserInfo {
    fn from(u: db::users::UserRow) -> Self {
        Self {
            id: u.id,
            email: u.email,
            username: u.username,
            tier: u.tier,
            created_at: u.created_at,
            client_key: u.client_key,
        }
    }
}

impl From<db::topics::TopicRow> for TopicInfo {
    fn from(t: db::topics::TopicRow) -> Self {
        Self {
            name: t.name,
            owner_id: t.owner_id,
            visibility: Visibility::parse(&t.visibility).unwrap_or(Visibility::Private),
        }
    }
}
