//! Feedback to candidates, after sign-off (`assay feedback`): for each submission whose review
//! a grader finalized, the public rubric with each checklist item as the grader ticked it, the
//! grader-approved feedback text per criterion, and the reproducibility report.
//!
//! What a candidate never gets from here: grader guidelines, scores, ranks, other candidates,
//! the hidden tests' results, or any text no grader approved (a model's draft reaches a
//! candidate only as the feedback text a grader saved in a review they then finalized). A
//! submission without a final review gets nothing, and the command says so.
//!
//! Pure: [`signed_off`] and [`criteria`] read what the store gave them; the command's I/O lives
//! in [`write_cohort`].

use std::path::{Path, PathBuf};

use crate::report::{FeedbackCriterion, FeedbackItem};
use crate::review::{Review, ReviewStatus};
use crate::rubric::Rubric;
use crate::store::{Store, StoreError};

/// The final review a candidate's feedback comes from: the most recently finalized one (when
/// two graders both finalized, the later sign-off stands, as in an export's latest row).
pub fn signed_off(reviews: &[Review]) -> Option<&Review> {
    reviews
        .iter()
        .filter(|r| r.status == ReviewStatus::Final)
        .max_by(|a, b| a.finalized_at.cmp(&b.finalized_at).then(a.id.cmp(&b.id)))
}

/// The rubric's criteria with the final review's ticks and feedback, in rubric order. Only
/// public texts: titles, descriptions, item texts; never guidelines or levels.
pub fn criteria(rubric: &Rubric, review: &Review) -> Vec<FeedbackCriterion> {
    rubric
        .criteria
        .iter()
        .map(|c| {
            let r = review.scores.get(&c.id);
            let items = match r.filter(|r| !r.items.is_empty()) {
                Some(r) => c
                    .items
                    .iter()
                    .map(|i| FeedbackItem {
                        text: i.text.clone(),
                        met: r.items.get(&i.id).is_some_and(|x| x.met),
                    })
                    .collect(),
                None => vec![],
            };
            FeedbackCriterion {
                title: c.title.clone(),
                description: c.description.clone(),
                items,
                feedback: r.map(|r| r.feedback.trim().to_string()).unwrap_or_default(),
            }
        })
        .collect()
}

/// Why feedback could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("cohort {0} was graded before rubrics were stored with it: run `assay grade` on it again")]
    NoRubric(String),
}

/// What [`write_cohort`] did for one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The HTML and Markdown reports written.
    Written { html: PathBuf, markdown: PathBuf },
    /// No grader finalized a review of it: nothing written.
    NotFinal,
}

/// Writes the feedback reports of `cohort`'s submissions (of `candidate` only, when given)
/// into `out` as `CANDIDATE.feedback.html` and `CANDIDATE.feedback.md`; returns each
/// submission's candidate id and what happened, in the cohort's order.
pub async fn write_cohort(
    store: &dyn Store,
    cohort: &crate::store::CohortRecord,
    candidate: Option<&str>,
    out: &Path,
) -> Result<Vec<(String, Outcome)>, FeedbackError> {
    let rubric = cohort
        .rubric()
        .ok_or_else(|| FeedbackError::NoRubric(cohort.name.clone()))?;
    let mut done = Vec::new();
    for rec in store.submissions(cohort.id).await? {
        if candidate.is_some_and(|c| c != rec.candidate) {
            continue;
        }
        let reviews = store.reviews(rec.id).await?;
        let Some(review) = signed_off(&reviews) else {
            done.push((rec.candidate.clone(), Outcome::NotFinal));
            continue;
        };
        let (_, detail) = crate::results::view(store, &rec).await?;
        let doc = crate::report::Feedback {
            assignment: &cohort.name,
            candidate: &rec.candidate,
            commit: rec.commit.as_deref(),
            criteria: criteria(&rubric, review),
            detail: &detail,
        };
        let write = |name: String, text: String| -> Result<PathBuf, FeedbackError> {
            std::fs::create_dir_all(out).map_err(|source| crate::report::ReportError::Write {
                path: out.display().to_string(),
                source,
            })?;
            let path = out.join(name);
            std::fs::write(&path, text).map_err(|source| crate::report::ReportError::Write {
                path: path.display().to_string(),
                source,
            })?;
            Ok(path)
        };
        let html = write(
            format!("{}.feedback.html", rec.candidate),
            crate::report::render_feedback(&doc)?,
        )?;
        let markdown = write(
            format!("{}.feedback.md", rec.candidate),
            crate::report::feedback_markdown(&doc),
        )?;
        done.push((rec.candidate.clone(), Outcome::Written { html, markdown }));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::review::{CriterionReview, ItemReview};

    fn rubric() -> Rubric {
        Rubric::parse(
            Path::new("r.toml"),
            r#"name = "r"
[[criterion]]
id = "framing"
title = "Problem framing"
description = "States the goal."
guidelines = "SECRET: be strict with juniors"
weight = 1.0
level = [{ score = 1, descriptor = "x" }, { score = 2, descriptor = "y" }, { score = 3, descriptor = "z" }]
[[criterion.item]]
id = "metric"
text = "The README states the success metric."
ask = "Does the README state how success is measured?"
from = ["readme"]
[[criterion.item]]
id = "scope"
text = "The README says what is out of scope."
ask = "Does the README say what is out of scope?"
from = ["readme"]
[[criterion]]
id = "correctness"
title = "Correctness"
description = "The tests pass."
weight = 1.0
level = [{ score = 0, descriptor = "no" }, { score = 1, descriptor = "yes" }]
"#,
        )
        .unwrap()
    }

    fn review(id: i64, grader: &str, status: ReviewStatus, finalized_at: Option<&str>) -> Review {
        let framing = CriterionReview {
            score: Some(2),
            comment: "grader-only note".into(),
            draft_score: Some(3),
            items: BTreeMap::from([
                (
                    "metric".to_string(),
                    ItemReview {
                        met: true,
                        draft_met: Some(true),
                    },
                ),
                (
                    "scope".to_string(),
                    ItemReview {
                        met: false,
                        draft_met: Some(true),
                    },
                ),
            ]),
            feedback: format!(" Say what is out of scope ({grader}). "),
        };
        Review {
            id,
            submission_id: 1,
            grader: grader.into(),
            status,
            version: 1,
            scores: BTreeMap::from([("framing".to_string(), framing)]),
            comment: String::new(),
            updated_at: String::new(),
            finalized_at: finalized_at.map(str::to_string),
        }
    }

    #[test]
    fn only_a_finalized_review_signs_feedback_off_and_the_latest_stands() {
        let open = review(1, "ann", ReviewStatus::Open, None);
        assert!(signed_off(std::slice::from_ref(&open)).is_none());
        let early = review(2, "bob", ReviewStatus::Final, Some("2026-12-01T10:00:00Z"));
        let late = review(3, "cy", ReviewStatus::Final, Some("2026-12-02T10:00:00Z"));
        assert_eq!(signed_off(&[late.clone(), open, early]).map(|r| r.id), Some(late.id));
    }

    #[test]
    fn the_candidate_sees_public_texts_the_grader_ticks_and_the_approved_feedback_only() {
        let c = criteria(&rubric(), &review(1, "ann", ReviewStatus::Final, Some("t")));
        assert_eq!(c[0].title, "Problem framing");
        assert_eq!(
            c[0].items,
            [
                FeedbackItem {
                    text: "The README states the success metric.".into(),
                    met: true
                },
                FeedbackItem {
                    text: "The README says what is out of scope.".into(),
                    met: false
                }
            ]
        );
        assert_eq!(c[0].feedback, "Say what is out of scope (ann).");
        // A criterion the review did not cover: no items, no text.
        assert_eq!((c[1].items.len(), c[1].feedback.as_str()), (0, ""));
        let all = serde_json::to_string(&c).unwrap();
        assert!(!all.contains("SECRET"), "guidelines never reach a candidate");
        assert!(!all.contains("grader-only note"), "the grader's note is not feedback");
    }
}
