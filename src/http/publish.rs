//! Publishing: `POST`/`PUT /{topic}` with the text as body, and JSON `POST /`; the
//! publish itself is the domain's (`service::publish`).

use std::collections::HashMap;

use actix_web::http::header::HeaderName;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::openapi::TopicPath;
use super::{header_text, AppState};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::check_topic_name;
use crate::model::draft::{refuse_unsupported, Draft, Fields, JsonPublish, JSON_OVERHEAD};
use crate::model::message::Message;
use crate::service::publish::Published;

/// The names of the publish routes (`POST /` and `POST`/`PUT /{topic}`), by which the
/// access log knows a publish to time.
pub const ROUTES: [&str; 2] = ["publish_json", "publish"];

/// Whether `req` was routed to a publish.
pub fn is_publish(req: &HttpRequest) -> bool {
    req.match_name().is_some_and(|name| ROUTES.contains(&name))
}

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

#[utoipa::path(method(post, put), path = "/{topic}", tag = "publish",
    params(
        TopicPath,
        ("X-Title" = Option<String>, Header, description = "Also `Title`; at most 256 characters"),
        ("X-Priority" = Option<String>, Header, description = "Also `Priority`: 1-5, `min`, `low`, `default`, `high`, `max` or `urgent`"),
        ("X-Tags" = Option<String>, Header, description = "Also `Tags`: comma-separated, at most 10"),
        ("title" = Option<String>, Query, description = "When no header gives it"),
        ("priority" = Option<String>, Query, description = "When no header gives it"),
        ("tags" = Option<String>, Query, description = "When no header gives it"),
    ),
    request_body(content = String, content_type = "text/plain", description = "The message text (UTF-8, at most `message_size_limit` bytes)"),
    responses(
        (status = 200, description = "Stored: the message object", body = Message,
            headers(("X-RateLimit-Limit" = u32, description = "The tier's publishes per minute (limited tiers)"),
                    ("X-RateLimit-Remaining" = u32, description = "What is left of it"))),
        (status = 400, description = "`Message is empty`, `Message is not valid UTF-8`, `Invalid priority: …`, `Too many tags: …`, `Title too long …`, `Invalid topic name …`, `Topic name '…' is reserved`, `Unsupported header: …`", body = Detail),
        (status = 403, description = "`Limit reached: topics` (a first publish creates the topic)", body = Detail),
        (status = 405, description = "`Method not allowed`: a reserved name that is also a path (`health`, `metrics`)", body = Detail),
        (status = 503, description = "`Storage full`, `Database unavailable`", body = Detail),
    ))]
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
    refuse_unsupported(|name| {
        // A value that is not text still asks for the option.
        let header = req.headers().get(name).map(|v| v.to_str().unwrap_or("?"));
        header.or_else(|| query.get(name).map(String::as_str))
    })?;
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

#[utoipa::path(post, path = "/", tag = "publish",
    request_body = JsonPublish,
    responses(
        (status = 200, description = "Stored: the message object", body = Message,
            headers(("X-RateLimit-Limit" = u32, description = "The tier's publishes per minute (limited tiers)"),
                    ("X-RateLimit-Remaining" = u32, description = "What is left of it"))),
        (status = 400, description = "`Invalid JSON body: …`, `Unsupported field: …`, and the errors of `POST /{topic}`", body = Detail),
        (status = 403, description = "`Limit reached: topics`", body = Detail),
        (status = 503, description = "`Storage full`, `Database unavailable`", body = Detail),
    ))]
pub async fn publish_json(
    principal: Principal,
    body: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let limit = state.config.message_size_limit;
    let body = read_body(body, limit + JSON_OVERHEAD).await?;
    store(&principal, Draft::from_json(&body)?, &state).await
}

/// Publishes a draft and answers with the message object as stored.
async fn store(principal: &Principal, draft: Draft, state: &AppState) -> ApiResult<HttpResponse> {
    let Published {
        envelope,
        allowance,
    } = state.publish(principal, draft).await?;
    let mut response = HttpResponse::Ok();
    response.content_type("application/json");
    if let Some(a) = allowance {
        response
            .insert_header(("X-RateLimit-Limit", a.limit.to_string()))
            .insert_header(("X-RateLimit-Remaining", a.remaining.to_string()));
    }
    Ok(response.body(envelope.json.clone().into_bytes()))
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
