//! `assay history REPO`: the iteration history of a repository, as a timeline or JSON.

use std::process::ExitCode;

use anyhow::Result;

use assay::config::Overrides;

use assay::git;
use assay::report;

#[derive(clap::Args)]
pub struct Args {
    /// A local repository path or an https/ssh URL.
    repo: String,
    /// Branch, tag or commit (default: HEAD).
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// Print the JSON document instead of the timeline.
    #[arg(long)]
    json: bool,
}

pub fn exec(g: &super::Global, a: Args) -> Result<ExitCode> {
    let settings = g.settings(Overrides::default())?;
    let opened = super::open_repo(&settings, &a.repo, a.git_ref.as_deref())?;
    let history = git::analyze(&git::HistoryInput {
        repo: &opened.git_dir,
        commit: &opened.commit,
        now: chrono::Utc::now(),
        max_commits: settings.limits.commits,
        after_deadline: &opened.after_deadline,
        salt: "assay-history",
        max_blob: settings.limits.file_bytes,
    })?;
    if a.json {
        super::print_json(&history)?;
    } else {
        print!("{}", report::text::history(&opened.shown, &history));
    }
    Ok(ExitCode::SUCCESS)
}
