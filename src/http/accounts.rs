//! Accounts: register, login, refresh, logout (each also in the web app's cookie
//! session, `session.rs`), and `GET /api/me`.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::keys::KeyView;
use super::{client_ip, json_config, resource, session, AppState, Json};
use crate::auth::{Principal, UserInfo};
use crate::error::{ApiError, ApiResult, Detail};
use crate::service::accounts::{LoggedIn, Me, Registered, Tokens};
use crate::util::rfc3339;

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

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(format = Email)]
    email: String,
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,64}$")]
    username: String,
    /// At least 8 characters, at most 1024 bytes.
    #[schema(min_length = 8)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

fn ip(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    client_ip(req, state.config.behind_proxy)
}

/// Answers `status` with `body`, an answer with fresh tokens: as it is, or, when the
/// request asks for the cookie session (§11), with its `refresh_token` moved into the
/// cookie.
pub(super) fn with_tokens(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    body: impl Serialize,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if !session::wants_cookie(req) {
        return response.json(body);
    }
    let mut body = serde_json::to_value(body).unwrap_or_default();
    if let Some(serde_json::Value::String(refresh)) = body
        .as_object_mut()
        .and_then(|fields| fields.remove("refresh_token"))
    {
        let max_age = state.refresh_ttl() as u64;
        session::set_refresh(&mut response, req, &refresh, max_age);
    }
    response.json(body)
}

/// A new pair of tokens as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Tokens)]
pub struct TokensView {
    access_token: String,
    refresh_token: String,
    /// Always `bearer`.
    #[schema(value_type = String)]
    token_type: &'static str,
}

/// An account as registering shows it.
#[derive(Serialize, ToSchema)]
pub struct NewUser {
    pub(super) id: String,
    pub(super) email: String,
    pub(super) username: String,
    pub(super) tier: String,
}

/// `POST /auth/register`: the account, its first tokens and its first API key.
#[derive(Serialize, ToSchema)]
pub struct Registration {
    user: NewUser,
    #[serde(flatten)]
    tokens: TokensView,
    api_key: KeyView,
}

/// An account as logging in shows it.
#[derive(Serialize, ToSchema)]
pub struct LoginUser {
    id: String,
    email: String,
    username: String,
}

/// `POST /auth/login`: a new pair of tokens and whose they are.
#[derive(Serialize, ToSchema)]
pub struct Login {
    #[serde(flatten)]
    tokens: TokensView,
    user: LoginUser,
}

/// `GET /api/me`: the account, its tier and what the tier allows.
#[derive(Serialize, ToSchema)]
pub struct MeView {
    id: String,
    email: String,
    username: String,
    tier: String,
    /// Publishes per minute the tier allows; `null` for unlimited.
    publish_limit: Option<u32>,
    /// What is left of that this minute (publishes that would be accepted now);
    /// `null` for unlimited.
    publish_remaining: Option<u32>,
    created_at: String,
}

impl From<Tokens> for TokensView {
    fn from(tokens: Tokens) -> Self {
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: "bearer",
        }
    }
}

/// The refresh token a request presents: the cookie's in a cookie session (401 `Not
/// authenticated` without one), else the JSON body's.
async fn presented_refresh(req: &HttpRequest, payload: web::Payload) -> actix_web::Result<String> {
    if session::wants_cookie(req) {
        return session::refresh_cookie(req).ok_or_else(|| ApiError::NotAuthenticated.into());
    }
    let body = Json::<RefreshRequest>::from_request(req, &mut payload.into_inner()).await?;
    Ok(body.into_inner().refresh_token)
}

#[utoipa::path(post, path = "/auth/register", tag = "sign-in",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account, signed in, with its first API key", body = Registration),
        (status = 403, description = "`Registration is closed`", body = Detail),
        (status = 409, description = "`Email already registered`, `Username already taken`", body = Detail),
        (status = 422, description = "An invalid email, username or password (see the error table)", body = Detail),
    ))]
pub async fn register(
    req: HttpRequest,
    body: Json<RegisterRequest>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let Registered { user, key, tokens } = state
        .register(ip(&req, &state), body.email, body.username, body.password)
        .await?;
    Ok(with_tokens(
        &req,
        &state,
        StatusCode::CREATED,
        Registration {
            user: NewUser {
                id: user.id,
                email: user.email,
                username: user.username,
                tier: user.tier,
            },
            tokens: tokens.into(),
            api_key: KeyView::created(key),
        },
    ))
}

#[utoipa::path(post, path = "/auth/login", tag = "sign-in",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Login),
        (status = 401, description = "`Incorrect email or password`", body = Detail),
    ))]
pub async fn login(
    req: HttpRequest,
    body: Json<LoginRequest>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let LoggedIn { user, tokens } = state
        .login(ip(&req, &state), body.email, body.password)
        .await?;
    let answer = Login {
        tokens: tokens.into(),
        user: LoginUser {
            id: user.id,
            email: user.email,
            username: user.username,
        },
    };
    Ok(with_tokens(&req, &state, StatusCode::OK, answer))
}

#[utoipa::path(post, path = "/auth/refresh", tag = "sign-in",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the refresh token given stops working", body = TokensView),
        (status = 401, description = "`Could not validate credentials` (unknown, expired or already rotated: a rotated one revokes its family)", body = Detail),
    ))]
pub async fn refresh(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let refresh_token = presented_refresh(&req, payload).await?;
    let tokens = state.refresh(ip(&req, &state), refresh_token).await?;
    Ok(with_tokens(
        &req,
        &state,
        StatusCode::OK,
        TokensView::from(tokens),
    ))
}

#[utoipa::path(post, path = "/auth/logout", tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "That login session's refresh tokens stop working"),
    ))]
pub async fn logout(
    req: HttpRequest,
    principal: Principal,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let refresh_token = presented_refresh(&req, payload).await?;
    state.logout(&principal, refresh_token).await?;
    let mut response = HttpResponse::NoContent();
    if session::wants_cookie(&req) {
        session::clear_refresh(&mut response, &req);
    }
    Ok(response.finish())
}

#[utoipa::path(get, path = "/api/me", tag = "accounts",
    responses(
        (status = 200, description = "The account", body = MeView),
    ))]
pub async fn me(principal: Principal, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let Me {
        user,
        publish_limit,
        publish_remaining,
    } = state.me(&principal).await?;
    let UserInfo {
        id,
        email,
        username,
        tier,
        created_at,
        ..
    } = user.as_ref().clone();
    Ok(HttpResponse::Ok().json(MeView {
        id,
        email,
        username,
        tier,
        publish_limit,
        publish_remaining,
        created_at: rfc3339(created_at),
    }))
}
