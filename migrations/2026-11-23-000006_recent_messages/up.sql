-- The newest messages of a node that is the only one storing them (SQLite). This
-- table has no index at all, not even on `seq`, so a commit writes the one page new
-- rows go to instead of one leaf of each index of `messages` (and one per topic in
-- the batch of `messages_topic_seq`). The writer moves its rows into `messages` in
-- bulk, where one leaf write serves many rows. It holds at most a few thousand rows,
-- so reading it whole is cheap.
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
-- Every stored message, wherever it is; readers query this.
CREATE VIEW stored_messages AS
    SELECT seq, id, topic, time, expires, message, title, priority, tags FROM messages
    UNION ALL
    SELECT seq, id, topic, time, expires, message, title, priority, tags FROM recent_messages;
