//! `assay feedback COHORT`: each candidate's feedback report once a grader finalized the review.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use assay::diag::InputError;
use assay::feedback::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Cohort name (the assignment's name, as graded).
    cohort: String,
    /// Directory for CANDIDATE.feedback.html and .md.
    #[arg(long, default_value = "assay-out/feedback")]
    out: PathBuf,
    /// Only this candidate (id as in the cohort file).
    #[arg(long)]
    candidate: Option<String>,
    /// Database URL (default sqlite://DATA_DIR/assay.db).
    #[arg(long)]
    db: Option<String>,
}

pub fn exec(g: &super::Global, a: Args) -> Result<ExitCode> {
    let settings = g.settings(super::db_flag(&a.db))?;
    let candidate = a.candidate.as_deref();
    super::runtime()?.block_on(async {
        let store = super::open_store(&settings).await?;
        let c = super::find_cohort(store.as_ref(), &a.cohort).await?;
        let done = assay::feedback::write_cohort(store.as_ref(), &c, candidate, &a.out).await?;
        if let (Some(name), true) = (candidate, done.is_empty()) {
            return Err(InputError::file(
                Path::new(name),
                format!(
                    "no such candidate in cohort {} (check the id as in the cohort file)",
                    a.cohort
                ),
            )
            .into());
        }
        let mut written = 0;
        for (who, outcome) in &done {
            match outcome {
                Outcome::Written { html, markdown } => {
                    written += 1;
                    println!("{who}: {} and {}", html.display(), markdown.display());
                }
                Outcome::NotFinal => {
                    println!("{who}: no final review yet: nothing written (a grader finalizes it in `assay serve`)")
                }
            }
        }
        eprintln!(
            "assay: feedback written for {written} of {} submission(s) into {}",
            done.len(),
            a.out.display()
        );
        // Asked for one candidate whose review is not final: nothing was done.
        Ok(if candidate.is_some() && written == 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}
