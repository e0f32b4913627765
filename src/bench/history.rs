//! `assay bench history`: `assay history --json` against `git log --numstat --no-renames` on
//! the same repository (a generated one by default), wall time and peak memory, median of runs.

use std::path::PathBuf;

use anyhow::Result;

use super::{measure, median, Shape};

/// The medians of both commands.
#[derive(Debug, Clone)]
pub struct HistoryBench {
    pub repo: String,
    pub runs: usize,
    /// `assay history --json`: (wall s, peak MiB).
    pub assay: (f64, f64),
    /// `git log --numstat --no-renames`: (wall s, peak MiB).
    pub git: (f64, f64),
}

/// Measures `repo`, or a generated repository of `commits` commits in `shape` (growing by
/// default) when none is given.
pub fn run(repo: Option<PathBuf>, commits: usize, shape: Option<Shape>, runs: usize) -> Result<HistoryBench> {
    let tmp = tempfile::tempdir()?;
    let (repo, label) = match repo {
        Some(r) => {
            let label = r.display().to_string();
            (r, label)
        }
        None => {
            let shape = shape.unwrap_or(Shape::Growing);
            let dir = tmp.path().join("bench-repo");
            eprintln!(
                "generating a {commits}-commit {} repository in {}",
                shape.name(),
                dir.display()
            );
            super::generate_shaped(&dir, commits, shape)?;
            (dir, format!("generated, {commits} commits, shape {}", shape.name()))
        }
    };
    let exe = std::env::current_exe()?.display().to_string();
    let repo_s = repo.display().to_string();
    let data_dir = tmp.path().join("data").display().to_string();
    let ours: Vec<String> = [exe.as_str(), "--data-dir", &data_dir, "history", "--json", &repo_s]
        .map(String::from)
        .to_vec();
    let base: Vec<String> = ["git", "-C", &repo_s, "log", "--numstat", "--no-renames"]
        .map(String::from)
        .to_vec();
    let (mut ow, mut om, mut bw, mut bm) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let runs = runs.max(1);
    for _ in 0..runs {
        let o = measure(&ours)?;
        let b = measure(&base)?;
        ow.push(o.wall_s);
        om.push(o.max_rss_mib);
        bw.push(b.wall_s);
        bm.push(b.max_rss_mib);
    }
    Ok(HistoryBench {
        repo: label,
        runs,
        assay: (median(&mut ow), median(&mut om)),
        git: (median(&mut bw), median(&mut bm)),
    })
}

/// The terminal table.
pub fn text(r: &HistoryBench) -> String {
    let ((ow, om), (bw, bm)) = (r.assay, r.git);
    let mut s = format!("repository: {} (median of {} runs)\n", r.repo, r.runs);
    s += &format!("{:<44} {:>9} {:>12}\n", "command", "wall (s)", "peak (MiB)");
    s += &format!("{:<44} {:>9.3} {:>12.1}\n", "assay history --json", ow, om);
    s += &format!("{:<44} {:>9.3} {:>12.1}\n", "git log --numstat --no-renames", bw, bm);
    s += &format!("ratio (assay / git): wall {:.2}, memory {:.2}\n", ow / bw, om / bm);
    s
}
