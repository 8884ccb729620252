//! Access tokens: HS256 JWTs naming the account.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Always `access`; keeps other JWTs signed with the same secret out.
    pub typ: String,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // A token that is not valid yet (`nbf` ahead) is refused like a forged one.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(&self, user_id: &str, now: i64, ttl_secs: i64) -> String {
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + ttl_secs,
            typ: "access".into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// The account id of a valid access token, and when it expires (unix seconds).
    pub fn verify(&self, token: &str) -> Result<(String, i64), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::TokenExpired,
                _ => ApiError::InvalidCredentials,
            })?;
        if data.claims.typ != "access" {
            return Err(ApiError::InvalidCredentials);
        }
        Ok((data.claims.sub, data.claims.exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::now_unix;

    #[test]
    fn issued_tokens_verify_and_expire() {
        let keys = JwtKeys::new(b"secret");
        let now = now_unix();
        assert_eq!(
            keys.verify(&keys.issue("u1", now, 60)).unwrap(),
            ("u1".to_string(), now + 60)
        );
        assert!(matches!(
            keys.verify(&keys.issue("u1", now - 100, 10)),
            Err(ApiError::TokenExpired)
        ));
        let other = JwtKeys::new(b"other");
        assert!(matches!(
            other.verify(&keys.issue("u1", now, 60)),
            Err(ApiError::InvalidCredentials)
        ));
        assert!(matches!(
            keys.verify("garbage"),
            Err(ApiError::InvalidCredentials)
        ));
    }
}
