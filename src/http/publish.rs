//! Publishing: `POST`/`PUT /{topic}` with the text as body, and JSON `POST /`.

use std::collections::HashMap;

use actix_web::http::header::HeaderName;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::{header_text, AppState};
use crate::auth::permissions::{Action, Visibility};
use crate::auth::Principal;
use crate::broker::check_topic_name;
use crate::broker::draft::{Draft, Fields, JSON_OVERHEAD};
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
    let body = read_body(body, state.config.message_size_limit).await?;
    let (title, priority, tags) = (
        header_text(&req, &TITLE)?,
        header_text(&req, &PRIORITY)?,
        header_text(&req, &TAGS)?,
    );
    let query = query.into_inner();
    let fields = Fields {
        title: or_param(&title, &query, "title"),
        priority: or_param(&priority, &query, "priority"),
        tags: or_param(&tags, &query, "tags"),
    };
    let draft = Draft::from_text(topic, body, fields)?;
    store(&principal, draft, &state).await
}

/// A field's header value, or else its query parameter.
fn or_param<'a>(
    header: &'a Option<String>,
    query: &'a HashMap<String, String>,
    name: &str,
) -> Option<&'a str> {
    header
        .as_deref()
        .or_else(|| query.get(name).map(String::as_str))
}

pub async fn publish_json(
    principal: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let limit = state.config.message_size_limit;
    let body = read_body(body, limit + JSON_OVERHEAD).await?;
    store(&principal, Draft::from_json(&body)?, &state).await
}

/// Checks a draft, stores it durably and answers with the message object.
async fn store(principal: &Principal, draft: Draft, state: &AppState) -> ApiResult<HttpResponse> {
    let (_, topic) = state
        .authorize_topic(principal, &draft.topic, Action::Publish)
        .await?;
    let config = &state.config;
    let message =
        draft.into_message(config.message_size_limit, config.cache_duration, now_unix())?;
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
        Principal::TopicToken { token, .. } => state
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
