DROP TABLE allowed_origins;
DROP TABLE signing_keys;
