//! A submission as assay keeps it: its record (candidate, anonymised id, repository, graded
//! commit) and overall status. Owned here, not by the store: the store, the pipeline, the read
//! model and reviews all depend on these types.

use serde::{Deserialize, Serialize};

use crate::outcome::OutcomeKind;

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
