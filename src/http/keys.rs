//! API keys: create, list (prefix only), regenerate, revoke.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::paging::{self, PageQuery};
use super::{resource, AppState, Json};
use crate::auth::Principal;
use crate::db::keys::ApiKeyRow;
use crate::error::{ApiResult, Detail};
use crate::service::keys::NewApiKey;
use crate::util::{now_unix, rfc3339, rfc3339_opt};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/keys")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(resource("/api/keys/{id}/regenerate").route(web::post().to(regenerate)))
    .service(resource("/api/keys/{id}").route(web::delete().to(revoke)));
}

/// An API key as the API shows it; `key` only right after it was made.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct KeyView {
    id: String,
    /// The secret (`noti_…`): only when the key is made or regenerated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    key: Option<String>,
    name: String,
    /// The first 8 characters after `noti_`.
    prefix: String,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    /// False once `expires_at` has passed.
    active: bool,
}

impl KeyView {
    fn from_row(row: ApiKeyRow, key: Option<String>) -> Self {
        Self {
            active: row.expires_at.is_none_or(|at| at > now_unix()),
            id: row.id,
            key,
            name: row.name,
            prefix: row.prefix,
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339_opt(row.expires_at),
            last_used_at: rfc3339_opt(row.last_used_at),
        }
    }

    pub fn created(new: NewApiKey) -> Self {
        Self::from_row(new.row, Some(new.secret))
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateKey {
    #[schema(min_length = 1, max_length = 128)]
    name: Option<String>,
    /// An RFC 3339 time in the future, or `null` for a key that never expires.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

#[utoipa::path(post, path = "/api/keys", tag = "keys", operation_id = "create_key",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with its secret (shown once)", body = KeyView),
        (status = 403, description = "`Limit reached: api keys`", body = Detail),
        (status = 422, description = "`name must be 1-128 characters`, `expires_at must be an RFC 3339 time`, `expires_at must be in the future`", body = Detail),
    ))]
pub async fn create(
    principal: Principal,
    body: Json<CreateKey>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let key = state
        .create_key(&principal, body.name, body.expires_at.as_deref())
        .await?;
    Ok(HttpResponse::Created().json(KeyView::created(key)))
}

#[utoipa::path(get, path = "/api/keys", tag = "keys", operation_id = "list_keys",
    params(PageQuery),
    responses(
        (status = 200, description = "The account's keys, oldest first, without their secrets; `X-Next-Cursor` and `Link` when more follow", body = [KeyView]),
        (status = 400, description = "`Invalid limit (1-1000)`, `Invalid cursor`", body = Detail),
    ))]
pub async fn list(
    principal: Principal,
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let keys = state.keys(&principal, query.page()).await?;
    let position = |r: &ApiKeyRow| (r.created_at, r.id.clone());
    let view = |r| KeyView::from_row(r, None);
    Ok(paging::respond(&req, &keys.page, keys.rows, position, view))
}

#[utoipa::path(post, path = "/api/keys/{id}/regenerate", tag = "keys", operation_id = "regenerate_key",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key with a new secret; the old one fails at once", body = KeyView),
        (status = 404, description = "`API key not found`", body = Detail),
    ))]
pub async fn regenerate(
    principal: Principal,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let key = state.regenerate_key(&principal, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(KeyView::created(key)))
}

#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys", operation_id = "delete_key",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Deleted; the key fails at once"),
        (status = 404, description = "`API key not found`", body = Detail),
    ))]
pub async fn revoke(
    principal: Principal,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    state.revoke_key(&principal, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
