//! One actor per live topic: it holds the topic's subscribers and fans each stored
//! message out to them, never waiting on any one of them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::message::Envelope;
use super::{Broker, SessionId};
use crate::auth::permissions::{Grant, Revocation};

/// What a topic pushes to a session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum Deliver {
    Message(Arc<Envelope>),
    /// The subscription ends: send a final event with this reason, then close.
    Close {
        reason: &'static str,
    },
}

pub const REASON_TOO_SLOW: &str = "Subscriber too slow";
pub const REASON_TOPIC_DELETED: &str = "Topic deleted";
pub const REASON_REVOKED: &str = "Access revoked";

#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub id: SessionId,
    pub recipient: Recipient<Deliver>,
    /// What allowed this subscription; checked again on every [`Revoke`].
    pub grant: Grant,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub id: SessionId,
}

/// A stored message to fan out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish(pub Arc<Envelope>);

/// Close the subscriptions whose grant no longer holds.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoke(pub Revocation);

/// Disconnect every subscriber with a reason (the topic was deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll {
    pub reason: &'static str,
}

struct Subscriber {
    recipient: Recipient<Deliver>,
    grant: Grant,
}

pub struct Topic {
    name: String,
    broker: Broker,
    idle_timeout: Duration,
    subscribers: HashMap<SessionId, Subscriber>,
    idle_check: Option<SpawnHandle>,
}

impl Topic {
    pub fn new(name: String, broker: Broker, idle_timeout: Duration) -> Self {
        Self {
            name,
            broker,
            idle_timeout,
            subscribers: HashMap::new(),
            idle_check: None,
        }
    }

    /// With nobody left, stop after the idle timeout unless someone subscribes meanwhile.
    fn schedule_idle_stop(&mut self, ctx: &mut Context<Self>) {
        if self.subscribers.is_empty() && self.idle_check.is_none() {
            self.idle_check = Some(ctx.run_later(self.idle_timeout, |act, ctx| {
                act.idle_check = None;
                if act.subscribers.is_empty() {
                    ctx.stop();
                }
            }));
        }
    }
}

impl Actor for Topic {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.schedule_idle_stop(ctx);
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.broker.forget(&self.name, &ctx.address());
    }
}

impl Handler<Subscribe> for Topic {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        if let Some(handle) = self.idle_check.take() {
            ctx.cancel_future(handle);
        }
        let subscriber = Subscriber {
            recipient: msg.recipient,
            grant: msg.grant,
        };
        self.subscribers.insert(msg.id, subscriber);
    }
}

impl Handler<Unsubscribe> for Topic {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        self.subscribers.remove(&msg.id);
        self.schedule_idle_stop(ctx);
    }
}

impl Handler<Publish> for Topic {
    type Result = ();

    fn handle(&mut self, Publish(envelope): Publish, ctx: &mut Context<Self>) {
        let mut dropped = false;
        self.subscribers.retain(|_, Subscriber { recipient, .. }| {
            match recipient.try_send(Deliver::Message(envelope.clone())) {
                Ok(()) => true,
                Err(SendError::Full(_)) => {
                    // Its queue is full: this one subscriber goes, nobody else waits.
                    recipient.do_send(Deliver::Close {
                        reason: REASON_TOO_SLOW,
                    });
                    dropped = true;
                    false
                }
                Err(SendError::Closed(_)) => {
                    dropped = true;
                    false
                }
            }
        });
        if dropped {
            self.schedule_idle_stop(ctx);
        }
    }
}

impl Handler<CloseAll> for Topic {
    type Result = ();

    fn handle(&mut self, msg: CloseAll, ctx: &mut Context<Self>) {
        for (_, subscriber) in self.subscribers.drain() {
            subscriber
                .recipient
                .do_send(Deliver::Close { reason: msg.reason });
        }
        ctx.stop();
    }
}

impl Handler<Revoke> for Topic {
    type Result = ();

    fn handle(&mut self, Revoke(revocation): Revoke, ctx: &mut Context<Self>) {
        self.subscribers.retain(|_, subscriber| {
            let revoked = subscriber.grant.revoked_by(&revocation);
            if revoked {
                subscriber.recipient.do_send(Deliver::Close {
                    reason: REASON_REVOKED,
                });
            }
            !revoked
        });
        self.schedule_idle_stop(ctx);
    }
}
