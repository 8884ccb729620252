//! Changes to credentials and topics that live subscriptions and credential caches
//! must follow at once: applied on the node where they happen and, in cluster mode,
//! on every other node.

use serde::{Deserialize, Serialize};

use crate::auth::permissions::{Revocation, Visibility};
use crate::auth::Auth;
use crate::broker::Broker;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// An API key was revoked or regenerated: its old secret stops working.
    ApiKeyRevoked { id: String },
    /// A topic access token was revoked.
    TokenRevoked { topic: String, id: String },
    /// A topic was created or changed; `became` when its visibility changed (a topic
    /// created private counts: subscribers from before read it as public).
    TopicChanged {
        name: String,
        became: Option<Visibility>,
    },
    /// A topic was deleted with its messages and tokens.
    TopicDeleted { name: String },
    /// An account's browser access changed (signing key, security mode or origins).
    ClientAccess { user_id: String },
    /// A Web Push subscription was made for these topics: every node must queue
    /// pushes for their messages from now on.
    PushSubscribed { topics: Vec<String> },
}

impl Change {
    /// Forgets what the caches hold about it and closes the live subscriptions it
    /// takes away (a Web Push subscription takes nothing away: the listener's
    /// `changed` hook tells the push queue).
    pub fn apply(&self, auth: &Auth, broker: &Broker) {
        match self {
            Self::ApiKeyRevoked { id } => {
                auth.forget_api_key(id);
                broker.revoke(None, Revocation::ApiKey(id.clone()));
            }
            Self::TokenRevoked { topic, id } => {
                auth.forget_token(id);
                broker.revoke(Some(topic), Revocation::Token(id.clone()));
            }
            Self::TopicChanged { name, became } => {
                auth.forget_topic(name);
                let revocation = match became {
                    Some(Visibility::Private) => Revocation::BecamePrivate,
                    Some(Visibility::Public) => Revocation::BecamePublic,
                    None => return,
                };
                broker.revoke(Some(name), revocation);
            }
            Self::TopicDeleted { name } => {
                auth.forget_topic(name);
                broker.close_topic(name);
            }
            Self::ClientAccess { user_id } => {
                auth.forget_client(user_id);
                broker.revoke(None, Revocation::ClientAccess(user_id.clone()));
            }
            Self::PushSubscribed { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_travel_as_tagged_json() {
        let change = Change::TopicChanged {
            name: "alerts".into(),
            became: Some(Visibility::Private),
        };
        let text = serde_json::to_string(&change).unwrap();
        assert_eq!(
            text,
            r#"{"change":"topic_changed","name":"alerts","became":"private"}"#
        );
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), change);
    }
}
