//! What a publisher sends, before it is checked: built from a request's text body and
//! headers or from the JSON of `POST /`, then turned into a [`Message`]. Pure: no I/O,
//! so the parsing can be tested and fuzzed on its own.

use std::time::Duration;

use serde::Deserialize;

use super::check_topic_name;
use super::message::{
    check_tags, check_title, parse_priority, parse_tags, Message, DEFAULT_PRIORITY, MESSAGE_EVENT,
};
use crate::error::{detail, ApiError};

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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct JsonPublish {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    topic: String,
    /// Not empty, nor only blanks.
    #[serde(default)]
    #[schema(required = true, min_length = 1, pattern = "\\S")]
    message: String,
    title: Option<String>,
    /// 1-5, or `min`, `low`, `default`, `high`, `max`, `urgent`.
    #[schema(schema_with = priority_schema)]
    priority: Option<serde_json::Value>,
    /// At most 10 (empty ones are dropped).
    #[serde(default)]
    tags: Vec<String>,
    /// Every other field, checked against ntfy's options that tidings lacks.
    #[serde(flatten)]
    #[schema(ignore)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// A priority as the JSON of `POST /` may give it: a number, a name, or `null`.
fn priority_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// One of ntfy's publish options that tidings does not implement. A publish that asks
/// for one is refused (400 naming it) rather than stored without it.
struct Unsupported {
    /// The header named in the refusal.
    header: &'static str,
    /// ntfy's other names for it, as headers or query parameters.
    aliases: &'static [&'static str],
    /// Its field in the JSON of `POST /`, if it has one.
    field: Option<&'static str>,
    /// Values that ask for what tidings does anyway (`Cache: yes`, `Markdown: no`).
    harmless: &'static [&'static str],
}

const YES: &[&str] = &["1", "yes", "true"];
const NO: &[&str] = &["0", "no", "false"];

/// ntfy's publish options that tidings lacks, with every name ntfy reads them by.
const UNSUPPORTED: &[Unsupported] = &[
    Unsupported {
        header: "X-Delay",
        aliases: &["delay", "x-at", "at", "x-in", "in"],
        field: Some("delay"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Email",
        aliases: &["x-e-mail", "email", "e-mail", "mail", "e"],
        field: Some("email"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Call",
        aliases: &["call"],
        field: Some("call"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Attach",
        aliases: &["attach", "a"],
        field: Some("attach"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Filename",
        aliases: &["filename", "file", "f"],
        field: Some("filename"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Click",
        aliases: &["click"],
        field: Some("click"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Actions",
        aliases: &["actions", "action"],
        field: Some("actions"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Icon",
        aliases: &["icon"],
        field: Some("icon"),
        harmless: &[],
    },
    Unsupported {
        header: "X-Message",
        aliases: &["message", "m"],
        field: None,
        harmless: &[],
    },
    Unsupported {
        header: "X-Markdown",
        aliases: &["markdown", "md"],
        field: Some("markdown"),
        harmless: NO,
    },
    Unsupported {
        header: "X-Cache",
        aliases: &["cache"],
        field: Some("cache"),
        harmless: YES,
    },
    Unsupported {
        header: "X-Firebase",
        aliases: &["firebase"],
        field: Some("firebase"),
        harmless: NO,
    },
    Unsupported {
        header: "X-UnifiedPush",
        aliases: &["unifiedpush", "up"],
        field: None,
        harmless: NO,
    },
    Unsupported {
        header: "X-Template",
        aliases: &["template", "tpl"],
        field: None,
        harmless: NO,
    },
    Unsupported {
        header: "X-Poll-ID",
        aliases: &["poll-id"],
        field: None,
        harmless: &[],
    },
    Unsupported {
        header: "X-Sequence-ID",
        aliases: &["sequence-id", "sid"],
        field: Some("sequence_id"),
        harmless: &[],
    },
];

impl Unsupported {
    /// Whether `value` asks for this option (an empty value asks for nothing, as in ntfy).
    fn asked(&self, value: &str) -> bool {
        let value = value.trim();
        !value.is_empty() && !self.harmless.iter().any(|h| value.eq_ignore_ascii_case(h))
    }
}

/// Refuses a `POST /{topic}` that asks for an option tidings does not implement.
/// `lookup` gives the value sent under a name (lower case), as a header or else as a
/// query parameter.
pub fn refuse_unsupported<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<(), ApiError> {
    for option in UNSUPPORTED {
        let names = std::iter::once(option.header).chain(option.aliases.iter().copied());
        let asked = names
            .filter_map(|name| lookup(&name.to_ascii_lowercase()))
            .any(|value| option.asked(value));
        if asked {
            return Err(ApiError::unsupported_header(option.header));
        }
    }
    Ok(())
}

/// Refuses a `POST /` whose JSON asks for an option tidings does not implement.
fn refuse_unsupported_fields(
    rest: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    for option in UNSUPPORTED {
        let Some(field) = option.field else { continue };
        // ntfy's clients send every field, each unused one with its empty value.
        let asked = match rest.get(field) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Array(items)) => !items.is_empty(),
            Some(serde_json::Value::Object(fields)) => !fields.is_empty(),
            Some(serde_json::Value::String(text)) => option.asked(text),
            Some(other) => option.asked(&other.to_string()),
        };
        if asked {
            return Err(ApiError::unsupported_field(field));
        }
    }
    Ok(())
}

impl Draft {
    /// `POST /{topic}`: the body is the message text.
    pub fn from_text(topic: String, body: Vec<u8>, fields: Fields<'_>) -> Result<Self, ApiError> {
        check_topic_name(&topic)?;
        let text =
            String::from_utf8(body).map_err(|_| ApiError::bad_request(detail::MESSAGE_NOT_UTF8))?;
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
        let request: JsonPublish = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
        check_topic_name(&request.topic)?;
        refuse_unsupported_fields(&request.rest)?;
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
            return Err(ApiError::bad_request(detail::MESSAGE_EMPTY));
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
    fn options_tidings_lacks_are_refused_by_any_of_their_names() {
        let sent = |pairs: &'static [(&'static str, &'static str)]| {
            refuse_unsupported(move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            sent(&[("x-delay", "10m")]),
            Err("Unsupported header: X-Delay".into())
        );
        assert_eq!(
            sent(&[("in", "30m")]),
            Err("Unsupported header: X-Delay".into())
        );
        assert_eq!(
            sent(&[("e-mail", "a@b.c")]),
            Err("Unsupported header: X-Email".into())
        );
        assert_eq!(
            sent(&[("md", "yes")]),
            Err("Unsupported header: X-Markdown".into())
        );
        assert_eq!(
            sent(&[("cache", "no")]),
            Err("Unsupported header: X-Cache".into())
        );
        // What tidings does anyway, and empty values, are no request for anything.
        assert_eq!(
            sent(&[
                ("cache", "yes"),
                ("x-firebase", "no"),
                ("x-markdown", "false")
            ]),
            Ok(())
        );
        assert_eq!(sent(&[("x-delay", " "), ("x-title", "t")]), Ok(()));
        let json = |body: &str| {
            Draft::from_json(body.as_bytes())
                .map(drop)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            json(r#"{"topic":"a","message":"m","delay":"10m"}"#),
            Err("Unsupported field: delay".into())
        );
        assert_eq!(
            json(r#"{"topic":"a","message":"m","markdown":true}"#),
            Err("Unsupported field: markdown".into())
        );
        assert_eq!(
            json(r#"{"topic":"a","message":"m","markdown":false,"cache":true,"email":null}"#),
            Ok(())
        );
        // ntfy's clients send every field: an empty list asks for nothing either.
        assert_eq!(
            json(r#"{"topic":"a","message":"m","actions":[],"click":null,"sequence_id":null}"#),
            Ok(())
        );
        assert_eq!(
            json(r#"{"topic":"a","message":"m","actions":[{"action":"view"}]}"#),
            Err("Unsupported field: actions".into())
        );
    }

    #[test]
    fn an_endless_keep_time_does_not_overflow() {
        let draft = Draft::from_json(br#"{"topic":"a","message":"m"}"#).unwrap();
        let m = draft.into_message(10, Duration::MAX, i64::MAX - 1).unwrap();
        assert_eq!(m.expires, i64::MAX);
    }
}
