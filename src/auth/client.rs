//! Browser access: an account's public client key (`pk_…`) plus a user key (an RS256
//! JWT signed by the customer's backend) or, in development mode, a bare user id.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::Deserialize;

use crate::error::{detail, ApiError, ApiResult};

/// What the auth caches keep of an account's browser-access settings.
pub struct ClientAccount {
    pub user_id: String,
    pub security_mode: bool,
    pub signing_key: Option<DecodingKey>,
    /// Exact `scheme://host[:port]` origins; empty means any.
    pub origins: Vec<String>,
}

impl std::fmt::Debug for ClientAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAccount")
            .field("user_id", &self.user_id)
            .field("security_mode", &self.security_mode)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl ClientAccount {
    /// A request with client credentials must come from an allowed origin when the
    /// account has a list.
    pub fn check_origin(&self, origin: Option<&str>) -> ApiResult<()> {
        if self.origins.is_empty() || origin.is_some_and(|o| self.origins.iter().any(|a| a == o)) {
            Ok(())
        } else {
            Err(ApiError::forbidden_because(detail::ORIGIN_NOT_ALLOWED))
        }
    }
}

/// The end user a client credential speaks for, and what it may read.
#[derive(Debug, Clone)]
pub struct ClientUser {
    pub subject: String,
    /// The topics the user key lists; `None` in development mode (any of the account's).
    pub topics: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct UserKeyClaims {
    sub: String,
    iat: Option<i64>,
    exp: Option<i64>,
    #[serde(default)]
    topics: Vec<String>,
}

/// Checks a user key: RS256 only, signed with the account's current key, `sub`
/// required, `exp`/`nbf` enforced when present, `iat` not in the future. Returns the
/// user and when the key expires (`exp`).
pub fn verify_user_key(
    account: &ClientAccount,
    token: &str,
    now: i64,
) -> ApiResult<(ClientUser, Option<i64>)> {
    let key = account
        .signing_key
        .as_ref()
        .ok_or(ApiError::InvalidCredentials)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["sub"]);
    let data =
        jsonwebtoken::decode::<UserKeyClaims>(token, key, &validation).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::TokenExpired,
                _ => ApiError::InvalidCredentials,
            }
        })?;
    let claims = data.claims;
    if claims.sub.is_empty() || claims.iat.is_some_and(|iat| iat > now) {
        return Err(ApiError::InvalidCredentials);
    }
    let user = ClientUser {
        subject: claims.sub,
        topics: Some(claims.topics),
    };
    Ok((user, claims.exp))
}

/// A development-mode user id: any non-empty text up to 256 characters.
pub fn dev_user(account: &ClientAccount, user_id: &str) -> ApiResult<ClientUser> {
    if account.security_mode || user_id.is_empty() || user_id.chars().count() > 256 {
        return Err(ApiError::InvalidCredentials);
    }
    Ok(ClientUser {
        subject: user_id.to_string(),
        topics: None,
    })
}

/// A fresh 2048-bit RSA key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_signing_key() -> Result<(String, String), String> {
    let mut rng = rand::rngs::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?
        .to_string();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    Ok((private_pem, public_pem))
}

/// Checks an allowed origin: `scheme://host[:port]`, nothing after.
pub fn check_origin_syntax(origin: &str) -> ApiResult<()> {
    let invalid = || ApiError::invalid_origin(origin);
    let (scheme, rest) = origin.split_once("://").ok_or_else(invalid)?;
    let scheme_ok = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
    let host_ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use std::sync::OnceLock;

    fn keys() -> &'static (String, String) {
        static KEYS: OnceLock<(String, String)> = OnceLock::new();
        KEYS.get_or_init(|| generate_signing_key().unwrap())
    }

    fn account() -> ClientAccount {
        ClientAccount {
            user_id: "u".into(),
            security_mode: true,
            signing_key: Some(DecodingKey::from_rsa_pem(keys().1.as_bytes()).unwrap()),
            origins: vec!["https://app.example.com".into()],
        }
    }

    fn sign(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_rsa_pem(keys().0.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    }

    #[test]
    fn user_keys_are_checked_by_signature_and_time() {
        let now = 1_800_000_000;
        let ok = sign(json!({"sub": "alice", "iat": now, "exp": now + 60, "topics": ["a"]}));
        let (user, expires_at) = verify_user_key(&account(), &ok, now).unwrap();
        assert_eq!(expires_at, Some(now + 60));
        assert_eq!(user.subject, "alice");
        assert_eq!(user.topics, Some(vec!["a".to_string()]));
        let expired = sign(json!({"sub": "alice", "exp": 1000}));
        assert!(matches!(
            verify_user_key(&account(), &expired, now),
            Err(ApiError::TokenExpired)
        ));
        let future = sign(json!({"sub": "alice", "iat": now + 100}));
        assert!(verify_user_key(&account(), &future, now).is_err());
        let no_sub = sign(json!({"topics": []}));
        assert!(verify_user_key(&account(), &no_sub, now).is_err());
        let hs256 = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "alice"}),
            &EncodingKey::from_secret(keys().1.as_bytes()),
        )
        .unwrap();
        assert!(verify_user_key(&account(), &hs256, now).is_err());
    }

    #[test]
    fn origins_are_matched_exactly() {
        let a = account();
        assert!(a.check_origin(Some("https://app.example.com")).is_ok());
        assert!(a
            .check_origin(Some("https://app.example.com:8443"))
            .is_err());
        assert!(a.check_origin(None).is_err());
        assert!(check_origin_syntax("https://app.example.com:8443").is_ok());
        assert!(check_origin_syntax("https://app.example.com/path").is_err());
        assert!(check_origin_syntax("app.example.com").is_err());
    }
}
