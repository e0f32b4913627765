//! The worker pool: moves every submission of a cohort through its stages.
//!
//! - Each stage is keyed by (submission, stage, stage version, input key). A
//!   finished key is never run again; a crash loses only the stages in flight,
//!   which were recorded `running` and are reaped as `interrupted` by the next
//!   run (see [`lock`]). Stages are idempotent, so at-least-once is enough.
//! - A semaphore bounds each scarce resource: submissions in flight (`jobs`),
//!   network fetches, CPU-heavy history reads and containers. A submission gives
//!   its job back before it drafts: the model drafts one submission at a time, and
//!   those waiting for it hold no job, so the next submissions' containers run on
//!   while the model works (the two sides of the machine stay busy).
//! - Blocking work (git2, rayon) runs in `spawn_blocking`; a panic there is
//!   caught at the stage edge and recorded as `internal_error` for that
//!   submission only.
//! - Cancellation (Ctrl-C) is one [`CancellationToken`]: stages in flight are
//!   recorded `interrupted`, never `done`.
//! - Infrastructure failures are retried with exponential backoff; outcomes the
//!   candidate's repository caused are not.

mod draft;
mod fetch;
mod history;
pub mod lock;
pub mod progress;
mod sandbox;
mod screen;
mod stage;
pub mod worker;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use futures_util::FutureExt;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cohort::{Cohort, CohortLimits, SubmissionSpec};
use crate::config::Settings;
use crate::draft::Drafter;
use crate::git::{self, RepoSource, SourcePolicy};
use crate::outcome::{Failure, OutcomeKind};
use crate::results::{summarize_with_details, FetchOutput, GradeSummary, SubmissionDetail};
use crate::rubric::Rubric;
use crate::sandbox::{Sandbox, SandboxLimits};
use crate::store::{Stage, Store, StoreError};
use crate::submission::{SubmissionRecord, SubmissionStatus};

pub use draft::{draft_evidence, readme_evidence, DraftEvidence};
pub use fetch::fetch_child_main;
pub use progress::Progress;
pub use stage::StageOk;

/// The pipeline, wired with a store and settings. Cheap to clone: a queue job runs on a clone
/// with the job's lease and a cancellation token of its own.
#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    cancel: CancellationToken,
    progress: Arc<dyn Progress>,
    jobs: Arc<Semaphore>,
    fetch_slots: Arc<Semaphore>,
    cpu_slots: Arc<Semaphore>,
    worker: String,
    sandbox: Option<Arc<dyn Sandbox>>,
    container_slots: Arc<Semaphore>,
    drafter: Option<Arc<dyn Drafter>>,
    /// The queue job this pipeline runs for, when it runs one (see [`worker`]).
    job: Option<worker::JobCtx>,
}

/// Per-cohort facts every submission task needs.
pub(super) struct CohortCtx {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) deadline: Option<chrono::DateTime<Utc>>,
    pub(super) runner: String,
    pub(super) hidden_tests: Option<PathBuf>,
    pub(super) limits: SandboxLimits,
    pub(super) rubric: Arc<Rubric>,
    /// sha256 of the rubric as parsed (part of the draft stage's key).
    pub(super) rubric_hash: String,
}

/// One submission as its stages see it: built once, shared (one `Arc`) by every stage body and
/// attempt instead of lists of clones.
pub(super) struct Sub {
    pub(super) cohort: Arc<CohortCtx>,
    pub(super) spec: SubmissionSpec,
    pub(super) rec: SubmissionRecord,
    pub(super) settings: Arc<Settings>,
    pub(super) policy: SourcePolicy,
}

/// A submission whose fetch is done: what the later stages read.
pub(super) struct Fetched {
    pub(super) sub: Arc<Sub>,
    pub(super) out: FetchOutput,
}

impl Pipeline {
    /// A pipeline over `store`; cancelling `cancel` stops it gracefully.
    pub fn new(
        store: Arc<dyn Store>,
        settings: Settings,
        cancel: CancellationToken,
        progress: Box<dyn Progress>,
    ) -> Pipeline {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let jobs = settings.jobs;
        Pipeline {
            store,
            cancel,
            progress: Arc::from(progress),
            jobs: Arc::new(Semaphore::new(jobs)),
            fetch_slots: Arc::new(Semaphore::new(jobs.min(8))),
            cpu_slots: Arc::new(Semaphore::new(cores.min(jobs).max(1))),
            worker: worker_id(),
            sandbox: None,
            // Each container gets one CPU: no more of them than cores.
            container_slots: Arc::new(Semaphore::new(cores.min(jobs).max(1))),
            drafter: None,
            job: None,
            settings: Arc::new(settings),
        }
    }

    /// Runs the sandbox and reproducibility stages in `sandbox` (without one,
    /// grading stops after the history).
    pub fn with_sandbox(mut self, sandbox: Arc<dyn Sandbox>) -> Pipeline {
        self.sandbox = Some(sandbox);
        self
    }

    /// Drafts every rubric criterion with the local model after the other stages.
    pub fn with_drafter(mut self, drafter: Arc<dyn Drafter>) -> Pipeline {
        self.drafter = Some(drafter);
        self
    }

    /// The policy limits, lowered by the cohort's `[limits]` and the settings' `test_timeout`.
    fn limits_for(&self, limits: &CohortLimits) -> SandboxLimits {
        let mut l = SandboxLimits::from_settings(&self.settings);
        for t in [limits.test_seconds, self.settings.test_timeout].into_iter().flatten() {
            l.test_seconds = l.test_seconds.min(t.max(1));
        }
        if let Some(t) = limits.install_seconds {
            l.install_seconds = l.install_seconds.min(t.max(1));
        }
        l
    }

    /// Grades every submission of `cohort` that is not finished yet: through the store's work
    /// queue when it has one (see [`worker`]), else in this process's own pool.
    pub async fn run(self: &Arc<Self>, cohort: &Cohort) -> Result<(GradeSummary, Vec<SubmissionDetail>), StoreError> {
        if self.store.queue().is_some() {
            return self.run_queued(cohort).await;
        }
        let spec = worker::cohort_spec(cohort, &self.job_stages());
        let cohort_id = self.store.upsert_cohort(&cohort.name, &spec).await?;
        let reaped = self.store.reap_running().await?;
        if reaped > 0 {
            self.store
                .event(
                    Some(cohort_id),
                    None,
                    "reaped_abandoned_runs",
                    &json!({ "runs": reaped }),
                )
                .await?;
        }
        self.store
            .event(
                Some(cohort_id),
                None,
                "grade_started",
                &json!({ "worker": self.worker, "submissions": cohort.submissions.len() }),
            )
            .await?;
        let ctx = Arc::new(CohortCtx {
            id: cohort_id,
            name: cohort.name.clone(),
            deadline: cohort.deadline,
            runner: cohort.runner.clone(),
            hidden_tests: cohort.hidden_tests.clone(),
            limits: self.limits_for(&cohort.limits),
            rubric: Arc::new(cohort.rubric.clone()),
            rubric_hash: worker::rubric_hash(&cohort.rubric),
        });

        let mut records = Vec::with_capacity(cohort.submissions.len());
        for spec in &cohort.submissions {
            let display = match RepoSource::parse(&spec.repo, &spec.base_dir, self.policy()) {
                Ok(src) => src.display(),
                Err(_) => git::redact(&spec.repo),
            };
            let anon = git::history::anon_id(&cohort.name, &spec.candidate);
            let rec = self
                .store
                .upsert_submission(cohort_id, &spec.candidate, &anon, &display, spec.git_ref.as_deref())
                .await?;
            records.push((spec.clone(), rec));
        }

        self.progress.start(records.len());
        let mut tasks = JoinSet::new();
        for (spec, rec) in records.iter().cloned() {
            let this = Arc::clone(self);
            let ctx = Arc::clone(&ctx);
            tasks.spawn(async move {
                let candidate = spec.candidate.clone();
                let permit = tokio::select! {
                    p = this.jobs.clone().acquire_owned() => p.ok(),
                    _ = this.cancel.cancelled() => None,
                };
                let Some(permit) = permit else {
                    return (candidate, Ok(()));
                };
                // A panic anywhere in the submission's work (outside `blocking`, which catches
                // its own) ends the submission as `internal_error`, recorded, never left running.
                let result = match AssertUnwindSafe(this.process(&ctx, &spec, rec.clone(), Some(permit)))
                    .catch_unwind()
                    .await
                {
                    Ok(result) => result.map(|_| ()),
                    Err(payload) => {
                        let f = stage::panicked(payload);
                        tracing::error!(candidate, "{}", f.message);
                        this.record_failure(&ctx, &rec, f, None).await.map(|_| ())
                    }
                };
                (candidate, result)
            });
        }
        let mut first_error: Option<StoreError> = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                // A store failure means state could not be recorded: report it
                // once the other submissions have finished.
                Ok((candidate, Err(e))) => {
                    tracing::error!(candidate, "store error: {e}");
                    first_error.get_or_insert(e);
                }
                Err(e) => tracing::error!("submission task failed: {e}"),
            }
        }
        self.progress.end();
        self.store
            .event(
                Some(cohort_id),
                None,
                "grade_finished",
                &json!({ "cancelled": self.cancel.is_cancelled() }),
            )
            .await?;
        if let Some(e) = first_error {
            return Err(e);
        }
        let (mut summary, details) = summarize_with_details(
            self.store.as_ref(),
            &cohort.name,
            cohort_id,
            &cohort.rubric,
            cohort.top as usize,
        )
        .await?;
        summary.cancelled = self.cancel.is_cancelled();
        Ok((summary, details))
    }

    fn policy(&self) -> SourcePolicy {
        SourcePolicy {
            remote_only: self.settings.remote_only,
            allow_private_hosts: self.settings.allow_private_hosts,
        }
    }

    /// Runs every stage of one submission (a queue job's: up to its last), recording how each
    /// ended; the failure that ended it early, if one did.
    async fn process(
        &self,
        cohort: &Arc<CohortCtx>,
        spec: &SubmissionSpec,
        rec: SubmissionRecord,
        job: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Option<Failure>, StoreError> {
        let until = self.job.as_ref().map(worker::JobCtx::last);
        self.store
            .set_submission(rec.id, SubmissionStatus::Running, None, None)
            .await?;
        let sub = Arc::new(Sub {
            cohort: Arc::clone(cohort),
            spec: spec.clone(),
            rec,
            settings: Arc::clone(&self.settings),
            policy: self.policy(),
        });
        let out = match self.fetch_stage(&sub).await? {
            Ok(out) => out,
            Err(f) => return self.fail(&sub, f, None).await,
        };
        let fetched = Arc::new(Fetched {
            sub: Arc::clone(&sub),
            out,
        });
        let commit = fetched.out.fetched.commit.clone();
        if until == Some(Stage::Fetch) {
            return Ok(None);
        }
        if let Err(f) = self.history_stage(&fetched).await? {
            return self.fail(&sub, f, Some(&commit)).await;
        }
        if until == Some(Stage::History) {
            return Ok(None);
        }
        let outcome = match &self.sandbox {
            // A draft job on a machine without Docker: another machine ran the sandbox, and the
            // submission's outcome is what it found.
            None if self.job.as_ref().is_some_and(|j| j.cohort_runs(Stage::Sandbox)) => {
                let runs = self.store.runs(sub.rec.id).await?;
                crate::results::read_latest::<crate::results::SandboxOutput>(&runs, sub.rec.id, Stage::Sandbox)?
                    .and_then(|o| o.report)
                    .map_or(OutcomeKind::NoRunner, |r| r.outcome)
            }
            None => OutcomeKind::Ok,
            Some(sandbox) => {
                let (output, sandbox_key) = match self.sandbox_stage(&fetched, sandbox).await? {
                    Ok(done) => done,
                    Err(f) => return self.fail(&sub, f, Some(&commit)).await,
                };
                if until == Some(Stage::Sandbox) {
                    return Ok(None);
                }
                // The submission's outcome is the sandbox's: passed, tests_failed, …
                let outcome = output.report.as_ref().map_or(OutcomeKind::NoRunner, |r| r.outcome);
                if let Err(f) = self.repro_stage(&fetched, &sandbox_key, output.report).await? {
                    return self.fail(&sub, f, Some(&commit)).await;
                }
                outcome
            }
        };
        if let Err(f) = self.screen_stage(&fetched).await? {
            return self.fail(&sub, f, Some(&commit)).await;
        }
        // Whether the submission is drafted: a queue job's cohort says (its draft job may run on
        // another machine, after this one).
        let drafts = self
            .job
            .as_ref()
            .map_or(self.drafter.is_some(), |j| j.cohort_runs(Stage::Draft));
        if until == Some(Stage::Screen) && drafts {
            return Ok(None);
        }
        let candidate = sub.spec.candidate.as_str();
        // A partial copy is graded as far as it goes (history, tests, drafts) but its outcome
        // is the copy's: `repo_corrupt`, set apart in triage, never a verdict on the candidate.
        let outcome = match fetched.out.export.missing_message(&commit) {
            Some(message) => {
                tracing::warn!(candidate, "{message}");
                OutcomeKind::RepoCorrupt
            }
            None => outcome,
        };
        // The job is given back before the draft: waiting for the model holds no job, and the
        // next submission's fetch, history and containers start now.
        drop(job);
        if let (Some(drafter), true) = (&self.drafter, drafts) {
            // A failed draft leaves the submission's outcome alone: the stage run records why,
            // and the report says the draft is missing.
            if let Err(f) = self.draft_stage(&fetched, drafter).await? {
                tracing::warn!(candidate, "draft failed: {}: {}", f.kind, f.message);
            }
        }
        self.store
            .set_submission(sub.rec.id, SubmissionStatus::Done, Some(outcome), Some(&commit))
            .await?;
        self.store
            .event(
                Some(sub.cohort.id),
                Some(sub.rec.id),
                "submission_finished",
                &json!({ "status": "done", "outcome": outcome, "commit": commit }),
            )
            .await?;
        self.progress.finished(candidate, "done", outcome.as_str());
        Ok(None)
    }

    /// Records how `sub` failed, unless its queue job was taken over (the worker that holds it
    /// now records how it ends); the failure.
    async fn fail(&self, sub: &Sub, f: Failure, commit: Option<&str>) -> Result<Option<Failure>, StoreError> {
        if worker::is_lease_lost(&f) {
            return Ok(Some(f));
        }
        self.record_failure(&sub.cohort, &sub.rec, f, commit).await
    }

    /// Records how a submission failed (`interrupted` when cancelled): its status and outcome,
    /// the finish event with the error, the progress line. A panic in its work ends here too,
    /// its stage run left as the panic left it (the next run starts a new attempt).
    async fn record_failure(
        &self,
        cohort: &CohortCtx,
        rec: &SubmissionRecord,
        f: Failure,
        commit: Option<&str>,
    ) -> Result<Option<Failure>, StoreError> {
        let status = if f.kind == OutcomeKind::Interrupted {
            SubmissionStatus::Interrupted
        } else {
            SubmissionStatus::Failed
        };
        self.store.set_submission(rec.id, status, Some(f.kind), commit).await?;
        self.store
            .event(
                Some(cohort.id),
                Some(rec.id),
                "submission_finished",
                &json!({ "status": status.as_str(), "outcome": f.kind, "error": f.message }),
            )
            .await?;
        self.progress.finished(&rec.candidate, status.as_str(), f.kind.as_str());
        Ok(Some(f))
    }
}

/// This process's worker id: `host:pid`.
pub fn worker_id() -> String {
    crate::host::owner()
}

#[cfg(test)]
mod tests;
