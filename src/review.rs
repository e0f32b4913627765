//! Grader reviews: the review types (owned here; the store keeps them), what makes a review final, final scores, exports, and the hiring lead's
//! metrics (how often graders kept the draft score; how often two graders agree). Pure: the
//! store supplies reviews, nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::rubric::{Criterion, Rubric};
use crate::submission::SubmissionRecord;

// ---------------------------------------------------------------- reviews

/// A review's state: open while a grader works on it, final once they finalize it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Open,
    Final,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Open => "open",
            ReviewStatus::Final => "final",
        }
    }
}

/// A grader's judgement of one criterion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriterionReview {
    /// The grader's score (`None`: not scored yet).
    pub score: Option<u32>,
    /// The grader's note.
    #[serde(default)]
    pub comment: String,
    /// The draft's score when the grader saw it (for "how often graders kept the draft").
    #[serde(default)]
    pub draft_score: Option<u32>,
    /// A checklist criterion's items as the grader ticked them, by item id (empty for a
    /// criterion without items, and in reviews saved before items existed).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub items: std::collections::BTreeMap<String, ItemReview>,
    /// The candidate-facing feedback the grader approves (pre-filled from the draft); what
    /// `assay feedback` sends once the review is final.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub feedback: String,
}

/// What a save changes, per criterion, for the audit trail: the score move and the note, and
/// for a checklist the items whose tick changed (`from`: the stored review's tick, or the
/// draft's answer on a first save) and whether the candidate feedback was edited.
pub fn review_changes(
    before: Option<&std::collections::BTreeMap<String, CriterionReview>>,
    after: &std::collections::BTreeMap<String, CriterionReview>,
) -> Vec<serde_json::Value> {
    after
        .iter()
        .filter(|(k, v)| before.and_then(|b| b.get(*k)) != Some(*v))
        .map(|(k, v)| {
            let old = before.and_then(|b| b.get(k));
            let mut change = serde_json::json!({
                "criterion": k,
                "from": old.and_then(|c| c.score),
                "to": v.score,
                "comment": v.comment,
            });
            let items: serde_json::Map<String, serde_json::Value> = v
                .items
                .iter()
                .filter_map(|(id, now)| {
                    let was = match old.and_then(|c| c.items.get(id)) {
                        Some(o) => Some(o.met),
                        None => now.draft_met,
                    };
                    (was != Some(now.met)).then(|| (id.clone(), serde_json::json!({ "from": was, "to": now.met })))
                })
                .collect();
            if !items.is_empty() {
                change["items"] = items.into();
            }
            if old.map_or("", |c| c.feedback.as_str()) != v.feedback {
                change["feedback"] = v.feedback.clone().into();
            }
            change
        })
        .collect()
}

/// A grader's answer to one checklist item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemReview {
    /// Whether the grader ticks the item as met.
    pub met: bool,
    /// What the draft answered when the grader saw it (`None`: the draft had no answer), for
    /// "how often graders kept the model's answer".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_met: Option<bool>,
}

/// One grader's review of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: i64,
    pub submission_id: i64,
    /// Whose review it is.
    pub grader: String,
    pub status: ReviewStatus,
    /// Bumped by every save; a save must name the version it started from.
    pub version: i64,
    /// By criterion id.
    pub scores: std::collections::BTreeMap<String, CriterionReview>,
    pub comment: String,
    pub updated_at: String,
    pub finalized_at: Option<String>,
}

// ---------------------------------------------------------------- rules

/// Why `scores` cannot be finalized under `rubric` (empty: they can). A final review scores
/// every criterion with one of its levels.
pub fn final_problems(rubric: &Rubric, scores: &BTreeMap<String, CriterionReview>) -> Vec<String> {
    let mut out = Vec::new();
    for c in &rubric.criteria {
        match scores.get(&c.id).and_then(|r| r.score) {
            None => out.push(format!("{} is not scored", c.title)),
            Some(s) if !c.levels.iter().any(|l| l.score == s) => {
                out.push(format!("{}: {s} is not one of its levels", c.title))
            }
            Some(_) => {}
        }
    }
    out
}

/// The level `c`'s rule gives the items a grader ticked in `r` (`None`: `c` has no items, or
/// the review holds no item answers for it).
pub fn items_level(c: &Criterion, r: &CriterionReview) -> Option<u32> {
    if c.items.is_empty() || r.items.is_empty() {
        return None;
    }
    Some(c.level_where(|id| r.items.get(id).is_some_and(|x| x.met)))
}

/// Why `scores` cannot be saved (empty: they can): a checklist criterion scored at another
/// level than its ticked items give is an override, and an override needs the grader's note.
pub fn override_problems(rubric: &Rubric, scores: &BTreeMap<String, CriterionReview>) -> Vec<String> {
    let mut out = Vec::new();
    for c in &rubric.criteria {
        let Some(r) = scores.get(&c.id) else { continue };
        if let (Some(s), Some(level)) = (r.score, items_level(c, r)) {
            if s != level && r.comment.trim().is_empty() {
                out.push(format!(
                    "{}: level {s} overrides the level its ticked items give ({level}): say why in your note",
                    c.title
                ));
            }
        }
    }
    out
}

/// Weighted total on 0–100 of the scored criteria (as triage computes it).
pub fn total(rubric: &Rubric, scores: &BTreeMap<String, CriterionReview>) -> Option<f64> {
    let (mut sum, mut weights) = (0.0, 0.0);
    for c in &rubric.criteria {
        if let Some(s) = scores.get(&c.id).and_then(|r| r.score) {
            sum += c.weight * c.scaled(s);
            weights += c.weight;
        }
    }
    (weights > 0.0).then(|| (sum / weights * 1000.0).round() / 10.0)
}

/// One final review, as exported.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExportRow {
    pub anon_id: String,
    /// Only with `--reveal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    pub grader: String,
    pub finalized_at: String,
    pub total: Option<f64>,
    /// By criterion id, in rubric order.
    pub scores: BTreeMap<String, Option<u32>>,
    /// A checklist criterion's items as the grader ticked them: criterion id → item id → met.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<String, BTreeMap<String, bool>>,
    /// The candidate-facing feedback the grader approved, by criterion id (non-empty only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub feedback: BTreeMap<String, String>,
}

/// The final reviews of a cohort; identities only when `reveal`.
pub fn export_rows(rubric: &Rubric, subs: &[SubmissionRecord], reviews: &[Review], reveal: bool) -> Vec<ExportRow> {
    let mut rows: Vec<ExportRow> = reviews
        .iter()
        .filter(|r| r.status == ReviewStatus::Final)
        .filter_map(|r| {
            let s = subs.iter().find(|s| s.id == r.submission_id)?;
            Some(ExportRow {
                anon_id: s.anon_id.clone(),
                candidate: reveal.then(|| s.candidate.clone()),
                repo: reveal.then(|| s.repo.clone()),
                grader: r.grader.clone(),
                finalized_at: r.finalized_at.clone().unwrap_or_default(),
                total: total(rubric, &r.scores),
                scores: rubric
                    .criteria
                    .iter()
                    .map(|c| (c.id.clone(), r.scores.get(&c.id).and_then(|x| x.score)))
                    .collect(),
                items: rubric
                    .criteria
                    .iter()
                    .filter_map(|c| {
                        let x = r.scores.get(&c.id).filter(|x| !x.items.is_empty())?;
                        let ticked = c
                            .items
                            .iter()
                            .filter_map(|i| x.items.get(&i.id).map(|v| (i.id.clone(), v.met)))
                            .collect();
                        Some((c.id.clone(), ticked))
                    })
                    .collect(),
                feedback: r
                    .scores
                    .iter()
                    .filter(|(_, x)| !x.feedback.trim().is_empty())
                    .map(|(id, x)| (id.clone(), x.feedback.clone()))
                    .collect(),
            })
        })
        .collect();
    rows.sort_by(|a, b| a.anon_id.cmp(&b.anon_id).then(a.grader.cmp(&b.grader)));
    rows
}

/// CSV of [`export_rows`]: one column per criterion, in rubric order.
pub fn export_csv(rubric: &Rubric, rows: &[ExportRow], reveal: bool) -> String {
    let mut out = String::new();
    let mut header = vec!["anon_id"];
    if reveal {
        header.extend(["candidate", "repo"]);
    }
    header.extend(["grader", "finalized_at", "total"]);
    let mut cols: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    cols.extend(rubric.criteria.iter().map(|c| c.id.clone()));
    // Then one column per checklist item, `criterion.item`: 1 met, 0 not, empty when the
    // review holds no answer for it.
    cols.extend(rubric.item_keys());
    let _ = writeln!(
        out,
        "{}",
        cols.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",")
    );
    for r in rows {
        let mut f = vec![r.anon_id.clone()];
        if reveal {
            f.push(r.candidate.clone().unwrap_or_default());
            f.push(r.repo.clone().unwrap_or_default());
        }
        f.push(r.grader.clone());
        f.push(r.finalized_at.clone());
        f.push(r.total.map_or(String::new(), |t| format!("{t:.1}")));
        for c in &rubric.criteria {
            f.push(
                r.scores
                    .get(&c.id)
                    .copied()
                    .flatten()
                    .map_or(String::new(), |s| s.to_string()),
            );
        }
        for c in &rubric.criteria {
            for i in &c.items {
                let met = r.items.get(&c.id).and_then(|x| x.get(&i.id));
                f.push(met.map_or(String::new(), |m| u8::from(*m).to_string()));
            }
        }
        let _ = writeln!(out, "{}", f.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
    }
    out
}

/// RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does
/// not run a candidate-supplied cell as a formula.
fn csv_field(s: &str) -> String {
    let s = crate::untrusted::printable(s);
    let s = if s.starts_with(['=', '+', '-', '@', '\t']) {
        format!("'{s}")
    } else {
        s
    };
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Per criterion: how often graders kept the draft's score, and how often two graders agree.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CriterionMetrics {
    pub criterion: String,
    /// Final reviews that scored it with a draft to compare against.
    pub with_draft: usize,
    /// Of those, how many kept the draft's score.
    pub kept_draft: usize,
    pub kept_rate: Option<f64>,
    /// Pairs of final reviews of the same submission by different graders.
    pub pairs: usize,
    /// Pairs with the same score.
    pub exact: usize,
    /// Pairs at most one level apart.
    pub within_one: usize,
    pub agreement: Option<f64>,
}

/// `n / d` rounded to two places (`None` when `d` is 0).
fn rate(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64 * 100.0).round() / 100.0)
}

/// The hiring lead's metrics over a cohort's final reviews.
pub fn metrics(rubric: &Rubric, reviews: &[Review]) -> Vec<CriterionMetrics> {
    let finals: Vec<&Review> = reviews.iter().filter(|r| r.status == ReviewStatus::Final).collect();
    rubric
        .criteria
        .iter()
        .map(|c| {
            let level = |s: u32| c.level_index(s).map(|i| i as i64);
            let (mut with_draft, mut kept) = (0, 0);
            for r in &finals {
                if let Some(x) = r.scores.get(&c.id) {
                    if let (Some(s), Some(d)) = (x.score, x.draft_score) {
                        with_draft += 1;
                        kept += usize::from(s == d);
                    }
                }
            }
            let (mut pairs, mut exact, mut within_one) = (0, 0, 0);
            for (i, a) in finals.iter().enumerate() {
                for b in &finals[i + 1..] {
                    if a.submission_id != b.submission_id || a.grader == b.grader {
                        continue;
                    }
                    let score = |r: &Review| r.scores.get(&c.id).and_then(|x| x.score).and_then(level);
                    if let (Some(x), Some(y)) = (score(a), score(b)) {
                        pairs += 1;
                        exact += usize::from(x == y);
                        within_one += usize::from((x - y).abs() <= 1);
                    }
                }
            }
            CriterionMetrics {
                criterion: c.id.clone(),
                with_draft,
                kept_draft: kept,
                kept_rate: rate(kept, with_draft),
                pairs,
                exact,
                within_one,
                agreement: rate(exact, pairs),
            }
        })
        .collect()
}

/// Per checklist item: how often graders kept the draft's answer, and which way they changed it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ItemMetrics {
    pub criterion: String,
    pub item: String,
    /// `check` or `ask`.
    pub kind: &'static str,
    /// Final reviews that answered the item with a draft answer to compare against.
    pub with_draft: usize,
    /// Of those, how many kept the draft's answer.
    pub kept: usize,
    pub kept_rate: Option<f64>,
    /// Graders ticked it where the draft had not.
    pub to_met: usize,
    /// Graders unticked it where the draft had ticked it.
    pub to_unmet: usize,
}

impl ItemMetrics {
    /// How many times graders changed the draft's answer.
    pub fn changed(&self) -> usize {
        self.to_met + self.to_unmet
    }
}

/// Per-item agreement between the drafts and the graders over a cohort's final reviews, in
/// rubric order (sort by [`ItemMetrics::changed`] for the items graders change most).
pub fn item_metrics(rubric: &Rubric, reviews: &[Review]) -> Vec<ItemMetrics> {
    let finals: Vec<&Review> = reviews.iter().filter(|r| r.status == ReviewStatus::Final).collect();
    let mut out = Vec::new();
    for c in &rubric.criteria {
        for i in &c.items {
            let mut m = ItemMetrics {
                criterion: c.id.clone(),
                item: i.id.clone(),
                kind: i.decide.kind(),
                with_draft: 0,
                kept: 0,
                kept_rate: None,
                to_met: 0,
                to_unmet: 0,
            };
            for r in &finals {
                let Some(x) = r.scores.get(&c.id).and_then(|x| x.items.get(&i.id)) else {
                    continue;
                };
                let Some(draft) = x.draft_met else { continue };
                m.with_draft += 1;
                match (draft, x.met) {
                    (d, g) if d == g => m.kept += 1,
                    (false, true) => m.to_met += 1,
                    _ => m.to_unmet += 1,
                }
            }
            m.kept_rate = rate(m.kept, m.with_draft);
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn rubric() -> Rubric {
        Rubric::parse(
            Path::new("r.toml"),
            r#"name = "r"
[[criterion]]
id = "a"
title = "A"
description = "d"
weight = 3.0
level = [{ score = 1, descriptor = "x" }, { score = 2, descriptor = "y" }, { score = 3, descriptor = "z" }]
[[criterion]]
id = "b"
title = "B"
description = "d"
weight = 1.0
level = [{ score = 0, descriptor = "no" }, { score = 1, descriptor = "yes" }]
"#,
        )
        .unwrap()
    }

    fn review(sub: i64, grader: &str, a: Option<u32>, b: Option<u32>, draft_a: Option<u32>) -> Review {
        let mut scores = BTreeMap::new();
        scores.insert(
            "a".to_string(),
            CriterionReview {
                score: a,
                draft_score: draft_a,
                ..Default::default()
            },
        );
        scores.insert(
            "b".to_string(),
            CriterionReview {
                score: b,
                ..Default::default()
            },
        );
        Review {
            id: 0,
            submission_id: sub,
            grader: grader.into(),
            status: ReviewStatus::Final,
            version: 1,
            scores,
            comment: String::new(),
            updated_at: String::new(),
            finalized_at: Some("2026-11-23T10:00:00Z".into()),
        }
    }

    #[test]
    fn a_review_is_final_only_when_every_criterion_has_one_of_its_levels() {
        let r = rubric();
        assert!(final_problems(&r, &review(1, "g", Some(3), Some(1), None).scores).is_empty());
        let p = final_problems(&r, &review(1, "g", None, Some(5), None).scores);
        assert_eq!(p, ["A is not scored", "B: 5 is not one of its levels"]);
    }

    #[test]
    fn totals_weight_criteria_over_their_levels() {
        // a: 2 of 1..3 → 0.5 × 3; b: 1 of 0..1 → 1 × 1; (1.5 + 1) / 4 = 62.5
        assert_eq!(
            total(&rubric(), &review(1, "g", Some(2), Some(1), None).scores),
            Some(62.5)
        );
    }

    #[test]
    fn metrics_count_kept_drafts_and_agreement_between_graders() {
        let reviews = [
            review(1, "ann", Some(3), Some(1), Some(3)),
            review(1, "bob", Some(2), Some(1), Some(3)),
            review(2, "ann", Some(1), Some(0), Some(1)),
        ];
        let m = metrics(&rubric(), &reviews);
        assert_eq!((m[0].with_draft, m[0].kept_draft, m[0].kept_rate), (3, 2, Some(0.67)));
        assert_eq!((m[0].pairs, m[0].exact, m[0].within_one), (1, 0, 1));
        assert_eq!((m[1].pairs, m[1].exact, m[1].agreement), (1, 1, Some(1.0)));
    }

    /// A checklist criterion `c` (levels 1–3, `levels = "count"`) with a check and a question.
    fn checklist() -> Rubric {
        Rubric::parse(
            Path::new("r.toml"),
            r#"name = "r"
[[criterion]]
id = "c"
title = "C"
description = "d"
weight = 1.0
level = [{ score = 1, descriptor = "x" }, { score = 2, descriptor = "y" }, { score = 3, descriptor = "z" }]
[[criterion.item]]
id = "ci"
text = "CI runs the tests."
check = "ci_config"
[[criterion.item]]
id = "metric"
text = "The README states the success metric."
ask = "Does the README state how success is measured?"
from = ["readme"]
"#,
        )
        .unwrap()
    }

    fn ticked(score: Option<u32>, comment: &str, items: &[(&str, bool, Option<bool>)]) -> CriterionReview {
        CriterionReview {
            score,
            comment: comment.into(),
            items: items
                .iter()
                .map(|(id, met, draft_met)| {
                    (
                        id.to_string(),
                        ItemReview {
                            met: *met,
                            draft_met: *draft_met,
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    fn final_review(sub: i64, grader: &str, c: CriterionReview) -> Review {
        Review {
            scores: BTreeMap::from([("c".to_string(), c)]),
            ..review(sub, grader, None, None, None)
        }
    }

    #[test]
    fn a_level_other_than_the_ticked_items_give_needs_a_note() {
        let r = checklist();
        let c = &r.criteria[0];
        let both = ticked(Some(3), "", &[("ci", true, None), ("metric", true, None)]);
        assert_eq!(items_level(c, &both), Some(3), "1 + two items met");
        assert!(override_problems(&r, &BTreeMap::from([("c".into(), both)])).is_empty());
        let lowered = ticked(Some(1), "", &[("ci", true, None), ("metric", true, None)]);
        assert_eq!(
            override_problems(&r, &BTreeMap::from([("c".into(), lowered)])),
            ["C: level 1 overrides the level its ticked items give (3): say why in your note"]
        );
        let explained = ticked(
            Some(1),
            "the CI job never ran",
            &[("ci", true, None), ("metric", true, None)],
        );
        assert!(override_problems(&r, &BTreeMap::from([("c".into(), explained)])).is_empty());
        // A review saved before the criterion had items is not an override.
        assert_eq!(items_level(c, &ticked(Some(1), "", &[])), None);
    }

    #[test]
    fn item_metrics_count_kept_answers_and_which_way_graders_changed_them() {
        let r = checklist();
        let reviews = [
            final_review(
                1,
                "ann",
                ticked(Some(3), "", &[("ci", true, Some(true)), ("metric", true, Some(false))]),
            ),
            final_review(
                2,
                "ann",
                ticked(
                    Some(1),
                    "",
                    &[("ci", false, Some(true)), ("metric", false, Some(false))],
                ),
            ),
            final_review(
                3,
                "ann",
                ticked(Some(2), "", &[("ci", true, None), ("metric", true, Some(false))]),
            ),
            // Open reviews do not count.
            Review {
                status: ReviewStatus::Open,
                ..final_review(4, "bob", ticked(None, "", &[("metric", false, Some(true))]))
            },
        ];
        let m = item_metrics(&r, &reviews);
        assert_eq!((m[0].item.as_str(), m[0].kind), ("ci", "check"));
        assert_eq!((m[0].with_draft, m[0].kept, m[0].to_met, m[0].to_unmet), (2, 1, 0, 1));
        assert_eq!((m[1].item.as_str(), m[1].kind), ("metric", "ask"));
        assert_eq!((m[1].with_draft, m[1].kept, m[1].to_met, m[1].to_unmet), (3, 1, 2, 0));
        assert_eq!((m[1].kept_rate, m[1].changed()), (Some(0.33), 2));
    }

    #[test]
    fn exports_carry_the_ticked_items_and_the_approved_feedback() {
        let r = checklist();
        let sub = SubmissionRecord {
            id: 1,
            cohort_id: 1,
            candidate: "c-1".into(),
            anon_id: "s-1".into(),
            repo: "/r".into(),
            git_ref: None,
            commit: None,
            status: crate::submission::SubmissionStatus::Done,
            outcome: None,
        };
        let mut c = ticked(Some(2), "", &[("ci", true, Some(true)), ("metric", false, Some(true))]);
        c.feedback = "State the metric.".into();
        let rows = export_rows(&r, &[sub], &[final_review(1, "ann", c)], false);
        assert_eq!(
            rows[0].items["c"],
            BTreeMap::from([("ci".into(), true), ("metric".into(), false)])
        );
        assert_eq!(rows[0].feedback["c"], "State the metric.");
        let csv = export_csv(&r, &rows, false);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "anon_id,grader,finalized_at,total,c,c.ci,c.metric");
        assert_eq!(lines[1], "s-1,ann,2026-11-23T10:00:00Z,50.0,2,1,0");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("\t=cmd()"), "'\t=cmd()");
        assert_eq!(csv_field("\u{1b}[2Jnote\r"), "[2Jnote");
    }

    fn scored(score: u32, items: &[(&str, bool, Option<bool>)], feedback: &str) -> BTreeMap<String, CriterionReview> {
        let items = items
            .iter()
            .map(|(id, met, draft_met)| {
                (
                    id.to_string(),
                    ItemReview {
                        met: *met,
                        draft_met: *draft_met,
                    },
                )
            })
            .collect();
        BTreeMap::from([(
            "framing".to_string(),
            CriterionReview {
                score: Some(score),
                items,
                feedback: feedback.into(),
                ..Default::default()
            },
        )])
    }

    #[test]
    fn the_audit_trail_names_each_item_a_save_ticks_or_unticks() {
        // First save: items are compared with the draft's answers.
        let first = scored(
            2,
            &[("metric", true, Some(false)), ("scope", false, Some(false))],
            "draft text",
        );
        let c = review_changes(None, &first);
        assert_eq!(
            c[0]["items"],
            serde_json::json!({ "metric": { "from": false, "to": true } })
        );
        assert_eq!(c[0]["feedback"], "draft text");
        // A later save: items are compared with the stored review; an unchanged feedback is not named.
        let second = scored(
            1,
            &[("metric", false, Some(false)), ("scope", false, Some(false))],
            "draft text",
        );
        let c = review_changes(Some(&first), &second);
        assert_eq!((c[0]["from"].as_u64(), c[0]["to"].as_u64()), (Some(2), Some(1)));
        assert_eq!(
            c[0]["items"],
            serde_json::json!({ "metric": { "from": true, "to": false } })
        );
        assert!(c[0].get("feedback").is_none());
        // Nothing changed, nothing recorded.
        assert!(review_changes(Some(&second), &second).is_empty());
    }
}
