//! One submission's sandbox job: install once, run the tests (twice for the
//! reproducibility check, each in a fresh container), and classify what
//! happened into an outcome kind and a test report.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diagnose::{diagnose, InstallCause, InstallDiagnosis};
use super::steps::{self, ReadmeStep};
use super::{Phase, PhaseResult, PhaseSpec, Sandbox, SandboxError, SandboxLimits};
use crate::outcome::OutcomeKind;
use crate::readme::{Readme, Step};
use crate::runner::{self, CaseStatus, RunnerSpec, TestReport};

/// Where test commands write their results, under /work.
pub const RESULTS_DIR: &str = ".assay";

/// What to run.
#[derive(Debug, Clone)]
pub struct JobRequest<'a> {
    /// Job id: names the volume and labels the containers.
    pub job: String,
    /// The queue claim it runs under, when a queue worker runs it (labels).
    pub claim: Option<super::Claim>,
    /// The exported tree.
    pub source: &'a Path,
    /// The runner.
    pub runner: &'a RunnerSpec,
    /// Limits in force.
    pub limits: SandboxLimits,
    /// How many times the tests run (2 for the flakiness check).
    pub test_runs: u32,
    /// The assignment's hidden tests, run after the candidate's.
    pub hidden_tests: Option<&'a Path>,
    /// Cancelled on Ctrl-C or SIGTERM: the running phase stops, the job's containers and volume
    /// are removed, and the job ends [`SandboxError::Cancelled`].
    pub cancel: tokio_util::sync::CancellationToken,
}

/// Where hidden tests are copied, under /work.
pub const HIDDEN_DIR: &str = ".assay-hidden";

/// One test run, classified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRun {
    /// How the run ended.
    pub outcome: OutcomeKind,
    /// Counts and cases.
    pub report: TestReport,
    /// The container run (output capped).
    pub phase: PhaseResult,
}

/// What the sandbox found for one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxReport {
    /// Runner used.
    pub runner: String,
    /// The submission's sandbox outcome: the install's failure, or the first test run's outcome.
    pub outcome: OutcomeKind,
    /// The install phase.
    pub install: PhaseResult,
    /// Whether the install worked and, when not, whose fault it was.
    #[serde(default)]
    pub install_diagnosis: Option<InstallDiagnosis>,
    /// The test runs, in order.
    pub runs: Vec<TestRun>,
    /// Test ids whose result differed between runs.
    pub flaky: Vec<String>,
    /// The hidden tests' run, reported apart from the candidate's. Zero
    /// tests or no results file is `no_tests`, which counts as a failure.
    #[serde(default)]
    pub hidden: Option<TestRun>,
    /// The README's documented install and test commands, as they went here.
    #[serde(default)]
    pub readme_steps: Vec<ReadmeStep>,
    /// Why the first test run, which did not pass, says nothing about the candidate (the test
    /// phase's disk limit, a browser the image lacks); `None` when its result is the project's.
    #[serde(default)]
    pub tests_diagnosis: Option<InstallDiagnosis>,
}

/// Runs the job; the volume is removed whatever happens, cancellation included: a cancelled
/// job stops its phase where it is and removes its containers (every one labelled with the job,
/// running or not) and its volume before it returns. Callers keep awaiting it to the end.
pub async fn run_job(sandbox: &dyn Sandbox, req: &JobRequest<'_>) -> Result<SandboxReport, SandboxError> {
    let image = req.runner.image.clone();
    if req.cancel.is_cancelled() {
        return Err(SandboxError::Cancelled);
    }
    let work = sandbox
        .prepare(&req.job, req.claim.as_ref(), &image, req.source, &req.limits)
        .await?;
    let result = tokio::select! {
        r = run_phases(sandbox, &work, req) => r,
        _ = req.cancel.cancelled() => Err(SandboxError::Cancelled),
    };
    if let Err(e) = sandbox.cleanup(&work).await {
        tracing::warn!("cannot clean up {}: {e}", work.volume);
    }
    result
}

async fn run_phases(
    sandbox: &dyn Sandbox,
    work: &super::Work,
    req: &JobRequest<'_>,
) -> Result<SandboxReport, SandboxError> {
    let r = req.runner;
    let l = &req.limits;
    let spec = |phase: Phase| PhaseSpec {
        phase,
        image: r.image.clone(),
        script: if phase == Phase::Install {
            r.install.clone()
        } else {
            r.test.clone()
        },
        env: r.env.clone(),
        cache_dirs: r.cache.clone(),
        runner: r.name.clone(),
        collect: (phase == Phase::Test).then(|| RESULTS_DIR.to_string()),
        timeout: Duration::from_secs(if phase == Phase::Install {
            l.install_seconds
        } else {
            l.test_seconds
        }),
        memory: if phase == Phase::Install {
            l.install_memory
        } else {
            l.test_memory
        },
        pids: if phase == Phase::Install {
            l.install_pids
        } else {
            l.test_pids
        },
    };
    let install = sandbox.run(work, &spec(Phase::Install), l).await?;
    let install_diagnosis = Some(diagnose(&r.name, &install, l));
    if let Some(kind) = install_failure(&install) {
        // The README's own steps still run: they may install the project another way.
        let readme_steps = run_readme_steps(sandbox, work, req, &spec, install_diagnosis.as_ref()).await?;
        return Ok(SandboxReport {
            runner: r.name.clone(),
            outcome: kind,
            install,
            install_diagnosis,
            runs: Vec::new(),
            flaky: Vec::new(),
            hidden: None,
            readme_steps,
            tests_diagnosis: None,
        });
    }
    // With hidden tests to run, the installed environment is sealed before the candidate's own
    // tests run: nothing they do can reach the interpreter the hidden tests run in.
    let sealed = req.hidden_tests.is_some() && r.hidden.is_some() && !r.seal.is_empty();
    if sealed {
        sandbox.seal(work, &r.image, &r.seal, true).await?;
    }
    let mut runs = Vec::new();
    for _ in 0..req.test_runs.max(1) {
        let phase = sandbox.run(work, &spec(Phase::Test), l).await?;
        let (outcome, report) = classify_test(r, &phase);
        runs.push(TestRun { outcome, report, phase });
    }
    let flaky = flaky(&runs);
    let tests_diagnosis = if runs[0].outcome == OutcomeKind::Passed {
        None
    } else {
        // Small and the candidate's: read only to see which test tools and clients the project
        // declares (package.json; Python's requirement files and manifests, together).
        let names: &[&str] = if r.name == "python" {
            &[
                "requirements.txt",
                "requirements-dev.txt",
                "requirements-test.txt",
                "dev-requirements.txt",
                "pyproject.toml",
                "setup.py",
                "setup.cfg",
                "Pipfile",
            ]
        } else {
            &["package.json"]
        };
        let mut manifest = String::new();
        for name in names {
            if let Some(b) = tokio::fs::read(req.source.join(name))
                .await
                .ok()
                .filter(|b| b.len() <= 1 << 20)
            {
                manifest.push_str(&String::from_utf8_lossy(&b));
                manifest.push('\n');
            }
        }
        super::diagnose::diagnose_tests(&r.name, &runs[0].phase, l, &manifest)
    };
    let hidden = match (req.hidden_tests, &r.hidden) {
        (None, _) => None,
        (Some(dir), Some(script)) => {
            // Copied in only now: the candidate's install and tests never see them.
            sandbox.upload(work, &r.image, dir, HIDDEN_DIR).await?;
            let mut s = spec(Phase::Test);
            s.script = script.clone();
            let phase = sandbox.run(work, &s, l).await?;
            let (outcome, report) = classify_hidden(&phase);
            Some(TestRun { outcome, report, phase })
        }
        (Some(_), None) => Some(TestRun {
            outcome: OutcomeKind::NoTests,
            report: TestReport::default(),
            phase: PhaseResult {
                stderr: format!("the {} runner cannot run hidden tests", r.name),
                ..PhaseResult::default()
            },
        }),
    };
    if sealed {
        // The README's install steps write into it, as they would on the user's machine.
        sandbox.seal(work, &r.image, &r.seal, false).await?;
    }
    // Last, so that nothing the README's steps do changes the results above.
    let readme_steps = run_readme_steps(sandbox, work, req, &spec, install_diagnosis.as_ref()).await?;
    Ok(SandboxReport {
        runner: r.name.clone(),
        outcome: with_hidden(runs[0].outcome, hidden.as_ref()),
        install,
        install_diagnosis,
        runs,
        flaky,
        hidden,
        readme_steps,
        tests_diagnosis,
    })
}

/// Runs the README's documented steps: install steps in install-phase containers, then test
/// steps in test-phase containers, one each; steps that cannot run here are reported without
/// running.
async fn run_readme_steps(
    sandbox: &dyn Sandbox,
    work: &super::Work,
    req: &JobRequest<'_>,
    spec: &(dyn Fn(Phase) -> PhaseSpec + Sync),
    install: Option<&InstallDiagnosis>,
) -> Result<Vec<ReadmeStep>, SandboxError> {
    let r = req.runner;
    let (source, name) = (req.source.to_path_buf(), r.name.clone());
    let planned: Vec<Step> =
        tokio::task::spawn_blocking(move || Readme::find(&source).map(|m| m.steps(&name, Some(&source))))
            .await
            .map_err(|e| SandboxError::Io(format!("reading the README: {e}")))?
            .unwrap_or_default();
    // Tests cannot run on an install that failed for assay's reasons: saying they fail would
    // blame the project for the sandbox.
    let not_ours = install
        .filter(|d| matches!(d.cause, Some(InstallCause::Environment | InstallCause::ResourceLimit)))
        .map(|d| {
            format!(
                "not run: the install failed for a reason of assay's ({})",
                d.diagnosis.as_deref().unwrap_or("see the install")
            )
        });
    // An install that hit a sandbox limit would only hit it again (another 10 minutes of a
    // timeout): its steps are not run either.
    let limited = install.is_some_and(|d| d.cause == Some(InstallCause::ResourceLimit));
    let mut results: Vec<Option<ReadmeStep>> = planned
        .iter()
        .map(|s| match (&s.blocked, &not_ours) {
            (Some(why), _) => Some(steps::blocked(s, why)),
            (None, Some(why)) if limited || steps::phase_of(s) == Phase::Test => Some(steps::blocked(s, why)),
            _ => None,
        })
        .collect();
    for phase in [Phase::Install, Phase::Test] {
        // One container per step (see `steps::script`); a phase's steps share its time.
        let budget = spec(phase).timeout;
        let started = std::time::Instant::now();
        for (i, s) in planned.iter().enumerate() {
            if results[i].is_some() || steps::phase_of(s) != phase {
                continue;
            }
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                results[i] = Some(steps::not_reached(s));
                continue;
            }
            let mut step_spec = steps::spec(
                spec(phase),
                steps::script(r.steps.activate.as_deref(), s),
                &r.steps.test_env,
            );
            step_spec.timeout = left;
            let result = sandbox.run(work, &step_spec, &req.limits).await?;
            results[i] = Some(steps::read(s, phase, &result, left.as_secs()));
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// The install's failure kind, if it failed.
pub fn install_failure(p: &PhaseResult) -> Option<OutcomeKind> {
    if p.timed_out {
        Some(OutcomeKind::Timeout)
    } else if p.oom_killed {
        Some(OutcomeKind::Oom)
    } else if p.exit_code != Some(0) {
        Some(OutcomeKind::InstallFailed)
    } else {
        None
    }
}

/// Reads a test phase's results and decides its outcome. A missing results
/// file or zero tests is `no_tests`, never a pass.
pub fn classify_test(r: &RunnerSpec, p: &PhaseResult) -> (OutcomeKind, TestReport) {
    let output = format!("{}\n{}", p.stdout, p.stderr);
    // A JUnit file, when the runner asks for one and the tests wrote it,
    // wins, then jest's JSON results; otherwise the runner's parser, if it names one, reads the
    // output. A runner with no parser (python: pytest, or unittest under
    // a result class of ours, both write JUnit) is never read from text the
    // tests print: no results file is no results.
    let file = |path: &Option<String>| {
        let name = path.as_deref()?.trim_start_matches(RESULTS_DIR).trim_start_matches('/');
        p.files
            .iter()
            .find(|f| f.path == name)
            .map(|f| String::from_utf8_lossy(&f.data))
    };
    let report = file(&r.results.junit)
        .and_then(|x| runner::parse::junit(&x))
        .or_else(|| file(&r.results.jest_json).and_then(|j| runner::parse::jest_json(&j)))
        .or_else(|| match r.results.parser.as_deref() {
            Some("libtest") => Some(runner::parse::libtest(&output)),
            Some("go-json") => Some(runner::parse::go_json(&p.stdout)),
            Some("counts") => Some(runner::parse::counts(&output)),
            _ => None,
        })
        .unwrap_or_default();
    let kind = if p.timed_out {
        OutcomeKind::Timeout
    } else if p.oom_killed {
        OutcomeKind::Oom
    } else if p.output_truncated {
        OutcomeKind::OutputTruncated
    } else if report.failing() > 0 || (p.exit_code != Some(0) && report.total() > 0) {
        OutcomeKind::TestsFailed
    } else if report.passed == 0 {
        OutcomeKind::NoTests
    } else {
        OutcomeKind::Passed
    };
    (kind, report)
}

/// The submission's outcome: the candidate's own (`own`), unless they passed and the
/// assignment's hidden tests ran and did not (`hidden_failed`). Hidden tests that found nothing
/// to run leave the candidate's result alone (their own outcome says so).
pub fn with_hidden(own: OutcomeKind, hidden: Option<&TestRun>) -> OutcomeKind {
    let failed = hidden.is_some_and(|h| {
        matches!(
            h.outcome,
            OutcomeKind::TestsFailed | OutcomeKind::Timeout | OutcomeKind::Oom | OutcomeKind::OutputTruncated
        )
    });
    if own == OutcomeKind::Passed && failed {
        OutcomeKind::HiddenFailed
    } else {
        own
    }
}

/// Classifies a hidden-test run: only its own JUnit file counts; a missing
/// file or zero tests is `no_tests`.
pub fn classify_hidden(p: &PhaseResult) -> (OutcomeKind, TestReport) {
    let report = p
        .files
        .iter()
        .find(|f| f.path == "hidden.xml")
        .and_then(|f| runner::parse::junit(&String::from_utf8_lossy(&f.data)))
        .unwrap_or_default();
    let kind = if p.timed_out {
        OutcomeKind::Timeout
    } else if p.oom_killed {
        OutcomeKind::Oom
    } else if report.total() == 0 {
        OutcomeKind::NoTests
    } else if report.failed.saturating_add(report.errors) > 0 || p.exit_code != Some(0) {
        OutcomeKind::TestsFailed
    } else {
        OutcomeKind::Passed
    };
    (kind, report)
}

/// Ids whose status differs between runs (a case missing from a run counts as differing).
pub fn flaky(runs: &[TestRun]) -> Vec<String> {
    let Some(first) = runs.first() else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    for other in &runs[1..] {
        for c in &first.report.cases {
            let status = other.report.cases.iter().find(|o| o.id == c.id).map(|o| o.status);
            let differs = match status {
                Some(s) => s != c.status && !(is_bad(s) && is_bad(c.status)),
                None => true,
            };
            if differs && !out.contains(&c.id) {
                out.push(c.id.clone());
            }
        }
    }
    out.sort();
    out
}

fn is_bad(s: CaseStatus) -> bool {
    matches!(s, CaseStatus::Failed | CaseStatus::Error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::TestCase;
    use crate::sandbox::ResultFile;

    #[tokio::test]
    async fn the_environment_is_sealed_around_the_tests_only_when_hidden_tests_run() {
        let python = crate::runner::by_name("python").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let hidden = tempfile::tempdir().unwrap();
        for (hidden_tests, want) in [
            (None, vec![]),
            (
                Some(hidden.path()),
                vec![
                    (vec![".assay-venv".to_string()], true),
                    (vec![".assay-venv".to_string()], false),
                ],
            ),
        ] {
            let sandbox = crate::fakes::ScriptedSandbox::passing(&["test_add"]);
            let req = JobRequest {
                job: "j".into(),
                claim: None,
                source: dir.path(),
                runner: &python,
                limits: SandboxLimits::default(),
                test_runs: 2,
                hidden_tests,
                cancel: tokio_util::sync::CancellationToken::new(),
            };
            run_job(&sandbox, &req).await.unwrap();
            assert_eq!(*sandbox.sealed.lock().unwrap(), want);
        }
    }

    #[test]
    fn failing_hidden_tests_are_the_outcome_of_a_passing_submission() {
        let run = |outcome| TestRun {
            outcome,
            report: TestReport::default(),
            phase: PhaseResult::default(),
        };
        for (own, hidden, want) in [
            (
                OutcomeKind::Passed,
                Some(OutcomeKind::TestsFailed),
                OutcomeKind::HiddenFailed,
            ),
            (
                OutcomeKind::Passed,
                Some(OutcomeKind::Timeout),
                OutcomeKind::HiddenFailed,
            ),
            (OutcomeKind::Passed, Some(OutcomeKind::Passed), OutcomeKind::Passed),
            // Nothing to run: the grader's setup, not the candidate's result.
            (OutcomeKind::Passed, Some(OutcomeKind::NoTests), OutcomeKind::Passed),
            (OutcomeKind::Passed, None, OutcomeKind::Passed),
            // The candidate's own failure says more.
            (
                OutcomeKind::TestsFailed,
                Some(OutcomeKind::TestsFailed),
                OutcomeKind::TestsFailed,
            ),
        ] {
            let h = hidden.map(run);
            assert_eq!(with_hidden(own, h.as_ref()), want, "{own} + {hidden:?}");
        }
    }

    fn python() -> RunnerSpec {
        runner::by_name("python").unwrap()
    }

    fn phase(exit: i64, junit: Option<&str>) -> PhaseResult {
        PhaseResult {
            exit_code: Some(exit),
            files: junit
                .map(|x| {
                    vec![ResultFile {
                        path: "results.xml".into(),
                        data: x.as_bytes().to_vec(),
                    }]
                })
                .unwrap_or_default(),
            ..PhaseResult::default()
        }
    }

    const PASS: &str = r#"<testsuite><testcase classname="t" name="a"/></testsuite>"#;
    const FAIL: &str = r#"<testsuite><testcase classname="t" name="a"><failure/></testcase></testsuite>"#;

    #[test]
    fn outcomes_of_test_runs() {
        let r = python();
        assert_eq!(classify_test(&r, &phase(0, Some(PASS))).0, OutcomeKind::Passed);
        assert_eq!(classify_test(&r, &phase(1, Some(FAIL))).0, OutcomeKind::TestsFailed);
        // No results file and nothing parseable: never a pass.
        assert_eq!(classify_test(&r, &phase(0, None)).0, OutcomeKind::NoTests);
        let mut p = phase(0, Some(PASS));
        p.output_truncated = true;
        assert_eq!(classify_test(&r, &p).0, OutcomeKind::OutputTruncated);
        p.timed_out = true;
        assert_eq!(classify_test(&r, &p).0, OutcomeKind::Timeout);
        let mut p = phase(137, None);
        p.oom_killed = true;
        assert_eq!(classify_test(&r, &p).0, OutcomeKind::Oom);
    }

    /// Adversarial catalogue: with no results file, a unittest summary the candidate's code
    /// printed (then `os._exit(0)`, or a conftest that deleted results.xml) was counted as 12
    /// passing tests. Python's outcome is read from JUnit only.
    #[test]
    fn a_printed_test_summary_is_never_a_pass() {
        let r = python();
        let mut p = phase(0, None);
        p.stdout = "test_a (t.T) ... ok\n\n----\nRan 12 tests in 0.004s\n\nOK\n".into();
        p.stderr = "Ran 12 tests in 0.004s\n\nOK\n".into();
        let (kind, report) = classify_test(&r, &p);
        assert_eq!(kind, OutcomeKind::NoTests);
        assert_eq!(report.total(), 0);
        // A results file with no test case is no results either.
        let p = phase(0, Some("<testsuite name=\"unittest\" tests=\"0\"/>"));
        assert_eq!(classify_test(&r, &p).0, OutcomeKind::NoTests);
    }

    #[test]
    fn flaky_ids_are_those_that_changed() {
        let run = |statuses: &[(&str, CaseStatus)]| TestRun {
            outcome: OutcomeKind::Passed,
            report: TestReport {
                cases: statuses
                    .iter()
                    .map(|(id, s)| TestCase {
                        id: id.to_string(),
                        status: *s,
                        time_s: None,
                    })
                    .collect(),
                ..TestReport::default()
            },
            phase: PhaseResult::default(),
        };
        let a = run(&[
            ("x", CaseStatus::Passed),
            ("y", CaseStatus::Passed),
            ("z", CaseStatus::Failed),
        ]);
        let b = run(&[
            ("x", CaseStatus::Passed),
            ("y", CaseStatus::Failed),
            ("z", CaseStatus::Error),
        ]);
        assert_eq!(flaky(&[a, b]), vec!["y".to_string()]);
    }
}
