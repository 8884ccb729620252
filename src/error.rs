//! The one error type of the API: every failure becomes a status and `{"detail": …}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The detail of an expired credential, also the reason of the `close` event that ends
/// a stream when its credential expires.
pub const TOKEN_EXPIRED: &str = "Token has expired";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Not authenticated")]
    NotAuthenticated,
    #[error("Could not validate credentials")]
    InvalidCredentials,
    #[error("{}", TOKEN_EXPIRED)]
    TokenExpired,
    #[error("Incorrect email or password")]
    IncorrectLogin,
    #[error("Insufficient permissions to access this topic")]
    Forbidden,
    /// A 403 with its own fixed text (`Registration is closed`, `Origin not allowed`, …).
    #[error("{0}")]
    ForbiddenBecause(&'static str),
    /// A 403: the account owns as many of these as its tier allows.
    #[error("Limit reached: {0}")]
    LimitReached(crate::config::Quota),
    #[error("{0}")]
    NotFound(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// A request head or body that did not arrive in time.
    #[error("Request timeout")]
    RequestTimeout,
    #[error("{0}")]
    Conflict(String),
    #[error("Message too large")]
    TooLarge,
    #[error("URI too long")]
    UriTooLong,
    #[error("Request header fields too large")]
    HeadersTooLarge,
    #[error("{0}")]
    Unprocessable(String),
    #[error("Rate limit exceeded")]
    RateLimited {
        retry_after_secs: u64,
        limit: u32,
        remaining: u32,
    },
    #[error("Database unavailable")]
    DatabaseUnavailable,
    /// A publish could not be stored for lack of disk space.
    #[error("Storage full")]
    StorageFull,
    /// Open connections have reached the reserve kept below the process's file limit.
    #[error("Server is at its connection limit")]
    AtConnectionLimit,
    /// The cause is logged where it happens; clients see a fixed text.
    #[error("Internal server error")]
    Internal,
}

#[derive(Serialize)]
pub struct Detail<'a> {
    pub detail: &'a str,
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated
            | Self::InvalidCredentials
            | Self::TokenExpired
            | Self::IncorrectLogin => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ForbiddenBecause(_) | Self::LimitReached(_) => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::DatabaseUnavailable | Self::StorageFull | Self::AtConnectionLimit => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited {
                retry_after_secs,
                limit,
                remaining,
            } => {
                response
                    .insert_header((header::RETRY_AFTER, retry_after_secs.max(&1).to_string()))
                    .insert_header(("X-RateLimit-Limit", limit.to_string()))
                    .insert_header(("X-RateLimit-Remaining", remaining.to_string()));
            }
            Self::NotAuthenticated | Self::InvalidCredentials | Self::TokenExpired => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        response.json(Detail {
            detail: &self.to_string(),
        })
    }
}

impl From<crate::http::head::HeadError> for ApiError {
    fn from(e: crate::http::head::HeadError) -> Self {
        use crate::http::head::HeadError as H;
        match e {
            H::Malformed(detail) => Self::bad_request(detail),
            H::TargetTooLong => Self::UriTooLong,
            H::TooLarge => Self::HeadersTooLarge,
        }
    }
}

/// A request body that could not be read: cut at its deadline (408), too large, or broken.
impl From<actix_web::error::PayloadError> for ApiError {
    fn from(e: actix_web::error::PayloadError) -> Self {
        use actix_web::error::PayloadError as P;
        match e {
            P::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Self::RequestTimeout,
            P::Overflow => Self::TooLarge,
            other => Self::bad_request(format!("Invalid body: {other}")),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use crate::db::space::OutOfSpace;
        match e {
            diesel::result::Error::NotFound => Self::not_found("Object"),
            other => {
                tracing::error!(error = %other, "database error");
                if other.out_of_space() {
                    Self::StorageFull
                } else {
                    Self::DatabaseUnavailable
                }
            }
        }
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        tracing::error!(error = %e, "database pool error");
        Self::DatabaseUnavailable
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task was cancelled");
        Self::Internal
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        tracing::error!(error = %e, "actor mailbox error");
        Self::Internal
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
