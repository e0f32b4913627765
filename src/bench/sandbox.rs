//! `assay bench sandbox`: the sandbox's overhead against `docker run --rm`, and `assay check`
//! against its install and test commands run by hand in the same image, caches warm.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::median;
use crate::sandbox::docker::DockerSandbox;
use crate::sandbox::{Phase, PhaseSpec, Sandbox as _, SandboxLimits};

const IMAGE: &str = "assay-runner-python";

/// Medians of both measurements: (assay s, baseline s).
#[derive(Debug, Clone)]
pub struct SandboxBench {
    /// One sandboxed `true` against `docker run --rm IMAGE true`.
    pub true_run: (f64, f64),
    /// `assay check` (install once, tests twice) against install + test by hand.
    pub check: (f64, f64),
}

/// Wall seconds of a command that must succeed.
fn timed(cmd: &mut Command) -> Result<f64> {
    let start = Instant::now();
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(start.elapsed().as_secs_f64())
}

/// A small pytest project, committed.
fn project(src: &Path) -> Result<()> {
    std::fs::create_dir_all(src.join("tests"))?;
    std::fs::write(src.join("requirements.txt"), "pytest==7.2.1\n")?;
    std::fs::write(src.join("calc.py"), "def add(a, b):\n    return a + b\n")?;
    std::fs::write(
        src.join("tests/test_calc.py"),
        "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    )?;
    Ok(())
}

pub async fn run(sandbox: &DockerSandbox, runs: usize) -> Result<SandboxBench> {
    let runs = runs.max(1);
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("src");
    project(&src)?;

    // 1. One sandboxed `true` (create, start, wait, copy-out, remove) against `docker run --rm`.
    let work = sandbox
        .prepare(
            &format!("bench-{}", std::process::id()),
            None,
            IMAGE,
            &src,
            &SandboxLimits::default(),
        )
        .await?;
    let spec = PhaseSpec {
        phase: Phase::Test,
        image: IMAGE.into(),
        script: "true".into(),
        env: Vec::new(),
        cache_dirs: Vec::new(),
        runner: "python".into(),
        collect: Some(".assay".into()),
        timeout: Duration::from_secs(60),
        memory: 256 << 20,
        pids: 64,
    };
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        sandbox.run(&work, &spec, &SandboxLimits::default()).await?;
        ours.push(t.elapsed().as_secs_f64());
        base.push(timed(Command::new("docker").args(["run", "--rm", IMAGE, "true"]))?);
    }
    sandbox.cleanup(&work).await?;
    let true_run = (median(&mut ours), median(&mut base));

    // 2. `assay check` (install once, tests twice) against the runner's install
    //    and test commands run by hand in one `docker run` each, caches warm.
    let runner = crate::runner::by_name("python").map_err(anyhow::Error::msg)?;
    super::commit_all(&src, "bench")?;
    let exe = std::env::current_exe()?;
    let data = tmp.path().join("data");
    let check = || -> Result<f64> {
        timed(
            Command::new(&exe)
                .arg("--data-dir")
                .arg(&data)
                .arg("check")
                .arg(&src)
                .arg("--json"),
        )
    };
    check()?; // warm the pip cache volume
    let by_hand = |script: &str| -> Result<f64> {
        let mount = format!("{}:/src:ro", src.display());
        let full = format!("cp -r /src/. /work/ && mkdir -p /work/.assay && {script}");
        timed(Command::new("docker").args([
            "run",
            "--rm",
            "-v",
            &mount,
            "-v",
            "assay-cache-python-cache-pip:/cache/pip",
            "-e",
            "PIP_CACHE_DIR=/cache/pip",
            "-e",
            "HOME=/tmp",
            IMAGE,
            "bash",
            "-c",
            &full,
        ]))
    };
    let (mut ours2, mut base2) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours2.push(check()?);
        // Install then test in one container: the commands' sum plus one start.
        base2.push(by_hand(&format!("{}\n{}", runner.install, runner.test))?);
    }
    Ok(SandboxBench {
        true_run,
        check: (median(&mut ours2), median(&mut base2)),
    })
}

/// The terminal table.
pub fn text(r: &SandboxBench) -> String {
    let mut s = format!(
        "{:<58} {:>9} {:>9} {:>7}\n",
        "measurement (median of runs)", "assay s", "base s", "ratio"
    );
    for (what, (o, b)) in [
        ("sandboxed `true` vs docker run --rm IMAGE true", r.true_run),
        ("assay check (2 test runs) vs install + test by hand", r.check),
    ] {
        s += &format!("{what:<58} {o:>9.3} {b:>9.3} {:>7.2}\n", o / b);
    }
    s
}
