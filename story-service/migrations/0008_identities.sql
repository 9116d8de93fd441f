-- Identities at OpenID Connect providers linked to accounts, and the code flows under
-- way. An account created by a first sign-in with a provider has no password: its
-- password_hash is '!', which is no PHC string, so no password ever matches it.
CREATE TABLE user_identities (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    -- The provider's `sub`.
    subject     TEXT NOT NULL,
    email       TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id, create_time);

-- A started code flow, found by the SHA-256 of its `state` and consumed by its finish.
CREATE TABLE oidc_flows (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    -- The signed-in user who is linking an identity; NULL for a sign-in.
    link_user_id  TEXT,
    expire_time   BIGINT NOT NULL
);
CREATE INDEX oidc_flows_expiry ON oidc_flows (expire_time);
