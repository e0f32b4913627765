//! `assay bench cohort`: `assay grade` on a generated cohort of small Python repositories, and
//! how busy the machine's cores were during the run: without drafts, and (`--model`) drafted by
//! a local model, where the sandbox's containers and the model's inference share the cores.

use anyhow::{Context, Result};

/// One run's figures.
#[derive(Debug, Clone)]
pub struct CohortBench {
    pub size: usize,
    pub jobs: usize,
    /// The model that drafted, when one did.
    pub model: Option<String>,
    /// Submissions whose status is `done`.
    pub done: usize,
    /// Submissions with drafts (one per rubric criterion), from `assay grade`'s own document.
    pub drafted: usize,
    pub wall_s: f64,
    /// Share of all cores' time busy over the run, from /proc/stat.
    pub busy: f64,
}

/// (busy, total) jiffies of all CPUs, from /proc/stat.
fn cpu_jiffies() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    anyhow::ensure!(v.len() >= 5, "unexpected /proc/stat: {line}");
    let idle = v[3] + v[4]; // idle + iowait
    let total: u64 = v.iter().take(8).sum();
    Ok((total - idle, total))
}

/// Grades a generated cohort of `size`; drafted by the model `model` (a manifest name) of the
/// models directory `models` when given, else with `--no-drafts`.
pub fn run(size: usize, jobs: usize, model: Option<(&std::path::Path, &str)>) -> Result<CohortBench> {
    let tmp = tempfile::tempdir()?;
    let mut cohort = String::from("[assignment]\nname = \"bench\"\nrubric = \"rubric.toml\"\n");
    std::fs::write(
        tmp.path().join("rubric.toml"),
        include_str!("../../rubrics/trial-project.toml"),
    )?;
    for i in 0..size {
        let dir = tmp.path().join(format!("r{i}"));
        std::fs::create_dir_all(dir.join("tests"))?;
        std::fs::write(dir.join("requirements.txt"), "pytest==7.2.1\n")?;
        std::fs::write(
            dir.join("calc.py"),
            format!("def add(a, b):\n    return a + b + {}\n", i % 2),
        )?;
        let tests: String = (0..20)
            .map(|k| format!("def test_{k}():\n    from calc import add\n    assert add({k}, 1) >= {k}\n\n"))
            .collect();
        std::fs::write(dir.join("tests/test_calc.py"), tests)?;
        super::commit_all(&dir, "bench")?;
        cohort.push_str(&format!("[[submission]]\ncandidate = \"c{i}\"\nrepo = \"r{i}\"\n"));
    }
    let cohort_path = tmp.path().join("cohort.toml");
    std::fs::write(&cohort_path, cohort)?;
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data)?;
    let mut grade = std::process::Command::new(std::env::current_exe()?);
    grade.arg("--data-dir").arg(&data).arg("grade");
    match model {
        // The bench's own data directory, the user's models (fetched once, never copied).
        Some((models, name)) => {
            let models =
                std::fs::canonicalize(models).with_context(|| format!("models directory {}", models.display()))?;
            grade.env("ASSAY_MODEL_DIR", models).args(["--model", name]);
        }
        None => {
            grade.arg("--no-drafts");
        }
    }
    grade
        .arg(&cohort_path)
        .args(["--jobs", &jobs.to_string(), "--json", "--out"])
        .arg(tmp.path().join("out"));
    let (b0, t0) = cpu_jiffies()?;
    let start = std::time::Instant::now();
    let out = grade.output()?;
    let wall_s = start.elapsed().as_secs_f64();
    let (b1, t1) = cpu_jiffies()?;
    anyhow::ensure!(
        out.status.success(),
        "grade failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let submissions = v["submissions"].as_array().map(Vec::as_slice).unwrap_or_default();
    let done = submissions.iter().filter(|x| x["status"] == "done").count();
    let drafted = submissions
        .iter()
        .filter(|x| x["drafts"].as_array().is_some_and(|d| !d.is_empty()))
        .count();
    Ok(CohortBench {
        size,
        jobs,
        model: model.map(|(_, m)| m.to_string()),
        done,
        drafted,
        wall_s,
        busy: (b1 - b0) as f64 / (t1 - t0).max(1) as f64,
    })
}

/// The terminal lines.
pub fn text(r: &CohortBench) -> String {
    format!(
        "cohort of {} with --jobs {}, {}: {} done ({} drafted) in {:.1} s, {:.1} s per submission\n\
         CPU utilisation over the run (all cores, from /proc/stat): {:.0}%\n",
        r.size,
        r.jobs,
        r.model
            .as_deref()
            .map_or("no drafts".to_string(), |m| format!("drafted by {m}")),
        r.done,
        r.drafted,
        r.wall_s,
        r.wall_s / r.size as f64,
        r.busy * 100.0
    )
}
