//! Accounts: register, login, refresh, logout, and `GET /api/me`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::keys::KeyView;
use super::{client_ip, json_config, resource, AppState};
use crate::auth::accounts::{self, NewUser};
use crate::auth::{Principal, UserInfo};
use crate::config::Registration;
use crate::db::users::UserRow;
use crate::error::{ApiError, ApiResult};
use crate::limits::PerIp;
use crate::util::{now_unix, rfc3339};

/// Account request bodies are small: the longest valid register body (a 254-byte
/// email, a 64-byte username and a 1024-byte password, every byte escaped as
/// `\uXXXX`) fits with room to spare.
const BODY_LIMIT: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let auth = |path| resource(path).app_data(json_config(BODY_LIMIT));
    cfg.service(auth("/auth/register").route(web::post().to(register)))
        .service(auth("/auth/login").route(web::post().to(login)))
        .service(auth("/auth/refresh").route(web::post().to(refresh)))
        .service(auth("/auth/logout").route(web::post().to(logout)))
        .service(resource("/api/me").route(web::get().to(me)));
}

#[derive(Deserialize)]
pub struct RegisterRequest {
    email: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
}

impl AppState {
    fn tokens(&self, user_id: &str, refresh_token: String) -> Tokens {
        let ttl = self.config.auth.access_token_ttl.as_secs() as i64;
        Tokens {
            access_token: self.auth.jwt().issue(user_id, now_unix(), ttl),
            refresh_token,
            token_type: "bearer",
        }
    }

    fn refresh_ttl(&self) -> i64 {
        self.config.auth.refresh_token_ttl.as_secs() as i64
    }

    /// Charges one request of kind `what` to the client's IP.
    fn charge_ip(&self, what: PerIp, req: &HttpRequest) -> ApiResult<()> {
        match client_ip(req, self.config.behind_proxy) {
            Some(ip) => self.limits.check_ip(what, ip).map(drop),
            None => Ok(()),
        }
    }
}

async fn register(
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    if state.config.registration == Registration::Closed {
        return Err(ApiError::ForbiddenBecause("Registration is closed"));
    }
    state.charge_ip(PerIp::Register, &req)?;
    let tier = state.config.limits.default_tier.clone();
    let refresh_ttl = state.refresh_ttl();
    let (user, key, refresh) = state
        .db(move |conn| {
            let new = NewUser {
                email: &body.email,
                username: &body.username,
                password: &body.password,
                tier: &tier,
            };
            let user = accounts::create_user(conn, &new)?;
            let key = accounts::create_api_key(conn, &user.id, "Default", None)?;
            let refresh = accounts::issue_refresh(conn, &user.id, None, refresh_ttl)?;
            Ok((user, key, refresh))
        })
        .await?;
    let tokens = state.tokens(&user.id, refresh);
    Ok(HttpResponse::Created().json(json!({
        "user": {"id": user.id, "email": user.email, "username": user.username, "tier": user.tier},
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": tokens.token_type,
        "api_key": KeyView::created(key),
    })))
}

/// Limited per IP (every attempt) and per email (failed attempts: while an email is
/// over its quota even the right password is refused, until the quota refills).
async fn login(
    req: HttpRequest,
    body: web::Json<LoginRequest>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    state.charge_ip(PerIp::Login, &req)?;
    let attempt = state.limits.login_attempt(&body.email)?;
    let refresh_ttl = state.refresh_ttl();
    let logged_in: ApiResult<(UserRow, String)> = state
        .db(move |conn| {
            let user = accounts::login(conn, &body.email, &body.password)?;
            let refresh = accounts::issue_refresh(conn, &user.id, None, refresh_ttl)?;
            Ok((user, refresh))
        })
        .await;
    let failed = matches!(logged_in, Err(ApiError::IncorrectLogin));
    state.limits.login_done(attempt, failed);
    let (user, refresh) = logged_in?;
    let tokens = state.tokens(&user.id, refresh);
    Ok(HttpResponse::Ok().json(json!({
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": tokens.token_type,
        "user": {"id": user.id, "email": user.email, "username": user.username},
    })))
}

async fn refresh(
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    state.charge_ip(PerIp::Refresh, &req)?;
    let refresh_ttl = state.refresh_ttl();
    let (user_id, next) = state
        .db(move |conn| accounts::rotate_refresh(conn, &body.refresh_token, refresh_ttl))
        .await?;
    state
        .auth
        .user(&user_id)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    Ok(HttpResponse::Ok().json(state.tokens(&user_id, next)))
}

async fn logout(
    principal: Principal,
    body: web::Json<RefreshRequest>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    state
        .db(move |conn| accounts::revoke_refresh(conn, &body.refresh_token, &user_id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn me(principal: Principal, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let user: &UserInfo = principal.account()?;
    Ok(HttpResponse::Ok().json(json!({
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "tier": user.tier,
        "publish_limit": state.config.tier_limit(&user.tier),
        "created_at": rfc3339(user.created_at),
    })))
}
