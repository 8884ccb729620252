//! Subscribing: `GET /{topics}/{sse|ws|json|raw}` and the history endpoint.

use std::collections::HashMap;
use std::convert::Infallible;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::{header_text, AppState};
use crate::auth::permissions::Action;
use crate::auth::Principal;
use crate::broker::check_topic_name;
use crate::broker::message::{Transport, KEEPALIVE_EVENT};
use crate::broker::session::{Inbox, Session, SessionSpec};
use crate::broker::since::{Filter, Since};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::util::now_unix;

const LAST_EVENT_ID: header::HeaderName = header::HeaderName::from_static("last-event-id");

/// A stream write carries at most this much of a subscriber's backlog.
const MAX_WRITE: usize = 64 * 1024;
const DEFAULT_HISTORY_LIMIT: i64 = 100;
const MAX_HISTORY_LIMIT: i64 = 10_000;

type Query = web::Query<HashMap<String, String>>;

pub async fn subscribe(
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: Query,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (names, transport) = path.into_inner();
    let transport = Transport::parse(&transport).ok_or_else(|| ApiError::not_found("Path"))?;
    let mut topics = Vec::new();
    for name in parse_topics(&names)? {
        let (grant, _) = state
            .authorize_topic(&principal, &name, Action::Subscribe)
            .await?;
        topics.push((name, grant));
    }
    let poll = query
        .get("poll")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    let since = match query.get("since") {
        Some(s) => Since::parse(s, now_unix())?,
        None => match header_text(&req, &[LAST_EVENT_ID])? {
            Some(id) => Since::parse(&id, now_unix())?,
            None if poll => Since::All,
            None => Since::None,
        },
    };
    let filter = Filter::parse(
        query.get("priority").map(String::as_str),
        query.get("tags").map(String::as_str),
        query.get("title").map(String::as_str),
    )?;
    let spec = SessionSpec {
        transport,
        topics,
        since,
        filter,
        poll,
        keepalive: state.config.keepalive_interval,
        queue: state.config.subscriber_queue,
        expires_at: principal.expires_at(),
    };
    if transport == Transport::Ws {
        let (response, ws, incoming) = actix_ws::handle(&req, payload)
            .map_err(|_| ApiError::bad_request("Expected a WebSocket upgrade request"))?;
        let rx = Session::spawn(spec, state.broker.clone(), state.history());
        actix_web::rt::spawn(pump_websocket(rx, ws, incoming));
        return Ok(response);
    }
    let rx = Session::spawn(spec, state.broker.clone(), state.history());
    Ok(HttpResponse::Ok()
        .content_type(transport.content_type())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(coalesced(rx, transport)))
}

/// `GET /api/topics/{topic}/messages?since=&limit=`: stored messages, oldest first.
pub async fn history(
    principal: Principal,
    topic: web::Path<String>,
    query: Query,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let topic = topic.into_inner();
    check_topic_name(&topic)?;
    state
        .authorize_topic(&principal, &topic, Action::Subscribe)
        .await?;
    let since = Since::parse(query.get("since").map_or("all", String::as_str), now_unix())?;
    let limit = super::paging::parse_limit(
        query.get("limit").map(String::as_str),
        DEFAULT_HISTORY_LIMIT,
        MAX_HISTORY_LIMIT,
    )?;
    let recent = state.writer.recent().clone();
    let messages = state
        .db(move |conn| Ok(db::messages::since(conn, &recent, &[topic], &since, limit)?))
        .await?;
    Ok(HttpResponse::Ok().json(messages))
}

fn parse_topics(list: &str) -> ApiResult<Vec<String>> {
    let mut topics: Vec<String> = Vec::new();
    for name in list.split(',') {
        check_topic_name(name)?;
        if !topics.iter().any(|t| t == name) {
            topics.push(name.to_string());
        }
    }
    Ok(topics)
}

/// The body of a stream response: whatever is queued when the socket is ready goes
/// out in one write.
fn coalesced(rx: Inbox, transport: Transport) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold(rx, move |mut rx| async move {
        let first = rx.recv().await?.frame(transport);
        let mut next = match rx.try_recv() {
            Some(frame) => frame.frame(transport),
            None => return Some((Ok(first), rx)),
        };
        let mut buf = BytesMut::with_capacity(first.len() * 4);
        buf.extend_from_slice(&first);
        loop {
            buf.extend_from_slice(&next);
            if buf.len() >= MAX_WRITE {
                break;
            }
            match rx.try_recv() {
                Some(frame) => next = frame.frame(transport),
                None => break,
            }
        }
        Some((Ok(buf.freeze()), rx))
    })
}

/// Moves a session's frames to a WebSocket and answers the client's pings; frames the
/// client sends are otherwise ignored. Ends when either side goes away.
async fn pump_websocket(
    mut rx: Inbox,
    mut ws: actix_ws::Session,
    mut incoming: actix_ws::MessageStream,
) {
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let Some(envelope) = frame else {
                    let _ = ws.close(None).await;
                    return;
                };
                // A keepalive event also pings, so idle proxies see protocol traffic.
                if envelope.message.event == KEEPALIVE_EVENT && ws.ping(b"").await.is_err() {
                    return;
                }
                if ws.text(envelope.json.clone()).await.is_err() {
                    return;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(actix_ws::Message::Ping(bytes))) => {
                    if ws.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(actix_ws::Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    }
}
