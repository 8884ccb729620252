//! The web app's session (API.md §11): with `X-Tidings-Session: cookie` the refresh
//! token travels in the `tidings_refresh` cookie (`HttpOnly`, `SameSite=Strict`,
//! `Path=/auth`, `Secure` over TLS), never in a body the page's scripts could read.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponseBuilder};

/// The refresh token's cookie.
pub const COOKIE: &str = "tidings_refresh";
/// The request header that asks for the cookie session, and its value.
const SESSION_HEADER: &str = "X-Tidings-Session";
const SESSION_COOKIE: &str = "cookie";

/// Whether the request asks for its refresh token in the cookie.
pub fn wants_cookie(req: &HttpRequest) -> bool {
    (req.headers().get(SESSION_HEADER))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(SESSION_COOKIE))
}

/// The refresh token the request's cookie holds.
pub fn refresh_cookie(req: &HttpRequest) -> Option<String> {
    (req.headers().get_all(header::COOKIE))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// Sets the cookie to `token`, expiring after `max_age_secs` (with the token).
pub fn set_refresh(
    response: &mut HttpResponseBuilder,
    req: &HttpRequest,
    token: &str,
    max_age_secs: u64,
) {
    response.append_header((header::SET_COOKIE, cookie(req, token, max_age_secs)));
    response.insert_header((header::CACHE_CONTROL, "no-store"));
}

/// Clears the cookie (logging out).
pub fn clear_refresh(response: &mut HttpResponseBuilder, req: &HttpRequest) {
    response.append_header((header::SET_COOKIE, cookie(req, "", 0)));
}

fn cookie(req: &HttpRequest, value: &str, max_age_secs: u64) -> String {
    let secure = match req.connection_info().scheme() {
        "https" => "; Secure",
        _ => "",
    };
    format!(
        "{COOKIE}={value}; Max-Age={max_age_secs}; Path=/auth; HttpOnly; SameSite=Strict{secure}"
    )
}
