//! The per-commit facts aggregated into the report: sessions, growth, the largest commit,
//! authors, the template set apart.

use super::*;

/// Commits this far in the future (clock skew allowance) are flagged.
pub(super) const FUTURE_SLACK_SECS: i64 = 3600;

/// A committer date this far before its author date is flagged as backdated.
pub(super) const BACKDATE_SECS: i64 = 3600;

/// A first-parent step back in time by more than this is non-monotonic.
pub(super) const NON_MONOTONIC_SECS: i64 = 300;

/// Consecutive commits authored at most this far apart belong to one burst.
pub(super) const BURST_GAP_SECS: i64 = 5;

/// A burst this long is a replayed history.
pub(super) const BURST_MIN_COMMITS: usize = 8;

/// At most this many commits are cited by one signal.
pub(super) const MAX_CITED: usize = 20;

/// Paths a partial copy lacks listed in a history report, at most.
pub(super) const MAX_MISSING_LISTED: usize = 50;

/// Growth curve points kept in the report.
pub(super) const GROWTH_POINTS: usize = 50;

pub(super) fn to_utc(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// Whether a commit summary says nothing about what changed.
/// Whether the largest commit holds most of the work (the `single_dump` signal).
pub(super) fn is_dump(l: &LargestCommit) -> bool {
    l.share >= SINGLE_DUMP_SHARE && l.kept >= 20
}

pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

pub(super) fn cite(commits: &[&CommitInfo]) -> Vec<String> {
    commits.iter().take(MAX_CITED).map(|c| c.sha.clone()).collect()
}

pub(super) fn list_shas(commits: &[&CommitInfo]) -> String {
    let mut s: Vec<&str> = commits.iter().take(5).map(|c| short(&c.sha)).collect();
    if commits.len() > 5 {
        s.push("…");
    }
    s.join(", ")
}

pub(super) fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 3600 {
        format!("{} min", secs / 60)
    } else if secs < 2 * 86400 {
        format!("{:.1} h", secs as f64 / 3600.0)
    } else {
        format!("{:.1} days", secs as f64 / 86400.0)
    }
}

pub(super) fn build_report(
    input: &HistoryInput<'_>,
    head: &str,
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

pub(super) fn sample<T: Clone>(all: Vec<T>, n: usize) -> Vec<T> {
    if all.len() <= n {
        return all;
    }
    let last = all.len() - 1;
    (0..n).map(|i| all[i * last / (n - 1)].clone()).collect()
}
