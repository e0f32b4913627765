-- assay store, SQLite. Times are RFC 3339 text (UTC); JSON is text.
-- The PostgreSQL twin of this schema keeps the same tables and columns.

CREATE TABLE cohorts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    spec_json   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE submissions (
    id          INTEGER PRIMARY KEY,
    cohort_id   INTEGER NOT NULL REFERENCES cohorts(id),
    candidate   TEXT NOT NULL,
    anon_id     TEXT NOT NULL,
    repo        TEXT NOT NULL,          -- credential-free display form
    git_ref     TEXT,
    commit_sha  TEXT,
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
    outcome     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (cohort_id, candidate)
);

-- One row per attempt of one stage. A stage is keyed by
-- (submission, stage, stage_version, input_key); at most one attempt per key
-- is ever 'done'.
CREATE TABLE stage_runs (
    id             INTEGER PRIMARY KEY,
    submission_id  INTEGER NOT NULL REFERENCES submissions(id),
    stage          TEXT NOT NULL,
    stage_version  INTEGER NOT NULL,
    input_key      TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    outcome        TEXT,
    error          TEXT,
    output_json    TEXT,
    worker         TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    heartbeat_at   TEXT NOT NULL,
    finished_at    TEXT,
    duration_ms    INTEGER
);
CREATE UNIQUE INDEX stage_runs_one_done
    ON stage_runs (submission_id, stage, stage_version, input_key) WHERE status = 'done';
CREATE INDEX stage_runs_by_submission ON stage_runs (submission_id, stage);
CREATE INDEX stage_runs_running ON stage_runs (status) WHERE status = 'running';

-- Evidence items cite-able by drafts and graders (H1, T2, R3, ...).
CREATE TABLE evidence_items (
    id             INTEGER PRIMARY KEY,
    submission_id  INTEGER NOT NULL REFERENCES submissions(id),
    commit_sha     TEXT NOT NULL,
    stage          TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    source         TEXT NOT NULL,
    text           TEXT NOT NULL,
    data_json      TEXT,
    UNIQUE (submission_id, item_id)
);

-- Append-only audit trail.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    cohort_id      INTEGER REFERENCES cohorts(id),
    submission_id  INTEGER REFERENCES submissions(id),
    actor          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    detail_json    TEXT NOT NULL
);
CREATE INDEX events_by_submission ON events (submission_id);
