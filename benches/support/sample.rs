//! The message the benchmarks publish: a typical notification with every field set.

use tidings::model::message::Message;

pub fn message(id: String, seq: i64) -> Message {
    Message {
        id,
        time: 1_795_000_000,
        event: "message",
        topic: "backups".into(),
        message: "Backup of db1 finished in 42 s".into(),
        title: Some("Backups".into()),
        priority: 4,
        tags: vec!["db".into(), "ok".into()],
        expires: 1_795_043_200,
        seq,
    }
}
