//! History: how the candidate worked, read from the commits (git2 + rayon).
//!
//! Pure over a repository path and a commit: no network, no writes. Commits are
//! diffed in parallel (one `Repository` per rayon worker, since git2's
//! `Repository` is not `Sync`); everything after that is plain arithmetic over
//! the per-commit facts, so it is easy to test with scripted histories.
//!
//! Every finding becomes a [`Signal`] with a stable id (`H1`, `H2`, …) assigned
//! in a fixed order of kinds, and a one-line description that cites commits.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use git2::{Delta, DiffOptions, ObjectType, Oid, Patch, Repository, Sort, TreeWalkMode, TreeWalkResult};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::classify::{FileClass, TestLayout};
use super::corrupt;
use super::export::is_lfs_pointer;
use crate::outcome::{Failure, OutcomeKind};

/// A gap between commits longer than this starts a new work session.
pub const SESSION_GAP_SECS: i64 = 2 * 3600;
/// The largest commit holding at least this share of the final lines is a single dump.
pub const SINGLE_DUMP_SHARE: f64 = 0.8;
/// Commits this far in the future (clock skew allowance) are flagged.
const FUTURE_SLACK_SECS: i64 = 3600;
/// A committer date this far before its author date is flagged as backdated.
const BACKDATE_SECS: i64 = 3600;
/// A first-parent step back in time by more than this is non-monotonic.
const NON_MONOTONIC_SECS: i64 = 300;
/// Consecutive commits authored at most this far apart belong to one burst.
const BURST_GAP_SECS: i64 = 5;
/// A burst this long is a replayed history.
const BURST_MIN_COMMITS: usize = 8;
/// At most this many commits are cited by one signal.
const MAX_CITED: usize = 20;
/// Paths a partial copy lacks listed in a history report, at most.
const MAX_MISSING_LISTED: usize = 50;
/// Growth curve points kept in the report.
const GROWTH_POINTS: usize = 50;
/// Blobs above this size are not counted for lines in the final tree.
const MAX_COUNTED_BLOB: usize = 8 << 20;

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
    let repo = Repository::open(input.repo)
        .map_err(|e| Failure::infra(format!("cannot open {}: {}", input.repo.display(), e.message())))?;
    let head = repo
        .revparse_single(input.commit)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            Failure::new(
                OutcomeKind::RefNotFound,
                format!("no commit {:?}: {}", input.commit, e.message()),
            )
        })?;
    let oids = walk(&repo, head.id(), input.max_commits)?;
    // The graded commit's pytest configuration says where its tests are, for every commit.
    let layout = test_layout(&repo, head.id());

    let path = input.repo.to_path_buf();
    let facts: Vec<Result<CommitFacts, Failure>> = oids
        .par_iter()
        .map_init(
            || Repository::open(&path),
            |repo, oid| match repo {
                Ok(repo) => commit_facts(repo, *oid, input.salt, &layout),
                Err(e) => Err(Failure::infra(format!(
                    "cannot open {}: {}",
                    path.display(),
                    e.message()
                ))),
            },
        )
        .collect();
    let facts: Vec<CommitFacts> = facts.into_iter().collect::<Result<_, _>>()?;
    let tree = tree_facts(&repo, head.id(), &layout)?;
    let first_parent_chain = first_parent_times(&repo, head.id(), input.max_commits)?;
    Ok(build_report(input, head.id(), facts, tree, &first_parent_chain))
}

/// Ancestors of `head`, oldest first (parents before children).
fn walk(repo: &Repository, head: Oid, max: u64) -> Result<Vec<Oid>, Failure> {
    let infra = |e: git2::Error| {
        corrupt::failure(&e, Some(repo), "walking the history")
            .unwrap_or_else(|| Failure::infra(format!("cannot walk history: {}", e.message())))
    };
    let mut walk = repo.revwalk().map_err(infra)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME | Sort::REVERSE)
        .map_err(infra)?;
    walk.push(head).map_err(infra)?;
    let mut oids = Vec::new();
    for oid in walk {
        oids.push(oid.map_err(infra)?);
        if oids.len() as u64 > max {
            return Err(Failure::new(
                OutcomeKind::TooManyCommits,
                format!("the history has more than limits.commits ({max}) commits"),
            ));
        }
    }
    Ok(oids)
}

/// (sha, committer seconds) along the first-parent chain, newest first.
fn first_parent_times(repo: &Repository, head: Oid, max: u64) -> Result<Vec<(String, i64)>, Failure> {
    let mut out = Vec::new();
    let mut current = repo
        .find_commit(head)
        .map_err(|e| Failure::infra(e.message().to_string()))?;
    loop {
        out.push((current.id().to_string(), current.committer().when().seconds()));
        if out.len() as u64 >= max {
            break;
        }
        match current.parent(0) {
            Ok(p) => current = p,
            Err(_) => break,
        }
    }
    Ok(out)
}

/// What one commit did, before aggregation.
#[derive(Debug, Clone)]
struct CommitFacts {
    info: CommitInfo,
    email_key: String,
    /// Paths this commit changed whose objects the repository lacks (their lines are not counted).
    missing: Vec<String>,
    /// Lines added per path, outside generated and data files.
    work_paths: Vec<(String, u64)>,
    /// Ways the author is known beyond the email ([`handles`]).
    handles: Vec<String>,
}

/// The pytest configuration at the root of `head`'s tree (files over 64 KiB are not read).
fn test_layout(repo: &Repository, head: Oid) -> TestLayout {
    let Ok(tree) = repo.find_commit(head).and_then(|c| c.tree()) else {
        return TestLayout::default();
    };
    let mut files: Vec<(&str, String)> = Vec::new();
    for name in ["pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"] {
        let blob = tree
            .get_name(name)
            .and_then(|e| e.to_object(repo).ok())
            .and_then(|o| o.into_blob().ok());
        if let Some(b) = blob.filter(|b| b.size() <= 64 << 10) {
            files.push((name, String::from_utf8_lossy(b.content()).into_owned()));
        }
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    TestLayout::from_config(&refs)
}

fn commit_facts(repo: &Repository, oid: Oid, salt: &str, layout: &TestLayout) -> Result<CommitFacts, Failure> {
    let infra = |e: git2::Error| {
        corrupt::failure(&e, Some(repo), &format!("reading commit {oid}"))
            .unwrap_or_else(|| Failure::infra(format!("cannot read commit {oid}: {}", e.message())))
    };
    let commit = repo.find_commit(oid).map_err(infra)?;
    let author = commit.author();
    let email_key = String::from_utf8_lossy(author.email_bytes()).trim().to_lowercase();
    let email_key = if email_key.is_empty() {
        String::from_utf8_lossy(author.name_bytes()).to_lowercase()
    } else {
        email_key
    };
    let handles = handles(&String::from_utf8_lossy(author.name_bytes()), &email_key);
    let summary: String = String::from_utf8_lossy(commit.message_bytes())
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect();
    let parents = commit.parent_count();
    let mut changes: BTreeMap<FileClass, ClassChange> = BTreeMap::new();
    let mut readme_results = false;
    let mut missing: Vec<String> = Vec::new();
    let mut work_paths: Vec<(String, u64)> = Vec::new();
    // Assertions among the test lines added: (real, placeholder).
    let mut asserts = (0, 0);
    let is_work = |class: FileClass| !matches!(class, FileClass::Generated | FileClass::Data);
    if parents <= 1 {
        let new_tree = commit.tree().map_err(infra)?;
        let old_tree = if parents == 1 {
            Some(commit.parent(0).and_then(|p| p.tree()).map_err(infra)?)
        } else {
            None
        };
        let mut opts = DiffOptions::new();
        opts.ignore_submodules(true).context_lines(0);
        // A partial copy may lack a subtree: the commit's changes are then unknown, not an error.
        let diff = match repo.diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut opts)) {
            Err(e) if corrupt::is_missing(&e) => {
                missing.push(corrupt::missing_object(&e).map_or_else(
                    || format!("a tree of commit {}", short(&oid.to_string())),
                    |o| format!("object {o} (a tree of commit {})", short(&oid.to_string())),
                ));
                None
            }
            other => Some(other.map_err(infra)?),
        };
        for idx in 0..diff.as_ref().map_or(0, |d| d.deltas().len()) {
            let diff = diff.as_ref().expect("a diff when it has deltas");
            let delta = diff.get_delta(idx).expect("delta index in range");
            let file = if delta.status() == Delta::Deleted {
                delta.old_file()
            } else {
                delta.new_file()
            };
            let Some(path) = file.path_bytes().map(|p| String::from_utf8_lossy(p).into_owned()) else {
                continue;
            };
            let class = layout.classify(&path);
            // A notebook counts the lines of its cells' sources, not of its JSON: a run's
            // outputs (tables, logs, images in base64) are not work, and one re-run added
            // thousands of lines.
            if class == FileClass::Notebooks {
                match notebook_change(repo, &delta) {
                    Ok(Some((added, removed))) => {
                        let entry = changes.entry(class).or_default();
                        entry.files += 1;
                        entry.added += added;
                        entry.removed += removed;
                        if added > 0 {
                            work_paths.push((path, added));
                        }
                        continue;
                    }
                    // Not a notebook's JSON: its text lines count, as any file's.
                    Ok(None) => {}
                    Err(e) if corrupt::is_missing(&e) => {
                        changes.entry(class).or_default().files += 1;
                        missing.push(path);
                        continue;
                    }
                    Err(e) => return Err(infra(e)),
                }
            }
            // A blob the repository lacks (a partial copy): the file changed, its lines are unknown.
            let patch = match Patch::from_diff(diff, idx) {
                Err(e) if corrupt::is_missing(&e) => {
                    changes.entry(class).or_default().files += 1;
                    missing.push(path);
                    continue;
                }
                other => other.map_err(infra)?,
            };
            let Some(patch) = patch else {
                changes.entry(class).or_default().files += 1;
                continue;
            };
            let (_, added, removed) = patch.line_stats().map_err(infra)?;
            // Rust keeps unit tests inline (`#[cfg(test)] mod tests` in src/):
            // those lines are test code, not source.
            let (test_added, test_removed) = if class == FileClass::Source && is_rust(&path) {
                rust_test_lines(&patch)
            } else {
                (0, 0)
            };
            if test_added + test_removed > 0 {
                let t = changes.entry(FileClass::Tests).or_default();
                t.files += 1;
                t.added += test_added;
                t.removed += test_removed;
            }
            let entry = changes.entry(class).or_default();
            entry.files += 1;
            entry.added += (added as u64).saturating_sub(test_added);
            entry.removed += (removed as u64).saturating_sub(test_removed);
            if class == FileClass::Tests && added > 0 {
                let (real, placeholder) = test_assertions(&patch);
                asserts = (asserts.0 + real, asserts.1 + placeholder);
            }
            if !readme_results && added > 0 && is_readme(&path) {
                readme_results = patch_adds_results(&patch);
            }
            if added > 0 && is_work(class) {
                work_paths.push((path, added as u64));
            }
        }
    }
    let mut flags = message_flags(&summary, &changes, readme_results);
    // Test files whose only assertions assert constants are a scaffold, not tests yet.
    if asserts.0 == 0 && asserts.1 > 0 {
        flags.push("placeholder_tests".to_string());
    }
    // GitHub's "Initialize this repository with a README/.gitignore/licence": no one's work.
    let by_github = commit
        .committer()
        .email_bytes()
        .eq_ignore_ascii_case(b"noreply@github.com");
    if parents == 0
        && by_github
        && !changes.is_empty()
        && changes.keys().all(|k| matches!(k, FileClass::Docs | FileClass::Config))
    {
        flags.push("github_initial".to_string());
    }
    let info = CommitInfo {
        sha: oid.to_string(),
        author: anon_id(salt, &email_key),
        author_time: to_utc(author.when().seconds()),
        committer_time: to_utc(commit.committer().when().seconds()),
        flags,
        summary,
        merge: parents > 1,
        template: false,
        changes,
    };
    Ok(CommitFacts {
        info,
        email_key,
        missing,
        work_paths,
        handles,
    })
}

/// The ways one person's commits name them, to tell that two emails are one author: the
/// author name folded to lower-case ASCII letters and digits ("Mateusz Ligęza" and "Mateusz
/// Ligeza", "Minura Punchihewa" and "MinuraPunchihewa" are one), and the login of a GitHub
/// noreply address (`12345+login@users.noreply.github.com`). Handles under four characters
/// ("me", "dev") and the names machines give ("root", "ubuntu", "Your Name") tell nothing.
pub fn handles(name: &str, email: &str) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization;
    let fold = |s: &str| -> String {
        s.nfkd()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let mut out = vec![fold(name)];
    if let Some(local) = email.strip_suffix("@users.noreply.github.com") {
        out.push(fold(local.split_once('+').map_or(local, |(_, login)| login)));
    }
    // Names a machine or a tool gives whoever commits ("root", "ubuntu", "Your Name") name no one.
    const GENERIC: [&str; 14] = [
        "root",
        "user",
        "admin",
        "administrator",
        "ubuntu",
        "debian",
        "developer",
        "unknown",
        "yourname",
        "localhost",
        "vagrant",
        "runner",
        "githubactions",
        "githubactionsbot",
    ];
    out.retain(|h| h.len() >= 4 && !GENERIC.contains(&h.as_str()));
    out.dedup();
    out
}

/// Each author key mapped to one key per person: keys that share a handle are one author
/// (the key kept is the first in sorted order).
fn same_people(facts: &[CommitFacts]) -> HashMap<String, String> {
    let mut keys: Vec<&str> = facts.iter().map(|f| f.email_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut parent: HashMap<&str, &str> = keys.iter().map(|k| (*k, *k)).collect();
    fn root<'a>(parent: &HashMap<&'a str, &'a str>, mut k: &'a str) -> &'a str {
        while parent[k] != k {
            k = parent[k];
        }
        k
    }
    let mut owner: HashMap<&str, &str> = HashMap::new();
    let mut sorted: Vec<&CommitFacts> = facts.iter().collect();
    sorted.sort_by(|a, b| a.email_key.cmp(&b.email_key));
    for f in sorted {
        for h in &f.handles {
            let k = f.email_key.as_str();
            match owner.get(h.as_str()) {
                None => {
                    owner.insert(h, k);
                }
                Some(&other) => {
                    let (a, b) = (root(&parent, other), root(&parent, k));
                    if a != b {
                        let (keep, join) = if a < b { (a, b) } else { (b, a) };
                        parent.insert(join, keep);
                    }
                }
            }
        }
    }
    keys.iter()
        .map(|k| (k.to_string(), root(&parent, k).to_string()))
        .collect()
}

fn to_utc(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// `a-` and 8 hex digits of sha256(salt, identity): stable, not reversible
/// without guessing the e-mail address.
pub fn anon_id(salt: &str, identity: &str) -> String {
    let digest = Sha256::digest(format!("{salt}\0{identity}").as_bytes());
    format!("a-{}", &hex::encode(digest)[..8])
}

fn is_readme(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name.starts_with("readme")
}

/// Words that mark README content about results, decisions or trade-offs.
/// Metric names alone (accuracy, recall) are left out: a README states its
/// success metric up front, before there are results.
const RESULTS_WORDS: &[&str] = &[
    "result",
    "decision",
    "trade-off",
    "tradeoff",
    "trade off",
    "limitation",
    "next step",
    "future work",
    "what i would",
    "why i chose",
    "we chose",
    "i chose",
    "findings",
    "lessons learned",
    "evaluation",
    "benchmark",
];

/// The lines a patch adds, as text.
fn added_lines<'p>(patch: &'p Patch<'_>) -> impl Iterator<Item = String> + 'p {
    (0..patch.num_hunks()).flat_map(move |h| {
        let n = patch.num_lines_in_hunk(h).unwrap_or(0);
        (0..n).filter_map(move |l| {
            let line = patch.line_in_hunk(h, l).ok()?;
            (line.origin() == '+').then(|| String::from_utf8_lossy(line.content()).into_owned())
        })
    })
}

fn patch_adds_results(patch: &Patch<'_>) -> bool {
    added_lines(patch).any(|text| {
        let text = text.to_lowercase();
        RESULTS_WORDS.iter().any(|w| text.contains(w))
    })
}

const VAGUE: &[&str] = &[
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

/// Whether a commit summary says nothing about what changed.
/// Whether the largest commit holds most of the work (the `single_dump` signal).
fn is_dump(l: &LargestCommit) -> bool {
    l.share >= SINGLE_DUMP_SHARE && l.kept >= 20
}

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

fn claims_tests(summary: &str) -> bool {
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

fn message_flags(summary: &str, changes: &BTreeMap<FileClass, ClassChange>, readme_results: bool) -> Vec<String> {
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

/// Facts about the graded tree.
#[derive(Debug, Default)]
struct TreeFacts {
    files: BTreeMap<FileClass, u64>,
    lines: BTreeMap<FileClass, u64>,
    lfs: Vec<String>,
    /// Paths of the graded tree whose objects the repository lacks (a directory ends in `/`).
    missing: Vec<String>,
    has_readme: bool,
    /// CI configuration files: (service, path).
    ci: Vec<(&'static str, String)>,
    /// Linter and formatter configuration: (tool, path).
    linters: Vec<(&'static str, String)>,
    /// Lines of each file outside generated and data files (a notebook: its cells' sources).
    path_lines: HashMap<String, u64>,
}

fn is_rust(path: &str) -> bool {
    path.ends_with(".rs")
}

/// Whether a Rust line opens test code: the test-module gate or a test attribute
/// (`#[test]`, `#[tokio::test]`, `#[rstest]`, …).
fn opens_rust_tests(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("#[cfg(test)]") || (t.starts_with("#[") && t.contains("test]")) || t.starts_with("#[test")
}

/// Lines added and removed inside Rust test code in one file's patch: from a
/// line that opens test code to the end of its hunk (test modules sit at the
/// end of a file, test functions run to their hunk's end).
fn rust_test_lines(patch: &Patch<'_>) -> (u64, u64) {
    let (mut added, mut removed) = (0, 0);
    for h in 0..patch.num_hunks() {
        let Ok(n) = patch.num_lines_in_hunk(h) else {
            continue;
        };
        let mut inside = false;
        for l in 0..n {
            let Ok(line) = patch.line_in_hunk(h, l) else {
                continue;
            };
            if !inside && opens_rust_tests(&String::from_utf8_lossy(line.content())) {
                inside = true;
            }
            if inside {
                match line.origin() {
                    '+' => added += 1,
                    '-' => removed += 1,
                    _ => {}
                }
            }
        }
    }
    (added, removed)
}

/// How a line of test code asserts: not at all, something computed, or only a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assertion {
    None,
    Real,
    /// `self.assertTrue(True)  # Placeholder test`, `assert True`, `expect(true).toBe(true)`,
    /// `assert_eq!(1, 1)`: a scaffold's stand-in that tests nothing.
    Placeholder,
}

/// What one added line of test code asserts (Python, JavaScript/TypeScript, Rust, Go).
fn assertion(line: &str) -> Assertion {
    use std::sync::LazyLock;
    static ANY: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)\bassert\w*\b|\bexpect\s*\(|\.should\b|\bt\.(error|fatal|fail)|\brequire\.\w+\s*\(")
            .expect("a valid pattern")
    });
    // A constant: True, true, a number, a string literal.
    const C: &str = r#"(True|true|-?\d+(?:\.\d+)?|"[^"]*"|'[^']*')"#;
    static TRUE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"^(?:self\.)?(?:assert(?:True|_true|!)?\s*\(\s*(?:True|true|1)\s*\)|assert\s+(?:True|1)|expect\s*\(\s*true\s*\)\s*\.\s*toBe(?:Truthy\s*\(\s*|\s*\(\s*true\s*))\)?;?$",
        )
        .expect("a valid pattern")
    });
    static EQUAL: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(&format!(
            r"^(?:self\.)?(?:(?:assertEqual|assertEquals|assert_eq!|assert\.Equal)\s*\(\s*(?:t\s*,\s*)?{C}\s*,\s*{C}\s*\)|assert\s+{C}\s*==\s*{C}|expect\s*\(\s*{C}\s*\)\s*\.\s*(?:toBe|toEqual)\s*\(\s*{C}\s*\))\s*;?$"
        ))
        .expect("a valid pattern")
    });
    let code = line.trim();
    // A trailing comment says nothing about what is asserted.
    let code = [" #", " //"]
        .iter()
        .filter_map(|c| code.find(c))
        .min()
        .map_or(code, |i| code[..i].trim_end());
    if !ANY.is_match(code) {
        return Assertion::None;
    }
    if TRUE.is_match(code) {
        return Assertion::Placeholder;
    }
    if let Some(c) = EQUAL.captures(code) {
        let constants: Vec<&str> = c.iter().skip(1).flatten().map(|m| m.as_str()).collect();
        if constants.len() == 2 && constants[0] == constants[1] {
            return Assertion::Placeholder;
        }
    }
    Assertion::Real
}

/// Assertions among the lines a test file's patch adds: (real, placeholder).
fn test_assertions(patch: &Patch<'_>) -> (u64, u64) {
    added_lines(patch).fold((0, 0), |(real, placeholder), line| match assertion(&line) {
        Assertion::Real => (real + 1, placeholder),
        Assertion::Placeholder => (real, placeholder + 1),
        Assertion::None => (real, placeholder),
    })
}

/// Lines of a Rust file from its first line that opens test code to the end
/// (0 when it has none).
fn rust_test_tail(data: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(|l| opens_rust_tests(l))
        .map_or(0, |i| (lines.len() - i) as u64)
}

fn tree_facts(repo: &Repository, head: Oid, layout: &TestLayout) -> Result<TreeFacts, Failure> {
    let infra = |e: git2::Error| {
        corrupt::failure(&e, Some(repo), &format!("reading the tree of {head}"))
            .unwrap_or_else(|| Failure::infra(format!("cannot read tree of {head}: {}", e.message())))
    };
    let tree = repo.find_commit(head).and_then(|c| c.tree()).map_err(infra)?;
    let odb = repo.odb().map_err(infra)?;
    let mut facts = TreeFacts::default();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let path = format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes()));
        if entry.kind() == Some(ObjectType::Tree) {
            // A subtree a partial copy lacks cannot be walked into: listed, skipped.
            if corrupt::tree_missing(repo, entry.id()) {
                facts.missing.push(format!("{path}/"));
                return TreeWalkResult::Skip;
            }
            return TreeWalkResult::Ok;
        }
        if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == 0o120000 {
            return TreeWalkResult::Ok;
        }
        if dir.is_empty() && is_readme(&path) {
            facts.has_readme = true;
        }
        let class = layout.classify(&path);
        *facts.files.entry(class).or_default() += 1;
        if class != FileClass::Generated {
            if let Some(service) = super::tooling::ci_service(&path) {
                facts.ci.push((service, path.clone()));
            }
        }
        let (size, _) = match odb.read_header(entry.id()) {
            Ok(h) => h,
            Err(e) => {
                if corrupt::is_missing(&e) {
                    facts.missing.push(path);
                }
                return TreeWalkResult::Ok;
            }
        };
        if size > MAX_COUNTED_BLOB {
            return TreeWalkResult::Ok;
        }
        if let Ok(blob) = repo.find_blob(entry.id()) {
            let data = blob.content();
            if class != FileClass::Generated {
                let text = super::tooling::needs_content(&path).then(|| String::from_utf8_lossy(data));
                for tool in super::tooling::linters(&path, text.as_deref()) {
                    facts.linters.push((tool, path.clone()));
                }
            }
            if is_lfs_pointer(data) {
                facts.lfs.push(path);
            } else if let Some(source) = (class == FileClass::Notebooks).then(|| notebook_source(data)).flatten() {
                *facts.lines.entry(class).or_default() += source.len() as u64;
                facts.path_lines.insert(path.clone(), source.len() as u64);
            } else if !blob.is_binary() {
                let mut lines = bytecount(data);
                if !data.is_empty() && !data.ends_with(b"\n") {
                    lines += 1;
                }
                let tests = if class == FileClass::Source && is_rust(&path) {
                    rust_test_tail(data).min(lines)
                } else {
                    0
                };
                if tests > 0 {
                    *facts.files.entry(FileClass::Tests).or_default() += 1;
                    *facts.lines.entry(FileClass::Tests).or_default() += tests;
                }
                *facts.lines.entry(class).or_default() += lines - tests;
                if !matches!(class, FileClass::Generated | FileClass::Data) {
                    facts.path_lines.insert(path.clone(), lines);
                }
            }
        }
        TreeWalkResult::Ok
    })
    .map_err(infra)?;
    facts.lfs.sort();
    facts.missing.sort();
    Ok(facts)
}

/// The non-blank lines of a Jupyter notebook's cell sources (code and markdown), in order;
/// `None` when `data` is not a notebook's JSON.
pub fn notebook_source(data: &[u8]) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let cells = v.get("cells")?.as_array()?;
    let mut out = Vec::new();
    for cell in cells {
        let text = match cell.get("source") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(parts)) => parts.iter().filter_map(|p| p.as_str()).collect(),
            _ => continue,
        };
        out.extend(
            text.lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    Some(out)
}

/// Lines of `new` not in `old` and lines of `old` not in `new`, each line matched once
/// (a moved line is neither).
fn line_change(old: &[String], new: &[String]) -> (u64, u64) {
    let mut left: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for l in old {
        *left.entry(l.as_str()).or_default() += 1;
    }
    let mut added = 0;
    for l in new {
        match left.get_mut(l.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => added += 1,
        }
    }
    (added, left.values().sum())
}

/// Source lines a commit's change to a notebook added and removed; `None` when either side is
/// not a notebook's JSON (or too large to read), so the file's text lines count instead.
fn notebook_change(repo: &Repository, delta: &git2::DiffDelta<'_>) -> Result<Option<(u64, u64)>, git2::Error> {
    let read = |id: Oid| -> Result<Option<Vec<String>>, git2::Error> {
        if id.is_zero() {
            return Ok(Some(Vec::new()));
        }
        let blob = repo.find_blob(id)?;
        if blob.size() > MAX_COUNTED_BLOB {
            return Ok(None);
        }
        Ok(notebook_source(blob.content()))
    };
    let (Some(old), Some(new)) = (read(delta.old_file().id())?, read(delta.new_file().id())?) else {
        return Ok(None);
    };
    Ok(Some(line_change(&old, &new)))
}

fn bytecount(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

fn cite(commits: &[&CommitInfo]) -> Vec<String> {
    commits.iter().take(MAX_CITED).map(|c| c.sha.clone()).collect()
}

fn list_shas(commits: &[&CommitInfo]) -> String {
    let mut s: Vec<&str> = commits.iter().take(5).map(|c| short(&c.sha)).collect();
    if commits.len() > 5 {
        s.push("…");
    }
    s.join(", ")
}

fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 3600 {
        format!("{} min", secs / 60)
    } else if secs < 2 * 86400 {
        format!("{:.1} h", secs as f64 / 3600.0)
    } else {
        format!("{:.1} days", secs as f64 / 86400.0)
    }
}

fn build_report(
    input: &HistoryInput<'_>,
    head: Oid,
    mut facts: Vec<CommitFacts>,
    tree: TreeFacts,
    first_parent: &[(String, i64)],
) -> HistoryReport {
    // One person under two emails (a laptop's and GitHub's web editor's) is one author.
    let people = same_people(&facts);
    for f in &mut facts {
        if let Some(k) = people.get(&f.email_key).filter(|k| **k != f.email_key) {
            f.email_key = k.clone();
            f.info.author = anon_id(input.salt, k);
        }
    }
    // Authors: the one with most commits (then most lines) is the candidate.
    let mut by_author: HashMap<String, (u64, u64, String)> = HashMap::new();
    for f in &facts {
        let e = by_author
            .entry(f.email_key.clone())
            .or_insert((0, 0, f.info.author.clone()));
        e.0 += 1;
        e.1 += f.info.added();
    }
    let main_key = by_author
        .iter()
        .max_by(|a, b| (a.1 .0, a.1 .1, b.0).cmp(&(b.1 .0, b.1 .1, a.0)))
        .map(|(k, _)| k.clone())
        .unwrap_or_default();

    // What a partial copy lacks, in the graded tree and in the commits' changes.
    // A path missing from the graded tree and from the commit that added it is one gap.
    let missing_all: std::collections::BTreeSet<&String> = tree
        .missing
        .iter()
        .chain(facts.iter().flat_map(|f| f.missing.iter()))
        .collect();
    let missing_count = missing_all.len();
    let missing: Vec<String> = missing_all.into_iter().take(MAX_MISSING_LISTED).cloned().collect();

    // A template: the leading commits by someone other than the candidate, or made by
    // GitHub when the repository was created, when the candidate committed after them.
    let mut commits: Vec<CommitInfo> = Vec::with_capacity(facts.len());
    let lead = facts
        .iter()
        .take_while(|f| f.email_key != main_key || f.info.has("github_initial"))
        .count();
    let template_count = if lead > 0 && lead < facts.len() { lead } else { 0 };
    let mut template_keys: Vec<String> = Vec::new();
    // What each commit added that the graded tree can still hold, file by file.
    let kept: HashMap<String, u64> = facts
        .iter()
        .map(|f| {
            let k = f
                .work_paths
                .iter()
                .map(|(p, n)| (*n).min(tree.path_lines.get(p).copied().unwrap_or(0)))
                .sum();
            (f.info.sha.clone(), k)
        })
        .collect();
    for (i, f) in facts.into_iter().enumerate() {
        let mut info = f.info;
        if i < template_count {
            info.template = true;
            if f.email_key != main_key && !template_keys.contains(&f.email_key) {
                template_keys.push(f.email_key.clone());
            }
        }
        commits.push(info);
    }
    let mut authors: Vec<AuthorInfo> = by_author
        .iter()
        .map(|(k, (n, _, id))| AuthorInfo {
            id: id.clone(),
            commits: *n,
            template: template_keys.contains(k) && *k != main_key,
        })
        .collect();
    authors.sort_by(|a, b| b.commits.cmp(&a.commits).then(a.id.cmp(&b.id)));

    let work: Vec<&CommitInfo> = commits.iter().filter(|c| !c.template).collect();
    let mut by_time: Vec<&CommitInfo> = work.clone();
    by_time.sort_by_key(|c| c.author_time);

    // Sessions over author dates.
    let mut sessions: Vec<Session> = Vec::new();
    for c in &by_time {
        let (added, removed) = c
            .changes
            .values()
            .fold((0, 0), |(a, r), x| (a + x.added, r + x.removed));
        match sessions.last_mut() {
            Some(s) if (c.author_time - s.end).num_seconds() <= SESSION_GAP_SECS => {
                s.end = c.author_time;
                s.commits.push(c.sha.clone());
                s.added += added;
                s.removed += removed;
            }
            _ => sessions.push(Session {
                start: c.author_time,
                end: c.author_time,
                commits: vec![c.sha.clone()],
                added,
                removed,
            }),
        }
    }

    let start = by_time.first().map(|c| c.author_time);
    let first_tests = work
        .iter()
        .position(|c| c.changes.get(&FileClass::Tests).is_some_and(|x| x.added > 0) && !c.has("placeholder_tests"));
    let first_tests_after_s = first_tests
        .zip(start)
        .map(|(i, s)| (work[i].author_time - s).num_seconds());
    let first_results = work.iter().find(|c| c.has("readme_results"));
    let first_readme_results_after_s = first_results.zip(start).map(|(c, s)| (c.author_time - s).num_seconds());

    // Lines the candidate wrote that survive: the final tree's lines (outside
    // generated and data files) less what the template added. An
    // approximation of blame that costs nothing extra.
    let final_lines: u64 = tree
        .lines
        .iter()
        .filter(|(k, _)| !matches!(k, FileClass::Generated | FileClass::Data))
        .map(|(_, v)| v)
        .sum();
    let template_added: u64 = commits
        .iter()
        .filter(|c| c.template)
        .map(|c| kept.get(&c.sha).copied().unwrap_or(0))
        .sum();
    let candidate_lines = final_lines.saturating_sub(template_added);
    // The commit that holds most of the final work: what it added that survives, not what it
    // added (a commit of 44,000 lines later rewritten away is no dump of the final work).
    let kept_by = |c: &CommitInfo| kept.get(&c.sha).copied().unwrap_or(0);
    let largest = work
        .iter()
        .filter(|c| !c.merge)
        .max_by_key(|c| (kept_by(c), c.work_added(), std::cmp::Reverse(c.author_time)));
    let largest_commit = largest.map(|c| LargestCommit {
        commit: c.sha.clone(),
        added: c.work_added(),
        kept: kept_by(c),
        share: if candidate_lines == 0 {
            0.0
        } else {
            (kept_by(c) as f64 / candidate_lines as f64).min(1.0)
        },
    });

    // Growth: net source and test lines after each commit, sampled.
    let mut growth_all: Vec<GrowthPoint> = Vec::with_capacity(work.len());
    let (mut src, mut tst) = (0i64, 0i64);
    for c in &work {
        let net = |k: FileClass| c.changes.get(&k).map_or(0, |x| x.added as i64 - x.removed as i64);
        src += net(FileClass::Source);
        tst += net(FileClass::Tests);
        growth_all.push(GrowthPoint {
            commit: c.sha.clone(),
            at: c.author_time,
            source_lines: src,
            test_lines: tst,
        });
    }
    let growth = sample(growth_all, GROWTH_POINTS);

    let mut report = HistoryReport {
        schema: "assay.history/1".to_string(),
        commit: head.to_string(),
        commit_count: commits.len() as u64,
        authors,
        sessions,
        files_by_class: tree.files.clone(),
        lines_by_class: tree.lines.clone(),
        first_tests_after_s,
        first_readme_results_after_s,
        largest_commit,
        growth,
        lfs_pointers: tree.lfs.clone(),
        missing_objects: missing,
        after_deadline: input.after_deadline.to_vec(),
        commits: Vec::new(),
        signals: Vec::new(),
    };
    report.signals = signals(input, &report, &commits, &work, &tree, first_parent, first_tests);
    if missing_count > 0 {
        // About assay's copy, not the candidate: the last signal, so the others keep their ids.
        let shown: Vec<&str> = report.missing_objects.iter().take(5).map(String::as_str).collect();
        report.signals.push(Signal {
            id: format!("H{}", report.signals.len() + 1),
            kind: "objects_missing".into(),
            description: format!(
                "this copy of the repository lacks {missing_count} object(s) (a partial copy): {}{}; what they hold is not counted",
                shown.join(", "),
                if report.missing_objects.len() > shown.len() { ", …" } else { "" }
            ),
            commits: vec![report.commit.clone()],
        });
    }
    report.commits = commits;
    report
}

fn sample<T: Clone>(all: Vec<T>, n: usize) -> Vec<T> {
    if all.len() <= n {
        return all;
    }
    let last = all.len() - 1;
    (0..n).map(|i| all[i * last / (n - 1)].clone()).collect()
}

fn signals(
    input: &HistoryInput<'_>,
    r: &HistoryReport,
    all: &[CommitInfo],
    work: &[&CommitInfo],
    tree: &TreeFacts,
    first_parent: &[(String, i64)],
    first_tests: Option<usize>,
) -> Vec<Signal> {
    let mut out: Vec<(&'static str, String, Vec<String>)> = Vec::new();
    let n = work.len();

    // The shape of the work.
    if let (Some(first), Some(last)) = (r.sessions.first(), r.sessions.last()) {
        let counts: Vec<usize> = r.sessions.iter().map(|s| s.commits.len()).collect();
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        out.push((
            "work_sessions",
            format!(
                "{n} commits in {} work sessions over {} (median {} commits per session), from {} to {}",
                r.sessions.len(),
                human_duration((last.end - first.start).num_seconds()),
                sorted[sorted.len() / 2],
                short(&first.commits[0]),
                short(last.commits.last().expect("session has commits")),
            ),
            vec![
                first.commits[0].clone(),
                last.commits.last().cloned().unwrap_or_default(),
            ],
        ));
    }
    if let Some(l) = &r.largest_commit {
        let pct = (l.share * 100.0).round();
        if is_dump(l) {
            out.push((
                "single_dump",
                format!(
                    "commit {} added {pct}% of the final lines ({} lines) in one go",
                    short(&l.commit),
                    l.kept
                ),
                vec![l.commit.clone()],
            ));
        } else if n > 1 {
            out.push((
                "largest_commit",
                format!(
                    "the largest commit {} added {} lines, {}",
                    short(&l.commit),
                    l.added,
                    if l.kept < l.added {
                        format!(
                            "at most {} of them still in the graded tree ({pct}% of the final lines)",
                            l.kept
                        )
                    } else {
                        format!("{pct}% of the final lines")
                    }
                ),
                vec![l.commit.clone()],
            ));
        }
    }
    let template: Vec<&CommitInfo> = all.iter().filter(|c| c.template).collect();
    if !template.is_empty() {
        let (github, other): (Vec<&CommitInfo>, Vec<&CommitInfo>) =
            template.iter().partition(|c| c.has("github_initial"));
        let authored = || {
            format!(
                "{} leading commit(s) by another author ({}) are a template",
                other.len(),
                list_shas(&other)
            )
        };
        let made = || {
            format!(
                "GitHub's initial commit {} (a README, licence or .gitignore made with the repository)",
                list_shas(&github)
            )
        };
        let text = match (other.is_empty(), github.is_empty()) {
            (false, true) => format!("{}, set apart from the candidate's work", authored()),
            (true, false) => format!("{} is set apart from the candidate's work", made()),
            _ => format!(
                "{} and {} is no one's work: both set apart from the candidate's work",
                authored(),
                made()
            ),
        };
        out.push(("template_commit", text, cite(&template)));
    }

    // Timestamps that do not add up.
    let now = input.now.timestamp();
    let future: Vec<&CommitInfo> = all
        .iter()
        .filter(|c| {
            c.author_time.timestamp() > now + FUTURE_SLACK_SECS
                || c.committer_time.timestamp() > now + FUTURE_SLACK_SECS
        })
        .collect();
    if !future.is_empty() {
        out.push((
            "future_commit",
            format!(
                "{} commit(s) are dated in the future ({})",
                future.len(),
                list_shas(&future)
            ),
            cite(&future),
        ));
    }
    let backdated: Vec<&CommitInfo> = all
        .iter()
        .filter(|c| c.committer_time.timestamp() < c.author_time.timestamp() - BACKDATE_SECS)
        .collect();
    if !backdated.is_empty() {
        out.push((
            "backdated_commit",
            format!(
                "{} commit(s) have a committer date well before their author date ({}): dates were likely set by hand",
                backdated.len(),
                list_shas(&backdated)
            ),
            cite(&backdated),
        ));
    }
    let backwards: Vec<String> = first_parent
        .windows(2)
        .filter(|w| w[0].1 < w[1].1 - NON_MONOTONIC_SECS)
        .map(|w| w[0].0.clone())
        .collect();
    if !backwards.is_empty() {
        let shown: Vec<&str> = backwards.iter().take(5).map(|s| short(s)).collect();
        out.push((
            "non_monotonic_dates",
            format!(
                "{} commit(s) on the main line are dated before their parent ({})",
                backwards.len(),
                shown.join(", ")
            ),
            backwards.into_iter().take(MAX_CITED).collect(),
        ));
    }
    let mut bursts: Vec<Vec<&CommitInfo>> = Vec::new();
    let mut run: Vec<&CommitInfo> = Vec::new();
    let mut ordered: Vec<&CommitInfo> = work.iter().filter(|c| !c.merge).copied().collect();
    ordered.sort_by_key(|c| c.author_time);
    for c in ordered {
        if let Some(prev) = run.last() {
            if (c.author_time - prev.author_time).num_seconds() > BURST_GAP_SECS {
                if run.len() >= BURST_MIN_COMMITS {
                    bursts.push(std::mem::take(&mut run));
                }
                run.clear();
            }
        }
        run.push(c);
    }
    if run.len() >= BURST_MIN_COMMITS {
        bursts.push(run);
    }
    for b in bursts {
        out.push((
            "replayed_burst",
            format!(
                "{} commits were authored within {} seconds ({}): the history was likely replayed, not worked",
                b.len(),
                (b[b.len() - 1].author_time - b[0].author_time).num_seconds(),
                list_shas(&b)
            ),
            cite(&b),
        ));
    }
    if !r.after_deadline.is_empty() {
        let shown: Vec<&str> = r.after_deadline.iter().take(5).map(|s| short(s)).collect();
        out.push((
            "after_deadline",
            format!(
                "{} commit(s) after the deadline were not graded ({})",
                r.after_deadline.len(),
                shown.join(", ")
            ),
            r.after_deadline.iter().take(MAX_CITED).cloned().collect(),
        ));
    }

    // Messages.
    let non_merge: Vec<&CommitInfo> = work.iter().filter(|c| !c.merge).copied().collect();
    let vague: Vec<&CommitInfo> = non_merge.iter().filter(|c| c.has("vague")).copied().collect();
    if vague.len() >= 3 && vague.len() * 10 >= non_merge.len() * 3 {
        out.push((
            "vague_messages",
            format!(
                "{} of {} commit messages say nothing about the change, e.g. {:?} ({})",
                vague.len(),
                non_merge.len(),
                vague[0].summary,
                list_shas(&vague)
            ),
            cite(&vague),
        ));
    }
    // Messages too short to say what a step did and why ("readme", "bug fixed", "Some fixes"):
    // when they are half or more, the commits do not explain the steps.
    let terse: Vec<&CommitInfo> = non_merge
        .iter()
        .filter(|c| c.has("vague") || c.summary.split_whitespace().count() < TERSE_WORDS)
        .copied()
        .collect();
    let flagged_vague = out.last().is_some_and(|(k, _, _)| *k == "vague_messages");
    if !flagged_vague && non_merge.len() >= 3 && terse.len() * 2 >= non_merge.len() {
        out.push((
            "terse_messages",
            format!(
                "{} of {} commit messages have fewer than {TERSE_WORDS} words or say nothing about the change, e.g. {:?} ({})",
                terse.len(),
                non_merge.len(),
                terse[0].summary,
                list_shas(&terse)
            ),
            cite(&terse),
        ));
    }
    let conventional = non_merge.iter().filter(|c| c.has("conventional")).count();
    if non_merge.len() >= 3 && conventional * 2 >= non_merge.len() {
        out.push((
            "conventional_messages",
            format!(
                "{conventional} of {} commit messages follow Conventional Commits",
                non_merge.len()
            ),
            Vec::new(),
        ));
    }
    let claims: Vec<&CommitInfo> = non_merge
        .iter()
        .filter(|c| c.has("claims_tests_without_tests"))
        .copied()
        .collect();
    if !claims.is_empty() {
        out.push((
            "test_claim_without_tests",
            format!(
                "{} commit(s) say they add tests but change no test file ({})",
                claims.len(),
                list_shas(&claims)
            ),
            cite(&claims),
        ));
    }

    // Tests over time.
    let final_tests = tree.files.get(&FileClass::Tests).copied().unwrap_or(0);
    match first_tests {
        _ if final_tests == 0 => out.push(("no_tests", "the graded tree has no test files".to_string(), Vec::new())),
        None => {}
        // One or two commits cannot show when tests were written.
        Some(i) if n <= 2 => {
            let c = work[i];
            out.push((
                "tests_arrived_at_once",
                format!(
                    "the graded tree has tests, but with {n} commit(s) the history cannot show when they were written: everything arrived at once (tests first seen in commit {})",
                    short(&c.sha)
                ),
                vec![c.sha.clone()],
            ));
        }
        // Nor can tests that came with the commit that added most of the work.
        Some(i)
            if r.largest_commit
                .as_ref()
                .is_some_and(|l| l.commit == work[i].sha && is_dump(l)) =>
        {
            let c = work[i];
            out.push((
                "tests_arrived_at_once",
                format!(
                    "tests first appear in commit {}, which added most of the final lines: the history cannot show when they were written",
                    short(&c.sha)
                ),
                vec![c.sha.clone()],
            ));
        }
        Some(i) => {
            let c = work[i];
            let after = r.first_tests_after_s.unwrap_or(0);
            let late_session = r.sessions.len() >= 2 && r.sessions.last().is_some_and(|s| s.commits.contains(&c.sha));
            // "From the start" means the first quarter of the commits (at least the first one).
            // Not "the first work session": a take-home done in one sitting has one session,
            // and tests added at its end would be "from the start".
            let (kind, when) = if i < (n / 4).max(1) {
                ("tests_from_start", "from the start")
            } else if i * 4 >= n * 3 || late_session {
                ("tests_late", "only late")
            } else {
                ("tests_midway", "midway")
            };
            out.push((
                kind,
                format!(
                    "tests appear {when}: first in commit {} (commit {} of {n}, {} after the first commit)",
                    short(&c.sha),
                    i + 1,
                    human_duration(after)
                ),
                vec![c.sha.clone()],
            ));
        }
    }
    // Scaffolds before the first real tests (or instead of any): said, not counted.
    let scaffolds: Vec<&CommitInfo> = work
        .iter()
        .take(first_tests.unwrap_or(work.len()))
        .filter(|c| c.has("placeholder_tests"))
        .copied()
        .collect();
    if !scaffolds.is_empty() {
        out.push((
            "placeholder_tests",
            format!(
                "the tests added in commit(s) {} assert only constants (such as assertTrue(True)): placeholders, not counted as tests",
                list_shas(&scaffolds)
            ),
            cite(&scaffolds),
        ));
    }
    if let (Some(first), Some(last)) = (r.growth.first(), r.growth.last()) {
        if last.source_lines > 0 && n > 1 {
            out.push((
                "test_growth",
                format!(
                    "test lines went from {} to {} while source lines went from {} to {} (tests/source {:.2} at the end)",
                    first.test_lines,
                    last.test_lines,
                    first.source_lines,
                    last.source_lines,
                    last.test_lines.max(0) as f64 / last.source_lines as f64
                ),
                vec![first.commit.clone(), last.commit.clone()],
            ));
        }
    }

    // Communication.
    match work.iter().find(|c| c.has("readme_results")) {
        Some(c) => out.push((
            "readme_results",
            format!(
                "the README gained content on results or decisions in commit {} ({} after the first commit)",
                short(&c.sha),
                human_duration(r.first_readme_results_after_s.unwrap_or(0))
            ),
            vec![c.sha.clone()],
        )),
        None if tree.has_readme => out.push((
            "readme_no_results",
            "the README never states results, decisions or trade-offs".to_string(),
            Vec::new(),
        )),
        None => out.push((
            "no_readme",
            "the graded tree has no README at its top level".to_string(),
            Vec::new(),
        )),
    }
    if !tree.lfs.is_empty() {
        let shown: Vec<&str> = tree.lfs.iter().take(5).map(String::as_str).collect();
        out.push((
            "lfs_pointer",
            format!(
                "{} file(s) are Git LFS pointers, not content, so they are missing from the graded tree: {}",
                tree.lfs.len(),
                shown.join(", ")
            ),
            vec![r.commit.clone()],
        ));
    }

    // Iteration from a baseline: code early, then changed in later steps.
    let changes_code = |c: &CommitInfo| {
        [FileClass::Source, FileClass::Notebooks, FileClass::Tests]
            .iter()
            .any(|k| c.changes.get(k).is_some_and(|x| x.added + x.removed > 0))
    };
    if let Some(i) = work.iter().position(|c| !c.merge && changes_code(c)) {
        let c = work[i];
        let later = work[i + 1..].iter().filter(|c| !c.merge && changes_code(c)).count();
        let in_first_session = r.sessions.first().is_some_and(|s| s.commits.contains(&c.sha));
        if (in_first_session || i < (n / 4).max(1)) && later >= 3 {
            out.push((
                "early_baseline",
                format!(
                    "code from the start: first in commit {} (commit {} of {n}{}), then {later} later commits changed it",
                    short(&c.sha),
                    i + 1,
                    if in_first_session { ", first work session" } else { "" }
                ),
                vec![c.sha.clone()],
            ));
        }
    }

    // Tooling in the graded tree.
    let listed = |found: &[(&str, String)]| {
        let mut tools: Vec<&str> = found.iter().map(|(t, _)| *t).collect();
        tools.dedup();
        let paths: Vec<&str> = found.iter().take(5).map(|(_, p)| p.as_str()).collect();
        format!("{} ({})", tools.join(", "), paths.join(", "))
    };
    if !tree.ci.is_empty() {
        out.push((
            "ci_config",
            format!("continuous integration is configured: {}", listed(&tree.ci)),
            vec![r.commit.clone()],
        ));
    }
    if !tree.linters.is_empty() {
        let mut found = tree.linters.clone();
        found.sort();
        out.push((
            "linters",
            format!("linters or formatters are configured: {}", listed(&found)),
            vec![r.commit.clone()],
        ));
    }

    out.into_iter()
        .enumerate()
        .map(|(i, (kind, description, commits))| Signal {
            id: format!("H{}", i + 1),
            kind: kind.to_string(),
            description,
            commits,
        })
        .collect()
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
