//! Browser access settings of an account: client key, security mode, RS256 signing
//! key, allowed origins.

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{resource, AppState};
use crate::auth::client::{check_origin_syntax, generate_signing_key};
use crate::auth::secrets::new_id;
use crate::auth::Principal;
use crate::cluster::Change;
use crate::db;
use crate::db::clients::{ClientSettings, SigningKeyRow};
use crate::error::{ApiError, ApiResult};
use crate::util::{now_unix, rfc3339};

/// At most this many allowed origins per account.
const MAX_ORIGINS: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/client-auth")
            .route(web::get().to(show))
            .route(web::patch().to(update)),
    )
    .service(resource("/api/client-auth/signing-key").route(web::post().to(new_signing_key)))
    .service(resource("/api/client-auth/allowed-origins").route(web::put().to(set_origins)));
}

fn view(settings: ClientSettings) -> serde_json::Value {
    json!({
        "client_key": settings.user.client_key,
        "security_mode": settings.user.security_mode,
        "signing_key": settings.signing_key.map(|k| json!({
            "id": k.id,
            "public_key_pem": k.public_key_pem,
            "created_at": rfc3339(k.created_at),
        })),
        "allowed_origins": settings.origins,
    })
}

impl AppState {
    async fn client_settings(&self, user_id: String) -> ApiResult<ClientSettings> {
        self.db(move |conn| {
            let user = db::users::by_id(conn, &user_id)?.ok_or(ApiError::InvalidCredentials)?;
            Ok(db::clients::settings_of(conn, user)?)
        })
        .await
    }

    /// Browser access of `user_id` changed: caches forget it and live browser
    /// subscriptions of that account end (they reconnect under the new rules).
    fn client_access_changed(&self, user_id: &str) {
        self.changed(Change::ClientAccess {
            user_id: user_id.to_string(),
        });
    }
}

async fn show(principal: Principal, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    Ok(HttpResponse::Ok().json(view(state.client_settings(user_id).await?)))
}

#[derive(Deserialize)]
struct UpdateClientAuth {
    security_mode: Option<bool>,
}

async fn update(
    principal: Principal,
    body: web::Json<UpdateClientAuth>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    if let Some(on) = body.security_mode {
        let id = user_id.clone();
        state
            .db(move |conn| Ok(db::clients::set_security_mode(conn, &id, on)?))
            .await?;
        if !on {
            tracing::warn!(account = %user_id, "client authentication switched to development mode");
        }
        state.client_access_changed(&user_id);
    }
    Ok(HttpResponse::Ok().json(view(state.client_settings(user_id).await?)))
}

async fn new_signing_key(
    principal: Principal,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    let (private_pem, public_pem) =
        crate::cores::block(generate_signing_key)
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "RSA key generation failed");
                ApiError::Internal
            })?;
    let row = SigningKeyRow {
        id: new_id(),
        user_id: user_id.clone(),
        public_key_pem: public_pem,
        created_at: now_unix(),
    };
    let stored = row.clone();
    state
        .db(move |conn| Ok(db::clients::replace_signing_key(conn, &stored)?))
        .await?;
    state.client_access_changed(&user_id);
    Ok(HttpResponse::Created().json(json!({
        "id": row.id,
        "private_key_base64": STANDARD.encode(private_pem.as_bytes()),
        "private_key_pem": private_pem,
        "public_key_pem": row.public_key_pem,
        "created_at": rfc3339(row.created_at),
    })))
}

#[derive(Deserialize)]
struct Origins {
    origins: Vec<String>,
}

async fn set_origins(
    principal: Principal,
    body: web::Json<Origins>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = principal.account()?.id.clone();
    let mut origins: Vec<String> = body
        .into_inner()
        .origins
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .collect();
    origins.sort();
    origins.dedup();
    if origins.len() > MAX_ORIGINS {
        return Err(ApiError::Unprocessable(format!(
            "At most {MAX_ORIGINS} allowed origins"
        )));
    }
    origins.iter().try_for_each(|o| check_origin_syntax(o))?;
    let id = user_id.clone();
    state
        .db(move |conn| Ok(db::clients::set_origins(conn, &id, &origins)?))
        .await?;
    state.client_access_changed(&user_id);
    Ok(HttpResponse::Ok().json(view(state.client_settings(user_id).await?)))
}
