-- Access tokens carry their issue time to the millisecond: a password change now
-- refuses the tokens issued before it, not only those of earlier seconds.
ALTER TABLE users RENAME COLUMN tokens_valid_after TO tokens_valid_after_ms;
UPDATE users SET tokens_valid_after_ms = tokens_valid_after_ms * 1000;
