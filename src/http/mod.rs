//! HTTP surface: routes, shared state, and the JSON error handling for everything
//! actix itself rejects. Handlers stay thin: they parse the request, call the domain
//! (`service`) and render its result.

mod access_log;
mod accounts;
mod admission;
mod app;
mod client_auth;
mod cors;
mod deadline;
pub mod front;
pub mod head;
mod health;
mod io;
mod keys;
pub mod metrics_listener;
mod openapi;
mod paging;
mod publish;
mod session;
mod sign_in;
mod stall;
mod subscribe;
mod timer;
pub mod tls;
mod topics;
mod webpush;

use std::future::Future;
use std::ops::Deref;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::{ready, Either, LocalBoxFuture, Ready};

use crate::auth::credential::Credential;
use crate::auth::Principal;
use crate::error::detail;
use crate::error::{ApiError, ApiResult, Detail};
use crate::limits::{is_probe, PerIp};
use crate::metrics::METRICS;
use crate::service::Domain;
pub use admission::raise_file_limit;
pub use cors::cors;

/// What every handler can reach: the domain (through `Deref`).
pub struct AppState {
    pub domain: Domain,
}

impl Deref for AppState {
    type Target = Domain;

    fn deref(&self) -> &Domain {
        &self.domain
    }
}

/// What [`limit_by_ip`] found the request's credentials to be; the `Principal`
/// extractor takes it rather than resolving them a second time.
struct Resolved(ApiResult<Principal>);

/// The request's credentials (and its `Origin`, checked for client credentials),
/// resolved through the caches; a password is a login attempt from the client's IP.
fn resolve(
    state: web::Data<AppState>,
    req: &HttpRequest,
) -> impl Future<Output = ApiResult<Principal>> + 'static {
    let credentials = Credential::all_from_request(req);
    req.extensions_mut()
        .insert(access_log::Presented::of(&credentials));
    let origin = header_text(req, &[header::ORIGIN]).ok().flatten();
    let ip = client_ip(req, state.config.behind_proxy);
    async move { state.identify(credentials?, origin.as_deref(), ip).await }
}

/// Every handler that takes a `Principal` gets the request's credential checked.
impl actix_web::FromRequest for Principal {
    type Error = ApiError;
    type Future = Either<Ready<ApiResult<Self>>, LocalBoxFuture<'static, ApiResult<Self>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        if let Some(Resolved(resolved)) = req.extensions_mut().remove() {
            return Either::Left(ready(resolved));
        }
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Either::Left(ready(Err(ApiError::Internal)));
        };
        let resolved = resolve(state, req);
        Either::Right(Box::pin(async move {
            resolved.await.inspect_err(|e| METRICS.auth_failed(e))
        }))
    }
}

/// The application: shared state, the middleware every answer passes, and the routes.
pub fn app(
    state: web::Data<AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let body_timeout = state.config.limits.body_timeout;
    let behind_proxy = state.config.behind_proxy;
    actix_web::App::new()
        .app_data(state)
        .wrap(deadline::BodyDeadline {
            timeout: body_timeout,
        })
        .wrap(actix_web::middleware::from_fn(limit_by_ip))
        .wrap(actix_web::middleware::from_fn(app::redirect_browsers))
        .wrap(json_errors())
        .wrap(actix_web::middleware::from_fn(cors))
        // Outermost: it logs every answer as it leaves.
        .wrap(access_log::AccessLog { behind_proxy })
        .configure(configure)
}

/// Registers every route. Order matters: fixed paths before the patterns that would
/// also match them.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config(JSON_BODY_LIMIT))
        .app_data(
            web::QueryConfig::default().error_handler(|e, _| ApiError::invalid_query(e).into()),
        )
        .app_data(web::PathConfig::default().error_handler(|e, _| ApiError::invalid_path(e).into()))
        .service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        // Before `/{topic}` and the transports' pattern, which would also match.
        .configure(app::configure)
        .service(
            resource("/")
                .name(publish::ROUTES[0])
                .route(web::get().to(openapi::index))
                .route(web::post().to(publish::publish_json)),
        )
        .service(resource(openapi::DOCUMENT_PATH).route(web::get().to(openapi::document)))
        // Every other fixed path has two segments or more, so a publish is matched
        // here without trying the account routes' patterns first.
        .service(
            resource("/{topic}")
                .name(publish::ROUTES[1])
                .route(web::post().to(publish::publish))
                .route(web::put().to(publish::publish)),
        )
        .configure(accounts::configure)
        // After the account routes, whose fixed paths `/auth/{name}` would also match.
        .configure(sign_in::configure)
        .configure(client_auth::configure)
        .configure(keys::configure)
        .configure(webpush::configure)
        .configure(topics::configure)
        .service(resource("/api/topics/{topic}/messages").route(web::get().to(subscribe::history)))
        // ntfy's clients ask before subscribing; a fixed last segment, so before the
        // transports' pattern.
        .service(resource("/{topics}/auth").route(web::get().to(subscribe::may_subscribe)))
        .service(resource("/{topics}/{transport}").route(web::get().to(subscribe::subscribe)))
        .default_service(web::to(not_found));
}

/// A resource whose wrong methods answer 405 in JSON.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route())
}

/// A 405 names the methods the route answers (`Allow`, as RFC 9110 asks).
async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::from_error(ApiError::MethodNotAllowed);
    let allow = req
        .match_pattern()
        .and_then(|pattern| openapi::allowed_methods(&pattern));
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    response
}

/// A JSON body that must be an object: serde alone would also read a struct from an
/// array of its fields' values (`[null, null]`), which no client means.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        type Object = serde_json::Map<String, serde_json::Value>;
        let object = <web::Json<Object> as actix_web::FromRequest>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(object) = object.await?;
            serde_json::from_value(serde_json::Value::Object(object))
                .map(Json)
                .map_err(|e| json_error(actix_web::error::JsonPayloadError::Deserialize(e)))
        })
    }
}

/// JSON bodies beyond this answer 413 (routes with smaller bodies set their own).
const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// JSON bodies of at most `limit` bytes, errors in the API's form.
pub(crate) fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| json_error(e))
}

fn json_error(e: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match e {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::TooLarge,
        J::ContentType => ApiError::bad_request(detail::EXPECTED_JSON),
        J::Payload(e) => e.into(),
        other => ApiError::invalid_json(other),
    };
    api.into()
}

/// Last line of defence: any error response that is not already JSON (from actix
/// itself or a middleware) gets a `{"detail"}` body with its status's reason.
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let detail = status.canonical_reason().unwrap_or("Error");
        let (req, _) = res.into_parts();
        let body = HttpResponse::build(status).json(Detail { detail });
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, body).map_into_right_body(),
        ))
    })
}

/// A request header as text; a value that is not valid text is a 400.
pub fn header_text(
    req: &HttpRequest,
    names: &[header::HeaderName],
) -> Result<Option<String>, ApiError> {
    for name in names {
        if let Some(value) = req.headers().get(name) {
            return String::from_utf8(value.as_bytes().to_vec())
                .map(Some)
                .map_err(|_| ApiError::header_not_utf8(name));
        }
    }
    Ok(None)
}

/// The client's IP: the peer address, or behind a proxy the right-most
/// `X-Forwarded-For` hop (the one our proxy added): the last hop of the last header,
/// since a client may send headers of its own before the proxy's.
pub fn client_ip(req: &HttpRequest, behind_proxy: bool) -> Option<std::net::IpAddr> {
    if behind_proxy {
        let forwarded = req
            .headers()
            .get_all("X-Forwarded-For")
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|hop| hop.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// Paths never rate-limited: the probes, the OpenAPI document and the web app's files
/// (static, served from memory: they cost no more than a probe, and a browser loads
/// several at once).
pub(crate) fn unlimited(path: &str) -> bool {
    is_probe(path) || path == openapi::DOCUMENT_PATH || app::is_app_path(path)
}

/// Requests without a valid credential count against their IP's quota, on every path
/// (CORS preflights and the unlimited paths excepted: the probes `/health` and
/// `/metrics`, the OpenAPI document, the web app's files under `/app/`): one that
/// presents none, and one whose credential fails (counted in the metrics too), so a
/// junk credential is no way around the limit. The credentials are resolved here once;
/// the handler's `Principal` reuses the answer.
pub async fn limit_by_ip(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let exempt = req.method() == actix_web::http::Method::OPTIONS || unlimited(req.path());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| !exempt) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let resolved = resolve(state.clone(), req.request()).await;
    let valid = match &resolved {
        Ok(principal) => !matches!(principal, Principal::Anonymous),
        Err(e) => {
            METRICS.auth_failed(e);
            false
        }
    };
    if !valid {
        if let Some(ip) = client_ip(req.request(), state.config.behind_proxy) {
            if let Err(e) = state.limits.check_ip(PerIp::Anonymous, ip) {
                return Ok(req.error_response(e));
            }
        }
    }
    req.extensions_mut().insert(Resolved(resolved));
    Ok(next.call(req).await?.map_into_boxed_body())
}
