-- The PostgreSQL twin of migrations/sqlite/0004_claim_tokens.sql.

-- Stage runs by the claim they ran under: the rescuer interrupts an expired claim's runs, and
-- a worker asks whether a container's claim was this queue's (`Queue::claim_stale`), once per
-- labelled container and rescue pass.
CREATE INDEX stage_runs_by_token ON stage_runs (job_token) WHERE job_token IS NOT NULL;
