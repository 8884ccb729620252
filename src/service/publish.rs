//! Publishing a message: who may, whose quota pays for it, the topic created on a
//! first publish, and the hand-off to the writer (the answer comes once it is stored).

use std::sync::Arc;

use super::Domain;
use crate::auth::permissions::Action;
use crate::auth::Principal;
use crate::error::Allowance;
use crate::error::{ApiError, ApiResult};
use crate::model::draft::Draft;
use crate::model::message::Envelope;
use crate::util::now_unix;

/// A stored message, and what is left of the quota that paid for it (`None`: no
/// limit).
pub struct Published {
    pub envelope: Arc<Envelope>,
    pub allowance: Option<Allowance>,
}

impl Domain {
    /// Checks a draft, stores it durably and returns it as stored.
    pub async fn publish(&self, principal: &Principal, draft: Draft) -> ApiResult<Published> {
        let (_, topic) = self
            .authorize_topic(principal, &draft.topic, Action::Publish)
            .await?;
        let config = &self.config;
        let message =
            draft.into_message(config.message_size_limit, config.cache_duration, now_unix())?;
        let allowance = self.charge_publish(principal).await?;
        if topic.is_none() {
            self.create_topic_on_publish(principal, &message.topic)
                .await?;
        }
        let envelope = self.writer.publish(message).await?;
        // Stored: a failure to queue its pushes is logged, not the publisher's error.
        if let Err(e) = self.queue_pushes(&envelope).await {
            tracing::warn!(error = %e, "cannot queue Web Push");
        }
        Ok(Published {
            envelope,
            allowance,
        })
    }

    /// Takes one publish from the quota of the account that pays for it: the
    /// publisher's, or for a topic token the topic owner's.
    async fn charge_publish(&self, principal: &Principal) -> ApiResult<Option<Allowance>> {
        let account = match principal {
            Principal::Account { user, .. } => user.clone(),
            Principal::TopicToken { token, .. } => self
                .auth
                .user(&token.owner_id)
                .await?
                .ok_or(ApiError::InvalidCredentials)?,
            Principal::Anonymous => return Err(ApiError::NotAuthenticated),
            Principal::Client { .. } => return Err(ApiError::Forbidden),
        };
        self.limits.charge_publish(&account.id, &account.tier).await
    }
}
