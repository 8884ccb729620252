//! Topics (create, list, get, change, delete) and their access tokens: the routes and
//! how the API shows them; the operations are the domain's (`service::topics`,
//! `service::tokens`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi::TopicPath;
use super::paging::{self, PageQuery};
use super::{resource, AppState, Json};
use crate::auth::Principal;
use crate::db::topics::{TokenRow, TopicWithOwner};
use crate::error::{ApiResult, Detail};
use crate::service::tokens::TokenRequest;
use crate::util::{rfc3339, rfc3339_opt};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/topics")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        resource("/api/topics/{topic}/access-tokens")
            .route(web::get().to(list_tokens))
            .route(web::post().to(create_token)),
    )
    .service(
        resource("/api/topics/{topic}/access-tokens/{id}").route(web::delete().to(revoke_token)),
    )
    .service(
        resource("/api/topics/{topic}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}

/// A topic as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Topic)]
pub struct TopicView {
    name: String,
    /// `public` or `private`.
    visibility: String,
    description: Option<String>,
    owner: Owner,
    created_at: String,
}

/// Who owns a topic.
#[derive(Serialize, ToSchema)]
pub struct Owner {
    id: String,
    username: String,
}

fn topic_view((topic, owner_name): TopicWithOwner) -> TopicView {
    TopicView {
        name: topic.name,
        visibility: topic.visibility,
        description: topic.description,
        owner: Owner {
            id: topic.owner_id,
            username: owner_name,
        },
        created_at: rfc3339(topic.created_at),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateTopic {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    name: String,
    /// `public` (the default) or `private`.
    #[schema(pattern = "^(public|private)$")]
    visibility: Option<String>,
    description: Option<String>,
}

#[utoipa::path(post, path = "/api/topics", tag = "topics", operation_id = "create_topic",
    request_body = CreateTopic,
    responses(
        (status = 201, description = "The topic", body = TopicView),
        (status = 403, description = "`Limit reached: topics`", body = Detail),
        (status = 409, description = "`Topic already exists`", body = Detail),
        (status = 422, description = "`visibility must be \"public\" or \"private\"`", body = Detail),
    ))]
pub async fn create(
    principal: Principal,
    body: Json<CreateTopic>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let topic = state
        .create_topic(
            &principal,
            &body.name,
            body.visibility.as_deref(),
            body.description,
        )
        .await?;
    Ok(HttpResponse::Created().json(topic_view(topic)))
}

#[utoipa::path(get, path = "/api/topics", tag = "topics", operation_id = "list_topics",
    params(PageQuery),
    responses(
        (status = 200, description = "The account's topics, oldest first; `X-Next-Cursor` and `Link` when more follow", body = [TopicView]),
    ))]
pub async fn list(
    principal: Principal,
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let topics = state.topics(&principal, query.page()).await?;
    let position = |(t, _): &TopicWithOwner| (t.created_at, t.name.clone());
    Ok(paging::respond(
        &req,
        &topics.page,
        topics.rows,
        position,
        topic_view,
    ))
}

#[utoipa::path(get, path = "/api/topics/{topic}", tag = "topics", operation_id = "get_topic",
    params(TopicPath),
    security(()),
    responses(
        (status = 200, description = "The topic (the owner's; anyone's if public)", body = TopicView),
        (status = 404, description = "`Topic not found` (also someone else's private topic)", body = Detail),
    ))]
pub async fn get(
    principal: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(topic_view(state.topic(&principal, &name).await?)))
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateTopic {
    /// `public` or `private`; left out: kept.
    #[schema(pattern = "^(public|private)$")]
    visibility: Option<String>,
    /// Absent: keep; `null`: clear; text: replace.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(patch, path = "/api/topics/{topic}", tag = "topics", operation_id = "update_topic",
    params(TopicPath),
    request_body = UpdateTopic,
    responses(
        (status = 200, description = "The topic as changed", body = TopicView),
        (status = 404, description = "`Topic not found`", body = Detail),
        (status = 422, description = "`visibility must be \"public\" or \"private\"`", body = Detail),
    ))]
pub async fn update(
    principal: Principal,
    name: web::Path<String>,
    body: Json<UpdateTopic>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let topic = state
        .update_topic(
            &principal,
            &name,
            body.visibility.as_deref(),
            body.description,
        )
        .await?;
    Ok(HttpResponse::Ok().json(topic_view(topic)))
}

#[utoipa::path(delete, path = "/api/topics/{topic}", tag = "topics", operation_id = "delete_topic",
    params(TopicPath),
    responses(
        (status = 204, description = "Deleted with its messages and tokens; its subscribers are disconnected"),
        (status = 404, description = "`Topic not found`", body = Detail),
    ))]
pub async fn delete(
    principal: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    state.delete_topic(&principal, name.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A topic access token as the API shows it; `token` only right after it was made.
#[derive(Serialize, ToSchema)]
#[schema(as = AccessToken)]
pub struct TokenView {
    id: String,
    /// The secret (`tk_…`): only when the token is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    token: Option<String>,
    name: String,
    topic: String,
    /// `publish`, `subscribe`.
    #[schema(value_type = Vec<String>)]
    permissions: Vec<&'static str>,
    /// `read`, `write` or `read_write`.
    #[schema(value_type = String)]
    access_level: &'static str,
    can_read: bool,
    can_write: bool,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    total_requests: i64,
    created_by: String,
}

impl TokenView {
    fn new(row: TokenRow, token: Option<String>) -> Self {
        let permissions = [(row.can_write, "publish"), (row.can_read, "subscribe")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        let access_level = match (row.can_read, row.can_write) {
            (true, true) => "read_write",
            (true, false) => "read",
            _ => "write",
        };
        Self {
            id: row.id,
            token,
            name: row.name,
            topic: row.topic,
            permissions,
            access_level,
            can_read: row.can_read,
            can_write: row.can_write,
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339_opt(row.expires_at),
            last_used_at: rfc3339_opt(row.last_used_at),
            total_requests: row.total_requests,
            created_by: row.created_by,
        }
    }
}

#[utoipa::path(post, path = "/api/topics/{topic}/access-tokens", tag = "tokens",
    params(TopicPath),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The token, with its secret (shown once)", body = TokenView),
        (status = 400, description = "`Topic access tokens are only available for private topics`", body = Detail),
        (status = 403, description = "`Limit reached: topic tokens`", body = Detail),
        (status = 404, description = "`Topic not found`", body = Detail),
        (status = 422, description = "Bad `permissions`, `access_level`, `name` or `expires_at` (see the error table)", body = Detail),
    ))]
pub async fn create_token(
    principal: Principal,
    topic: web::Path<String>,
    body: Json<TokenRequest>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let token = state
        .create_token(&principal, topic.into_inner(), body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(TokenView::new(token.row, Some(token.secret))))
}

#[utoipa::path(get, path = "/api/topics/{topic}/access-tokens", tag = "tokens",
    params(TopicPath, PageQuery),
    responses(
        (status = 200, description = "The topic's tokens, oldest first, without their secrets; `X-Next-Cursor` and `Link` when more follow", body = [TokenView]),
        (status = 404, description = "`Topic not found`", body = Detail),
    ))]
pub async fn list_tokens(
    principal: Principal,
    req: HttpRequest,
    topic: web::Path<String>,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let tokens = state
        .topic_tokens(&principal, topic.into_inner(), query.page())
        .await?;
    let position = |r: &TokenRow| (r.created_at, r.id.clone());
    let view = |r| TokenView::new(r, None);
    Ok(paging::respond(
        &req,
        &tokens.page,
        tokens.rows,
        position,
        view,
    ))
}

#[utoipa::path(delete, path = "/api/topics/{topic}/access-tokens/{id}", tag = "tokens",
    params(TopicPath, ("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked: the token gets 401 from now on, and its live streams are closed"),
        (status = 404, description = "`Topic not found`, `Access token not found`", body = Detail),
    ))]
pub async fn revoke_token(
    principal: Principal,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (topic, id) = path.into_inner();
    state.revoke_token(&principal, topic, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
