//! The worker pool: moves every submission of a cohort through its stages.
//!
//! - Each stage is keyed by (submission, stage, stage version, input key). A
//!   finished key is never run again; a crash loses only the stages in flight,
//!   which were recorded `running` and are reaped as `interrupted` by the next
//!   run (see [`lock`]). Stages are idempotent, so at-least-once is enough.
//! - A semaphore bounds each scarce resource: submissions in flight (`jobs`),
//!   network fetches, and CPU-heavy history reads.
//! - Blocking work (git2, rayon) runs in `spawn_blocking`; a panic there is
//!   caught at the stage edge and recorded as `internal_error` for that
//!   submission only.
//! - Cancellation (Ctrl-C) is one [`CancellationToken`]: stages in flight are
//!   recorded `interrupted`, never `done`.
//! - Infrastructure failures are retried with exponential backoff; outcomes the
//!   candidate's repository caused are not.

pub mod lock;
pub mod progress;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cohort::{Cohort, SubmissionSpec};
use crate::config::Settings;
use crate::draft::{self, Drafter};
use crate::evidence::{self, EvidenceItem};
use crate::git::{self, HistoryReport, RepoSource, SourcePolicy};
use crate::outcome::{Failure, OutcomeKind};
use crate::repro;
use crate::results::{latest_done, summarize_with_details, FetchOutput, GradeSummary, SandboxOutput, SubmissionDetail};
use crate::rubric::Rubric;
use crate::runner;
use crate::sandbox::job::{self, JobRequest, SandboxReport};
use crate::sandbox::{Sandbox, SandboxLimits};
use crate::store::{RunStatus, Stage, StageResult, StageRun, Store, StoreError};
use crate::submission::{SubmissionRecord, SubmissionStatus};

pub use progress::Progress;

/// What a stage body hands back on success.
#[derive(Debug)]
pub struct StageOk {
    /// The output document to store.
    pub output: serde_json::Value,
    /// Evidence found.
    pub evidence: Vec<EvidenceItem>,
    /// The commit the output is about.
    pub commit: Option<String>,
    /// How the stage ended: `ok`, or a result kind such as `tests_failed`
    /// (still a done stage: the candidate's failing tests are a result).
    pub outcome: OutcomeKind,
}

/// The pipeline, wired with a store and settings.
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
    test_timeout: Option<u64>,
    drafter: Option<Arc<dyn Drafter>>,
}

/// Per-cohort facts every submission task needs.
struct CohortCtx {
    id: i64,
    name: String,
    deadline: Option<chrono::DateTime<Utc>>,
    runner: String,
    hidden_tests: Option<PathBuf>,
    limits: SandboxLimits,
    rubric: Arc<Rubric>,
    /// sha256 of the rubric as parsed (part of the draft stage's key).
    rubric_hash: String,
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
            test_timeout: None,
            drafter: None,
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

    /// Lowers the test phase's wall time for this run (`--test-timeout`).
    pub fn with_test_timeout(mut self, seconds: Option<u64>) -> Pipeline {
        self.test_timeout = seconds;
        self
    }

    /// The policy limits, lowered by the cohort's `[limits]` and `--test-timeout`.
    fn sandbox_limits(&self, cohort: &Cohort) -> SandboxLimits {
        let mut l = SandboxLimits::from_settings(&self.settings.limits);
        for t in [cohort.limits.test_seconds, self.test_timeout].into_iter().flatten() {
            l.test_seconds = l.test_seconds.min(t.max(1));
        }
        if let Some(t) = cohort.limits.install_seconds {
            l.install_seconds = l.install_seconds.min(t.max(1));
        }
        l
    }

    /// Grades every submission of `cohort` that is not finished yet.
    pub async fn run(self: &Arc<Self>, cohort: &Cohort) -> Result<(GradeSummary, Vec<SubmissionDetail>), StoreError> {
        let spec = json!({
            "name": cohort.name,
            "rubric": cohort.rubric_path,
            "rubric_def": cohort.rubric,
            "deadline": cohort.deadline,
            "runner": cohort.runner,
            "top": cohort.top,
        });
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
            limits: self.sandbox_limits(cohort),
            rubric: Arc::new(cohort.rubric.clone()),
            rubric_hash: {
                let mut h = Sha256::new();
                h.update(serde_json::to_vec(&cohort.rubric).expect("rubric serialises"));
                hex::encode(h.finalize())
            },
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
                if permit.is_none() {
                    return (candidate, Ok(()));
                }
                let result = this.process(&ctx, &spec, rec).await;
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

    /// Runs every stage of one submission, recording how each ended.
    async fn process(&self, ctx: &CohortCtx, spec: &SubmissionSpec, rec: SubmissionRecord) -> Result<(), StoreError> {
        let candidate = spec.candidate.as_str();
        self.store
            .set_submission(rec.id, SubmissionStatus::Running, None, None)
            .await?;

        let fetch_key = key(&[
            &rec.repo,
            rec.git_ref.as_deref().unwrap_or("HEAD"),
            &ctx.deadline.map(|d| d.to_rfc3339()).unwrap_or_default(),
            EXPORT_VERSION,
        ]);
        let fetch = {
            let settings = Arc::clone(&self.settings);
            let spec = spec.clone();
            let policy = self.policy();
            let deadline = ctx.deadline;
            let export_dir = settings.data_dir.join("exports").join(&ctx.name).join(&spec.candidate);
            let slots = Arc::clone(&self.fetch_slots);
            self.run_stage(&rec, Stage::Fetch, &fetch_key, move || {
                let settings = Arc::clone(&settings);
                let spec = spec.clone();
                let export_dir = export_dir.clone();
                let slots = Arc::clone(&slots);
                async move {
                    let _permit = slots
                        .acquire_owned()
                        .await
                        .map_err(|_| Failure::infra("fetch slots closed"))?;
                    blocking(move || fetch_and_export(&settings, &spec, policy, deadline, &export_dir)).await
                }
            })
            .await?
        };
        let fetch: FetchOutput = match fetch {
            Ok(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
                table: "stage_runs",
                column: "output_json",
                value: format!("fetch output: {e}"),
            })?,
            Err(f) => return self.fail(ctx, &rec, f, None).await,
        };
        let commit = fetch.fetched.commit.clone();

        let history = {
            let mirror = fetch.fetched.mirror.clone();
            let after = fetch.fetched.after_deadline.clone();
            let commit = commit.clone();
            let salt = ctx.name.clone();
            let max_commits = self.settings.limits.commits;
            let slots = Arc::clone(&self.cpu_slots);
            // The commits after the deadline are evidence too: a new deadline on
            // the same commit reads the history again, as does an assay that reads it
            // differently (HISTORY_EVIDENCE).
            let history_key = key(&[&commit, &after.join(","), HISTORY_EVIDENCE]);
            self.run_stage(&rec, Stage::History, &history_key, move || {
                let (mirror, after, commit, salt, slots) = (
                    mirror.clone(),
                    after.clone(),
                    commit.clone(),
                    salt.clone(),
                    Arc::clone(&slots),
                );
                async move {
                    let _permit = slots
                        .acquire_owned()
                        .await
                        .map_err(|_| Failure::infra("cpu slots closed"))?;
                    blocking(move || {
                        let report = git::analyze(&git::HistoryInput {
                            repo: &mirror,
                            commit: &commit,
                            now: Utc::now(),
                            max_commits,
                            after_deadline: &after,
                            salt: &salt,
                        })?;
                        Ok(StageOk {
                            evidence: evidence::from_history(&report),
                            output: serde_json::to_value(&report).expect("history report serialises"),
                            commit: Some(commit),
                            outcome: OutcomeKind::Ok,
                        })
                    })
                    .await
                }
            })
            .await?
        };
        if let Err(f) = history {
            return self.fail(ctx, &rec, f, Some(&commit)).await;
        }
        let outcome = match &self.sandbox {
            None => OutcomeKind::Ok,
            Some(sandbox) => match self.sandbox_stages(ctx, &rec, &fetch, Arc::clone(sandbox)).await? {
                Ok(kind) => kind,
                Err(f) => return self.fail(ctx, &rec, f, Some(&commit)).await,
            },
        };
        // A partial copy is graded as far as it goes (history, tests, drafts) but its outcome
        // is the copy's: `repo_corrupt`, set apart in triage, never a verdict on the candidate.
        let outcome = match fetch.export.missing_message(&commit) {
            Some(message) => {
                tracing::warn!(candidate, "{message}");
                OutcomeKind::RepoCorrupt
            }
            None => outcome,
        };
        if let Some(drafter) = &self.drafter {
            // A failed draft leaves the submission's outcome alone: the stage run records why,
            // and the report says the draft is missing.
            if let Err(f) = self.draft_stage(ctx, &rec, &fetch, Arc::clone(drafter)).await? {
                tracing::warn!(candidate, "draft failed: {}: {}", f.kind, f.message);
            }
        }
        self.store
            .set_submission(rec.id, SubmissionStatus::Done, Some(outcome), Some(&commit))
            .await?;
        self.store
            .event(
                Some(ctx.id),
                Some(rec.id),
                "submission_finished",
                &json!({ "status": "done", "outcome": outcome, "commit": commit }),
            )
            .await?;
        self.progress.finished(candidate, "done", outcome.as_str());
        Ok(())
    }

    /// The sandbox stage, then the reproducibility stage. Returns the
    /// submission's outcome (the sandbox's: passed, tests_failed, …).
    async fn sandbox_stages(
        &self,
        ctx: &CohortCtx,
        rec: &SubmissionRecord,
        fetch: &FetchOutput,
        sandbox: Arc<dyn Sandbox>,
    ) -> Result<Result<OutcomeKind, Failure>, StoreError> {
        let commit = fetch.fetched.commit.clone();
        let hidden_key = ctx
            .hidden_tests
            .as_ref()
            .map(|h| h.display().to_string())
            .unwrap_or_default();
        let limits_key = serde_json::to_string(&ctx.limits).expect("limits serialise");
        // SANDBOX_EVIDENCE names what the job measures: results stored by an assay that measured
        // less (before the README's steps ran) are not reused; nor are results of runner specs
        // that have changed since (a detection that now finds tests it did not).
        let sandbox_key = key(&[
            &commit,
            &ctx.runner,
            &hidden_key,
            &limits_key,
            SANDBOX_EVIDENCE,
            &runner::fingerprint(),
        ]);
        let job = format!("{}-{}-{}", ctx.id, rec.id, &commit[..12]);
        let (mirror, export_dir) = (fetch.fetched.mirror.clone(), fetch.export.dir.clone());
        let forced = (ctx.runner != "auto").then(|| ctx.runner.clone());
        let hidden = ctx.hidden_tests.clone();
        let limits = ctx.limits.clone();
        let file_limits = self.settings.limits.clone();
        let slots = Arc::clone(&self.container_slots);
        let out = self
            .run_stage(rec, Stage::Sandbox, &sandbox_key, || {
                let (mirror, export_dir, commit, forced, hidden, limits, file_limits, slots, job, sandbox) = (
                    mirror.clone(),
                    export_dir.clone(),
                    commit.clone(),
                    forced.clone(),
                    hidden.clone(),
                    limits.clone(),
                    file_limits.clone(),
                    Arc::clone(&slots),
                    job.clone(),
                    Arc::clone(&sandbox),
                );
                async move {
                    let _permit = slots
                        .acquire_owned()
                        .await
                        .map_err(|_| Failure::infra("container slots closed"))?;
                    // The export may have been cleaned since the fetch: it is
                    // rebuilt from the mirror (a finished one is reused).
                    let tree = export_dir.clone();
                    blocking(move || ensure_export(&mirror, &commit, &export_dir, &file_limits)).await?;
                    let spec = match forced.as_deref() {
                        Some(name) => Some(runner::by_name(name).map_err(Failure::infra)?),
                        None => runner::detect(&tree),
                    };
                    let report = match &spec {
                        None => None,
                        Some(spec) => Some(
                            job::run_job(
                                sandbox.as_ref(),
                                &JobRequest {
                                    job,
                                    source: &tree,
                                    runner: spec,
                                    limits,
                                    test_runs: 2,
                                    hidden_tests: hidden.as_deref(),
                                },
                            )
                            .await
                            .map_err(|e| Failure::infra(e.to_string()))?,
                        ),
                    };
                    Ok(StageOk {
                        outcome: report.as_ref().map_or(OutcomeKind::NoRunner, |r| r.outcome),
                        evidence: test_evidence(report.as_ref()),
                        output: serde_json::to_value(SandboxOutput { report }).expect("sandbox output serialises"),
                        commit: None,
                    })
                }
            })
            .await?;
        let output: SandboxOutput = match out {
            Ok(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
                table: "stage_runs",
                column: "output_json",
                value: format!("sandbox output: {e}"),
            })?,
            Err(f) => return Ok(Err(f)),
        };
        let outcome = output.report.as_ref().map_or(OutcomeKind::NoRunner, |r| r.outcome);

        let repro_key = key(&[&sandbox_key, "repro", REPRO_EVIDENCE]);
        let (tree, export) = (fetch.export.dir.clone(), fetch.export.clone());
        let report = output.report.clone();
        let repro = self
            .run_stage(rec, Stage::Repro, &repro_key, || {
                let (tree, export, report) = (tree.clone(), export.clone(), report.clone());
                async move {
                    blocking(move || {
                        let r = repro::assess(&tree, report.as_ref(), &export);
                        Ok(StageOk {
                            evidence: r
                                .findings
                                .iter()
                                .map(|f| EvidenceItem {
                                    id: f.id.clone(),
                                    kind: f.kind.clone(),
                                    source: "reproducibility".into(),
                                    text: evidence::bound(
                                        &format!("{} (fix: {})", f.message, f.fix),
                                        evidence::MAX_TEXT,
                                    ),
                                })
                                .collect(),
                            output: serde_json::to_value(&r).expect("repro report serialises"),
                            commit: None,
                            outcome: OutcomeKind::Ok,
                        })
                    })
                    .await
                }
            })
            .await?;
        Ok(repro.map(|_| outcome))
    }

    /// The draft stage: the evidence so far plus README sections, one constrained generation.
    async fn draft_stage(
        &self,
        ctx: &CohortCtx,
        rec: &SubmissionRecord,
        fetch: &FetchOutput,
        drafter: Arc<dyn Drafter>,
    ) -> Result<Result<(), Failure>, StoreError> {
        let store = self.store.as_ref();
        let DraftEvidence {
            items,
            facts,
            commits,
            previous,
        } = draft_evidence(store, rec.id).await?;
        // Questions whose prompt has not changed keep the answers of the last draft.
        let previous: Vec<crate::ask::Answer> = previous
            .filter(|r| r.model == drafter.model_id())
            .map(|r| r.answers)
            .unwrap_or_default();
        let evidence_hash = {
            let mut h = Sha256::new();
            h.update(serde_json::to_vec(&items).expect("evidence serialises"));
            hex::encode(h.finalize())
        };
        let options = serde_json::to_string(drafter.options()).expect("options serialise");
        let commit = fetch.fetched.commit.clone();
        let draft_key = key(&[
            &commit,
            drafter.model_id(),
            &ctx.rubric_hash,
            draft::PROMPT_VERSION,
            crate::ask::fingerprint(),
            crate::rubric::checks::VERSION,
            &options,
            &evidence_hash,
        ]);
        let file_limits = self.settings.limits.clone();
        let rubric = Arc::clone(&ctx.rubric);
        let out = self
            .run_stage(rec, Stage::Draft, &draft_key, || {
                let (fetch, file_limits) = (fetch.clone(), file_limits.clone());
                let (items, mut facts, drafter, rubric) =
                    (items.clone(), facts.clone(), Arc::clone(&drafter), Arc::clone(&rubric));
                let (commits, previous) = (commits.clone(), previous.clone());
                async move {
                    let (readme, readme_lines) = blocking(move || readme_evidence(&fetch, &file_limits)).await?;
                    facts.readme_lines = Some(readme_lines);
                    let (record, extra) = drafter
                        .draft(draft::DraftInput {
                            rubric: &rubric,
                            band_above: rubric.band_above,
                            stage_items: items,
                            readme,
                            commits,
                            facts,
                            options: drafter.options(),
                            previous,
                        })
                        .await
                        .map_err(|e| Failure::new(OutcomeKind::InternalError, format!("draft: {e:#}")))?;
                    Ok(StageOk {
                        output: serde_json::to_value(&record).expect("draft record serialises"),
                        evidence: extra,
                        commit: None,
                        outcome: OutcomeKind::Ok,
                    })
                }
            })
            .await?;
        Ok(out.map(|_| ()))
    }

    async fn fail(
        &self,
        ctx: &CohortCtx,
        rec: &SubmissionRecord,
        f: Failure,
        commit: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = if f.kind == OutcomeKind::Interrupted {
            SubmissionStatus::Interrupted
        } else {
            SubmissionStatus::Failed
        };
        self.store.set_submission(rec.id, status, Some(f.kind), commit).await?;
        self.store
            .event(
                Some(ctx.id),
                Some(rec.id),
                "submission_finished",
                &json!({ "status": status.as_str(), "outcome": f.kind, "error": f.message }),
            )
            .await?;
        self.progress.finished(&rec.candidate, status.as_str(), f.kind.as_str());
        Ok(())
    }

    /// Runs one stage with resume, retries and cancellation. `Ok(Err(_))` is a
    /// recorded stage failure; `Err(_)` means the store itself failed.
    async fn run_stage<F, Fut>(
        &self,
        rec: &SubmissionRecord,
        stage: Stage,
        input_key: &str,
        body: F,
    ) -> Result<Result<serde_json::Value, Failure>, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<StageOk, Failure>>,
    {
        let candidate = rec.candidate.as_str();
        if let Some(done) = self.store.final_run(rec.id, stage, input_key).await? {
            return Ok(match done.status {
                RunStatus::Done => {
                    self.progress.stage(candidate, stage, "done earlier, skipped");
                    Ok(done.output.unwrap_or(serde_json::Value::Null))
                }
                _ => {
                    let kind = done.outcome.unwrap_or(OutcomeKind::InfraError);
                    self.progress
                        .stage(candidate, stage, &format!("failed earlier ({kind}), skipped"));
                    Err(Failure::new(kind, done.error.unwrap_or_default()))
                }
            });
        }
        let mut tries = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(Err(Failure::new(
                    OutcomeKind::Interrupted,
                    "cancelled before the stage started",
                )));
            }
            let run = self.store.start_run(rec.id, stage, input_key, &self.worker).await?;
            self.progress.stage(
                candidate,
                stage,
                if run.attempt > 1 { "running (again)" } else { "running" },
            );
            let result = tokio::select! {
                r = body() => r,
                _ = self.cancel.cancelled() => Err(Failure::new(OutcomeKind::Interrupted, "cancelled while running")),
            };
            match result {
                Ok(ok) => {
                    self.finish(
                        &run,
                        RunStatus::Done,
                        ok.outcome,
                        None,
                        Some(&ok.output),
                        ok.evidence,
                        ok.commit,
                    )
                    .await?;
                    self.progress.stage(candidate, stage, "done");
                    return Ok(Ok(ok.output));
                }
                Err(f) if f.kind == OutcomeKind::Interrupted => {
                    self.finish(
                        &run,
                        RunStatus::Interrupted,
                        f.kind,
                        Some(f.message.clone()),
                        None,
                        Vec::new(),
                        None,
                    )
                    .await?;
                    self.progress.stage(candidate, stage, "interrupted");
                    return Ok(Err(f));
                }
                Err(f) => {
                    self.finish(
                        &run,
                        RunStatus::Failed,
                        f.kind,
                        Some(f.message.clone()),
                        None,
                        Vec::new(),
                        None,
                    )
                    .await?;
                    if f.kind.is_retryable() && tries < self.settings.retries {
                        tries += 1;
                        let backoff = Duration::from_millis(500u64 << tries.min(6));
                        self.progress.stage(
                            candidate,
                            stage,
                            &format!("{}: retrying in {:.1}s", f.kind, backoff.as_secs_f64()),
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => continue,
                            _ = self.cancel.cancelled() => return Ok(Err(Failure::new(OutcomeKind::Interrupted, "cancelled during backoff"))),
                        }
                    }
                    self.progress.stage(candidate, stage, &format!("failed: {}", f.kind));
                    return Ok(Err(f));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        run: &StageRun,
        status: RunStatus,
        outcome: OutcomeKind,
        error: Option<String>,
        output: Option<&serde_json::Value>,
        evidence: Vec<EvidenceItem>,
        commit: Option<String>,
    ) -> Result<(), StoreError> {
        let result = StageResult {
            status,
            outcome,
            error,
            output: output.cloned(),
            evidence,
            commit,
        };
        self.store.finish_run(run, &result).await
    }
}

/// Evidence items `T1…` from a sandbox report: the candidate's tests, the
/// hidden tests, flaky tests.
fn test_evidence(report: Option<&SandboxReport>) -> Vec<EvidenceItem> {
    let mut items = Vec::new();
    let mut push = |kind: &str, text: String| {
        items.push(EvidenceItem {
            id: format!("T{}", items.len() + 1),
            kind: kind.to_string(),
            source: "sandbox".into(),
            text: evidence::bound(&text, evidence::MAX_TEXT),
        })
    };
    let Some(r) = report else {
        push(
            "no_runner",
            "no runner recognised the repository, so nothing was installed or tested".into(),
        );
        return items;
    };
    match r.runs.first() {
        None => push(
            r.outcome.as_str(),
            format!(
                "the {} install did not finish ({}), so no tests ran",
                r.runner, r.outcome
            ),
        ),
        Some(t) => push(
            "candidate_tests",
            format!(
                "candidate's tests ({}): {} — {}",
                r.runner,
                t.outcome,
                t.report.describe()
            ),
        ),
    }
    if let Some(h) = &r.hidden {
        push(
            "hidden_tests",
            format!(
                "hidden tests: {} — {} passed, {} failed, {} errors",
                h.outcome, h.report.passed, h.report.failed, h.report.errors
            ),
        );
    }
    if !r.flaky.is_empty() {
        push(
            "flaky_tests",
            format!("results changed between two clean runs for: {}", r.flaky.join(", ")),
        );
    }
    items
}

/// Runs blocking work off the runtime; a panic becomes `internal_error`.
async fn blocking<T, F>(f: F) -> Result<T, Failure>
where
    F: FnOnce() -> Result<T, Failure> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Failure::new(
                OutcomeKind::InternalError,
                format!("assay panicked: {msg} (please report this)"),
            ))
        }
        Err(e) => Err(Failure::infra(format!("blocking task failed: {e}"))),
    }
}

/// What the draft stage reads of a submission besides its README.
pub struct DraftEvidence {
    /// The stored evidence without the draft stage's own items (D, C, I: rebuilt each time).
    pub items: Vec<EvidenceItem>,
    pub facts: draft::Facts,
    /// The candidate's commit messages as `C` items.
    pub commits: Vec<EvidenceItem>,
    /// The submission's last draft, when there is one.
    pub previous: Option<draft::DraftRecord>,
}

/// Reads what the draft stage drafts from (the README aside, see [`readme_evidence`]): the
/// evidence and the submission's runs, each read once.
pub async fn draft_evidence(store: &dyn Store, submission_id: i64) -> Result<DraftEvidence, StoreError> {
    let items: Vec<EvidenceItem> = store
        .evidence(submission_id)
        .await?
        .into_iter()
        .filter(|i| !i.id.starts_with('D') && !i.id.starts_with('C') && !i.id.starts_with('I'))
        .collect();
    let runs = store.runs(submission_id).await?;
    let output = |stage| latest_done(&runs, stage);
    let sandbox_report = output(Stage::Sandbox)
        .and_then(|v| serde_json::from_value::<SandboxOutput>(v).ok())
        .and_then(|o| o.report);
    let repro_report: Option<repro::ReproReport> = output(Stage::Repro).and_then(|v| serde_json::from_value(v).ok());
    let history: Option<HistoryReport> = output(Stage::History).and_then(|v| serde_json::from_value(v).ok());
    let facts = draft::Facts::from_reports(history.as_ref(), sandbox_report.as_ref(), repro_report.as_ref(), None);
    Ok(DraftEvidence {
        items,
        facts,
        commits: crate::ask::commit_items(history.as_ref()),
        previous: output(Stage::Draft).and_then(|v| serde_json::from_value(v).ok()),
    })
}

/// The README's `D` items and line count from the graded tree (re-exported from the mirror
/// when the export was cleaned). Blocking: run it off the async runtime.
pub fn readme_evidence(
    fetch: &FetchOutput,
    limits: &crate::config::Limits,
) -> Result<(Vec<EvidenceItem>, usize), Failure> {
    ensure_export(&fetch.fetched.mirror, &fetch.fetched.commit, &fetch.export.dir, limits)?;
    Ok(draft::readme_evidence(&fetch.export.dir))
}

/// (Re)builds the export of `commit` from the mirror; a finished export is reused.
fn ensure_export(
    mirror: &std::path::Path,
    commit: &str,
    dir: &std::path::Path,
    limits: &crate::config::Limits,
) -> Result<(), Failure> {
    let repo = git2::Repository::open_bare(mirror)
        .map_err(|e| Failure::infra(format!("cannot open mirror: {}", e.message())))?;
    git::export_tree(&repo, commit, dir, limits).map(|_| ())
}

fn fetch_and_export(
    settings: &Settings,
    spec: &SubmissionSpec,
    policy: SourcePolicy,
    deadline: Option<chrono::DateTime<Utc>>,
    export_root: &std::path::Path,
) -> Result<StageOk, Failure> {
    let source = RepoSource::parse(&spec.repo, &spec.base_dir, policy)?;
    source.check_host(policy)?;
    let fetched = git::fetch(&git::FetchRequest {
        git_ref: spec.git_ref.as_deref(),
        deadline,
        ..git::FetchRequest::new(&source, settings)
    })?;
    let repo = git2::Repository::open_bare(&fetched.mirror).map_err(|e| {
        Failure::infra(format!(
            "cannot open mirror {}: {}",
            fetched.mirror.display(),
            e.message()
        ))
    })?;
    let dest: PathBuf = export_root.join(&fetched.commit);
    let export = git::export_tree(&repo, &fetched.commit, &dest, &settings.limits)?;
    let commit = fetched.commit.clone();
    let output = FetchOutput { fetched, export };
    Ok(StageOk {
        output: serde_json::to_value(&output).expect("fetch output serialises"),
        evidence: Vec::new(),
        commit: Some(commit),
        outcome: OutcomeKind::Ok,
    })
}

/// The version of what the history stage concludes (pytest's configured test paths count as
/// tests; a partial copy's missing objects are listed and read around; an early baseline, CI and
/// linter configuration are signals; terse messages, and tests that came with the dump, are
/// signals; notebooks count their cells' source lines); part of its stage key.
const HISTORY_EVIDENCE: &str = "notebooks-1+fixtures-data+kept-lines+rendered-pages+one-person+placeholder-tests";

/// The version of what the fetch stage's export writes (a partial copy exports what it has and
/// lists what it lacks, where it used to fail); part of its stage key.
const EXPORT_VERSION: &str = "partial-copies-1";

/// The version of what the reproducibility stage concludes from the tree and the README (a test
/// runner named in a sentence is no documented test command); part of its stage key.
const REPRO_EVIDENCE: &str = "prose-runner-args+nested-projects+no-manifest";

/// The version of what the sandbox job measures; part of its stage key.
const SANDBOX_EVIDENCE: &str = "readme-steps-1+unrun-suites";

/// A stable key for stage inputs.
fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())[..32].to_string()
}

fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    format!("{}:{}", host.trim(), std::process::id())
}

#[cfg(test)]
mod tests;
