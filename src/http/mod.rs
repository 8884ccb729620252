//! HTTP surface: routes, shared state, and the JSON error handling for everything
//! actix itself rejects. Handlers stay thin; the work lives in `broker`, `db`, `auth`.

mod accounts;
mod admission;
mod client_auth;
mod cors;
mod deadline;
pub mod front;
pub mod head;
mod health;
mod keys;
mod paging;
mod publish;
mod stall;
mod subscribe;
mod timer;
mod topics;

use std::future::Future;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::{ready, Either, LocalBoxFuture, Ready};

use crate::auth::credential::Credential;
use crate::auth::permissions::{authorize, Action, Grant, TopicInfo};
use crate::auth::{Auth, Principal, UserInfo};
use crate::broker::Broker;
use crate::cluster::{Change, Cluster};
use crate::config::{Config, Quota};
use crate::db::quotas::Within;
use crate::db::writer::Writer;
use crate::db::Pool;
use crate::error::{ApiError, ApiResult, Detail};
use crate::limits::{Limits, PerIp};
use crate::metrics::METRICS;
pub use admission::raise_file_limit;
pub use cors::cors;

/// What every handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub broker: Broker,
    pub writer: Writer,
    pub auth: Auth,
    pub limits: Limits,
    /// Set in cluster mode (`redis_url`).
    pub cluster: Option<Cluster>,
}

impl AppState {
    /// Applies a change to credentials or topics here and, in cluster mode, on every
    /// other node.
    pub fn changed(&self, change: Change) {
        change.apply(&self.auth, &self.broker);
        if let Some(cluster) = self.cluster.clone() {
            actix_web::rt::spawn(crate::cores::block(move || cluster.announce(change)));
        }
    }

    /// Leave for `owner` to create one more of `quota`: one creation off its rate (429
    /// when spent), and the tier's quota that the creation must fit in.
    pub fn creation(&self, owner: &UserInfo, quota: Quota) -> Result<Within, ApiError> {
        self.limits.check_creation(&owner.id)?;
        Ok(Within {
            owner_id: owner.id.clone(),
            quota,
            limit: self.config.quota(&owner.tier, quota),
        })
    }

    /// Where stored messages are read from.
    pub fn history(&self) -> crate::db::messages::History {
        crate::db::messages::History::new(self.pool.clone(), self.writer.recent().clone())
    }

    /// Runs blocking database work on the blocking pool with a pooled connection.
    pub async fn db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::Conn) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        crate::cores::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// Checks `principal` against a topic's permissions; also returns the topic
    /// (`None` when it does not exist yet).
    pub async fn authorize_topic(
        &self,
        principal: &Principal,
        topic: &str,
        action: Action,
    ) -> Result<(Grant, Option<Arc<TopicInfo>>), ApiError> {
        let info = self.auth.topic(topic).await?;
        let grant = authorize(principal, topic, info.as_ref(), action)
            .inspect_err(|e| METRICS.auth_failed(e))?;
        Ok((grant, info))
    }
}

/// What [`limit_by_ip`] found the request's credentials to be; the `Principal`
/// extractor takes it rather than resolving them a second time.
struct Resolved(ApiResult<Principal>);

/// The request's credentials (and its `Origin`, checked for client credentials),
/// resolved through the caches.
fn resolve(
    state: web::Data<AppState>,
    req: &HttpRequest,
) -> impl Future<Output = ApiResult<Principal>> + 'static {
    let credentials = Credential::all_from_request(req);
    let origin = header_text(req, &[header::ORIGIN]).ok().flatten();
    async move {
        state
            .auth
            .resolve_all(credentials?, origin.as_deref())
            .await
    }
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
    actix_web::App::new()
        .app_data(state)
        .wrap(deadline::BodyDeadline {
            timeout: body_timeout,
        })
        .wrap(actix_web::middleware::from_fn(limit_by_ip))
        .wrap(json_errors())
        .wrap(actix_web::middleware::from_fn(cors))
        .configure(configure)
}

/// Registers every route. Order matters: fixed paths before the patterns that would
/// also match them.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config(JSON_BODY_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            ApiError::bad_request(format!("Invalid query string: {e}")).into()
        }))
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::bad_request(format!("Invalid path: {e}")).into()),
        )
        .service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .service(resource("/").route(web::post().to(publish::publish_json)))
        // Every other fixed path has two segments or more, so a publish is matched
        // here without trying the account routes' patterns first.
        .service(
            resource("/{topic}")
                .route(web::post().to(publish::publish))
                .route(web::put().to(publish::publish)),
        )
        .configure(accounts::configure)
        .configure(client_auth::configure)
        .configure(keys::configure)
        .configure(topics::configure)
        .service(resource("/api/topics/{topic}/messages").route(web::get().to(subscribe::history)))
        .service(resource("/{topics}/{transport}").route(web::get().to(subscribe::subscribe)))
        .default_service(web::to(not_found));
}

/// A resource whose wrong methods answer 405 in JSON.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("Not found".into()))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
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
        J::ContentType => ApiError::bad_request("Expected Content-Type: application/json"),
        J::Payload(e) => e.into(),
        other => ApiError::bad_request(format!("Invalid JSON body: {other}")),
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
                .map_err(|_| ApiError::bad_request(format!("Header {name} is not valid UTF-8")));
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

/// Requests without a valid credential count against their IP's quota, on every path
/// (CORS preflights excepted): one that presents none, and one whose credential fails
/// (counted in the metrics too), so a junk credential is no way around the limit. The
/// credentials are resolved here once; the handler's `Principal` reuses the answer.
pub async fn limit_by_ip(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| req.method() != actix_web::http::Method::OPTIONS) else {
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
