-- Counters advanced inside the transactions that use them. `message_seq` is the last
-- message sequence number handed out: its row lock orders the commits of every
-- node sharing the database, and it never goes back when old messages are pruned.
CREATE TABLE counters (
    name VARCHAR(32) PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) SELECT 'message_seq', COALESCE(MAX(seq), 0) FROM messages;
