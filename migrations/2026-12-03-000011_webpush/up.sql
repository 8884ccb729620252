-- Web Push. Portable SQL (SQLite and PostgreSQL); times are unix milliseconds in the
-- queue, unix seconds elsewhere.

-- A browser's push subscription: where its push service takes pushes, and the keys
-- they are encrypted to (RFC 8291).
CREATE TABLE webpush_subscriptions (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webpush_subscriptions_user ON webpush_subscriptions (user_id, created_at);

-- The topics each subscription receives.
CREATE TABLE webpush_topics (
    subscription_id VARCHAR(36) NOT NULL REFERENCES webpush_subscriptions (id) ON DELETE CASCADE,
    topic VARCHAR(64) NOT NULL,
    PRIMARY KEY (subscription_id, topic)
);
CREATE INDEX webpush_topics_topic ON webpush_topics (topic);

-- Pushes not yet accepted by their push service: written when the message is
-- stored, deleted once delivered (or given up), so a restart loses none.
CREATE TABLE webpush_queue (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    subscription_id VARCHAR(36) NOT NULL REFERENCES webpush_subscriptions (id) ON DELETE CASCADE,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    give_up_at BIGINT NOT NULL
);
CREATE INDEX webpush_queue_due ON webpush_queue (next_attempt_at);
