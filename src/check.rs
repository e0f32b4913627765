//! `assay check`: the sandbox stage on one repository, as a candidate runs it
//! before submitting. The same job code the grading pipeline uses
//! ([`crate::sandbox::job`]); this module only assembles the report.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::outcome::OutcomeKind;
use crate::runner::{self, TestCase};
use crate::sandbox::job::{self, JobRequest, SandboxReport};
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
}

/// One finding, with how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `R1`, `R2`, …
    pub id: String,
    /// Stable kind.
    pub kind: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
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
    /// Findings.
    pub findings: Vec<Finding>,
    /// Tests whose result changed between the two runs.
    pub flaky: Vec<String>,
    /// The full sandbox report (install and test output, capped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxReport>,
}

/// Runs the sandbox job on an exported tree and builds the report.
pub async fn check_tree(
    sandbox: &dyn Sandbox,
    tree: &Path,
    forced_runner: Option<&str>,
    limits: SandboxLimits,
    job_id: &str,
) -> Result<CheckReport, CheckError> {
    let spec = match forced_runner {
        Some(name) => runner::by_name(name).map_err(CheckError::UnknownRunner)?,
        None => match runner::detect(tree) {
            Some(r) => r,
            None => {
                return Ok(CheckReport {
                    outcome: OutcomeKind::NoRunner,
                    runner: None,
                    tests: TestsSummary::default(),
                    findings: vec![Finding {
                        id: "R1".into(),
                        kind: "no_runner".into(),
                        severity: "error".into(),
                        message: "no pyproject.toml, requirements*.txt, setup.py, Cargo.toml, package.json or go.mod at the top level".into(),
                        fix: "declare the project's dependencies at the repository root, or pass --runner NAME".into(),
                    }],
                    flaky: Vec::new(),
                    sandbox: None,
                })
            }
        },
    };
    let report = job::run_job(
        sandbox,
        &JobRequest {
            job: job_id.to_string(),
            source: tree,
            runner: &spec,
            limits,
            test_runs: 2,
        },
    )
    .await?;
    Ok(build(tree, report))
}

fn build(tree: &Path, s: SandboxReport) -> CheckReport {
    let mut findings: Vec<(String, &str, String, String)> = Vec::new();
    let first = s.runs.first();
    match s.outcome {
        OutcomeKind::InstallFailed => findings.push((
            "install_failed".into(),
            "error",
            format!(
                "installing dependencies failed: {}",
                last_lines(&s.install.stderr, &s.install.stdout)
            ),
            "run the install from a clean checkout and declare every dependency".into(),
        )),
        OutcomeKind::NoTests => findings.push((
            "no_tests".into(),
            "error",
            "no tests ran".into(),
            "add tests that the runner's default command finds (e.g. tests/test_*.py for pytest)".into(),
        )),
        OutcomeKind::TestsFailed => {
            let failing: Vec<&str> = first
                .map(|r| {
                    r.report
                        .cases
                        .iter()
                        .filter(|c| c.status != runner::CaseStatus::Passed && c.status != runner::CaseStatus::Skipped)
                        .map(|c| c.id.as_str())
                        .take(5)
                        .collect()
                })
                .unwrap_or_default();
            findings.push((
                "tests_failed".into(),
                "error",
                format!(
                    "tests fail in a clean environment: {}",
                    if failing.is_empty() {
                        "see the output".into()
                    } else {
                        failing.join(", ")
                    }
                ),
                "run the tests from a fresh clone with only the declared dependencies".into(),
            ))
        }
        OutcomeKind::Timeout => findings.push((
            "timeout".into(),
            "error",
            "a phase ran past its time limit and was stopped".into(),
            "make the tests finish within the limit; look for endless loops or network waits".into(),
        )),
        OutcomeKind::Oom => findings.push((
            "oom".into(),
            "error",
            "a phase ran out of memory".into(),
            "reduce the memory the tests need, e.g. smaller fixtures".into(),
        )),
        OutcomeKind::OutputTruncated => findings.push((
            "output_truncated".into(),
            "warning",
            "the tests printed more than the output cap".into(),
            "print less from tests".into(),
        )),
        _ => {}
    }
    if !s.flaky.is_empty() {
        findings.push((
            "flaky_tests".into(),
            "warning",
            format!(
                "{} test(s) gave different results in two clean runs: {}",
                s.flaky.len(),
                s.flaky.join(", ")
            ),
            "remove dependence on time, randomness, ordering or leftover state".into(),
        ));
    }
    if s.runner == "node" && !tree.join("package-lock.json").is_file() && !tree.join("npm-shrinkwrap.json").is_file() {
        findings.push((
            "no_lockfile".into(),
            "warning",
            "package.json without package-lock.json: npm install resolves versions anew each time".into(),
            "commit package-lock.json".into(),
        ));
    }
    let tests = first
        .map(|r| TestsSummary {
            passed: r.report.passed,
            failed: r.report.failed,
            skipped: r.report.skipped,
            errors: r.report.errors,
            cases: r.report.cases.clone(),
        })
        .unwrap_or_default();
    CheckReport {
        outcome: s.outcome,
        runner: Some(s.runner.clone()),
        tests,
        findings: findings
            .into_iter()
            .enumerate()
            .map(|(i, (kind, severity, message, fix))| Finding {
                id: format!("R{}", i + 1),
                kind,
                severity: severity.into(),
                message,
                fix,
            })
            .collect(),
        flaky: s.flaky.clone(),
        sandbox: Some(s),
    }
}

fn last_lines(a: &str, b: &str) -> String {
    let text = if a.trim().is_empty() { b } else { a };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..]
        .join(" / ")
        .chars()
        .take(400)
        .collect()
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
