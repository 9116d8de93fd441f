-- Fabula story-service schema. Portable between SQLite and PostgreSQL: ids are UUID
-- text (v7, so they sort by creation), times are microseconds since the Unix epoch,
-- flags are 0/1 integers. Children cascade from their world; links cascade from both ends.

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    username           TEXT NOT NULL,
    username_key       TEXT NOT NULL UNIQUE,
    email              TEXT NOT NULL,
    email_key          TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    role               TEXT NOT NULL,
    gpt_enabled        BIGINT NOT NULL DEFAULT 0,
    disabled           BIGINT NOT NULL DEFAULT 0,
    -- Access tokens issued before this second are refused.
    tokens_valid_after BIGINT NOT NULL DEFAULT 0,
    failed_logins      BIGINT NOT NULL DEFAULT 0,
    locked_until       BIGINT NOT NULL DEFAULT 0,
    -- Bumped to serialise quota checks of one user.
    quota_lock         BIGINT NOT NULL DEFAULT 0,
    create_time        BIGINT NOT NULL,
    update_time        BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL,
    used        BIGINT NOT NULL DEFAULT 0,
    revoked     BIGINT NOT NULL DEFAULT 0,
    create_time BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE create_requests (
    caller_id     TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    create_time   BIGINT NOT NULL,
    PRIMARY KEY (caller_id, request_id)
);

CREATE TABLE worlds (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    world_type  TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    -- The last story order handed out; bumped under the row lock.
    story_seq   BIGINT NOT NULL DEFAULT 0,
    version     BIGINT NOT NULL DEFAULT 1,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX worlds_owner ON worlds (owner_id, visibility);
CREATE INDEX worlds_visibility ON worlds (visibility, id);

CREATE TABLE world_shares (
    world_id    TEXT NOT NULL REFERENCES worlds (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (world_id, user_id)
);
CREATE INDEX world_shares_user ON world_shares (user_id, world_id);

CREATE TABLE stories (
    id          TEXT PRIMARY KEY,
    world_id    TEXT NOT NULL REFERENCES worlds (id) ON DELETE CASCADE,
    owner_id    TEXT NOT NULL REFERENCES users (id),
    title       TEXT NOT NULL,
    content     TEXT NOT NULL,
    format      TEXT NOT NULL,
    genre       TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '',
    visibility  TEXT NOT NULL,
    sort_order  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX stories_world_order ON stories (world_id, sort_order, id);
CREATE INDEX stories_owner ON stories (owner_id, visibility);

CREATE TABLE entities (
    id          TEXT PRIMARY KEY,
    world_id    TEXT NOT NULL REFERENCES worlds (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    description TEXT NOT NULL,
    -- A JSON object of string to string.
    attributes  TEXT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX entities_world ON entities (world_id, id);

CREATE TABLE locations (
    id          TEXT PRIMARY KEY,
    world_id    TEXT NOT NULL REFERENCES worlds (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    x           DOUBLE PRECISION,
    y           DOUBLE PRECISION,
    version     BIGINT NOT NULL DEFAULT 1,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX locations_world ON locations (world_id, id);

CREATE TABLE events (
    id             TEXT PRIMARY KEY,
    world_id       TEXT NOT NULL REFERENCES worlds (id) ON DELETE CASCADE,
    story_id       TEXT REFERENCES stories (id) ON DELETE SET NULL,
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    year           BIGINT NOT NULL,
    era            TEXT NOT NULL,
    story_position BIGINT NOT NULL,
    version        BIGINT NOT NULL DEFAULT 1,
    create_time    BIGINT NOT NULL,
    update_time    BIGINT NOT NULL
);
CREATE INDEX events_timeline ON events (world_id, year, story_position, id);
CREATE INDEX events_story ON events (story_id);

CREATE TABLE event_connections (
    event_id        TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    target_event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    relation        TEXT NOT NULL,
    PRIMARY KEY (event_id, position)
);
CREATE INDEX event_connections_target ON event_connections (target_event_id);

-- Links from stories and events to the entities and locations of their world.
CREATE TABLE story_entities (
    story_id  TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    PRIMARY KEY (story_id, target_id)
);
CREATE INDEX story_entities_target ON story_entities (target_id);

CREATE TABLE story_locations (
    story_id  TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    PRIMARY KEY (story_id, target_id)
);
CREATE INDEX story_locations_target ON story_locations (target_id);

CREATE TABLE event_entities (
    event_id  TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    PRIMARY KEY (event_id, target_id)
);
CREATE INDEX event_entities_target ON event_entities (target_id);

CREATE TABLE event_locations (
    event_id  TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    PRIMARY KEY (event_id, target_id)
);
CREATE INDEX event_locations_target ON event_locations (target_id);
