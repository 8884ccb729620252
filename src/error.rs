//! The one error type of the API: every failure becomes a status and `{"detail": …}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The fixed `detail` texts of the API (the tables of `docs/api.md`). Texts with a
/// value in them are made by the constructors of [`ApiError`] below; no text is built
/// anywhere else.
pub mod detail {
    pub const NOT_AUTHENTICATED: &str = "Not authenticated";
    pub const INVALID_CREDENTIALS: &str = "Could not validate credentials";
    /// Also the reason of the `close` event that ends a stream when its credential
    /// expires.
    pub const TOKEN_EXPIRED: &str = "Token has expired";
    pub const INCORRECT_LOGIN: &str = "Incorrect email or password";
    pub const FORBIDDEN: &str = "Insufficient permissions to access this topic";
    pub const REGISTRATION_CLOSED: &str = "Registration is closed";
    pub const ORIGIN_NOT_ALLOWED: &str = "Origin not allowed";
    pub const NOT_FOUND: &str = "Not found";
    pub const METHOD_NOT_ALLOWED: &str = "Method not allowed";
    pub const REQUEST_TIMEOUT: &str = "Request timeout";
    pub const TOO_LARGE: &str = "Message too large";
    pub const URI_TOO_LONG: &str = "URI too long";
    pub const HEADERS_TOO_LARGE: &str = "Request header fields too large";
    pub const RATE_LIMITED: &str = "Rate limit exceeded";
    pub const DATABASE_UNAVAILABLE: &str = "Database unavailable";
    pub const STORAGE_FULL: &str = "Storage full";
    pub const AT_CONNECTION_LIMIT: &str = "Server is at its connection limit";
    pub const INTERNAL: &str = "Internal server error";

    // 400: requests.
    pub const MALFORMED_HEAD: &str = "Malformed request head";
    pub const INCOMPLETE_HEAD: &str = "Incomplete request head";
    pub const INVALID_TARGET: &str = "Invalid request target";
    pub const MISSING_CONTENT_LENGTH: &str = "Missing Content-Length";
    pub const INVALID_CONTENT_LENGTH: &str = "Invalid Content-Length";
    pub const DUPLICATE_CONTENT_LENGTH: &str = "Duplicate Content-Length";
    pub const LENGTH_WITH_CHUNKED: &str = "Content-Length and Transfer-Encoding together";
    pub const DUPLICATE_TRANSFER_ENCODING: &str = "Duplicate Transfer-Encoding";
    pub const UNSUPPORTED_TRANSFER_ENCODING: &str = "Unsupported Transfer-Encoding";
    pub const DUPLICATE_HOST: &str = "Duplicate Host header";
    pub const MISSING_HOST: &str = "Missing Host header";
    pub const EXPECTED_JSON: &str = "Expected Content-Type: application/json";
    pub const EXPECTED_WEBSOCKET: &str = "Expected a WebSocket upgrade request";
    pub const INVALID_CURSOR: &str = "Invalid cursor";
    pub const INVALID_SINCE: &str = "Invalid since";

    // Sign-in with OpenID Connect.
    pub const INVALID_LOGIN_STATE: &str = "Invalid login state";
    pub const INVALID_REDIRECT_TO: &str = "redirect_to must be a path on this server";
    pub const LOGIN_REFUSED: &str = "Login cancelled or refused by the provider";
    pub const EMAIL_NOT_VERIFIED: &str = "Email address is not verified";
    pub const PROVIDER_UNAVAILABLE: &str = "Identity provider unavailable";

    // 400: messages and topics.
    pub const MESSAGE_NOT_UTF8: &str = "Message is not valid UTF-8";
    pub const MESSAGE_EMPTY: &str = "Message is empty";
    pub const INVALID_TOPIC_NAME: &str =
        "Invalid topic name (use 1-64 letters, digits, '_' or '-')";
    pub const TOKENS_ONLY_PRIVATE: &str =
        "Topic access tokens are only available for private topics";
    pub const PUSH_ENDPOINT_NOT_ALLOWED: &str = "Push endpoint not allowed";

    // 409.
    pub const EMAIL_TAKEN: &str = "Email already registered";
    pub const USERNAME_TAKEN: &str = "Username already taken";
    pub const TOPIC_EXISTS: &str = "Topic already exists";

    // 422.
    pub const INVALID_EMAIL: &str = "Invalid email address";
    pub const INVALID_USERNAME: &str = "Invalid username (3-64 letters, digits, '_', '.' or '-')";
    pub const INVALID_VISIBILITY: &str = "visibility must be \"public\" or \"private\"";
    pub const EXPIRY_NOT_RFC3339: &str = "expires_at must be an RFC 3339 time";
    pub const EXPIRY_IN_PAST: &str = "expires_at must be in the future";
    pub const INVALID_NAME: &str = "name must be 1-128 characters";
    pub const INVALID_PERMISSIONS: &str = "permissions may hold \"publish\" and \"subscribe\"";
    pub const EMPTY_PERMISSIONS: &str = "permissions must not be empty";
    pub const NO_PUSH_TOPICS: &str = "topics must not be empty";
    pub const INVALID_PUSH_KEYS: &str =
        "keys must hold p256dh (a P-256 public key) and auth (16 bytes), base64url";
    pub const MISSING_RIGHTS: &str =
        "give permissions ([\"publish\",\"subscribe\"]) or access_level (read, write, read_write)";
}

/// A `detail` text: made only here, by the constants and constructors of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(std::borrow::Cow<'static, str>);

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&'static str> for Text {
    fn from(text: &'static str) -> Self {
        Self(text.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(Text),
    #[error("{}", detail::NOT_AUTHENTICATED)]
    NotAuthenticated,
    #[error("{}", detail::INVALID_CREDENTIALS)]
    InvalidCredentials,
    #[error("{}", detail::TOKEN_EXPIRED)]
    TokenExpired,
    #[error("{}", detail::INCORRECT_LOGIN)]
    IncorrectLogin,
    /// The identity provider answered a sign-in with an error (the user said no).
    #[error("{}", detail::LOGIN_REFUSED)]
    LoginRefused,
    #[error("{}", detail::FORBIDDEN)]
    Forbidden,
    /// A 403 with its own fixed text (`Registration is closed`, `Origin not allowed`, …).
    #[error("{0}")]
    ForbiddenBecause(Text),
    /// A 403: the account owns as many of these as its tier allows.
    #[error("Limit reached: {0}")]
    LimitReached(crate::config::Quota),
    #[error("{0}")]
    NotFound(Text),
    #[error("{}", detail::METHOD_NOT_ALLOWED)]
    MethodNotAllowed,
    /// A request head or body that did not arrive in time.
    #[error("{}", detail::REQUEST_TIMEOUT)]
    RequestTimeout,
    #[error("{0}")]
    Conflict(Text),
    #[error("{}", detail::TOO_LARGE)]
    TooLarge,
    #[error("{}", detail::URI_TOO_LONG)]
    UriTooLong,
    #[error("{}", detail::HEADERS_TOO_LARGE)]
    HeadersTooLarge,
    #[error("{0}")]
    Unprocessable(Text),
    #[error("{}", detail::RATE_LIMITED)]
    RateLimited {
        retry_after_secs: u64,
        limit: u32,
        remaining: u32,
    },
    #[error("{}", detail::DATABASE_UNAVAILABLE)]
    DatabaseUnavailable,
    /// An OpenID Connect provider could not be reached (or gave no usable answer).
    #[error("{}", detail::PROVIDER_UNAVAILABLE)]
    ProviderUnavailable,
    /// A publish could not be stored for lack of disk space.
    #[error("{}", detail::STORAGE_FULL)]
    StorageFull,
    /// Open connections have reached the reserve kept below the process's file limit.
    #[error("{}", detail::AT_CONNECTION_LIMIT)]
    AtConnectionLimit,
    /// The cause is logged where it happens; clients see a fixed text.
    #[error("{}", detail::INTERNAL)]
    Internal,
}

/// What a thing that was not found is called in its 404 (`{what} not found`).
#[derive(Debug, Clone, Copy)]
pub enum Missing {
    Topic,
    ApiKey,
    AccessToken,
    PushSubscription,
    Path,
    Object,
}

/// The body of every error: `{"detail": "…"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Detail<'a> {
    pub detail: &'a str,
}

/// What is left of a quota after an allowed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub remaining: u32,
}

impl ApiError {
    /// The one 429: a quota of `limit` that has room again after `wait` (whole
    /// seconds, rounded up, at least one), whichever limiter refused.
    pub fn rate_limited(limit: u32, wait: std::time::Duration) -> Self {
        Self::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            limit,
            remaining: 0,
        }
    }

    /// A 400 with one of the fixed texts of [`detail`].
    pub fn bad_request(text: &'static str) -> Self {
        Self::BadRequest(text.into())
    }

    /// A 422 with one of the fixed texts of [`detail`].
    pub fn unprocessable(text: &'static str) -> Self {
        Self::Unprocessable(text.into())
    }

    /// A 409 with one of the fixed texts of [`detail`].
    pub fn conflict(text: &'static str) -> Self {
        Self::Conflict(text.into())
    }

    /// A 403 with one of the fixed texts of [`detail`].
    pub fn forbidden_because(text: &'static str) -> Self {
        Self::ForbiddenBecause(text.into())
    }

    pub fn not_found(what: Missing) -> Self {
        Self::NotFound(Text(match what {
            Missing::Topic => "Topic not found".into(),
            Missing::ApiKey => "API key not found".into(),
            Missing::AccessToken => "Access token not found".into(),
            Missing::PushSubscription => "Push subscription not found".into(),
            Missing::Path => "Path not found".into(),
            Missing::Object => "Object not found".into(),
        }))
    }

    /// A path no route serves.
    pub fn no_route() -> Self {
        Self::NotFound(detail::NOT_FOUND.into())
    }

    fn bad_request_owned(text: String) -> Self {
        Self::BadRequest(Text(text.into()))
    }

    fn unprocessable_owned(text: String) -> Self {
        Self::Unprocessable(Text(text.into()))
    }

    pub fn invalid_query(reason: impl std::fmt::Display) -> Self {
        Self::bad_request_owned(format!("Invalid query string: {reason}"))
    }

    pub fn invalid_path(reason: impl std::fmt::Display) -> Self {
        Self::bad_request_owned(format!("Invalid path: {reason}"))
    }

    pub fn invalid_json(reason: impl std::fmt::Display) -> Self {
        Self::bad_request_owned(format!("Invalid JSON body: {reason}"))
    }

    pub fn invalid_body(reason: impl std::fmt::Display) -> Self {
        Self::bad_request_owned(format!("Invalid body: {reason}"))
    }

    pub fn header_not_utf8(name: impl std::fmt::Display) -> Self {
        Self::bad_request_owned(format!("Header {name} is not valid UTF-8"))
    }

    pub fn invalid_limit(max: i64) -> Self {
        Self::bad_request_owned(format!("Invalid limit (1-{max})"))
    }

    pub fn reserved_topic_name(name: &str) -> Self {
        Self::bad_request_owned(format!("Topic name '{name}' is reserved"))
    }

    pub fn invalid_priority(given: &str) -> Self {
        Self::bad_request_owned(format!(
            "Invalid priority: {given:?} (use 1-5, min, low, default, high, max or urgent)"
        ))
    }

    pub fn too_many_tags(given: usize, max: usize) -> Self {
        Self::bad_request_owned(format!("Too many tags: {given} (at most {max})"))
    }

    pub fn title_too_long(max_chars: usize) -> Self {
        Self::bad_request_owned(format!("Title too long (at most {max_chars} characters)"))
    }

    pub fn invalid_origin(origin: &str) -> Self {
        Self::unprocessable_owned(format!(
            "Invalid origin {origin:?} (use scheme://host[:port], e.g. https://app.example.com)"
        ))
    }

    pub fn too_many_origins(max: usize) -> Self {
        Self::unprocessable_owned(format!("At most {max} allowed origins"))
    }

    pub fn unknown_tier(tier: &str, known: &[String]) -> Self {
        Self::unprocessable_owned(format!(
            "unknown tier `{tier}` (known: {})",
            known.join(", ")
        ))
    }

    pub fn email_too_long(max_local: usize, max_all: usize) -> Self {
        Self::unprocessable_owned(format!(
            "Email address is too long (at most {max_local} characters before the @ and {max_all} in all)"
        ))
    }

    pub fn password_too_short(min_chars: usize) -> Self {
        Self::unprocessable_owned(format!("Password must be at least {min_chars} characters"))
    }

    pub fn password_too_long(max_bytes: usize) -> Self {
        Self::unprocessable_owned(format!("Password is too long (at most {max_bytes} bytes)"))
    }

    /// A publish asks, through `header` or one of its other names, for an ntfy option
    /// that tidings does not implement.
    pub fn unsupported_header(header: &str) -> Self {
        Self::bad_request_owned(format!("Unsupported header: {header}"))
    }

    /// A JSON publish asks, through `field`, for an ntfy option tidings does not implement.
    pub fn unsupported_field(field: &str) -> Self {
        Self::bad_request_owned(format!("Unsupported field: {field}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated
            | Self::InvalidCredentials
            | Self::TokenExpired
            | Self::IncorrectLogin
            | Self::LoginRefused => StatusCode::UNAUTHORIZED,
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
            Self::ProviderUnavailable => StatusCode::BAD_GATEWAY,
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

/// A request body that could not be read: cut at its deadline (408), too large, or broken.
impl From<actix_web::error::PayloadError> for ApiError {
    fn from(e: actix_web::error::PayloadError) -> Self {
        use actix_web::error::PayloadError as P;
        match e {
            P::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Self::RequestTimeout,
            P::Overflow => Self::TooLarge,
            other => Self::invalid_body(other),
        }
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
