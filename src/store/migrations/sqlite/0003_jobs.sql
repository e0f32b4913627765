-- The work queue: one job per submission and queued stage. Workers on any machine claim
-- ready jobs (queued, due, every earlier job of the submission done) under a lease that the
-- database's clock measures (`*_ms`: milliseconds since the Unix epoch); each claim gets a
-- fresh token, and a heartbeat or a completion that names an old token changes nothing.
-- `attempts` lives here, beside the job, so a job that keeps losing its worker ends `dead`
-- after `max_attempts` instead of being retried forever.
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    cohort_id       INTEGER NOT NULL REFERENCES cohorts(id),
    submission_id   INTEGER NOT NULL REFERENCES submissions(id),
    stage           TEXT NOT NULL,
    seq             INTEGER NOT NULL,       -- its place among the submission's jobs
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    token           TEXT,                   -- the current claim's; NULL unless running
    worker          TEXT,                   -- who holds it (or last held it)
    run_after_ms    INTEGER NOT NULL,       -- not claimed before (backoff)
    lease_until_ms  INTEGER,
    claimed_at_ms   INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (submission_id, stage)
);
CREATE INDEX jobs_queued ON jobs (run_after_ms) WHERE status = 'queued';
CREATE INDEX jobs_running ON jobs (lease_until_ms) WHERE status = 'running';
CREATE INDEX jobs_by_cohort ON jobs (cohort_id, stage, status);

-- Workers that claimed jobs: what `assay status` lists.
CREATE TABLE workers (
    id              TEXT PRIMARY KEY,       -- host:pid:random
    host            TEXT NOT NULL,
    stages          TEXT NOT NULL,          -- comma-separated
    started_at      TEXT NOT NULL,
    last_seen_ms    INTEGER NOT NULL
);

-- The claim a stage attempt ran under, when a job's worker ran it: the rescuer interrupts
-- the runs of a claim whose lease expired.
ALTER TABLE stage_runs ADD COLUMN job_token TEXT;
