//! `assay draft CANDIDATE`: a submission's stored drafts, as text or JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use assay::diag::InputError;
use assay::report;
use assay::results;
use assay::store::Stage;

#[derive(clap::Args)]
pub struct Args {
    /// Candidate id (as in the cohort file).
    candidate: String,
    /// Cohort name (needed when the candidate is in several cohorts).
    #[arg(long)]
    cohort: Option<String>,
    /// Database URL (default sqlite://DATA_DIR/assay.db).
    #[arg(long)]
    db: Option<String>,
    /// Print JSON: the evidence and the draft record.
    #[arg(long)]
    json: bool,
}

pub fn exec(g: &super::Global, a: Args) -> Result<ExitCode> {
    let settings = g.settings(super::db_flag(&a.db))?;
    super::runtime()?.block_on(async {
        let store = super::open_store(&settings).await?;
        let found = store.find_submissions(&a.candidate, a.cohort.as_deref()).await?;
        let (cohort_name, rec) = match found.as_slice() {
            [] => {
                return Err(InputError::file(
                    Path::new(&a.candidate),
                    "no such candidate in the database (check the name, --cohort and --db)",
                )
                .into())
            }
            [one] => one.clone(),
            many => {
                let names: Vec<String> = many.iter().map(|(c, _)| c.clone()).collect();
                return Err(InputError::file(
                    Path::new(&a.candidate),
                    format!("candidate is in several cohorts ({}); pass --cohort", names.join(", ")),
                )
                .into());
            }
        };
        let record: Option<assay::draft::DraftRecord> =
            results::read_latest(&store.runs(rec.id).await?, rec.id, Stage::Draft)?;
        let evidence = store.evidence(rec.id).await?;
        if a.json {
            super::print_json(&serde_json::json!({
                "cohort": cohort_name,
                "candidate": rec.candidate,
                "evidence": evidence,
                "draft": record,
                "drafts": record.as_ref().map(|r| r.drafts.clone()).unwrap_or_default(),
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        let Some(record) = record else {
            println!(
                "{} ({cohort_name}): no draft yet — run `assay grade` with a model",
                rec.candidate
            );
            return Ok(ExitCode::from(1));
        };
        print!(
            "{}",
            report::text::draft(&rec.candidate, &cohort_name, &record, &evidence)
        );
        Ok(ExitCode::SUCCESS)
    })
}
