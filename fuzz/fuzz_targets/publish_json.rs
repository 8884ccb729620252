//! `POST /` with a JSON body: any bytes become a message or a 400/413, and a message
//! encodes for every transport.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::model::draft::Draft;
use tidings_fuzz::{encode_everywhere, KEEP_FOR, NOW, SIZE_LIMIT};

fuzz_target!(|body: &[u8]| {
    if let Ok(draft) = Draft::from_json(body) {
        if let Ok(message) = draft.into_message(SIZE_LIMIT, KEEP_FOR, NOW) {
            encode_everywhere(message);
        }
    }
});
