//! The store: cohorts, submissions, stage runs, evidence and the audit trail.
//!
//! The pipeline talks to a [`Store`] trait object, in our own types only; the
//! SQLite implementation ([`SqliteStore`]) is the default, [`PostgresStore`] serves
//! a database many machines share. SQL stays runtime checked (no `query!` macros)
//! and is written once for both (see `sql.rs`).

mod postgres;
pub mod queue;
mod sql;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::evidence::EvidenceItem;
use crate::outcome::OutcomeKind;
use crate::review::{CriterionReview, Review};
use crate::submission::{SubmissionRecord, SubmissionStatus};

pub use postgres::PostgresStore;
pub use queue::{JobEnd, JobStatus, Lease, NewSubmission, Queue, QueueStatus};
pub use sqlite::SqliteStore;

/// Store failures: always infrastructure, never the candidate's doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query. Its message is shown once: the sqlx error is
    /// not also the source (its own Display repeats its source's message).
    #[error("database error: {}", db_message(.0))]
    Db(sqlx::Error),
    /// Migrations could not be applied.
    #[error("cannot migrate the database: {}", migrate_message(.0))]
    Migrate(sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt value in {table}.{column}: {value:?}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// A stage's stored output does not read as that stage's output.
    #[error(
        "the stored {} output of submission {submission} does not read ({reason}): it was changed outside \
         assay or written by an incompatible version; grade into a new database to measure it again",
        stage.as_str()
    )]
    Output {
        /// The submission's id.
        submission: i64,
        /// The stage.
        stage: Stage,
        /// What did not read.
        reason: String,
    },
    /// The work queue cannot do what was asked (a store without one, a worker without what its
    /// stages need, a job whose cohort or submission is gone).
    #[error("work queue: {0}")]
    Queue(String),
    /// The database URL is not one assay supports.
    #[error("unsupported database URL {0:?}: use sqlite://PATH (or a plain path) or postgres://USER@HOST/DB")]
    Unsupported(String),
}

impl StoreError {
    /// Whether the error is the database being out of reach for now (a connection lost or
    /// refused, a server restarting or shutting down, a pool out of connections, a busy SQLite
    /// file, a serialization conflict): trying again later may succeed. Errors of the data or of
    /// the query are not.
    pub fn is_transient(&self) -> bool {
        let StoreError::Db(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::BeginFailed => true,
            // PostgreSQL's five-character SQLSTATEs: classes 08 (connection exception) and 57P
            // (operator intervention: admin shutdown, crash shutdown, cannot connect now),
            // serialization failures and deadlocks. SQLite's numeric (extended) codes: BUSY and
            // LOCKED, primary codes 5 and 6.
            sqlx::Error::Database(d) => d.code().is_some_and(|c| match c.len() {
                5 => c.starts_with("08") || c.starts_with("57P") || matches!(c.as_ref(), "40001" | "40P01"),
                _ => c.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)),
            }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

/// What a database error says: the server's own message (and its SQLSTATE code) for an error
/// the server returned, without PostgreSQL's "at line N" (a line of the server's source, not
/// of anything the user wrote).
fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => format!("{} ({code})", d.message()),
            None => d.message().to_string(),
        },
        other => other.to_string(),
    }
}

fn migrate_message(e: &sqlx::migrate::MigrateError) -> String {
    match e {
        sqlx::migrate::MigrateError::Execute(d) | sqlx::migrate::MigrateError::ExecuteMigration(d, _) => db_message(d),
        other => other.to_string(),
    }
}

/// The stages a submission moves through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Fetch into the mirror, pick the commit, export the tree.
    Fetch,
    /// Read the iteration history.
    History,
    /// Install and test in the sandbox.
    Sandbox,
    /// Reproducibility checks over the tree and the sandbox's report.
    Repro,
    /// Screening of the candidate's text (README, commit messages, test output, findings) for
    /// text aimed at the grader or the model: `I` items, whether or not the model drafts.
    Screen,
    /// Rubric drafts by the local model.
    Draft,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Fetch,
        Stage::History,
        Stage::Sandbox,
        Stage::Repro,
        Stage::Screen,
        Stage::Draft,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::History => "history",
            Stage::Sandbox => "sandbox",
            Stage::Repro => "repro",
            Stage::Screen => "screen",
            Stage::Draft => "draft",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Bumped whenever a stage's output changes shape or meaning, so stored
    /// results of an older version are recomputed rather than reused.
    pub fn version(self) -> i64 {
        match self {
            Stage::Fetch => 1,
            Stage::History => 1,
            Stage::Sandbox => 1,
            Stage::Repro => 1,
            Stage::Screen => 1,
            Stage::Draft => 1,
        }
    }
}

/// Status of one stage attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// In flight (or its process died; see [`Store::reap_running`]).
    Running,
    /// Finished with a result.
    Done,
    /// Finished with a failure outcome.
    Failed,
    /// Cancelled or abandoned in flight; will run again.
    Interrupted,
}

impl RunStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Done,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One stored stage attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageRun {
    /// Row id.
    pub id: i64,
    /// Submission row id.
    pub submission_id: i64,
    /// Which stage.
    pub stage: Stage,
    /// Stage version it ran as.
    pub stage_version: i64,
    /// What the stage's input was (a hash or a commit).
    pub input_key: String,
    /// 1 for the first attempt at this key.
    pub attempt: i64,
    /// Status.
    pub status: RunStatus,
    /// Outcome kind, once finished.
    pub outcome: Option<OutcomeKind>,
    /// Error message beside the outcome (credential-free).
    pub error: Option<String>,
    /// The stage's output, for done runs.
    pub output: Option<serde_json::Value>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it took.
    pub duration_ms: Option<i64>,
}

/// How a stage attempt ended, as handed to [`Store::finish_run`].
#[derive(Debug, Clone)]
pub struct StageResult {
    /// Done, failed or interrupted.
    pub status: RunStatus,
    /// The outcome kind.
    pub outcome: OutcomeKind,
    /// A message for humans (credential-free).
    pub error: Option<String>,
    /// The output document (done runs).
    pub output: Option<serde_json::Value>,
    /// Evidence the stage found; replaces that stage's earlier evidence.
    pub evidence: Vec<EvidenceItem>,
    /// The commit the evidence is about.
    pub commit: Option<String>,
}

/// A stored cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRecord {
    pub id: i64,
    pub name: String,
    /// What `assay grade` recorded: rubric path and definition, deadline, runner, top.
    pub spec: serde_json::Value,
}

impl CohortRecord {
    /// The rubric the cohort was graded with.
    pub fn rubric(&self) -> Option<crate::rubric::Rubric> {
        serde_json::from_value(self.spec.get("rubric_def")?.clone()).ok()
    }

    /// How many submissions go to review.
    pub fn top(&self) -> usize {
        self.spec.get("top").and_then(|v| v.as_u64()).unwrap_or(10) as usize
    }
}

/// What a save asks for.
#[derive(Debug, Clone)]
pub struct ReviewSave<'a> {
    pub submission_id: i64,
    /// The review's owner.
    pub grader: &'a str,
    /// Who saves (the owner, or another grader editing it); recorded in the audit trail.
    pub actor: &'a str,
    /// The version the editor started from: 0 for a review that does not exist yet.
    pub base_version: i64,
    pub scores: std::collections::BTreeMap<String, CriterionReview>,
    pub comment: String,
    pub finalize: bool,
}

/// How a save ended.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveOutcome {
    Saved(Review),
    /// Someone saved since `base_version`: nothing was written; here is what is stored now.
    Conflict(Option<Review>),
    /// The review is final: it cannot change.
    AlreadyFinal(Review),
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// Persistent state of assay. Implementations must make every write that
/// finishes a stage atomic with its evidence.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates or updates a cohort by name; returns its id.
    async fn upsert_cohort(&self, name: &str, spec: &serde_json::Value) -> Result<i64, StoreError>;
    /// Creates or updates a submission by (cohort, candidate).
    async fn upsert_submission(
        &self,
        cohort_id: i64,
        candidate: &str,
        anon_id: &str,
        repo: &str,
        git_ref: Option<&str>,
    ) -> Result<SubmissionRecord, StoreError>;
    /// Submissions of a cohort, in insertion order.
    async fn submissions(&self, cohort_id: i64) -> Result<Vec<SubmissionRecord>, StoreError>;
    /// The cohort id for a name.
    async fn cohort_id(&self, name: &str) -> Result<Option<i64>, StoreError>;
    /// Every cohort, by name.
    async fn cohorts(&self) -> Result<Vec<CohortRecord>, StoreError>;

    /// Submissions of `candidate` with their cohort's name, in one cohort or all.
    async fn find_submissions(
        &self,
        candidate: &str,
        cohort: Option<&str>,
    ) -> Result<Vec<(String, SubmissionRecord)>, StoreError>;
    /// Marks runs left `running` by a dead process as interrupted; returns how many.
    async fn reap_running(&self) -> Result<u64, StoreError>;
    /// The finished run for a stage key: done, or failed with an outcome that
    /// retrying would not change.
    async fn final_run(
        &self,
        submission_id: i64,
        stage: Stage,
        input_key: &str,
    ) -> Result<Option<StageRun>, StoreError>;
    /// Records the start of an attempt; the attempt number follows earlier ones.
    async fn start_run(
        &self,
        submission_id: i64,
        stage: Stage,
        input_key: &str,
        worker: &str,
    ) -> Result<StageRun, StoreError>;
    /// Records how an attempt ended, with its evidence, atomically.
    async fn finish_run(&self, run: &StageRun, result: &StageResult) -> Result<(), StoreError>;
    /// All attempts of a submission, oldest first.
    async fn runs(&self, submission_id: i64) -> Result<Vec<StageRun>, StoreError>;
    /// Sets a submission's overall state.
    async fn set_submission(
        &self,
        submission_id: i64,
        status: SubmissionStatus,
        outcome: Option<OutcomeKind>,
        commit: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The evidence of a submission, in id order.
    async fn evidence(&self, submission_id: i64) -> Result<Vec<EvidenceItem>, StoreError>;
    /// Appends to the audit trail.
    async fn event(
        &self,
        cohort_id: Option<i64>,
        submission_id: Option<i64>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// The audit trail of a submission, oldest first.
    async fn events(&self, submission_id: i64) -> Result<Vec<Event>, StoreError>;
    /// Every review of a submission.
    async fn reviews(&self, submission_id: i64) -> Result<Vec<Review>, StoreError>;
    /// Every review in a cohort.
    async fn cohort_reviews(&self, cohort_id: i64) -> Result<Vec<Review>, StoreError>;
    /// Changes whenever the cohort's spec, submissions or stage runs change (not its reviews):
    /// what a cached triage of the cohort is keyed on. Cheap: one query.
    async fn cohort_stamp(&self, cohort_id: i64) -> Result<String, StoreError>;
    /// Saves a review if nobody saved it since `base_version`, and records the change in the
    /// audit trail, atomically.
    async fn save_review(&self, save: &ReviewSave<'_>) -> Result<SaveOutcome, StoreError>;

    /// The database's grading lock, held for as long as the returned guard lives; `None` when
    /// another process holds it. One grading process per database at a time is what makes
    /// [`Store::reap_running`] safe. A file database is locked by the file lock taken before it
    /// is opened (see `pipeline::lock`), so the default holds nothing more; a server database
    /// that machines share locks in the server.
    async fn grading_lock(&self) -> Result<Option<GradingLock>, StoreError> {
        Ok(Some(GradingLock(Guard::Held)))
    }

    /// The store's work queue, when it has one (both SQL stores do).
    fn queue(&self) -> Option<&dyn Queue> {
        None
    }
}

/// Holds a store's grading lock until dropped or released (see [`Store::grading_lock`]).
/// Opaque: no sqlx type crosses the store's boundary.
#[derive(Debug)]
pub struct GradingLock(Guard);

#[derive(Debug)]
enum Guard {
    /// Nothing to hold beyond the file lock.
    Held,
    /// A PostgreSQL session holding the advisory lock with this key.
    Postgres(sqlx::postgres::PgConnection, i64),
}

impl GradingLock {
    /// Gives the lock back now: when this returns, another process can take it (dropping it
    /// leaves the server to notice the closed connection, a moment later).
    pub async fn release(self) -> Result<(), StoreError> {
        if let Guard::Postgres(mut conn, key) = self.0 {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut conn)
                .await?;
            sqlx::Connection::close(conn).await?;
        }
        Ok(())
    }
}

/// Opens the store a URL names, creating and migrating it as needed: `sqlite://PATH` (or a
/// plain path) is a SQLite file, `postgres://…` (or `postgresql://…`) a PostgreSQL database.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(PostgresStore::open(url).await?));
    }
    if !url.contains("://") {
        return Ok(std::sync::Arc::new(
            SqliteStore::open(&format!("sqlite://{url}")).await?,
        ));
    }
    Err(StoreError::Unsupported(crate::git::redact(url)))
}
