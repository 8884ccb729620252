-- SQLite only: `seq` becomes the table's rowid (a column declared exactly
-- `INTEGER PRIMARY KEY`), so each message is stored in one b-tree and found by its
-- number in one search, instead of in the table plus a unique index on `seq` written
-- with every insert. PostgreSQL keeps its BIGINT key.
CREATE TABLE messages_next (
    seq INTEGER PRIMARY KEY NOT NULL,
    id VARCHAR(32) NOT NULL,
    topic VARCHAR(64) NOT NULL,
    time BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    message TEXT NOT NULL,
    title TEXT,
    priority INTEGER NOT NULL,
    tags TEXT NOT NULL
);
INSERT INTO messages_next (seq, id, topic, time, expires, message, title, priority, tags)
    SELECT seq, id, topic, time, expires, message, title, priority, tags FROM messages;
DROP TABLE messages;
ALTER TABLE messages_next RENAME TO messages;
CREATE INDEX messages_topic_seq ON messages (topic, seq);
CREATE INDEX messages_expires ON messages (expires);
