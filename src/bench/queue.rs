//! `assay bench queue`: the work queue against a real database (PostgreSQL by default: a
//! throwaway server of Debian's binaries, or `--db`).
//!
//! - **Throughput**: no-op jobs claimed and completed per second by 1, 2, 4 and 8 workers, each
//!   with a connection pool of its own as separate machines have (target ≥ 500/s at 8).
//! - **Claim latency** with 10,000 jobs queued: p50/p99/max of each claim while four workers
//!   take 2,000 of them (target p99 ≤ 50 ms).
//! - **Recovery**: a worker that claimed a job and died (it never renews its lease) — on
//!   another host, so only its lease says so, and on this host, where its gone pid does — until
//!   a real `assay worker` process started beside it has run the job to its end (target ≤ lease
//!   + 5 s); the same cohort worked with nobody dead is the baseline.
//! - **Scaling**: jobs that take one second each, worked by 1 and by 4 workers: the speed-up
//!   against the linear 4× (target ≥ 90 %).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tokio::task::JoinSet;

use super::postgres::TempPostgres;
use crate::store::{JobEnd, NewSubmission, Stage, Store};

/// What `bench queue` measures, and against what.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database (`postgres://…` or `sqlite://…`): a scratch one, where the bench's cohorts
    /// are the only ones. `None`: a throwaway PostgreSQL server.
    pub db: Option<String>,
    /// No-op jobs per throughput run.
    pub jobs: usize,
    /// Jobs queued for the claim-latency run.
    pub backlog: usize,
    /// Worker counts of the throughput runs.
    pub workers: Vec<usize>,
    /// The lease of the recovery runs.
    pub lease: Duration,
    /// One-second jobs of the scaling runs.
    pub slow_jobs: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            db: None,
            jobs: 2000,
            backlog: 10_000,
            workers: vec![1, 2, 4, 8],
            lease: Duration::from_secs(6),
            slow_jobs: 12,
        }
    }
}

/// One throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub workers: usize,
    pub jobs: usize,
    pub seconds: f64,
    pub per_second: f64,
}

/// Claim latencies with a backlog.
#[derive(Debug, Clone, Serialize)]
pub struct Claims {
    pub queued: usize,
    pub claims: usize,
    pub workers: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// How long a dead worker's job took to be done by another.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    /// Where the dead worker ran: `another host` (its lease is all that tells) or `this host`
    /// (its pid is gone).
    pub dead_on: &'static str,
    pub lease_s: f64,
    /// From the dead worker's claim to the job done by the live one.
    pub seconds: f64,
}

/// One-second jobs by 1 and by 4 workers.
#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    pub jobs: usize,
    pub one_worker_s: f64,
    pub four_workers_s: f64,
    /// (one_worker_s / four_workers_s) / 4.
    pub of_linear: f64,
}

/// What `bench queue` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `postgres` or `sqlite`.
    pub backend: String,
    pub throughput: Vec<Throughput>,
    pub claims: Claims,
    /// The same cohort worked by a live worker with nobody dead: the recoveries' baseline.
    pub baseline_s: f64,
    pub recovery: Vec<Recovery>,
    pub scaling: Scaling,
}

/// Submissions of the bench's cohorts (their repositories are never fetched, except the
/// recovery runs').
fn submissions(n: usize, repo: &str) -> Vec<NewSubmission> {
    (0..n)
        .map(|i| NewSubmission {
            candidate: format!("c{i:05}"),
            anon_id: format!("a{i:05}"),
            repo: repo.to_string(),
            git_ref: None,
        })
        .collect()
}

/// Records cohort `name` with `n` one-stage jobs; its id.
async fn cohort(store: &dyn Store, name: &str, n: usize, stages: &[Stage], repo: &str) -> Result<i64> {
    let queue = store.queue().context("the database has no work queue")?;
    // What a worker rebuilds the cohort from (the recovery runs' live worker reads it).
    let rubric = crate::rubric::Rubric::parse(
        Path::new("rubrics/trial-project.toml"),
        include_str!("../../rubrics/trial-project.toml"),
    )?;
    let spec = serde_json::json!({ "name": name, "rubric_def": rubric, "stages": stages });
    Ok(queue
        .enqueue(name, &spec, &submissions(n, repo), stages, 3)
        .await?
        .cohort_id)
}

/// `workers` workers, each with a store (pool) of its own, claim and complete every job of the
/// cohort; each job takes `work`. Their claims' latencies (milliseconds) and the wall time.
async fn drain(
    url: &str,
    cohort: i64,
    workers: usize,
    work: Duration,
    limit: Option<usize>,
) -> Result<(Vec<f64>, f64)> {
    let mut stores = Vec::with_capacity(workers);
    for _ in 0..workers {
        stores.push(crate::store::open(url).await?);
    }
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (w, store) in stores.into_iter().enumerate() {
        let taken = Arc::clone(&taken);
        tasks.spawn(async move {
            let queue = store.queue().expect("a store with a queue");
            let mut latencies = Vec::new();
            loop {
                if limit.is_some_and(|l| taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= l) {
                    break;
                }
                let t = Instant::now();
                let Some(lease) = queue
                    .claim(&format!("bench-{w}"), &[Stage::Fetch], 60_000, Some(cohort))
                    .await?
                else {
                    break;
                };
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                if !work.is_zero() {
                    tokio::time::sleep(work).await;
                }
                anyhow::ensure!(queue.finish_job(&lease, &JobEnd::Done, None).await?, "a lease was lost");
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    Ok((all, started.elapsed().as_secs_f64()))
}

/// The bench's database, refused when it holds cohorts that are not the bench's.
async fn open_scratch(url: &str) -> Result<Arc<dyn Store>> {
    let store = crate::store::open(url).await?;
    let foreign: Vec<String> = store
        .cohorts()
        .await?
        .into_iter()
        .map(|c| c.name)
        .filter(|n| !n.starts_with("bench-queue-"))
        .collect();
    if !foreign.is_empty() {
        bail!(
            "{} holds cohorts of its own ({}): give bench queue a scratch database",
            crate::git::redact(url),
            foreign.join(", ")
        );
    }
    Ok(store)
}

/// Runs the bench. `assay` is the binary that runs the recovery runs' live worker.
pub async fn run(opts: &Options, assay: &Path) -> Result<Report> {
    let temp = match &opts.db {
        Some(_) => None,
        None => Some(
            tokio::task::spawn_blocking(TempPostgres::start)
                .await?
                .context("no throwaway PostgreSQL server (or pass --db)")?,
        ),
    };
    let url = opts
        .db
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.url.clone()))
        .expect("a database");
    let store = open_scratch(&url).await?;
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());

    let mut throughput = Vec::new();
    for &w in &opts.workers {
        let name = format!("bench-queue-{stamp}-noop-{w}");
        let id = cohort(store.as_ref(), &name, opts.jobs, &[Stage::Fetch], "/nonexistent").await?;
        let (claims, secs) = drain(&url, id, w, Duration::ZERO, None).await?;
        anyhow::ensure!(claims.len() == opts.jobs, "{} of {} jobs done", claims.len(), opts.jobs);
        throughput.push(Throughput {
            workers: w,
            jobs: opts.jobs,
            seconds: secs,
            per_second: opts.jobs as f64 / secs,
        });
    }

    let name = format!("bench-queue-{stamp}-backlog");
    let id = cohort(store.as_ref(), &name, opts.backlog, &[Stage::Fetch], "/nonexistent").await?;
    let take = (opts.backlog / 5).max(1);
    let (mut ms, _) = drain(&url, id, 4, Duration::ZERO, Some(take)).await?;
    ms.sort_by(|a, b| a.total_cmp(b));
    // The rest of the backlog done too: the recovery runs' worker must find nothing else.
    drain(&url, id, 8, Duration::ZERO, None).await?;
    let claims = Claims {
        queued: opts.backlog,
        claims: ms.len(),
        workers: 4,
        p50_ms: super::serve::percentile(&ms, 50.0),
        p99_ms: super::serve::percentile(&ms, 99.0),
        max_ms: ms.last().copied().unwrap_or(0.0),
    };

    let (baseline_s, recovery) = recoveries(store.as_ref(), &url, assay, opts.lease, stamp).await?;

    let mut slow = [0.0; 2];
    for (i, w) in [1, 4].into_iter().enumerate() {
        let name = format!("bench-queue-{stamp}-slow-{w}");
        let id = cohort(store.as_ref(), &name, opts.slow_jobs, &[Stage::Fetch], "/nonexistent").await?;
        slow[i] = drain(&url, id, w, Duration::from_secs(1), None).await?.1;
    }
    let scaling = Scaling {
        jobs: opts.slow_jobs,
        one_worker_s: slow[0],
        four_workers_s: slow[1],
        of_linear: slow[0] / slow[1] / 4.0,
    };
    drop(store);
    drop(temp);
    Ok(Report {
        backend: backend.into(),
        throughput,
        claims,
        baseline_s,
        recovery,
        scaling,
    })
}

/// The recovery runs: a one-submission cohort (fetch and history of a generated repository)
/// worked by a real `assay worker` process, first with nobody dead (the baseline), then with its
/// fetch job claimed by a worker that died at once, on another host and on this one.
async fn recoveries(
    store: &dyn Store,
    url: &str,
    assay: &Path,
    lease: Duration,
    stamp: u128,
) -> Result<(f64, Vec<Recovery>)> {
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("repo");
    super::generate_repo(&repo, 20)?;
    let repo = repo.display().to_string();
    let queue = store.queue().context("the database has no work queue")?;
    let stages = [Stage::Fetch, Stage::History];
    let worker = || -> Result<std::process::Child> {
        Command::new(assay)
            .args(["worker", "--until-idle", "--stages", "fetch,history", "--db", url])
            .args(["--lease", &lease.as_secs().to_string()])
            .env("ASSAY_DATA_DIR", dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", assay.display()))
    };
    let settle = |child: std::process::Child| async move {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        anyhow::ensure!(out.status.success(), "the bench's assay worker failed ({})", out.status);
        Ok::<_, anyhow::Error>(())
    };

    let name = format!("bench-queue-{stamp}-baseline");
    let id = cohort(store, &name, 1, &stages, &repo).await?;
    let started = Instant::now();
    settle(worker()?).await?;
    let baseline_s = started.elapsed().as_secs_f64();
    done_or_bail(store, id).await?;

    // A pid that no process has: a child that ran and was waited for.
    let gone = Command::new("true").spawn()?;
    let gone_pid = gone.id();
    let _ = { gone }.wait();
    let mut out = Vec::new();
    for (dead_on, holder) in [
        ("another host", "bench-host-that-died:1:dead".to_string()),
        ("this host", format!("{}:{gone_pid}:dead", crate::host::hostname())),
    ] {
        let name = format!("bench-queue-{stamp}-recovery-{}", dead_on.replace(' ', "-"));
        let id = cohort(store, &name, 1, &stages, &repo).await?;
        let started = Instant::now();
        queue
            .claim(&holder, &[Stage::Fetch], lease.as_millis() as i64, Some(id))
            .await?
            .context("the dead worker's claim")?;
        settle(worker()?).await?;
        done_or_bail(store, id).await?;
        out.push(Recovery {
            dead_on,
            lease_s: lease.as_secs_f64(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok((baseline_s, out))
}

/// Fails unless every job of cohort `id` is done.
async fn done_or_bail(store: &dyn Store, id: i64) -> Result<()> {
    let status = store.queue().context("no queue")?.queue_status(id).await?;
    let left: Vec<_> = status.stages.iter().filter(|(_, c)| c.done == 0).collect();
    anyhow::ensure!(left.is_empty(), "the recovery cohort was not done: {:?}", status.stages);
    Ok(())
}

/// The report as text, each figure beside its target.
pub fn text(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "work queue on {}", r.backend);
    let _ = writeln!(s, "no-op jobs claimed and completed:");
    let base = r.throughput.first().map_or(1.0, |t| t.per_second);
    for t in &r.throughput {
        let _ = writeln!(
            s,
            "  {} worker(s): {:>7.0} jobs/s ({} jobs in {:.2} s; {:.2}x one worker){}",
            t.workers,
            t.per_second,
            t.jobs,
            t.seconds,
            t.per_second / base,
            if t.workers == 8 { "  target >= 500/s" } else { "" }
        );
    }
    let c = &r.claims;
    let _ = writeln!(
        s,
        "claims with {} queued ({} claims, {} workers): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms  target p99 <= 50 ms",
        c.queued, c.claims, c.workers, c.p50_ms, c.p99_ms, c.max_ms
    );
    let _ = writeln!(
        s,
        "recovery of a dead worker's job (baseline: the same cohort with nobody dead, {:.2} s):",
        r.baseline_s
    );
    for x in &r.recovery {
        let _ = writeln!(
            s,
            "  dead on {}: done {:.2} s after its claim (lease {:.0} s)  target <= lease + 5 s = {:.0} s",
            x.dead_on,
            x.seconds,
            x.lease_s,
            x.lease_s + 5.0
        );
    }
    let sc = &r.scaling;
    let _ = writeln!(
        s,
        "{} one-second jobs: 1 worker {:.2} s, 4 workers {:.2} s: {:.0}% of linear  target >= 90%",
        sc.jobs,
        sc.one_worker_s,
        sc.four_workers_s,
        sc.of_linear * 100.0
    );
    s
}
