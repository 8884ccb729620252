-- Sign-in with OpenID Connect. Portable SQL (SQLite and PostgreSQL); times are unix
-- seconds.

-- Sign-ins in progress, kept here rather than in one process so that a sign-in
-- started on one node (or worker) can finish on another. A row is deleted when its
-- callback arrives: each `state` is used once.
CREATE TABLE oidc_logins (
    state_hash VARCHAR(64) PRIMARY KEY NOT NULL,
    provider VARCHAR(32) NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_to TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_logins_expiry ON oidc_logins (expires_at);

-- The provider identities (issuer and subject) linked to accounts.
CREATE TABLE oidc_identities (
    issuer VARCHAR(512) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);
