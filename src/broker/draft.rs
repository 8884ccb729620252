//! What a publisher sends, before it is checked: built from a request's text body and
//! headers or from the JSON of `POST /`, then turned into a [`Message`]. Pure: no I/O,
//! so the parsing can be tested and fuzzed on its own.

use std::time::Duration;

use serde::Deserialize;

use super::check_topic_name;
use super::message::{
    check_tags, check_title, parse_priority, parse_tags, Message, DEFAULT_PRIORITY, MESSAGE_EVENT,
};
use crate::error::ApiError;

/// Room for the JSON around the message text in `POST /`.
pub const JSON_OVERHEAD: usize = 16 * 1024;

/// What a publisher asked for, before it is checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Draft {
    pub topic: String,
    pub text: String,
    pub title: Option<String>,
    pub priority: Option<String>,
    pub tags: Vec<String>,
}

/// The text fields of `POST /{topic}` (from headers, or query parameters).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fields<'a> {
    pub title: Option<&'a str>,
    pub priority: Option<&'a str>,
    pub tags: Option<&'a str>,
}

/// `POST /` body (ntfy-compatible).
#[derive(Debug, Deserialize)]
struct JsonPublish {
    topic: String,
    #[serde(default)]
    message: String,
    title: Option<String>,
    priority: Option<serde_json::Value>,
    #[serde(default)]
    tags: Vec<String>,
}

impl Draft {
    /// `POST /{topic}`: the body is the message text.
    pub fn from_text(topic: String, body: Vec<u8>, fields: Fields<'_>) -> Result<Self, ApiError> {
        check_topic_name(&topic)?;
        let text = String::from_utf8(body)
            .map_err(|_| ApiError::bad_request("Message is not valid UTF-8"))?;
        Ok(Self {
            topic,
            text,
            title: fields.title.map(str::to_string),
            priority: fields.priority.map(str::to_string),
            tags: match fields.tags {
                Some(t) => parse_tags(t)?,
                None => Vec::new(),
            },
        })
    }

    /// `POST /` with `{"topic","message","title"?,"priority"?,"tags"?}`.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let request: JsonPublish = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
        check_topic_name(&request.topic)?;
        Ok(Self {
            topic: request.topic,
            text: request.message,
            title: request.title,
            priority: request.priority.map(|p| match p {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
            tags: check_tags(request.tags)?,
        })
    }

    /// Turns the draft into a message published at `now`, or says what is wrong.
    pub fn into_message(
        self,
        size_limit: usize,
        keep_for: Duration,
        now: i64,
    ) -> Result<Message, ApiError> {
        if self.text.len() > size_limit {
            return Err(ApiError::TooLarge);
        }
        if self.text.trim().is_empty() {
            return Err(ApiError::bad_request("Message is empty"));
        }
        let title = self.title.filter(|t| !t.trim().is_empty());
        if let Some(title) = &title {
            check_title(title)?;
        }
        let priority = match self.priority.as_deref() {
            Some(p) => parse_priority(p)?,
            None => DEFAULT_PRIORITY,
        };
        let keep_for = i64::try_from(keep_for.as_secs()).unwrap_or(i64::MAX);
        Ok(Message {
            // Both are given by the writer when it stores the message.
            id: String::new(),
            time: now,
            event: MESSAGE_EVENT,
            topic: self.topic,
            message: self.text,
            title,
            priority,
            tags: self.tags,
            expires: now.saturating_add(keep_for),
            seq: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_text_publish_with_fields_becomes_a_message() {
        let fields = Fields {
            title: Some("db1"),
            priority: Some("high"),
            tags: Some("disk, db"),
        };
        let draft = Draft::from_text("alerts".into(), b"Disk full".to_vec(), fields).unwrap();
        let m = draft.into_message(4096, HOUR, 1000).unwrap();
        assert_eq!((m.priority, m.expires), (4, 4600));
        assert_eq!(m.tags, ["disk", "db"]);
        assert_eq!(m.title.as_deref(), Some("db1"));
    }

    #[test]
    fn bad_drafts_say_what_is_wrong() {
        let none = Fields::default();
        let bad_utf8 = Draft::from_text("a".into(), vec![0xff], none).unwrap_err();
        assert_eq!(bad_utf8.to_string(), "Message is not valid UTF-8");
        let empty = Draft::from_text("a".into(), b"  ".to_vec(), none).unwrap();
        assert_eq!(
            empty.into_message(10, HOUR, 0).unwrap_err().to_string(),
            "Message is empty"
        );
        let big = Draft::from_text("a".into(), vec![b'x'; 11], none).unwrap();
        assert!(matches!(
            big.into_message(10, HOUR, 0),
            Err(ApiError::TooLarge)
        ));
        assert!(Draft::from_json(b"{\"topic\":\"api\",\"message\":\"x\"}").is_err());
        assert!(Draft::from_json(b"[]").is_err());
    }

    #[test]
    fn json_priorities_may_be_numbers_or_names() {
        let draft = Draft::from_json(br#"{"topic":"a","message":"m","priority":5}"#).unwrap();
        assert_eq!(draft.into_message(10, HOUR, 0).unwrap().priority, 5);
        let draft = Draft::from_json(br#"{"topic":"a","message":"m","priority":"min"}"#).unwrap();
        assert_eq!(draft.into_message(10, HOUR, 0).unwrap().priority, 1);
    }

    #[test]
    fn an_endless_keep_time_does_not_overflow() {
        let draft = Draft::from_json(br#"{"topic":"a","message":"m"}"#).unwrap();
        let m = draft.into_message(10, Duration::MAX, i64::MAX - 1).unwrap();
        assert_eq!(m.expires, i64::MAX);
    }
}
