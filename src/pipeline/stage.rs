//! The stage runner: one stage of one submission with resume (a done run for the same input key
//! is not run again), retries with backoff for assay's own trouble, cancellation, and panics in
//! blocking work caught as `internal_error`; and the stage keys.

use std::future::Future;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::Pipeline;
use crate::evidence::EvidenceItem;
use crate::outcome::{Failure, OutcomeKind};
use crate::store::{JobEnd, RunStatus, Stage, StageResult, StageRun, StoreError};
use crate::submission::SubmissionRecord;

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

/// What cancellation does to a running stage's body.
#[derive(Clone, Copy)]
pub(super) enum Cancel {
    /// Dropped where it is.
    Drop,
    /// Awaited: it watches the token and brings what it holds to a safe state itself.
    Await,
}

impl Pipeline {
    /// Runs one stage with resume, retries and cancellation. `Ok(Err(_))` is a
    /// recorded stage failure; `Err(_)` means the store itself failed. On cancellation the
    /// body is dropped where it is: for bodies that hold nothing outside the process.
    pub(super) async fn run_stage<F, Fut>(
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
        self.run_stage_as(rec, stage, input_key, Cancel::Drop, body).await
    }

    /// [`run_stage`](Self::run_stage) with what cancellation does to the body: a body that
    /// holds things outside the process (containers, volumes) runs with [`Cancel::Await`]: it
    /// watches the pipeline's token itself and, cancelled, removes them and ends `interrupted`;
    /// it is awaited to its end, never dropped halfway.
    pub(super) async fn run_stage_as<F, Fut>(
        &self,
        rec: &SubmissionRecord,
        stage: Stage,
        input_key: &str,
        cancel: Cancel,
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
                    // A queue job's earlier stages are its earlier jobs' work, not news.
                    if self.job.as_ref().is_none_or(|j| stage >= j.lease.stage) {
                        self.progress.stage(candidate, stage, "done earlier, skipped");
                    }
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
            let run = match &self.job {
                None => self.store.start_run(rec.id, stage, input_key, &self.worker).await?,
                Some(job) => match job
                    .queue()
                    .start_leased_run(&job.lease, stage, input_key, &self.worker)
                    .await?
                {
                    Some(run) => run,
                    None => return Ok(Err(lease_lost())),
                },
            };
            self.progress.stage(
                candidate,
                stage,
                if run.attempt > 1 { "running (again)" } else { "running" },
            );
            let result = match cancel {
                Cancel::Drop => tokio::select! {
                    r = body() => r,
                    _ = self.cancel.cancelled() => Err(Failure::new(OutcomeKind::Interrupted, "cancelled while running")),
                },
                Cancel::Await => body().await,
            };
            match result {
                Ok(ok) => {
                    let done = StageResult {
                        status: RunStatus::Done,
                        outcome: ok.outcome,
                        error: None,
                        output: Some(ok.output),
                        evidence: ok.evidence,
                        commit: ok.commit,
                    };
                    if !self.finish(&run, &done, None).await? {
                        return Ok(Err(lease_lost()));
                    }
                    self.progress.stage(candidate, stage, "done");
                    return Ok(Ok(done.output.unwrap_or(serde_json::Value::Null)));
                }
                Err(f) => {
                    let status = match f.kind {
                        OutcomeKind::Interrupted => RunStatus::Interrupted,
                        _ => RunStatus::Failed,
                    };
                    let ended = StageResult {
                        status,
                        outcome: f.kind,
                        error: Some(f.message.clone()),
                        output: None,
                        evidence: Vec::new(),
                        commit: None,
                    };
                    if let Some(job) = &self.job {
                        // A queue job is retried by the queue (its attempts are counted there, so
                        // another worker may take it); a final failure ends it and the submission's
                        // later jobs.
                        let end = match (status, f.kind.is_retryable()) {
                            (RunStatus::Interrupted, _) => None,
                            (_, true) => Some(JobEnd::Retry {
                                error: f.message.clone(),
                                backoff_ms: super::worker::backoff_ms(job.lease.attempt),
                            }),
                            (_, false) => Some(JobEnd::Failed(f.message.clone())),
                        };
                        if !self.finish(&run, &ended, end.as_ref()).await? {
                            return Ok(Err(lease_lost()));
                        }
                        self.progress.stage(candidate, stage, &format!("failed: {}", f.kind));
                        return Ok(Err(f));
                    }
                    self.store.finish_run(&run, &ended).await?;
                    if status == RunStatus::Interrupted {
                        self.progress.stage(candidate, stage, "interrupted");
                        return Ok(Err(f));
                    }
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
}

impl Pipeline {
    /// Writes how a stage attempt ended. Under a queue job's lease the write checks the lease
    /// (false: another worker holds the job now, and nothing was written); the job's last stage
    /// done, or `end`, ends the job in the same transaction.
    async fn finish(&self, run: &StageRun, result: &StageResult, end: Option<&JobEnd>) -> Result<bool, StoreError> {
        let Some(job) = &self.job else {
            self.store.finish_run(run, result).await?;
            return Ok(true);
        };
        let end = match end {
            Some(end) => Some(end.clone()),
            None if result.status == RunStatus::Done && run.stage == job.last() => Some(JobEnd::Done),
            None => None,
        };
        match end {
            Some(end) => job.queue().finish_job(&job.lease, &end, Some((run, result))).await,
            None => job.queue().finish_leased_run(&job.lease, run, result).await,
        }
    }
}

/// How a stage ends whose queue job another worker took over (its lease expired).
pub(super) fn lease_lost() -> Failure {
    Failure::new(
        OutcomeKind::Interrupted,
        "the job's lease was lost: another worker holds it now",
    )
}

/// A panic's payload as the `internal_error` it is recorded as.
pub(super) fn panicked(payload: Box<dyn std::any::Any + Send>) -> Failure {
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string());
    Failure::new(
        OutcomeKind::InternalError,
        format!("assay panicked: {msg} (please report this)"),
    )
}

/// Runs blocking work off the runtime; a panic becomes `internal_error`.
pub(super) async fn blocking<T, F>(f: F) -> Result<T, Failure>
where
    F: FnOnce() -> Result<T, Failure> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(panicked(e.into_panic())),
        Err(e) => Err(Failure::infra(format!("blocking task failed: {e}"))),
    }
}

/// A stable key for stage inputs.
pub(super) fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())[..32].to_string()
}
