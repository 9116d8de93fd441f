-- The daily quota counts creates, not surviving jobs: deleting a job gives no quota
-- back. `creates` counts the creates of the 24-hour window that began at
-- `window_start` (microseconds); the first create after it ends starts a new one
-- (the zero default ends every window counted before this column existed).
ALTER TABLE job_owners ADD COLUMN window_start BIGINT NOT NULL DEFAULT 0;
