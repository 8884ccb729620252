-- Emails and usernames are unique without regard to case (`ALICE` is `alice`), and
-- logins look emails up by `lower(email)`. Both backends support expression indexes.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
