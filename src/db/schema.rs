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

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        username -> Text,
        password_hash -> Text,
        tier -> Text,
        client_key -> Text,
        security_mode -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        family -> Text,
        token_hash -> Text,
        expires_at -> BigInt,
        rotated -> Bool,
        revoked -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    topics (name) {
        name -> Text,
        owner_id -> Text,
        visibility -> Text,
        description -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    topic_tokens (id) {
        id -> Text,
        topic -> Text,
        name -> Text,
        token_hash -> Text,
        can_read -> Bool,
        can_write -> Bool,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        total_requests -> BigInt,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> Text,
        user_id -> Text,
        public_key_pem -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    allowed_origins (user_id, origin) {
        user_id -> Text,
        origin -> Text,
    }
}

diesel::table! {
    oidc_logins (state_hash) {
        state_hash -> Text,
        provider -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        redirect_uri -> Text,
        redirect_to -> Nullable<Text>,
        expires_at -> BigInt,
    }
}

diesel::table! {
    oidc_identities (issuer, subject) {
        issuer -> Text,
        subject -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webpush_subscriptions (id) {
        id -> Text,
        user_id -> Text,
        endpoint -> Text,
        p256dh -> Text,
        auth -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webpush_topics (subscription_id, topic) {
        subscription_id -> Text,
        topic -> Text,
    }
}

diesel::table! {
    webpush_queue (id) {
        id -> Text,
        subscription_id -> Text,
        payload -> Text,
        priority -> Integer,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        give_up_at -> BigInt,
    }
}

diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(webpush_subscriptions -> users (user_id));
diesel::joinable!(webpush_topics -> webpush_subscriptions (subscription_id));
diesel::joinable!(webpush_queue -> webpush_subscriptions (subscription_id));
diesel::joinable!(oidc_identities -> users (user_id));
diesel::joinable!(signing_keys -> users (user_id));
diesel::joinable!(allowed_origins -> users (user_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(topics -> users (owner_id));
diesel::joinable!(topic_tokens -> topics (topic));

diesel::allow_tables_to_appear_in_same_query!(
    messages,
    users,
    refresh_tokens,
    api_keys,
    topics,
    topic_tokens,
    settings,
    counters,
    signing_keys,
    allowed_origins,
    oidc_logins,
    oidc_identities,
    webpush_subscriptions,
    webpush_topics,
    webpush_queue,
);
