//! Sign-in with OpenID Connect (API.md §12): the providers, a sign-in sent to its
//! provider, and its callback, answered with tokens (JSON) or, when the sign-in asked
//! to end on a page of the web app, with the refresh cookie and a redirect there.

use actix_web::http::{header, StatusCode};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::accounts::{with_tokens, NewUser, TokensView};
use super::keys::KeyView;
use super::{client_ip, resource, session, AppState};
use crate::error::{ApiResult, Detail};
use crate::model::message::Transport;
use crate::service::sign_in::{Callback, SignedIn};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/auth/providers").route(web::get().to(providers)))
        .service(
            resource("/auth/{name}")
                .guard(guard::fn_guard(is_sign_in))
                .route(web::get().to(start)),
        )
        .service(resource("/auth/{name}/callback").route(web::get().to(callback)));
}

/// `/auth/{name}` is a sign-in, except where no provider has the name and a topic
/// route serves it: `/auth/json` stays a stream of the topic `auth`, `/auth/auth`
/// ntfy's access check of it (both refused, `auth` being a reserved name).
fn is_sign_in(ctx: &guard::GuardContext) -> bool {
    let path = ctx.head().uri.path();
    let name = path.rsplit('/').next().unwrap_or_default();
    let provider = (ctx.app_data::<web::Data<AppState>>()).is_some_and(|s| s.sign_in.has(name));
    provider || (Transport::parse(name).is_none() && name != "auth")
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// A path on this server (`/app/…`) to end on, with the refresh cookie set;
    /// without it the callback answers the tokens as JSON.
    redirect_to: Option<String>,
}

/// What a provider sends back (other parameters, such as `error_description`, are
/// ignored).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// The provider's refusal (`access_denied`, …).
    error: Option<String>,
}

/// A provider as `GET /auth/providers` lists it.
#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    name: String,
    /// The text of its button.
    label: String,
    /// Where a sign-in with it starts: `/auth/{name}`.
    login_url: String,
}

/// A sign-in's answer without `redirect_to`: tokens, whose they are, and the first API
/// key of an account the sign-in made.
#[derive(Serialize, ToSchema)]
pub struct SignInView {
    user: NewUser,
    #[serde(flatten)]
    tokens: TokensView,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    api_key: Option<KeyView>,
}

#[utoipa::path(get, path = "/auth/providers", tag = "sign-in",
    responses((status = 200, description = "The configured providers (empty when none)", body = [ProviderView])))]
pub async fn providers(state: web::Data<AppState>) -> HttpResponse {
    let list: Vec<_> = (state.providers().into_iter())
        .map(|p| ProviderView {
            login_url: format!("/auth/{}", p.name),
            name: p.name,
            label: p.label,
        })
        .collect();
    HttpResponse::Ok().json(list)
}

#[utoipa::path(get, path = "/auth/{name}", tag = "sign-in",
    params(("name" = String, Path, description = "The provider's name"), StartQuery),
    responses(
        (status = 302, description = "To the provider's authorization endpoint (PKCE S256, a single-use `state` and `nonce`)"),
        (status = 400, description = "`redirect_to must be a path on this server`", body = Detail),
        (status = 404, description = "`Not found`: no such provider", body = Detail),
        (status = 502, description = "`Identity provider unavailable`", body = Detail),
    ))]
pub async fn start(
    name: web::Path<String>,
    query: web::Query<StartQuery>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let url = state
        .start_sign_in(&name, query.into_inner().redirect_to)
        .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

#[utoipa::path(get, path = "/auth/{name}/callback", tag = "sign-in",
    params(("name" = String, Path, description = "The provider's name"), CallbackQuery),
    responses(
        (status = 200, description = "Signed in (a sign-in without `redirect_to`)", body = SignInView),
        (status = 302, description = "Signed in: the refresh cookie set, to `redirect_to`"),
        (status = 400, description = "`Invalid login state`", body = Detail),
        (status = 401, description = "`Login cancelled or refused by the provider`, `Could not validate credentials`", body = Detail),
        (status = 403, description = "`Email address is not verified`, `Registration is closed`", body = Detail),
        (status = 404, description = "`Not found`: no such provider", body = Detail),
        (status = 502, description = "`Identity provider unavailable`", body = Detail),
    ))]
pub async fn callback(
    req: HttpRequest,
    name: web::Path<String>,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let ip = client_ip(&req, state.config.behind_proxy);
    let callback = Callback {
        code: query.code,
        state: query.state,
        error: query.error,
    };
    let SignedIn {
        user,
        tokens,
        key,
        redirect_to,
    } = state.finish_sign_in(ip, &name, callback).await?;
    if let Some(path) = redirect_to {
        let mut response = HttpResponse::Found();
        let max_age = state.refresh_ttl() as u64;
        session::set_refresh(&mut response, &req, &tokens.refresh_token, max_age);
        return Ok(response.insert_header((header::LOCATION, path)).finish());
    }
    let answer = SignInView {
        user: NewUser {
            id: user.id,
            email: user.email,
            username: user.username,
            tier: user.tier,
        },
        tokens: tokens.into(),
        api_key: key.map(KeyView::created),
    };
    Ok(with_tokens(&req, &state, StatusCode::OK, answer))
}
