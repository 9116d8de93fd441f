-- Proposals: what a job would change in a world, until the author decides. The
-- changes are stored whole, as the proto3 JSON of a list of fabula.story.v1.Change
-- (each with its state), and rewritten (version-checked) when the author decides.
CREATE TABLE proposals (
    id          TEXT PRIMARY KEY,
    world_id    TEXT NOT NULL REFERENCES worlds (id) ON DELETE CASCADE,
    -- One proposal per job.
    job_id      TEXT NOT NULL UNIQUE,
    -- The user the job ran for.
    user_id     TEXT NOT NULL,
    title       TEXT NOT NULL,
    -- OPEN, ACCEPTED, REJECTED or EXPIRED (an OPEN one past expire_time reads as EXPIRED).
    state       TEXT NOT NULL,
    changes     TEXT NOT NULL,
    version     BIGINT NOT NULL,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    decided_by  TEXT,
    decide_time BIGINT
);
CREATE INDEX proposals_world ON proposals (world_id, create_time, id);
-- The sweep of open proposals past their time.
CREATE INDEX proposals_open ON proposals (expire_time) WHERE state = 'OPEN';

-- The accepted proposal that made a write, if any.
ALTER TABLE revisions ADD COLUMN proposal_id TEXT;
