-- One database per service: the image creates `story` (POSTGRES_DB); this adds the
-- worker's job queue.
CREATE DATABASE worker;
