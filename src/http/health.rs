//! `GET /health` (200 when the database answers and has room) and `GET /metrics`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::error::{ApiResult, Detail};
use crate::metrics::METRICS;

/// What `/health` reports.
#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// `ok`, or `degraded` (Redis unreachable, or the disk full).
    status: &'static str,
    /// In cluster mode: `connected` or `disconnected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    redis: Option<&'static str>,
    /// `full` while storing fails for lack of disk space.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    storage: Option<&'static str>,
}

/// The two bodies of a 503 from `/health`; only described (in the OpenAPI document),
/// each is sent as its own type.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum Unhealthy<'a> {
    Down(Detail<'a>),
    Degraded(HealthView),
}

/// 200 `{"status":"ok"}` while the database answers (503 otherwise). In cluster
/// mode also `"redis": "connected"`, or `"status": "degraded"` with
/// `"redis": "disconnected"` while this node cannot reach Redis (still 200: it serves
/// its own subscribers). While storing fails for lack of disk space, 503 with
/// `"status": "degraded"` and `"storage": "full"`: reads and streams still work, but
/// publishes are refused, so a balancer should send them elsewhere.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = HealthView),
        (status = 503, description = "`Database unavailable`, or `{\"status\":\"degraded\",\"storage\":\"full\"}` while the disk is full", body = Unhealthy),
    ))]
pub async fn health(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let health = state.health().await?;
    let (status, redis) = match health.redis_connected {
        None => ("ok", None),
        Some(true) => ("ok", Some("connected")),
        Some(false) => ("degraded", Some("disconnected")),
    };
    if health.storage_full {
        return Ok(HttpResponse::ServiceUnavailable().json(HealthView {
            status: "degraded",
            redis,
            storage: Some("full"),
        }));
    }
    Ok(HttpResponse::Ok().json(HealthView {
        status,
        redis,
        storage: None,
    }))
}

/// The Prometheus text of every series; what is read rather than counted (live
/// topics, the journal's backlog) is read now.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    METRICS.live_topics.set(state.broker.live_topics() as i64);
    METRICS
        .journal_backlog
        .set(state.writer.recent().len() as i64);
    HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(METRICS.render())
}
