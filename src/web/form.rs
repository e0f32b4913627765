//! The review form: parsing what a grader submitted (scores, ticked items, feedback, notes),
//! the level the ticks give or an override with its note, and the save with its conflicts.

use super::*;

/// Longest comment kept per field (characters).
pub(super) const MAX_COMMENT: usize = 10_000;

/// What the review form holds for one criterion.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct FormCriterion {
    pub(super) score: Option<u32>,
    pub(super) comment: String,
    pub(super) draft_score: Option<u32>,
}

/// A review as the form posts it.
#[derive(Debug, Clone, Default)]
pub(super) struct ReviewInput {
    pub(super) csrf: String,
    pub(super) base: i64,
    pub(super) finalize: bool,
    pub(super) scores: BTreeMap<String, CriterionReview>,
    pub(super) comment: String,
}

/// Reads the posted form: per criterion `score:<id>` (a level, `items` for the level its
/// ticked items give, or empty), `comment:<id>`, `draft:<id>`, `feedback:<id>`; per checklist
/// item `item:<criterion>:<item>` (a checkbox, posted only when ticked) and
/// `itemdraft:<criterion>:<item>` (the draft's answer, `1` or `0`); then `comment`, `base`,
/// `action` (save or finalize) and `csrf`.
pub(super) fn parse_review(rubric: &Rubric, fields: &[(String, String)]) -> Result<ReviewInput, String> {
    let mut input = ReviewInput::default();
    for c in &rubric.criteria {
        let items = c.items.iter().map(|i| (i.id.clone(), ItemReview::default())).collect();
        input.scores.insert(
            c.id.clone(),
            CriterionReview {
                items,
                ..Default::default()
            },
        );
    }
    let mut follow_items = Vec::new();
    let clip = |s: &str| s.replace("\r\n", "\n").chars().take(MAX_COMMENT).collect::<String>();
    for (k, v) in fields {
        let v = v.trim();
        match k.as_str() {
            "csrf" => input.csrf = v.to_string(),
            "base" => input.base = v.parse().map_err(|_| format!("base version {v:?} is not a number"))?,
            "action" => input.finalize = v == "finalize",
            "comment" => input.comment = clip(v),
            _ => {
                let Some((kind, rest)) = k.split_once(':') else {
                    continue;
                };
                let (id, item) = match rest.split_once(':') {
                    Some((id, item)) => (id, Some(item)),
                    None => (rest, None),
                };
                let Some(c) = rubric.criteria.iter().find(|c| c.id == id) else {
                    return Err(format!("the rubric has no criterion {id:?}"));
                };
                let entry = input.scores.get_mut(id).expect("every criterion inserted");
                if let Some(item) = item {
                    let Some(x) = entry.items.get_mut(item) else {
                        return Err(format!("{}: the rubric has no item {item:?}", c.title));
                    };
                    match kind {
                        "item" => x.met = true,
                        "itemdraft" => x.draft_met = Some(v == "1"),
                        _ => {}
                    }
                    continue;
                }
                let score = || -> Result<Option<u32>, String> {
                    if v.is_empty() {
                        return Ok(None);
                    }
                    let s: u32 = v
                        .parse()
                        .map_err(|_| format!("{}: score {v:?} is not a number", c.title))?;
                    if !c.levels.iter().any(|l| l.score == s) {
                        return Err(format!("{}: {s} is not one of its levels", c.title));
                    }
                    Ok(Some(s))
                };
                match kind {
                    "score" if v == "items" && !c.items.is_empty() => follow_items.push(c),
                    "score" => entry.score = score()?,
                    "draft" => entry.draft_score = score()?,
                    "comment" => entry.comment = clip(v),
                    "feedback" => entry.feedback = clip(v),
                    _ => {}
                }
            }
        }
    }
    // The level follows the items once every box is read.
    for c in follow_items {
        let entry = input.scores.get_mut(&c.id).expect("every criterion inserted");
        entry.score = review::items_level(c, entry);
    }
    Ok(input)
}

/// One checklist item of the review form.
#[derive(Serialize)]
pub(super) struct FormItem<'a> {
    pub(super) id: &'a str,
    pub(super) text: &'a str,
    pub(super) kind: &'static str,
    /// Whether the box is ticked.
    pub(super) checked: bool,
    /// The draft's answer and its reading (evidence, quote, flags, note), when drafted.
    pub(super) draft: Option<crate::rubric::assess::ItemResult>,
}

#[derive(Serialize)]
pub(super) struct LevelRow {
    pub(super) score: u32,
    pub(super) descriptor: String,
    pub(super) checked: bool,
}

/// A criterion of the review form: the packet's row and what the form holds.
#[derive(Serialize)]
pub(super) struct FormRow<'a> {
    #[serde(flatten)]
    pub(super) row: report::CriterionRow<'a>,
    pub(super) description: &'a str,
    pub(super) levels: Vec<LevelRow>,
    pub(super) unscored: bool,
    pub(super) comment: String,
    /// A checklist criterion's items as the form shows them (empty otherwise).
    pub(super) form_items: Vec<FormItem<'a>>,
    /// The level the ticked items give (checklist criteria).
    pub(super) items_level: Option<u32>,
    /// The score follows the items (no override).
    pub(super) follows_items: bool,
    /// The candidate-facing feedback (the grader's, else the draft's).
    pub(super) feedback_text: String,
    /// What the stored review holds, when a conflict shows it beside the grader's input.
    pub(super) stored: Option<FormCriterion>,
}

/// The banner over the form.
#[derive(Serialize)]
pub(super) struct Banner {
    pub(super) kind: &'static str,
    pub(super) title: String,
    pub(super) lines: Vec<String>,
}

pub(super) struct PacketState<'a> {
    /// What the form shows: the grader's input (after a refused save) or the stored review.
    pub(super) input: Option<&'a ReviewInput>,
    /// The grader's stored review.
    pub(super) mine: Option<&'a Review>,
    /// Another save's review, shown beside the input after a conflict.
    pub(super) theirs: Option<&'a Review>,
    pub(super) banner: Option<Banner>,
}

pub(super) async fn save(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path((cohort, anon)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let rec = submission(&view, &anon)?;
    let input = parse_review(&view.rubric, &fields).map_err(WebError::BadRequest)?;
    if !same(&input.csrf, &session.csrf) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "this form is from another session (signed out or restarted server): nothing was saved; open the packet again",
        ));
    }
    let reviews = app.store.reviews(rec.id).await?;
    let mine = reviews.iter().find(|r| r.grader == session.grader);
    // An override without a note, or a finalize with a criterion unscored: nothing is saved
    // and the page comes back with the grader's input and why.
    let refusal = match review::override_problems(&view.rubric, &input.scores) {
        o if !o.is_empty() => Some((
            "Not saved: a level that overrides the checklist needs a note. Nothing was saved; your input is below.",
            o,
        )),
        _ if input.finalize => Some((
            "Not finalized: every criterion needs a score. Nothing was saved; your input is below.",
            review::final_problems(&view.rubric, &input.scores),
        ))
        .filter(|(_, p)| !p.is_empty()),
        _ => None,
    };
    if let Some((title, lines)) = refusal {
        let state = PacketState {
            input: Some(&input),
            mine,
            theirs: None,
            banner: Some(Banner {
                kind: "error",
                title: title.into(),
                lines,
            }),
        };
        let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page)).into_response());
    }
    let outcome = app
        .store
        .save_review(&ReviewSave {
            submission_id: rec.id,
            grader: &session.grader,
            actor: &session.grader,
            base_version: input.base,
            scores: input.scores.clone(),
            comment: input.comment.clone(),
            finalize: input.finalize,
        })
        .await?;
    let packet = format!("/c/{}/s/{}", seg(&cohort), seg(&anon));
    match outcome {
        SaveOutcome::Saved(r) => Ok(see_other(&format!(
            "{packet}?saved={}",
            if r.status == ReviewStatus::Final { "final" } else { "1" }
        ))),
        SaveOutcome::Conflict(current) => {
            let reviews = app.store.reviews(rec.id).await?;
            let when = current
                .as_ref()
                .map(|r| format!("version {} of {}", r.version, r.updated_at))
                .unwrap_or_default();
            let state = PacketState {
                input: Some(&input),
                mine: current.as_ref(),
                theirs: current.as_ref(),
                banner: Some(Banner {
                    kind: "error",
                    title: format!(
                        "Not saved: this review was saved elsewhere ({when}) since you opened it. Nothing was overwritten."
                    ),
                    lines: vec![
                        "Your input is kept below; what is stored now is shown beside each criterion.".into(),
                        "Save again to replace the stored review with yours.".into(),
                    ],
                }),
            };
            let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
            Ok((StatusCode::CONFLICT, Html(page)).into_response())
        }
        SaveOutcome::AlreadyFinal(r) => {
            let state = PacketState {
                input: Some(&input),
                mine: Some(&r),
                theirs: Some(&r),
                banner: Some(Banner {
                    kind: "error",
                    title: format!(
                        "Not saved: this review was finalized at {} and cannot change.",
                        r.finalized_at.as_deref().unwrap_or("?")
                    ),
                    lines: vec!["Your input is kept below for reference.".into()],
                }),
            };
            let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
            Ok((StatusCode::CONFLICT, Html(page)).into_response())
        }
    }
}
