//! Benchmarks that compare assay with a baseline in the same run, and the
//! synthetic repositories they (and the tests) use.
//!
//! Figures are ratios against a baseline measured on the same machine in the
//! same run, never absolute times, so they mean something on any machine.

pub mod cohort;
pub mod corpus;
pub mod history;
pub mod items;
pub mod llm;
pub mod sandbox;
pub mod serve;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use git2::{Oid, Repository, Signature, Time};
use serde::Serialize;

/// Builds a repository with `commits` commits on `main`: a small Python
/// project that grows, with tests, docs and edits to existing files, one
/// commit every few minutes in sessions. Deterministic for a given count.
pub fn generate_repo(dir: &Path, commits: usize) -> Result<Oid, git2::Error> {
    let repo = Repository::init(dir)?;
    // (path, lines, blob id); a blob is written again only when its file changes.
    let mut files: Vec<(String, Vec<String>, Oid)> = Vec::new();
    let mut parent: Option<Oid> = None;
    let mut t: i64 = 1_700_000_000;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..commits {
        // Add a file every 25 commits, otherwise edit one.
        if files.is_empty() || i % 25 == 0 {
            let n = files.len();
            let path = match n % 4 {
                0 | 1 => format!("src/pkg{}/module_{n}.py", n / 40),
                2 => format!("tests/test_module_{n}.py"),
                _ => format!("docs/note_{n}.md"),
            };
            let lines: Vec<String> = (0..30)
                .map(|k| format!("line {k} of file {n} = {}", next() % 1000))
                .collect();
            let blob = repo.blob(format!("{}\n", lines.join("\n")).as_bytes())?;
            files.push((path, lines, blob));
        } else {
            let f = (next() as usize) % files.len();
            let (at, append) = (next() as usize, next() % 3 == 0);
            let edit = format!("edited in commit {i}: {}", next() % 100_000);
            let entry = &mut files[f];
            let len = entry.1.len();
            entry.1[at % len] = edit;
            if append {
                entry.1.push(format!("appended in commit {i}"));
            }
            entry.2 = repo.blob(format!("{}\n", entry.1.join("\n")).as_bytes())?;
        }
        let mut dirs: std::collections::BTreeMap<String, Vec<(String, Oid)>> = std::collections::BTreeMap::new();
        for (path, _, blob) in &files {
            let (d, name) = path.rsplit_once('/').unwrap_or(("", path));
            dirs.entry(d.to_string()).or_default().push((name.to_string(), *blob));
        }
        // Nested directories: build bottom-up.
        let tree = build_tree(&repo, &dirs, "")?;
        let gap = if next() % 10 == 0 {
            5 * 3600
        } else {
            60 + (next() % 900) as i64
        };
        t += gap;
        let sig = Signature::new("Sam Candidate", "sam@example.org", &Time::new(t, 0))?;
        let tree = repo.find_tree(tree)?;
        let parents: Vec<git2::Commit<'_>> = parent.map(|p| repo.find_commit(p)).transpose()?.into_iter().collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let msg = format!("Change {i}: adjust module behaviour");
        let oid = repo.commit(Some("refs/heads/main"), &sig, &sig, &msg, &tree, &refs)?;
        parent = Some(oid);
    }
    repo.set_head("refs/heads/main")?;
    parent.ok_or_else(|| git2::Error::from_str("no commits requested"))
}

fn build_tree(
    repo: &Repository,
    dirs: &std::collections::BTreeMap<String, Vec<(String, Oid)>>,
    prefix: &str,
) -> Result<Oid, git2::Error> {
    let mut b = repo.treebuilder(None)?;
    if let Some(entries) = dirs.get(prefix) {
        for (name, oid) in entries {
            b.insert(name, *oid, 0o100644)?;
        }
    }
    let mut children: Vec<&str> = dirs
        .keys()
        .filter_map(|d| {
            let rest = if prefix.is_empty() {
                Some(d.as_str())
            } else {
                d.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'))
            };
            rest.filter(|r| !r.is_empty()).map(|r| r.split('/').next().unwrap_or(r))
        })
        .collect();
    children.sort_unstable();
    children.dedup();
    for child in children {
        let full = if prefix.is_empty() {
            child.to_string()
        } else {
            format!("{prefix}/{child}")
        };
        let oid = build_tree(repo, dirs, &full)?;
        b.insert(child, oid, 0o040000)?;
    }
    b.write()
}

/// Wall time and peak memory of one command.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Seconds.
    pub wall_s: f64,
    /// Peak resident set size, MiB.
    pub max_rss_mib: f64,
}

/// Runs `argv` as a child of a fresh `assay bench exec` process, so that the
/// peak memory reported is that command's alone.
pub fn measure(argv: &[String]) -> std::io::Result<Measurement> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("bench")
        .arg("exec")
        .arg("--")
        .args(argv)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let wall_s: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    let rss_kib: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    Ok(Measurement {
        wall_s,
        max_rss_mib: rss_kib / 1024.0,
    })
}

/// The body of `assay bench exec -- CMD…`: runs the command with output
/// discarded and prints `WALL_SECONDS MAX_RSS_KIB`.
pub fn exec_and_report(argv: &[String]) -> std::io::Result<()> {
    let (cmd, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command given"))?;
    let start = Instant::now();
    let status = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(std::io::Error::other(format!("{cmd} exited with {status}")));
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| std::io::Error::other(format!("getrusage: {e}")))?;
    println!("{wall:.4} {}", usage.max_rss());
    Ok(())
}

/// Makes `dir` a repository whose one commit holds every file in it.
pub fn commit_all(dir: &Path, message: &str) -> Result<Oid, git2::Error> {
    let repo = Repository::init(dir)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = Signature::now("bench", "bench@example.org")?;
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[])
}

/// Median of a non-empty slice.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}
