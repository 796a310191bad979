-- Export jobs (issue 15): an organization's click data written to a file by
-- a background worker of any control instance, downloaded when done
-- (control/src/exports). The row is the job's whole truth, so a job survives
-- a restart: a worker that stops heart-beating (its process died, or lost
-- the database) leaves the job to be run again by any instance, from the
-- start, at most `attempts` = 3 times.
CREATE TABLE export_jobs (
    id            BIGSERIAL PRIMARY KEY,
    org_id        BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- The checked request, as GET /v1/jobs/{id} answers it.
    request       JSONB NOT NULL,
    -- csv | ndjson | parquet: the file's extension and media type.
    format        TEXT NOT NULL CHECK (format IN ('csv', 'ndjson', 'parquet')),
    state         TEXT NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'done', 'failed', 'expired')),
    -- The instance (host name) that runs the job, then holds its file.
    instance      TEXT,
    attempts      INT NOT NULL DEFAULT 0,
    rows_written  BIGINT NOT NULL DEFAULT 0,
    bytes         BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ,
    heartbeat_at  TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    -- When the file is deleted (done jobs).
    expires_at    TIMESTAMPTZ
);

-- The queue, oldest first; an organization's unfinished jobs (its limit);
-- running jobs by heartbeat (the ones to take back).
CREATE INDEX export_jobs_queued ON export_jobs (id) WHERE state = 'queued';
CREATE INDEX export_jobs_active ON export_jobs (org_id) WHERE state IN ('queued', 'running');
CREATE INDEX export_jobs_running ON export_jobs (heartbeat_at) WHERE state = 'running';
CREATE INDEX export_jobs_done ON export_jobs (expires_at) WHERE state = 'done';
