//! The HTML reports (self-contained, autoescaped): the grader packet, the candidate report, the
//! candidate's feedback and the cohort summary with its ranking, histogram and heat map.

use super::*;

/// The HTML report templates (name, source), embedded in the binary. The review UI builds its
/// engine from these and its own, so its pages share the base layout and the packet's evidence.
pub const HTML_TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("templates/base.html.tera")),
    ("packet.html", include_str!("templates/packet.html.tera")),
    (
        "packet_evidence.html",
        include_str!("templates/packet_evidence.html.tera"),
    ),
    ("candidate.html", include_str!("templates/candidate.html.tera")),
    (
        "candidate_body.html",
        include_str!("templates/candidate_body.html.tera"),
    ),
    ("feedback.html", include_str!("templates/feedback.html.tera")),
    ("summary.html", include_str!("templates/summary.html.tera")),
];

/// The HTML templates, autoescaped: every `{{ }}` is HTML-escaped unless marked `safe` (only our
/// own SVG markup is, and [`svg`] escapes the text inside it). Parsed once per process.
pub(super) fn html_engine() -> &'static Tera {
    static ENGINE: std::sync::OnceLock<Tera> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| html_engine_with(&[]))
}

/// An autoescaping engine with the report templates and `extra` ones.
pub fn html_engine_with(extra: &[(&str, &str)]) -> Tera {
    let mut tera = Tera::default();
    tera.add_raw_templates(HTML_TEMPLATES.iter().chain(extra).copied())
        .expect("embedded templates parse");
    tera.autoescape_on(vec![".html"]);
    tera
}

/// One criterion as a packet shows it: the rubric's side, the automated score and the draft.
#[derive(Debug, Clone, Serialize)]
pub struct CriterionRow<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub weight: f64,
    pub guidelines: Option<&'a str>,
    pub automated: Option<u32>,
    pub draft_score: Option<u32>,
    pub model_score: Option<u32>,
    pub evidence: Vec<String>,
    pub rationale: String,
    pub flags: Vec<String>,
    /// A checklist criterion's items as drafted (empty otherwise).
    pub items: Vec<crate::rubric::assess::ItemResult>,
    /// The candidate-facing feedback draft.
    pub feedback: Option<String>,
}

/// The packet's rows, in rubric order.
pub fn criterion_rows<'a>(rubric: &'a Rubric, s: &SubmissionSummary, t: Option<&Triaged>) -> Vec<CriterionRow<'a>> {
    rubric
        .criteria
        .iter()
        .map(|c| {
            let draft = s.drafts.iter().find(|x| x.criterion == c.id);
            CriterionRow {
                id: &c.id,
                title: &c.title,
                weight: c.weight,
                guidelines: c.guidelines.as_deref(),
                automated: t
                    .and_then(|t| t.criteria.iter().find(|x| x.criterion == c.id))
                    .and_then(|x| x.automated),
                draft_score: draft.and_then(|x| x.score),
                model_score: draft.and_then(|x| x.model_score),
                evidence: draft.map(|x| x.evidence.clone()).unwrap_or_default(),
                rationale: draft.map(|x| x.rationale.clone()).unwrap_or_default(),
                flags: draft.map(|x| x.flags.clone()).unwrap_or_default(),
                items: draft.map(|x| x.items.clone()).unwrap_or_default(),
                feedback: draft.and_then(|x| x.feedback.clone()),
            }
        })
        .collect()
}

/// Renders one submission's grader packet (HTML): triage, criteria with drafts and their cited
/// evidence one click away, the history chart, every evidence item, tests and stages.
pub fn render_packet(
    cohort: &str,
    rubric: &Rubric,
    s: &SubmissionSummary,
    d: &SubmissionDetail,
    t: Option<&Triaged>,
) -> Result<String, ReportError> {
    let mut ctx = packet_context(cohort, rubric, s, d, t);
    if let Some(h) = &d.history {
        ctx.insert("timeline_svg", &svg::timeline(h));
    }
    render(html_engine(), "packet.html", &ctx)
}

/// What the packet templates read, but the history chart (`timeline_svg`, drawn by
/// [`svg::timeline`] from the context's `h`, so that a caller may redact the data first).
pub fn packet_context(
    cohort: &str,
    rubric: &Rubric,
    s: &SubmissionSummary,
    d: &SubmissionDetail,
    t: Option<&Triaged>,
) -> Context {
    let mut ctx = submission_context(cohort, s, d);
    ctx.insert("t", &t);
    let criteria = criterion_rows(rubric, s, t);
    ctx.insert("criteria", &criteria);
    ctx
}

/// Renders the candidate's own report (HTML): badge, tests, findings with fixes, the history
/// chart and the tail of the failing phase's output. Nothing for graders only: no drafts, no
/// guidelines, no ranking.
pub fn render_candidate(
    name: Option<&str>,
    commit: Option<&str>,
    sandbox: Option<&crate::sandbox::job::SandboxReport>,
    badge: Option<&crate::repro::Badge>,
    findings: &[crate::repro::Finding],
    history: Option<&HistoryReport>,
) -> Result<String, ReportError> {
    let ctx = candidate_context(name, commit, sandbox, badge, findings, history);
    render(html_engine(), "candidate.html", &ctx)
}

/// The feedback report (HTML, self-contained): the candidate report's body under the rubric's
/// checklist and the grader-approved feedback.
pub fn render_feedback(f: &Feedback<'_>) -> Result<String, ReportError> {
    let mut ctx = detail_context(f.candidate, f.commit, f.detail);
    ctx.insert("assignment", f.assignment);
    ctx.insert("criteria", &f.criteria);
    render(html_engine(), "feedback.html", &ctx)
}

#[derive(Serialize)]
pub(super) struct HeatCell {
    pub(super) score: String,
    pub(super) colour: String,
    pub(super) source: &'static str,
}

#[derive(Serialize)]
pub(super) struct HeatRow {
    pub(super) candidate: String,
    pub(super) packet: String,
    pub(super) cells: Vec<HeatCell>,
}

/// Renders the cohort summary (HTML): the ranking with a commit sparkline per submission, the
/// distribution of totals and a per-criterion heat map.
pub fn render_summary_html(
    summary: &GradeSummary,
    details: &[SubmissionDetail],
    rubric: &Rubric,
) -> Result<String, ReportError> {
    let mut ctx = Context::new();
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    ctx.insert("cohort", &summary.cohort);
    ctx.insert("counts", &counts(summary));
    ctx.insert("top_k", &summary.triage.top_k);
    let ranking = rank_rows(summary, details);
    ctx.insert("ranking", &ranking);
    let totals: Vec<f64> = summary
        .triage
        .submissions
        .iter()
        .filter(|t| t.rank.is_some())
        .filter_map(|t| t.total)
        .collect();
    ctx.insert("histogram", &svg::histogram(&totals));
    ctx.insert("criteria", &rubric.criteria);
    let heat: Vec<HeatRow> = summary
        .triage
        .submissions
        .iter()
        .map(|t| HeatRow {
            candidate: t.candidate.clone(),
            packet: packet_file(&t.candidate),
            cells: rubric
                .criteria
                .iter()
                .map(|c| {
                    let x = t.criteria.iter().find(|x| x.criterion == c.id);
                    let score = x.and_then(|x| x.score);
                    HeatCell {
                        score: score.map_or("—".into(), |v| v.to_string()),
                        colour: score.map_or("transparent".into(), |v| svg::heat(c.scaled(v))),
                        source: match x.map(|x| x.source) {
                            Some(crate::triage::ScoreSource::Draft) => "draft",
                            Some(crate::triage::ScoreSource::Automated) => "automated",
                            _ => "not scored",
                        },
                    }
                })
                .collect(),
        })
        .collect();
    ctx.insert("heat", &heat);
    render(html_engine(), "summary.html", &ctx)
}
