//! The pages: cohorts, the review queue, the packet with its review form, metrics and the
//! blind CSV export.

use super::*;

#[derive(Serialize)]
pub(super) struct CohortRow {
    pub(super) name: String,
    pub(super) href: String,
    pub(super) top: usize,
    pub(super) graded_with: Option<String>,
}

pub(super) async fn cohorts_page(State(app): State<Arc<App>>, Signed(session): Signed) -> Result<Response, WebError> {
    let rows: Vec<CohortRow> = app
        .store
        .cohorts()
        .await?
        .into_iter()
        .map(|c| CohortRow {
            href: format!("/c/{}", seg(&c.name)),
            top: c.top(),
            graded_with: c.rubric().map(|r| r.name),
            name: c.name,
        })
        .collect();
    let mut ctx = app.base_context(Some(&session));
    ctx.insert("cohorts", &rows);
    Ok(Html(app.render("cohorts.html", &ctx)?).into_response())
}

#[derive(Deserialize)]
pub(super) struct QueueQuery {
    pub(super) order: Option<String>,
}

#[derive(Serialize)]
pub(super) struct QueueRow {
    pub(super) rank: Option<usize>,
    pub(super) label: String,
    pub(super) href: String,
    pub(super) total: Option<f64>,
    pub(super) confidence: f64,
    pub(super) reasons: Vec<&'static str>,
    pub(super) tie: bool,
    pub(super) doubts: usize,
    /// The signed-in grader's review: none, open or final.
    pub(super) mine: &'static str,
    /// Final reviews by other graders.
    pub(super) others_final: usize,
}

pub(super) async fn queue_page(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path(cohort): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let reviews = app.store.cohort_reviews(view.record.id).await?;
    let mut status: HashMap<i64, (&'static str, usize)> = HashMap::new();
    for r in &reviews {
        let e = status.entry(r.submission_id).or_insert(("none", 0));
        if r.grader == session.grader {
            e.0 = r.status.as_str();
        } else if r.status == ReviewStatus::Final {
            e.1 += 1;
        }
    }
    let random = q.order.as_deref() == Some("random");
    let base = format!("/c/{}", seg(&cohort));
    let row = |t: &crate::triage::Triaged| {
        let rec = view.by_anon.get(&t.anon_id).map(|&i| &view.records[i]);
        let (mine, others_final) = rec.and_then(|r| status.get(&r.id)).copied().unwrap_or(("none", 0));
        QueueRow {
            rank: t.rank,
            label: if app.options.blind {
                t.anon_id.clone()
            } else {
                t.candidate.clone()
            },
            href: format!("{base}/s/{}", seg(&t.anon_id)),
            total: t.total,
            confidence: t.confidence,
            reasons: t.queued.iter().map(|r| r.as_str()).collect(),
            tie: t.tie,
            doubts: t.doubts.len(),
            mine,
            others_final,
        }
    };
    let mut queued: Vec<QueueRow> = view.triage.queue().map(row).collect();
    let rest: Vec<QueueRow> = view
        .triage
        .submissions
        .iter()
        .filter(|t| t.queued.is_empty())
        .map(row)
        .collect();
    if random {
        // Per grader and cohort: stable across visits, different between graders, so two
        // graders do not review in the same order (and anchor on the same first packets).
        let key = |r: &QueueRow| Sha256::digest(format!("{}\n{}\n{}", session.grader, cohort, r.href));
        queued.sort_by_cached_key(key);
    }
    let mut ctx = app.base_context(Some(&session));
    ctx.insert("cohort", &cohort);
    ctx.insert("base", &base);
    ctx.insert("top_k", &view.triage.top_k);
    ctx.insert("random", &random);
    ctx.insert("queued", &queued);
    ctx.insert("rest", &rest);
    ctx.insert(
        "finals",
        &reviews.iter().filter(|r| r.status == ReviewStatus::Final).count(),
    );
    let ctx = app.shown(&view, ctx);
    Ok(Html(app.render("queue.html", &ctx)?).into_response())
}

#[derive(Deserialize)]
pub(super) struct PacketQuery {
    pub(super) saved: Option<String>,
}

pub(super) async fn packet_page(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path((cohort, anon)): Path<(String, String)>,
    Query(q): Query<PacketQuery>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let rec = submission(&view, &anon)?;
    let reviews = app.store.reviews(rec.id).await?;
    let mine = reviews.iter().find(|r| r.grader == session.grader);
    let banner = match q.saved.as_deref() {
        Some("final") => Some(Banner {
            kind: "ok",
            title: "Review finalized.".into(),
            lines: vec![],
        }),
        Some(_) => Some(Banner {
            kind: "ok",
            title: "Review saved.".into(),
            lines: vec![],
        }),
        None => None,
    };
    let state = PacketState {
        input: None,
        mine,
        theirs: None,
        banner,
    };
    let page = packet_html(&app, &session, &view, rec, &reviews, state).await?;
    Ok(Html(page).into_response())
}

pub(super) fn submission<'a>(view: &'a CohortView, anon: &str) -> Result<&'a SubmissionRecord, WebError> {
    view.by_anon
        .get(anon)
        .map(|&i| &view.records[i])
        .ok_or_else(|| WebError::NotFound(format!("no submission {anon:?} in cohort {:?}", view.record.name)))
}

pub(super) async fn packet_html(
    app: &App,
    session: &Session,
    view: &CohortView,
    rec: &SubmissionRecord,
    reviews: &[Review],
    state: PacketState<'_>,
) -> Result<String, WebError> {
    let (summary, detail) = crate::results::view(app.store.as_ref(), rec).await?;
    let t = view.triage.submissions.iter().find(|t| t.anon_id == rec.anon_id);
    let mut ctx = report::packet_context(&view.record.name, &view.rubric, &summary, &detail, t);
    ctx.extend(app.base_context(Some(session)));
    let final_review = state.mine.filter(|r| r.status == ReviewStatus::Final);
    let rows: Vec<FormRow> = view
        .rubric
        .criteria
        .iter()
        .zip(report::criterion_rows(&view.rubric, &summary, t))
        .map(|(c, row)| {
            // Input after a refused save, else the stored review, else the draft.
            // A checklist criterion's note starts empty: its rationale (shown above the form)
            // only restates the items, and the note is where the grader explains an override.
            let draft = CriterionReview {
                score: row.draft_score,
                comment: if c.items.is_empty() {
                    row.rationale.clone()
                } else {
                    String::new()
                },
                draft_score: row.draft_score,
                items: row
                    .items
                    .iter()
                    .map(|i| {
                        (
                            i.id.clone(),
                            ItemReview {
                                met: i.met,
                                draft_met: Some(i.met),
                            },
                        )
                    })
                    .collect(),
                feedback: row.feedback.clone().unwrap_or_default(),
            };
            let mut shown = if let Some(input) = state.input {
                input.scores[&c.id].clone()
            } else if let Some(r) = state.mine {
                r.scores.get(&c.id).cloned().unwrap_or_default()
            } else {
                draft.clone()
            };
            // A review saved before the criterion had items (or before the draft answered
            // them) shows the draft's answers.
            if shown.items.is_empty() {
                shown.items = draft.items.clone();
            }
            let items_level = review::items_level(c, &shown);
            let follows_items = items_level.is_some() && shown.score == items_level;
            let form_items = c
                .items
                .iter()
                .map(|i| FormItem {
                    id: &i.id,
                    text: &i.text,
                    kind: i.decide.kind(),
                    checked: shown.items.get(&i.id).is_some_and(|x| x.met),
                    draft: row.items.iter().find(|r| r.id == i.id).cloned(),
                })
                .collect();
            let score = shown.score;
            FormRow {
                description: &c.description,
                levels: c
                    .levels
                    .iter()
                    .map(|l| LevelRow {
                        score: l.score,
                        descriptor: l.descriptor.clone(),
                        checked: !follows_items && score == Some(l.score),
                    })
                    .collect(),
                unscored: score.is_none(),
                comment: shown.comment,
                form_items,
                items_level,
                follows_items,
                feedback_text: shown.feedback,
                stored: state.theirs.map(|r| {
                    let x = r.scores.get(&c.id).cloned().unwrap_or_default();
                    FormCriterion {
                        score: x.score,
                        comment: x.comment,
                        draft_score: x.draft_score,
                    }
                }),
                row,
            }
        })
        .collect();
    let base_version = match (state.theirs, state.input, state.mine) {
        (Some(r), _, _) => r.version,
        (None, Some(i), _) => i.base,
        (None, None, Some(r)) => r.version,
        _ => 0,
    };
    let comment = match (state.input, state.mine) {
        (Some(i), _) => i.comment.clone(),
        (None, Some(r)) => r.comment.clone(),
        _ => String::new(),
    };
    ctx.insert("form", &rows);
    ctx.insert("base_version", &base_version);
    ctx.insert("overall", &comment);
    ctx.insert("banner", &state.banner);
    ctx.insert("final", &final_review.map(|r| &r.finalized_at));
    ctx.insert(
        "mine",
        &state.mine.map(|r| (r.status.as_str(), r.version, &r.updated_at)),
    );
    let others: Vec<&Review> = reviews.iter().filter(|r| r.grader != session.grader).collect();
    ctx.insert("others", &others.len());
    ctx.insert(
        "others_final",
        &others.iter().filter(|r| r.status == ReviewStatus::Final).count(),
    );
    let cohort_href = format!("/c/{}", seg(&view.record.name));
    ctx.insert("action", &format!("{cohort_href}/s/{}", seg(&rec.anon_id)));
    ctx.insert("cohort_href", &cohort_href);
    ctx.insert(
        "label",
        if app.options.blind {
            &rec.anon_id
        } else {
            &rec.candidate
        },
    );
    ctx.insert("events", &app.store.events(rec.id).await?);
    let mut ctx = app.shown(view, ctx);
    // In blind mode the chart is drawn from the redacted history (its tooltips carry commit
    // messages); otherwise straight from the stored one.
    let history = if app.options.blind {
        ctx.get("h")
            .cloned()
            .and_then(|h| serde_json::from_value::<crate::git::history::HistoryReport>(h).ok())
    } else {
        detail.history
    };
    if let Some(h) = history {
        ctx.insert("timeline_svg", &report::svg::timeline(&h));
    }
    app.render("review.html", &ctx)
}

pub(super) async fn metrics_page(
    State(app): State<Arc<App>>,
    Signed(session): Signed,
    Path(cohort): Path<String>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let reviews = app.store.cohort_reviews(view.record.id).await?;
    let metrics = review::metrics(&view.rubric, &reviews);
    #[derive(Serialize)]
    struct Row<'a> {
        title: &'a str,
        m: &'a review::CriterionMetrics,
        kept_pct: Option<u32>,
        exact_pct: Option<u32>,
        within_pct: Option<u32>,
    }
    let pct = |n: usize, of: usize| (of > 0).then(|| (100.0 * n as f64 / of as f64).round() as u32);
    let rows: Vec<Row> = metrics
        .iter()
        .map(|m| Row {
            title: view
                .rubric
                .criteria
                .iter()
                .find(|c| c.id == m.criterion)
                .map_or(&m.criterion, |c| &c.title),
            kept_pct: pct(m.kept_draft, m.with_draft),
            exact_pct: pct(m.exact, m.pairs),
            within_pct: pct(m.within_one, m.pairs),
            m,
        })
        .collect();
    #[derive(Serialize)]
    struct ItemRow<'a> {
        criterion: &'a str,
        text: &'a str,
        m: &'a review::ItemMetrics,
        kept_pct: Option<u32>,
    }
    let item_metrics = review::item_metrics(&view.rubric, &reviews);
    let items: Vec<ItemRow> = item_metrics
        .iter()
        .map(|m| {
            let c = view.rubric.criteria.iter().find(|c| c.id == m.criterion);
            ItemRow {
                criterion: c.map_or(&m.criterion, |c| &c.title),
                text: c
                    .and_then(|c| c.items.iter().find(|i| i.id == m.item))
                    .map_or(&m.item, |i| &i.text),
                kept_pct: pct(m.kept, m.with_draft),
                m,
            }
        })
        .collect();
    // The items graders change most, most changes first (only those changed at all).
    let mut most_changed: Vec<&ItemRow> = items.iter().filter(|r| r.m.changed() > 0).collect();
    most_changed.sort_by_key(|r| std::cmp::Reverse(r.m.changed()));
    most_changed.truncate(5);
    let finals = reviews.iter().filter(|r| r.status == ReviewStatus::Final).count();
    let mut per_grader: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &reviews {
        let e = per_grader.entry(&r.grader).or_default();
        e.0 += 1;
        e.1 += usize::from(r.status == ReviewStatus::Final);
    }
    let mut ctx = app.base_context(Some(&session));
    ctx.insert("cohort", &cohort);
    ctx.insert("base", &format!("/c/{}", seg(&cohort)));
    ctx.insert("rows", &rows);
    ctx.insert("items", &items);
    ctx.insert("most_changed", &most_changed);
    ctx.insert("reviews", &reviews.len());
    ctx.insert("finals", &finals);
    ctx.insert("graders", &per_grader);
    ctx.insert("submissions", &view.records.len());
    Ok(Html(app.render("metrics.html", &ctx)?).into_response())
}

pub(super) async fn export_csv(
    State(app): State<Arc<App>>,
    _signed: Signed,
    Path(cohort): Path<String>,
) -> Result<Response, WebError> {
    let view = app.view(&cohort).await?;
    let reviews = app.store.cohort_reviews(view.record.id).await?;
    let reveal = !app.options.blind;
    let rows = review::export_rows(&view.rubric, &view.records, &reviews, reveal);
    let csv = review::export_csv(&view.rubric, &rows, reveal);
    let file: String = cohort
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}-final-scores.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}
