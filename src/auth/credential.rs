//! Finding the credential a request presents, by header or query parameter.

use actix_web::http::header;
use actix_web::HttpRequest;

use super::secrets::{API_KEY_PREFIX, TOPIC_TOKEN_PREFIX};
use crate::error::ApiError;

/// What a request presents; not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    AccessToken(String),
    ApiKey(String),
    TopicToken(String),
}

impl Credential {
    /// Headers first (`X-Topic-Token`, `X-API-Key`, `Authorization: Bearer`), then the
    /// query (`?api_key=`, and `?token=` told apart by its `tk_` prefix).
    pub fn from_request(req: &HttpRequest) -> Result<Self, ApiError> {
        let header_value = |name: header::HeaderName| -> Result<Option<String>, ApiError> {
            req.headers()
                .get(name)
                .map(|v| {
                    v.to_str()
                        .map(|s| s.trim().to_string())
                        .map_err(|_| ApiError::InvalidCredentials)
                })
                .transpose()
        };
        if let Some(token) = header_value(header::HeaderName::from_static("x-topic-token"))? {
            return Ok(Self::TopicToken(token));
        }
        if let Some(key) = header_value(header::HeaderName::from_static("x-api-key"))? {
            return Ok(Self::ApiKey(key));
        }
        if let Some(auth) = header_value(header::AUTHORIZATION)? {
            let token = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
                .ok_or(ApiError::InvalidCredentials)?;
            return Ok(Self::classify(token.trim()));
        }
        Ok(Self::from_query(req.query_string()))
    }

    fn from_query(query: &str) -> Self {
        let mut found = Self::None;
        for (name, value) in url_pairs(query) {
            match name.as_str() {
                "api_key" => return Self::ApiKey(value),
                "token" => found = Self::classify(&value),
                _ => {}
            }
        }
        found
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
        let req = TestRequest::default()
            .insert_header(("X-API-Key", "noti_x"))
            .to_http_request();
        assert_eq!(
            Credential::from_request(&req).unwrap(),
            Credential::ApiKey("noti_x".into())
        );
        let req = TestRequest::with_uri("/t/sse?token=tk_abc").to_http_request();
        assert_eq!(
            Credential::from_request(&req).unwrap(),
            Credential::TopicToken("tk_abc".into())
        );
        let req = TestRequest::with_uri("/t/sse?token=eyJ.x.y").to_http_request();
        assert_eq!(
            Credential::from_request(&req).unwrap(),
            Credential::AccessToken("eyJ.x.y".into())
        );
        let req = TestRequest::default()
            .insert_header(("Authorization", "Basic abc"))
            .to_http_request();
        assert!(Credential::from_request(&req).is_err());
        let req = TestRequest::default().to_http_request();
        assert_eq!(Credential::from_request(&req).unwrap(), Credential::None);
    }
}
