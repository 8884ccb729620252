//! `GET /health` (200 when the database answers and has room) and `GET /metrics`.

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;

use super::AppState;
use crate::error::{ApiError, ApiResult};

/// 200 `{"status":"ok"}` while the database answers (503 otherwise). In cluster
/// mode also `"redis": "connected"`, or `"status": "degraded"` with
/// `"redis": "disconnected"` while this node cannot reach Redis (still 200: it serves
/// its own subscribers). While storing fails for lack of disk space, 503 with
/// `"status": "degraded"` and `"storage": "full"`: reads and streams still work, but
/// publishes are refused, so a balancer should send them elsewhere.
pub async fn health(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state
        .db(move |conn| {
            conn.batch_execute("SELECT 1")
                .map_err(|_| ApiError::DatabaseUnavailable)
        })
        .await?;
    let mut body = match &state.cluster {
        None => serde_json::json!({ "status": "ok" }),
        Some(cluster) if cluster.connected() => {
            serde_json::json!({ "status": "ok", "redis": "connected" })
        }
        Some(_) => serde_json::json!({ "status": "degraded", "redis": "disconnected" }),
    };
    if state.writer.storage_full() {
        body["status"] = "degraded".into();
        body["storage"] = "full".into();
        return Ok(HttpResponse::ServiceUnavailable().json(body));
    }
    Ok(HttpResponse::Ok().json(body))
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
