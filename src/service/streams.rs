//! Reading messages: opening a live subscription (a session that replays, then goes
//! live) and reading a topic's history, each after checking who may read.

use std::sync::Arc;

use super::Domain;
use crate::auth::permissions::{Action, Grant};
use crate::auth::Principal;
use crate::broker::session::{Inbox, Session, SessionSpec};
use crate::error::ApiResult;
use crate::model::message::{Message, Transport};
use crate::model::since::{Filter, Since};
use crate::pipeline::history::History;

/// What a subscriber asked for, parsed.
pub struct Subscription {
    pub topics: Vec<String>,
    pub transport: Transport,
    pub since: Since,
    pub filter: Filter,
    /// Send what is stored, then end.
    pub poll: bool,
}

/// A subscription its principal may open.
pub struct Allowed(SessionSpec);

impl Domain {
    /// Where stored messages are read from.
    pub fn history(&self) -> History {
        History::new(self.pool.clone(), self.writer.recent().clone())
    }

    /// Checks that `principal` may subscribe to every topic of `names`: each with the
    /// grant it subscribes by.
    async fn authorize_subscription(
        &self,
        principal: &Principal,
        names: Vec<String>,
    ) -> ApiResult<Vec<(String, Grant)>> {
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            let (grant, _) = self
                .authorize_topic(principal, &name, Action::Subscribe)
                .await?;
            topics.push((name, grant));
        }
        Ok(topics)
    }

    /// Whether `principal` may subscribe to every topic of `names` (`GET /{topics}/auth`,
    /// which ntfy's clients ask first): the same answer as subscribing would get.
    pub async fn may_subscribe(&self, principal: &Principal, names: Vec<String>) -> ApiResult<()> {
        self.authorize_subscription(principal, names)
            .await
            .map(drop)
    }

    /// Checks that `principal` may read every topic of a subscription; what it returns
    /// is opened with [`Domain::open`] once the connection is ready for it.
    pub async fn subscribe(
        &self,
        principal: &Principal,
        wanted: Subscription,
    ) -> ApiResult<Allowed> {
        let topics = self
            .authorize_subscription(principal, wanted.topics)
            .await?;
        let spec = SessionSpec {
            transport: wanted.transport,
            topics,
            since: wanted.since,
            filter: wanted.filter,
            poll: wanted.poll,
            keepalive: self.live.get().keepalive_interval,
            queue: self.config.subscriber_queue,
            expires_at: principal.expires_at(),
        };
        Ok(Allowed(spec))
    }

    /// Opens an allowed subscription: the returned inbox is what the connection writes
    /// from. It ends when the principal's credentials expire.
    pub fn open(&self, allowed: Allowed) -> Inbox {
        Session::spawn(allowed.0, self.broker.clone(), Arc::new(self.history()))
    }

    /// Stored messages of a topic `principal` may read, after `since`, oldest first, at
    /// most `limit`.
    pub async fn read_history(
        &self,
        principal: &Principal,
        topic: String,
        since: Since,
        limit: i64,
    ) -> ApiResult<Vec<Message>> {
        self.authorize_topic(principal, &topic, Action::Subscribe)
            .await?;
        let history = self.history();
        crate::cores::block(move || history.since(&[topic], &since, limit)).await?
    }
}
