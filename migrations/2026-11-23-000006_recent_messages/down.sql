DROP VIEW stored_messages;
INSERT INTO messages (seq, id, topic, time, expires, message, title, priority, tags)
    SELECT seq, id, topic, time, expires, message, title, priority, tags FROM recent_messages;
DROP TABLE recent_messages;
