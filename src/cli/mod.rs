//! The command line: one file per command, each its `Args` (clap) and an `exec` that loads what
//! it needs and calls the library. Shared here: the global flags, settings, the async runtime,
//! the store and the Docker engine as every command opens them.

mod bench;
mod check;
mod draft;
mod export;
mod feedback;
mod grade;
mod grader;
mod history;
mod images;
mod model;
mod queue;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use assay::config::{Overrides, Settings};
use assay::diag::InputError;
use assay::git;
use assay::sandbox::docker::DockerSandbox;
use assay::store;

#[derive(Parser)]
#[command(
    name = "assay",
    version,
    about = "Grade trial-project submissions: history, tests, reproducibility, drafts"
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// The flags every command takes.
#[derive(clap::Args)]
pub struct Global {
    /// Settings file (default: ./assay.toml when it exists).
    #[arg(long, global = true, env = "ASSAY_CONFIG")]
    config: Option<PathBuf>,
    /// Where mirrors, exports and the default database live.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Grade every submission of a cohort and write reports.
    Grade(grade::Args),
    /// Record a cohort and its stage jobs in the work queue, and return: workers do the work.
    Enqueue(queue::EnqueueArgs),
    /// Work the queue on this machine: claim jobs of the stages it runs until Ctrl-C (or idle).
    Worker(queue::WorkerArgs),
    /// A cohort's queue: per stage how many jobs are queued, running, done, failed, dead.
    Status(queue::StatusArgs),
    /// Show the stored drafts of a submission.
    Draft(draft::Args),
    /// Export a cohort's final review scores (blind unless --reveal).
    Export(export::Args),
    /// Write each candidate's feedback report (HTML and Markdown) once a grader finalized the
    /// review: the public checklist as ticked, the approved feedback, the reproducibility report.
    Feedback(feedback::Args),
    /// The graders' review UI: queue, packets with pre-filled drafts, save and finalize.
    Serve(serve::Args),
    /// Graders of `assay serve`, kept in the settings file.
    #[command(subcommand)]
    Grader(grader::Cmd),
    /// Print the iteration history of a repository.
    History(history::Args),
    /// Install and test a repository in the sandbox: the candidate's pre-submission check.
    Check(check::Args),
    /// Local models: fetch, inspect, tokenize.
    #[command(subcommand)]
    Model(model::Cmd),
    /// Runner images.
    #[command(subcommand)]
    Images(images::Cmd),
    /// Benchmarks (release builds), reported as ratios against a baseline.
    #[command(subcommand)]
    Bench(bench::Cmd),
    /// (internal) One submission's fetch and export, the request read as JSON from stdin and the
    /// reply written to stdout: `assay grade` runs remote fetches in this child process so that
    /// a hard deadline can stop them (a silent server stalls libgit2 where nothing else can).
    #[command(name = "internal-fetch", hide = true)]
    InternalFetch,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Grade(a) => grade::exec(g, a),
        Command::Enqueue(a) => queue::enqueue(g, a),
        Command::Worker(a) => queue::worker(g, a),
        Command::Status(a) => queue::status(g, a),
        Command::Draft(a) => draft::exec(g, a),
        Command::Export(a) => export::exec(g, a),
        Command::Feedback(a) => feedback::exec(g, a),
        Command::Serve(a) => serve::exec(g, a),
        Command::Grader(c) => grader::exec(g, c),
        Command::History(a) => history::exec(g, a),
        Command::Check(a) => check::exec(g, a),
        Command::Model(c) => model::exec(g, c),
        Command::Images(c) => images::exec(&g.settings(Overrides::default())?, c),
        Command::Bench(c) => bench::exec(g, c),
        Command::InternalFetch => {
            assay::pipeline::fetch_child_main()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

impl Global {
    /// The settings (file < env < the global flags and `flags`), with what they say about trust (`ca_file`) set
    /// up while the process still has one thread: see [`git::tls`].
    fn settings(&self, flags: Overrides) -> Result<Settings> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            ..flags
        };
        let settings = Settings::load(self.config.as_deref(), &overrides)?;
        if let Some(ca_file) = settings.ca_file.as_deref() {
            let t = git::tls::trust(ca_file, &settings.data_dir).map_err(|e| InputError::file(ca_file, e))?;
            tracing::debug!(bundle = %t.bundle.display(), added = t.added, "https trusts the system CAs and ca_file");
        }
        Ok(settings)
    }
}

/// The flags of a command whose only setting is `--db`.
fn db_flag(db: &Option<String>) -> Overrides {
    Overrides {
        db: db.clone(),
        ..Overrides::default()
    }
}

/// The multi-threaded runtime the async commands run on.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The store the settings name, with the URL (credentials redacted) in the error.
async fn open_store(settings: &Settings) -> Result<Arc<dyn store::Store>> {
    let db_url = settings.db_url();
    store::open(&db_url)
        .await
        .with_context(|| format!("cannot open database {}", git::redact(&db_url)))
}

/// The Docker engine (`DOCKER_HOST`; an ssh:// one with the settings' key and known hosts),
/// with what a dead run of assay left behind removed.
async fn docker(settings: &Settings, unreachable: &'static str) -> Result<DockerSandbox> {
    use assay::sandbox::Sandbox as _;
    let sandbox = DockerSandbox::connect_with(settings.ssh_key.as_deref(), settings.known_hosts.as_deref())
        .await
        .context(unreachable)?;
    sandbox.reap_orphans().await?;
    Ok(sandbox)
}

/// What a command that needs the engine says when it is not there.
const NO_DOCKER: &str = "cannot reach the Docker engine (is dockerd running? DOCKER_HOST is honoured)";

/// The stored cohort named `cohort`, or a bad-input error that lists the ones there are.
async fn find_cohort(store: &dyn store::Store, cohort: &str) -> Result<store::CohortRecord> {
    let cohorts = store.cohorts().await?;
    if let Some(c) = cohorts.iter().find(|c| c.name == cohort) {
        return Ok(c.clone());
    }
    let names: Vec<&str> = cohorts.iter().map(|c| c.name.as_str()).collect();
    Err(InputError::file(
        std::path::Path::new(cohort),
        format!(
            "no such cohort in the database (cohorts: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    )
    .into())
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A repository read where it lies: a local one in place, a URL through its mirror.
struct Opened {
    /// The git directory (a work tree's `.git` or the bare mirror).
    git_dir: PathBuf,
    commit: String,
    after_deadline: Vec<String>,
    /// What to call it: a local path as the user wrote it, a URL without credentials.
    shown: String,
}

/// Opens `spec` at `git_ref` (default HEAD), fetching it first when it is a URL.
fn open_repo(settings: &Settings, spec: &str, git_ref: Option<&str>) -> Result<Opened> {
    use assay::git::{RepoSource, SourcePolicy};
    let policy = SourcePolicy {
        remote_only: false,
        allow_private_hosts: settings.allow_private_hosts,
    };
    let source = RepoSource::parse(spec, &std::env::current_dir()?, policy)?;
    match &source {
        RepoSource::Local(path) => {
            let repo = git2::Repository::discover(path)
                .map_err(|e| InputError::file(path, format!("not a git repository: {}", e.message())))?;
            let rev = git_ref.unwrap_or("HEAD");
            let commit = repo
                .revparse_single(rev)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| InputError::file(path, format!("no commit {rev:?}: {}", e.message())))?;
            Ok(Opened {
                git_dir: repo.path().to_path_buf(),
                commit: commit.id().to_string(),
                after_deadline: Vec::new(),
                shown: spec.to_string(),
            })
        }
        RepoSource::Remote(r) => {
            source.check_host(policy)?;
            let fetched = git::fetch(&git::FetchRequest {
                git_ref,
                ..git::FetchRequest::new(&source, settings)
            })?;
            Ok(Opened {
                git_dir: fetched.mirror,
                commit: fetched.commit,
                after_deadline: fetched.after_deadline,
                shown: r.url.clone(),
            })
        }
    }
}

/// A token cancelled on Ctrl-C or SIGTERM, saying on stderr what stopping does (`then`).
/// Call it inside the runtime.
pub fn cancel_on_signal(then: &'static str) -> tokio_util::sync::CancellationToken {
    use std::io::Write;
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        // Cancel first: the message is best effort (stderr may be a closed pipe, and
        // `eprintln!` would panic before the cancellation).
        on_signal.cancel();
        let _ = writeln!(std::io::stderr(), "assay: stopping; {then}");
    });
    cancel
}
