//! The read model: what the store holds of a cohort, read back as the summaries and report
//! details that reports, the review UI, feedback and the benchmarks show. The pipeline writes
//! stage documents (`FetchOutput`, `SandboxOutput`, …) through the store; everything that shows
//! results reads them here, so neither side imports the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::draft;
use crate::evidence::EvidenceItem;
use crate::git::{Exported, Fetched, HistoryReport};
use crate::outcome::OutcomeKind;
use crate::rubric::Rubric;
use crate::sandbox::job::SandboxReport;
use crate::store::{RunStatus, Stage, StageRun, Store, StoreError};
use crate::submission::{SubmissionRecord, SubmissionStatus};

// ---------------------------------------------------------------- stage documents

/// What the fetch stage stores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FetchOutput {
    /// The fetch.
    pub fetched: Fetched,
    /// The export of the graded commit.
    pub export: Exported,
}

/// What the sandbox stage stores: the report, or none when no runner matched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxOutput {
    /// The job's report.
    pub report: Option<SandboxReport>,
}

// ---------------------------------------------------------------- summaries

/// One stage's state in a summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageSummary {
    /// running, done, failed or interrupted.
    pub status: RunStatus,
    /// The outcome kind.
    pub outcome: Option<OutcomeKind>,
    /// Attempt number of the latest run.
    pub attempt: i64,
    /// Duration of the latest run.
    pub duration_ms: Option<i64>,
    /// Error message beside the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One submission's state in a summary (the `assay grade --json` contract).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubmissionSummary {
    /// Candidate id.
    pub candidate: String,
    /// Anonymised id.
    pub anon_id: String,
    /// Repository, credential-free.
    pub repo: String,
    /// Graded commit, when known.
    pub commit: Option<String>,
    /// done, failed or interrupted.
    pub status: &'static str,
    /// A stable outcome kind.
    pub outcome: OutcomeKind,
    /// The latest run of each stage.
    pub stages: BTreeMap<Stage, StageSummary>,
    /// Evidence items stored for the submission.
    pub evidence: Vec<EvidenceItem>,
    /// The model's drafts, one per rubric criterion (empty without a draft stage).
    pub drafts: Vec<draft::CriterionDraft>,
    /// The deterministic facts its automated scores rest on.
    pub facts: draft::Facts,
    /// Whether the sandbox's install worked and, when not, whose fault it was
    /// (`None` without a sandbox stage).
    pub install: Option<crate::sandbox::diagnose::InstallDiagnosis>,
    /// The README's documented install and test commands, as they went in the sandbox.
    pub readme_steps: Vec<crate::sandbox::steps::ReadmeStep>,
    /// Files of the graded commit whose objects assay's copy lacks (the outcome is then
    /// `repo_corrupt`; what ran, ran without them).
    pub missing_objects: Vec<crate::git::MissingFile>,
}

/// The result of grading a cohort.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GradeSummary {
    /// Cohort name.
    pub cohort: String,
    /// Submissions in cohort order.
    pub submissions: Vec<SubmissionSummary>,
    /// Whether the run was cancelled before it finished.
    #[serde(skip)]
    pub cancelled: bool,
    /// Scores, ranking and the review queue.
    pub triage: crate::triage::Triage,
}

/// What one submission's report needs beyond its summary.
#[derive(Debug, Clone, Default)]
pub struct SubmissionDetail {
    /// The fetch stage's output, when done.
    pub fetch: Option<FetchOutput>,
    /// The history report, when done.
    pub history: Option<HistoryReport>,
    /// The sandbox report, when the sandbox stage is done and a runner matched.
    pub sandbox: Option<crate::sandbox::job::SandboxReport>,
    /// The reproducibility report, when done.
    pub repro: Option<crate::repro::ReproReport>,
    /// The model's draft, when the draft stage is done.
    pub draft: Option<crate::draft::DraftRecord>,
}

// ---------------------------------------------------------------- reading the store

/// One submission as the store holds it: its summary (what triage and the summaries need) and
/// the detail its reports need. Reads the submission's runs and evidence once each.
pub async fn view(
    store: &dyn Store,
    rec: &SubmissionRecord,
) -> Result<(SubmissionSummary, SubmissionDetail), StoreError> {
    let runs = store.runs(rec.id).await?;
    let detail = SubmissionDetail {
        fetch: read_latest(&runs, rec.id, Stage::Fetch)?,
        history: read_latest(&runs, rec.id, Stage::History)?,
        sandbox: read_latest::<SandboxOutput>(&runs, rec.id, Stage::Sandbox)?.and_then(|o| o.report),
        repro: read_latest(&runs, rec.id, Stage::Repro)?,
        draft: read_latest(&runs, rec.id, Stage::Draft)?,
    };
    let mut facts = draft::Facts::from_reports(
        detail.history.as_ref(),
        detail.sandbox.as_ref(),
        detail.repro.as_ref(),
        detail.draft.as_ref().and_then(|r| r.readme_lines),
    );
    let drafts = detail.draft.as_ref().map(|r| r.drafts.clone()).unwrap_or_default();
    let install = detail.sandbox.as_ref().and_then(|s| s.install_diagnosis.clone());
    let readme_steps = detail
        .sandbox
        .as_ref()
        .map(|s| s.readme_steps.clone())
        .unwrap_or_default();
    let mut stages = BTreeMap::new();
    for run in runs {
        stages.insert(
            run.stage,
            StageSummary {
                status: run.status,
                outcome: run.outcome,
                attempt: run.attempt,
                duration_ms: run.duration_ms,
                error: run.error,
            },
        );
    }
    let (status, outcome) = match rec.status {
        SubmissionStatus::Done => ("done", rec.outcome.unwrap_or(OutcomeKind::Ok)),
        SubmissionStatus::Failed => ("failed", rec.outcome.unwrap_or(OutcomeKind::InfraError)),
        _ => ("interrupted", OutcomeKind::Interrupted),
    };
    let missing_objects = detail
        .fetch
        .as_ref()
        .map(|f| f.export.missing.clone())
        .unwrap_or_default();
    facts.copy_missing = missing_objects.len();
    let summary = SubmissionSummary {
        drafts,
        facts,
        install,
        readme_steps,
        missing_objects,
        evidence: store.evidence(rec.id).await?,
        candidate: rec.candidate.clone(),
        anon_id: rec.anon_id.clone(),
        repo: rec.repo.clone(),
        commit: rec.commit.clone(),
        status,
        outcome,
        stages,
    };
    Ok((summary, detail))
}

/// What triage needs of a submission's summary.
pub fn triage_input(s: &SubmissionSummary) -> crate::triage::Input {
    crate::triage::Input {
        candidate: s.candidate.clone(),
        anon_id: s.anon_id.clone(),
        outcome: s.outcome,
        facts: s.facts.clone(),
        drafts: s.drafts.clone(),
        injection_flags: s.evidence.iter().filter(|e| e.id.starts_with('I')).count(),
        evidence: s.evidence.clone(),
    }
}

/// The cohort's submissions as stored, scored and ranked against `rubric` with `top` queued.
pub async fn summarize(
    store: &dyn Store,
    cohort: &str,
    cohort_id: i64,
    rubric: &Rubric,
    top: usize,
) -> Result<GradeSummary, StoreError> {
    Ok(summarize_with_details(store, cohort, cohort_id, rubric, top).await?.0)
}

/// [`summarize`], with each submission's report detail (in the same order).
pub async fn summarize_with_details(
    store: &dyn Store,
    cohort: &str,
    cohort_id: i64,
    rubric: &Rubric,
    top: usize,
) -> Result<(GradeSummary, Vec<SubmissionDetail>), StoreError> {
    let records = store.submissions(cohort_id).await?;
    let mut out = Vec::with_capacity(records.len());
    let mut details = Vec::with_capacity(records.len());
    for rec in &records {
        let (s, d) = view(store, rec).await?;
        out.push(s);
        details.push(d);
    }
    let inputs: Vec<crate::triage::Input> = out.iter().map(triage_input).collect();
    let summary = GradeSummary {
        cohort: cohort.to_string(),
        submissions: out,
        cancelled: false,
        triage: crate::triage::triage(rubric, &inputs, top),
    };
    Ok((summary, details))
}

/// A stage's stored output read back as `T`. One that does not read is an error naming the
/// submission and the stage, never taken for "no output": that would score a criterion from
/// missing data.
pub fn read_output<T: serde::de::DeserializeOwned>(
    submission: i64,
    stage: Stage,
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Output {
        submission,
        stage,
        reason: e.to_string(),
    })
}

/// The latest done output of `stage` among a submission's `runs`, read as `T` (see
/// [`read_output`]); `None` when the stage has not been done.
pub fn read_latest<T: serde::de::DeserializeOwned>(
    runs: &[StageRun],
    submission: i64,
    stage: Stage,
) -> Result<Option<T>, StoreError> {
    latest_done(runs, stage)
        .map(|v| read_output(submission, stage, v))
        .transpose()
}

/// The output of the latest done run of `stage` among `runs` (a submission's, oldest first).
pub fn latest_done(runs: &[StageRun], stage: Stage) -> Option<serde_json::Value> {
    runs.iter()
        .rev()
        .find(|r| r.stage == stage && r.status == RunStatus::Done)
        .and_then(|r| r.output.clone())
}

/// The history report of a submission, when its history stage is done.
pub async fn history_of(store: &dyn Store, submission_id: i64) -> Result<Option<HistoryReport>, StoreError> {
    read_latest(&store.runs(submission_id).await?, submission_id, Stage::History)
}
