//! The Markdown reports: a submission's (`CANDIDATE.md`), the cohort summary, the candidate's
//! feedback and `assay check`'s report.md; tables written here, text tidied.

use super::*;

/// Collapses the blank-line runs that optional template sections leave behind.
pub(super) fn tidy(text: &str) -> String {
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

/// Renders one submission's Markdown report.
pub fn render_submission(cohort: &str, s: &SubmissionSummary, d: &SubmissionDetail) -> Result<String, ReportError> {
    render(&engine(), "submission.md", &submission_context(cohort, s, d)).map(|t| tidy(&t))
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
    crate::untrusted::printable(&out)
}

/// The README steps as a Markdown section (empty when there are none).
pub(super) fn steps_table(steps: &[crate::sandbox::steps::ReadmeStep]) -> String {
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
pub(super) fn findings_table(findings: &[crate::repro::Finding]) -> String {
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

#[derive(Serialize)]
pub(super) struct SummaryRow {
    pub(super) candidate: String,
    pub(super) status: &'static str,
    pub(super) outcome: String,
    pub(super) commit: Option<String>,
    pub(super) commits: String,
    pub(super) sessions: String,
    pub(super) signals: String,
    pub(super) tests: String,
    pub(super) badge: String,
    pub(super) file: String,
    pub(super) draft: String,
}

/// The summary's draft column: the drafted scores' total over the maximum, or why there is none.
pub(super) fn draft_cell(d: Option<&crate::draft::DraftRecord>) -> String {
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

/// First test run's passed/total, or —.
pub(super) fn tests_cell(d: Option<&SubmissionDetail>) -> String {
    d.and_then(|d| d.sandbox.as_ref())
        .and_then(|x| x.runs.first())
        .map_or("—".into(), |r| format!("{}/{}", r.report.passed, r.report.total()))
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
    crate::untrusted::printable(&out)
}
