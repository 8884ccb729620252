//! The message object and its wire encodings, each built at most once per message.

use std::sync::OnceLock;

use bytes::Bytes;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::util::{now_unix, random_id};

pub const MAX_TAGS: usize = 10;
pub const MAX_TITLE_CHARS: usize = 256;
pub const DEFAULT_PRIORITY: u8 = 3;
/// The `event` of a published message.
pub const MESSAGE_EVENT: &str = "message";
/// The `event` of the control event sent while a subscription is idle.
pub const KEEPALIVE_EVENT: &str = "keepalive";
/// The `event` of a subscription's final control event; its `message` says why.
pub const CLOSE_EVENT: &str = "close";

/// The message object of the contract (ntfy-compatible field names). Its JSON is also
/// how a journal line and a message sent between cluster nodes look; read back with
/// [`Message::from_json`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Message {
    pub id: String,
    /// Unix seconds.
    pub time: i64,
    /// `message`; on streams also `open`, `keepalive` and `close`.
    #[schema(value_type = String)]
    pub event: &'static str,
    pub topic: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub title: Option<String>,
    #[schema(minimum = 1, maximum = 5)]
    pub priority: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub tags: Vec<String>,
    pub expires: i64,
    /// Position in the global order; assigned by the writer, never sent: it leads
    /// the id, and is read back from there.
    #[serde(skip)]
    pub seq: i64,
}

impl Message {
    /// A stored message's JSON read back, its sequence number taken from its id;
    /// `None` for anything else.
    pub fn from_json(json: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(json).ok()?.numbered()
    }

    /// The message with its sequence number taken from its id; `None` when the id
    /// does not carry one.
    pub fn numbered(mut self) -> Option<Self> {
        self.seq = crate::util::message_seq(&self.id)?;
        Some(self)
    }
}

/// Reads the JSON [`Message`] writes (a message event: `event` is the one static name).
impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            id: String,
            time: i64,
            event: String,
            topic: String,
            message: String,
            #[serde(default)]
            title: Option<String>,
            priority: u8,
            #[serde(default)]
            tags: Vec<String>,
            expires: i64,
        }
        let f = Fields::deserialize(d)?;
        if f.event != MESSAGE_EVENT {
            return Err(serde::de::Error::custom("not a message event"));
        }
        Ok(Self {
            id: f.id,
            time: f.time,
            event: MESSAGE_EVENT,
            topic: f.topic,
            message: f.message,
            title: f.title,
            priority: f.priority,
            tags: f.tags,
            expires: f.expires,
            seq: 0,
        })
    }
}

/// The ways a message can be written to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Ws,
    Json,
    Raw,
}

impl Transport {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sse" => Some(Self::Sse),
            "ws" => Some(Self::Ws),
            "json" => Some(Self::Json),
            "raw" => Some(Self::Raw),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sse => "sse",
            Self::Ws => "ws",
            Self::Json => "json",
            Self::Raw => "raw",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Sse => "text/event-stream",
            Self::Json => "application/x-ndjson",
            Self::Raw => "text/plain; charset=utf-8",
            Self::Ws => "application/json",
        }
    }
}

/// A stored message shared by every subscriber of its topic: the JSON is encoded once,
/// and each transport's frame is built the first time a subscriber needs it. A
/// session's control events (`open`, `keepalive`, `close`) travel in envelopes too, so
/// a subscriber's queue holds one kind of pointer.
#[derive(Debug)]
pub struct Envelope {
    pub message: Message,
    pub json: ByteString,
    sse: OnceLock<Bytes>,
    json_line: OnceLock<Bytes>,
    raw_line: OnceLock<Bytes>,
}

impl Envelope {
    pub fn new(message: Message) -> Self {
        let json = serde_json::to_string(&message).expect("message serializes");
        Self::encoded(message, json)
    }

    /// A control event for a subscriber of `topics` (names joined with commas), with
    /// `reason` as its `message` field. Its JSON has only the fields a control event
    /// carries.
    pub fn control(event: &'static str, topics: &str, reason: Option<&str>) -> Self {
        let control = Control {
            id: random_id(12),
            time: now_unix(),
            event,
            topic: topics,
            message: reason,
        };
        let json = serde_json::to_string(&control).expect("control event serializes");
        let message = Message {
            id: control.id,
            time: control.time,
            event,
            topic: topics.to_string(),
            message: reason.unwrap_or_default().to_string(),
            title: None,
            priority: DEFAULT_PRIORITY,
            tags: Vec::new(),
            expires: 0,
            seq: 0,
        };
        Self::encoded(message, json)
    }

    /// A stored message's JSON (as another node sent it), kept as its encoding.
    pub fn from_json(json: String) -> Option<Self> {
        let message = Message::from_json(json.as_bytes())?;
        Some(Self::encoded(message, json))
    }

    fn encoded(message: Message, json: String) -> Self {
        Self {
            message,
            json: json.into(),
            sse: OnceLock::new(),
            json_line: OnceLock::new(),
            raw_line: OnceLock::new(),
        }
    }

    pub fn seq(&self) -> i64 {
        self.message.seq
    }

    /// Whether this is a published message rather than a control event.
    pub fn is_message(&self) -> bool {
        self.message.event == MESSAGE_EVENT
    }

    /// The bytes a stream transport writes for this event. Only messages carry an SSE
    /// id (the one `Last-Event-ID` resumes from); raw streams write control events as
    /// empty lines.
    pub fn frame(&self, transport: Transport) -> Bytes {
        match transport {
            Transport::Sse => self
                .sse
                .get_or_init(|| {
                    let id = self.is_message().then_some(self.message.id.as_str());
                    sse_frame(id, self.message.event, &self.json)
                })
                .clone(),
            Transport::Json | Transport::Ws => {
                self.json_line.get_or_init(|| line(&self.json)).clone()
            }
            Transport::Raw if !self.is_message() => Bytes::from_static(b"\n"),
            Transport::Raw => self
                .raw_line
                .get_or_init(|| line(&self.message.message.replace(['\n', '\r'], " ")))
                .clone(),
        }
    }
}

fn line(text: &str) -> Bytes {
    let mut out = String::with_capacity(text.len() + 1);
    out.push_str(text);
    out.push('\n');
    Bytes::from(out)
}

/// One Server-Sent Event; `data` must be a single line (JSON is).
pub fn sse_frame(id: Option<&str>, event: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// A control event (`open`, `keepalive`, `close`) in the message object's shape.
#[derive(Debug, Serialize)]
struct Control<'a> {
    id: String,
    time: i64,
    event: &'a str,
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// `1`–`5` or the ntfy names `min`, `low`, `default`, `high`, `max`/`urgent`.
pub fn parse_priority(text: &str) -> Result<u8, ApiError> {
    let p = match text.trim().to_ascii_lowercase().as_str() {
        "" | "default" | "3" => 3,
        "1" | "min" => 1,
        "2" | "low" => 2,
        "4" | "high" => 4,
        "5" | "max" | "urgent" => 5,
        _ => return Err(ApiError::invalid_priority(text)),
    };
    Ok(p)
}

/// Comma-separated tags, blanks dropped, at most [`MAX_TAGS`].
pub fn parse_tags(text: &str) -> Result<Vec<String>, ApiError> {
    check_tags(split_list(text))
}

/// Tags given as a list: blanks dropped, at most [`MAX_TAGS`].
pub fn check_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    let tags: Vec<String> = tags
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tags.len() > MAX_TAGS {
        return Err(ApiError::too_many_tags(tags.len(), MAX_TAGS));
    }
    Ok(tags)
}

pub fn check_title(title: &str) -> Result<(), ApiError> {
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::title_too_long(MAX_TITLE_CHARS));
    }
    Ok(())
}

pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            id: "abc".into(),
            time: 10,
            event: "message",
            topic: "t".into(),
            message: "two\nlines".into(),
            title: None,
            priority: 3,
            tags: vec![],
            expires: 20,
            seq: 1,
        }
    }

    #[test]
    fn priorities_by_number_and_name() {
        assert_eq!(parse_priority("urgent").unwrap(), 5);
        assert_eq!(parse_priority("MIN").unwrap(), 1);
        assert_eq!(parse_priority("4").unwrap(), 4);
        assert!(parse_priority("6").is_err());
        assert!(parse_priority("loud").is_err());
    }

    #[test]
    fn tags_are_limited() {
        assert_eq!(parse_tags(" a, b ,,c").unwrap(), vec!["a", "b", "c"]);
        assert!(parse_tags("1,2,3,4,5,6,7,8,9,10,11").is_err());
    }

    #[test]
    fn frames_share_one_encoding() {
        let env = Envelope::new(sample());
        let sse = env.frame(Transport::Sse);
        assert!(sse.starts_with(b"id: abc\nevent: message\ndata: {\"id\":\"abc\""));
        assert!(sse.ends_with(b"\n\n"));
        assert_eq!(
            env.frame(Transport::Raw),
            Bytes::from_static(b"two lines\n")
        );
        assert!(!env.json.contains("seq"));
        assert_eq!(env.frame(Transport::Sse).as_ptr(), sse.as_ptr());
    }

    #[test]
    fn control_events_have_their_own_shape() {
        let close = Envelope::control("close", "a,b", Some("Topic deleted"));
        assert!(!close.is_message());
        let json: serde_json::Value = serde_json::from_str(&close.json).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5, "{json}");
        assert_eq!(json["event"], "close");
        assert_eq!(json["topic"], "a,b");
        assert_eq!(json["message"], "Topic deleted");
        let sse = close.frame(Transport::Sse);
        assert!(
            sse.starts_with(b"event: close\ndata: {"),
            "no id line: {sse:?}"
        );
        assert_eq!(close.frame(Transport::Raw), Bytes::from_static(b"\n"));
        assert_eq!(close.frame(Transport::Json), line(&close.json));
        let keepalive = Envelope::control(KEEPALIVE_EVENT, "a", None);
        assert!(
            !keepalive.json.contains("\"message\""),
            "{}",
            keepalive.json
        );
    }
}
