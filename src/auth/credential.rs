//! Finding the credential a request presents, by header or query parameter.

use actix_web::http::header::{self, HeaderName};
use actix_web::HttpRequest;
use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};

use super::secrets::{API_KEY_PREFIX, TOPIC_TOKEN_PREFIX};
use crate::error::ApiError;

/// The headers a credential comes in (looked up by static name: no allocation).
pub const X_TOPIC_TOKEN: HeaderName = HeaderName::from_static("x-topic-token");
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub const X_CLIENT_KEY: HeaderName = HeaderName::from_static("x-client-key");
const X_USER_KEY: HeaderName = HeaderName::from_static("x-user-key");
const X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// The query parameters that carry a credential on their own (`user_key` and `user_id`
/// only go with `client_key`).
const API_KEY_PARAM: &str = "api_key";
const TOKEN_PARAM: &str = "token";
/// ntfy's way to send an `Authorization` header where none can be set (a browser's
/// WebSocket or EventSource): the header's value, base64url-encoded without padding.
const AUTH_PARAM: &str = "auth";
const CLIENT_KEY_PARAM: &str = "client_key";

/// What a request presents; not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    AccessToken(String),
    ApiKey(String),
    TopicToken(String),
    /// An account's email or username and its password (`Authorization: Basic`).
    Password(Login),
    /// Browser access: the account's client key with a user key (RS256 JWT) or, in
    /// development mode, a user id.
    Client {
        client_key: String,
        user_key: Option<String>,
        user_id: Option<String>,
    },
}

/// An email or username with a password, to be checked as a login is.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub name: String,
    pub password: String,
}

/// Never shows the password.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// What kind of credential this is, as the access log names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AccessToken(_) => "jwt",
            Self::ApiKey(_) => "api_key",
            Self::TopicToken(_) => "topic_token",
            Self::Password(_) => "password",
            Self::Client { .. } => "client",
        }
    }

    /// Every credential the request presents, in order of precedence: headers
    /// (`X-Topic-Token`, `X-API-Key`, `Authorization`), then the query
    /// (`?api_key=`, `?token=` told apart by its prefix, ntfy's `?auth=`). Empty when
    /// there is none.
    pub fn all_from_request(req: &HttpRequest) -> Result<Vec<Self>, ApiError> {
        let mut found = Vec::new();
        let header_value = |name: &HeaderName| -> Result<Option<String>, ApiError> {
            req.headers()
                .get(name)
                .map(|v| {
                    v.to_str()
                        .map(|s| s.trim().to_string())
                        .map_err(|_| ApiError::InvalidCredentials)
                })
                .transpose()
        };
        if let Some(token) = header_value(&X_TOPIC_TOKEN)? {
            found.push(Self::TopicToken(token));
        }
        if let Some(key) = header_value(&X_API_KEY)? {
            found.push(Self::ApiKey(key));
        }
        if let Some(auth) = header_value(&header::AUTHORIZATION)? {
            found.push(Self::from_authorization(&auth)?);
        }
        let query = url_pairs(req.query_string());
        let param = |wanted: &str| {
            query
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, v)| v.clone())
        };
        for (name, value) in &query {
            match name.as_str() {
                API_KEY_PARAM => found.push(Self::ApiKey(value.clone())),
                TOKEN_PARAM => found.push(Self::classify(value)),
                AUTH_PARAM => found.push(Self::from_auth_param(value)?),
                _ => {}
            }
        }
        let client_key = header_value(&X_CLIENT_KEY)?.or_else(|| param(CLIENT_KEY_PARAM));
        if let Some(client_key) = client_key {
            found.push(Self::Client {
                client_key,
                user_key: header_value(&X_USER_KEY)?.or_else(|| param("user_key")),
                user_id: header_value(&X_USER_ID)?.or_else(|| param("user_id")),
            });
        }
        Ok(found)
    }

    /// An `Authorization` header: `Bearer` with a JWT, API key or topic token, or (as
    /// ntfy's clients send them) `Basic` with an API key or topic token as the password
    /// under any user name, or an email or username and the account's password.
    fn from_authorization(value: &str) -> Result<Self, ApiError> {
        let (scheme, rest) = value.split_once(' ').ok_or(ApiError::InvalidCredentials)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Ok(Self::classify(rest));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(ApiError::InvalidCredentials);
        }
        let decoded = BASE64_STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(ApiError::InvalidCredentials)?;
        let (login, password) = decoded
            .split_once(':')
            .ok_or(ApiError::InvalidCredentials)?;
        if password.starts_with(TOPIC_TOKEN_PREFIX) || password.starts_with(API_KEY_PREFIX) {
            return Ok(Self::classify(password));
        }
        if login.trim().is_empty() || password.is_empty() {
            return Err(ApiError::InvalidCredentials);
        }
        Ok(Self::Password(Login {
            name: login.trim().to_string(),
            password: password.to_string(),
        }))
    }

    /// ntfy's `?auth=`: an `Authorization` value in base64url (padded or not).
    fn from_auth_param(value: &str) -> Result<Self, ApiError> {
        let header = BASE64_URL_SAFE_NO_PAD
            .decode(value.trim().trim_end_matches('='))
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(ApiError::InvalidCredentials)?;
        Self::from_authorization(header.trim())
    }

    /// A bearer or `?token=` value: `tk_` is a topic token, `noti_` an API key,
    /// anything else an access JWT.
    fn classify(token: &str) -> Self {
        if token.starts_with(TOPIC_TOKEN_PREFIX) {
            Self::TopicToken(token.to_string())
        } else if token.starts_with(API_KEY_PREFIX) {
            Self::ApiKey(token.to_string())
        } else {
            Self::AccessToken(token.to_string())
        }
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn headers_and_query_parameters_are_told_apart() {
        let all = |req| Credential::all_from_request(&req);
        let req = TestRequest::with_uri("/t?api_key=noti_q")
            .insert_header(("X-API-Key", "noti_x"))
            .to_http_request();
        assert_eq!(
            all(req).unwrap(),
            vec![
                Credential::ApiKey("noti_x".into()),
                Credential::ApiKey("noti_q".into())
            ]
        );
        let req = TestRequest::with_uri("/t/sse?token=tk_abc").to_http_request();
        assert_eq!(
            all(req).unwrap(),
            vec![Credential::TopicToken("tk_abc".into())]
        );
        let req = TestRequest::with_uri("/t/sse?token=eyJ.x.y").to_http_request();
        assert_eq!(
            all(req).unwrap(),
            vec![Credential::AccessToken("eyJ.x.y".into())]
        );
        let req = TestRequest::default()
            .insert_header(("Authorization", "Basic abc"))
            .to_http_request();
        assert!(all(req).is_err());
        let req = TestRequest::with_uri("/t/sse?since=all&user_key=u")
            .insert_header(("X-User-Key", "u"))
            .to_http_request();
        assert_eq!(all(req).unwrap(), vec![]);
    }

    #[test]
    fn authorization_headers_of_ntfy_clients_are_read() {
        let read = |value: &str| Credential::from_authorization(value);
        let basic = |pair: &str| format!("Basic {}", BASE64_STANDARD.encode(pair));
        assert_eq!(
            read("bearer noti_k").unwrap(),
            Credential::ApiKey("noti_k".into())
        );
        assert_eq!(
            read("Bearer tk_t").unwrap(),
            Credential::TopicToken("tk_t".into())
        );
        assert_eq!(
            read(&basic(":tk_t")).unwrap(),
            Credential::TopicToken("tk_t".into())
        );
        assert_eq!(
            read(&basic("anyone:noti_k")).unwrap(),
            Credential::ApiKey("noti_k".into())
        );
        let login = Credential::Password(Login {
            name: "ann@example.com".into(),
            password: "pass:word".into(),
        });
        assert_eq!(read(&basic("ann@example.com:pass:word")).unwrap(), login);
        assert!(!format!("{login:?}").contains("pass:word"));
        let param = |header: &str| BASE64_URL_SAFE_NO_PAD.encode(header);
        assert_eq!(
            Credential::from_auth_param(&param("Bearer tk_t")).unwrap(),
            Credential::TopicToken("tk_t".into())
        );
        assert_eq!(
            Credential::from_auth_param(&param(&basic("ann@example.com:pass:word"))).unwrap(),
            login
        );
        assert!(Credential::from_auth_param("!!").is_err());
        for bad in [
            "Basic",
            "Basic !!",
            "Bearer ",
            "Token abc",
            &basic("ann"),
            &basic(":x"),
            &basic("ann:"),
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
