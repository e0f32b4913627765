//! Checklist checks: the named deterministic predicates a rubric item may name
//! (`check = "NAME"`). Each reads the submission's facts and evidence items, never the model,
//! and answers met, not met, or cannot tell (the facts it needs are unknown, or assay's own
//! environment kept them from being measured): a check never guesses. The evidence ids it
//! cites are the items a grader opens to see why.
//!
//! The table [`CHECKS`] is the documentation: the README lists each name with what it reads.

use serde::{Deserialize, Serialize};

use crate::evidence::EvidenceItem;
use crate::facts::{Facts, TestFacts};
use crate::outcome::OutcomeKind;
use crate::repro::BadgeLevel;

/// What a check read and concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `Some(true)` met, `Some(false)` not met, `None` cannot tell (see `note`).
    pub met: Option<bool>,
    /// Ids of the evidence items the verdict rests on.
    pub evidence: Vec<String>,
    /// One line for the grader: why.
    pub note: String,
}

/// What a check reads.
pub struct CheckInput<'a> {
    pub facts: &'a Facts,
    /// Every evidence item of the submission (history `H`, tests `T`, reproducibility `R`, README `D`).
    pub evidence: &'a [EvidenceItem],
}

impl CheckInput<'_> {
    fn ids(&self, prefix: char, kinds: &[&str]) -> Vec<String> {
        self.evidence
            .iter()
            .filter(|e| e.id.starts_with(prefix) && kinds.contains(&e.kind.as_str()))
            .map(|e| e.id.clone())
            .collect()
    }

    /// Every item of one stage (`T`, `R`, ...).
    fn with_prefix(&self, prefix: char) -> Vec<String> {
        self.evidence
            .iter()
            .filter(|e| e.id.starts_with(prefix))
            .map(|e| e.id.clone())
            .collect()
    }

    fn has_signal(&self, kind: &str) -> bool {
        self.facts
            .history
            .as_ref()
            .is_some_and(|h| h.signals.iter().any(|s| s == kind))
    }
}

/// One named check.
pub struct Check {
    pub name: &'static str,
    /// What it means when met (public: the README's table).
    pub doc: &'static str,
    /// The evidence sources it reads (`history`, `tests`, `repro`, `readme`).
    pub reads: &'static [&'static str],
    pub eval: fn(&CheckInput<'_>) -> Verdict,
}

fn verdict(met: Option<bool>, evidence: Vec<String>, note: impl Into<String>) -> Verdict {
    Verdict {
        met,
        evidence,
        note: note.into(),
    }
}

/// The tests' verdicts say nothing about the candidate: unknown, or failed for assay's reasons.
fn tests_unknown(i: &CheckInput<'_>) -> Option<Verdict> {
    let why = i.facts.tests_unassessed()?;
    let ids = if i.facts.tests.is_some() {
        i.with_prefix('T')
    } else {
        vec![]
    };
    Some(verdict(None, ids, why))
}

fn tests_pass(i: &CheckInput<'_>) -> Verdict {
    if let Some(v) = tests_unknown(i) {
        return v;
    }
    let t = i.facts.tests.as_ref().expect("known tests");
    let ids = i.ids('T', &["candidate_tests"]);
    match t.outcome {
        OutcomeKind::Passed => verdict(Some(true), ids, format!("{} of {} tests passed", t.passed, t.total)),
        OutcomeKind::TestsFailed if ran(t) == 0 => verdict(Some(false), ids, none_ran(t)),
        OutcomeKind::TestsFailed => verdict(Some(false), ids, format!("{} of {} tests passed", t.passed, t.total)),
        OutcomeKind::HiddenFailed => verdict(
            Some(false),
            ids,
            format!(
                "the candidate's {} of {} tests passed, but the assignment's hidden tests did not",
                t.passed, t.total
            ),
        ),
        other => verdict(Some(false), ids, format!("the tests did not pass: {}", other.as_str())),
    }
}

/// Why no test ran: its suites failed to run (a jest suite that does not compile), or the run
/// ended as `outcome`.
fn none_ran(t: &TestFacts) -> String {
    if t.unrun > 0 {
        format!("no test ran: {} test suite(s) failed to run", t.unrun)
    } else {
        format!("no test ran: {}", t.outcome.as_str())
    }
}

/// Tests that reported a result (passed, failed or errored), when the run was the project's.
fn ran(t: &TestFacts) -> u64 {
    if matches!(
        t.outcome,
        OutcomeKind::Passed | OutcomeKind::TestsFailed | OutcomeKind::HiddenFailed
    ) {
        t.total
    } else {
        0
    }
}

fn tests_ran(i: &CheckInput<'_>) -> Verdict {
    if let Some(v) = tests_unknown(i) {
        return v;
    }
    let t = i.facts.tests.as_ref().expect("known tests");
    let ids = i.ids('T', &["candidate_tests"]);
    match ran(t) {
        0 => verdict(Some(false), ids, none_ran(t)),
        n => verdict(Some(true), ids, format!("{n} tests ran in the sandbox")),
    }
}

fn most_tests_pass(i: &CheckInput<'_>) -> Verdict {
    if let Some(v) = tests_unknown(i) {
        return v;
    }
    let t = i.facts.tests.as_ref().expect("known tests");
    let ids = i.ids('T', &["candidate_tests"]);
    if ran(t) == 0 {
        return verdict(Some(false), ids, none_ran(t));
    }
    verdict(
        Some(t.most_pass()),
        ids,
        format!("{} of {} tests passed", t.passed, t.total),
    )
}

/// The history signals that say when tests arrived (or that there are none).
const TEST_TIMING: [&str; 7] = [
    "no_tests",
    "placeholder_tests",
    "tests_from_start",
    "tests_midway",
    "tests_late",
    "tests_arrived_at_once",
    "test_growth",
];

fn has_tests(i: &CheckInput<'_>) -> Verdict {
    let h = i.ids('H', &TEST_TIMING);
    if let Some(t) = i.facts.tests.as_ref().filter(|t| t.total > 0) {
        return verdict(Some(true), h, format!("{} tests ran in the sandbox", t.total));
    }
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(_) if i.has_signal("no_tests") => verdict(Some(false), h, "no test code in the history"),
        Some(_) => verdict(Some(true), h, "the history has test code"),
    }
}

fn tests_from_start(i: &CheckInput<'_>) -> Verdict {
    let ids = i.ids('H', &TEST_TIMING);
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(_) if i.has_signal("tests_from_start") => {
            verdict(Some(true), ids, "tests arrived with the first quarter of the work")
        }
        Some(_) => verdict(Some(false), ids, "tests did not arrive early in the history"),
    }
}

fn no_single_dump(i: &CheckInput<'_>) -> Verdict {
    let ids = i.ids('H', &["single_dump", "largest_commit"]);
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(_) if i.has_signal("single_dump") => {
            verdict(Some(false), ids, "one commit holds 80% or more of the final lines")
        }
        Some(h) if h.commit_count < 3 => verdict(
            Some(false),
            ids,
            format!("{} commits: the work arrived at once", h.commit_count),
        ),
        Some(_) => verdict(Some(true), ids, "no commit holds 80% or more of the final lines"),
    }
}

fn many_small_steps(i: &CheckInput<'_>) -> Verdict {
    let ids = i.ids('H', &["work_sessions", "single_dump", "largest_commit"]);
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(h) if h.commit_count >= 8 && !i.has_signal("single_dump") => {
            verdict(Some(true), ids, format!("{} commits, none a dump", h.commit_count))
        }
        Some(h) => verdict(Some(false), ids, format!("{} commits", h.commit_count)),
    }
}

fn explained_commits(i: &CheckInput<'_>) -> Verdict {
    let ids = i.ids('H', &["vague_messages", "terse_messages", "conventional_messages"]);
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(h) if h.commit_count < 3 => verdict(
            Some(false),
            ids,
            format!("{} commits: too few to explain steps", h.commit_count),
        ),
        Some(_) if i.has_signal("vague_messages") => {
            verdict(Some(false), ids, "many commit messages say nothing of the change")
        }
        Some(_) if i.has_signal("terse_messages") => verdict(
            Some(false),
            ids,
            "half or more of the commit messages are too short to explain a step",
        ),
        Some(_) => verdict(Some(true), ids, "commit messages describe their changes"),
    }
}

fn honest_timestamps(i: &CheckInput<'_>) -> Verdict {
    const SUSPECT: [&str; 4] = [
        "replayed_burst",
        "backdated_commit",
        "future_commit",
        "non_monotonic_dates",
    ];
    let ids = i.ids('H', &SUSPECT);
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(_) if !ids.is_empty() => verdict(Some(false), ids, "commit times look rewritten or replayed"),
        Some(_) => verdict(Some(true), ids, "no sign of rewritten commit times"),
    }
}

fn reproduces(i: &CheckInput<'_>) -> Verdict {
    if let Some(v) = tests_unknown(i) {
        return v;
    }
    let ids = i.with_prefix('R');
    match i.facts.badge {
        None => verdict(None, vec![], "reproducibility was not assessed"),
        Some(BadgeLevel::Reproduced) => verdict(
            Some(true),
            ids,
            "installs, passes twice identically, dependencies pinned",
        ),
        Some(b) => verdict(Some(false), ids, format!("badge: {b:?}").to_lowercase()),
    }
}

fn pinned_dependencies(i: &CheckInput<'_>) -> Verdict {
    let ids = i.ids(
        'R',
        &[
            "no_lockfile",
            "unpinned_dependencies",
            "undeclared_imports",
            "no_manifest",
        ],
    );
    let nested = i.ids('R', &["nested_projects"]);
    match i.facts.badge {
        None => verdict(None, vec![], "reproducibility was not assessed"),
        // Projects in subdirectories, each with its lockfile or exact pins (an API in api/
        // with go.sum, a web app in web/ with package-lock.json).
        Some(_) if i.facts.tests.is_none() && ids.is_empty() && !nested.is_empty() => verdict(
            Some(true),
            nested,
            "the projects in subdirectories declare and pin their dependencies",
        ),
        Some(_) if i.facts.tests.is_none() && !ids.is_empty() => {
            verdict(Some(false), ids, "dependencies not declared or not pinned")
        }
        // No finding against a project whose manifest no runner read is no evidence of pins
        // (corpus: R scripts and a project in a subdirectory were "declared and pinned").
        Some(_) if i.facts.tests.is_none() => verdict(
            None,
            vec![],
            "no runner recognised the project and no dependency manifest was found",
        ),
        Some(_) if ids.is_empty() => verdict(Some(true), ids, "dependencies declared and pinned"),
        Some(_) => verdict(Some(false), ids, "dependencies not declared or not pinned"),
    }
}

fn readme_results(i: &CheckInput<'_>) -> Verdict {
    let ids = i.ids('H', &["readme_results", "readme_no_results", "no_readme"]);
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(_) if i.has_signal("readme_results") => verdict(Some(true), ids, "the README reports results"),
        Some(_) => verdict(Some(false), ids, "the README reports no results"),
    }
}

fn early_baseline(i: &CheckInput<'_>) -> Verdict {
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(_) if i.has_signal("early_baseline") => verdict(
            Some(true),
            i.ids('H', &["early_baseline"]),
            "code from the start, then improved in later steps",
        ),
        Some(h) => verdict(
            Some(false),
            i.ids('H', &["work_sessions", "single_dump"]),
            format!(
                "{} commits: no early code followed by at least three changes to it",
                h.commit_count
            ),
        ),
    }
}

/// Met when the history has `signal` (a fact of the graded tree), citing it.
fn tree_signal(i: &CheckInput<'_>, signal: &str, met: &str, unmet: &str) -> Verdict {
    match &i.facts.history {
        None => verdict(None, vec![], "the history was not read"),
        Some(_) if i.has_signal(signal) => verdict(Some(true), i.ids('H', &[signal]), met),
        Some(_) => verdict(Some(false), vec![], unmet),
    }
}

fn ci_config(i: &CheckInput<'_>) -> Verdict {
    tree_signal(
        i,
        "ci_config",
        "CI configuration in the tree",
        "no CI configuration in the graded tree",
    )
}

fn linters(i: &CheckInput<'_>) -> Verdict {
    tree_signal(
        i,
        "linters",
        "linter or formatter configuration in the tree",
        "no linter or formatter configuration in the graded tree",
    )
}

fn readme_run_instructions(i: &CheckInput<'_>) -> Verdict {
    const MISSING: [&str; 3] = ["no_readme", "readme_no_setup", "readme_no_test_command"];
    let ids = i.ids('R', &MISSING);
    match i.facts.badge {
        None => verdict(None, vec![], "reproducibility was not assessed"),
        Some(_) if ids.is_empty() => verdict(
            Some(true),
            ids,
            "the README says how to install and how to run the tests",
        ),
        Some(_) => verdict(
            Some(false),
            ids,
            "the README does not say how to install or how to run the tests",
        ),
    }
}

fn readme_steps_work(i: &CheckInput<'_>) -> Verdict {
    let ids = i.ids(
        'R',
        &[
            "readme_step_fails",
            "readme_no_setup",
            "readme_no_test_command",
            "no_readme",
        ],
    );
    let Some(steps) = i.facts.readme_steps else {
        return verdict(None, vec![], "the README's commands were not run (no sandbox stage)");
    };
    if let Some(why) = i.facts.tests_unassessed().filter(|_| steps.fails > 0) {
        return verdict(None, ids, why);
    }
    match steps {
        s if s.fails > 0 => verdict(
            Some(false),
            ids,
            format!("{} of the README's commands fail in a clean checkout", s.fails),
        ),
        s if s.works > 0 => verdict(
            Some(true),
            ids,
            format!(
                "the README's {} documented command(s) work in a clean checkout",
                s.works
            ),
        ),
        s if s.cannot_run > 0 => verdict(None, ids, "the README's commands could not run here"),
        _ => verdict(Some(false), ids, "the README documents no install or test command"),
    }
}

/// The version of what the checks conclude: part of the draft stage's key, so a submission
/// drafted under an older version is drafted again (its questions' answers are reused when
/// their prompts are unchanged; only the checks, levels and feedback are redone).
pub const VERSION: &str = "checks-v2";

/// Every check a rubric may name.
pub const CHECKS: &[Check] = &[
    Check { name: "tests_ran", doc: "The project's own tests ran in the sandbox (at least one test reported a result).", reads: &["tests"], eval: tests_ran },
    Check { name: "most_tests_pass", doc: "At least three quarters of the project's tests passed in the sandbox.", reads: &["tests"], eval: most_tests_pass },
    Check { name: "tests_pass", doc: "The project's own tests ran in the sandbox and all passed.", reads: &["tests"], eval: tests_pass },
    Check { name: "has_tests", doc: "The project has test code (tests ran in the sandbox, or the history has test files).", reads: &["tests", "history"], eval: has_tests },
    Check { name: "tests_from_start", doc: "Tests arrived in the first quarter of the commits (the first commit at least), and not inside the commit that holds most of the work.", reads: &["history"], eval: tests_from_start },
    Check { name: "no_single_dump", doc: "No single commit holds 80% or more of the final code (what it added that the graded tree still holds), and there are at least three commits.", reads: &["history"], eval: no_single_dump },
    Check { name: "many_small_steps", doc: "At least eight commits of the candidate's, none of them a dump.", reads: &["history"], eval: many_small_steps },
    Check { name: "explained_commits", doc: "At least three commits, and their messages describe the change (no run of vague messages, and more than half of them three words or longer).", reads: &["history"], eval: explained_commits },
    Check { name: "honest_timestamps", doc: "No sign of rewritten commit times (replayed bursts, back- or future-dated commits, dates out of order).", reads: &["history"], eval: honest_timestamps },
    Check { name: "reproduces", doc: "Installs from a clean checkout and its tests pass twice identically with pinned dependencies (badge `reproduced`).", reads: &["repro", "tests"], eval: reproduces },
    Check { name: "pinned_dependencies", doc: "Dependencies are declared in a manifest a runner reads and pinned (a lockfile or exact pins; no undeclared imports); with no runner at the top level, every project in a subdirectory (up to three deep) has its lockfile or exact pins; not met when tests ran with nothing declared (`no_manifest`); cannot tell when no manifest is found.", reads: &["repro", "tests"], eval: pinned_dependencies },
    Check { name: "readme_results", doc: "The README reports results.", reads: &["history", "readme"], eval: readme_results },
    Check { name: "early_baseline", doc: "Code arrived in the first work session or the first quarter of the commits, and at least three later commits changed it.", reads: &["history"], eval: early_baseline },
    Check { name: "ci_config", doc: "The graded tree configures continuous integration (GitHub Actions, GitLab CI, CircleCI, Travis, Jenkins, ...).", reads: &["history"], eval: ci_config },
    Check { name: "linters", doc: "The graded tree configures a linter or formatter (pre-commit, ruff, flake8, mypy, eslint, prettier, golangci-lint, rustfmt, ...).", reads: &["history"], eval: linters },
    Check { name: "readme_run_instructions", doc: "The README says how to install the project and how to run its tests.", reads: &["repro", "readme"], eval: readme_run_instructions },
    Check { name: "readme_steps_work", doc: "The README's documented install and test commands were run in a clean checkout and none failed.", reads: &["tests", "readme"], eval: readme_steps_work },
];

/// The check named `name`.
pub fn find(name: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{HistoryFacts, TestFacts};
    use crate::sandbox::diagnose::InstallCause;

    fn item(id: &str, kind: &str) -> EvidenceItem {
        EvidenceItem {
            id: id.into(),
            kind: kind.into(),
            source: "history".into(),
            text: kind.into(),
        }
    }

    fn history(commits: u64, signals: &[&str]) -> Facts {
        Facts {
            history: Some(HistoryFacts {
                commit_count: commits,
                signals: signals.iter().map(|s| s.to_string()).collect(),
            }),
            ..Facts::default()
        }
    }

    fn tests(outcome: OutcomeKind, passed: u64, total: u64) -> TestFacts {
        TestFacts {
            outcome,
            passed,
            total,
            unrun: 0,
            hidden: None,
            flaky: 0,
            install_cause: None,
            tests_cause: None,
        }
    }

    fn eval(name: &str, facts: &Facts, evidence: &[EvidenceItem]) -> Verdict {
        (find(name).unwrap().eval)(&CheckInput { facts, evidence })
    }

    #[test]
    fn the_readme_documents_every_check_with_what_it_reads() {
        let readme = include_str!("../../README.md");
        for c in CHECKS {
            let row = format!("| `{}` | {} | {} |", c.name, c.doc, c.reads.join(", "));
            assert!(readme.contains(&row), "README.md lacks the row {row}");
        }
    }

    #[test]
    fn the_table_documents_every_check_once_with_the_sources_it_reads() {
        let mut names: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHECKS.len(), "a check name is used twice");
        for c in CHECKS {
            assert!(!c.doc.is_empty() && !c.reads.is_empty(), "{}", c.name);
            assert!(c.reads.iter().all(|r| crate::facts::SOURCES.contains(r)), "{}", c.name);
        }
    }

    #[test]
    fn a_two_commit_dump_meets_no_process_check_whatever_else_is_said() {
        let facts = history(2, &["single_dump", "work_sessions"]);
        let evidence = [item("H1", "work_sessions"), item("H2", "single_dump")];
        for name in ["no_single_dump", "many_small_steps", "explained_commits"] {
            let v = eval(name, &facts, &evidence);
            assert_eq!(v.met, Some(false), "{name}: {v:?}");
        }
        assert_eq!(eval("no_single_dump", &facts, &evidence).evidence, ["H2"]);
        let steady = history(12, &["work_sessions", "conventional_messages"]);
        for name in [
            "no_single_dump",
            "many_small_steps",
            "explained_commits",
            "honest_timestamps",
        ] {
            assert_eq!(eval(name, &steady, &[]).met, Some(true), "{name}");
        }
        // No history read: the checks cannot tell, they do not guess.
        assert_eq!(eval("many_small_steps", &Facts::default(), &[]).met, None);
    }

    #[test]
    /// Regression (corpus: a TypeScript API): both jest suites failed to compile; the report
    /// said "2 tests ran in the sandbox".
    fn suites_that_failed_to_run_ran_no_test() {
        let facts = |t: TestFacts| Facts {
            tests: Some(t),
            ..Facts::default()
        };
        let errored = facts(TestFacts {
            unrun: 2,
            ..tests(OutcomeKind::TestsFailed, 0, 0)
        });
        for name in ["tests_ran", "most_tests_pass", "tests_pass"] {
            let v = eval(name, &errored, &[]);
            assert_eq!(v.met, Some(false), "{name}: {v:?}");
            assert_eq!(v.note, "no test ran: 2 test suite(s) failed to run", "{name}");
        }
        // One suite failed to run, another's five tests passed: they ran, and all that ran passed.
        let some = facts(TestFacts {
            unrun: 1,
            ..tests(OutcomeKind::TestsFailed, 5, 5)
        });
        let v = eval("tests_ran", &some, &[]);
        assert_eq!((v.met, v.note.as_str()), (Some(true), "5 tests ran in the sandbox"));
        assert_eq!(eval("most_tests_pass", &some, &[]).met, Some(true));
        assert_eq!(eval("tests_pass", &some, &[]).met, Some(false));
    }

    /// Counts are the candidate's output: at u64's top the three-quarters rule neither overflows
    /// nor lets a huge total pass.
    #[test]
    fn most_tests_pass_holds_at_the_largest_counts() {
        let facts = |passed, total| Facts {
            tests: Some(tests(OutcomeKind::TestsFailed, passed, total)),
            ..Facts::default()
        };
        assert_eq!(eval("most_tests_pass", &facts(u64::MAX, u64::MAX), &[]).met, Some(true));
        assert_eq!(
            eval("most_tests_pass", &facts(u64::MAX / 2, u64::MAX), &[]).met,
            Some(false)
        );
        assert_eq!(facts(u64::MAX, u64::MAX).estimate("tests"), Some(3));
    }

    #[test]
    fn pins_are_not_claimed_for_a_project_no_runner_read() {
        let repro = |tests: Option<TestFacts>| Facts {
            badge: Some(crate::repro::BadgeLevel::Available),
            tests,
            ..Facts::default()
        };
        // R scripts: no runner, no lockfile finding, and no evidence of pins either.
        assert_eq!(eval("pinned_dependencies", &repro(None), &[]).met, None);
        let read = repro(Some(tests(OutcomeKind::Passed, 3, 3)));
        assert_eq!(eval("pinned_dependencies", &read, &[]).met, Some(true));
        let unpinned = [item("R1", "no_lockfile")];
        assert_eq!(eval("pinned_dependencies", &read, &unpinned).met, Some(false));
    }

    #[test]
    fn rewritten_commit_times_are_cited() {
        let facts = history(9, &["backdated_commit"]);
        let v = eval(
            "honest_timestamps",
            &facts,
            &[item("H1", "work_sessions"), item("H4", "backdated_commit")],
        );
        assert_eq!((v.met, v.evidence), (Some(false), vec!["H4".to_string()]));
    }

    #[test]
    fn tests_pass_only_on_the_projects_own_result_never_on_assays_environment() {
        let evidence = [EvidenceItem {
            id: "T1".into(),
            kind: "candidate_tests".into(),
            source: "sandbox".into(),
            text: "candidate's tests".into(),
        }];
        let with = |t: TestFacts| Facts {
            tests: Some(t),
            ..Facts::default()
        };
        let v = eval("tests_pass", &with(tests(OutcomeKind::Passed, 5, 5)), &evidence);
        assert_eq!((v.met, v.evidence.as_slice()), (Some(true), &["T1".to_string()][..]));
        assert_eq!(v.note, "5 of 5 tests passed");
        let v = eval("tests_pass", &with(tests(OutcomeKind::TestsFailed, 3, 5)), &evidence);
        assert_eq!(v.met, Some(false));
        let v = eval("tests_pass", &with(tests(OutcomeKind::NoTests, 0, 0)), &evidence);
        assert_eq!(v.met, Some(false), "{v:?}");
        // An install that failed for the image's reasons, an infrastructure error, a partial copy.
        let mut env = tests(OutcomeKind::InstallFailed, 0, 0);
        env.install_cause = Some(InstallCause::Environment);
        assert_eq!(eval("tests_pass", &with(env.clone()), &evidence).met, None);
        assert_eq!(eval("reproduces", &with(env), &evidence).met, None);
        assert_eq!(
            eval("tests_pass", &with(tests(OutcomeKind::InfraError, 0, 0)), &evidence).met,
            None
        );
        let mut partial = with(tests(OutcomeKind::TestsFailed, 1, 2));
        partial.copy_missing = 3;
        assert_eq!(eval("tests_pass", &partial, &evidence).met, None);
        assert_eq!(eval("tests_pass", &Facts::default(), &evidence).met, None);
        // A candidate's own failed install counts.
        let mut theirs = tests(OutcomeKind::InstallFailed, 0, 0);
        theirs.install_cause = Some(InstallCause::Candidate);
        assert_eq!(eval("tests_pass", &with(theirs), &evidence).met, Some(false));
        // The candidate's tests all passed, the assignment's hidden ones did not: the tests ran,
        // most of the candidate's pass, but the tests do not pass.
        let hidden = with(tests(OutcomeKind::HiddenFailed, 4, 4));
        let v = eval("tests_pass", &hidden, &evidence);
        assert_eq!(v.met, Some(false), "{v:?}");
        assert!(v.note.contains("hidden tests did not"), "{v:?}");
        assert_eq!(eval("tests_ran", &hidden, &evidence).met, Some(true));
        assert_eq!(eval("most_tests_pass", &hidden, &evidence).met, Some(true));
    }
}
