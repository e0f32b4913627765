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

mod html;
mod markdown;
pub mod svg;
pub mod text;

pub use self::html::*;
pub use self::markdown::*;

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

/// Renders a report's template; candidate text in it is made [`printable`](crate::untrusted::printable).
fn render(tera: &Tera, template: &'static str, ctx: &Context) -> Result<String, ReportError> {
    tera.render(template, ctx)
        .map(|text| crate::untrusted::printable(&text))
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

fn queue_label(q: QueueReason) -> &'static str {
    match q {
        QueueReason::TopK => "top K",
        QueueReason::TiedAtCutoff => "tied at the cut-off",
        QueueReason::LowConfidence => "low confidence",
        QueueReason::Rerun => "re-run",
    }
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
