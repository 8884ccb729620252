//! `GET /health` (200 when the database answers) and `GET /metrics`.

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

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let extra = [
        (
            "tidings_auth_db_lookups_total",
            "counter",
            state.auth.db_lookups(),
        ),
        (
            "tidings_live_topics",
            "gauge",
            state.broker.live_topics() as u64,
        ),
    ];
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::METRICS.render(&extra))
}
