//! Publishing: `POST`/`PUT /{topic}` with the text as body, and JSON `POST /`.

use std::collections::HashMap;

use actix_web::http::header::HeaderName;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{header_text, AppState};
use crate::auth::permissions::{Action, Visibility};
use crate::auth::Principal;
use crate::broker::check_topic_name;
use crate::broker::message::{
    check_tags, check_title, parse_priority, parse_tags, Message, DEFAULT_PRIORITY, MESSAGE_EVENT,
};
use crate::error::{ApiError, ApiResult};
use crate::limits::Allowance;
use crate::util::now_unix;

/// Headers a publish may set its fields with (ntfy's names, with and without `X-`).
const TAGS: [HeaderName; 2] = [
    HeaderName::from_static("x-tags"),
    HeaderName::from_static("tags"),
];
const TITLE: [HeaderName; 2] = [
    HeaderName::from_static("x-title"),
    HeaderName::from_static("title"),
];
const PRIORITY: [HeaderName; 2] = [
    HeaderName::from_static("x-priority"),
    HeaderName::from_static("priority"),
];

/// Room for the JSON around the message text in `POST /`.
const JSON_OVERHEAD: usize = 16 * 1024;

/// What a publisher asked for, before it is checked.
#[derive(Debug, Default)]
struct Draft {
    topic: String,
    text: String,
    title: Option<String>,
    priority: Option<String>,
    tags: Vec<String>,
}

pub async fn publish(
    principal: Principal,
    req: HttpRequest,
    topic: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let topic = topic.into_inner();
    check_topic_name(&topic)?;
    let limit = state.config.message_size_limit;
    let body = read_body(body, limit).await?;
    let text =
        String::from_utf8(body).map_err(|_| ApiError::bad_request("Message is not valid UTF-8"))?;
    let param = |name: &str| query.get(name).cloned();
    let tags = header_text(&req, &TAGS)?.or_else(|| param("tags"));
    let draft = Draft {
        topic,
        text,
        title: header_text(&req, &TITLE)?.or_else(|| param("title")),
        priority: header_text(&req, &PRIORITY)?.or_else(|| param("priority")),
        tags: match tags {
            Some(t) => parse_tags(&t)?,
            None => Vec::new(),
        },
    };
    store(&principal, draft, &state).await
}

/// `POST /` body (ntfy-compatible).
#[derive(Debug, Deserialize)]
pub struct JsonPublish {
    topic: String,
    #[serde(default)]
    message: String,
    title: Option<String>,
    priority: Option<serde_json::Value>,
    #[serde(default)]
    tags: Vec<String>,
}

pub async fn publish_json(
    principal: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let limit = state.config.message_size_limit;
    let body = read_body(body, limit + JSON_OVERHEAD).await?;
    let request: JsonPublish = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    check_topic_name(&request.topic)?;
    let draft = Draft {
        topic: request.topic,
        text: request.message,
        title: request.title,
        priority: request.priority.map(|p| match p {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }),
        tags: check_tags(request.tags)?,
    };
    store(&principal, draft, &state).await
}

/// Checks a draft, stores it durably and answers with the message object.
async fn store(principal: &Principal, draft: Draft, state: &AppState) -> ApiResult<HttpResponse> {
    let (_, topic) = state
        .authorize_topic(principal, &draft.topic, Action::Publish)
        .await?;
    let message = check(draft, state)?;
    let allowance = charge_publish(principal, state).await?;
    if topic.is_none() {
        if !state.config.auto_create_topics {
            return Err(ApiError::not_found("Topic"));
        }
        let owner = principal.account()?;
        state
            .create_topic(owner, &message.topic, Visibility::Public, None, true)
            .await?;
    }
    let envelope = state.writer.publish(message).await?;
    let mut response = HttpResponse::Ok();
    response.content_type("application/json");
    if let Some(a) = allowance {
        response
            .insert_header(("X-RateLimit-Limit", a.limit.to_string()))
            .insert_header(("X-RateLimit-Remaining", a.remaining.to_string()));
    }
    Ok(response.body(envelope.json.clone().into_bytes()))
}

/// Takes one publish from the quota of the account that pays for it: the publisher's,
/// or for a topic token the topic owner's.
async fn charge_publish(principal: &Principal, state: &AppState) -> ApiResult<Option<Allowance>> {
    let account = match principal {
        Principal::Account { user, .. } => user.clone(),
        Principal::TopicToken(token) => state
            .auth
            .user(&token.owner_id)
            .await?
            .ok_or(ApiError::InvalidCredentials)?,
        Principal::Anonymous => return Err(ApiError::NotAuthenticated),
        Principal::Client { .. } => return Err(ApiError::Forbidden),
    };
    state
        .limits
        .charge_publish(&account.id, &account.tier)
        .await
}

/// Turns a draft into a message, or says what is wrong with it.
fn check(draft: Draft, state: &AppState) -> ApiResult<Message> {
    if draft.text.len() > state.config.message_size_limit {
        return Err(ApiError::TooLarge);
    }
    if draft.text.trim().is_empty() {
        return Err(ApiError::bad_request("Message is empty"));
    }
    let title = draft.title.filter(|t| !t.trim().is_empty());
    if let Some(title) = &title {
        check_title(title)?;
    }
    let priority = match draft.priority.as_deref() {
        Some(p) => parse_priority(p)?,
        None => DEFAULT_PRIORITY,
    };
    let now = now_unix();
    Ok(Message {
        // Both are given by the writer when it stores the message.
        id: String::new(),
        time: now,
        event: MESSAGE_EVENT,
        topic: draft.topic,
        message: draft.text,
        title,
        priority,
        tags: draft.tags,
        expires: now + state.config.cache_duration.as_secs() as i64,
        seq: 0,
    })
}

/// Reads a request body, refusing it as soon as it passes `limit` bytes.
async fn read_body(mut payload: web::Payload, limit: usize) -> ApiResult<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
