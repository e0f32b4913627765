//! The deterministic facts a submission's scores rest on: a summary of its stage reports (history
//! signals, test results, reproducibility badge, README length), and what each evidence source
//! supports on a 1–4 scale. Drafts are capped by these estimates ([`crate::draft::band_max`]) and
//! triage computes a criterion's automated score from them ([`crate::rubric::Criterion::automated_score`]).

use crate::sandbox::diagnose::InstallCause;
use serde::{Deserialize, Serialize};

use crate::git::HistoryReport;
use crate::outcome::OutcomeKind;
use crate::repro::{BadgeLevel, ReproReport};
use crate::sandbox::job::SandboxReport;
use crate::sandbox::steps::StepStatus;

/// The evidence sources a rubric can name (`evidence`, `automated.from`).
pub const SOURCES: [&str; 4] = ["history", "tests", "repro", "readme"];

/// The deterministic facts the bands come from (a summary of the stage reports).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// History signal kinds and the commit count, when the history is known.
    pub history: Option<HistoryFacts>,
    /// The sandbox's results, when tests ran.
    pub tests: Option<TestFacts>,
    /// The reproducibility badge.
    pub badge: Option<BadgeLevel>,
    /// Lines of README, `Some(0)` when there is none; `None` when unknown.
    pub readme_lines: Option<usize>,
    /// Files of the graded tree assay's copy lacks (a partial copy; set from the export):
    /// tests that did not pass say nothing about the candidate then.
    #[serde(default)]
    pub copy_missing: usize,
    /// How the README's documented install and test commands went in the sandbox (`None`
    /// without a sandbox stage).
    #[serde(default)]
    pub readme_steps: Option<StepCounts>,
}

/// The README's documented commands by how they went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    pub works: usize,
    pub fails: usize,
    pub cannot_run: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryFacts {
    pub commit_count: u64,
    pub signals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestFacts {
    pub outcome: OutcomeKind,
    pub passed: u64,
    /// Passed + failed + errors.
    pub total: u64,
    /// Test suites that failed to run before any of their tests did (not in the total).
    #[serde(default)]
    pub unrun: u64,
    pub hidden: Option<OutcomeKind>,
    /// Tests that gave different results on the two runs.
    #[serde(default)]
    pub flaky: usize,
    /// Whose fault a failed install was (`None` when it worked or is unknown).
    #[serde(default)]
    pub install_cause: Option<InstallCause>,
    /// Why tests that did not pass are not the candidate's doing (a browser the image lacks,
    /// the test disk limit); `None` when their result is the project's.
    #[serde(default)]
    pub tests_cause: Option<InstallCause>,
}

impl TestFacts {
    /// At least three quarters of the tests that ran passed, in 128-bit arithmetic: the counts
    /// come from the candidate's output and may be anything a u64 holds.
    pub fn most_pass(&self) -> bool {
        u128::from(self.passed) * 4 >= u128::from(self.total) * 3
    }

    /// The install failed for a reason of assay's (its image, its network, a
    /// sandbox limit): the tests say nothing about the candidate.
    pub fn install_not_candidates(&self) -> bool {
        matches!(
            self.install_cause,
            Some(InstallCause::Environment | InstallCause::ResourceLimit)
        )
    }

    /// The install or the tests failed for a reason of assay's: the results say nothing about
    /// the candidate.
    pub fn not_candidates(&self) -> bool {
        self.install_not_candidates()
            || matches!(
                self.tests_cause,
                Some(InstallCause::Environment | InstallCause::ResourceLimit)
            )
    }
}

impl Facts {
    pub fn from_reports(
        history: Option<&HistoryReport>,
        sandbox: Option<&SandboxReport>,
        repro: Option<&ReproReport>,
        readme_lines: Option<usize>,
    ) -> Facts {
        Facts {
            history: history.map(|h| HistoryFacts {
                commit_count: h.commit_count,
                signals: h.signals.iter().map(|s| s.kind.clone()).collect(),
            }),
            tests: sandbox.map(|s| {
                let r = s.runs.first().map(|r| &r.report);
                TestFacts {
                    outcome: s.outcome,
                    passed: r.map_or(0, |r| r.passed),
                    total: r.map_or(0, |r| r.ran()),
                    unrun: r.map_or(0, |r| r.unrun),
                    hidden: s.hidden.as_ref().map(|h| h.outcome),
                    flaky: s.flaky.len(),
                    install_cause: s.install_diagnosis.as_ref().and_then(|d| d.cause),
                    tests_cause: s.tests_diagnosis.as_ref().and_then(|d| d.cause),
                }
            }),
            badge: repro.map(|r| r.badge.level),
            readme_lines,
            copy_missing: 0,
            readme_steps: sandbox.map(|s| {
                let count = |st: StepStatus| s.readme_steps.iter().filter(|x| x.status == st).count();
                StepCounts {
                    works: count(StepStatus::Works),
                    fails: count(StepStatus::Fails),
                    cannot_run: count(StepStatus::CannotRun),
                }
            }),
        }
    }

    /// Why the test results say nothing about the candidate, when they do not: unknown (no
    /// sandbox stage), failed for a reason of assay's environment, a failed sandbox, or a partial
    /// copy whose tests did not pass. `None`: the results are the project's own.
    pub fn tests_unassessed(&self) -> Option<&'static str> {
        match &self.tests {
            None => Some("the tests were not run (no sandbox stage)"),
            Some(t) if t.not_candidates() => {
                Some("the install or the tests failed for a reason of assay's environment: set apart, re-run")
            }
            Some(t)
                if matches!(
                    t.outcome,
                    OutcomeKind::InfraError | OutcomeKind::InternalError | OutcomeKind::Interrupted
                ) =>
            {
                Some("the sandbox failed (infrastructure): re-run")
            }
            Some(t) if self.copy_missing > 0 && t.outcome != OutcomeKind::Passed => {
                Some("assay's copy of the repository is incomplete: tests that did not pass say nothing")
            }
            Some(_) => None,
        }
    }

    /// What the automated evidence supports for one evidence source, on a 1–4 scale; `None` when
    /// the source is unknown for this submission (or tests hit an infrastructure error).
    pub fn estimate(&self, source: &str) -> Option<u32> {
        let f = self;
        match source {
            "history" => f.history.as_ref().map(|h| {
                let has = |k: &str| h.signals.iter().any(|s| s == k);
                if has("single_dump") || has("replayed_burst") || has("backdated_commit") {
                    1
                } else if h.commit_count < 4 {
                    2
                } else {
                    3
                }
            }),
            "tests" => f
                .tests
                .as_ref()
                .filter(|_| f.tests_unassessed().is_none())
                .map(|t| match t.outcome {
                    OutcomeKind::Passed => match t.hidden {
                        Some(h) if h != OutcomeKind::Passed => 3,
                        _ => 4,
                    },
                    OutcomeKind::HiddenFailed => 2,
                    OutcomeKind::TestsFailed if t.total > 0 && t.most_pass() => 3,
                    OutcomeKind::TestsFailed => 2,
                    _ => 1,
                }),
            "repro" => f.badge.map(|b| match b {
                BadgeLevel::Reproduced => 4,
                BadgeLevel::Functional => 3,
                BadgeLevel::Available => 2,
                BadgeLevel::None => 1,
            }),
            "readme" => f.readme_lines.map(|n| match n {
                0 => 1,
                1..=14 => 2,
                _ => 3,
            }),
            _ => None,
        }
    }
}
