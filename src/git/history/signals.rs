//! The report's findings as signals `H1…` in a fixed order of kinds, each citing commits.

use super::*;

pub(super) fn signals(
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

/// Signals of the template's tests (`removed`, `weakened`: paths with the lines they lost) that
/// the graded tree deleted or cut down since the template's last commit `tip`, appended with
/// the next ids.
pub(super) fn template_tests(
    report: &mut HistoryReport,
    tip: &str,
    removed: &[(String, u64)],
    weakened: &[(String, u64)],
) {
    let list = |files: &[(String, u64)]| {
        let shown: Vec<String> = files.iter().take(5).map(|(p, n)| format!("{p} ({n} lines)")).collect();
        format!("{}{}", shown.join(", "), if files.len() > 5 { ", …" } else { "" })
    };
    let short = &tip[..tip.len().min(7)];
    for (kind, files, what) in [
        ("template_tests_removed", removed, "deleted"),
        (
            "template_tests_weakened",
            weakened,
            "cut down (more lines removed than added)",
        ),
    ] {
        if files.is_empty() {
            continue;
        }
        report.signals.push(Signal {
            id: format!("H{}", report.signals.len() + 1),
            kind: kind.into(),
            description: format!(
                "{} test file(s) the assignment's template shipped (as of {short}) were {what}: {}",
                files.len(),
                list(files)
            ),
            commits: vec![report.commit.clone()],
        });
    }
}
