//! `GET /health`: 200 when the database answers.

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;

use super::AppState;
use crate::error::{ApiError, ApiResult};

pub async fn health(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state
        .db(move |conn| {
            conn.batch_execute("SELECT 1")
                .map_err(|_| ApiError::DatabaseUnavailable)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })))
}
