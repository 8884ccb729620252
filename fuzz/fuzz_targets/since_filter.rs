//! `since=` and the subscriber filters (`priority=`, `tags=`, `title=`): any text is
//! either parsed or refused with a 400, and a parsed filter can be applied.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::model::since::{Filter, Since};
use tidings_fuzz::sample_message;

fuzz_target!(|input: (&str, Option<&str>, Option<&str>, Option<&str>, i64)| {
    let (since, priority, tags, title, now) = input;
    let _ = Since::parse(since, now);
    if let Ok(filter) = Filter::parse(priority, tags, title) {
        let _ = filter.is_empty();
        let _ = filter.matches(&sample_message());
    }
});
