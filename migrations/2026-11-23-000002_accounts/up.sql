-- Accounts and credentials. Portable SQL (SQLite and PostgreSQL); times are unix seconds.
CREATE TABLE users (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    email VARCHAR(320) NOT NULL UNIQUE,
    username VARCHAR(64) NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    tier VARCHAR(32) NOT NULL,
    client_key VARCHAR(64) NOT NULL UNIQUE,
    security_mode BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family VARCHAR(36) NOT NULL,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    rotated BOOLEAN NOT NULL DEFAULT FALSE,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE api_keys (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name VARCHAR(128) NOT NULL,
    prefix VARCHAR(8) NOT NULL,
    key_hash VARCHAR(64) NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE topics (
    name VARCHAR(64) PRIMARY KEY NOT NULL,
    owner_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    visibility VARCHAR(16) NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX topics_owner ON topics (owner_id);

CREATE TABLE topic_tokens (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    topic VARCHAR(64) NOT NULL REFERENCES topics (name) ON DELETE CASCADE,
    name VARCHAR(128) NOT NULL,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    can_read BOOLEAN NOT NULL,
    can_write BOOLEAN NOT NULL,
    created_by VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    total_requests BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX topic_tokens_topic ON topic_tokens (topic);

-- Server-wide values: the generated JWT secret, the credential-cache epoch.
CREATE TABLE settings (
    name VARCHAR(64) PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
