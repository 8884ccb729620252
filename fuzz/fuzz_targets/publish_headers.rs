//! `POST /{topic}`: the topic name, the body and the `X-Title`, `X-Priority` and
//! `X-Tags` headers (or their query parameters) become a message or a 400/413, and a
//! message encodes for every transport.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::model::draft::{Draft, Fields};
use tidings_fuzz::{encode_everywhere, KEEP_FOR, NOW, SIZE_LIMIT};

fuzz_target!(|input: (String, Vec<u8>, Option<&str>, Option<&str>, Option<&str>)| {
    let (topic, body, title, priority, tags) = input;
    let fields = Fields {
        title,
        priority,
        tags,
    };
    if let Ok(draft) = Draft::from_text(topic, body, fields) {
        if let Ok(message) = draft.into_message(SIZE_LIMIT, KEEP_FOR, NOW) {
            encode_everywhere(message);
        }
    }
});
