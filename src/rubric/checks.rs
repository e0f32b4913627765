//! Checklist checks: the named deterministic predicates a rubric item may name
//! (`check = "NAME"`). Each reads the submission's facts and evidence items, never the model,
//! and answers met, not met, or cannot tell (the facts it needs are unknown, or assay's own
//! environment kept them from being measured): a check never guesses. The evidence ids it
//! cites are the items a grader opens to see why.
//!
//! The table [`CHECKS`] is the documentation: the README lists each name with what it reads.

use serde::{Deserialize, Serialize};

use crate::evidence::EvidenceItem;
use crate::facts::Facts;
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
    let all_t = |i: &CheckInput<'_>| {
        i.evidence
            .iter()
            .filter(|e| e.id.starts_with('T'))
            .map(|e| e.id.clone())
            .collect::<Vec<_>>()
    };
    match &i.facts.tests {
        None => Some(verdict(None, vec![], "the tests were not run (no sandbox stage)")),
        Some(t) if t.not_candidates() => Some(verdict(
            None,
            all_t(i),
            "the install or the tests failed for a reason of assay's environment: set apart, re-run",
        )),
        Some(t)
            if matches!(
                t.outcome,
                OutcomeKind::InfraError | OutcomeKind::InternalError | OutcomeKind::Interrupted
            ) =>
        {
            Some(verdict(None, all_t(i), "the sandbox failed (infrastructure): re-run"))
        }
        Some(t) if i.facts.copy_missing > 0 && t.outcome != OutcomeKind::Passed => Some(verdict(
            None,
            all_t(i),
            "assay's copy of the repository is incomplete: tests that did not pass say nothing",
        )),
        Some(_) => None,
    }
}

fn tests_pass(i: &CheckInput<'_>) -> Verdict {
    if let Some(v) = tests_unknown(i) {
        return v;
    }
    let t = i.facts.tests.as_ref().expect("known tests");
    let ids = i.ids('T', &["candidate_tests"]);
    match t.outcome {
        OutcomeKind::Passed => verdict(Some(true), ids, format!("{} of {} tests passed", t.passed, t.total)),
        OutcomeKind::TestsFailed => verdict(Some(false), ids, format!("{} of {} tests passed", t.passed, t.total)),
        other => verdict(Some(false), ids, format!("the tests did not pass: {}", other.as_str())),
    }
}

/// The history signals that say when tests arrived (or that there are none).
const TEST_TIMING: [&str; 6] = [
    "no_tests",
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
        Some(_) if i.has_signal("single_dump") => verdict(Some(false), ids, "one commit holds most of the final lines"),
        Some(h) if h.commit_count < 3 => verdict(
            Some(false),
            ids,
            format!("{} commits: the work arrived at once", h.commit_count),
        ),
        Some(_) => verdict(Some(true), ids, "no commit holds most of the final lines"),
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
    let ids = i.ids('H', &["vague_messages", "conventional_messages"]);
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
    let ids: Vec<String> = i
        .evidence
        .iter()
        .filter(|e| e.id.starts_with('R'))
        .map(|e| e.id.clone())
        .collect();
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
    let ids = i.ids('R', &["no_lockfile", "unpinned_dependencies", "undeclared_imports"]);
    match i.facts.badge {
        None => verdict(None, vec![], "reproducibility was not assessed"),
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

/// Every check a rubric may name.
pub const CHECKS: &[Check] = &[
    Check { name: "tests_pass", doc: "The project's own tests ran in the sandbox and all passed.", reads: &["tests"], eval: tests_pass },
    Check { name: "has_tests", doc: "The project has test code (tests ran in the sandbox, or the history has test files).", reads: &["tests", "history"], eval: has_tests },
    Check { name: "tests_from_start", doc: "Tests arrived with the first quarter of the work, not at the end.", reads: &["history"], eval: tests_from_start },
    Check { name: "no_single_dump", doc: "No single commit holds most of the final code, and there are at least three commits.", reads: &["history"], eval: no_single_dump },
    Check { name: "many_small_steps", doc: "At least eight commits of the candidate's, none of them a dump.", reads: &["history"], eval: many_small_steps },
    Check { name: "explained_commits", doc: "At least three commits, and their messages describe the change (no run of vague messages).", reads: &["history"], eval: explained_commits },
    Check { name: "honest_timestamps", doc: "No sign of rewritten commit times (replayed bursts, back- or future-dated commits, dates out of order).", reads: &["history"], eval: honest_timestamps },
    Check { name: "reproduces", doc: "Installs from a clean checkout and its tests pass twice identically with pinned dependencies (badge `reproduced`).", reads: &["repro", "tests"], eval: reproduces },
    Check { name: "pinned_dependencies", doc: "Dependencies are declared and pinned (a lockfile or exact pins; no undeclared imports).", reads: &["repro"], eval: pinned_dependencies },
    Check { name: "readme_results", doc: "The README reports results.", reads: &["history", "readme"], eval: readme_results },
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
    }
}
