//! Queue workers: a cohort enqueued as one job per submission and stage (see
//! [`crate::store::queue`]), and workers on any machine that claim the jobs of the stages they
//! run, each job under a lease they renew while it runs.
//!
//! A job runs the submission's stages up to its own on a clone of the pipeline that carries the
//! job's lease: the earlier stages are done already and are skipped by their keys (their stored
//! outputs read back; a fetch done on another machine is fetched again into this machine's
//! mirror, at the recorded commit); every stage attempt the job starts is recorded under the
//! lease's token, and the job's last stage writes its output, evidence and the job's end in one
//! transaction. A worker whose lease was taken over (it stopped renewing it: stopped, killed or
//! cut off) cancels what it runs — containers removed — and writes nothing more.
//!
//! The jobs of a submission: `fetch`, `history`, then `sandbox` and `repro` when the cohort is
//! run in the sandbox, then `draft` when it is drafted. The screen stage (every candidate-written
//! text screened) runs at the end of the last job before the draft, so a machine that only
//! drafts finds it done.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{CohortCtx, Pipeline};
use crate::cohort::{Cohort, CohortLimits, SubmissionSpec};
use crate::git::{self, RepoSource};
use crate::outcome::{Failure, OutcomeKind};
use crate::results::{summarize_with_details, GradeSummary, SubmissionDetail};
use crate::rubric::Rubric;
use crate::store::queue::{Enqueued, NewSubmission};
use crate::store::{JobEnd, Lease, Queue, Stage, Store, StoreError};
use crate::submission::SubmissionStatus;

/// The queue job a pipeline clone runs.
#[derive(Clone)]
pub(super) struct JobCtx {
    pub(super) lease: Lease,
    /// The stages of the job's cohort ([`job_stages`]): later jobs may run them on another
    /// machine.
    stages: Vec<Stage>,
    store: Arc<dyn Store>,
}

impl JobCtx {
    pub(super) fn queue(&self) -> &dyn Queue {
        self.store.queue().expect("a job runs on a store with a queue")
    }

    /// The last stage the job runs: its completion ends the job.
    pub(super) fn last(&self) -> Stage {
        last_stage(self.lease.stage, &self.stages)
    }

    /// Whether the job's cohort runs `stage` (in this job or another, perhaps elsewhere).
    pub(super) fn cohort_runs(&self, stage: Stage) -> bool {
        self.stages.contains(&stage)
    }
}

/// A name for a queue worker of this process: `host:pid:XXXX`, four random hex digits after
/// the process's id (two workers in one process, or one pid reused, have different names).
pub fn worker_name() -> String {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("the system's random source");
    format!("{}:{}", super::worker_id(), hex::encode(b))
}

/// How long a job that assay's environment failed on attempt `attempt` waits before it is
/// claimed again: a second after the first attempt, doubling, at most about a minute.
pub(super) fn backoff_ms(attempt: i64) -> i64 {
    1000 << (attempt - 1).clamp(0, 6)
}

/// The stages of a cohort's jobs, in order: with the sandbox or not, drafted or not.
pub fn job_stages(sandbox: bool, drafts: bool) -> Vec<Stage> {
    let mut stages = vec![Stage::Fetch, Stage::History];
    if sandbox {
        stages.extend([Stage::Sandbox, Stage::Repro]);
    }
    if drafts {
        stages.push(Stage::Draft);
    }
    stages
}

/// The last pipeline stage a job of stage `stage` runs, in a cohort whose jobs are `stages`:
/// the last job before the draft ends with the screen stage.
fn last_stage(stage: Stage, stages: &[Stage]) -> Stage {
    let before_draft = stages.iter().rev().find(|s| **s != Stage::Draft).copied();
    if Some(stage) == before_draft {
        Stage::Screen
    } else {
        stage
    }
}

/// What a worker does, besides the stages it runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The stages whose jobs it claims.
    pub stages: Vec<Stage>,
    /// Stop once no job of its stages is queued or running (else: until cancelled).
    pub until_idle: bool,
    /// How long a claim holds a job without a heartbeat.
    pub lease: Duration,
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// How often the worker runs the rescuer (expired leases back to the queue).
    pub rescue_every: Duration,
    /// Jobs at a time.
    pub jobs: usize,
    /// How long the worker waits for a database that fails every call before it gives up.
    pub patience: Duration,
    /// Only this cohort's jobs (`assay grade`'s own workers); else every cohort's.
    pub cohort: Option<i64>,
}

impl WorkerOptions {
    /// Every stage, leases of a minute, polls every second, the rescuer every two: a dead
    /// worker's job is back in the queue at most two seconds after its lease ran out.
    pub fn new(stages: Vec<Stage>, jobs: usize) -> WorkerOptions {
        WorkerOptions {
            stages,
            until_idle: false,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            rescue_every: Duration::from_secs(2),
            jobs: jobs.max(1),
            patience: Duration::from_secs(300),
            cohort: None,
        }
    }
}

/// What a worker did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WorkSummary {
    /// Jobs it claimed.
    pub claimed: u64,
    /// Jobs whose lease it lost (another worker took them over).
    pub lost: u64,
    /// Expired leases its rescuer returned to the queue (or ended dead).
    pub rescued: u64,
    /// Jobs cut short by the database's trouble (or a task that failed): their leases run out
    /// and another claim runs them again.
    pub cut_short: u64,
}

impl WorkSummary {
    /// Counts a job's task that ended: its lease lost, or not, or the job cut short by the
    /// database's trouble (its lease runs out and the rescuer queues it again; the worker goes
    /// on).
    fn ended(&mut self, joined: Result<Result<bool, StoreError>, tokio::task::JoinError>) {
        match joined {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => self.lost += 1,
            Ok(Err(e)) => {
                tracing::warn!("a job was cut short: {e}");
                self.cut_short += 1;
            }
            Err(e) => {
                tracing::error!("a job's task failed: {e}");
                self.cut_short += 1;
            }
        }
    }
}

/// What a worker's loop carries from one turn to the next.
struct LoopState {
    host: String,
    last_seen: Option<tokio::time::Instant>,
    last_rescue: Option<tokio::time::Instant>,
    summary: WorkSummary,
}

/// How often a worker records that it is alive (`workers.last_seen_ms`).
const SEEN_EVERY: Duration = Duration::from_secs(10);

/// What one turn of a worker's loop found.
enum Step {
    /// A job to run.
    Claimed(Lease),
    /// Nothing to claim now.
    Idle,
    /// Nothing left anywhere (`until_idle`).
    Finished,
}

/// Waits for the jobs in flight to end (cancelled ones bring their containers down first).
async fn break_with(tasks: &mut JoinSet<Result<bool, StoreError>>, summary: &mut WorkSummary) {
    while let Some(done) = tasks.join_next().await {
        summary.ended(done);
    }
}

impl Pipeline {
    /// The jobs' stages for this pipeline: the sandbox's when it has one, the draft when it drafts.
    pub fn job_stages(&self) -> Vec<Stage> {
        job_stages(self.sandbox.is_some(), self.drafter.is_some())
    }

    /// Records `cohort`, its submissions and their jobs of `stages` in the store's queue, in one
    /// transaction. Each submission's repository is stored as its credential-free URL, or its
    /// local path made absolute: what a worker on another machine fetches (credentials written in
    /// the cohort file stay there; such a worker authenticates with its own).
    pub async fn enqueue(&self, cohort: &Cohort, stages: &[Stage]) -> Result<Enqueued, StoreError> {
        let queue = self
            .store
            .queue()
            .ok_or_else(|| StoreError::Queue("a store without a work queue".into()))?;
        let submissions: Vec<NewSubmission> = cohort
            .submissions
            .iter()
            .map(|spec| NewSubmission {
                candidate: spec.candidate.clone(),
                anon_id: git::history::anon_id(&cohort.name, &spec.candidate),
                repo: match RepoSource::parse(&spec.repo, &spec.base_dir, self.policy()) {
                    Ok(RepoSource::Local(p)) => std::fs::canonicalize(&p).unwrap_or(p).display().to_string(),
                    Ok(src) => src.display(),
                    Err(_) => git::redact(&spec.repo),
                },
                git_ref: spec.git_ref.clone(),
            })
            .collect();
        let spec = cohort_spec(cohort, stages);
        let e = queue
            .enqueue(
                &cohort.name,
                &spec,
                &submissions,
                stages,
                self.settings.retries as i64 + 1,
            )
            .await?;
        self.store
            .event(
                Some(e.cohort_id),
                None,
                "enqueued",
                &json!({ "submissions": e.submissions.len(), "queued": e.queued, "stages": stages }),
            )
            .await?;
        Ok(e)
    }

    /// Grades `cohort` through the store's queue, in this process: enqueues its jobs (a
    /// submission whose stages are done already is skipped by their keys), works them with a
    /// worker for the fetch, history and sandbox stages (`jobs` at a time) and one for the
    /// drafts (the model drafts one at a time), both only this cohort's jobs, until none is
    /// queued or running — workers on other machines may take some of them meanwhile — and
    /// reads the results back. Jobs a dead earlier run on this host held are taken back at once.
    pub(super) async fn run_queued(
        self: &Arc<Self>,
        cohort: &Cohort,
    ) -> Result<(GradeSummary, Vec<SubmissionDetail>), StoreError> {
        let reaped = self.store.reap_running().await?;
        let stages = self.job_stages();
        let e = self.enqueue(cohort, &stages).await?;
        if reaped > 0 {
            self.store
                .event(
                    Some(e.cohort_id),
                    None,
                    "reaped_abandoned_runs",
                    &json!({ "runs": reaped }),
                )
                .await?;
        }
        let (draft_stages, other_stages): (Vec<Stage>, Vec<Stage>) = stages.iter().partition(|s| **s == Stage::Draft);
        let name = worker_name();
        self.store
            .event(
                Some(e.cohort_id),
                None,
                "grade_started",
                &json!({ "worker": name, "submissions": cohort.submissions.len(), "queue": true }),
            )
            .await?;
        let specs: HashMap<(String, String), SubmissionSpec> = cohort
            .submissions
            .iter()
            .map(|s| ((cohort.name.clone(), s.candidate.clone()), s.clone()))
            .collect();
        let specs = Arc::new(specs);
        let mut others = WorkerOptions::new(other_stages, self.settings.jobs);
        others.until_idle = true;
        others.cohort = Some(e.cohort_id);
        others.poll = Duration::from_millis(250);
        let drafts = (!draft_stages.is_empty()).then(|| WorkerOptions {
            stages: draft_stages,
            jobs: 1,
            ..others.clone()
        });
        self.progress.start(cohort.submissions.len());
        // One worker failing (its database gone for good) stops the other: the drafts would
        // wait forever for jobs nobody runs. Ctrl-C (the parent token) stops both.
        let both = self.cancel.child_token();
        let this = Arc::new(Pipeline {
            cancel: both.clone(),
            ..(**self).clone()
        });
        let others_specs = Arc::clone(&specs);
        let on_error = |r: Result<WorkSummary, StoreError>| {
            if r.is_err() {
                both.cancel();
            }
            r
        };
        let (ran, drafted) = tokio::join!(
            async { on_error(this.work(&name, &others, others_specs).await) },
            async {
                match &drafts {
                    Some(opts) => on_error(this.work(&format!("{name}:draft"), opts, specs).await).map(Some),
                    None => Ok(None),
                }
            }
        );
        self.progress.end();
        self.store
            .event(
                Some(e.cohort_id),
                None,
                "grade_finished",
                &json!({ "cancelled": self.cancel.is_cancelled() }),
            )
            .await?;
        ran?;
        drafted?;
        let (mut summary, details) = summarize_with_details(
            self.store.as_ref(),
            &cohort.name,
            e.cohort_id,
            &cohort.rubric,
            cohort.top as usize,
        )
        .await?;
        summary.cancelled = self.cancel.is_cancelled();
        Ok((summary, details))
    }

    /// Works the queue: claims jobs of `opts.stages`, `opts.jobs` at a time, until cancelled
    /// (or, with `until_idle`, until nothing is queued or running). `specs` holds repositories as
    /// a cohort file gives them (credentials included) by (cohort, candidate), for the process
    /// that read that file; other jobs fetch what the queue stores.
    ///
    /// A database out of reach (a restart, a lost connection) is waited for with backoff, up to
    /// `opts.patience` without one success; the jobs in flight meanwhile keep their leases as
    /// long as their heartbeats get through, and are taken back by the rescuer once they expire.
    pub async fn work(
        self: &Arc<Self>,
        worker: &str,
        opts: &WorkerOptions,
        specs: Arc<HashMap<(String, String), SubmissionSpec>>,
    ) -> Result<WorkSummary, StoreError> {
        let queue = self
            .store
            .queue()
            .ok_or_else(|| StoreError::Queue("a store without a work queue".into()))?;
        // A job of a stage this worker cannot run would skip it and end the chain early.
        let sandboxed = opts.stages.iter().any(|s| matches!(s, Stage::Sandbox | Stage::Repro));
        if sandboxed && self.sandbox.is_none() {
            return Err(StoreError::Queue("sandbox and repro jobs need a sandbox".into()));
        }
        if opts.stages.contains(&Stage::Draft) && self.drafter.is_none() {
            return Err(StoreError::Queue("draft jobs need a model".into()));
        }
        let mut state = LoopState {
            host: crate::host::hostname(),
            last_seen: None,
            last_rescue: None,
            summary: WorkSummary::default(),
        };
        let cohorts = CohortCache::default();
        // Cancelled with the pipeline, or when the worker gives up: its jobs stop (containers
        // removed) and go back to the queue.
        let stop = self.cancel.child_token();
        let mut tasks: JoinSet<Result<bool, StoreError>> = JoinSet::new();
        // Since when the database has failed every call, and how many times in a row.
        let mut trouble: Option<(tokio::time::Instant, u32)> = None;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            while let Some(done) = tasks.try_join_next() {
                state.summary.ended(done);
            }
            let step = self.step(queue, worker, opts, &mut state, tasks.len()).await;
            let step = match step {
                Ok(step) => {
                    trouble = None;
                    step
                }
                Err(e) if e.is_transient() => {
                    let (since, n) = trouble.get_or_insert((tokio::time::Instant::now(), 0));
                    *n += 1;
                    if since.elapsed() >= opts.patience {
                        tracing::error!("the database has failed for {} s: giving up", since.elapsed().as_secs());
                        stop.cancel();
                        break_with(&mut tasks, &mut state.summary).await;
                        return Err(e);
                    }
                    let wait = Duration::from_millis(250u64 << (*n).min(6)).min(Duration::from_secs(10));
                    tracing::warn!("the database failed ({e}): trying again in {} ms", wait.as_millis());
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.cancel.cancelled() => {}
                    }
                    continue;
                }
                Err(e) => {
                    stop.cancel();
                    break_with(&mut tasks, &mut state.summary).await;
                    return Err(e);
                }
            };
            match step {
                Step::Claimed(lease) => {
                    state.summary.claimed += 1;
                    let (this, specs, opts, cohorts, stop) = (
                        Arc::clone(self),
                        Arc::clone(&specs),
                        opts.clone(),
                        cohorts.clone(),
                        stop.clone(),
                    );
                    tasks.spawn(async move { this.run_job(lease, &opts, &specs, &cohorts, &stop).await });
                }
                Step::Idle => {
                    tokio::select! {
                        _ = tokio::time::sleep(opts.poll) => {}
                        Some(done) = tasks.join_next(), if !tasks.is_empty() => state.summary.ended(done),
                        _ = self.cancel.cancelled() => {}
                    }
                }
                Step::Finished => break,
            }
        }
        break_with(&mut tasks, &mut state.summary).await;
        Ok(state.summary)
    }

    /// One turn of a worker's loop: the rescuer's pass when it is due, then a claim when the
    /// worker has room for a job, else whether it is finished (`until_idle` and nothing left).
    async fn step(
        &self,
        queue: &dyn Queue,
        worker: &str,
        opts: &WorkerOptions,
        state: &mut LoopState,
        in_flight: usize,
    ) -> Result<Step, StoreError> {
        // `assay status` lists the workers seen in the last ten minutes: a write every ten
        // seconds says enough, and many workers' rescue passes add no write each.
        if state.last_seen.is_none_or(|t| t.elapsed() >= SEEN_EVERY) {
            queue.worker_seen(worker, &state.host, &opts.stages).await?;
            state.last_seen = Some(tokio::time::Instant::now());
        }
        if state.last_rescue.is_none_or(|t| t.elapsed() >= opts.rescue_every) {
            self.expire_dead_holders(queue).await?;
            // No backoff: the job did not fail, its worker stopped (a job that kills every worker
            // that runs it is bounded by its attempts).
            let rescued = queue.rescue(0).await?;
            for r in &rescued {
                tracing::warn!(
                    job = r.job_id,
                    stage = r.stage.as_str(),
                    "lease expired: job {}",
                    r.status.as_str()
                );
            }
            state.summary.rescued += rescued.len() as u64;
            self.remove_lost_claims(queue).await?;
            state.last_rescue = Some(tokio::time::Instant::now());
        }
        if in_flight < opts.jobs {
            if let Some(lease) = queue
                .claim(worker, &opts.stages, opts.lease.as_millis() as i64, opts.cohort)
                .await?
            {
                return Ok(Step::Claimed(lease));
            }
        }
        if opts.until_idle && in_flight == 0 && queue.pending(opts.cohort, &opts.stages).await? == 0 {
            return Ok(Step::Finished);
        }
        Ok(Step::Idle)
    }

    /// Ends the leases of workers known to be dead (they ran on this host and their process is
    /// gone): a worker or `assay grade` started again after a crash takes their jobs back now,
    /// not once the leases run out. A worker elsewhere is left to its lease.
    async fn expire_dead_holders(&self, queue: &dyn Queue) -> Result<(), StoreError> {
        for holder in queue.holders().await? {
            if crate::host::gone(&holder) {
                let n = queue.expire_leases(&holder).await?;
                tracing::warn!(
                    worker = holder,
                    jobs = n,
                    "the worker holding these jobs is gone: leases ended"
                );
            }
        }
        Ok(())
    }

    /// Removes the containers, volumes and networks of this queue's claims that are no longer
    /// current: what workers that died (on this host or another using the same engine) left
    /// running. Claims of other databases' queues on the same engine are left alone.
    async fn remove_lost_claims(&self, queue: &dyn Queue) -> Result<(), StoreError> {
        let Some(sandbox) = &self.sandbox else {
            return Ok(());
        };
        let claims = match sandbox.claims().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot list the sandbox's claims: {e}");
                return Ok(());
            }
        };
        for c in claims {
            if !queue.claim_stale(c.job, &c.token).await? {
                continue;
            }
            match sandbox.remove_claim(&c).await {
                Ok(n) => tracing::info!(job = c.job, containers = n, "removed what a lost claim left behind"),
                Err(e) => tracing::warn!(job = c.job, "cannot remove what a lost claim left behind: {e}"),
            }
        }
        Ok(())
    }

    /// Runs one claimed job to its end, its lease renewed meanwhile; false when the lease was
    /// lost on the way. A job that panics ends `failed` with its submission `internal_error`
    /// (assay's bug, never the candidate's); one whose stored inputs do not read is tried again
    /// after backoff and ends `dead` once its attempts ran out — a poison job never loops.
    async fn run_job(
        self: Arc<Self>,
        lease: Lease,
        opts: &WorkerOptions,
        specs: &HashMap<(String, String), SubmissionSpec>,
        cohorts: &CohortCache,
        stop: &CancellationToken,
    ) -> Result<bool, StoreError> {
        let queue = self.store.queue().expect("the worker checked the queue");
        let cancel = stop.child_token();
        // The heartbeat: renews the lease while the job runs; a renewal refused means another
        // worker holds the job now, and this one stops.
        let beat = {
            let (store, lease, cancel) = (Arc::clone(&self.store), lease.clone(), cancel.clone());
            let (every, lease_ms) = (opts.lease / 3, opts.lease.as_millis() as i64);
            tokio::spawn(async move {
                let queue = store.queue().expect("the worker checked the queue");
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = cancel.cancelled() => return,
                    }
                    match queue.heartbeat(&lease, lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = lease.job_id, "lease lost: another worker holds the job");
                            cancel.cancel();
                            return;
                        }
                        // The database is unreachable for now: try again at the next beat (the
                        // lease outlasts two missed ones).
                        Err(e) => tracing::warn!(job = lease.job_id, "heartbeat failed: {e}"),
                    }
                }
            })
        };
        let body = AssertUnwindSafe(self.job_body(&lease, specs, cohorts, stop, &cancel))
            .catch_unwind()
            .await;
        beat.abort();
        match body {
            Ok(Err(e)) if !e.is_transient() => {
                let end = JobEnd::Retry {
                    error: e.to_string(),
                    backoff_ms: backoff_ms(lease.attempt),
                };
                // When this write fails too, the lease runs out and the rescuer counts the attempt.
                if let Err(e2) = queue.finish_job(&lease, &end, None).await {
                    tracing::warn!(job = lease.job_id, "cannot end the job: {e2}");
                }
                Err(e)
            }
            Ok(r) => r,
            Err(payload) => {
                let f = super::stage::panicked(payload);
                tracing::error!(job = lease.job_id, "{}", f.message);
                if queue.token_current(lease.job_id, &lease.token).await? {
                    self.store
                        .set_submission(lease.submission_id, SubmissionStatus::Failed, Some(f.kind), None)
                        .await?;
                    self.store
                        .event(
                            Some(lease.cohort_id),
                            Some(lease.submission_id),
                            "submission_finished",
                            &json!({ "status": "failed", "outcome": f.kind, "error": f.message }),
                        )
                        .await?;
                }
                queue.finish_job(&lease, &JobEnd::Failed(f.message), None).await
            }
        }
    }

    /// A job's work: its submission's stages up to the job's last, on a pipeline clone carrying
    /// the lease and `cancel` (the heartbeat's, under the worker's `stop`).
    async fn job_body(
        &self,
        lease: &Lease,
        specs: &HashMap<(String, String), SubmissionSpec>,
        cohorts: &CohortCache,
        stop: &CancellationToken,
        cancel: &CancellationToken,
    ) -> Result<bool, StoreError> {
        let queue = self.store.queue().expect("the worker checked the queue");
        let Some((cohort, rec)) = queue.job_records(lease).await? else {
            let end = JobEnd::Failed("its cohort or submission was deleted".into());
            return queue.finish_job(lease, &end, None).await;
        };
        let stages: Vec<Stage> = cohort
            .spec
            .get("stages")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| vec![lease.stage]);
        let ctx = match cohorts.get(&cohort, |spec| self.cohort_ctx(&cohort.name, cohort.id, spec)) {
            Ok(ctx) => ctx,
            Err(why) => {
                let end = JobEnd::Failed(format!("cohort {}: {why}", cohort.name));
                return queue.finish_job(lease, &end, None).await;
            }
        };
        let spec = specs
            .get(&(cohort.name.clone(), rec.candidate.clone()))
            .cloned()
            .unwrap_or_else(|| SubmissionSpec {
                candidate: rec.candidate.clone(),
                repo: rec.repo.clone(),
                git_ref: rec.git_ref.clone(),
                base_dir: std::path::PathBuf::from("/"),
            });
        let job = Pipeline {
            job: Some(JobCtx {
                lease: lease.clone(),
                stages,
                store: Arc::clone(&self.store),
            }),
            cancel: cancel.clone(),
            ..self.clone()
        };
        let failure = job.process(&ctx, &spec, rec, None).await?;
        if !queue.token_current(lease.job_id, &lease.token).await? {
            // Ended by its last stage (or a failure) already, or taken over.
            return Ok(!cancel.is_cancelled() || stop.is_cancelled());
        }
        // Stages skipped as done earlier end the job here; a job this worker's own stop
        // interrupted goes back to the queue, its attempt not counted.
        let end = match failure {
            None => JobEnd::Done,
            Some(f) if f.kind == OutcomeKind::Interrupted && stop.is_cancelled() => {
                JobEnd::Release(format!("released unfinished: worker stopping ({})", f.message))
            }
            Some(f) if f.kind.is_retryable() => JobEnd::Retry {
                error: f.message,
                backoff_ms: backoff_ms(lease.attempt),
            },
            Some(f) => JobEnd::Failed(f.message),
        };
        queue.finish_job(lease, &end, None).await
    }

    /// The cohort a job belongs to, as its enqueued spec describes it.
    fn cohort_ctx(&self, name: &str, id: i64, spec: &serde_json::Value) -> Result<CohortCtx, String> {
        let rubric: Rubric = serde_json::from_value(spec.get("rubric_def").cloned().unwrap_or_default())
            .map_err(|e| format!("its stored rubric does not read: {e}"))?;
        let limits: CohortLimits = serde_json::from_value(spec.get("limits").cloned().unwrap_or(json!({})))
            .map_err(|e| format!("its stored limits do not read: {e}"))?;
        let deadline = match spec.get("deadline").and_then(|d| d.as_str()) {
            None => None,
            Some(d) => Some(
                chrono::DateTime::parse_from_rfc3339(d)
                    .map_err(|e| format!("its stored deadline does not read: {e}"))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        Ok(CohortCtx {
            id,
            name: name.to_string(),
            deadline,
            runner: spec
                .get("runner")
                .and_then(|r| r.as_str())
                .unwrap_or("auto")
                .to_string(),
            hidden_tests: spec.get("hidden_tests").and_then(|h| h.as_str()).map(Into::into),
            limits: self.limits_for(&limits),
            rubric_hash: rubric_hash(&rubric),
            rubric: Arc::new(rubric),
        })
    }
}

/// The cohorts a worker's jobs belong to, each built once from its stored spec (and again when
/// the spec changed: the cohort was enqueued again with another rubric, say).
#[derive(Clone, Default)]
struct CohortCache(Arc<std::sync::Mutex<HashMap<i64, CachedCohort>>>);

/// A cohort as a worker built it, with the stored spec it was built from.
type CachedCohort = (serde_json::Value, Arc<CohortCtx>);

impl CohortCache {
    fn get(
        &self,
        cohort: &crate::store::CohortRecord,
        build: impl FnOnce(&serde_json::Value) -> Result<CohortCtx, String>,
    ) -> Result<Arc<CohortCtx>, String> {
        let mut map = self.0.lock().expect("cohort cache lock");
        if let Some((spec, ctx)) = map.get(&cohort.id) {
            if *spec == cohort.spec {
                return Ok(Arc::clone(ctx));
            }
        }
        let ctx = Arc::new(build(&cohort.spec)?);
        map.insert(cohort.id, (cohort.spec.clone(), Arc::clone(&ctx)));
        Ok(ctx)
    }
}

/// What the store keeps of a cohort: its name, rubric (path and definition), deadline, runner,
/// hidden tests, limits, how many go to review and its jobs' stages; what a worker rebuilds the
/// cohort from.
pub(super) fn cohort_spec(cohort: &Cohort, stages: &[Stage]) -> serde_json::Value {
    json!({
        "name": cohort.name,
        "rubric": cohort.rubric_path,
        "rubric_def": cohort.rubric,
        "deadline": cohort.deadline,
        "runner": cohort.runner,
        "top": cohort.top,
        // Absolute: a worker elsewhere runs from another directory.
        "hidden_tests": cohort.hidden_tests.as_ref().map(|h| std::fs::canonicalize(h).unwrap_or_else(|_| h.clone())),
        "limits": cohort.limits,
        "stages": stages,
    })
}

/// sha256 of the rubric as parsed (part of the draft stage's key).
pub(super) fn rubric_hash(rubric: &Rubric) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(rubric).expect("rubric serialises"));
    hex::encode(h.finalize())
}

/// Whether `f` is a stage ended because its job's lease was lost (nothing of it is recorded).
pub(super) fn is_lease_lost(f: &Failure) -> bool {
    *f == super::stage::lease_lost()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::pipeline::progress::Lines;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn a_worker_refuses_stages_it_cannot_run_and_stores_without_a_queue() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let sqlite = SqliteStore::open(&format!("sqlite://{}", dir.path().join("w.db").display()))
            .await
            .unwrap();
        let p = Arc::new(Pipeline::new(
            Arc::new(sqlite),
            settings.clone(),
            cancel.clone(),
            Box::new(Lines),
        ));
        let none = Arc::new(HashMap::new());
        for (stages, why) in [
            (vec![Stage::Sandbox], "sandbox and repro jobs need a sandbox"),
            (vec![Stage::Fetch, Stage::Draft], "draft jobs need a model"),
        ] {
            let err = p
                .work("w", &WorkerOptions::new(stages, 1), Arc::clone(&none))
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), format!("work queue: {why}"));
        }
        let fake = crate::fakes::MemoryStore::default();
        let p = Arc::new(Pipeline::new(Arc::new(fake), settings, cancel, Box::new(Lines)));
        let err = p
            .work("w", &WorkerOptions::new(vec![Stage::Fetch], 1), none)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "work queue: a store without a work queue");
    }

    #[test]
    fn the_job_before_the_draft_ends_with_the_screen() {
        let all = job_stages(true, true);
        assert_eq!(
            all,
            [Stage::Fetch, Stage::History, Stage::Sandbox, Stage::Repro, Stage::Draft]
        );
        assert_eq!(last_stage(Stage::Repro, &all), Stage::Screen);
        assert_eq!(last_stage(Stage::History, &all), Stage::History);
        assert_eq!(last_stage(Stage::Draft, &all), Stage::Draft);
        let plain = job_stages(false, false);
        assert_eq!(plain, [Stage::Fetch, Stage::History]);
        assert_eq!(last_stage(Stage::History, &plain), Stage::Screen);
        assert_eq!(last_stage(Stage::Fetch, &plain), Stage::Fetch);
    }
}
