-- gpt-worker's own database: the jobs table is the queue. Portable between SQLite
-- and PostgreSQL: ids are UUID v7 text, times are microseconds since the Unix epoch,
-- protobuf messages are stored base64-encoded.

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    spec             TEXT NOT NULL,
    state            TEXT NOT NULL,
    progress_percent BIGINT NOT NULL DEFAULT 0,
    progress_message TEXT NOT NULL DEFAULT '',
    output           TEXT NOT NULL DEFAULT '',
    result           TEXT,
    error_code       TEXT,
    error_message    TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    -- A QUEUED job is not claimed before this time (backoff after a failure).
    run_after        BIGINT NOT NULL,
    -- The worker holding a RUNNING job, until its lease expires.
    lease_owner      TEXT,
    lease_expires    BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    request_id       TEXT,
    -- The number of the job's last update.
    last_seq         BIGINT NOT NULL DEFAULT 0,
    create_time      BIGINT NOT NULL,
    start_time       BIGINT,
    end_time         BIGINT
);
CREATE INDEX jobs_claimable ON jobs (state, run_after);
CREATE INDEX jobs_owner ON jobs (owner_id, id);
CREATE INDEX jobs_finished ON jobs (end_time);
CREATE UNIQUE INDEX jobs_request ON jobs (owner_id, request_id);

-- Every numbered update of a job, so that a watcher who reconnects misses nothing.
CREATE TABLE job_updates (
    job_id  TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Event extraction is cached by a hash of the story's content.
CREATE TABLE extraction_cache (
    story_id     TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    -- The events the last extraction created, as a JSON array of ids: replaced on a re-run.
    event_ids    TEXT NOT NULL,
    update_time  BIGINT NOT NULL
);

-- One row per job owner, locked to serialise the checks of their limits.
CREATE TABLE job_owners (
    owner_id TEXT PRIMARY KEY,
    creates  BIGINT NOT NULL DEFAULT 0
);
