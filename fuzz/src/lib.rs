//! What the fuzz targets share: the server's defaults and the encodings every
//! subscriber transport gets.

use std::time::Duration;

use tidings::model::message::{Envelope, Message, Transport};

/// The default `message_size_limit`.
pub const SIZE_LIMIT: usize = 4096;
/// The default `cache_duration`.
pub const KEEP_FOR: Duration = Duration::from_secs(12 * 3600);
pub const NOW: i64 = 1_764_000_000;

/// A stored message as subscribers would get it.
pub fn sample_message() -> Message {
    let mut message = tidings::model::draft::Draft::from_json(
        br#"{"topic":"alerts","message":"Disk full","title":"db1","priority":4,"tags":["disk"]}"#,
    )
    .and_then(|d| d.into_message(SIZE_LIMIT, KEEP_FOR, NOW))
    .expect("the sample is valid");
    message.id = "1abcdef".into();
    message.seq = 1;
    message
}

/// Encodes `message` for every transport, as a topic does for its subscribers, and
/// checks each frame is one event: an SSE event ends at its blank line and nowhere
/// before, a JSON line is the message's JSON, a raw line is one line.
pub fn encode_everywhere(mut message: Message) {
    message.id = "1abcdef".into();
    message.seq = 1;
    let text = message.message.clone();
    let envelope = Envelope::new(message);
    let sse = envelope.frame(Transport::Sse);
    let body = sse.strip_suffix(b"\n\n").expect("an SSE event ends with a blank line");
    assert!(!body.windows(2).any(|w| w == b"\n\n") && !body.contains(&b'\r'));
    for transport in [Transport::Ws, Transport::Json] {
        let line = envelope.frame(transport);
        let json = line.strip_suffix(b"\n").expect("a JSON line ends with a newline");
        let value: serde_json::Value = serde_json::from_slice(json).expect("valid JSON");
        assert_eq!(value["message"].as_str(), Some(text.as_str()));
    }
    let raw = envelope.frame(Transport::Raw);
    let line = raw.strip_suffix(b"\n").expect("a raw line ends with a newline");
    assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
}
