//! Web Push: the VAPID public key, and the account's push subscriptions.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{resource, AppState, Json};
use crate::auth::Principal;
use crate::error::{ApiResult, Detail};
use crate::service::webpush::{NewSubscription, Subscription};
use crate::util::rfc3339;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/webpush").route(web::get().to(key)))
        .service(
            resource("/api/webpush/subscriptions")
                .route(web::get().to(list))
                .route(web::post().to(create)),
        )
        .service(resource("/api/webpush/subscriptions/{id}").route(web::delete().to(delete)));
}

#[derive(Serialize, ToSchema)]
pub struct VapidKey {
    /// The VAPID public key: an uncompressed P-256 point, base64url
    /// (`PushManager.subscribe`'s `applicationServerKey`).
    public_key: String,
}

#[utoipa::path(get, path = "/api/webpush", tag = "webpush-key", operation_id = "webpush_key",
    responses((status = 200, description = "The server's VAPID public key", body = VapidKey)))]
pub async fn key(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(VapidKey {
        public_key: state.push.public_key().to_string(),
    })
}

/// A browser's `PushSubscription.keys`.
#[derive(Deserialize, ToSchema)]
pub struct PushKeys {
    /// The browser's P-256 public key, base64url.
    p256dh: String,
    /// Its 16-byte authentication secret, base64url.
    auth: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateSubscription {
    /// The push service's URL for this browser: `https` on a public address (unless
    /// `webhooks.allow_private`).
    endpoint: String,
    keys: PushKeys,
    /// Topics whose messages are pushed; the account must be allowed to read each.
    topics: Vec<String>,
}

/// A push subscription as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = PushSubscription)]
pub struct SubscriptionView {
    id: String,
    endpoint: String,
    topics: Vec<String>,
    created_at: String,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.row.id,
            endpoint: s.row.endpoint,
            topics: s.topics,
            created_at: rfc3339(s.row.created_at),
        }
    }
}

#[utoipa::path(post, path = "/api/webpush/subscriptions", tag = "webpush",
    operation_id = "create_push_subscription",
    request_body = CreateSubscription,
    responses(
        (status = 201, description = "The subscription", body = SubscriptionView),
        (status = 400, description = "`Push endpoint not allowed`, `Invalid topic name (use 1-64 letters, digits, '_' or '-')`", body = Detail),
        (status = 403, description = "`Insufficient permissions to access this topic`", body = Detail),
        (status = 422, description = "`topics must not be empty`, `keys must hold p256dh (a P-256 public key) and auth (16 bytes), base64url`", body = Detail),
    ))]
pub async fn create(
    principal: Principal,
    body: Json<CreateSubscription>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let new = NewSubscription {
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
        topics: body.topics,
    };
    let made = state.subscribe_push(&principal, new).await?;
    Ok(HttpResponse::Created().json(SubscriptionView::from(made)))
}

#[utoipa::path(get, path = "/api/webpush/subscriptions", tag = "webpush",
    operation_id = "list_push_subscriptions",
    responses((status = 200, description = "The account's push subscriptions, oldest first", body = [SubscriptionView])))]
pub async fn list(principal: Principal, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let all = state.push_subscriptions(&principal).await?;
    let views: Vec<SubscriptionView> = all.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(delete, path = "/api/webpush/subscriptions/{id}", tag = "webpush",
    operation_id = "delete_push_subscription",
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted: nothing more is pushed to it"),
        (status = 404, description = "`Push subscription not found`", body = Detail),
    ))]
pub async fn delete(
    principal: Principal,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    state.unsubscribe_push(&principal, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
