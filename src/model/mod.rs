//! The message and what is parsed about it: the message object and its encodings
//! (`message`), a publish's fields (`draft`), `since=` and filters (`since`), and topic
//! names. Pure: no I/O, used by every layer above.

pub mod draft;
pub mod message;
pub mod since;

use crate::error::{detail, ApiError};

/// Names used by the API's own paths; topics cannot take them.
pub const RESERVED_TOPIC_NAMES: &[&str] = &[
    "api", "auth", "health", "metrics", "docs", "static", "app", "v1", "admin", "login", "signup",
    "account", "settings", "_",
];

/// Topic names match `^[A-Za-z0-9_-]{1,64}$` and are not reserved.
pub fn check_topic_name(name: &str) -> Result<(), ApiError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(ApiError::bad_request(detail::INVALID_TOPIC_NAME));
    }
    if RESERVED_TOPIC_NAMES
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(ApiError::reserved_topic_name(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_topic_name;

    #[test]
    fn reserved_names_are_refused_in_any_case() {
        for name in ["api", "API", "Admin", "_"] {
            assert!(check_topic_name(name).is_err(), "{name}");
        }
        for name in ["apis", "backups", "my-app", "a_b"] {
            assert!(check_topic_name(name).is_ok(), "{name}");
        }
    }
}
