//! Browser access settings of an account: client key, security mode, RS256 signing
//! key, allowed origins.

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{resource, AppState, Json};
use crate::auth::Principal;
use crate::db::clients::ClientSettings;
use crate::error::{ApiResult, Detail};
use crate::service::clients::NewSigningKey;
use crate::util::rfc3339;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/client-auth")
            .route(web::get().to(show))
            .route(web::patch().to(update)),
    )
    .service(resource("/api/client-auth/signing-key").route(web::post().to(new_signing_key)))
    .service(resource("/api/client-auth/allowed-origins").route(web::put().to(set_origins)));
}

/// An account's browser access settings.
#[derive(Serialize, ToSchema)]
pub struct ClientAuth {
    /// `pk_…`: safe to ship in web pages.
    client_key: String,
    security_mode: bool,
    signing_key: Option<SigningKey>,
    allowed_origins: Vec<String>,
}

/// The active RS256 signing key's public half.
#[derive(Serialize, ToSchema)]
pub struct SigningKey {
    id: String,
    public_key_pem: String,
    created_at: String,
}

/// A new signing key: the private key is shown only here, never stored.
#[derive(Serialize, ToSchema)]
pub struct NewSigningKeyView {
    id: String,
    private_key_base64: String,
    private_key_pem: String,
    public_key_pem: String,
    created_at: String,
}

fn view(settings: ClientSettings) -> ClientAuth {
    ClientAuth {
        client_key: settings.user.client_key,
        security_mode: settings.user.security_mode,
        signing_key: settings.signing_key.map(|k| SigningKey {
            id: k.id,
            public_key_pem: k.public_key_pem,
            created_at: rfc3339(k.created_at),
        }),
        allowed_origins: settings.origins,
    }
}

#[utoipa::path(get, path = "/api/client-auth", tag = "client-auth", operation_id = "get_client_auth",
    responses((status = 200, description = "The settings", body = ClientAuth)))]
pub async fn show(principal: Principal, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(view(state.client_settings(&principal).await?)))
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateClientAuth {
    security_mode: Option<bool>,
}

#[utoipa::path(patch, path = "/api/client-auth", tag = "client-auth", operation_id = "update_client_auth",
    request_body = UpdateClientAuth,
    responses((status = 200, description = "The settings; live browser streams of the account are closed", body = ClientAuth)))]
pub async fn update(
    principal: Principal,
    body: Json<UpdateClientAuth>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let settings = state
        .set_security_mode(&principal, body.security_mode)
        .await?;
    Ok(HttpResponse::Ok().json(view(settings)))
}

#[utoipa::path(post, path = "/api/client-auth/signing-key", tag = "client-auth",
    responses((status = 201, description = "The new key; user keys signed with the old one fail at once", body = NewSigningKeyView)))]
pub async fn new_signing_key(
    principal: Principal,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let NewSigningKey { row, private_pem } = state.new_signing_key(&principal).await?;
    Ok(HttpResponse::Created().json(NewSigningKeyView {
        id: row.id,
        private_key_base64: STANDARD.encode(private_pem.as_bytes()),
        private_key_pem: private_pem,
        public_key_pem: row.public_key_pem,
        created_at: rfc3339(row.created_at),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct Origins {
    /// `scheme://host[:port]`, at most 100; empty: any origin.
    origins: Vec<String>,
}

#[utoipa::path(put, path = "/api/client-auth/allowed-origins", tag = "client-auth",
    request_body = Origins,
    responses(
        (status = 200, description = "The settings; live browser streams of the account are closed", body = ClientAuth),
        (status = 422, description = "`Invalid origin \"…\" (use scheme://host[:port], e.g. https://app.example.com)`, `At most … allowed origins`", body = Detail),
    ))]
pub async fn set_origins(
    principal: Principal,
    body: Json<Origins>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let settings = state
        .set_origins(&principal, body.into_inner().origins)
        .await?;
    Ok(HttpResponse::Ok().json(view(settings)))
}
