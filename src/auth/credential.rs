//! Finding the credential a request presents, by header or query parameter.

use actix_web::http::header::{self, HeaderName};
use actix_web::HttpRequest;

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
const CLIENT_KEY_PARAM: &str = "client_key";

/// What a request presents; not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    AccessToken(String),
    ApiKey(String),
    TopicToken(String),
    /// Browser access: the account's client key with a user key (RS256 JWT) or, in
    /// development mode, a user id.
    Client {
        client_key: String,
        user_key: Option<String>,
        user_id: Option<String>,
    },
}

impl Credential {
    /// Every credential the request presents, in order of precedence: headers
    /// (`X-Topic-Token`, `X-API-Key`, `Authorization: Bearer`), then the query
    /// (`?api_key=`, and `?token=` told apart by its prefix). Empty when there is none.
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
            let token = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
                .ok_or(ApiError::InvalidCredentials)?;
            found.push(Self::classify(token.trim()));
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
}
