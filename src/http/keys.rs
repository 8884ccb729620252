//! API keys: create, list (prefix only), regenerate, revoke.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::paging::{self, PageQuery};
use super::{resource, AppState};
use crate::auth::accounts::{self, NewApiKey};
use crate::auth::Principal;
use crate::cluster::Change;
use crate::config::Quota;
use crate::db;
use crate::db::keys::ApiKeyRow;
use crate::error::{ApiError, ApiResult};
use crate::util::{now_unix, parse_rfc3339, rfc3339, rfc3339_opt};

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
#[derive(Serialize)]
pub struct KeyView {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    name: String,
    prefix: String,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
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

#[derive(Deserialize)]
struct CreateKey {
    name: Option<String>,
    expires_at: Option<String>,
}

/// An optional RFC 3339 expiry that must lie in the future.
pub fn parse_expiry(text: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(text) = text else { return Ok(None) };
    let at = parse_rfc3339(text)
        .ok_or_else(|| ApiError::Unprocessable("expires_at must be an RFC 3339 time".into()))?;
    if at <= now_unix() {
        return Err(ApiError::Unprocessable(
            "expires_at must be in the future".into(),
        ));
    }
    Ok(Some(at))
}

/// A name for a key or token: 1-128 characters.
pub fn check_name(name: Option<String>, default: &str) -> ApiResult<String> {
    let name = name
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| default.into());
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::Unprocessable(
            "name must be 1-128 characters".into(),
        ));
    }
    Ok(name)
}

async fn create(
    principal: Principal,
    body: web::Json<CreateKey>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user = principal.account()?;
    let body = body.into_inner();
    let expires_at = parse_expiry(body.expires_at.as_deref())?;
    let name = check_name(body.name, "API key")?;
    let within = state.creation(user, Quota::ApiKeys)?;
    let key = state
        .db(move |conn| {
            within.create(conn, |conn| {
                accounts::create_api_key(conn, &within.owner_id, &name, expires_at)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(KeyView::created(key)))
}

async fn list(
    principal: Principal,
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    let page = query.page()?;
    let wanted = page.clone();
    let auth = state.auth.clone();
    let rows = state
        .db(move |conn| {
            auth.usage().flush(conn);
            Ok(db::keys::keys_of(conn, &user_id, &wanted)?)
        })
        .await?;
    let position = |r: &ApiKeyRow| (r.created_at, r.id.clone());
    let view = |r| KeyView::from_row(r, None);
    Ok(paging::respond(&req, &page, rows, position, view))
}

async fn regenerate(
    principal: Principal,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    // A new secret is no new key (the quota is unchanged), but it is a creation.
    state.limits.check_creation(&user_id)?;
    let id = id.into_inner();
    let key_id = id.clone();
    let key = state
        .db(move |conn| accounts::regenerate_api_key(conn, &user_id, &key_id))
        .await?;
    state.key_revoked(&id);
    Ok(HttpResponse::Ok().json(KeyView::created(key)))
}

async fn revoke(
    principal: Principal,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    let id = id.into_inner();
    let key_id = id.clone();
    let deleted = state
        .db(move |conn| Ok(db::keys::delete_key(conn, &user_id, &key_id)?))
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found("API key"));
    }
    state.key_revoked(&id);
    Ok(HttpResponse::NoContent().finish())
}

impl AppState {
    /// The old secret of key `id` stops working now, also for live subscriptions.
    fn key_revoked(&self, id: &str) {
        self.changed(Change::ApiKeyRevoked { id: id.to_string() });
    }
}
