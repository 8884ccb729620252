//! Table definitions (kept in step with `migrations/`).

diesel::table! {
    messages (seq) {
        seq -> BigInt,
        id -> Text,
        topic -> Text,
        time -> BigInt,
        expires -> BigInt,
        message -> Text,
        title -> Nullable<Text>,
        priority -> Integer,
        tags -> Text,
    }
}
