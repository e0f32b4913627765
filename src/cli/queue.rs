//! The work queue's commands: `assay enqueue` records a cohort's jobs and returns; `assay worker`
//! works the queue on this machine; `assay status` shows a cohort's queue.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use assay::cohort::Cohort;
use assay::config::Overrides;
use assay::diag::InputError;
use assay::pipeline::worker::{job_stages, WorkerOptions};
use assay::pipeline::{self, Pipeline};
use assay::store::{QueueStatus, Stage};

#[derive(clap::Args)]
pub struct EnqueueArgs {
    /// The cohort file.
    cohort: PathBuf,
    /// Database URL (default sqlite://DATA_DIR/assay.db); workers on other machines need one
    /// they can reach: postgres://…
    #[arg(long)]
    db: Option<String>,
    /// No sandbox and reproducibility jobs (the history is the last job before the drafts).
    #[arg(long)]
    no_sandbox: bool,
    /// No draft jobs.
    #[arg(long)]
    no_drafts: bool,
    /// Print what was queued as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Database URL (default sqlite://DATA_DIR/assay.db).
    #[arg(long)]
    db: Option<String>,
    /// The stages whose jobs this worker runs, comma-separated (fetch, history, sandbox, repro,
    /// draft); default all. A machine without Docker leaves out sandbox and repro, one without
    /// the model leaves out draft.
    #[arg(long, value_delimiter = ',')]
    stages: Option<Vec<String>>,
    /// Stop once no job of its stages is queued or running (else run until Ctrl-C).
    #[arg(long)]
    until_idle: bool,
    /// Jobs at a time (default: the settings' jobs).
    #[arg(long)]
    jobs: Option<usize>,
    /// How long a claimed job is held without a heartbeat (seconds): a worker that stops for
    /// longer loses its job to another.
    #[arg(long, default_value_t = 60)]
    lease: u64,
    /// Model for draft jobs: a manifest name or a .gguf path (default: the settings' model).
    #[arg(long)]
    model: Option<String>,
    /// Tokens the evidence may take in a draft's prompt (default: the settings' draft_budget).
    #[arg(long)]
    draft_budget: Option<usize>,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The cohort: its name in the database, or its cohort file.
    cohort: String,
    /// Database URL (default sqlite://DATA_DIR/assay.db).
    #[arg(long)]
    db: Option<String>,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

pub fn enqueue(g: &super::Global, a: EnqueueArgs) -> Result<ExitCode> {
    let settings = g.settings(super::db_flag(&a.db))?;
    let cohort = Cohort::load(&a.cohort)?;
    super::runtime()?.block_on(async {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
        let store = super::open_store(&settings).await?;
        let stages = job_stages(!a.no_sandbox, !a.no_drafts);
        let pipeline = Pipeline::new(
            Arc::clone(&store),
            settings,
            tokio_util::sync::CancellationToken::new(),
            pipeline::progress::auto(),
        );
        let e = pipeline.enqueue(&cohort, &stages).await?;
        if a.json {
            super::print_json(&json!({
                "cohort": cohort.name,
                "submissions": e.submissions.len(),
                "queued": e.queued,
                "stages": stages,
            }))?;
        } else {
            let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
            println!(
                "{}: {} submissions, {} jobs queued ({})",
                cohort.name,
                e.submissions.len(),
                e.queued,
                names.join(", ")
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `--stages` as stages, in pipeline order; an unknown name is bad input.
fn parse_stages(names: Option<&[String]>) -> Result<Vec<Stage>> {
    let Some(names) = names else {
        return Ok(job_stages(true, true));
    };
    let mut stages = Vec::new();
    for n in names {
        let n = n.trim();
        match Stage::parse(n).filter(|s| *s != Stage::Screen) {
            Some(s) => stages.push(s),
            None => bail!(InputError::file(
                std::path::Path::new("--stages"),
                format!("unknown stage {n:?} (stages: fetch, history, sandbox, repro, draft)")
            )),
        }
    }
    stages.sort();
    stages.dedup();
    Ok(stages)
}

pub fn worker(g: &super::Global, a: WorkerArgs) -> Result<ExitCode> {
    let stages = parse_stages(a.stages.as_deref())?;
    let settings = g.settings(Overrides {
        db: a.db.clone(),
        jobs: a.jobs,
        model: a.model.clone(),
        draft_budget: a.draft_budget,
        ..Overrides::default()
    })?;
    let model = if stages.contains(&Stage::Draft) {
        match super::grade::pick_model(&settings, settings.model.as_deref())? {
            Some(m) => Some(m),
            None => bail!("draft jobs need a model: fetch one (assay model fetch) or leave draft out of --stages"),
        }
    } else {
        None
    };
    super::runtime()?.block_on(async move {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
        let store = super::open_store(&settings).await?;
        let cancel =
            super::cancel_on_signal("the jobs in flight are interrupted; their leases expire and others take them");
        let mut opts = WorkerOptions::new(stages.clone(), settings.jobs);
        opts.until_idle = a.until_idle;
        opts.lease = Duration::from_secs(a.lease.max(3));
        // Expired leases are noticed within half a lease (at most two seconds).
        opts.rescue_every = opts.rescue_every.min(opts.lease / 2);
        let draft_budget = settings.draft_budget;
        let docker = if stages.iter().any(|s| matches!(s, Stage::Sandbox | Stage::Repro)) {
            Some(super::docker(&settings, super::NO_DOCKER).await?)
        } else {
            None
        };
        let mut pipeline = Pipeline::new(Arc::clone(&store), settings, cancel, pipeline::progress::auto());
        if let Some(docker) = docker {
            pipeline = pipeline.with_sandbox(Arc::new(docker));
        }
        if let Some(m) = &model {
            pipeline = pipeline.with_drafter(super::grade::drafter(m, draft_budget).await?);
        }
        let id = pipeline::worker::worker_name();
        eprintln!(
            "assay: worker {id} on {} ({})",
            assay::git::redact(&store_url(&a.db)),
            stages.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
        let summary = Arc::new(pipeline).work(&id, &opts, Arc::new(HashMap::new())).await?;
        eprintln!(
            "assay: worker {id}: {} jobs claimed, {} lost to other workers, {} expired leases rescued, {} cut short by the database",
            summary.claimed, summary.lost, summary.rescued, summary.cut_short
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn store_url(db: &Option<String>) -> String {
    db.clone().unwrap_or_else(|| "the default database".into())
}

pub fn status(g: &super::Global, a: StatusArgs) -> Result<ExitCode> {
    let settings = g.settings(super::db_flag(&a.db))?;
    let name = if std::path::Path::new(&a.cohort).is_file() {
        Cohort::load(std::path::Path::new(&a.cohort))?.name
    } else {
        a.cohort.clone()
    };
    super::runtime()?.block_on(async {
        let store = super::open_store(&settings).await?;
        let cohort = super::find_cohort(store.as_ref(), &name).await?;
        let queue = store.queue().context("this database has no work queue")?;
        let status = queue.queue_status(cohort.id).await?;
        let workers = queue.workers(WORKERS_WITHIN_MS).await?;
        if a.json {
            super::print_json(&status_json(&cohort.name, &status, &workers))?;
        } else {
            print!("{}", status_text(&cohort.name, &status, &workers));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Workers `assay status` lists: those seen in the last ten minutes.
const WORKERS_WITHIN_MS: i64 = 10 * 60 * 1000;

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The JSON of `assay status` (docs/json.md).
fn status_json(cohort: &str, s: &QueueStatus, workers: &[assay::store::queue::WorkerInfo]) -> serde_json::Value {
    let stages: serde_json::Map<String, serde_json::Value> = s
        .stages
        .iter()
        .map(|(stage, c)| {
            (
                stage.as_str().to_string(),
                serde_json::to_value(c).expect("counts serialise"),
            )
        })
        .collect();
    json!({
        "cohort": cohort,
        "submissions": s.submissions,
        "stages": stages,
        "running": s.running.iter().map(|r| json!({
            "job": r.job_id,
            "candidate": r.candidate,
            "stage": r.stage,
            "worker": r.worker,
            "attempt": r.attempt,
            "since": r.claimed_at_ms.map(rfc3339_ms),
            "lease_until": r.lease_until_ms.map(rfc3339_ms),
        })).collect::<Vec<_>>(),
        "ended": s.ended.iter().map(|e| json!({
            "job": e.job_id,
            "candidate": e.candidate,
            "stage": e.stage,
            "status": e.status,
            "attempts": e.attempts,
            "error": e.last_error,
        })).collect::<Vec<_>>(),
        "workers": workers.iter().map(|w| json!({
            "id": w.id,
            "host": w.host,
            "stages": w.stages,
            "last_seen": rfc3339_ms(w.last_seen_ms),
        })).collect::<Vec<_>>(),
    })
}

/// What `assay status` prints: per stage the counts, then the running jobs, the failed and dead
/// ones with why, and the workers.
fn status_text(cohort: &str, s: &QueueStatus, workers: &[assay::store::queue::WorkerInfo]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{cohort}: {} submissions", s.submissions);
    let _ = writeln!(
        out,
        "{:<8} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "stage", "queued", "running", "done", "failed", "dead"
    );
    for (stage, c) in &s.stages {
        let _ = writeln!(
            out,
            "{:<8} {:>7} {:>7} {:>7} {:>7} {:>7}",
            stage.as_str(),
            c.queued,
            c.running,
            c.done,
            c.failed,
            c.dead
        );
    }
    for r in &s.running {
        let secs = r.claimed_at_ms.map_or(0, |t| (s.now_ms - t).max(0) / 1000);
        let _ = writeln!(
            out,
            "running: {} {} on {} for {secs} s (attempt {})",
            r.candidate,
            r.stage.as_str(),
            r.worker.as_deref().unwrap_or("?"),
            r.attempt
        );
    }
    for e in &s.ended {
        let _ = writeln!(
            out,
            "{}: {} {} after {} attempt(s): {}",
            e.status.as_str(),
            e.candidate,
            e.stage.as_str(),
            e.attempts,
            assay::untrusted::printable(e.last_error.as_deref().unwrap_or(""))
        );
    }
    for w in workers {
        let ago = (s.now_ms - w.last_seen_ms).max(0) / 1000;
        let _ = writeln!(
            out,
            "worker {} ({}): {}, seen {ago} s ago",
            w.id,
            w.host,
            w.stages.join(",")
        );
    }
    out
}
