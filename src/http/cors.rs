//! CORS: preflight answers and `Access-Control-*` headers. Requests with client
//! credentials follow their account's allowed origins (checked when the credential
//! is resolved); all others follow the server's `cors.allowed_origins`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};

use super::AppState;
use crate::auth::credential::X_CLIENT_KEY;
use crate::error::ApiError;

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-API-Key, X-Topic-Token, \
    X-Client-Key, X-User-Key, X-User-Id, X-Title, X-Priority, X-Tags, Last-Event-ID";
const EXPOSE_HEADERS: &str =
    "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-Next-Cursor, Link";
const ORIGIN_NOT_ALLOWED: ApiError = ApiError::ForbiddenBecause("Origin not allowed");

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
        return Ok(req.into_response(ORIGIN_NOT_ALLOWED.error_response()));
    }
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key("Access-Control-Request-Method");
    if preflight {
        let allowed = match &client_key {
            Some(key) => match state.auth.client(key).await {
                Ok(Some(account)) if !account.origins.is_empty() => {
                    account.check_origin(Some(&origin)).is_ok()
                }
                _ => server_allows(&state, &origin),
            },
            None => server_allows(&state, &origin),
        };
        let response = if allowed {
            let mut r = HttpResponse::NoContent();
            r.insert_header(("Access-Control-Allow-Methods", ALLOW_METHODS))
                .insert_header(("Access-Control-Allow-Headers", ALLOW_HEADERS))
                .insert_header(("Access-Control-Max-Age", "600"));
            with_origin(r.finish(), &origin)
        } else {
            ORIGIN_NOT_ALLOWED.error_response()
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

fn is_websocket_upgrade(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn server_allows(state: &AppState, origin: &str) -> bool {
    state
        .config
        .cors
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o == origin)
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
