-- Revisions: every write to a world, story, entity, location or event, with who made
-- it and the resource whole before and after (JSON of a fabula.story.v1.Snapshot),
-- so a resource can be restored and a job undone. No foreign keys: a revision
-- outlives the row it describes (a deleted resource is restored from it).
CREATE TABLE revisions (
    id            TEXT PRIMARY KEY,
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    world_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    -- The user who wrote, or for whom the job ran.
    author_id     TEXT NOT NULL,
    -- The job that wrote for the author, if any.
    job_id        TEXT,
    -- A RESTORE: the revision restored.
    restored_id   TEXT,
    create_time   BIGINT NOT NULL,
    before_state  TEXT,
    after_state   TEXT,
    -- A JSON array of the proto names of the fields that changed.
    changed       TEXT NOT NULL
);
CREATE INDEX revisions_resource ON revisions (resource_id, create_time, id);
CREATE INDEX revisions_job ON revisions (job_id, create_time, id);
CREATE INDEX revisions_world ON revisions (world_id);
-- The sweep of deleted resources past their retention.
CREATE INDEX revisions_deletes ON revisions (create_time) WHERE after_state IS NULL;
