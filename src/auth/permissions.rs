//! Who may do what on a topic (the permission table of the contract), as pure logic.

use std::sync::Arc;

use super::{AccountVia, Principal};
pub use crate::db::users::Existing;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

/// What the permission check needs to know of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub owner_id: String,
    pub visibility: Visibility,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Publish,
}

/// The credential a live subscription was opened with, so it can be closed when that
/// credential stops allowing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Readable by anyone (public, or not created yet); `user` when an account asked.
    Public {
        user: Option<String>,
        key: Option<String>,
    },
    /// The owner, by access token or API key.
    Owner { user: String, key: Option<String> },
    /// A topic access token.
    Token { id: String },
    /// A browser end user of the owning account.
    Client { account: String },
}

/// A change after which some live subscriptions must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// An API key was revoked or regenerated.
    ApiKey(String),
    /// A topic access token was revoked.
    Token(String),
    /// The topic became private: only the owner and its tokens may stay.
    BecamePrivate,
    /// The topic became public: topic tokens no longer apply.
    BecamePublic,
    /// An account's browser access changed (signing key, mode or origins).
    ClientAccess(String),
    /// Accounts, API keys or tokens may have been deleted by another process: only
    /// grants whose account, key and token still exist stay.
    Existing(Arc<Existing>),
}

impl Grant {
    pub fn revoked_by(&self, revocation: &Revocation) -> bool {
        match (self, revocation) {
            (Self::Public { key, .. } | Self::Owner { key, .. }, Revocation::ApiKey(id)) => {
                key.as_deref() == Some(id)
            }
            (Self::Token { id }, Revocation::Token(revoked)) => id == revoked,
            (Self::Public { .. }, Revocation::BecamePrivate) => true,
            (Self::Token { .. }, Revocation::BecamePublic) => true,
            (Self::Client { account }, Revocation::ClientAccess(changed)) => account == changed,
            (_, Revocation::Existing(e)) => {
                let gone_key =
                    |key: &Option<String>| key.as_ref().is_some_and(|k| !e.api_keys.contains(k));
                match self {
                    Self::Token { id } => !e.tokens.contains(id),
                    Self::Public { user, key } => {
                        user.as_ref().is_some_and(|u| !e.users.contains(u)) || gone_key(key)
                    }
                    Self::Owner { user, key } => !e.users.contains(user) || gone_key(key),
                    Self::Client { account } => !e.users.contains(account),
                }
            }
            _ => false,
        }
    }
}

/// Decides whether `principal` may `action` on a topic (`None`: not created yet).
/// Publishing to a missing topic with an account is allowed (the caller creates it).
pub fn authorize(
    principal: &Principal,
    topic_name: &str,
    topic: Option<&Arc<TopicInfo>>,
    action: Action,
) -> Result<Grant, ApiError> {
    let public = topic.is_none_or(|t| t.visibility == Visibility::Public);
    match principal {
        Principal::Anonymous => match action {
            Action::Subscribe if public => Ok(Grant::Public {
                user: None,
                key: None,
            }),
            _ => Err(ApiError::NotAuthenticated),
        },
        Principal::Account { user, via, .. } => {
            let key = match via {
                AccountVia::ApiKey(id) => Some(id.clone()),
                AccountVia::AccessToken | AccountVia::Password => None,
            };
            let owner = topic.is_some_and(|t| t.owner_id == user.id);
            if owner {
                Ok(Grant::Owner {
                    user: user.id.clone(),
                    key,
                })
            } else if public {
                Ok(Grant::Public {
                    user: Some(user.id.clone()),
                    key,
                })
            } else {
                Err(ApiError::Forbidden)
            }
        }
        Principal::TopicToken { token, .. } => {
            if token.topic != topic_name {
                return Err(ApiError::InvalidCredentials);
            }
            let allowed = match action {
                Action::Subscribe => token.can_read,
                Action::Publish => token.can_write,
            };
            if public || !allowed {
                return Err(ApiError::Forbidden);
            }
            Ok(Grant::Token {
                id: token.id.clone(),
            })
        }
        Principal::Client { account, user, .. } => {
            let owned = topic.is_some_and(|t| t.owner_id == account.user_id);
            let listed = user
                .topics
                .as_ref()
                .is_none_or(|topics| topics.iter().any(|t| t == topic_name));
            if action != Action::Subscribe || !owned || !listed {
                return Err(ApiError::Forbidden);
            }
            Ok(Grant::Client {
                account: account.user_id.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{TokenInfo, UserInfo};

    fn user(id: &str) -> Principal {
        Principal::Account {
            user: Arc::new(UserInfo {
                id: id.into(),
                email: format!("{id}@x"),
                username: id.into(),
                tier: "free".into(),
                created_at: 0,
                client_key: format!("pk_{id}"),
            }),
            via: AccountVia::AccessToken,
            expires_at: None,
        }
    }

    fn token(topic: &str, read: bool, write: bool) -> Principal {
        Principal::TopicToken {
            token: Arc::new(TokenInfo {
                id: "tok".into(),
                topic: topic.into(),
                owner_id: "owner".into(),
                token_hash: "h".into(),
                can_read: read,
                can_write: write,
                expires_at: None,
            }),
            expires_at: None,
        }
    }

    fn topic(visibility: Visibility) -> Arc<TopicInfo> {
        Arc::new(TopicInfo {
            name: "t".into(),
            owner_id: "owner".into(),
            visibility,
        })
    }

    fn check(p: &Principal, v: Visibility, a: Action) -> Result<Grant, ApiError> {
        authorize(p, "t", Some(&topic(v)), a)
    }

    #[test]
    fn public_topics_are_read_by_anyone_and_written_by_accounts() {
        use Action::*;
        use Visibility::Public;
        assert!(check(&Principal::Anonymous, Public, Subscribe).is_ok());
        assert!(matches!(
            check(&Principal::Anonymous, Public, Publish),
            Err(ApiError::NotAuthenticated)
        ));
        assert!(check(&user("other"), Public, Publish).is_ok());
        assert!(matches!(
            check(&token("t", true, true), Public, Subscribe),
            Err(ApiError::Forbidden)
        ));
    }

    #[test]
    fn private_topics_need_the_owner_or_a_token_with_the_permission() {
        use Action::*;
        use Visibility::Private;
        assert!(matches!(
            check(&Principal::Anonymous, Private, Subscribe),
            Err(ApiError::NotAuthenticated)
        ));
        assert!(matches!(
            check(&user("other"), Private, Subscribe),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            check(&user("owner"), Private, Publish),
            Ok(Grant::Owner { .. })
        ));
        assert!(check(&token("t", true, false), Private, Subscribe).is_ok());
        assert!(matches!(
            check(&token("t", true, false), Private, Publish),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            check(&token("t", false, true), Private, Subscribe),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            check(&token("elsewhere", true, true), Private, Subscribe),
            Err(ApiError::InvalidCredentials)
        ));
    }

    #[test]
    fn revocations_hit_only_matching_grants() {
        let by_key = Grant::Owner {
            user: "u".into(),
            key: Some("k".into()),
        };
        assert!(by_key.revoked_by(&Revocation::ApiKey("k".into())));
        assert!(!by_key.revoked_by(&Revocation::BecamePrivate));
        let anyone = Grant::Public {
            user: None,
            key: None,
        };
        assert!(anyone.revoked_by(&Revocation::BecamePrivate));
        let tok = Grant::Token { id: "t1".into() };
        assert!(tok.revoked_by(&Revocation::Token("t1".into())));
        assert!(!tok.revoked_by(&Revocation::Token("t2".into())));
        assert!(tok.revoked_by(&Revocation::BecamePublic));
        let existing = Existing {
            users: ["u".to_string()].into(),
            api_keys: Default::default(),
            tokens: ["t1".to_string()].into(),
        };
        let existing = Revocation::Existing(Arc::new(existing));
        assert!(!tok.revoked_by(&existing));
        assert!(by_key.revoked_by(&existing), "its API key is gone");
        assert!(!anyone.revoked_by(&existing));
    }
}
