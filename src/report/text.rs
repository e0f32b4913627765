//! What assay prints on a terminal: the history timeline, the check summary, the grade table,
//! a model's metadata and a submission's drafts. The files it writes are in [`super`].

use crate::git::{FileClass, HistoryReport};
use crate::results::GradeSummary;

/// Commits shown per session in the terminal timeline.
const SESSION_COMMITS_SHOWN: usize = 12;

/// The terminal timeline of `assay history`: sessions, the commits in each and
/// what they changed, then the signals.
pub fn history(repo: &str, h: &HistoryReport) -> String {
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
    crate::untrusted::printable(&out)
}

/// The terminal summary of `assay check`.
pub fn check(r: &crate::check::CheckReport) -> String {
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
    let _ = writeln!(out, "tests: {}", t.describe());
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
    if let Some(d) = r.install.as_ref().filter(|d| !d.ok) {
        let _ = writeln!(
            out,
            "install: failed ({}){}{}",
            d.cause.map_or("unknown cause", |c| c.as_str()),
            d.diagnosis.as_deref().map(|x| format!(" — {x}")).unwrap_or_default(),
            d.fix.as_deref().map(|x| format!("\n    fix: {x}")).unwrap_or_default()
        );
    }
    if !r.readme_steps.is_empty() {
        let _ = writeln!(out, "README steps:");
        for st in &r.readme_steps {
            let _ = writeln!(
                out,
                "  {:<10} line {:<4} {}  — {}",
                st.status.as_str(),
                st.line,
                st.command,
                st.detail
            );
        }
    }
    for f in &r.findings {
        let _ = writeln!(
            out,
            "{} [{}] {}: {}\n    fix: {}",
            f.id, f.severity, f.kind, f.message, f.fix
        );
    }
    crate::untrusted::printable(&out)
}

/// What `assay model info` prints.
pub fn model_info(id: &str, info: &crate::llm::ModelInfo) -> String {
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
    crate::untrusted::printable(&s)
}

/// What `assay draft CANDIDATE` prints.
pub fn draft(
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
        for i in &c.items {
            let mut line = format!("  [{}] {} ({}", if i.met { "x" } else { " " }, i.id, i.kind);
            if !i.evidence.is_empty() {
                let _ = write!(line, " {}", i.evidence.join(", "));
            }
            line.push(')');
            if let Some(q) = &i.quote {
                let _ = write!(line, " \"{q}\"");
            }
            for f in &i.flags {
                let _ = write!(line, " !{f}");
            }
            let _ = writeln!(s, "{line}");
        }
        if let Some(f) = &c.feedback {
            let _ = writeln!(s, "  feedback draft: {f}");
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
    crate::untrusted::printable(&s)
}

/// The table `assay grade` prints: each submission's status, outcome, commit, evidence count,
/// rank, total, confidence and why it is queued for review.
pub fn grade(summary: &GradeSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:<26} {:<9} {:>7} {:>5} {:>6} {:>5}  review",
        "candidate", "status", "outcome", "commit", "signals", "rank", "total", "conf"
    );
    for s in &summary.submissions {
        let commit = s.commit.as_deref().map(|c| &c[..7.min(c.len())]).unwrap_or("—");
        let t = summary.triage.submissions.iter().find(|t| t.candidate == s.candidate);
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:<26} {:<9} {:>7} {:>5} {:>6} {:>5}  {}",
            s.candidate,
            s.status,
            s.outcome.as_str(),
            commit,
            s.evidence.len(),
            t.and_then(|t| t.rank).map_or("—".into(), |r| r.to_string()),
            t.and_then(|t| t.total).map_or("—".into(), |v| format!("{v:.1}")),
            t.map_or("—".into(), |t| format!("{:.2}", t.confidence)),
            t.map_or(String::new(), |t| t
                .queued
                .iter()
                .map(|q| q.as_str())
                .collect::<Vec<_>>()
                .join(","))
        );
    }
    crate::untrusted::printable(&out)
}
