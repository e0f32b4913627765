//! Evidence items: what drafts and graders cite.
//!
//! Every item has an id that is stable for the same input: a letter for the
//! stage that found it (`H` history, later `T` tests, `R` reproducibility) and a
//! number in a fixed order. Texts are bounded, because they go into prompts
//! and reports.

use serde::{Deserialize, Serialize};

use crate::git::HistoryReport;

/// Longest text an item may carry, in characters.
pub const MAX_TEXT: usize = 500;

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    /// Stable id, such as `H3`.
    pub id: String,
    /// Stable snake_case kind, such as `single_dump`.
    pub kind: String,
    /// Where it comes from: `commit 1a2b3c4`, `file README.md:12`, `history`.
    pub source: String,
    /// One line for humans (at most [`MAX_TEXT`] characters).
    pub text: String,
}

/// Truncates `text` to at most `max` characters, marking the cut.
pub fn bound(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Evidence items from a history report, one per signal.
pub fn from_history(report: &HistoryReport) -> Vec<EvidenceItem> {
    report
        .signals
        .iter()
        .map(|s| EvidenceItem {
            id: s.id.clone(),
            kind: s.kind.clone(),
            source: match s.commits.as_slice() {
                [] => "history".to_string(),
                [one] => format!("commit {}", &one[..one.len().min(7)]),
                many => format!(
                    "commits {}",
                    many.iter().map(|c| &c[..c.len().min(7)]).collect::<Vec<_>>().join(" ")
                ),
            },
            text: bound(&s.description, MAX_TEXT),
        })
        .collect()
}

/// Priority of an item when the budget forces cuts (lower is kept first).
pub fn priority(item: &EvidenceItem) -> u32 {
    let informative_section = |t: &str| {
        let t = t.to_ascii_lowercase();
        [
            "decision", "trade", "result", "limit", "next", "assum", "metric", "approach", "why", "test", "setup",
            "install",
        ]
        .iter()
        .any(|k| t.contains(k))
    };
    match item.id.chars().next() {
        Some('I') => 0,
        Some('T') => 1,
        Some('R') => 2,
        Some('H') => 3,
        Some('D') if informative_section(&item.text) || item.id == "D1" => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_marks_the_cut() {
        assert_eq!(bound("abcdef", 4), "abc…");
        assert_eq!(bound("abc", 4), "abc");
    }
}
