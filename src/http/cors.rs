//! CORS: preflight answers and `Access-Control-*` headers. Requests with client
//! credentials follow their account's allowed origins (checked when the credential
//! is resolved); a preflight for a topic path follows its owner's list, since a
//! browser's preflight carries no credential; all others follow the server's
//! `cors.allowed_origins` (as last
//! reloaded).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};

use super::AppState;
use crate::auth::credential::X_CLIENT_KEY;
use crate::error::detail;
use crate::error::ApiError;
use crate::model::check_topic_name;

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-API-Key, X-Topic-Token, \
    X-Client-Key, X-User-Key, X-User-Id, X-Title, X-Priority, X-Tags, Last-Event-ID";
const EXPOSE_HEADERS: &str =
    "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-Next-Cursor, Link";
fn origin_not_allowed() -> ApiError {
    ApiError::forbidden_because(detail::ORIGIN_NOT_ALLOWED)
}

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(origin), Some(state)) = (origin, state) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let client_key = query_client_key(req.query_string());
    let client_request = client_key.is_some() || req.headers().contains_key(X_CLIENT_KEY);
    // A browser sends no preflight before a WebSocket upgrade, and reads nothing of the
    // answer's CORS headers: the upgrade itself must be refused.
    if !client_request && is_websocket_upgrade(&req) && !server_allows(&state, &origin) {
        return Ok(req.into_response(origin_not_allowed().error_response()));
    }
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key("Access-Control-Request-Method");
    if preflight {
        let allowed = match preflight_rule(&state, client_key.as_deref(), req.path(), &origin).await
        {
            Some(allowed) => allowed,
            None => server_allows(&state, &origin),
        };
        let response = if allowed {
            let mut r = HttpResponse::NoContent();
            r.insert_header(("Access-Control-Allow-Methods", ALLOW_METHODS))
                .insert_header(("Access-Control-Allow-Headers", ALLOW_HEADERS))
                .insert_header(("Access-Control-Max-Age", "600"));
            with_origin(r.finish(), &origin)
        } else {
            origin_not_allowed().error_response()
        };
        return Ok(req.into_response(response));
    }
    let response = next.call(req).await?.map_into_boxed_body();
    if client_request || server_allows(&state, &origin) {
        let (req, res) = response.into_parts();
        return Ok(ServiceResponse::new(req, with_origin(res, &origin)));
    }
    Ok(response)
}

/// What decides a preflight from `origin`, before the server's own list: the allowed
/// origins of the account behind a `client_key=` in the query, else those of the
/// owners of the topics the path reaches (§7). `None` when neither has a list.
async fn preflight_rule(
    state: &AppState,
    client_key: Option<&str>,
    path: &str,
    origin: &str,
) -> Option<bool> {
    if let Some(key) = client_key {
        if let Ok(Some(account)) = state.auth.client(key).await {
            if !account.origins.is_empty() {
                return Some(account.check_origin(Some(origin)).is_ok());
            }
        }
    }
    let topics = topics_of(path);
    if topics.is_empty() {
        return None;
    }
    state.owners_allow(&topics, origin).await.ok().flatten()
}

/// At most this many topics of one path are looked up for a preflight.
const MAX_PREFLIGHT_TOPICS: usize = 16;

/// The topics a path reaches: `/{topic}` (publish), `/{topics}/{transport}`,
/// `/{topics}/auth` and `/api/topics/{topic}/…`; none for any other path.
fn topics_of(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let names = match segments.as_slice() {
        ["api", "topics", topic, ..] => *topic,
        [topics] | [topics, "sse" | "json" | "raw" | "ws" | "auth"] => *topics,
        _ => return Vec::new(),
    };
    names
        .split(',')
        .filter(|name| check_topic_name(name).is_ok())
        .take(MAX_PREFLIGHT_TOPICS)
        .map(String::from)
        .collect()
}

fn is_websocket_upgrade(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn server_allows(state: &AppState, origin: &str) -> bool {
    (state.live.get().cors.allowed_origins.iter()).any(|o| o == "*" || o == origin)
}

fn query_client_key(query: &str) -> Option<String> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .ok()?
        .into_inner()
        .into_iter()
        .find(|(k, _)| k == "client_key")
        .map(|(_, v)| v)
}

fn with_origin(mut response: HttpResponse, origin: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    response
}
