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
pub mod postgres;
pub mod queue;
pub mod sandbox;
pub mod serve;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use git2::{Oid, Repository, Signature, Time};
use serde::Serialize;

/// What a generated repository looks like (`assay bench history --shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A small Python project that grows: a file added every 25 commits, otherwise one edited.
    Growing,
    /// 200 files of 20–120 lines from the first commit, in 20 directories; each later commit
    /// touches 1–5 of them.
    Wide,
    /// 40 files of 2,000–5,000 lines from the first commit; each later commit edits 1–2 lines
    /// of 1–2 of them.
    Large,
    /// 100 files twelve directories deep from the first commit; each later commit touches 1–3.
    Deep,
}

impl Shape {
    pub const ALL: [Shape; 4] = [Shape::Growing, Shape::Wide, Shape::Large, Shape::Deep];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Growing => "growing",
            Shape::Wide => "wide",
            Shape::Large => "large",
            Shape::Deep => "deep",
        }
    }
}

/// Builds a repository with `commits` commits on `main`: a small Python
/// project that grows, with tests, docs and edits to existing files, one
/// commit every few minutes in sessions. Deterministic for a given count.
pub fn generate_repo(dir: &Path, commits: usize) -> Result<Oid, git2::Error> {
    generate_shaped(dir, commits, Shape::Growing)
}

/// Builds a repository of `commits` commits on `main` in `shape`. Deterministic for a given
/// count and shape.
pub fn generate_shaped(dir: &Path, commits: usize, shape: Shape) -> Result<Oid, git2::Error> {
    let repo = Repository::init(dir)?;
    // (path, lines, blob id); a blob is written again only when its file changes.
    let mut files: Vec<(String, Vec<String>, Oid)> = Vec::new();
    let mut parent: Option<Oid> = None;
    let mut t: i64 = 1_700_000_000;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let blob_of = |repo: &Repository, lines: &[String]| repo.blob(format!("{}\n", lines.join("\n")).as_bytes());
    // The files a shape starts with: how many, and the fewest and most lines of each.
    let start: Option<(usize, u64, u64)> = match shape {
        Shape::Growing => None,
        Shape::Wide => Some((200, 20, 120)),
        Shape::Large => Some((40, 2_000, 5_000)),
        Shape::Deep => Some((100, 20, 60)),
    };
    if let Some((count, lo, hi)) = start {
        for n in 0..count {
            let len = lo + next(&mut rng) % (hi - lo + 1);
            let lines: Vec<String> = (0..len)
                .map(|k| format!("line {k} of file {n} = {}", next(&mut rng) % 1000))
                .collect();
            let blob = blob_of(&repo, &lines)?;
            files.push((start_path(shape, n), lines, blob));
        }
    }
    for i in 0..commits {
        let edit = |files: &mut Vec<(String, Vec<String>, Oid)>,
                    rng: &mut u64,
                    f: usize,
                    lines: usize|
         -> Result<(), git2::Error> {
            let entry = &mut files[f];
            for _ in 0..lines {
                let (at, append) = (next(rng) as usize, next(rng).is_multiple_of(3));
                let len = entry.1.len();
                entry.1[at % len] = format!("edited in commit {i}: {}", next(rng) % 100_000);
                if append && shape != Shape::Large {
                    entry.1.push(format!("appended in commit {i}"));
                }
            }
            entry.2 = blob_of(&repo, &entry.1)?;
            Ok(())
        };
        match shape {
            // Add a file every 25 commits, otherwise edit one.
            Shape::Growing if files.is_empty() || i % 25 == 0 => {
                let n = files.len();
                let path = match n % 4 {
                    0 | 1 => format!("src/pkg{}/module_{n}.py", n / 40),
                    2 => format!("tests/test_module_{n}.py"),
                    _ => format!("docs/note_{n}.md"),
                };
                let lines: Vec<String> = (0..30)
                    .map(|k| format!("line {k} of file {n} = {}", next(&mut rng) % 1000))
                    .collect();
                let blob = blob_of(&repo, &lines)?;
                files.push((path, lines, blob));
            }
            Shape::Growing => {
                let f = (next(&mut rng) as usize) % files.len();
                edit(&mut files, &mut rng, f, 1)?;
            }
            // The first commit is the files the shape starts with.
            _ if i == 0 => {}
            _ => {
                let (most, lines) = match shape {
                    Shape::Wide => (5, 1),
                    Shape::Large => (2, 2),
                    _ => (3, 1),
                };
                let touched = 1 + (next(&mut rng) as usize) % most;
                for _ in 0..touched {
                    let f = (next(&mut rng) as usize) % files.len();
                    edit(&mut files, &mut rng, f, lines)?;
                }
            }
        }
        let mut dirs: std::collections::BTreeMap<String, Vec<(String, Oid)>> = std::collections::BTreeMap::new();
        for (path, _, blob) in &files {
            let (d, name) = path.rsplit_once('/').unwrap_or(("", path));
            dirs.entry(d.to_string()).or_default().push((name.to_string(), *blob));
        }
        // Nested directories: build bottom-up.
        let tree = build_tree(&repo, &dirs, "")?;
        let gap = if next(&mut rng).is_multiple_of(10) {
            5 * 3600
        } else {
            60 + (next(&mut rng) % 900) as i64
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

/// The path of the `n`-th file a shape starts with.
fn start_path(shape: Shape, n: usize) -> String {
    match shape {
        Shape::Wide => format!("pkg{}/module_{n}.py", n % 20),
        Shape::Large => format!("src/big_{n}.py"),
        _ => {
            let dirs: Vec<String> = (0..12).map(|d| format!("d{}", (n + d) % 3)).collect();
            format!("{}/file_{n}.py", dirs.join("/"))
        }
    }
}

/// The generators' xorshift: deterministic, no dependency.
fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
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

#[cfg(test)]
mod shape_tests {
    use super::*;

    /// (files, deepest path's directories, longest file's lines) of `head`'s tree.
    fn tree_of(repo: &Repository, head: Oid) -> (usize, usize, usize) {
        let tree = repo.find_commit(head).unwrap().tree().unwrap();
        let (mut files, mut depth, mut longest) = (0, 0, 0);
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() == Some(git2::ObjectType::Blob) {
                files += 1;
                depth = depth.max(dir.matches('/').count());
                let blob = repo.find_blob(e.id()).unwrap();
                longest = longest.max(blob.content().iter().filter(|b| **b == b'\n').count());
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        (files, depth, longest)
    }

    #[test]
    fn every_shape_is_what_it_says_and_deterministic() {
        for shape in Shape::ALL {
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let head = generate_shaped(a.path(), 40, shape).unwrap();
            assert_eq!(head, generate_shaped(b.path(), 40, shape).unwrap(), "{shape:?}");
            let repo = Repository::open(a.path()).unwrap();
            let mut walk = repo.revwalk().unwrap();
            walk.push(head).unwrap();
            assert_eq!(walk.count(), 40, "{shape:?}");
            let (files, depth, longest) = tree_of(&repo, head);
            match shape {
                Shape::Growing => assert_eq!(files, 2, "a file every 25 commits"),
                Shape::Wide => assert!(files == 200 && (20..=125).contains(&longest), "{files} {longest}"),
                Shape::Large => assert!(files == 40 && longest >= 2_000, "{files} {longest}"),
                Shape::Deep => assert!(files == 100 && depth == 12, "{files} {depth}"),
            }
        }
        // The growing shape is the repository generate_repo made before shapes existed (its
        // head's id, recorded from that code): figures measured on it stay comparable.
        let a = tempfile::tempdir().unwrap();
        assert_eq!(
            generate_repo(a.path(), 60).unwrap().to_string(),
            "5c6604be036740b1a8858c53fc11e66de360b054"
        );
    }
}
