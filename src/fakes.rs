//! Fakes of the three seams — [`Store`], [`Sandbox`], [`Drafter`] — for unit tests of what sits
//! on them (the stage runner's retry, cancellation, panic and resume paths; a cohort through the
//! pipeline) without a database file, a Docker engine or model weights. Each keeps what it was
//! asked, so a test can say what ran. The real implementations are tested against the real
//! components in `tests/it/` (the full lane).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::Utc;

use crate::draft::{CriterionDraft, DraftInput, DraftOptions, DraftRecord, Drafter};
use crate::evidence::EvidenceItem;
use crate::outcome::OutcomeKind;
use crate::pipeline::Progress;
use crate::review::{review_changes, Review, ReviewStatus};
use crate::sandbox::{Phase, PhaseResult, PhaseSpec, ResultFile, Sandbox, SandboxError, SandboxLimits, Work};
use crate::store::{
    CohortRecord, Event, ReviewSave, RunStatus, SaveOutcome, Stage, StageResult, StageRun, Store, StoreError,
};
use crate::submission::{SubmissionRecord, SubmissionStatus};

// ---------------------------------------------------------------- store

#[derive(Default)]
struct State {
    cohorts: Vec<CohortRecord>,
    submissions: Vec<SubmissionRecord>,
    runs: Vec<StageRun>,
    /// (submission, stage, item)
    evidence: Vec<(i64, Stage, EvidenceItem)>,
    /// (submission, event)
    events: Vec<(Option<i64>, Event)>,
    reviews: Vec<Review>,
    /// Bumped by every change a cohort's stamp covers.
    changes: u64,
}

/// The [`Store`] in memory, with the SQLite store's semantics (what a final run is, attempt
/// numbers, evidence replaced per stage, versioned reviews with their audit events).
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake store lock")
    }

    /// Every run of every submission, oldest first.
    pub fn all_runs(&self) -> Vec<StageRun> {
        self.state().runs.clone()
    }

    /// Replaces the stored output of every done run of `stage`, as a database changed outside
    /// assay (or by an incompatible version) would hold it.
    pub fn overwrite_output(&self, stage: Stage, output: serde_json::Value) {
        for r in self
            .state()
            .runs
            .iter_mut()
            .filter(|r| r.stage == stage && r.status == RunStatus::Done)
        {
            r.output = Some(output.clone());
        }
    }

    /// Forgets every run of `stage`, as if it had never run: the next grade runs it again.
    pub fn forget_runs(&self, stage: Stage) {
        self.state().runs.retain(|r| r.stage != stage);
    }

    /// The details of every event of `kind`, oldest first.
    pub fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.state()
            .events
            .iter()
            .filter(|(_, e)| e.kind == kind)
            .map(|(_, e)| e.detail.clone())
            .collect()
    }
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

fn evidence_order(item: &EvidenceItem) -> (char, u64) {
    let mut chars = item.id.chars();
    let letter = chars.next().unwrap_or(' ');
    (letter, chars.as_str().parse().unwrap_or(0))
}

#[async_trait]
impl Store for MemoryStore {
    async fn upsert_cohort(&self, name: &str, spec: &serde_json::Value) -> Result<i64, StoreError> {
        let mut s = self.state();
        s.changes += 1;
        if let Some(c) = s.cohorts.iter_mut().find(|c| c.name == name) {
            c.spec = spec.clone();
            return Ok(c.id);
        }
        let id = s.cohorts.len() as i64 + 1;
        s.cohorts.push(CohortRecord {
            id,
            name: name.into(),
            spec: spec.clone(),
        });
        Ok(id)
    }

    async fn upsert_submission(
        &self,
        cohort_id: i64,
        candidate: &str,
        anon_id: &str,
        repo: &str,
        git_ref: Option<&str>,
    ) -> Result<SubmissionRecord, StoreError> {
        let mut s = self.state();
        s.changes += 1;
        if let Some(r) = s
            .submissions
            .iter_mut()
            .find(|r| r.cohort_id == cohort_id && r.candidate == candidate)
        {
            r.anon_id = anon_id.into();
            r.repo = repo.into();
            r.git_ref = git_ref.map(Into::into);
            return Ok(r.clone());
        }
        let rec = SubmissionRecord {
            id: s.submissions.len() as i64 + 1,
            cohort_id,
            candidate: candidate.into(),
            anon_id: anon_id.into(),
            repo: repo.into(),
            git_ref: git_ref.map(Into::into),
            commit: None,
            status: SubmissionStatus::Pending,
            outcome: None,
        };
        s.submissions.push(rec.clone());
        Ok(rec)
    }

    async fn submissions(&self, cohort_id: i64) -> Result<Vec<SubmissionRecord>, StoreError> {
        Ok(self
            .state()
            .submissions
            .iter()
            .filter(|r| r.cohort_id == cohort_id)
            .cloned()
            .collect())
    }

    async fn cohort_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.state().cohorts.iter().find(|c| c.name == name).map(|c| c.id))
    }

    async fn cohorts(&self) -> Result<Vec<CohortRecord>, StoreError> {
        let mut all = self.state().cohorts.clone();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn find_submissions(
        &self,
        candidate: &str,
        cohort: Option<&str>,
    ) -> Result<Vec<(String, SubmissionRecord)>, StoreError> {
        let s = self.state();
        Ok(s.submissions
            .iter()
            .filter(|r| r.candidate == candidate)
            .filter_map(|r| {
                let c = s.cohorts.iter().find(|c| c.id == r.cohort_id)?;
                cohort
                    .is_none_or(|name| name == c.name)
                    .then(|| (c.name.clone(), r.clone()))
            })
            .collect())
    }

    async fn reap_running(&self) -> Result<u64, StoreError> {
        let mut s = self.state();
        let mut n = 0;
        for r in s.runs.iter_mut().filter(|r| r.status == RunStatus::Running) {
            r.status = RunStatus::Interrupted;
            r.outcome = Some(OutcomeKind::Interrupted);
            r.error = Some("abandoned: the process running it stopped".into());
            r.finished_at = Some(Utc::now());
            n += 1;
        }
        for r in s
            .submissions
            .iter_mut()
            .filter(|r| r.status == SubmissionStatus::Running)
        {
            r.status = SubmissionStatus::Interrupted;
            r.outcome = Some(OutcomeKind::Interrupted);
        }
        Ok(n)
    }

    async fn final_run(
        &self,
        submission_id: i64,
        stage: Stage,
        input_key: &str,
    ) -> Result<Option<StageRun>, StoreError> {
        let s = self.state();
        let same = |r: &&StageRun| {
            r.submission_id == submission_id
                && r.stage == stage
                && r.stage_version == stage.version()
                && r.input_key == input_key
        };
        let retry_would_change = |k: Option<OutcomeKind>| {
            matches!(
                k,
                Some(
                    OutcomeKind::InfraError
                        | OutcomeKind::Unreachable
                        | OutcomeKind::InternalError
                        | OutcomeKind::Interrupted
                )
            )
        };
        let done = s.runs.iter().filter(same).rfind(|r| r.status == RunStatus::Done);
        let failed = || {
            s.runs
                .iter()
                .filter(same)
                .rfind(|r| r.status == RunStatus::Failed && !retry_would_change(r.outcome))
        };
        Ok(done.or_else(failed).cloned())
    }

    async fn start_run(
        &self,
        submission_id: i64,
        stage: Stage,
        input_key: &str,
        _worker: &str,
    ) -> Result<StageRun, StoreError> {
        let mut s = self.state();
        s.changes += 1;
        let attempt = s
            .runs
            .iter()
            .filter(|r| {
                r.submission_id == submission_id
                    && r.stage == stage
                    && r.stage_version == stage.version()
                    && r.input_key == input_key
            })
            .count() as i64
            + 1;
        let run = StageRun {
            id: s.runs.iter().map(|r| r.id).max().unwrap_or(0) + 1,
            submission_id,
            stage,
            stage_version: stage.version(),
            input_key: input_key.into(),
            attempt,
            status: RunStatus::Running,
            outcome: None,
            error: None,
            output: None,
            started_at: Utc::now(),
            finished_at: None,
            duration_ms: None,
        };
        s.runs.push(run.clone());
        Ok(run)
    }

    async fn finish_run(&self, run: &StageRun, result: &StageResult) -> Result<(), StoreError> {
        let mut s = self.state();
        s.changes += 1;
        let finished = Utc::now();
        if let Some(r) = s.runs.iter_mut().find(|r| r.id == run.id) {
            r.status = result.status;
            r.outcome = Some(result.outcome);
            r.error = result.error.clone();
            r.output = result.output.clone();
            r.finished_at = Some(finished);
            r.duration_ms = Some((finished - run.started_at).num_milliseconds());
        }
        if result.status == RunStatus::Done {
            // As in SQLite: the stage's earlier items go, and an id another stage held is taken over.
            s.evidence.retain(|(sub, stage, item)| {
                *sub != run.submission_id || (*stage != run.stage && !result.evidence.iter().any(|e| e.id == item.id))
            });
            for item in &result.evidence {
                s.evidence.push((run.submission_id, run.stage, item.clone()));
            }
        }
        Ok(())
    }

    async fn runs(&self, submission_id: i64) -> Result<Vec<StageRun>, StoreError> {
        Ok(self
            .state()
            .runs
            .iter()
            .filter(|r| r.submission_id == submission_id)
            .cloned()
            .collect())
    }

    async fn set_submission(
        &self,
        submission_id: i64,
        status: SubmissionStatus,
        outcome: Option<OutcomeKind>,
        commit: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        s.changes += 1;
        if let Some(r) = s.submissions.iter_mut().find(|r| r.id == submission_id) {
            r.status = status;
            r.outcome = outcome;
            if let Some(c) = commit {
                r.commit = Some(c.into());
            }
        }
        Ok(())
    }

    async fn evidence(&self, submission_id: i64) -> Result<Vec<EvidenceItem>, StoreError> {
        let mut items: Vec<EvidenceItem> = self
            .state()
            .evidence
            .iter()
            .filter(|(sub, _, _)| *sub == submission_id)
            .map(|(_, _, item)| item.clone())
            .collect();
        items.sort_by_key(evidence_order);
        Ok(items)
    }

    async fn event(
        &self,
        _cohort_id: Option<i64>,
        submission_id: Option<i64>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let event = Event {
            at: now(),
            actor: "assay".into(),
            kind: kind.into(),
            detail: detail.clone(),
        };
        self.state().events.push((submission_id, event));
        Ok(())
    }

    async fn events(&self, submission_id: i64) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .state()
            .events
            .iter()
            .filter(|(sub, _)| *sub == Some(submission_id))
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn reviews(&self, submission_id: i64) -> Result<Vec<Review>, StoreError> {
        Ok(self
            .state()
            .reviews
            .iter()
            .filter(|r| r.submission_id == submission_id)
            .cloned()
            .collect())
    }

    async fn cohort_reviews(&self, cohort_id: i64) -> Result<Vec<Review>, StoreError> {
        let s = self.state();
        Ok(s.reviews
            .iter()
            .filter(|r| {
                s.submissions
                    .iter()
                    .any(|x| x.id == r.submission_id && x.cohort_id == cohort_id)
            })
            .cloned()
            .collect())
    }

    async fn cohort_stamp(&self, cohort_id: i64) -> Result<String, StoreError> {
        Ok(format!("{cohort_id}:{}", self.state().changes))
    }

    async fn save_review(&self, save: &ReviewSave<'_>) -> Result<SaveOutcome, StoreError> {
        let mut s = self.state();
        let at = now();
        let current = s
            .reviews
            .iter()
            .find(|r| r.submission_id == save.submission_id && r.grader == save.grader)
            .cloned();
        if let Some(r) = current.as_ref().filter(|r| r.status == ReviewStatus::Final) {
            return Ok(SaveOutcome::AlreadyFinal(r.clone()));
        }
        if current.as_ref().map_or(0, |r| r.version) != save.base_version {
            return Ok(SaveOutcome::Conflict(current));
        }
        let review = Review {
            id: current.as_ref().map_or(s.reviews.len() as i64 + 1, |r| r.id),
            submission_id: save.submission_id,
            grader: save.grader.into(),
            status: if save.finalize {
                ReviewStatus::Final
            } else {
                ReviewStatus::Open
            },
            version: save.base_version + 1,
            scores: save.scores.clone(),
            comment: save.comment.clone(),
            updated_at: at.clone(),
            finalized_at: save.finalize.then(|| at.clone()),
        };
        let event = Event {
            at,
            actor: save.actor.into(),
            kind: if save.finalize {
                "review_finalized"
            } else {
                "review_saved"
            }
            .into(),
            detail: serde_json::json!({
                "review_of": save.grader,
                "version": review.version,
                "changed": review_changes(current.as_ref().map(|r| &r.scores), &save.scores),
                "comment_changed": current.as_ref().map(|r| r.comment.as_str()) != Some(save.comment.as_str()),
            }),
        };
        s.events.push((Some(save.submission_id), event));
        s.reviews.retain(|r| r.id != review.id);
        s.reviews.push(review.clone());
        Ok(SaveOutcome::Saved(review))
    }
}

// ---------------------------------------------------------------- sandbox

/// A [`Sandbox`] that plays back a project whose install works and whose tests pass (a JUnit
/// report naming `passing` tests), recording every phase it was asked to run. `engine_down`
/// makes that many `prepare` calls fail as an unreachable engine would.
pub struct ScriptedSandbox {
    pub passing: Vec<String>,
    pub engine_down: AtomicUsize,
    /// Phases run, in order.
    pub phases: Mutex<Vec<Phase>>,
    pub prepared: AtomicUsize,
    pub cleaned: AtomicUsize,
    /// `seal` calls: the directories and whether sealed.
    pub sealed: Mutex<Vec<(Vec<String>, bool)>>,
}

impl ScriptedSandbox {
    pub fn passing(tests: &[&str]) -> ScriptedSandbox {
        ScriptedSandbox {
            passing: tests.iter().map(|t| t.to_string()).collect(),
            engine_down: AtomicUsize::new(0),
            phases: Mutex::new(Vec::new()),
            prepared: AtomicUsize::new(0),
            cleaned: AtomicUsize::new(0),
            sealed: Mutex::new(Vec::new()),
        }
    }

    fn junit(&self) -> String {
        let cases: String = self
            .passing
            .iter()
            .map(|t| format!("<testcase classname=\"tests.test_app\" name=\"{t}\" time=\"0.01\"/>"))
            .collect();
        format!(
            "<?xml version=\"1.0\"?><testsuites><testsuite name=\"pytest\" tests=\"{}\" failures=\"0\" errors=\"0\">{cases}</testsuite></testsuites>",
            self.passing.len()
        )
    }
}

#[async_trait]
impl Sandbox for ScriptedSandbox {
    async fn prepare(
        &self,
        job: &str,
        claim: Option<&crate::sandbox::Claim>,
        _: &str,
        _: &Path,
        _: &SandboxLimits,
    ) -> Result<Work, SandboxError> {
        let down = self.engine_down.load(Ordering::SeqCst);
        if down > 0 {
            self.engine_down.store(down - 1, Ordering::SeqCst);
            return Err(SandboxError::Io("the engine did not answer".into()));
        }
        self.prepared.fetch_add(1, Ordering::SeqCst);
        Ok(Work {
            volume: format!("fake-{job}"),
            job: job.into(),
            claim: claim.cloned(),
            disk: None,
            mountpoint: None,
        })
    }
    async fn upload(&self, _: &Work, _: &str, _: &Path, _: &str) -> Result<(), SandboxError> {
        Ok(())
    }
    async fn seal(&self, _: &Work, _: &str, dirs: &[String], on: bool) -> Result<(), SandboxError> {
        self.sealed.lock().expect("sealed lock").push((dirs.to_vec(), on));
        Ok(())
    }
    async fn run(&self, _: &Work, spec: &PhaseSpec, _: &SandboxLimits) -> Result<PhaseResult, SandboxError> {
        self.phases.lock().expect("phases lock").push(spec.phase);
        let files = match (spec.phase, &spec.collect) {
            (Phase::Test, Some(_)) => vec![ResultFile {
                path: "results.xml".into(),
                data: self.junit().into_bytes(),
            }],
            _ => Vec::new(),
        };
        Ok(PhaseResult {
            exit_code: Some(0),
            stdout: format!("{} passed", self.passing.len()),
            duration_ms: 10,
            files,
            ..Default::default()
        })
    }
    async fn cleanup(&self, _: &Work) -> Result<(), SandboxError> {
        self.cleaned.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn reap_orphans(&self) -> Result<usize, SandboxError> {
        Ok(0)
    }
    async fn claims(&self) -> Result<Vec<crate::sandbox::Claim>, SandboxError> {
        Ok(Vec::new())
    }
    async fn remove_claim(&self, _: &crate::sandbox::Claim) -> Result<usize, SandboxError> {
        Ok(0)
    }
}

// ---------------------------------------------------------------- drafter

/// What [`FakeDrafter`] does when asked.
pub enum Drafting {
    /// Every criterion at `score`, citing the first evidence item it was given.
    Scores(u32),
    /// Fails as a broken model would.
    Fails(&'static str),
    /// Panics in async code (outside `spawn_blocking`), as a bug in the drafting code would.
    Panics(&'static str),
}

/// A [`Drafter`] with no model: drafts every criterion at a fixed score (or fails), counting calls.
pub struct FakeDrafter {
    pub drafting: Drafting,
    pub calls: AtomicUsize,
    options: DraftOptions,
    /// Checked before each draft until it holds (every 10 ms, for at most 5 s); a draft whose
    /// gate never opens fails, saying so.
    gate: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl FakeDrafter {
    pub fn new(drafting: Drafting) -> FakeDrafter {
        FakeDrafter {
            drafting,
            calls: AtomicUsize::new(0),
            options: DraftOptions::default(),
            gate: None,
        }
    }

    /// Drafts only once `gate` holds (a test's way to see what runs while a draft waits).
    pub fn with_gate(mut self, gate: impl Fn() -> bool + Send + Sync + 'static) -> FakeDrafter {
        self.gate = Some(Box::new(gate));
        self
    }
}

#[async_trait]
impl Drafter for FakeDrafter {
    fn model_id(&self) -> &str {
        "fake-drafter"
    }
    fn options(&self) -> &DraftOptions {
        &self.options
    }
    async fn draft(&self, input: DraftInput<'_>) -> anyhow::Result<(DraftRecord, Vec<EvidenceItem>)> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let waited = std::time::Instant::now();
            while !gate() {
                anyhow::ensure!(waited.elapsed().as_secs() < 5, "the draft's gate never opened");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        let score = match self.drafting {
            Drafting::Scores(s) => s,
            Drafting::Fails(why) => anyhow::bail!("{why}"),
            Drafting::Panics(why) => panic!("{why}"),
        };
        let cited: Vec<String> = input.stage_items.iter().take(1).map(|e| e.id.clone()).collect();
        let drafts = input
            .rubric
            .criteria
            .iter()
            .map(|c| CriterionDraft {
                criterion: c.id.clone(),
                score: Some(score),
                model_score: Some(score),
                band_max: None,
                rationale: format!("fake draft of {}", c.id),
                evidence: cited.clone(),
                valid: true,
                flags: Vec::new(),
                items: Vec::new(),
                feedback: None,
            })
            .collect();
        let record = DraftRecord {
            model: self.model_id().into(),
            prompt_version: crate::draft::PROMPT_VERSION.into(),
            prompt_hash: "fake".into(),
            prompt_tokens: 0,
            reused_tokens: 0,
            generated_tokens: 0,
            prompt_ms: 0,
            generate_ms: 0,
            valid: true,
            reason: None,
            drafts,
            attempts: Vec::new(),
            evidence_cut: Vec::new(),
            readme_lines: input.facts.readme_lines,
            raw: String::new(),
            answers: Vec::new(),
            feedback: None,
        };
        Ok((record, input.readme))
    }
}

// ---------------------------------------------------------------- progress

/// Progress that only counts the events (tests keep stderr quiet).
#[derive(Default)]
pub struct CountingProgress {
    pub stages: Mutex<BTreeMap<String, usize>>,
}

impl Progress for CountingProgress {
    fn start(&self, _: usize) {}
    fn stage(&self, _: &str, _: Stage, state: &str) {
        *self
            .stages
            .lock()
            .expect("progress lock")
            .entry(state.into())
            .or_default() += 1;
    }
    fn finished(&self, _: &str, _: &str, _: &str) {}
    fn end(&self) {}
}
