-- Password guessing is slowed down per target: an account, or a login that names no
-- account, so that an unknown login is answered like a known one, locks included.
CREATE TABLE login_throttle (
    target       TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    last_failure BIGINT NOT NULL
);
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;
