-- New messages of a single SQLite node now wait in a journal file beside the
-- database (`<database>-recent`) instead of `recent_messages`: whatever waits in the
-- table moves into `messages`, and the table and its view go.
INSERT INTO messages (seq, id, topic, time, expires, message, title, priority, tags)
    SELECT seq, id, topic, time, expires, message, title, priority, tags FROM recent_messages;
DROP VIEW stored_messages;
DROP TABLE recent_messages;
