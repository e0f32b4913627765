//! `assay grade COHORT`: every submission through the pipeline, then the reports.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use assay::cohort::Cohort;
use assay::config::{Overrides, Settings};
use assay::diag::InputError;
use assay::llm::ModelRef;
use assay::pipeline::{self, lock::WorkLock, Pipeline};
use assay::report;

#[derive(clap::Args)]
pub struct Args {
    /// The cohort file.
    cohort: PathBuf,
    /// Database URL (default sqlite://DATA_DIR/assay.db).
    #[arg(long)]
    db: Option<String>,
    /// Submissions processed at once.
    #[arg(long)]
    jobs: Option<usize>,
    /// Directory for the reports.
    #[arg(long, default_value = "assay-out")]
    out: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Lower the test phase's wall time (seconds).
    #[arg(long)]
    test_timeout: Option<u64>,
    /// Stop after the history: no Docker needed, no tests run.
    #[arg(long)]
    no_sandbox: bool,
    /// Model that drafts rubric feedback: a manifest name or a .gguf path
    /// (default: the settings' model or ASSAY_MODEL, else qwen2.5-coder-1.5b-instruct when fetched).
    #[arg(long)]
    model: Option<String>,
    /// Do not draft rubric feedback.
    #[arg(long, conflicts_with = "model")]
    no_drafts: bool,
    /// Tokens the evidence may take in a draft's prompt (default: the settings' draft_budget, 1200).
    #[arg(long)]
    draft_budget: Option<usize>,
}

pub fn exec(g: &super::Global, a: Args) -> Result<ExitCode> {
    let settings = g.settings(Overrides {
        db: a.db.clone(),
        jobs: a.jobs,
        test_timeout: a.test_timeout,
        model: a.model.clone(),
        draft_budget: a.draft_budget,
        ..Overrides::default()
    })?;
    let cohort = Cohort::load(&a.cohort)?;
    let model = if a.no_drafts {
        None
    } else {
        pick_model(&settings, settings.model.as_deref())?
    };
    super::runtime()?.block_on(grade(settings, cohort, model, a))
}

/// The model `grade` drafts with: the one asked for (which must exist), else the default when it
/// has been fetched; without it grading goes on and says how to get drafts.
pub(super) fn pick_model(settings: &Settings, asked: Option<&str>) -> Result<Option<ModelRef>> {
    use assay::llm::manifest;
    let dir = manifest::model_dir(&settings.data_dir);
    match asked {
        Some(name) => {
            Ok(Some(manifest::resolve(&dir, name).map_err(|e| {
                InputError::file(std::path::Path::new(name), format!("{e:#}"))
            })?))
        }
        None => match manifest::resolve(&dir, assay::llm::DEFAULT_MODEL) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                eprintln!("assay: no drafts this run: {e:#}");
                Ok(None)
            }
        },
    }
}

async fn grade(settings: Settings, cohort: Cohort, model: Option<ModelRef>, a: Args) -> Result<ExitCode> {
    let db_url = settings.db_url();
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
    let _lock = WorkLock::acquire(&settings.data_dir, &db_url)?;
    let store = super::open_store(&settings).await?;
    // A database other machines can reach is locked in the database too.
    let _db_lock = store
        .grading_lock()
        .await
        .context("cannot take the database's grading lock")?
        .ok_or_else(|| pipeline::lock::LockError::Busy {
            db: assay::git::redact(&db_url),
        })?;
    let cancel = super::cancel_on_signal("stages in flight are recorded as interrupted (run again to resume)");
    let draft_budget = settings.draft_budget;

    let docker = if a.no_sandbox {
        None
    } else {
        Some(
            super::docker(
                &settings,
                "cannot reach the Docker engine (start dockerd, or pass --no-sandbox to stop after the history)",
            )
            .await?,
        )
    };
    let mut pipeline = Pipeline::new(Arc::clone(&store), settings, cancel, pipeline::progress::auto());
    if let Some(docker) = docker {
        pipeline = pipeline.with_sandbox(Arc::new(docker));
    }
    if let Some(m) = &model {
        pipeline = pipeline.with_drafter(drafter(m, draft_budget).await?);
    }
    let pipeline = Arc::new(pipeline);
    // The summary and each submission's report detail, read from the store once.
    let (summary, details) = pipeline.run(&cohort).await?;
    report::write_all(&a.out, &summary, &details, &cohort.rubric)?;

    if a.json {
        super::print_json(&summary)?;
    } else {
        print!("{}", report::text::grade(&summary));
        println!("reports: {}", a.out.join("summary.md").display());
    }
    Ok(if summary.cancelled {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// The model `m`, loaded once, drafting with `draft_budget` evidence tokens per prompt.
pub(super) async fn drafter(m: &ModelRef, draft_budget: usize) -> Result<Arc<dyn assay::draft::Drafter>> {
    let (path, id) = (m.path.clone(), m.id.clone());
    eprintln!("assay: loading {id} for drafts");
    let engine =
        tokio::task::spawn_blocking(move || assay::llm::Engine::start(&path, &id, assay::llm::DEFAULT_CONTEXT))
            .await??;
    let options = assay::draft::DraftOptions {
        evidence_budget: draft_budget,
        ..Default::default()
    };
    Ok(Arc::new(assay::draft::ModelDrafter::new(engine, options)))
}
