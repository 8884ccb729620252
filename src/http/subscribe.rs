//! Subscribing: `GET /{topics}/{sse|ws|json|raw}`, the check before it
//! (`GET /{topics}/auth`) and the history endpoint.

use std::collections::HashMap;
use std::convert::Infallible;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::openapi::{SinceQuery, TopicPath, TopicsPath};
use super::{header_text, AppState};
use crate::auth::Principal;
use crate::broker::session::Inbox;
use crate::broker::topic::REASON_SHUTTING_DOWN;
use crate::error::{detail, ApiError, ApiResult, Detail, Missing};
use crate::model::check_topic_name;
use crate::model::message::{Envelope, Message, Transport, CLOSE_EVENT, KEEPALIVE_EVENT};
use crate::model::since::{Filter, Since};
use crate::service::streams::Subscription;
use crate::util::now_unix;

const LAST_EVENT_ID: header::HeaderName = header::HeaderName::from_static("last-event-id");

/// A stream write carries at most this much of a subscriber's backlog.
const MAX_WRITE: usize = 64 * 1024;
const DEFAULT_HISTORY_LIMIT: i64 = 100;
const MAX_HISTORY_LIMIT: i64 = 10_000;

type Query = web::Query<HashMap<String, String>>;

/// Documented once for the four transports; the OpenAPI document lists each as a path
/// of its own (`openapi::split_transports`).
#[utoipa::path(get, path = "/{topics}/{transport}", tag = "subscribe",
    params(
        TopicsPath,
        SinceQuery,
        ("poll" = Option<String>, Query, description = "`1`: the stored messages, then the stream ends"),
        ("priority" = Option<String>, Query, description = "Only these priorities (`4,5`; names allowed)"),
        ("tags" = Option<String>, Query, description = "Only messages with all these tags (`a,b`)"),
        ("title" = Option<String>, Query, description = "Only messages with exactly this title"),
        ("Last-Event-ID" = Option<String>, Header, description = "Used as `since` when that is absent"),
    ),
    responses(
        (status = 200, description = "The stream: `open`, then the messages (`message` events), `keepalive`s and a last `close`", content(
            (String = "text/event-stream"),
            (Message = "application/x-ndjson"),
            (String = "text/plain"),
        )),
        (status = 101, description = "WebSocket: one event object (`Message`) per text frame"),
        (status = 400, description = "`Invalid topic name …`, `Topic name '…' is reserved`, `Invalid since`, `Invalid priority: …`, `Expected a WebSocket upgrade request`", body = Detail),
    ))]
pub async fn subscribe(
    principal: Principal,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: Query,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (names, transport) = path.into_inner();
    let transport =
        Transport::parse(&transport).ok_or_else(|| ApiError::not_found(Missing::Path))?;
    let topics = parse_topics(&names)?;
    let poll = query
        .get("poll")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    // A reconnecting EventSource repeats its URL, `since=` and all, and adds
    // `Last-Event-ID`: the header, when present, says where the client really is.
    let since = match header_text(&req, &[LAST_EVENT_ID])? {
        Some(id) => Since::parse(&id, now_unix())?,
        None => match query.get("since") {
            Some(s) => Since::parse(s, now_unix())?,
            None if poll => Since::All,
            None => Since::None,
        },
    };
    let filter = Filter::parse(
        query.get("priority").map(String::as_str),
        query.get("tags").map(String::as_str),
        query.get("title").map(String::as_str),
    )?;
    let wanted = Subscription {
        topics,
        transport,
        since,
        filter,
        poll,
    };
    let allowed = state.subscribe(&principal, wanted).await?;
    if transport == Transport::Ws {
        let (response, ws, incoming) = actix_ws::handle(&req, payload)
            .map_err(|_| ApiError::bad_request(detail::EXPECTED_WEBSOCKET))?;
        actix_web::rt::spawn(pump_websocket(state.open(allowed), ws, incoming));
        return Ok(response);
    }
    let rx = state.open(allowed);
    Ok(HttpResponse::Ok()
        .content_type(transport.content_type())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(coalesced(rx, transport)))
}

/// `GET /{topics}/auth` (ntfy's check before subscribing): `{"success":true}` when the
/// request's credential may subscribe to every topic listed, else the error subscribing
/// would get.
#[utoipa::path(get, path = "/{topics}/auth", tag = "subscribe",
    params(TopicsPath),
    responses(
        (status = 200, description = "The credential may subscribe to every topic listed", body = MaySubscribe),
        (status = 400, description = "`Invalid topic name …`, `Topic name '…' is reserved`", body = Detail),
    ))]
pub async fn may_subscribe(
    principal: Principal,
    names: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let topics = parse_topics(&names)?;
    state.may_subscribe(&principal, topics).await?;
    Ok(HttpResponse::Ok().json(MaySubscribe { success: true }))
}

/// What `GET /{topics}/auth` answers when subscribing is allowed (ntfy's shape).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MaySubscribe {
    /// Always `true`.
    success: bool,
}

/// `GET /api/topics/{topic}/messages?since=&limit=`: stored messages, oldest first.
#[utoipa::path(get, path = "/api/topics/{topic}/messages", tag = "subscribe",
    params(
        TopicPath,
        SinceQuery,
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "At most this many (default 100); the last id is the next page's `since`"),
    ),
    responses(
        (status = 200, description = "The stored messages after `since`, oldest first", body = [Message]),
        (status = 400, description = "`Invalid since`, `Invalid limit (1-10000)`, `Invalid topic name …`", body = Detail),
    ))]
pub async fn history(
    principal: Principal,
    topic: web::Path<String>,
    query: Query,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let topic = topic.into_inner();
    check_topic_name(&topic)?;
    let since = Since::parse(query.get("since").map_or("all", String::as_str), now_unix())?;
    let limit = super::paging::parse_limit(
        query.get("limit").map(String::as_str),
        DEFAULT_HISTORY_LIMIT,
        MAX_HISTORY_LIMIT,
    )?;
    let messages = state.read_history(&principal, topic, since, limit).await?;
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

/// The close frame that ends a WebSocket whose last event was `last`: 1001 "going
/// away" when the server shuts down, else a plain one.
fn close_frame(last: &Envelope) -> Option<actix_ws::CloseReason> {
    let message = &last.message;
    let away = message.event == CLOSE_EVENT && message.message == REASON_SHUTTING_DOWN;
    away.then(|| actix_ws::CloseReason {
        code: actix_ws::CloseCode::Away,
        description: Some("going away".into()),
    })
}

/// Moves a session's frames to a WebSocket and answers the client's pings; frames the
/// client sends are otherwise ignored. Ends when either side goes away.
async fn pump_websocket(
    mut rx: Inbox,
    mut ws: actix_ws::Session,
    mut incoming: actix_ws::MessageStream,
) {
    let mut closing = None;
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let Some(envelope) = frame else {
                    let _ = ws.close(closing).await;
                    return;
                };
                // A keepalive event also pings, so idle proxies see protocol traffic.
                if envelope.message.event == KEEPALIVE_EVENT && ws.ping(b"").await.is_err() {
                    return;
                }
                if ws.text(envelope.json.clone()).await.is_err() {
                    return;
                }
                closing = close_frame(&envelope);
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
