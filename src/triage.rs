//! Triage: per-criterion scores, a weighted total with a confidence, the ranking and the review
//! queue. Pure: the same inputs give the same ranking, nothing here touches the store.
//!
//! A criterion's score is the model's draft when there is a valid one (already capped by the
//! deterministic band), else the rubric's automated score, else none. The total is the weighted
//! mean of the scored criteria, each scaled to 0–100 over its levels. Confidence starts at 1 and
//! loses a documented amount for each reason to doubt the total; every reason is listed, so a
//! grader sees why. Submissions whose tests hit an infrastructure error are never ranked down:
//! they are set apart as "re-run" and listed, not sorted to the bottom.

use serde::Serialize;

use crate::draft::CriterionDraft;
use crate::evidence::EvidenceItem;
use crate::facts::Facts;
use crate::outcome::OutcomeKind;
use crate::rubric::assess;
use crate::rubric::checks::CheckInput;
use crate::rubric::Rubric;

/// Below this confidence a submission is surfaced for review whatever its rank.
pub const LOW_CONFIDENCE: f64 = 0.6;
/// Totals closer than this (on 0–100) are a tie.
pub const TIE_EPSILON: f64 = 0.05;

/// What triage needs of one submission.
#[derive(Debug, Clone)]
pub struct Input {
    pub candidate: String,
    pub anon_id: String,
    pub outcome: OutcomeKind,
    pub facts: Facts,
    /// One per criterion when a draft stage ran; empty otherwise.
    pub drafts: Vec<CriterionDraft>,
    /// Injection flags raised while drafting (`I` evidence items).
    pub injection_flags: usize,
    /// The submission's evidence items (what checklist checks cite).
    pub evidence: Vec<EvidenceItem>,
}

/// Where a criterion's score came from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScoreSource {
    Draft,
    Automated,
    None,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CriterionScore {
    pub criterion: String,
    pub score: Option<u32>,
    pub source: ScoreSource,
    pub automated: Option<u32>,
    pub draft: Option<u32>,
    /// Levels between the draft and the automated score (0 when either is missing).
    pub disagreement: u32,
}

/// One reason the total is less certain, and what it cost.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Doubt {
    pub kind: &'static str,
    pub detail: String,
    pub penalty: f64,
}

/// Why a submission is in the review queue.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum QueueReason {
    /// Within the top K.
    TopK,
    /// Tied with the K-th.
    TiedAtCutoff,
    /// Confidence below [`LOW_CONFIDENCE`].
    LowConfidence,
    /// Tests hit an infrastructure error: re-run before judging.
    Rerun,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Triaged {
    pub candidate: String,
    pub anon_id: String,
    /// 1-based rank among the ranked submissions; `None` for those set apart.
    pub rank: Option<usize>,
    /// Weighted total on 0–100; `None` when no criterion could be scored.
    pub total: Option<f64>,
    pub confidence: f64,
    pub criteria: Vec<CriterionScore>,
    pub doubts: Vec<Doubt>,
    /// The checklist items met, criterion by criterion and item by item in the rubric's order
    /// (empty for a rubric without checklists): equal totals are ordered by how many are met,
    /// then by these in order, so only submissions meeting the same items tie.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items_met: Vec<bool>,
    /// Shares its total and its checklist items with another ranked submission.
    pub tie: bool,
    pub low_confidence: bool,
    /// Set apart for a re-run (infrastructure error), never ranked down.
    pub rerun: bool,
    /// Why it is queued for review (empty: not queued).
    pub queued: Vec<QueueReason>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Triage {
    pub top_k: usize,
    /// Ranked submissions first (best first), then those without a total, then re-runs.
    pub submissions: Vec<Triaged>,
}

impl QueueReason {
    /// The stable name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueReason::TopK => "top_k",
            QueueReason::TiedAtCutoff => "tied_at_cutoff",
            QueueReason::LowConfidence => "low_confidence",
            QueueReason::Rerun => "rerun",
        }
    }
}

impl Triage {
    /// The review queue: queued submissions in queue order (top K by rank, then the rest).
    pub fn queue(&self) -> impl Iterator<Item = &Triaged> {
        self.submissions.iter().filter(|t| !t.queued.is_empty())
    }
}

/// Scores one submission against the rubric.
pub fn score(rubric: &Rubric, input: &Input) -> Triaged {
    let mut doubts = Vec::new();
    let mut criteria = Vec::new();
    let mut unscored: Vec<&str> = Vec::new();
    let (mut weighted, mut weights) = (0.0, 0.0);
    let mut items_met = Vec::new();
    for c in &rubric.criteria {
        let d = input.drafts.iter().find(|d| d.criterion == c.id);
        let draft = d.filter(|d| d.valid).and_then(|d| d.score);
        // A checklist criterion without a draft: its checks alone (questions not met).
        let checked = (!c.items.is_empty()).then(|| {
            let ci = CheckInput {
                facts: &input.facts,
                evidence: &input.evidence,
            };
            assess::items(c, &ci, &[])
        });
        let automated = match &checked {
            None => c.automated_score(&input.facts),
            Some(items)
                if items
                    .iter()
                    .all(|i| i.kind == "ask" || i.flags.iter().any(|f| f == "cannot_tell")) =>
            {
                None
            }
            Some(items) => Some(assess::level(c, items)),
        };
        let decided = d
            .filter(|d| d.valid && !d.items.is_empty())
            .map(|d| d.items.as_slice())
            .or(checked.as_deref());
        if let Some(items) = decided {
            items_met.extend(c.items.iter().map(|i| items.iter().any(|r| r.id == i.id && r.met)));
        }
        let undecided = decided.map_or(0, |items| {
            items
                .iter()
                .filter(|i| i.flags.iter().any(|f| f == "cannot_tell"))
                .count()
        });
        if undecided > 0 {
            doubts.push(Doubt {
                kind: "items_undecided",
                detail: format!(
                    "{}: {undecided} checklist item(s) could not be decided and count as not met",
                    c.id
                ),
                penalty: 0.05,
            });
        }
        if let Some(d) = d.filter(|d| !d.valid) {
            doubts.push(Doubt {
                kind: "invalid_draft",
                detail: format!(
                    "{}: the draft is invalid ({})",
                    c.id,
                    d.flags.first().map_or("no reason given", String::as_str)
                ),
                penalty: 0.1,
            });
        }
        let level = |s: u32| c.level_index(s).unwrap_or(0) as i64;
        // A checklist draft adds its questions to the same checks: not a disagreement.
        let disagreement = match (draft, automated) {
            (Some(a), Some(b)) if c.items.is_empty() => (level(a) - level(b)).unsigned_abs() as u32,
            _ => 0,
        };
        if disagreement >= 2 {
            doubts.push(Doubt {
                kind: "draft_disagrees",
                detail: format!(
                    "{}: the draft ({}) is {disagreement} levels from the automated score ({})",
                    c.id,
                    draft.unwrap_or_default(),
                    automated.unwrap_or_default()
                ),
                penalty: 0.1,
            });
        }
        let (score, source) = match (draft, automated) {
            (Some(s), _) => (Some(s), ScoreSource::Draft),
            (None, Some(s)) => (Some(s), ScoreSource::Automated),
            (None, None) => (None, ScoreSource::None),
        };
        match score {
            Some(s) => {
                weighted += c.weight * c.scaled(s);
                weights += c.weight;
            }
            None => unscored.push(c.id.as_str()),
        }
        criteria.push(CriterionScore {
            criterion: c.id.clone(),
            score,
            source,
            automated,
            draft,
            disagreement,
        });
    }
    if !unscored.is_empty() {
        doubts.push(Doubt {
            kind: "unscored",
            detail: format!(
                "neither a valid draft nor automated evidence scores {}",
                unscored.join(", ")
            ),
            penalty: (0.1 * unscored.len() as f64).min(0.4),
        });
    }
    if input.drafts.is_empty() {
        doubts.push(Doubt {
            kind: "no_drafts",
            detail: "no model drafts: scores are the automated part only".into(),
            penalty: 0.1,
        });
    }
    if input.injection_flags > 0 {
        doubts.push(Doubt {
            kind: "injection",
            detail: format!(
                "{} piece(s) of text aimed at the grader or the model were found",
                input.injection_flags
            ),
            penalty: 0.3,
        });
    }
    let rerun = matches!(
        input.outcome,
        OutcomeKind::InfraError | OutcomeKind::InternalError | OutcomeKind::Interrupted
    );
    if rerun {
        doubts.push(Doubt {
            kind: "infra_error",
            detail: format!("the run ended with {}: re-run before judging", input.outcome.as_str()),
            penalty: 0.5,
        });
    }
    // An install that failed for want of our tools or our limits is ours too:
    // set apart for a re-run once the operator has applied the fix.
    let ours = input.facts.tests.as_ref().filter(|t| t.not_candidates());
    if let Some(t) = ours {
        let (kind, what, cause) = if t.install_not_candidates() {
            ("install_not_candidates", "the install", t.install_cause)
        } else {
            ("tests_not_candidates", "the tests", t.tests_cause)
        };
        let cause = cause.map_or("environment", |c| c.as_str());
        doubts.push(Doubt {
            kind,
            detail: format!("{what} failed for a reason of assay's ({cause}): apply the fix in the report and re-run"),
            penalty: 0.5,
        });
    }
    // A partial copy (objects missing from the repository): whatever ran, ran without some of
    // the candidate's files, so the submission is set apart until a complete clone is graded.
    let copy_incomplete = input.outcome == OutcomeKind::RepoCorrupt;
    if copy_incomplete {
        let what = match input.facts.copy_missing {
            0 => "an object the graded history needs".to_string(),
            n => format!("{n} file(s) of the graded commit"),
        };
        doubts.push(Doubt {
            kind: "copy_incomplete",
            detail: format!("assay's copy of the repository lacks {what}: grade a complete clone and re-run"),
            penalty: 0.5,
        });
    }
    let rerun = rerun || ours.is_some() || copy_incomplete;
    if let Some(t) = &input.facts.tests {
        if t.flaky > 0 {
            doubts.push(Doubt {
                kind: "flaky",
                detail: format!("{} test(s) gave different results on two runs", t.flaky),
                penalty: 0.15,
            });
        }
    }
    let confidence = (1.0 - doubts.iter().map(|d| d.penalty).sum::<f64>()).clamp(0.0, 1.0);
    let confidence = (confidence * 100.0).round() / 100.0;
    Triaged {
        candidate: input.candidate.clone(),
        anon_id: input.anon_id.clone(),
        rank: None,
        total: (weights > 0.0).then(|| (weighted / weights * 1000.0).round() / 10.0),
        confidence,
        criteria,
        doubts,
        items_met,
        tie: false,
        low_confidence: confidence < LOW_CONFIDENCE,
        rerun,
        queued: Vec::new(),
    }
}

/// The ranking's order among equal totals: items met, then which, in the rubric's order.
fn items_order(t: &Triaged) -> (usize, &[bool]) {
    (t.items_met.iter().filter(|m| **m).count(), &t.items_met)
}

/// Scores, ranks and queues a cohort. The top `top_k` ranked submissions are queued, with every
/// submission tied with the K-th, every low-confidence one and every re-run.
pub fn triage(rubric: &Rubric, inputs: &[Input], top_k: usize) -> Triage {
    let mut all: Vec<Triaged> = inputs.iter().map(|i| score(rubric, i)).collect();
    // Ranked: has a total and is not a re-run. Best total first; equal totals by the checklist
    // items met (more first, then the rubric's order: criterion levels move in whole steps, so
    // many submissions share one), then by confidence, then by anonymous id (stable, and not
    // the candidate's name).
    all.sort_by(|a, b| {
        let group = |t: &Triaged| match (t.rerun, t.total) {
            (false, Some(_)) => 0,
            (false, None) => 1,
            (true, _) => 2,
        };
        group(a)
            .cmp(&group(b))
            .then(b.total.unwrap_or(0.0).total_cmp(&a.total.unwrap_or(0.0)))
            .then(items_order(b).cmp(&items_order(a)))
            .then(b.confidence.total_cmp(&a.confidence))
            .then(a.anon_id.cmp(&b.anon_id))
    });
    let ranked = all.iter().filter(|t| !t.rerun && t.total.is_some()).count();
    for (i, t) in all.iter_mut().take(ranked).enumerate() {
        t.rank = Some(i + 1);
    }
    let keys: Vec<(f64, Vec<bool>)> = all[..ranked]
        .iter()
        .map(|t| (t.total.unwrap_or(0.0), t.items_met.clone()))
        .collect();
    let same = |a: &(f64, Vec<bool>), b: &(f64, Vec<bool>)| (a.0 - b.0).abs() < TIE_EPSILON && a.1 == b.1;
    let cutoff = top_k.min(ranked).checked_sub(1).map(|i| keys[i].clone());
    for (i, t) in all.iter_mut().enumerate() {
        if i < ranked {
            let key = &keys[i];
            t.tie = keys.iter().enumerate().any(|(j, o)| j != i && same(o, key));
            if i < top_k {
                t.queued.push(QueueReason::TopK);
            } else if cutoff.as_ref().is_some_and(|c| same(c, key)) {
                t.queued.push(QueueReason::TiedAtCutoff);
            }
        }
        if t.low_confidence {
            t.queued.push(QueueReason::LowConfidence);
        }
        if t.rerun {
            t.queued.push(QueueReason::Rerun);
        }
    }
    Triage {
        top_k,
        submissions: all,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::facts::{HistoryFacts, TestFacts};
    use crate::repro::BadgeLevel;

    fn rubric() -> Rubric {
        Rubric::parse(
            Path::new("r.toml"),
            r#"name = "r"
[[criterion]]
id = "correctness"
title = "Correctness"
description = "tests pass"
weight = 2.0
evidence = ["tests"]
level = [{ score = 1, descriptor = "no" }, { score = 2, descriptor = "some" }, { score = 3, descriptor = "most" }, { score = 4, descriptor = "all" }]
[[criterion]]
id = "iteration"
title = "Iteration"
description = "small steps"
weight = 1.0
evidence = ["history"]
level = [{ score = 1, descriptor = "dump" }, { score = 2, descriptor = "few" }, { score = 3, descriptor = "steady" }, { score = 4, descriptor = "great" }]
"#,
        )
        .unwrap()
    }

    fn input(name: &str, outcome: OutcomeKind, passed: u64, total: u64, commits: u64) -> Input {
        Input {
            candidate: name.into(),
            anon_id: format!("anon-{name}"),
            outcome,
            facts: Facts {
                history: Some(HistoryFacts {
                    commit_count: commits,
                    signals: if commits == 1 {
                        vec!["single_dump".into()]
                    } else {
                        vec![]
                    },
                }),
                tests: Some(TestFacts {
                    outcome,
                    passed,
                    total,
                    unrun: 0,
                    hidden: None,
                    flaky: 0,
                    install_cause: None,
                    tests_cause: None,
                }),
                badge: Some(BadgeLevel::Reproduced),
                readme_lines: Some(20),
                copy_missing: 0,
                readme_steps: None,
            },
            drafts: Vec::new(),
            injection_flags: 0,
            evidence: Vec::new(),
        }
    }

    fn draft(criterion: &str, score: Option<u32>, valid: bool) -> CriterionDraft {
        CriterionDraft {
            criterion: criterion.into(),
            score,
            model_score: score,
            band_max: None,
            rationale: "r".into(),
            evidence: vec![],
            valid,
            flags: if valid { vec![] } else { vec!["invalid: cut off".into()] },
            items: vec![],
            feedback: None,
        }
    }

    #[test]
    fn a_cohort_is_ranked_with_reasons_ties_and_reruns_surfaced() {
        let mut strong = input("strong", OutcomeKind::Passed, 10, 10, 12);
        strong.drafts = vec![draft("correctness", Some(4), true), draft("iteration", Some(4), true)];
        let twin = {
            let mut t = input("twin", OutcomeKind::Passed, 10, 10, 12);
            t.drafts = strong.drafts.clone();
            t
        };
        let mut weak = input("weak", OutcomeKind::TestsFailed, 1, 10, 1);
        weak.drafts = vec![draft("correctness", Some(4), true), draft("iteration", None, false)];
        weak.injection_flags = 1;
        let broken = input("broken", OutcomeKind::InfraError, 0, 0, 5);
        let t = triage(&rubric(), &[weak, broken, strong, twin], 1);
        insta::assert_json_snapshot!(t);
    }

    #[test]
    fn queue_reason_names_are_their_serialised_names() {
        for q in [
            QueueReason::TopK,
            QueueReason::TiedAtCutoff,
            QueueReason::LowConfidence,
            QueueReason::Rerun,
        ] {
            assert_eq!(serde_json::to_value(q).unwrap(), q.as_str());
        }
    }

    #[test]
    fn an_infrastructure_error_never_ranks_a_candidate_down() {
        let ok = input("ok", OutcomeKind::TestsFailed, 0, 10, 1);
        let broken = input("broken", OutcomeKind::InfraError, 0, 0, 20);
        let t = triage(&rubric(), &[broken, ok], 5);
        let b = t.submissions.iter().find(|s| s.candidate == "broken").unwrap();
        assert_eq!(b.rank, None);
        assert!(b.rerun && b.queued.contains(&QueueReason::Rerun), "{b:?}");
        assert_eq!(t.submissions[0].candidate, "ok");
        assert_eq!(t.submissions[0].rank, Some(1));
    }

    #[test]
    fn an_install_that_failed_for_assays_reasons_is_set_apart_and_the_candidates_own_is_ranked() {
        use crate::sandbox::diagnose::InstallCause;
        let with_cause = |name: &str, cause: InstallCause| {
            let mut i = input(name, OutcomeKind::InstallFailed, 0, 0, 20);
            i.facts.tests.as_mut().unwrap().outcome = OutcomeKind::InstallFailed;
            i.facts.tests.as_mut().unwrap().install_cause = Some(cause);
            i
        };
        let t = triage(
            &rubric(),
            &[
                with_cause("disk", InstallCause::ResourceLimit),
                with_cause("image", InstallCause::Environment),
                with_cause("pin", InstallCause::Candidate),
            ],
            5,
        );
        let by = |c: &str| t.submissions.iter().find(|s| s.candidate == c).unwrap();
        for c in ["disk", "image"] {
            assert_eq!(by(c).rank, None, "{c}");
            assert!(by(c).rerun && by(c).queued.contains(&QueueReason::Rerun), "{c}");
            assert!(by(c).doubts.iter().any(|d| d.kind == "install_not_candidates"), "{c}");
        }
        assert_eq!(by("pin").rank, Some(1));
        assert!(!by("pin").rerun);
    }

    #[test]
    fn tests_that_failed_for_assays_reasons_and_partial_copies_are_set_apart() {
        use crate::sandbox::diagnose::InstallCause;
        let mut browser = input("browser", OutcomeKind::Timeout, 0, 0, 20);
        browser.facts.tests.as_mut().unwrap().outcome = OutcomeKind::Timeout;
        browser.facts.tests.as_mut().unwrap().tests_cause = Some(InstallCause::Environment);
        let mut partial = input("partial", OutcomeKind::RepoCorrupt, 3, 3, 20);
        partial.facts.copy_missing = 2;
        let own = input("own", OutcomeKind::TestsFailed, 1, 4, 20);
        let t = triage(&rubric(), &[browser, partial, own], 5);
        let by = |c: &str| t.submissions.iter().find(|s| s.candidate == c).unwrap();
        for (c, doubt) in [("browser", "tests_not_candidates"), ("partial", "copy_incomplete")] {
            assert_eq!(by(c).rank, None, "{c}");
            assert!(by(c).rerun && by(c).queued.contains(&QueueReason::Rerun), "{c}");
            assert!(by(c).doubts.iter().any(|d| d.kind == doubt), "{c}: {:?}", by(c).doubts);
        }
        assert!(by("partial").doubts.iter().any(|d| d.detail.contains("2 file(s)")));
        assert_eq!(by("own").rank, Some(1));
    }

    #[test]
    fn the_total_weights_criteria_and_scales_each_over_its_levels() {
        // Tests all pass (automated 4 → 100) weight 2; a single dump (automated 1 → 0) weight 1.
        let t = score(&rubric(), &input("x", OutcomeKind::Passed, 3, 3, 1));
        assert_eq!(t.total, Some(66.7));
        assert_eq!(t.criteria[0].source, ScoreSource::Automated);
        // No drafts is a (small) doubt.
        assert_eq!(t.confidence, 0.9);
        assert!(!t.low_confidence);
    }

    #[test]
    fn equal_totals_are_ordered_by_the_checklist_items_met() {
        let rubric = Rubric::parse(
            Path::new("r.toml"),
            r#"name = "r"
[[criterion]]
id = "communication"
title = "Communication"
description = "README"
weight = 1.0
evidence = ["readme"]
levels = { at_least = [0, 1, 3, 4] }
level = [{ score = 1, descriptor = "none" }, { score = 2, descriptor = "one or two" }, { score = 3, descriptor = "three" }, { score = 4, descriptor = "all" }]
[[criterion.item]]
id = "a"
text = "A."
ask = "A?"
from = ["readme"]
[[criterion.item]]
id = "b"
text = "B."
ask = "B?"
from = ["readme"]
[[criterion.item]]
id = "c"
text = "C."
ask = "C?"
from = ["readme"]
[[criterion.item]]
id = "d"
text = "D."
ask = "D?"
from = ["readme"]
"#,
        )
        .unwrap();
        let with = |name: &str, met: &[&str]| {
            let mut i = input(name, OutcomeKind::Passed, 1, 1, 12);
            let mut d = draft("communication", Some(2), true);
            d.items = ["a", "b", "c", "d"]
                .iter()
                .map(|id| crate::rubric::assess::ItemResult {
                    id: (*id).into(),
                    kind: "ask".into(),
                    text: String::new(),
                    met: met.contains(id),
                    evidence: vec![],
                    quote: None,
                    flags: vec![],
                    note: String::new(),
                    claimed: None,
                })
                .collect();
            i.drafts = vec![d];
            i
        };
        // One or two items met: the same level, the same total.
        let t = triage(
            &rubric,
            &[
                with("only-b", &["b"]),
                with("a", &["a"]),
                with("b-and-c", &["b", "c"]),
                with("also-only-b", &["b"]),
            ],
            2,
        );
        let order: Vec<&str> = t.submissions.iter().map(|s| s.candidate.as_str()).collect();
        // More items first; then the rubric's order (a before b); the same items tie (anonymous id).
        assert_eq!(order, ["b-and-c", "a", "also-only-b", "only-b"]);
        assert!(t.submissions.iter().all(|s| s.total == Some(33.3)));
        let tie: Vec<bool> = t.submissions.iter().map(|s| s.tie).collect();
        assert_eq!(tie, [false, false, true, true]);
        assert_eq!(t.submissions[1].items_met, [true, false, false, false]);
        // The K-th (a) shares its total with the next two, but not its items: nothing tied at the cutoff.
        assert!(t.submissions[2..].iter().all(|s| s.queued.is_empty()));
    }
}
