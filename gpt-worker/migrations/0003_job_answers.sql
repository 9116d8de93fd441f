-- The model's valid answers, saved before anything is written from them: a job run
-- again after a crash, a retry or a shutdown reuses them instead of asking again, so
-- the request ids it derives from them, and so its writes, stay the same. `step`
-- names one model call of the job ("analyze:<story id>", "describe"…).
CREATE TABLE job_answers (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step   TEXT NOT NULL,
    -- The model's text as a JSON string: PostgreSQL's text cannot hold NUL characters.
    answer TEXT NOT NULL,
    PRIMARY KEY (job_id, step)
);

-- The job whose run made a story's cached extraction: a run of the same job again
-- keeps it instead of deleting it and creating its events anew.
ALTER TABLE extraction_cache ADD COLUMN job_id TEXT;
