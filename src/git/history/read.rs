//! The history's only I/O: libgit2 reads of the commits (walked, diffed in parallel, one
//! `Repository` per rayon worker) and of the graded tree, into plain per-commit facts.
//! Everything else in `history` is arithmetic over these facts.

use git2::{Delta, DiffOptions, ObjectType, Oid, Patch, Repository, Sort, TreeWalkMode, TreeWalkResult};
use rayon::prelude::*;

use super::*;

/// Everything the report is built from, read from the repository.
pub(super) struct Read {
    /// The graded commit.
    pub(super) head: String,
    /// Per commit, oldest or newest first as walked.
    pub(super) facts: Vec<CommitFacts>,
    /// The graded tree.
    pub(super) tree: TreeFacts,
    /// The first-parent chain's (sha, committer time).
    pub(super) first_parent: Vec<(String, i64)>,
    /// Where the graded commit keeps its tests.
    pub(super) layout: TestLayout,
}

/// Reads `input.commit`'s history: the commits walked, each diffed (in parallel), the graded
/// tree and the first-parent chain.
pub(super) fn read(input: &HistoryInput<'_>) -> Result<Read, Failure> {
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
                Ok(repo) => commit_facts(repo, *oid, input.salt, &layout, input.max_blob),
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
    Ok(Read {
        head: head.id().to_string(),
        facts,
        tree,
        first_parent: first_parent_chain,
        layout,
    })
}

/// Blobs above this size are not counted for lines in the final tree.
pub(super) const MAX_COUNTED_BLOB: usize = 8 << 20;

/// Ancestors of `head`, oldest first (parents before children).
pub(super) fn walk(repo: &Repository, head: Oid, max: u64) -> Result<Vec<Oid>, Failure> {
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
pub(super) fn first_parent_times(repo: &Repository, head: Oid, max: u64) -> Result<Vec<(String, i64)>, Failure> {
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
pub(super) struct CommitFacts {
    pub(super) info: CommitInfo,
    pub(super) email_key: String,
    /// Paths this commit changed whose objects the repository lacks (their lines are not counted).
    pub(super) missing: Vec<String>,
    /// Lines added per path, outside generated and data files.
    pub(super) work_paths: Vec<(String, u64)>,
    /// Ways the author is known beyond the email ([`handles`]).
    pub(super) handles: Vec<String>,
}

/// The pytest configuration at the root of `head`'s tree (files over 64 KiB are not read).
pub(super) fn test_layout(repo: &Repository, head: Oid) -> TestLayout {
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

pub(super) fn commit_facts(
    repo: &Repository,
    oid: Oid,
    salt: &str,
    layout: &TestLayout,
    max_blob: u64,
) -> Result<CommitFacts, Failure> {
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
            // A blob over the file-size limit is a changed file whose lines are unknown, as a
            // binary one is: its size is read from the object's header, and it is never
            // inflated (a 200 MB blob compresses to almost nothing in a fetch).
            let too_large = |id: Oid| {
                !id.is_zero()
                    && repo
                        .odb()
                        .and_then(|o| o.read_header(id))
                        .is_ok_and(|(size, _)| size as u64 > max_blob)
            };
            if too_large(delta.old_file().id()) || too_large(delta.new_file().id()) {
                changes.entry(class).or_default().files += 1;
                continue;
            }
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

pub(super) fn is_readme(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name.starts_with("readme")
}

/// Words that mark README content about results, decisions or trade-offs.
/// Metric names alone (accuracy, recall) are left out: a README states its
/// success metric up front, before there are results.
pub(super) const RESULTS_WORDS: &[&str] = &[
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
pub(super) fn added_lines<'p>(patch: &'p Patch<'_>) -> impl Iterator<Item = String> + 'p {
    (0..patch.num_hunks()).flat_map(move |h| {
        let n = patch.num_lines_in_hunk(h).unwrap_or(0);
        (0..n).filter_map(move |l| {
            let line = patch.line_in_hunk(h, l).ok()?;
            (line.origin() == '+').then(|| String::from_utf8_lossy(line.content()).into_owned())
        })
    })
}

pub(super) fn patch_adds_results(patch: &Patch<'_>) -> bool {
    added_lines(patch).any(|text| {
        let text = text.to_lowercase();
        RESULTS_WORDS.iter().any(|w| text.contains(w))
    })
}

/// Facts about the graded tree.
#[derive(Debug, Default)]
pub(super) struct TreeFacts {
    pub(super) files: BTreeMap<FileClass, u64>,
    pub(super) lines: BTreeMap<FileClass, u64>,
    pub(super) lfs: Vec<String>,
    /// Paths of the graded tree whose objects the repository lacks (a directory ends in `/`).
    pub(super) missing: Vec<String>,
    pub(super) has_readme: bool,
    /// CI configuration files: (service, path).
    pub(super) ci: Vec<(&'static str, String)>,
    /// Linter and formatter configuration: (tool, path).
    pub(super) linters: Vec<(&'static str, String)>,
    /// Lines of each file outside generated and data files (a notebook: its cells' sources).
    pub(super) path_lines: HashMap<String, u64>,
}

pub(super) fn is_rust(path: &str) -> bool {
    path.ends_with(".rs")
}

/// Whether a Rust line opens test code: the test-module gate or a test attribute
/// (`#[test]`, `#[tokio::test]`, `#[rstest]`, …).
pub(super) fn opens_rust_tests(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("#[cfg(test)]") || (t.starts_with("#[") && t.contains("test]")) || t.starts_with("#[test")
}

/// Lines added and removed inside Rust test code in one file's patch: from a
/// line that opens test code to the end of its hunk (test modules sit at the
/// end of a file, test functions run to their hunk's end).
pub(super) fn rust_test_lines(patch: &Patch<'_>) -> (u64, u64) {
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
pub(super) enum Assertion {
    None,
    Real,
    /// `self.assertTrue(True)  # Placeholder test`, `assert True`, `expect(true).toBe(true)`,
    /// `assert_eq!(1, 1)`: a scaffold's stand-in that tests nothing.
    Placeholder,
}

/// What one added line of test code asserts (Python, JavaScript/TypeScript, Rust, Go).
pub(super) fn assertion(line: &str) -> Assertion {
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
pub(super) fn test_assertions(patch: &Patch<'_>) -> (u64, u64) {
    added_lines(patch).fold((0, 0), |(real, placeholder), line| match assertion(&line) {
        Assertion::Real => (real + 1, placeholder),
        Assertion::Placeholder => (real, placeholder + 1),
        Assertion::None => (real, placeholder),
    })
}

/// Lines of a Rust file from its first line that opens test code to the end
/// (0 when it has none).
pub(super) fn rust_test_tail(data: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(|l| opens_rust_tests(l))
        .map_or(0, |i| (lines.len() - i) as u64)
}

pub(super) fn tree_facts(repo: &Repository, head: Oid, layout: &TestLayout) -> Result<TreeFacts, Failure> {
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
            if let Some(service) = crate::git::tooling::ci_service(&path) {
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
                let text = crate::git::tooling::needs_content(&path).then(|| String::from_utf8_lossy(data));
                for tool in crate::git::tooling::linters(&path, text.as_deref()) {
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
pub(super) fn line_change(old: &[String], new: &[String]) -> (u64, u64) {
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
pub(super) fn notebook_change(
    repo: &Repository,
    delta: &git2::DiffDelta<'_>,
) -> Result<Option<(u64, u64)>, git2::Error> {
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

pub(super) fn bytecount(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Paths, each with the lines it lost.
pub(super) type LostLines = Vec<(String, u64)>;

/// Test files of `template`'s tree (the assignment's starter code) that `head`'s tree deleted
/// or shrank: `(removed, weakened)`, each path with the lines it lost (weakened: lines removed
/// less lines added, when more went than came). Blobs over `max_blob` are not compared.
pub(super) fn template_tests(
    repo: &Path,
    template: &str,
    head: &str,
    layout: &TestLayout,
    max_blob: u64,
) -> Result<(LostLines, LostLines), Failure> {
    let repo = Repository::open(repo)
        .map_err(|e| Failure::infra(format!("cannot open {}: {}", repo.display(), e.message())))?;
    let tree_of = |sha: &str| {
        Oid::from_str(sha)
            .and_then(|o| repo.find_commit(o))
            .and_then(|c| c.tree())
            .map_err(|e| {
                corrupt::failure(&e, Some(&repo), &format!("reading commit {sha}"))
                    .unwrap_or_else(|| Failure::infra(format!("cannot read commit {sha}: {}", e.message())))
            })
    };
    let (old, new) = (tree_of(template)?, tree_of(head)?);
    let mut opts = DiffOptions::new();
    opts.ignore_submodules(true);
    let diff = repo
        .diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts))
        .map_err(|e| Failure::infra(format!("cannot diff {template}..{head}: {}", e.message())))?;
    let odb = repo
        .odb()
        .map_err(|e| Failure::infra(format!("cannot open object database: {}", e.message())))?;
    let small = |id: Oid| odb.read_header(id).is_ok_and(|(n, _)| n as u64 <= max_blob);
    let (mut removed, mut weakened) = (Vec::new(), Vec::new());
    for (i, delta) in diff.deltas().enumerate() {
        let Some(path) = delta.old_file().path().map(|p| p.to_string_lossy().into_owned()) else {
            continue;
        };
        if layout.classify(&path) != FileClass::Tests || !small(delta.old_file().id()) {
            continue;
        }
        let lines = |id: Oid| -> u64 { repo.find_blob(id).map(|b| bytecount(b.content())).unwrap_or(0) };
        match delta.status() {
            Delta::Deleted => removed.push((path, lines(delta.old_file().id()))),
            Delta::Modified if small(delta.new_file().id()) => {
                let Ok(Some(patch)) = Patch::from_diff(&diff, i) else {
                    continue;
                };
                let Ok((_, added, deleted)) = patch.line_stats() else {
                    continue;
                };
                if deleted > added {
                    weakened.push((path, (deleted - added) as u64));
                }
            }
            _ => {}
        }
    }
    Ok((removed, weakened))
}
