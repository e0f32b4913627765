//! `assay check`: the sandbox stage on one repository, as a candidate runs it
//! before submitting. The same job code the grading pipeline uses
//! ([`crate::sandbox::job`]); this module only assembles the report.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::outcome::OutcomeKind;
use crate::runner::{self, TestCase};
use crate::sandbox::diagnose::InstallDiagnosis;
use crate::sandbox::job::{self, JobRequest, SandboxReport};
use crate::sandbox::steps::ReadmeStep;
use crate::sandbox::{Sandbox, SandboxError, SandboxLimits};

/// Counts and cases, as `assay check --json` prints them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestsSummary {
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
    /// Errored.
    pub errors: u64,
    /// Cases of the first run.
    pub cases: Vec<TestCase>,
    /// Test suites that failed to run before any of their tests did (a jest suite that does
    /// not compile); absent when none.
    #[serde(default, skip_serializing_if = "crate::runner::parse::is_zero")]
    pub unrun: u64,
}

impl TestsSummary {
    /// Its counts, as [`crate::runner::parse::describe_counts`] writes them.
    pub fn describe(&self) -> String {
        crate::runner::parse::describe_counts(self.passed, self.failed, self.skipped, self.errors, self.unrun)
    }
}

pub use crate::repro::{Badge, BadgeLevel, Finding};

/// The hidden tests' result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenSummary {
    /// passed, tests_failed, no_tests (a failure), timeout, oom.
    pub outcome: OutcomeKind,
    /// Counts and cases.
    pub tests: TestsSummary,
}

/// The `assay check` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The sandbox outcome kind.
    pub outcome: OutcomeKind,
    /// Runner used, when one was found.
    pub runner: Option<String>,
    /// Test counts of the first run.
    pub tests: TestsSummary,
    /// The reproducibility badge and the reason for its level.
    pub badge: Badge,
    /// Findings (`R1`, `R2`, …), each with how to fix it.
    pub findings: Vec<Finding>,
    /// Tests whose result changed between the two runs.
    pub flaky: Vec<String>,
    /// The hidden tests, apart from the candidate's (only with hidden tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<HiddenSummary>,
    /// Whether the install worked and, when not, whose fault it was
    /// (`None` when no runner applied).
    pub install: Option<InstallDiagnosis>,
    /// The README's documented install and test commands, as they went in the sandbox.
    pub readme_steps: Vec<ReadmeStep>,
    /// The full sandbox report (install and test output, capped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxReport>,
}

/// One check's job: its id (names the volume, labels the containers), the hidden tests to run
/// after the candidate's, and the token that cancels it (Ctrl-C: containers and volume removed).
pub struct CheckRun<'a> {
    pub job: &'a str,
    pub hidden_tests: Option<&'a Path>,
    pub cancel: tokio_util::sync::CancellationToken,
}

/// Runs the sandbox job on an exported tree and builds the report.
pub async fn check_tree(
    sandbox: &dyn Sandbox,
    tree: &Path,
    forced_runner: Option<&str>,
    limits: SandboxLimits,
    export: &crate::git::Exported,
    run: CheckRun<'_>,
) -> Result<CheckReport, CheckError> {
    let spec = match forced_runner {
        Some(name) => Some(runner::by_name(name).map_err(CheckError::UnknownRunner)?),
        None => runner::detect(tree),
    };
    let sandbox_report = match &spec {
        Some(spec) => Some(
            job::run_job(
                sandbox,
                &JobRequest {
                    job: run.job.to_string(),
                    claim: None,
                    source: tree,
                    runner: spec,
                    limits,
                    test_runs: 2,
                    hidden_tests: run.hidden_tests,
                    cancel: run.cancel,
                },
            )
            .await?,
        ),
        None => None,
    };
    let repro = crate::repro::assess(tree, sandbox_report.as_ref(), export);
    let first = sandbox_report.as_ref().and_then(|s| s.runs.first());
    let tests = first
        .map(|r| TestsSummary {
            passed: r.report.passed,
            failed: r.report.failed,
            skipped: r.report.skipped,
            errors: r.report.errors,
            cases: r.report.cases.clone(),
            unrun: r.report.unrun,
        })
        .unwrap_or_default();
    // A partial copy is graded as far as it goes, but its outcome is the copy's.
    let outcome = if export.missing.is_empty() {
        sandbox_report.as_ref().map_or(OutcomeKind::NoRunner, |s| s.outcome)
    } else {
        OutcomeKind::RepoCorrupt
    };
    Ok(CheckReport {
        outcome,
        runner: spec.map(|s| s.name),
        tests,
        badge: repro.badge,
        findings: repro.findings,
        flaky: sandbox_report.as_ref().map(|s| s.flaky.clone()).unwrap_or_default(),
        hidden: sandbox_report
            .as_ref()
            .and_then(|s| s.hidden.as_ref())
            .map(|h| HiddenSummary {
                outcome: h.outcome,
                tests: TestsSummary {
                    passed: h.report.passed,
                    failed: h.report.failed,
                    skipped: h.report.skipped,
                    errors: h.report.errors,
                    cases: h.report.cases.clone(),
                    unrun: h.report.unrun,
                },
            }),
        install: sandbox_report.as_ref().and_then(|s| s.install_diagnosis.clone()),
        readme_steps: sandbox_report
            .as_ref()
            .map(|s| s.readme_steps.clone())
            .unwrap_or_default(),
        sandbox: sandbox_report,
    })
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `--runner` named no runner.
    #[error("{0}")]
    UnknownRunner(String),
    /// The sandbox failed on our side.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}
