//! Small helpers shared across modules: clocks and random identifiers.

use rand::distributions::Alphanumeric;
use rand::Rng;

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `len` random ASCII letters and digits (message ids, event ids).
pub fn random_id(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Digits in ASCII order, so that fixed-width numbers written with them sort as text
/// in the same order as the numbers.
const ORDERED_DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of a message id, and width of the sequence number it starts with.
const MESSAGE_ID_LEN: usize = 12;
const SEQ_DIGITS: usize = 7;

/// A message id: the message's sequence number in 7 ordered base-62 digits, then 5
/// random characters. Unique because sequence numbers are, and ids of later messages
/// sort after earlier ones. [`message_seq`] reads the number back, so a message is
/// found by id through its primary key and the id needs no index of its own.
pub fn message_id(seq: i64) -> String {
    let mut digits = [b'0'; SEQ_DIGITS];
    let mut rest = seq.max(0) as u64;
    for slot in digits.iter_mut().rev() {
        *slot = ORDERED_DIGITS[(rest % 62) as usize];
        rest /= 62;
    }
    let mut id = String::with_capacity(MESSAGE_ID_LEN);
    id.extend(digits.iter().map(|&d| char::from(d)));
    id.push_str(&random_id(MESSAGE_ID_LEN - SEQ_DIGITS));
    id
}

/// The sequence number a [`message_id`] starts with; `None` for text that is not
/// shaped like one.
pub fn message_seq(id: &str) -> Option<i64> {
    if id.len() != MESSAGE_ID_LEN || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    id.bytes().take(SEQ_DIGITS).try_fold(0i64, |seq, digit| {
        let value = ORDERED_DIGITS.iter().position(|&d| d == digit)?;
        Some(seq * 62 + value as i64)
    })
}

/// Unix seconds as an RFC 3339 UTC string (`2026-11-22T10:30:00Z`).
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn rfc3339_opt(secs: Option<i64>) -> Option<String> {
    secs.map(rfc3339)
}

/// An RFC 3339 time (any offset) as unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(
            parse_rfc3339("2026-11-18T12:06:40+01:00"),
            Some(1_795_000_000)
        );
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }

    #[test]
    fn message_ids_sort_like_their_sequence_numbers() {
        let seqs = [
            0,
            1,
            9,
            10,
            61,
            62,
            3843,
            3844,
            1_000_000,
            2_000_000_000,
            3_500_000_000_000,
        ];
        let ids: Vec<String> = seqs.iter().map(|&s| message_id(s)).collect();
        assert!(ids.iter().all(|id| id.len() == 12));
        assert!(ids
            .iter()
            .all(|id| id.chars().all(|c| c.is_ascii_alphanumeric())));
        assert!(ids.windows(2).all(|pair| pair[0][..7] < pair[1][..7]));
        assert_eq!(&message_id(62)[..7], "0000010");
        assert_ne!(message_id(5), message_id(5), "the tail is random");
        for seq in seqs {
            assert_eq!(message_seq(&message_id(seq)), Some(seq));
        }
        assert_eq!(message_seq("00000A0abcde"), Some(620));
        assert_eq!(message_seq("short"), None);
        assert_eq!(message_seq("00000-0abcde"), None);
        assert_eq!(message_seq("00000é0abcd"), None);
    }
}
