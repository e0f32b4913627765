//! Reports: per submission a grader packet (Markdown and HTML) and a candidate report (HTML), and
//! a cohort summary (Markdown and HTML). The HTML files are self-contained (inline CSS and SVG
//! charts from [`svg`], no scripts) and open from disk.
//!
//! Rendering is pure: it takes what the store holds (summaries, history
//! reports) and returns text; writing files is the caller's one I/O step.
//! Templates are compiled into the binary, so a release build needs no files
//! beside it.

use std::path::Path;

use serde::Serialize;
use tera::{Context, Tera};

use crate::git::{FileClass, HistoryReport};
use crate::results::{GradeSummary, SubmissionDetail, SubmissionSummary};
use crate::rubric::Rubric;
use crate::triage::{QueueReason, Triaged};

pub mod svg;
pub mod text;

/// Commits listed in a report's timeline (the newest ones).
const TIMELINE_MAX: usize = 200;

/// Report rendering failures (a template bug, never bad input).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A template failed to render.
    #[error("cannot render report template {template}: {source}")]
    Render {
        /// Template name.
        template: &'static str,
        /// The cause.
        source: tera::Error,
    },
    /// A report file could not be written.
    #[error("cannot write report {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn engine() -> Tera {
    let mut tera = Tera::default();
    tera.add_raw_templates([
        ("submission.md", include_str!("templates/submission.md.tera")),
        ("summary.md", include_str!("templates/summary.md.tera")),
    ])
    .expect("embedded templates parse");
    tera.autoescape_on(Vec::new());
    tera
}

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
fn html_engine() -> &'static Tera {
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

fn render(tera: &Tera, template: &'static str, ctx: &Context) -> Result<String, ReportError> {
    tera.render(template, ctx)
        .map_err(|source| ReportError::Render { template, source })
}

#[derive(Serialize)]
struct LegendEntry {
    name: &'static str,
    colour: &'static str,
}

fn legend() -> Vec<LegendEntry> {
    [FileClass::Source, FileClass::Tests, FileClass::Docs, FileClass::Config]
        .into_iter()
        .map(|c| LegendEntry {
            name: c.as_str(),
            colour: svg::class_colour(c),
        })
        .collect()
}

/// Collapses the blank-line runs that optional template sections leave behind.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct StageRow {
    name: &'static str,
    status: &'static str,
    outcome: String,
    attempt: i64,
    time: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct SessionRow {
    start: String,
    end: String,
    count: usize,
    added: u64,
    removed: u64,
}

#[derive(Serialize)]
struct CommitRow {
    short: String,
    when: String,
    summary: String,
    changes: String,
    flags: String,
}

#[derive(Serialize)]
struct ClassRow {
    name: &'static str,
    files: u64,
}

/// The file name of a candidate's report.
pub fn report_file(candidate: &str) -> String {
    format!("{candidate}.md")
}

/// Renders one submission's Markdown report.
pub fn render_submission(cohort: &str, s: &SubmissionSummary, d: &SubmissionDetail) -> Result<String, ReportError> {
    render(&engine(), "submission.md", &submission_context(cohort, s, d)).map(|t| tidy(&t))
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

/// One criterion as the candidate sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackCriterion {
    pub title: String,
    /// The rubric's public description.
    pub description: String,
    /// The checklist as the grader ticked it (empty: the criterion has no items, or the review
    /// was not done item by item).
    pub items: Vec<FeedbackItem>,
    /// The grader-approved feedback text (empty: the grader left none).
    pub feedback: String,
}

/// One public checklist item and whether the grader found it met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackItem {
    pub text: String,
    pub met: bool,
}

/// A candidate's feedback after sign-off ([`crate::feedback`]): the checklist as the grader
/// ticked it, the approved feedback texts and the reproducibility report.
pub struct Feedback<'a> {
    pub assignment: &'a str,
    pub candidate: &'a str,
    pub commit: Option<&'a str>,
    pub criteria: Vec<FeedbackCriterion>,
    pub detail: &'a SubmissionDetail,
}

/// The feedback report (HTML, self-contained): the candidate report's body under the rubric's
/// checklist and the grader-approved feedback.
pub fn render_feedback(f: &Feedback<'_>) -> Result<String, ReportError> {
    let mut ctx = detail_context(f.candidate, f.commit, f.detail);
    ctx.insert("assignment", f.assignment);
    ctx.insert("criteria", &f.criteria);
    render(html_engine(), "feedback.html", &ctx)
}

/// The feedback report as Markdown.
pub fn feedback_markdown(f: &Feedback<'_>) -> String {
    use std::fmt::Write;
    let mut out = format!("# Feedback on your submission\n\n{} · `{}`", f.assignment, f.candidate);
    if let Some(c) = f.commit {
        let _ = write!(out, " · commit `{}`", c.get(..12).unwrap_or(c));
    }
    out.push_str("\n\nA grader reviewed your work against the public rubric below and approved this feedback.\n");
    for c in &f.criteria {
        let _ = write!(out, "\n## {}\n\n{}\n", c.title, c.description);
        if !c.items.is_empty() {
            out.push('\n');
            for i in &c.items {
                let _ = writeln!(out, "- [{}] {}", if i.met { "x" } else { " " }, i.text);
            }
        }
        if !c.feedback.is_empty() {
            let _ = write!(out, "\n{}\n", c.feedback);
        }
    }
    out.push_str("\n## Reproducibility report\n\n");
    let d = f.detail;
    if let Some(r) = &d.repro {
        let _ = writeln!(out, "- badge: **{:?}** — {}", r.badge.level, r.badge.reason);
    }
    if let Some(sb) = &d.sandbox {
        let _ = writeln!(out, "- runner: {} — {}", sb.runner, sb.outcome);
        for (n, run) in sb.runs.iter().enumerate() {
            let t = &run.report;
            let _ = writeln!(out, "- test run {}: {} — {}", n + 1, run.outcome, t.describe());
        }
        out.push_str(&steps_table(&sb.readme_steps));
    }
    if let Some(r) = &d.repro {
        out.push_str(&findings_table(&r.findings));
    }
    out
}

/// The README steps as a Markdown section (empty when there are none).
fn steps_table(steps: &[crate::sandbox::steps::ReadmeStep]) -> String {
    use std::fmt::Write;
    if steps.is_empty() {
        return String::new();
    }
    let mut out =
        "\n## README steps\n\n| line | command | phase | status | detail |\n|---|---|---|---|---|\n".to_string();
    for st in steps {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            st.line,
            st.command.replace('|', "\\|"),
            st.phase.as_str(),
            st.status.as_str(),
            st.detail.replace('|', "\\|").replace('\n', " ")
        );
    }
    out
}

/// The findings as a Markdown section (empty when there are none).
fn findings_table(findings: &[crate::repro::Finding]) -> String {
    use std::fmt::Write;
    if findings.is_empty() {
        return String::new();
    }
    let mut out = "\n## Findings\n\n| id | severity | kind | finding | fix |\n|---|---|---|---|---|\n".to_string();
    for f in findings {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            f.id,
            f.severity,
            f.kind,
            f.message.replace('|', "\\|"),
            f.fix
        );
    }
    out
}

/// The candidate report's context for a stored submission.
fn detail_context(candidate: &str, commit: Option<&str>, d: &SubmissionDetail) -> Context {
    candidate_context(
        Some(candidate),
        commit,
        d.sandbox.as_ref(),
        d.repro.as_ref().map(|r| &r.badge),
        d.repro.as_ref().map_or(&[][..], |r| &r.findings),
        d.history.as_ref(),
    )
}

fn candidate_context(
    name: Option<&str>,
    commit: Option<&str>,
    sandbox: Option<&crate::sandbox::job::SandboxReport>,
    badge: Option<&crate::repro::Badge>,
    findings: &[crate::repro::Finding],
    history: Option<&HistoryReport>,
) -> Context {
    let mut ctx = Context::new();
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    ctx.insert("name", &name);
    ctx.insert("commit", &commit);
    ctx.insert("sandbox", &sandbox);
    ctx.insert(
        "repro",
        &badge.map(|b| serde_json::json!({ "badge": b, "findings": findings })),
    );
    let failing: Vec<serde_json::Value> = sandbox
        .and_then(|s| s.runs.first())
        .map(|r| {
            r.report
                .cases
                .iter()
                .filter(|c| {
                    c.status != crate::runner::parse::CaseStatus::Passed
                        && c.status != crate::runner::parse::CaseStatus::Skipped
                })
                .take(50)
                .map(|c| serde_json::json!({ "id": c.id, "time": c.time_s.map_or("—".into(), |t| format!("{t:.2}s")) }))
                .collect()
        })
        .unwrap_or_default();
    ctx.insert("failing", &failing);
    ctx.insert("tail", &sandbox.and_then(failing_tail));
    ctx.insert("h", &history);
    if let Some(h) = history {
        ctx.insert("sessions", &h.sessions);
        ctx.insert("timeline_svg", &svg::timeline(h));
        ctx.insert("legend", &legend());
    }
    ctx
}

/// The last 40 lines of stdout and stderr of what failed (the install, else the first test run
/// that did not pass); `None` when everything passed.
fn failing_tail(sb: &crate::sandbox::job::SandboxReport) -> Option<String> {
    use crate::outcome::OutcomeKind;
    let phase = if sb.install.exit_code.is_some_and(|c| c != 0) || sb.runs.is_empty() {
        &sb.install
    } else {
        &sb.runs.iter().find(|r| r.outcome != OutcomeKind::Passed)?.phase
    };
    let tail = |text: &str| {
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let out = format!("{}\n{}", tail(&phase.stdout), tail(&phase.stderr));
    (!out.trim().is_empty()).then_some(out)
}

fn submission_context(cohort: &str, s: &SubmissionSummary, d: &SubmissionDetail) -> Context {
    let mut ctx = Context::new();
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    ctx.insert("legend", &legend());
    ctx.insert("cohort", cohort);
    ctx.insert("s", s);
    let stages: Vec<StageRow> = s
        .stages
        .iter()
        .map(|(stage, st)| StageRow {
            name: stage.as_str(),
            status: st.status.as_str(),
            outcome: st.outcome.map(|o| o.as_str().to_string()).unwrap_or_else(|| "—".into()),
            attempt: st.attempt,
            time: st
                .duration_ms
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "—".into()),
            error: st.error.clone().filter(|e| !e.is_empty()),
        })
        .collect();
    ctx.insert("stages", &stages);
    ctx.insert("export", &d.fetch.as_ref().map(|f| &f.export));
    ctx.insert("sandbox", &d.sandbox);
    ctx.insert("repro", &d.repro);
    ctx.insert("draft", &d.draft);
    ctx.insert("h", &d.history);
    if let Some(h) = &d.history {
        let classes: Vec<ClassRow> = FileClass::ALL
            .iter()
            .filter_map(|c| {
                h.files_by_class.get(c).map(|n| ClassRow {
                    name: c.as_str(),
                    files: *n,
                })
            })
            .collect();
        ctx.insert("classes", &classes);
        let sessions: Vec<SessionRow> = h
            .sessions
            .iter()
            .map(|x| SessionRow {
                start: x.start.format("%Y-%m-%d %H:%M").to_string(),
                end: x.end.format("%H:%M").to_string(),
                count: x.commits.len(),
                added: x.added,
                removed: x.removed,
            })
            .collect();
        ctx.insert("sessions", &sessions);
        let skip = h.commits.len().saturating_sub(TIMELINE_MAX);
        let commits: Vec<CommitRow> = h
            .commits
            .iter()
            .skip(skip)
            .map(|c| CommitRow {
                short: c.sha[..7.min(c.sha.len())].to_string(),
                when: c.author_time.format("%Y-%m-%d %H:%M").to_string(),
                summary: c.summary.replace(['`', '*', '_', '[', ']', '<', '>'], " "),
                changes: c
                    .changes
                    .iter()
                    .map(|(k, v)| format!("{} +{}/−{}", k.as_str(), v.added, v.removed))
                    .collect::<Vec<_>>()
                    .join(", "),
                flags: {
                    let mut f = c
                        .flags
                        .iter()
                        .filter(|f| *f != "conventional")
                        .cloned()
                        .collect::<Vec<_>>();
                    if c.template {
                        f.push("template".into());
                    }
                    if c.merge {
                        f.push("merge".into());
                    }
                    f.join(", ")
                },
            })
            .collect();
        ctx.insert("commits", &commits);
        ctx.insert("commits_left_out", &skip);
    }
    ctx
}

#[derive(Serialize)]
struct SummaryRow {
    candidate: String,
    status: &'static str,
    outcome: String,
    commit: Option<String>,
    commits: String,
    sessions: String,
    signals: String,
    tests: String,
    badge: String,
    file: String,
    draft: String,
}

/// The summary's draft column: the drafted scores' total over the maximum, or why there is none.
fn draft_cell(d: Option<&crate::draft::DraftRecord>) -> String {
    let Some(d) = d else { return "—".into() };
    if !d.valid {
        return "invalid".into();
    }
    let total: u32 = d.drafts.iter().filter_map(|c| c.score).sum();
    let flags = if d
        .drafts
        .iter()
        .any(|c| c.flags.iter().any(|f| f == "injection_in_evidence"))
    {
        " ⚠"
    } else {
        ""
    };
    format!("{total}{flags}")
}

/// Submissions by status, for the summaries' headline.
fn counts(summary: &GradeSummary) -> serde_json::Value {
    let count = |st: &str| summary.submissions.iter().filter(|s| s.status == st).count();
    serde_json::json!({
        "total": summary.submissions.len(),
        "done": count("done"),
        "failed": count("failed"),
        "interrupted": count("interrupted"),
    })
}

/// Renders the cohort summary.
pub fn render_summary(summary: &GradeSummary, details: &[SubmissionDetail]) -> Result<String, ReportError> {
    let mut ctx = Context::new();
    ctx.insert("cohort", &summary.cohort);
    ctx.insert("counts", &counts(summary));
    let rows: Vec<SummaryRow> = summary
        .submissions
        .iter()
        .zip(details)
        .map(|(s, d)| SummaryRow {
            candidate: s.candidate.clone(),
            status: s.status,
            outcome: s.outcome.as_str().to_string(),
            commit: s.commit.as_ref().map(|c| c[..7.min(c.len())].to_string()),
            commits: d.history.as_ref().map_or("—".into(), |h| h.commit_count.to_string()),
            sessions: d.history.as_ref().map_or("—".into(), |h| h.sessions.len().to_string()),
            signals: d.history.as_ref().map_or("—".into(), |h| {
                h.signals
                    .iter()
                    .filter(|x| !matches!(x.kind.as_str(), "work_sessions" | "largest_commit" | "test_growth"))
                    .map(|x| x.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            tests: tests_cell(Some(d)),
            draft: draft_cell(d.draft.as_ref()),
            badge: badge_cell(Some(d)),
            file: report_file(&s.candidate),
        })
        .collect();
    ctx.insert("rows", &rows);
    let ranking = rank_rows(summary, details);
    ctx.insert("ranking", &ranking);
    ctx.insert("top_k", &summary.triage.top_k);
    render(&engine(), "summary.md", &ctx).map(|t| tidy(&t))
}

/// One row of the ranking, for both summaries (the Markdown one ignores `spark` and `packet`).
#[derive(Serialize)]
struct RankRow {
    rank: String,
    tie: bool,
    candidate: String,
    packet: String,
    total: String,
    confidence: String,
    queued: Vec<&'static str>,
    tests: String,
    badge: String,
    spark: String,
    doubts: String,
}

/// First test run's passed/total, or —.
fn tests_cell(d: Option<&SubmissionDetail>) -> String {
    d.and_then(|d| d.sandbox.as_ref())
        .and_then(|x| x.runs.first())
        .map_or("—".into(), |r| format!("{}/{}", r.report.passed, r.report.total()))
}

/// The badge level's name, or —.
fn badge_cell(d: Option<&SubmissionDetail>) -> String {
    d.and_then(|d| d.repro.as_ref())
        .map_or("—".into(), |r| format!("{:?}", r.badge.level).to_lowercase())
}

/// The ranking in triage order; `details` are in `summary.submissions` order.
fn rank_rows(summary: &GradeSummary, details: &[SubmissionDetail]) -> Vec<RankRow> {
    let detail_of = |candidate: &str| {
        summary
            .submissions
            .iter()
            .position(|s| s.candidate == candidate)
            .and_then(|i| details.get(i))
    };
    summary
        .triage
        .submissions
        .iter()
        .map(|t| {
            let d = detail_of(&t.candidate);
            RankRow {
                rank: t.rank.map_or("—".into(), |r| r.to_string()),
                tie: t.tie,
                candidate: t.candidate.clone(),
                packet: packet_file(&t.candidate),
                total: t.total.map_or("—".into(), |v| format!("{v:.1}")),
                confidence: format!("{:.2}", t.confidence),
                queued: t.queued.iter().map(|q| queue_label(*q)).collect(),
                tests: tests_cell(d),
                badge: badge_cell(d),
                spark: d.and_then(|d| d.history.as_ref()).map_or(String::new(), svg::sparkline),
                doubts: t
                    .doubts
                    .iter()
                    .map(|d| d.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct HeatCell {
    score: String,
    colour: String,
    source: &'static str,
}

#[derive(Serialize)]
struct HeatRow {
    candidate: String,
    packet: String,
    cells: Vec<HeatCell>,
}

fn queue_label(q: QueueReason) -> &'static str {
    match q {
        QueueReason::TopK => "top K",
        QueueReason::TiedAtCutoff => "tied at the cut-off",
        QueueReason::LowConfidence => "low confidence",
        QueueReason::Rerun => "re-run",
    }
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

/// The file name of a submission's grader packet.
pub fn packet_file(candidate: &str) -> String {
    format!("{candidate}.html")
}

/// The file name of a submission's candidate report.
pub fn candidate_file(candidate: &str) -> String {
    format!("{candidate}.candidate.html")
}

/// Writes every report and `summary.json` into `out`.
pub fn write_all(
    out: &Path,
    summary: &GradeSummary,
    details: &[SubmissionDetail],
    rubric: &Rubric,
) -> Result<(), ReportError> {
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.display().to_string(),
        source,
    })?;
    for (s, d) in summary.submissions.iter().zip(details) {
        write(&report_file(&s.candidate), &render_submission(&summary.cohort, s, d)?)?;
        let t = summary.triage.submissions.iter().find(|t| t.candidate == s.candidate);
        write(
            &packet_file(&s.candidate),
            &render_packet(&summary.cohort, rubric, s, d, t)?,
        )?;
        write(
            &candidate_file(&s.candidate),
            &render(
                html_engine(),
                "candidate.html",
                &detail_context(&s.candidate, s.commit.as_deref(), d),
            )?,
        )?;
    }
    write("summary.md", &render_summary(summary, details)?)?;
    write("summary.html", &render_summary_html(summary, details, rubric)?)?;
    write(
        "summary.json",
        &serde_json::to_string_pretty(summary).expect("summary serialises"),
    )?;
    Ok(())
}

/// report.md of `assay check`.
pub fn check_markdown(repo: &str, commit: &str, r: &crate::check::CheckReport) -> String {
    use std::fmt::Write;
    let mut out = format!("# assay check\n\n`{}` at `{}`\n\n", crate::git::redact(repo), commit);
    let _ = writeln!(out, "- badge: **{:?}** — {}", r.badge.level, r.badge.reason);
    let t = &r.tests;
    let _ = writeln!(
        out,
        "- outcome: **{}**\n- runner: {}",
        r.outcome,
        r.runner.as_deref().unwrap_or("none")
    );
    let _ = writeln!(out, "- tests: {}", t.describe());
    if !r.flaky.is_empty() {
        let _ = writeln!(out, "- flaky: {}", r.flaky.join(", "));
    }
    out.push_str(&steps_table(&r.readme_steps));
    out.push_str(&findings_table(&r.findings));
    // The end of the output of what failed (or of the first test run), so a
    // candidate can see why without rerunning anything.
    if let Some(sb) = &r.sandbox {
        let (title, phase) = match sb.runs.first() {
            Some(run) => ("first test run", &run.phase),
            None => ("install", &sb.install),
        };
        let tail = |text: &str| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        let _ = write!(
            out,
            "\n## Output of the {title} (last lines)\n\n```\n{}\n{}\n```\n",
            tail(&phase.stdout),
            tail(&phase.stderr)
        );
    }
    if !t.cases.is_empty() {
        out.push_str("\n## Tests\n\n| test | status | time |\n|---|---|---|\n");
        for c in t.cases.iter().take(500) {
            let time = c.time_s.map(|s| format!("{s:.3}s")).unwrap_or_default();
            let _ = writeln!(out, "| `{}` | {:?} | {} |", c.id, c.status, time);
        }
    }
    out
}
