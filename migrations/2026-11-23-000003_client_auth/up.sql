-- Browser access: one RS256 public key per account and its allowed origins.
CREATE TABLE signing_keys (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    public_key_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE allowed_origins (
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    origin VARCHAR(512) NOT NULL,
    PRIMARY KEY (user_id, origin)
);
