-- Stored messages. `seq` is assigned by the single writer and orders everything.
CREATE TABLE messages (
    seq BIGINT PRIMARY KEY NOT NULL,
    id VARCHAR(32) NOT NULL UNIQUE,
    topic VARCHAR(64) NOT NULL,
    time BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    message TEXT NOT NULL,
    title TEXT,
    priority INTEGER NOT NULL,
    tags TEXT NOT NULL
);
CREATE INDEX messages_topic_seq ON messages (topic, seq);
CREATE INDEX messages_expires ON messages (expires);
