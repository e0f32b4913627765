//! The work queue's types and its [`Queue`] trait: one job per submission and queued stage,
//! claimed by workers on any machine under a lease the database's clock measures.
//!
//! - A job is **ready** when it is queued, due (`run_after`), and every earlier job of its
//!   submission is done. A claim takes the oldest ready job whose stage the worker runs, in one
//!   statement (`UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING` on
//!   PostgreSQL; SQLite runs one writer at a time), counts an attempt and hands out a fresh
//!   token.
//! - Heartbeats and completions name the token: once the lease was taken over (the rescuer
//!   requeued the job, another worker claimed it), they change nothing and say so, and the
//!   worker stops what it runs. A completion writes the stage's output and evidence, and the
//!   job's end, in one transaction.
//! - The rescuer returns jobs whose lease expired to the queue with backoff, and interrupts the
//!   stage runs of the expired claim; a job whose attempts reached `max_attempts` ends `dead`
//!   with its last error instead, never retried forever.

use serde::Serialize;

use super::{CohortRecord, Stage, StageResult, StageRun, StoreError};
use crate::submission::SubmissionRecord;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker (or for its submission's earlier jobs, or its backoff).
    Queued,
    /// Claimed under a lease.
    Running,
    /// Its stage finished (with whatever outcome the candidate's repository gave).
    Done,
    /// Ended for good: a final failure of its stage, or of an earlier job of its submission.
    Failed,
    /// Its attempts ran out (its workers died or assay's environment kept failing it).
    Dead,
}

impl JobStatus {
    /// Every status, in the order `assay status` shows them.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Dead,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A submission as a cohort file names it, to enqueue.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub candidate: String,
    pub anon_id: String,
    /// Credential-free display form.
    pub repo: String,
    pub git_ref: Option<String>,
}

/// What [`Queue::enqueue`] recorded.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub cohort_id: i64,
    pub submissions: Vec<SubmissionRecord>,
    /// Jobs now queued: new ones, and earlier ones that had failed or died, queued again.
    pub queued: u64,
}

/// A claimed job, held by the worker that claimed it until it ends or its lease is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub job_id: i64,
    pub cohort_id: i64,
    pub submission_id: i64,
    pub stage: Stage,
    /// This claim's attempt (1 for the first).
    pub attempt: i64,
    pub max_attempts: i64,
    /// This claim's token: what heartbeats and the completion are checked against.
    pub token: String,
}

/// How a job ended, as its worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    /// Its stage finished.
    Done,
    /// Its stage failed for good (the stage run records why); the submission's later jobs
    /// fail with it.
    Failed(String),
    /// Assay's own trouble: tried again after `backoff_ms`, or `dead` when its attempts ran out
    /// (the submission's later jobs fail with it).
    Retry { error: String, backoff_ms: i64 },
    /// Given back unfinished by a worker that is stopping (Ctrl-C): queued again at once, its
    /// attempt not counted (nothing about the job failed).
    Release(String),
}

/// A job the rescuer found with its lease expired.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescued {
    pub job_id: i64,
    pub submission_id: i64,
    pub stage: Stage,
    /// The worker that held it.
    pub worker: Option<String>,
    /// `queued` again, or `dead`.
    pub status: JobStatus,
}

/// Per stage, how many jobs are in each status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageCounts {
    pub queued: u64,
    pub running: u64,
    pub done: u64,
    pub failed: u64,
    pub dead: u64,
}

impl StageCounts {
    pub(super) fn add(&mut self, status: JobStatus, n: u64) {
        match status {
            JobStatus::Queued => self.queued += n,
            JobStatus::Running => self.running += n,
            JobStatus::Done => self.done += n,
            JobStatus::Failed => self.failed += n,
            JobStatus::Dead => self.dead += n,
        }
    }

    /// Jobs that will not change without a worker or a new run: none queued or running.
    pub fn settled(&self) -> bool {
        self.queued == 0 && self.running == 0
    }
}

/// A running job, for `assay status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningJob {
    pub job_id: i64,
    pub candidate: String,
    pub stage: Stage,
    pub worker: Option<String>,
    pub attempt: i64,
    /// Milliseconds since the Unix epoch, the database's clock.
    pub claimed_at_ms: Option<i64>,
    pub lease_until_ms: Option<i64>,
}

/// A dead or failed job, for `assay status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndedJob {
    pub job_id: i64,
    pub candidate: String,
    pub stage: Stage,
    pub status: JobStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// A worker that registered with the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub stages: Vec<String>,
    /// Milliseconds since the Unix epoch, the database's clock.
    pub last_seen_ms: i64,
}

/// A cohort's queue, for `assay status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStatus {
    pub submissions: u64,
    /// Per stage, in pipeline order; only stages that have jobs.
    pub stages: Vec<(Stage, StageCounts)>,
    pub running: Vec<RunningJob>,
    pub ended: Vec<EndedJob>,
    /// The database's clock now (milliseconds since the Unix epoch).
    pub now_ms: i64,
}

/// The work queue of a store that workers on many machines share (see the module's text).
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// Records cohort `name` (its spec), its submissions and a job per submission and stage of
    /// `stages` (in that order), in one transaction. Jobs that exist keep their state, except
    /// failed and dead ones, which are queued again with their attempts reset (a new run tries
    /// them again, as a new `assay grade` does).
    async fn enqueue(
        &self,
        name: &str,
        spec: &serde_json::Value,
        submissions: &[NewSubmission],
        stages: &[Stage],
        max_attempts: i64,
    ) -> Result<Enqueued, StoreError>;

    /// Claims the oldest ready job whose stage is one of `stages` (of cohort `cohort` only, when
    /// given) for `lease_ms`, or none.
    async fn claim(
        &self,
        worker: &str,
        stages: &[Stage],
        lease_ms: i64,
        cohort: Option<i64>,
    ) -> Result<Option<Lease>, StoreError>;

    /// Extends the lease by `lease_ms` from now; false when the claim is no longer current
    /// (nothing changed then).
    async fn heartbeat(&self, lease: &Lease, lease_ms: i64) -> Result<bool, StoreError>;

    /// Ends the job as `end` says, with the stage run that ran it (its output and evidence)
    /// when there is one, in one transaction; false when the claim is no longer current:
    /// nothing is written then, the run included.
    async fn finish_job(
        &self,
        lease: &Lease,
        end: &JobEnd,
        run: Option<(&StageRun, &StageResult)>,
    ) -> Result<bool, StoreError>;

    /// Writes how a stage attempt under `lease` ended (see [`super::Store::finish_run`]) without
    /// ending the job; false when the claim is no longer current (nothing written).
    async fn finish_leased_run(&self, lease: &Lease, run: &StageRun, result: &StageResult) -> Result<bool, StoreError>;

    /// Records the start of a stage attempt under `lease` (see [`super::Store::start_run`]);
    /// `None` when the claim is no longer current.
    async fn start_leased_run(
        &self,
        lease: &Lease,
        stage: Stage,
        input_key: &str,
        worker: &str,
    ) -> Result<Option<StageRun>, StoreError>;

    /// Returns every job whose lease expired to the queue, `backoff_ms` from now, or ends it
    /// `dead` when its attempts ran out; interrupts the stage runs of the expired claims.
    /// One rescuer at a time: a call while another runs returns nothing.
    async fn rescue(&self, backoff_ms: i64) -> Result<Vec<Rescued>, StoreError>;

    /// Whether `token` is the current claim of job `job_id`.
    async fn token_current(&self, job_id: i64, token: &str) -> Result<bool, StoreError>;

    /// Whether `token` was a claim of this queue's job `job_id` (a stage run started under it)
    /// that is no longer current: a container labelled with it is an orphan. A token this
    /// queue never handed out — a claim of another database's queue on the same Docker
    /// engine — is not stale here: its own workers judge it.
    async fn claim_stale(&self, job_id: i64, token: &str) -> Result<bool, StoreError>;

    /// Records that worker `id` on `host`, running `stages`, is alive.
    async fn worker_seen(&self, id: &str, host: &str, stages: &[Stage]) -> Result<(), StoreError>;

    /// The cohort's queue now.
    async fn queue_status(&self, cohort_id: i64) -> Result<QueueStatus, StoreError>;

    /// Jobs of `stages` queued or running, in cohort `cohort` or in every cohort: none means a
    /// worker running those stages has nothing left to wait for (jobs of other stages are other
    /// workers' to run).
    async fn pending(&self, cohort: Option<i64>, stages: &[Stage]) -> Result<u64, StoreError>;

    /// The workers that hold running jobs now.
    async fn holders(&self) -> Result<Vec<String>, StoreError>;

    /// Ends the leases `worker` holds now (the next rescue returns its jobs to the queue): for a
    /// worker known to be dead, whose leases need not run out first. How many.
    async fn expire_leases(&self, worker: &str) -> Result<u64, StoreError>;

    /// The cohort and the submission a claimed job is about, read by id (`None`: deleted since).
    async fn job_records(&self, lease: &Lease) -> Result<Option<(CohortRecord, SubmissionRecord)>, StoreError>;

    /// Workers seen within `within_ms`, most recent first.
    async fn workers(&self, within_ms: i64) -> Result<Vec<WorkerInfo>, StoreError>;
}

/// `stages` as the queries take them: names joined by commas.
pub(super) fn stage_list(stages: &[Stage]) -> String {
    stages.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}
