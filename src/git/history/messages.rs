//! Commit messages: vague, terse, conventional, claiming tests; per-commit message flags.

use super::*;

pub(super) const VAGUE: &[&str] = &[
    "update",
    "updates",
    "updated",
    "fix",
    "fixes",
    "fixed",
    "wip",
    "changes",
    "change",
    "stuff",
    "commit",
    "misc",
    "minor",
    "test",
    "tests",
    "asdf",
    "temp",
    "tmp",
    "save",
    "done",
    "final",
    "edit",
    "edits",
    "more",
    "work",
    "progress",
    "add files via upload",
    "update files",
    "small fix",
    "bugfix",
    "cleanup",
    "refactor",
    "changes made",
    "new",
    "code",
    "files",
    "added",
    "first",
    "push",
    "upload",
];

/// Fewer words than this and a commit message is too short to explain a step.
pub const TERSE_WORDS: usize = 3;

pub fn is_vague(summary: &str) -> bool {
    let s = summary.trim().trim_end_matches(['.', '!', ' ']).to_lowercase();
    if s.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return true;
    }
    if VAGUE.contains(&s.as_str()) {
        return true;
    }
    // GitHub's web editor default: "Update README.md".
    let words: Vec<&str> = s.split_whitespace().collect();
    words.len() == 2 && matches!(words[0], "update" | "create" | "delete" | "add") && words[1].contains('.')
}

/// Whether a summary uses a Conventional Commits prefix such as `feat:` or `fix(api):`.
pub fn is_conventional(summary: &str) -> bool {
    let Some((head, _)) = summary.split_once(':') else {
        return false;
    };
    let head = head.trim_end_matches('!');
    let kind = head.split('(').next().unwrap_or("");
    matches!(
        kind,
        "feat"
            | "fix"
            | "docs"
            | "test"
            | "tests"
            | "refactor"
            | "chore"
            | "perf"
            | "build"
            | "ci"
            | "style"
            | "revert"
    ) && (!head.contains('(') || head.ends_with(')'))
}

pub(super) fn claims_tests(summary: &str) -> bool {
    let s = summary.to_lowercase();
    s.starts_with("test:")
        || s.starts_with("tests:")
        || s.starts_with("test(")
        || s.starts_with("add test")
        || s.starts_with("added test")
        || s.starts_with("adding test")
        || s.starts_with("write test")
        || s.starts_with("wrote test")
}

pub(super) fn message_flags(
    summary: &str,
    changes: &BTreeMap<FileClass, ClassChange>,
    readme_results: bool,
) -> Vec<String> {
    let mut flags = Vec::new();
    if is_vague(summary) {
        flags.push("vague".to_string());
    }
    if is_conventional(summary) {
        flags.push("conventional".to_string());
    }
    if claims_tests(summary) && changes.get(&FileClass::Tests).is_none_or(|c| c.files == 0) {
        flags.push("claims_tests_without_tests".to_string());
    }
    if readme_results {
        flags.push("readme_results".to_string());
    }
    flags
}
