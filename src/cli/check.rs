//! `assay check REPO`: install and test a repository in the sandbox, the candidate's
//! pre-submission check, with its reproducibility report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use assay::config::{Overrides, Settings};
use assay::diag::InputError;
use assay::git;
use assay::report;

#[derive(clap::Args)]
pub struct Args {
    /// A local repository path or an https/ssh URL.
    repo: String,
    /// Force a runner (python, rust, node, go) instead of detecting one.
    #[arg(long)]
    runner: Option<String>,
    /// Directory for report.md and report.html.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Lower the test phase's wall time (seconds).
    #[arg(long)]
    test_timeout: Option<u64>,
    /// Also run these hidden tests (a directory), after the candidate's.
    #[arg(long)]
    hidden_tests: Option<PathBuf>,
    /// Print the JSON document.
    #[arg(long)]
    json: bool,
}

pub fn exec(g: &super::Global, a: Args) -> Result<ExitCode> {
    let settings = g.settings(Overrides {
        test_timeout: a.test_timeout,
        ..Overrides::default()
    })?;
    if let Some(h) = &a.hidden_tests {
        if !h.is_dir() {
            return Err(InputError::file(h, "hidden tests directory does not exist").into());
        }
    }
    super::runtime()?.block_on(check(&settings, a))
}

/// Exports the graded tree of `spec` (HEAD of a local repository, or a fetched URL).
fn export(settings: &Settings, spec: &str, dest: &Path) -> Result<(String, git::Exported)> {
    let opened = super::open_repo(settings, spec, None)?;
    let repo = git2::Repository::open(&opened.git_dir)?;
    let exported = git::export_tree(&repo, &opened.commit, dest, &settings.limits)?;
    Ok((opened.commit, exported))
}

async fn check(settings: &Settings, a: Args) -> Result<ExitCode> {
    let spec = a.repo.as_str();
    let tmp = tempfile::tempdir()?;
    let tree = tmp.path().join("tree");
    let (settings_c, spec_c, tree_c) = (settings.clone(), spec.to_string(), tree.clone());
    let (commit, exported) = tokio::task::spawn_blocking(move || export(&settings_c, &spec_c, &tree_c)).await??;
    let sandbox = super::docker(settings, super::NO_DOCKER).await?;
    let mut limits = assay::sandbox::SandboxLimits::from_settings(settings);
    if let Some(t) = settings.test_timeout {
        // Limits can only be lowered per run.
        limits.test_seconds = limits.test_seconds.min(t.max(1));
    }
    let job = format!("check-{}-{}", &commit[..12], std::process::id());
    let hidden = a.hidden_tests.as_deref();
    let run = assay::check::CheckRun {
        job: &job,
        hidden_tests: hidden,
        cancel: super::cancel_on_signal("the check stops; its containers and volume are removed"),
    };
    let report = assay::check::check_tree(&sandbox, &tree, a.runner.as_deref(), limits, &exported, run).await?;
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("report.md"), report::check_markdown(spec, &commit, &report))?;
        let html = report::render_candidate(
            Some(&git::redact(spec)),
            Some(&commit),
            report.sandbox.as_ref(),
            Some(&report.badge),
            &report.findings,
            None,
        )?;
        std::fs::write(out.join("report.html"), html)?;
    }
    if a.json {
        let mut doc = serde_json::to_value(&report)?;
        if let Some(obj) = doc.as_object_mut() {
            obj.remove("sandbox");
        }
        super::print_json(&doc)?;
    } else {
        print!("{}", report::text::check(&report));
    }
    Ok(ExitCode::SUCCESS)
}
