//! Reports: a Markdown file per submission and a cohort summary.
//!
//! Rendering is pure: it takes what the store holds (summaries, history
//! reports) and returns text; writing files is the caller's one I/O step.
//! Templates are compiled into the binary, so a release build needs no files
//! beside it.

use std::path::Path;

use serde::Serialize;
use tera::{Context, Tera};

use crate::git::{FileClass, HistoryReport};
use crate::pipeline::{FetchOutput, GradeSummary, SubmissionSummary};
use crate::triage::QueueReason;

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

/// What one submission's report needs beyond its summary.
#[derive(Debug, Clone, Default)]
pub struct SubmissionDetail {
    /// The fetch stage's output, when done.
    pub fetch: Option<FetchOutput>,
    /// The history report, when done.
    pub history: Option<HistoryReport>,
    /// The sandbox report, when the sandbox stage is done and a runner matched.
    pub sandbox: Option<crate::sandbox::job::SandboxReport>,
    /// The reproducibility report, when done.
    pub repro: Option<crate::repro::ReproReport>,
    /// The model's draft, when the draft stage is done.
    pub draft: Option<crate::draft::DraftRecord>,
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
    let mut ctx = Context::new();
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
    engine()
        .render("submission.md", &ctx)
        .map(|t| tidy(&t))
        .map_err(|source| ReportError::Render {
            template: "submission.md",
            source,
        })
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

#[derive(Serialize)]
struct RankRow {
    rank: String,
    candidate: String,
    total: String,
    confidence: String,
    queued: String,
    doubts: String,
    tie: bool,
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

/// Renders the cohort summary.
pub fn render_summary(summary: &GradeSummary, details: &[SubmissionDetail]) -> Result<String, ReportError> {
    let mut ctx = Context::new();
    ctx.insert("cohort", &summary.cohort);
    let count = |st: &str| summary.submissions.iter().filter(|s| s.status == st).count();
    ctx.insert(
        "counts",
        &serde_json::json!({
            "total": summary.submissions.len(),
            "done": count("done"),
            "failed": count("failed"),
            "interrupted": count("interrupted"),
        }),
    );
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
            tests: d
                .sandbox
                .as_ref()
                .and_then(|x| x.runs.first())
                .map_or("—".into(), |t| format!("{}/{}", t.report.passed, t.report.total())),
            draft: draft_cell(d.draft.as_ref()),
            badge: d
                .repro
                .as_ref()
                .map_or("—".into(), |r| format!("{:?}", r.badge.level).to_lowercase()),
            file: report_file(&s.candidate),
        })
        .collect();
    ctx.insert("rows", &rows);
    let ranking: Vec<RankRow> = summary
        .triage
        .submissions
        .iter()
        .map(|t| RankRow {
            rank: t.rank.map_or("—".into(), |r| r.to_string()),
            candidate: t.candidate.clone(),
            total: t.total.map_or("—".into(), |v| format!("{v:.1}")),
            confidence: format!("{:.2}", t.confidence),
            queued: t
                .queued
                .iter()
                .map(|q| match q {
                    QueueReason::TopK => "top K",
                    QueueReason::TiedAtCutoff => "tied at the cut-off",
                    QueueReason::LowConfidence => "low confidence",
                    QueueReason::Rerun => "re-run",
                })
                .collect::<Vec<_>>()
                .join(", "),
            doubts: t
                .doubts
                .iter()
                .map(|d| d.detail.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            tie: t.tie,
        })
        .collect();
    ctx.insert("ranking", &ranking);
    ctx.insert("top_k", &summary.triage.top_k);
    engine()
        .render("summary.md", &ctx)
        .map(|t| tidy(&t))
        .map_err(|source| ReportError::Render {
            template: "summary.md",
            source,
        })
}

/// Writes every report and `summary.json` into `out`.
pub fn write_all(out: &Path, summary: &GradeSummary, details: &[SubmissionDetail]) -> Result<(), ReportError> {
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
    }
    write("summary.md", &render_summary(summary, details)?)?;
    write(
        "summary.json",
        &serde_json::to_string_pretty(summary).expect("summary serialises"),
    )?;
    Ok(())
}

/// Commits shown per session in the terminal timeline.
const SESSION_COMMITS_SHOWN: usize = 12;

/// The terminal timeline of `assay history`: sessions, the commits in each and
/// what they changed, then the signals.
pub fn history_text(repo: &str, h: &HistoryReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let authors = h.authors.iter().filter(|a| !a.template).count();
    let _ = writeln!(
        out,
        "{repo} @ {} — {} commits, {} author(s), {} work session(s)",
        &h.commit[..7.min(h.commit.len())],
        h.commit_count,
        authors,
        h.sessions.len()
    );
    let files: Vec<String> = FileClass::ALL
        .iter()
        .filter_map(|c| h.files_by_class.get(c).map(|n| format!("{} {n}", c.as_str())))
        .collect();
    let _ = writeln!(out, "files: {}", files.join(", "));
    let by_sha: std::collections::HashMap<&str, &crate::git::history::CommitInfo> =
        h.commits.iter().map(|c| (c.sha.as_str(), c)).collect();
    for (i, s) in h.sessions.iter().enumerate() {
        let _ = writeln!(
            out,
            "\nsession {} · {} → {} · {} commit(s) · +{} −{}",
            i + 1,
            s.start.format("%Y-%m-%d %H:%M"),
            s.end.format("%H:%M"),
            s.commits.len(),
            s.added,
            s.removed
        );
        for sha in s.commits.iter().take(SESSION_COMMITS_SHOWN) {
            let Some(c) = by_sha.get(sha.as_str()) else {
                continue;
            };
            let changes: Vec<String> = c
                .changes
                .iter()
                .map(|(k, v)| format!("{} +{}/-{}", k.as_str(), v.added, v.removed))
                .collect();
            let summary: String = c.summary.chars().take(60).collect();
            let flags: Vec<&str> = c
                .flags
                .iter()
                .map(String::as_str)
                .filter(|f| *f != "conventional")
                .collect();
            let _ = writeln!(
                out,
                "  {} {} {:<60} {}{}",
                &c.sha[..7],
                c.author_time.format("%H:%M"),
                summary,
                changes.join(", "),
                if flags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", flags.join(", "))
                }
            );
        }
        if s.commits.len() > SESSION_COMMITS_SHOWN {
            let _ = writeln!(out, "  … {} more", s.commits.len() - SESSION_COMMITS_SHOWN);
        }
    }
    let template: Vec<&crate::git::history::CommitInfo> = h.commits.iter().filter(|c| c.template).collect();
    if !template.is_empty() {
        let _ = writeln!(out, "\ntemplate (set apart): {} commit(s)", template.len());
    }
    let _ = writeln!(out, "\nsignals");
    for s in &h.signals {
        let _ = writeln!(out, "  {:<4} {:<26} {}", s.id, s.kind, s.description);
    }
    out
}

/// The terminal summary of `assay check`.
pub fn check_text(r: &crate::check::CheckReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "outcome: {}   runner: {}",
        r.outcome,
        r.runner.as_deref().unwrap_or("none")
    );
    let _ = writeln!(out, "badge: {:?} — {}", r.badge.level, r.badge.reason);
    let t = &r.tests;
    let _ = writeln!(
        out,
        "tests: {} passed, {} failed, {} skipped, {} errors",
        t.passed, t.failed, t.skipped, t.errors
    );
    if !r.flaky.is_empty() {
        let _ = writeln!(out, "flaky: {}", r.flaky.join(", "));
    }
    if let Some(h) = &r.hidden {
        let t = &h.tests;
        let _ = writeln!(
            out,
            "hidden tests: {} — {} passed, {} failed, {} errors",
            h.outcome, t.passed, t.failed, t.errors
        );
    }
    for f in &r.findings {
        let _ = writeln!(
            out,
            "{} [{}] {}: {}\n    fix: {}",
            f.id, f.severity, f.kind, f.message, f.fix
        );
    }
    out
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
    let _ = writeln!(
        out,
        "- tests: {} passed, {} failed, {} skipped, {} errors",
        t.passed, t.failed, t.skipped, t.errors
    );
    if !r.flaky.is_empty() {
        let _ = writeln!(out, "- flaky: {}", r.flaky.join(", "));
    }
    if !r.findings.is_empty() {
        out.push_str("\n## Findings\n\n| id | severity | kind | finding | fix |\n|---|---|---|---|---|\n");
        for f in &r.findings {
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
    }
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

/// What `assay model info` prints.
pub fn model_info_text(id: &str, info: &crate::llm::ModelInfo) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let opt = |v: Option<u32>| v.map_or_else(|| "—".to_string(), |v| v.to_string());
    let _ = writeln!(s, "model          {id}");
    let _ = writeln!(s, "file           {}", info.path);
    if let Some(n) = &info.name {
        let _ = writeln!(s, "name           {n}");
    }
    let _ = writeln!(s, "architecture   {}", info.architecture);
    let _ = writeln!(s, "parameters     {:.1} M", info.parameters as f64 / 1e6);
    let types: Vec<String> = info
        .tensor_types
        .iter()
        .map(|t| format!("{} {:.0}%", t.dtype, t.share * 100.0))
        .collect();
    let _ = writeln!(
        s,
        "quantisation   {} ({})",
        info.file_type.as_deref().unwrap_or("—"),
        types.join(", ")
    );
    let _ = writeln!(s, "context        {} tokens", opt(info.context_length));
    let _ = writeln!(
        s,
        "layers/heads   {} layers, {} heads ({} kv), width {}",
        opt(info.block_count),
        opt(info.head_count),
        opt(info.head_count_kv),
        opt(info.embedding_length)
    );
    let _ = writeln!(
        s,
        "tokenizer      {} / {} ({} tokens)",
        info.tokenizer_model.as_deref().unwrap_or("—"),
        info.tokenizer_pre.as_deref().unwrap_or("—"),
        info.vocab_size.map_or_else(|| "—".to_string(), |v| v.to_string())
    );
    let _ = writeln!(
        s,
        "chat template  {}",
        match (info.chat_template, info.architecture.starts_with("gemma")) {
            (true, _) => "present",
            (false, true) => "absent (Gemma's turn format is built in)",
            (false, false) => "absent (ChatML is used)",
        }
    );
    if let Some(l) = &info.license {
        let _ = writeln!(s, "license        {l}");
    }
    s
}

/// What `assay draft CANDIDATE` prints.
pub fn draft_text(
    candidate: &str,
    cohort: &str,
    d: &crate::draft::DraftRecord,
    evidence: &[crate::evidence::EvidenceItem],
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{candidate} ({cohort}) — drafted by {}, for a grader to review",
        d.model
    );
    if d.valid {
        let _ = writeln!(
            s,
            "valid draft; prompt {} tokens, answer {} tokens",
            d.prompt_tokens, d.generated_tokens
        );
    } else {
        let _ = writeln!(s, "INVALID draft: {}", d.reason.as_deref().unwrap_or("unknown reason"));
    }
    for c in &d.drafts {
        let score = c.score.map_or_else(|| "—".to_string(), |v| v.to_string());
        let _ = writeln!(s, "\n{:<16} {score}  [{}]", c.criterion, c.evidence.join(", "));
        if !c.rationale.is_empty() {
            let _ = writeln!(s, "  {}", c.rationale);
        }
        for f in &c.flags {
            let _ = writeln!(s, "  ! {f}");
        }
    }
    let cited: std::collections::BTreeSet<&str> = d
        .drafts
        .iter()
        .flat_map(|c| c.evidence.iter().map(String::as_str))
        .collect();
    let flagged: Vec<&crate::evidence::EvidenceItem> = evidence.iter().filter(|e| e.id.starts_with('I')).collect();
    if !flagged.is_empty() {
        let _ = writeln!(s, "\nscreened (shown to you, not acted on by the model):");
        for e in flagged {
            let _ = writeln!(s, "  {} {}: {}", e.id, e.source, e.text);
        }
    }
    if !cited.is_empty() {
        let _ = writeln!(s, "\ncited evidence:");
        for e in evidence.iter().filter(|e| cited.contains(e.id.as_str())) {
            let _ = writeln!(s, "  {} {} ({}): {}", e.id, e.kind, e.source, e.text);
        }
    }
    s
}
