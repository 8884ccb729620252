-- The staging table and its view as migration 000006 made them (empty).
CREATE TABLE recent_messages (
    seq BIGINT NOT NULL,
    id VARCHAR(32) NOT NULL,
    topic VARCHAR(64) NOT NULL,
    time BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    message TEXT NOT NULL,
    title TEXT,
    priority INTEGER NOT NULL,
    tags TEXT NOT NULL
);
CREATE VIEW stored_messages AS
    SELECT seq, id, topic, time, expires, message, title, priority, tags FROM messages
    UNION ALL
    SELECT seq, id, topic, time, expires, message, title, priority, tags FROM recent_messages;
