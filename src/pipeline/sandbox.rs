//! The sandbox stage (install and test in the Docker sandbox, twice, plus hidden tests) and the
//! reproducibility stage over its report.

use std::sync::Arc;

use super::fetch::ensure_export;
use super::stage::{blocking, key, Cancel, StageOk};
use super::{Fetched, Pipeline};
use crate::evidence::{self, EvidenceItem};
use crate::outcome::{Failure, OutcomeKind};
use crate::repro;
use crate::results::SandboxOutput;
use crate::runner;
use crate::sandbox::job::{self, JobRequest, SandboxReport};
use crate::sandbox::{Claim, Sandbox, SandboxError};
use crate::store::{Stage, StoreError};

/// The version of what the reproducibility stage concludes from the tree and the README (a test
/// runner named in a sentence is no documented test command); part of its stage key.
const REPRO_EVIDENCE: &str = "prose-runner-args+nested-projects+no-manifest";

/// The version of what the sandbox job measures; part of its stage key.
const SANDBOX_EVIDENCE: &str = "readme-steps-1+unrun-suites";

impl Pipeline {
    /// The sandbox stage: the runner detected (or forced), the job run. Returns what it stored
    /// and its key (the reproducibility stage's key extends it).
    pub(super) async fn sandbox_stage(
        &self,
        f: &Arc<Fetched>,
        sandbox: &Arc<dyn Sandbox>,
    ) -> Result<Result<(SandboxOutput, String), Failure>, StoreError> {
        let (cohort, rec, commit) = (&f.sub.cohort, &f.sub.rec, &f.out.fetched.commit);
        let hidden_key = cohort
            .hidden_tests
            .as_ref()
            .map(|h| h.display().to_string())
            .unwrap_or_default();
        let limits_key = serde_json::to_string(&cohort.limits).expect("limits serialise");
        // SANDBOX_EVIDENCE names what the job measures: results stored by an assay that measured
        // less (before the README's steps ran) are not reused; nor are results of runner specs
        // that have changed since (a detection that now finds tests it did not).
        let sandbox_key = key(&[
            commit,
            &cohort.runner,
            &hidden_key,
            &limits_key,
            SANDBOX_EVIDENCE,
            &runner::fingerprint(),
        ]);
        let slots = &self.container_slots;
        let claim = self.job.as_ref().map(|j| Claim {
            job: j.lease.job_id,
            token: j.lease.token.clone(),
        });
        let claim = &claim;
        let out = self
            .run_stage_as(rec, Stage::Sandbox, &sandbox_key, Cancel::Await, || {
                let (f, sandbox, cancel, claim) =
                    (Arc::clone(f), Arc::clone(sandbox), self.cancel.clone(), claim.clone());
                async move {
                    let _permit = tokio::select! {
                        p = slots.acquire() => p.map_err(|_| Failure::infra("container slots closed"))?,
                        _ = cancel.cancelled() => {
                            return Err(Failure::new(OutcomeKind::Interrupted, "cancelled before the job started"))
                        }
                    };
                    let (cohort, rec, fetched) = (&f.sub.cohort, &f.sub.rec, &f.out.fetched);
                    // The export may have been cleaned since the fetch: it is rebuilt from the
                    // mirror (a finished one is reused).
                    let tree = f.out.export.dir.clone();
                    let rebuild = Arc::clone(&f);
                    blocking(move || ensure_export(&rebuild.out, &rebuild.sub.settings.limits)).await?;
                    let spec = match cohort.runner.as_str() {
                        "auto" => runner::detect(&tree),
                        name => Some(runner::by_name(name).map_err(Failure::infra)?),
                    };
                    let report = match &spec {
                        None => None,
                        Some(spec) => Some(
                            job::run_job(
                                sandbox.as_ref(),
                                &JobRequest {
                                    // A claim's own name: a worker that lost the job may have left its
                                    // volume behind, still in use by its container.
                                    job: match &claim {
                                        None => format!("{}-{}-{}", cohort.id, rec.id, &fetched.commit[..12]),
                                        Some(c) => format!(
                                            "{}-{}-{}-{}",
                                            cohort.id,
                                            rec.id,
                                            &fetched.commit[..12],
                                            &c.token[..8]
                                        ),
                                    },
                                    claim: claim.clone(),
                                    source: &tree,
                                    runner: spec,
                                    limits: cohort.limits.clone(),
                                    test_runs: 2,
                                    hidden_tests: cohort.hidden_tests.as_deref(),
                                    cancel,
                                },
                            )
                            .await
                            .map_err(|e| match e {
                                SandboxError::Cancelled => Failure::new(OutcomeKind::Interrupted, e.to_string()),
                                e => Failure::infra(e.to_string()),
                            })?,
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
        Ok(match out {
            Ok(v) => Ok((crate::results::read_output(rec.id, Stage::Sandbox, v)?, sandbox_key)),
            Err(f) => Err(f),
        })
    }

    /// The reproducibility stage: findings over the tree and the sandbox's report.
    pub(super) async fn repro_stage(
        &self,
        f: &Arc<Fetched>,
        sandbox_key: &str,
        report: Option<SandboxReport>,
    ) -> Result<Result<(), Failure>, StoreError> {
        let repro_key = key(&[sandbox_key, "repro", REPRO_EVIDENCE]);
        let report = Arc::new(report);
        let out = self
            .run_stage(&f.sub.rec, Stage::Repro, &repro_key, || {
                let (f, report) = (Arc::clone(f), Arc::clone(&report));
                async move {
                    blocking(move || {
                        // Cleaned since the sandbox ran (or reused from an earlier run): rebuilt
                        // from the mirror, never assessed as an empty tree.
                        ensure_export(&f.out, &f.sub.settings.limits)?;
                        let r = repro::assess(&f.out.export.dir, report.as_ref().as_ref(), &f.out.export);
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
        Ok(out.map(|_| ()))
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
