//! History: how the candidate worked, read from the commits (git2 + rayon).
//!
//! Pure over a repository path and a commit: no network, no writes. Commits are
//! diffed in parallel (one `Repository` per rayon worker, since git2's
//! `Repository` is not `Sync`); everything after that is plain arithmetic over
//! the per-commit facts, so it is easy to test with scripted histories.
//!
//! Every finding becomes a [`Signal`] with a stable id (`H1`, `H2`, …) assigned
//! in a fixed order of kinds, and a one-line description that cites commits.
//!
//! The layout keeps the I/O in one place: `read` is the only file that touches
//! libgit2 (or rayon); `messages`, `people`, `aggregate` and `signals` are pure
//! over its facts (a test in `layout` holds them to it).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::aggregate::*;
use self::messages::*;
use self::people::*;
use self::read::*;
use self::signals::*;
use super::classify::{FileClass, TestLayout};
use super::corrupt;
use super::export::is_lfs_pointer;
use crate::outcome::{Failure, OutcomeKind};

mod aggregate;
mod messages;
mod people;
mod read;
mod signals;

pub use messages::{is_conventional, is_vague, TERSE_WORDS};
pub use people::{anon_id, handles};
pub use read::notebook_source;

/// A gap between commits longer than this starts a new work session.
pub const SESSION_GAP_SECS: i64 = 2 * 3600;
/// The largest commit holding at least this share of the final lines is a single dump.
pub const SINGLE_DUMP_SHARE: f64 = 0.8;
/// What [`analyze`] needs.
#[derive(Debug, Clone)]
pub struct HistoryInput<'a> {
    /// A repository (bare or not).
    pub repo: &'a Path,
    /// The graded commit.
    pub commit: &'a str,
    /// "Now", for spotting future-dated commits.
    pub now: DateTime<Utc>,
    /// Most commits to read before giving up with `too_many_commits`.
    pub max_commits: u64,
    /// Commits after the deadline that were left out (from the fetch).
    pub after_deadline: &'a [String],
    /// Salt for anonymised author ids (the cohort name, say).
    pub salt: &'a str,
    /// Largest blob whose lines are diffed (`limits.file_bytes`): a larger one counts as a
    /// changed file whose lines are unknown, like a binary one, and is never inflated.
    pub max_blob: u64,
}

/// Lines and files changed in one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassChange {
    /// Files touched.
    pub files: u32,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
}

/// One commit, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Full sha.
    pub sha: String,
    /// Anonymised author id.
    pub author: String,
    /// Author date (UTC).
    pub author_time: DateTime<Utc>,
    /// Committer date (UTC).
    pub committer_time: DateTime<Utc>,
    /// First line of the message, at most 200 characters.
    pub summary: String,
    /// A merge commit (not diffed, like `git log --numstat`).
    pub merge: bool,
    /// Part of a template set apart from the candidate's work.
    pub template: bool,
    /// Changes by file class (classes with no change left out).
    pub changes: BTreeMap<FileClass, ClassChange>,
    /// Message and content flags: `vague`, `conventional`, `claims_tests_without_tests`, `readme_results`,
    /// `github_initial` (the root commit GitHub made with the repository: README, licence, .gitignore).
    pub flags: Vec<String>,
}

impl CommitInfo {
    fn added(&self) -> u64 {
        self.changes.values().map(|c| c.added).sum()
    }
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    fn work_added(&self) -> u64 {
        self.changes
            .iter()
            .filter(|(k, _)| !matches!(k, FileClass::Generated | FileClass::Data))
            .map(|(_, c)| c.added)
            .sum()
    }
}

/// A work session: commits with no gap over two hours between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// First commit's author date.
    pub start: DateTime<Utc>,
    /// Last commit's author date.
    pub end: DateTime<Utc>,
    /// Commits, oldest first.
    pub commits: Vec<String>,
    /// Lines added in the session.
    pub added: u64,
    /// Lines removed in the session.
    pub removed: u64,
}

/// One author, anonymised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorInfo {
    /// `a-` and eight hex digits; stable for one salt.
    pub id: String,
    /// Commits authored.
    pub commits: u64,
    /// Whose commits are a template set apart (not the candidate's work).
    pub template: bool,
}

/// The largest commit of the candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargestCommit {
    /// Its sha.
    pub commit: String,
    /// Lines it added (outside generated and data files).
    pub added: u64,
    /// Of those, at most how many the graded tree still holds: per file, the lines it added
    /// or the file's final lines, whichever is fewer (lines added and later deleted are no
    /// share of the final work).
    #[serde(default)]
    pub kept: u64,
    /// Its share of the final lines the candidate wrote (`kept` over them), 0 to 1.
    pub share: f64,
}

/// A point on the test-to-source growth curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowthPoint {
    /// The commit after which the counts hold.
    pub commit: String,
    /// Its author date.
    pub at: DateTime<Utc>,
    /// Net source lines so far.
    pub source_lines: i64,
    /// Net test lines so far.
    pub test_lines: i64,
}

/// One finding, an evidence item with a stable id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// `H1`, `H2`, …
    pub id: String,
    /// A stable snake_case kind.
    pub kind: String,
    /// One line for humans, citing commits by short sha.
    pub description: String,
    /// The commits it is about (at most 20).
    pub commits: Vec<String>,
}

/// The iteration history of one repository at one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryReport {
    /// Document version.
    pub schema: String,
    /// The graded commit.
    pub commit: String,
    /// Commits reachable from it.
    pub commit_count: u64,
    /// Authors, anonymised, most commits first.
    pub authors: Vec<AuthorInfo>,
    /// Work sessions of the candidate, oldest first.
    pub sessions: Vec<Session>,
    /// Files in the graded tree by class.
    pub files_by_class: BTreeMap<FileClass, u64>,
    /// Text lines in the graded tree by class.
    pub lines_by_class: BTreeMap<FileClass, u64>,
    /// Seconds from the candidate's first commit to the first commit with tests.
    pub first_tests_after_s: Option<i64>,
    /// Seconds from the candidate's first commit to the first README content on results or decisions.
    pub first_readme_results_after_s: Option<i64>,
    /// The candidate's largest commit.
    pub largest_commit: Option<LargestCommit>,
    /// Net source and test lines over time (at most 50 points).
    pub growth: Vec<GrowthPoint>,
    /// Git LFS pointer files in the graded tree.
    pub lfs_pointers: Vec<String>,
    /// Paths whose objects the repository lacks, in the graded tree or in a commit's changes
    /// (at most 50; a directory ends in `/`): the history is read without them.
    #[serde(default)]
    pub missing_objects: Vec<String>,
    /// Commits after the deadline that were not graded.
    pub after_deadline: Vec<String>,
    /// Every commit, oldest first.
    pub commits: Vec<CommitInfo>,
    /// Findings, in id order.
    pub signals: Vec<Signal>,
}

/// Reads the history of `input.commit` in `input.repo`.
pub fn analyze(input: &HistoryInput<'_>) -> Result<HistoryReport, Failure> {
    let read = read(input)?;
    let mut report = build_report(input, &read.head, read.facts, read.tree, &read.first_parent);
    // The template's tests the candidate deleted or cut down: evidence, after the other signals
    // so theirs keep their ids. A comparison a partial copy cannot make is left out, as the rest
    // of the history reads around missing objects, not failed.
    if let Some(tip) = report.commits.iter().rfind(|c| c.template).map(|c| c.sha.clone()) {
        match read::template_tests(input.repo, &tip, &report.commit, &read.layout, input.max_blob) {
            Ok((removed, weakened)) => signals::template_tests(&mut report, &tip, &removed, &weakened),
            Err(f) => tracing::warn!("the template's tests were not compared: {f}"),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notebook_sources_are_their_cells_lines_and_changes_match_lines_once() {
        let nb = br##"{"cells": [
            {"cell_type": "markdown", "source": "# Title\n\nWhy"},
            {"cell_type": "code", "source": ["x = 1\n", "   \n", "print(x)\n"], "outputs": [{"text": ["1\n"]}]}
        ], "nbformat": 4}"##;
        let src = notebook_source(nb).unwrap();
        assert_eq!(src, ["# Title", "Why", "x = 1", "print(x)"]);
        assert!(notebook_source(b"not json").is_none());
        assert!(notebook_source(b"{\"nbformat\": 4}").is_none());
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // A moved line is neither added nor removed; a repeated line counts each time.
        assert_eq!(line_change(&v(&["a", "b", "c"]), &v(&["c", "a", "b", "b"])), (1, 0));
        assert_eq!(line_change(&v(&["a", "b"]), &v(&["a"])), (0, 1));
        assert_eq!(line_change(&[], &v(&["a", "a"])), (2, 0));
    }

    #[test]
    fn handles_fold_names_and_read_githubs_noreply_logins() {
        assert_eq!(handles("Mateusz Ligęza", "m@x.example"), ["mateuszligeza"]);
        assert_eq!(
            handles("Minura Punchihewa", "4938+MinuraPunchihewa@users.noreply.github.com"),
            ["minurapunchihewa"]
        );
        assert_eq!(handles("Sam", "sam-k@users.noreply.github.com"), ["samk"]);
        assert!(
            handles("me", "me@x.example").is_empty(),
            "too short to tell anyone apart"
        );
        // Two machines' default identities are not one person.
        assert!(handles("root", "root@build-01.example").is_empty());
        assert!(handles("Your Name", "you@example.com").is_empty());
        assert!(handles("ubuntu", "ubuntu@ip-10-0-0-1.example").is_empty());
    }

    #[test]
    fn vague_messages() {
        for m in [
            "update",
            "Fix.",
            "wip",
            ".",
            "Update README.md",
            "asdf",
            "x",
            "Add files via upload",
        ] {
            assert!(is_vague(m), "{m}");
        }
        for m in [
            "Add churn baseline with logistic regression",
            "fix: handle empty input",
            "Update model to use class weights",
        ] {
            assert!(!is_vague(m), "{m}");
        }
    }

    #[test]
    fn conventional_prefixes() {
        assert!(is_conventional("feat: add baseline"));
        assert!(is_conventional("fix(api)!: reject empty"));
        assert!(!is_conventional("Feature: nope"));
        assert!(!is_conventional("note: todo"));
    }

    #[test]
    fn anon_ids_are_stable_and_salted() {
        assert_eq!(anon_id("s", "a@x"), anon_id("s", "a@x"));
        assert_ne!(anon_id("s", "a@x"), anon_id("t", "a@x"));
        assert!(anon_id("s", "a@x").starts_with("a-"));
    }

    #[test]
    fn sample_keeps_ends() {
        let v: Vec<u32> = (0..100).collect();
        let s = sample(v, 5);
        assert_eq!(s.first(), Some(&0));
        assert_eq!(s.last(), Some(&99));
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn placeholder_assertions_assert_constants() {
        use super::{assertion, Assertion::*};
        for l in [
            "        self.assertTrue(True)  # Placeholder test",
            "assert True",
            "assert 1 == 1",
            "self.assertEqual(1, 1)",
            "expect(true).toBe(true);",
            "expect(true).toBeTruthy()",
            "expect(1).toEqual(1)",
            "assert!(true);",
            "assert_eq!(2, 2);",
            "assert.Equal(t, \"a\", \"a\") // TODO",
        ] {
            assert_eq!(assertion(l), Placeholder, "{l}");
        }
        for l in [
            "assert add(1, 2) == 3",
            "self.assertTrue(model.fitted)",
            "self.assertEqual(1, len(rows))",
            "expect(res.status).toBe(200);",
            "assert_eq!(parse(\"1\"), 1);",
            "assert 1 == 2",
            "t.Errorf(\"got %d\", n)",
            "require.NoError(t, err)",
        ] {
            assert_eq!(assertion(l), Real, "{l}");
        }
        for l in ["def test_x(self):", "import unittest", "x = compute()  # assert later"] {
            assert_eq!(assertion(l), None, "{l}");
        }
    }
}
