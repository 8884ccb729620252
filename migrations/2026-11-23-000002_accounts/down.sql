DROP TABLE settings;
DROP TABLE topic_tokens;
DROP TABLE topics;
DROP TABLE api_keys;
DROP TABLE refresh_tokens;
DROP TABLE users;
