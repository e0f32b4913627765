-- Grader reviews. One review per (submission, grader): independent reviews of the same
-- submission give the agreement metrics. Every save bumps `version`; a save that names an older
-- version is refused (optimistic concurrency), so two people editing the same review never
-- overwrite each other silently. Every change is also an event (the audit trail).
CREATE TABLE reviews (
    id             INTEGER PRIMARY KEY,
    submission_id  INTEGER NOT NULL REFERENCES submissions(id),
    grader         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'final')),
    version        INTEGER NOT NULL,
    scores_json    TEXT NOT NULL,      -- {criterion: {score, comment, draft_score}}
    comment        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    finalized_at   TEXT,
    UNIQUE (submission_id, grader)
);
CREATE INDEX reviews_by_submission ON reviews (submission_id);
