//! One actor per subscriber connection (SSE, WebSocket, JSON or raw stream).
//!
//! It registers with its topics first, then replays stored messages, then goes live,
//! dropping live messages it already replayed: no gap, no duplicate. Frames go to the
//! connection through a bounded queue; a subscriber that lets it fill up is closed.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::mpsc;

use super::message::{sse_frame, Control, Envelope, Transport};
use super::since::{Filter, Since};
use super::topic::{Deliver, Subscribe, Topic, Unsubscribe, REASON_TOO_SLOW};
use super::{Broker, SessionId};
use crate::auth::permissions::Grant;
use crate::db::{self, Pool};
use crate::metrics::METRICS;
use crate::util::{now_unix, random_id};

/// Stored messages are replayed in pages of this many.
const REPLAY_PAGE: i64 = 500;

/// What a session hands to its connection's writer.
#[derive(Debug)]
pub enum Outbound {
    /// Bytes for a stream body (SSE, JSON, raw).
    Data(Bytes),
    /// A WebSocket text frame.
    Text(ByteString),
    /// A WebSocket ping.
    Ping,
}

/// Everything a session needs to start.
pub struct SessionSpec {
    pub transport: Transport,
    /// Each topic with what allowed subscribing to it.
    pub topics: Vec<(String, Grant)>,
    pub since: Since,
    pub filter: Filter,
    pub poll: bool,
    pub keepalive: Duration,
    pub queue: usize,
}

pub struct Session {
    id: SessionId,
    spec: SessionSpec,
    label: String,
    out: mpsc::Sender<Outbound>,
    broker: Broker,
    pool: Pool,
    topics: Vec<Addr<Topic>>,
    /// Live messages up to here were already sent by the replay.
    replayed_up_to: i64,
    closing: bool,
}

impl Session {
    /// Starts a session and returns the receiving end its connection writes from.
    pub fn spawn(spec: SessionSpec, broker: Broker, pool: Pool) -> mpsc::Receiver<Outbound> {
        let (out, rx) = mpsc::channel(spec.queue);
        let label = spec
            .topics
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(",");
        Session {
            id: SessionId::next(),
            spec,
            label,
            out,
            broker,
            pool,
            topics: Vec::new(),
            replayed_up_to: 0,
            closing: false,
        }
        .start();
        rx
    }

    fn control(&self, event: &str, message: Option<&str>) -> Outbound {
        let json = Control {
            id: random_id(12),
            time: now_unix(),
            event,
            topic: &self.label,
            message,
        }
        .to_json();
        match self.spec.transport {
            Transport::Sse => Outbound::Data(sse_frame(None, event, &json)),
            Transport::Json => Outbound::Data(Bytes::from(json + "\n")),
            Transport::Raw => Outbound::Data(Bytes::from_static(b"\n")),
            Transport::Ws => Outbound::Text(json.into()),
        }
    }

    fn push(&mut self, frame: Outbound, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        // The last free slot is kept for the final event.
        if self.out.capacity() <= 1 {
            self.close(REASON_TOO_SLOW, ctx);
            return;
        }
        if self.out.try_send(frame).is_err() {
            ctx.stop();
        }
    }

    fn close(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if !self.closing {
            let _ = self.out.try_send(self.control("close", Some(reason)));
            self.closing = true;
        }
        ctx.stop();
    }
}

fn message_frame(transport: Transport, envelope: &Envelope) -> Outbound {
    match transport {
        Transport::Ws => Outbound::Text(envelope.json.clone()),
        other => Outbound::Data(envelope.frame(other)),
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.spec.queue);
        METRICS.connection_opened(self.spec.transport);
        // Stop as soon as the connection is gone, not at the next write.
        let out = self.out.clone();
        ctx.spawn(
            async move { out.closed().await }
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        );
        // `open` is sent only once every topic has this session registered, so a
        // message published after a client saw `open` always reaches it.
        let open = (!self.spec.poll).then(|| self.control("open", None));
        if !self.spec.poll {
            let every = self.spec.keepalive;
            ctx.run_interval(every, |act, ctx| {
                if act.spec.transport == Transport::Ws {
                    act.push(Outbound::Ping, ctx);
                }
                let keepalive = act.control("keepalive", None);
                act.push(keepalive, ctx);
            });
        }

        let broker = self.broker.clone();
        let recipient = ctx.address().recipient::<Deliver>();
        let id = self.id;
        let live = !self.spec.poll;
        let topic_grants = self.spec.topics.clone();
        let since = self.spec.since.clone();
        let filter = self.spec.filter.clone();
        let pool = self.pool.clone();
        let out = self.out.clone();
        let transport = self.spec.transport;
        let setup = async move {
            let mut topics = Vec::new();
            if live {
                for (name, grant) in &topic_grants {
                    let subscribe = Subscribe {
                        id,
                        recipient: recipient.clone(),
                        grant: grant.clone(),
                    };
                    topics.push(subscribe_to(&broker, name, subscribe).await?);
                }
            }
            if let Some(open) = open {
                out.send(open).await.map_err(|_| ())?;
            }
            let names = topic_grants.into_iter().map(|(name, _)| name).collect();
            let last = replay(pool, names, since, &filter, transport, &out).await?;
            Ok::<_, ()>((topics, last))
        };
        ctx.wait(
            setup
                .into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok((topics, last)) => {
                        act.topics = topics;
                        act.replayed_up_to = last;
                        if act.spec.poll {
                            ctx.stop();
                        }
                    }
                    Err(()) => ctx.stop(),
                }),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        METRICS.connection_closed(self.spec.transport);
        for topic in &self.topics {
            topic.do_send(Unsubscribe { id: self.id });
        }
    }
}

/// Registers with a topic's actor, retrying if that actor stopped in the meantime.
async fn subscribe_to(broker: &Broker, name: &str, msg: Subscribe) -> Result<Addr<Topic>, ()> {
    for _ in 0..5 {
        let addr = broker.topic(name);
        if addr.send(msg.clone()).await.is_ok() {
            return Ok(addr);
        }
    }
    tracing::error!(topic = name, "could not register with topic actor");
    Err(())
}

/// Sends stored messages after `since`, waiting for the connection to take them.
/// Returns the sequence number of the last stored message looked at.
async fn replay(
    pool: Pool,
    topics: Vec<String>,
    since: Since,
    filter: &Filter,
    transport: Transport,
    out: &mpsc::Sender<Outbound>,
) -> Result<i64, ()> {
    let topics = Arc::new(topics);
    let mut cursor = since;
    let mut last = 0;
    while cursor != Since::None {
        let (pool, topics, page_since) = (pool.clone(), topics.clone(), cursor.clone());
        let page = actix_web::web::block(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            db::messages::since(&mut conn, &topics, &page_since, REPLAY_PAGE)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| ())?
        .map_err(|e| tracing::error!(error = %e, "replay query failed"))?;
        let full_page = page.len() as i64 == REPLAY_PAGE;
        for message in page {
            last = last.max(message.seq);
            if filter.matches(&message) {
                let frame = message_frame(transport, &Envelope::new(message));
                out.send(frame).await.map_err(|_| ())?;
            }
        }
        cursor = if full_page && cursor != Since::Latest {
            Since::Seq(last)
        } else {
            Since::None
        };
    }
    Ok(last)
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        match msg {
            Deliver::Message(envelope) => {
                if envelope.seq() <= self.replayed_up_to
                    || !self.spec.filter.matches(&envelope.message)
                {
                    return;
                }
                let frame = message_frame(self.spec.transport, &envelope);
                self.push(frame, ctx);
                METRICS.delivered();
            }
            Deliver::Close { reason } => self.close(reason, ctx),
        }
    }
}
