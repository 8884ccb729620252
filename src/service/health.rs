//! What `/health` reports: whether the database answers, whether storing has room,
//! and in cluster mode whether Redis is reachable.

use super::Domain;
use crate::error::{ApiError, ApiResult};

/// The state of this node, for probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// `None` outside cluster mode; else whether this node reaches Redis.
    pub redis_connected: Option<bool>,
    /// Storing fails for lack of disk space: publishes are refused.
    pub storage_full: bool,
}

impl Domain {
    /// The node's health; an error when the database does not answer.
    pub async fn health(&self) -> ApiResult<Health> {
        self.db(|conn| crate::db::ping(conn).map_err(|_| ApiError::DatabaseUnavailable))
            .await?;
        Ok(Health {
            redis_connected: self.cluster.as_ref().map(|c| c.connected()),
            storage_full: self.writer.storage_full(),
        })
    }
}
