//! Topics: create (explicitly, or implicitly on a first publish), list, read, change
//! visibility and description, delete; and who may manage one (its owner).

use std::sync::Arc;

use super::{Domain, Listing};
use crate::auth::permissions::{TopicInfo, Visibility};
use crate::auth::{Principal, UserInfo};
use crate::cluster::Change;
use crate::config::Quota;
use crate::db;
use crate::db::topics::{TopicRow, TopicWithOwner};
use crate::db::Page;
use crate::error::detail;
use crate::error::Missing;
use crate::error::{ApiError, ApiResult};
use crate::model::check_topic_name;
use crate::util::now_unix;

fn topic_not_found() -> ApiError {
    ApiError::not_found(Missing::Topic)
}

fn parse_visibility(text: &str) -> ApiResult<Visibility> {
    Visibility::parse(text).ok_or_else(|| ApiError::unprocessable(detail::INVALID_VISIBILITY))
}

impl Domain {
    /// Creates a topic owned by `owner`, within its quota and creation rate. With
    /// `if_absent`, an existing topic is not an error (auto-creation on first
    /// publish); otherwise it is a 409.
    async fn create_topic_of(
        &self,
        owner: &UserInfo,
        name: &str,
        visibility: Visibility,
        description: Option<String>,
        if_absent: bool,
    ) -> ApiResult<TopicWithOwner> {
        check_topic_name(name)?;
        let within = self.creation(owner, Quota::Topics)?;
        let row = TopicRow {
            name: name.to_string(),
            owner_id: owner.id.clone(),
            visibility: visibility.as_str().into(),
            description,
            created_at: now_unix(),
        };
        let stored = row.clone();
        let created = self
            .db(move |conn| {
                // A name already taken is no creation, so it does not count.
                if db::topics::exists(conn, &stored.name)? {
                    return Ok(false);
                }
                within.create(conn, |conn| {
                    Ok(db::topics::insert_if_absent(conn, &stored)?)
                })
            })
            .await?;
        if !created && !if_absent {
            return Err(ApiError::conflict(detail::TOPIC_EXISTS));
        }
        // Anyone who subscribed before a private topic existed read it as public.
        let became = (created && visibility == Visibility::Private).then_some(visibility);
        self.changed(Change::TopicChanged {
            name: name.to_string(),
            became,
        })
        .await?;
        Ok((row, owner.username.clone()))
    }

    /// A new topic of the account (`visibility` defaults to public); 409 when the name
    /// is taken.
    pub async fn create_topic(
        &self,
        principal: &Principal,
        name: &str,
        visibility: Option<&str>,
        description: Option<String>,
    ) -> ApiResult<TopicWithOwner> {
        let user = principal.account()?;
        let visibility = parse_visibility(visibility.unwrap_or("public"))?;
        self.create_topic_of(user, name, visibility, description, false)
            .await
    }

    /// A publish to topic `name`, which does not exist: it is created, public, for an
    /// account publisher when the server creates topics on first publish; else 404.
    pub(super) async fn create_topic_on_publish(
        &self,
        principal: &Principal,
        name: &str,
    ) -> ApiResult<()> {
        if !self.config.auto_create_topics {
            return Err(topic_not_found());
        }
        let owner = principal.account()?;
        self.create_topic_of(owner, name, Visibility::Public, None, true)
            .await
            .map(drop)
    }

    /// The topic `name` if `principal` owns it: 404 when it is missing or private to
    /// someone else, 403 when it is someone else's public topic.
    pub(super) async fn owned_topic(
        &self,
        principal: &Principal,
        name: &str,
    ) -> ApiResult<(Arc<UserInfo>, Arc<TopicInfo>)> {
        let user = principal.account()?.clone();
        let topic = self.auth.topic(name).await?.ok_or_else(topic_not_found)?;
        if topic.owner_id != user.id {
            return Err(match topic.visibility {
                Visibility::Public => ApiError::Forbidden,
                Visibility::Private => topic_not_found(),
            });
        }
        Ok((user, topic))
    }

    async fn topic_with_owner(&self, name: &str) -> ApiResult<TopicWithOwner> {
        let name = name.to_string();
        self.db(move |conn| Ok(db::topics::get_with_owner(conn, &name)?))
            .await?
            .ok_or_else(topic_not_found)
    }

    /// One page of the topics the account owns.
    pub async fn topics(
        &self,
        principal: &Principal,
        page: ApiResult<Page>,
    ) -> ApiResult<Listing<TopicWithOwner>> {
        let user_id = principal.account()?.id.clone();
        self.list(page?, move |conn, page| {
            Ok(db::topics::owned_by(conn, &user_id, page)?)
        })
        .await
    }

    /// Topic `name`: anyone may read a public one, only its owner a private one (404
    /// to everyone else, as if it did not exist).
    pub async fn topic(&self, principal: &Principal, name: &str) -> ApiResult<TopicWithOwner> {
        let topic = self.auth.topic(name).await?.ok_or_else(topic_not_found)?;
        let is_owner =
            matches!(principal, Principal::Account { user, .. } if user.id == topic.owner_id);
        if topic.visibility == Visibility::Private && !is_owner {
            return Err(topic_not_found());
        }
        self.topic_with_owner(name).await
    }

    /// Changes an owned topic's visibility and description (`None`: keep;
    /// `Some(None)`: clear the description). Subscribers a new visibility excludes
    /// are disconnected.
    pub async fn update_topic(
        &self,
        principal: &Principal,
        name: &str,
        visibility: Option<&str>,
        description: Option<Option<String>>,
    ) -> ApiResult<TopicWithOwner> {
        let (_, topic) = self.owned_topic(principal, name).await?;
        let visibility = match visibility {
            Some(v) => parse_visibility(v)?,
            None => topic.visibility,
        };
        let (current, _) = self.topic_with_owner(name).await?;
        let description = description.unwrap_or(current.description);
        let topic_name = name.to_string();
        self.db(move |conn| {
            Ok(db::topics::update(
                conn,
                &topic_name,
                visibility.as_str(),
                description.as_deref(),
            )?)
        })
        .await?;
        self.changed(Change::TopicChanged {
            name: name.to_string(),
            became: (visibility != topic.visibility).then_some(visibility),
        })
        .await?;
        self.topic_with_owner(name).await
    }

    /// Deletes an owned topic with its messages and tokens; its subscribers are
    /// disconnected.
    pub async fn delete_topic(&self, principal: &Principal, name: String) -> ApiResult<()> {
        self.owned_topic(principal, &name).await?;
        let topic_name = name.clone();
        self.db(move |conn| Ok(db::topics::delete(conn, &topic_name)?))
            .await?;
        self.changed(Change::TopicDeleted { name: name.clone() })
            .await?;
        self.writer.delete_topic(name).await
    }
}
