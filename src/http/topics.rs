//! Topics (create, list, get, change, delete) and their access tokens.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::keys::{check_name, parse_expiry};
use super::paging::{self, PageQuery};
use super::{resource, AppState};
use crate::auth::permissions::{TopicInfo, Visibility};
use crate::auth::secrets::{digest, new_id, random_secret, TOPIC_TOKEN_PREFIX};
use crate::auth::{Principal, UserInfo};
use crate::broker::check_topic_name;
use crate::cluster::Change;
use crate::config::Quota;
use crate::db;
use crate::db::topics::{TokenRow, TopicRow, TopicWithOwner};
use crate::error::{ApiError, ApiResult};
use crate::util::{now_unix, rfc3339, rfc3339_opt};

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

fn topic_view((topic, owner_name): TopicWithOwner) -> serde_json::Value {
    json!({
        "name": topic.name,
        "visibility": topic.visibility,
        "description": topic.description,
        "owner": {"id": topic.owner_id, "username": owner_name},
        "created_at": rfc3339(topic.created_at),
    })
}

fn topic_not_found() -> ApiError {
    ApiError::not_found("Topic")
}

fn parse_visibility(text: &str) -> ApiResult<Visibility> {
    Visibility::parse(text).ok_or_else(|| {
        ApiError::Unprocessable("visibility must be \"public\" or \"private\"".into())
    })
}

impl AppState {
    /// Creates a topic owned by `owner`, within its quota and creation rate. With
    /// `if_absent`, an existing topic is not an error (auto-creation on first
    /// publish); otherwise it is a 409.
    pub async fn create_topic(
        &self,
        owner: &UserInfo,
        name: &str,
        visibility: Visibility,
        description: Option<String>,
        if_absent: bool,
    ) -> ApiResult<TopicWithOwner> {
        check_topic_name(name)?;
        let within = self.creation(owner, Quota::Topics)?;
        let row = TopicRow {
            name: name.to_string(),
            owner_id: owner.id.clone(),
            visibility: visibility.as_str().into(),
            description,
            created_at: now_unix(),
        };
        let stored = row.clone();
        let created = self
            .db(move |conn| {
                // A name already taken is no creation, so it does not count.
                if db::topics::exists(conn, &stored.name)? {
                    return Ok(false);
                }
                within.create(conn, |conn| {
                    Ok(db::topics::insert_if_absent(conn, &stored)?)
                })
            })
            .await?;
        if !created && !if_absent {
            return Err(ApiError::Conflict("Topic already exists".into()));
        }
        // Anyone who subscribed before a private topic existed read it as public.
        let became = (created && visibility == Visibility::Private).then_some(visibility);
        self.changed(Change::TopicChanged {
            name: name.to_string(),
            became,
        });
        Ok((row, owner.username.clone()))
    }

    /// The topic `name` if `principal` owns it: 404 when it is missing or private to
    /// someone else, 403 when it is someone else's public topic.
    async fn owned_topic(
        &self,
        principal: &Principal,
        name: &str,
    ) -> ApiResult<(std::sync::Arc<UserInfo>, std::sync::Arc<TopicInfo>)> {
        let user = principal.account()?.clone();
        let topic = self.auth.topic(name).await?.ok_or_else(topic_not_found)?;
        if topic.owner_id != user.id {
            return Err(match topic.visibility {
                Visibility::Public => ApiError::Forbidden,
                Visibility::Private => topic_not_found(),
            });
        }
        Ok((user, topic))
    }

    async fn topic_with_owner(&self, name: &str) -> ApiResult<TopicWithOwner> {
        let name = name.to_string();
        self.db(move |conn| Ok(db::topics::get_with_owner(conn, &name)?))
            .await?
            .ok_or_else(topic_not_found)
    }
}

#[derive(Deserialize)]
struct CreateTopic {
    name: String,
    visibility: Option<String>,
    description: Option<String>,
}

async fn create(
    principal: Principal,
    body: web::Json<CreateTopic>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user = principal.account()?;
    let body = body.into_inner();
    let visibility = parse_visibility(body.visibility.as_deref().unwrap_or("public"))?;
    let topic = state
        .create_topic(user, &body.name, visibility, body.description, false)
        .await?;
    Ok(HttpResponse::Created().json(topic_view(topic)))
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
    let topics = state
        .db(move |conn| Ok(db::topics::owned_by(conn, &user_id, &wanted)?))
        .await?;
    let position = |(t, _): &TopicWithOwner| (t.created_at, t.name.clone());
    Ok(paging::respond(&req, &page, topics, position, topic_view))
}

async fn get(
    principal: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let topic = state.auth.topic(&name).await?.ok_or_else(topic_not_found)?;
    let is_owner =
        matches!(&principal, Principal::Account { user, .. } if user.id == topic.owner_id);
    if topic.visibility == Visibility::Private && !is_owner {
        return Err(topic_not_found());
    }
    Ok(HttpResponse::Ok().json(topic_view(state.topic_with_owner(&name).await?)))
}

#[derive(Deserialize)]
struct UpdateTopic {
    visibility: Option<String>,
    /// Absent: keep; `null`: clear; text: replace.
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn update(
    principal: Principal,
    name: web::Path<String>,
    body: web::Json<UpdateTopic>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (_, topic) = state.owned_topic(&principal, &name).await?;
    let body = body.into_inner();
    let visibility = match body.visibility.as_deref() {
        Some(v) => parse_visibility(v)?,
        None => topic.visibility,
    };
    let (current, _) = state.topic_with_owner(&name).await?;
    let description = body.description.unwrap_or(current.description);
    let topic_name = name.clone();
    state
        .db(move |conn| {
            Ok(db::topics::update(
                conn,
                &topic_name,
                visibility.as_str(),
                description.as_deref(),
            )?)
        })
        .await?;
    state.changed(Change::TopicChanged {
        name: name.to_string(),
        became: (visibility != topic.visibility).then_some(visibility),
    });
    Ok(HttpResponse::Ok().json(topic_view(state.topic_with_owner(&name).await?)))
}

async fn delete(
    principal: Principal,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    state.owned_topic(&principal, &name).await?;
    let topic_name = name.clone();
    state
        .db(move |conn| Ok(db::topics::delete(conn, &topic_name)?))
        .await?;
    state.changed(Change::TopicDeleted {
        name: name.to_string(),
    });
    state.writer.delete_topic(name.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A topic access token as the API shows it; `token` only right after it was made.
#[derive(Serialize)]
struct TokenView {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    name: String,
    topic: String,
    permissions: Vec<&'static str>,
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

#[derive(Deserialize)]
struct CreateToken {
    name: Option<String>,
    permissions: Option<Vec<String>>,
    access_level: Option<String>,
    expires_at: Option<String>,
}

/// `permissions: ["publish","subscribe"]` or `access_level: read|write|read_write`
/// as (can_read, can_write).
fn token_rights(body: &CreateToken) -> ApiResult<(bool, bool)> {
    let invalid = |what: &str| ApiError::Unprocessable(what.to_string());
    if let Some(permissions) = &body.permissions {
        let mut rights = (false, false);
        for p in permissions {
            match p.as_str() {
                "subscribe" | "read" => rights.0 = true,
                "publish" | "write" => rights.1 = true,
                _ => {
                    return Err(invalid(
                        "permissions may hold \"publish\" and \"subscribe\"",
                    ))
                }
            }
        }
        if rights == (false, false) {
            return Err(invalid("permissions must not be empty"));
        }
        return Ok(rights);
    }
    match body.access_level.as_deref() {
        Some("read") => Ok((true, false)),
        Some("write") => Ok((false, true)),
        Some("read_write") => Ok((true, true)),
        _ => Err(invalid(
            "give permissions ([\"publish\",\"subscribe\"]) or access_level (read, write, read_write)",
        )),
    }
}

async fn create_token(
    principal: Principal,
    topic: web::Path<String>,
    body: web::Json<CreateToken>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user, info) = state.owned_topic(&principal, &topic).await?;
    if info.visibility == Visibility::Public {
        return Err(ApiError::bad_request(
            "Topic access tokens are only available for private topics",
        ));
    }
    let (can_read, can_write) = token_rights(&body)?;
    let within = state.creation(&user, Quota::TopicTokens)?;
    let body = body.into_inner();
    let secret = random_secret(TOPIC_TOKEN_PREFIX);
    let row = TokenRow {
        id: new_id(),
        topic: topic.into_inner(),
        name: check_name(body.name, "Access token")?,
        token_hash: digest(&secret),
        can_read,
        can_write,
        created_by: user.id.clone(),
        created_at: now_unix(),
        expires_at: parse_expiry(body.expires_at.as_deref())?,
        last_used_at: None,
        total_requests: 0,
    };
    let stored = row.clone();
    state
        .db(move |conn| within.create(conn, |conn| Ok(db::topics::insert_token(conn, &stored)?)))
        .await?;
    Ok(HttpResponse::Created().json(TokenView::new(row, Some(secret))))
}

async fn list_tokens(
    principal: Principal,
    req: HttpRequest,
    topic: web::Path<String>,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    state.owned_topic(&principal, &topic).await?;
    let page = query.page()?;
    let wanted = page.clone();
    let auth = state.auth.clone();
    let rows = state
        .db(move |conn| {
            auth.usage().flush(conn);
            Ok(db::topics::tokens_of(conn, &topic, &wanted)?)
        })
        .await?;
    let position = |r: &TokenRow| (r.created_at, r.id.clone());
    let view = |r| TokenView::new(r, None);
    Ok(paging::respond(&req, &page, rows, position, view))
}

async fn revoke_token(
    principal: Principal,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (topic, id) = path.into_inner();
    state.owned_topic(&principal, &topic).await?;
    let (t, i) = (topic.clone(), id.clone());
    let deleted = state
        .db(move |conn| Ok(db::topics::delete_token(conn, &t, &i)?))
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found("Access token"));
    }
    state.changed(Change::TokenRevoked { topic, id });
    Ok(HttpResponse::NoContent().finish())
}
