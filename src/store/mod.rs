//! The store: cohorts, submissions, stage runs, evidence and the audit trail.
//!
//! The pipeline talks to a [`Store`] trait object, in our own types only; the
//! SQLite implementation ([`SqliteStore`]) is the default. SQL stays runtime
//! checked (no `query!` macros) so a PostgreSQL implementation can share the
//! shapes (sqlx's `AnyPool` cannot carry compile-checked queries).

mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::evidence::EvidenceItem;
use crate::outcome::OutcomeKind;

pub use sqlite::SqliteStore;

/// Store failures: always infrastructure, never the candidate's doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
    /// The database URL is not one assay supports.
    #[error("unsupported database URL {0:?}: use sqlite://PATH (PostgreSQL support comes with `assay worker`)")]
    Unsupported(String),
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
    /// Rubric drafts by the local model.
    Draft,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 5] = [Stage::Fetch, Stage::History, Stage::Sandbox, Stage::Repro, Stage::Draft];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::History => "history",
            Stage::Sandbox => "sandbox",
            Stage::Repro => "repro",
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

/// Status of a whole submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionStatus {
    /// Not started.
    Pending,
    /// Being worked on.
    Running,
    /// Every stage finished.
    Done,
    /// A stage failed.
    Failed,
    /// Cancelled; the next run picks it up.
    Interrupted,
}

impl SubmissionStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionStatus::Pending => "pending",
            SubmissionStatus::Running => "running",
            SubmissionStatus::Done => "done",
            SubmissionStatus::Failed => "failed",
            SubmissionStatus::Interrupted => "interrupted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<SubmissionStatus> {
        [
            SubmissionStatus::Pending,
            SubmissionStatus::Running,
            SubmissionStatus::Done,
            SubmissionStatus::Failed,
            SubmissionStatus::Interrupted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmissionRecord {
    /// Row id.
    pub id: i64,
    /// Cohort row id.
    pub cohort_id: i64,
    /// Candidate id from the cohort.
    pub candidate: String,
    /// Anonymised id for blind review.
    pub anon_id: String,
    /// Repository, credential-free.
    pub repo: String,
    /// Requested ref.
    pub git_ref: Option<String>,
    /// Graded commit, once known.
    pub commit: Option<String>,
    /// Overall status.
    pub status: SubmissionStatus,
    /// Overall outcome kind, once finished.
    pub outcome: Option<OutcomeKind>,
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

/// A review's state: open while a grader works on it, final once they finalize it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Open,
    Final,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Open => "open",
            ReviewStatus::Final => "final",
        }
    }
}

/// A grader's judgement of one criterion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriterionReview {
    /// The grader's score (`None`: not scored yet).
    pub score: Option<u32>,
    /// The grader's note.
    #[serde(default)]
    pub comment: String,
    /// The draft's score when the grader saw it (for "how often graders kept the draft").
    #[serde(default)]
    pub draft_score: Option<u32>,
    /// A checklist criterion's items as the grader ticked them, by item id (empty for a
    /// criterion without items, and in reviews saved before items existed).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub items: std::collections::BTreeMap<String, ItemReview>,
    /// The candidate-facing feedback the grader approves (pre-filled from the draft); what
    /// `assay feedback` sends once the review is final.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub feedback: String,
}

/// What a save changes, per criterion, for the audit trail: the score move and the note, and
/// for a checklist the items whose tick changed (`from`: the stored review's tick, or the
/// draft's answer on a first save) and whether the candidate feedback was edited.
pub fn review_changes(
    before: Option<&std::collections::BTreeMap<String, CriterionReview>>,
    after: &std::collections::BTreeMap<String, CriterionReview>,
) -> Vec<serde_json::Value> {
    after
        .iter()
        .filter(|(k, v)| before.and_then(|b| b.get(*k)) != Some(*v))
        .map(|(k, v)| {
            let old = before.and_then(|b| b.get(k));
            let mut change = serde_json::json!({
                "criterion": k,
                "from": old.and_then(|c| c.score),
                "to": v.score,
                "comment": v.comment,
            });
            let items: serde_json::Map<String, serde_json::Value> = v
                .items
                .iter()
                .filter_map(|(id, now)| {
                    let was = match old.and_then(|c| c.items.get(id)) {
                        Some(o) => Some(o.met),
                        None => now.draft_met,
                    };
                    (was != Some(now.met)).then(|| (id.clone(), serde_json::json!({ "from": was, "to": now.met })))
                })
                .collect();
            if !items.is_empty() {
                change["items"] = items.into();
            }
            if old.map_or("", |c| c.feedback.as_str()) != v.feedback {
                change["feedback"] = v.feedback.clone().into();
            }
            change
        })
        .collect()
}

/// A grader's answer to one checklist item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemReview {
    /// Whether the grader ticks the item as met.
    pub met: bool,
    /// What the draft answered when the grader saw it (`None`: the draft had no answer), for
    /// "how often graders kept the model's answer".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_met: Option<bool>,
}

/// One grader's review of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: i64,
    pub submission_id: i64,
    /// Whose review it is.
    pub grader: String,
    pub status: ReviewStatus,
    /// Bumped by every save; a save must name the version it started from.
    pub version: i64,
    /// By criterion id.
    pub scores: std::collections::BTreeMap<String, CriterionReview>,
    pub comment: String,
    pub updated_at: String,
    pub finalized_at: Option<String>,
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
}

/// Opens the store a URL names, creating and migrating it as needed.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url).await?));
    }
    if !url.contains("://") {
        return Ok(std::sync::Arc::new(
            SqliteStore::open(&format!("sqlite://{url}")).await?,
        ));
    }
    Err(StoreError::Unsupported(crate::git::redact(url)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn review(score: u32, items: &[(&str, bool, Option<bool>)], feedback: &str) -> BTreeMap<String, CriterionReview> {
        let items = items
            .iter()
            .map(|(id, met, draft_met)| {
                (
                    id.to_string(),
                    ItemReview {
                        met: *met,
                        draft_met: *draft_met,
                    },
                )
            })
            .collect();
        BTreeMap::from([(
            "framing".to_string(),
            CriterionReview {
                score: Some(score),
                items,
                feedback: feedback.into(),
                ..Default::default()
            },
        )])
    }

    #[test]
    fn the_audit_trail_names_each_item_a_save_ticks_or_unticks() {
        // First save: items are compared with the draft's answers.
        let first = review(
            2,
            &[("metric", true, Some(false)), ("scope", false, Some(false))],
            "draft text",
        );
        let c = review_changes(None, &first);
        assert_eq!(
            c[0]["items"],
            serde_json::json!({ "metric": { "from": false, "to": true } })
        );
        assert_eq!(c[0]["feedback"], "draft text");
        // A later save: items are compared with the stored review; an unchanged feedback is not named.
        let second = review(
            1,
            &[("metric", false, Some(false)), ("scope", false, Some(false))],
            "draft text",
        );
        let c = review_changes(Some(&first), &second);
        assert_eq!((c[0]["from"].as_u64(), c[0]["to"].as_u64()), (Some(2), Some(1)));
        assert_eq!(
            c[0]["items"],
            serde_json::json!({ "metric": { "from": true, "to": false } })
        );
        assert!(c[0].get("feedback").is_none());
        // Nothing changed, nothing recorded.
        assert!(review_changes(Some(&second), &second).is_empty());
    }
}
