//! The web app (API.md §11): the built bundle of `web/` (`web/dist/`, committed), embedded
//! in the binary and served under `/app/`, precompressed, with long cache lifetimes on
//! hashed names and a strict Content-Security-Policy on its page.

use std::borrow::Cow;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{guard, web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::resource;
use crate::error::ApiError;

/// The files Vite built, each beside its `.br` and `.gz` forms.
#[derive(rust_embed::Embed)]
#[folder = "web/dist/"]
struct Bundle;

/// Where the app lives.
pub const PREFIX: &str = "/app/";

/// The one page; every app path that is not a file is a route of the app itself.
const INDEX: &str = "index.html";

/// Vite's output folder for content-hashed names: safe to cache for good.
const HASHED: &str = "assets/";

/// Only the app's own files and API: no inline script, no style attributes in
/// markup, nothing from another origin, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Only a GET claims `/app`: anything else goes on to `/{topic}`, which refuses
    // the reserved name.
    cfg.route("/app", web::get().to(to_app)).service(
        resource("/app/{path:.*}")
            .guard(guard::fn_guard(|ctx| {
                !is_subscription(ctx.head().uri.path())
            }))
            .route(web::get().to(serve))
            .route(web::head().to(serve)),
    );
}

/// `/app/json` and the like subscribe to a topic named `app`: they go on to the
/// subscription routes, which refuse the reserved name as for any other. The app's own
/// routes never take these names.
fn is_subscription(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| ["sse", "json", "raw", "ws", "auth"].contains(&rest))
}

/// Whether `path` belongs to the app: its files cost nothing to serve and carry no
/// credential, so loading the page is not charged to the client's anonymous quota.
pub fn is_app_path(path: &str) -> bool {
    (path == "/app" || path.starts_with(PREFIX)) && !is_subscription(path)
}

/// `GET /` from a browser (it asks for HTML first) goes to the app; every other `GET /`
/// passes on to the route.
pub async fn redirect_browsers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() == Method::GET && req.path() == "/" && wants_html(req.headers()) {
        return Ok(req.into_response(found(PREFIX)));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn found(location: &'static str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn to_app() -> HttpResponse {
    found(PREFIX)
}

/// A file of the bundle, or `index.html` for the app's own routes. A missing hashed
/// asset is a 404: an old page asking for a file of a newer build must not get HTML.
async fn serve(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    let name = if path.is_empty() || (Bundle::get(&path).is_none() && !path.starts_with(HASHED)) {
        INDEX
    } else {
        path.as_str()
    };
    let (file, encoding) = pick(name, req.headers()).ok_or_else(ApiError::no_route)?;
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((header::CONTENT_TYPE, content_type(name)))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if name.starts_with(HASHED) {
        answer.insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"));
    } else {
        answer.insert_header((header::CACHE_CONTROL, "no-cache"));
    }
    if name.ends_with(".html") {
        answer.insert_header((header::CONTENT_SECURITY_POLICY, CSP));
    }
    if let Some(encoding) = encoding {
        answer.insert_header((header::CONTENT_ENCODING, encoding));
    }
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    if unchanged {
        return Ok(answer.status(StatusCode::NOT_MODIFIED).finish());
    }
    // Embedded files are static: sent without a copy.
    let body = match file.data {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    Ok(answer.body(body))
}

/// The best form of `name` the client accepts: brotli, then gzip, then as built.
fn pick(
    name: &str,
    headers: &HeaderMap,
) -> Option<(rust_embed::EmbeddedFile, Option<&'static str>)> {
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for (encoding, suffix) in [("br", ".br"), ("gzip", ".gz")] {
        if accepts(accepted, encoding) {
            if let Some(file) = Bundle::get(&format!("{name}{suffix}")) {
                return Some((file, Some(encoding)));
            }
        }
    }
    Bundle::get(name).map(|file| (file, None))
}

/// Whether an `Accept-Encoding` value lists `encoding` (or `*`) without `q=0`.
fn accepts(accept_encoding: &str, encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case(encoding) || coding == "*") && !refused
    })
}

fn content_type(name: &str) -> HeaderValue {
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    HeaderValue::from_static(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    })
}

#[cfg(test)]
mod tests {
    use super::accepts;

    #[test]
    fn accept_encoding_lists_and_refusals() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=0.8", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("deflate", "br"));
        assert!(accepts("*", "gzip"));
        assert!(!accepts("", "gzip"));
    }
}
