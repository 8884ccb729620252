//! Secrets: random tokens, their SHA-256 digests, password hashing (argon2id), and
//! constant-time comparison.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const API_KEY_PREFIX: &str = "noti_";
pub const TOPIC_TOKEN_PREFIX: &str = "tk_";
/// Characters of an API key shown in listings (after `noti_`).
pub const SHOWN_PREFIX_LEN: usize = 8;

/// `prefix` + 43 url-safe characters (32 random bytes).
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A random identifier for database rows (UUID-shaped, version 4).
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Hex SHA-256 of a random secret; what the database stores and caches are keyed by.
pub fn digest(secret: &str) -> String {
    // Into a buffer first: `hex::encode` builds its string a char at a time, and this
    // runs for every request that presents a key or token.
    let mut digits = [0u8; 64];
    let filled = hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut digits);
    debug_assert!(filled.is_ok(), "32 bytes fill 64 hex digits");
    String::from_utf8_lossy(&digits).into_owned()
}

pub fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hashing with default parameters")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_prefix_and_length() {
        let key = random_secret(API_KEY_PREFIX);
        assert!(key.starts_with("noti_"));
        assert_eq!(key.len(), 5 + 43);
        assert_ne!(key, random_secret(API_KEY_PREFIX));
    }

    #[test]
    fn passwords_verify_only_with_the_right_text() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
    }

    #[test]
    fn digests_compare_in_constant_time() {
        assert!(same(&digest("a"), &digest("a")));
        assert!(!same(&digest("a"), &digest("b")));
        assert_eq!(
            digest("a"),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        );
        assert_eq!(new_id().len(), 36);
    }
}
