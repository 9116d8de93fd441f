-- The count of a user's active jobs, taken at every create, reads only their queued
-- and running jobs, however many finished ones they keep.
CREATE INDEX jobs_owner_active ON jobs (owner_id) WHERE state IN ('QUEUED', 'RUNNING');
