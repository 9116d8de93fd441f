-- Invitations to a world (InvitationService). The invitee is named by user id or by
-- email address: `invitee_key` is `user:<id>` or `email:<address in lowercase>`, and a
-- world has at most one PENDING invitation per key (inviting again updates it). A
-- PENDING invitation past `expire_time` reads as EXPIRED. No foreign key on the inviter:
-- an invitation outlives the administrator who may have sent it.
CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,
    world_id      TEXT NOT NULL REFERENCES worlds (id) ON DELETE CASCADE,
    inviter_id    TEXT NOT NULL,
    invitee_key   TEXT NOT NULL,
    -- An invitation by username: the user. By email: NULL, and the address as typed.
    invitee_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    invitee_email TEXT,
    role          TEXT NOT NULL,
    message       TEXT NOT NULL,
    state         TEXT NOT NULL,
    create_time   BIGINT NOT NULL,
    update_time   BIGINT NOT NULL,
    expire_time   BIGINT NOT NULL
);
CREATE UNIQUE INDEX invitations_open ON invitations (world_id, invitee_key) WHERE state = 'PENDING';
CREATE INDEX invitations_invitee ON invitations (invitee_key, state, id);
CREATE INDEX invitations_world ON invitations (world_id, state, id);
