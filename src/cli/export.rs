//! `assay export COHORT`: the final review scores as CSV or JSON (blind unless --reveal).

use std::process::ExitCode;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Cohort name (the assignment's name, as graded).
    cohort: String,
    /// csv or json.
    #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
    format: String,
    /// Include candidate ids and repositories (blind by default).
    #[arg(long)]
    reveal: bool,
    /// Database URL (default sqlite://DATA_DIR/assay.db).
    #[arg(long)]
    db: Option<String>,
}

pub fn exec(g: &super::Global, a: Args) -> Result<ExitCode> {
    let settings = g.settings(super::db_flag(&a.db))?;
    super::runtime()?.block_on(async {
        let store = super::open_store(&settings).await?;
        let c = &super::find_cohort(store.as_ref(), &a.cohort).await?;
        let rubric = c.rubric().with_context(|| {
            format!(
                "cohort {} was graded before rubrics were stored with it: run `assay grade` on it again",
                a.cohort
            )
        })?;
        let subs = store.submissions(c.id).await?;
        let reviews = store.cohort_reviews(c.id).await?;
        let rows = assay::review::export_rows(&rubric, &subs, &reviews, a.reveal);
        if a.format == "json" {
            super::print_json(&serde_json::json!({
                "cohort": a.cohort,
                "rubric": rubric.name,
                "blind": !a.reveal,
                "reviews": rows,
                "metrics": assay::review::metrics(&rubric, &reviews),
                "item_metrics": assay::review::item_metrics(&rubric, &reviews),
            }))?;
        } else {
            print!("{}", assay::review::export_csv(&rubric, &rows, a.reveal));
        }
        if rows.is_empty() {
            eprintln!(
                "assay: no final reviews in {} yet (graders finalize them in `assay serve`)",
                a.cohort
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
