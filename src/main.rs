//! The `assay` command line: parses arguments, loads settings, wires the real
//! store and calls the library. Exit codes: 0 done, 1 assay failed, 2 bad
//! input, 130 interrupted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use assay::cohort::Cohort;
use assay::config::{Overrides, Settings};
use assay::diag::InputError;
use assay::git::{self, RepoSource, SourcePolicy};
use assay::pipeline::{self, lock::WorkLock, Pipeline};
use assay::report;
use assay::store::{self, Stage};

#[derive(Parser)]
#[command(
    name = "assay",
    version,
    about = "Grade trial-project submissions: history, tests, reproducibility, drafts"
)]
struct Cli {
    /// Settings file (default: ./assay.toml when it exists).
    #[arg(long, global = true, env = "ASSAY_CONFIG")]
    config: Option<PathBuf>,
    /// Where mirrors, exports and the default database live.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grade every submission of a cohort and write reports.
    Grade {
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
        /// (default: ASSAY_MODEL, else qwen2.5-coder-1.5b-instruct when fetched).
        #[arg(long, env = "ASSAY_MODEL")]
        model: Option<String>,
        /// Do not draft rubric feedback.
        #[arg(long, conflicts_with = "model")]
        no_drafts: bool,
        /// Tokens the evidence may take in a draft's prompt.
        #[arg(long, default_value_t = 1200)]
        draft_budget: usize,
    },
    /// Show the stored drafts of a submission.
    Draft {
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
    },
    /// Export a cohort's final review scores (blind unless --reveal).
    Export {
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
    },
    /// Write each candidate's feedback report (HTML and Markdown) once a grader finalized the
    /// review: the public checklist as ticked, the approved feedback, the reproducibility report.
    Feedback {
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
    },
    /// The graders' review UI: queue, packets with pre-filled drafts, save and finalize.
    Serve {
        /// Database URL (default sqlite://DATA_DIR/assay.db).
        #[arg(long)]
        db: Option<String>,
        /// Address to listen on (loopback unless told otherwise).
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: std::net::SocketAddr,
        /// Show candidate ids and repositories (blind review is the default).
        #[arg(long)]
        reveal: bool,
    },
    /// Graders of `assay serve`, kept in the settings file.
    #[command(subcommand)]
    Grader(GraderCmd),
    /// Print the iteration history of a repository.
    History {
        /// A local repository path or an https/ssh URL.
        repo: String,
        /// Branch, tag or commit (default: HEAD).
        #[arg(long = "ref")]
        git_ref: Option<String>,
        /// Print the JSON document instead of the timeline.
        #[arg(long)]
        json: bool,
    },
    /// Install and test a repository in the sandbox: the candidate's pre-submission check.
    Check {
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
    },
    /// Local models: fetch, inspect, tokenize.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Runner images.
    #[command(subcommand)]
    Images(Images),
    /// Benchmarks (release builds), reported as ratios against a baseline.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum ModelCmd {
    /// Download a model named by its manifest (models/*.toml) and check its sha256.
    Fetch {
        /// Manifest name (default: the grading default).
        name: Option<String>,
        /// Fetch every shipped model.
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
    /// List the manifests and whether each model is fetched.
    List,
    /// Print a model's metadata: architecture, parameters, quantisation, context, chat template.
    Info {
        /// Manifest name or path to a .gguf file.
        #[arg(long)]
        model: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the token ids of each TEXT (special tokens parsed, as llama.cpp's special=True).
    Tokenize {
        /// Manifest name or path to a .gguf file.
        #[arg(long)]
        model: Option<String>,
        /// Print a JSON array of id arrays, one per TEXT.
        #[arg(long)]
        json: bool,
        /// Treat special-token text as plain text (how untrusted evidence is encoded).
        #[arg(long)]
        plain: bool,
        #[arg(required = true)]
        text: Vec<String>,
    },
}

#[derive(Subcommand)]
enum GraderCmd {
    /// Add a grader to the settings file (--config, else ./assay.toml) and print their token once.
    Add {
        /// 1-64 of A-Z a-z 0-9 . _ -
        name: String,
    },
    /// List the graders the settings name.
    List,
}

#[derive(Subcommand)]
enum Images {
    /// Build the runner images through the Docker engine.
    Build {
        /// Base image (a debootstrap import by docker/make-base.sh, or debian:bookworm-slim).
        #[arg(long, default_value = "assay-base:bookworm")]
        base: String,
        /// Only these runners (default: all).
        #[arg(long = "runner")]
        runners: Vec<String>,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// `assay history --json` against `git log --numstat --no-renames`.
    History {
        /// Repository to measure (default: a generated one).
        repo: Option<PathBuf>,
        /// Commits in the generated repository.
        #[arg(long, default_value_t = 5000)]
        commits: usize,
        /// Runs of each command; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Sandbox overhead against `docker run --rm`, and `assay check` against
    /// its install and test commands run by hand in the same image.
    Sandbox {
        /// Runs of each measurement; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// `assay grade` on a generated cohort of small Python repositories,
    /// reporting how busy the machine's cores were during the run.
    Cohort {
        /// Submissions in the cohort.
        #[arg(long, default_value_t = 20)]
        size: usize,
        /// Jobs for `assay grade`.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// The local model against llama.cpp (llama-cpp-python) on the same GGUF, threads and prompt:
    /// prompt and generation tokens/s, peak RSS, one full draft.
    Llm {
        /// Manifest name or .gguf path.
        #[arg(long, default_value = "qwen2.5-coder-1.5b-instruct")]
        model: String,
        /// A Python that can `import llama_cpp`.
        #[arg(long, default_value = "/opt/llamacpp/bin/python")]
        python: PathBuf,
        /// Tokens generated in the speed runs.
        #[arg(long, default_value_t = 128)]
        gen: usize,
        /// Context window (KV cache) on both sides.
        #[arg(long, default_value_t = 4096)]
        ctx: usize,
        /// Evidence bundle drafted in the full-draft run.
        #[arg(long, default_value = "tests/fixtures/drafts/strong.json")]
        bundle: PathBuf,
        /// Rubric for the full-draft run.
        #[arg(long, default_value = "rubrics/trial-project.toml")]
        rubric: PathBuf,
    },
    /// `assay check` on a corpus of real take-home repositories whose truth was recorded by
    /// hand (corpus/manifest.toml): outcome accuracy, install-cause accuracy, finding precision
    /// per kind, README-step agreement and the disagreements.
    Corpus {
        /// The manifest.
        #[arg(default_value = "corpus/manifest.toml")]
        manifest: PathBuf,
        /// Directory holding the repositories as OWNER+NAME/repo git directories.
        #[arg(long)]
        repos: PathBuf,
        /// Only these repositories (owner/name; repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Write each check's JSON here (OWNER+NAME.json).
        #[arg(long)]
        save: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The checklist rubric's items on the corpus against hand labels (corpus/items.toml):
    /// accuracy per item, unverified quotes, Spearman's rho of totals, ties, and the questions'
    /// time against the holistic draft.
    Items {
        /// The labels.
        #[arg(default_value = "corpus/items.toml")]
        labels: PathBuf,
        /// The corpus manifest (the labelled repositories' commits).
        #[arg(long, default_value = "corpus/manifest.toml")]
        manifest: PathBuf,
        /// Directory holding the repositories as OWNER+NAME/repo git directories.
        #[arg(long)]
        repos: PathBuf,
        /// The rubric the labels judge.
        #[arg(long, default_value = "rubrics/trial-project.toml")]
        rubric: PathBuf,
        /// Only these labelled repositories (owner/name; repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Model that answers the questions: a manifest name or a .gguf path.
        #[arg(long, default_value = "qwen2.5-coder-1.5b-instruct")]
        model: String,
        /// Where the cohort file, database and reports go (default DATA_DIR/bench-items).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Jobs for the grade run.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Submissions drafted twice (holistic and checklist) for the timing, spread over README
        /// lengths from the shortest to the longest; 0 skips it.
        #[arg(long, default_value_t = 3)]
        timing: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Review UI page latencies (p50/p99) over a generated cohort in the store.
    Serve {
        /// Submissions in the generated cohort.
        #[arg(long, default_value_t = 1000)]
        size: usize,
        /// Requests per page measured.
        #[arg(long, default_value_t = 400)]
        requests: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Internal: one side of `bench llm` (prompt + fixed generation).
    #[command(hide = true)]
    LlmRun {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        ids: PathBuf,
        #[arg(long)]
        gen: usize,
        #[arg(long)]
        ctx: usize,
        #[arg(long)]
        stats: PathBuf,
    },
    /// Internal: one full draft for `bench llm`.
    #[command(hide = true)]
    LlmDraft {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        rubric: PathBuf,
        #[arg(long)]
        ctx: usize,
        #[arg(long)]
        stats: PathBuf,
    },
    /// Internal: run a command and print its wall time and peak memory.
    #[command(hide = true)]
    Exec {
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(input) = e.downcast_ref::<InputError>() {
                eprintln!("error: {input}");
                return ExitCode::from(2);
            }
            eprintln!("error: {}", git::redact(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

/// Loads the settings and sets up what they say about trust (`ca_file`) while
/// the process still has one thread: see [`git::tls`].
fn load_settings(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Settings> {
    let settings = Settings::load(file, overrides)?;
    if let Some(ca_file) = settings.ca_file.as_deref() {
        let t = git::tls::trust(ca_file, &settings.data_dir).map_err(|e| InputError::file(ca_file, e))?;
        tracing::debug!(bundle = %t.bundle.display(), added = t.added, "https trusts the system CAs and ca_file");
    }
    Ok(settings)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let overrides = |db: Option<String>, jobs: Option<usize>| Overrides {
        data_dir: cli.data_dir.clone(),
        db,
        jobs,
    };
    match cli.command {
        Command::Grade {
            ref cohort,
            ref db,
            jobs,
            ref out,
            json,
            test_timeout,
            no_sandbox,
            ref model,
            no_drafts,
            draft_budget,
        } => {
            let settings = load_settings(cli.config.as_deref(), &overrides(db.clone(), jobs))?;
            let cohort = Cohort::load(cohort)?;
            let model = if no_drafts {
                None
            } else {
                pick_model(&settings, model.as_deref())?
            };
            let opts = GradeOpts {
                out: out.clone(),
                json,
                test_timeout,
                sandbox: !no_sandbox,
                model,
                draft_budget,
            };
            runtime()?.block_on(grade(settings, cohort, opts))
        }
        Command::History {
            ref repo,
            ref git_ref,
            json,
        } => {
            let settings = load_settings(cli.config.as_deref(), &overrides(None, None))?;
            history(&settings, repo, git_ref.as_deref(), json)
        }
        Command::Check {
            ref repo,
            ref runner,
            ref out,
            test_timeout,
            ref hidden_tests,
            json,
        } => {
            let settings = load_settings(cli.config.as_deref(), &overrides(None, None))?;
            if let Some(h) = hidden_tests {
                if !h.is_dir() {
                    return Err(InputError::file(h, "hidden tests directory does not exist").into());
                }
            }
            let opts = CheckOpts {
                runner: runner.as_deref(),
                out: out.as_deref(),
                test_timeout,
                hidden: hidden_tests.as_deref(),
                json,
            };
            runtime()?.block_on(check(&settings, repo, opts))
        }
        Command::Draft {
            ref candidate,
            ref cohort,
            ref db,
            json,
        } => {
            let settings = load_settings(cli.config.as_deref(), &overrides(db.clone(), None))?;
            runtime()?.block_on(show_draft(&settings, candidate, cohort.as_deref(), json))
        }
        Command::Export {
            ref cohort,
            ref format,
            reveal,
            ref db,
        } => {
            let settings = load_settings(cli.config.as_deref(), &overrides(db.clone(), None))?;
            runtime()?.block_on(export(&settings, cohort, format, reveal))
        }
        Command::Feedback {
            ref cohort,
            ref out,
            ref candidate,
            ref db,
        } => {
            let settings = load_settings(cli.config.as_deref(), &overrides(db.clone(), None))?;
            runtime()?.block_on(feedback(&settings, cohort, out, candidate.as_deref()))
        }
        Command::Serve { ref db, addr, reveal } => {
            let settings = load_settings(cli.config.as_deref(), &overrides(db.clone(), None))?;
            runtime()?.block_on(serve(settings, addr, reveal))
        }
        Command::Grader(GraderCmd::Add { ref name }) => grader_add(cli.config.as_deref(), name),
        Command::Grader(GraderCmd::List) => {
            let settings = load_settings(cli.config.as_deref(), &overrides(None, None))?;
            if settings.graders.is_empty() {
                println!("no graders: add one with `assay grader add NAME`");
            }
            for g in &settings.graders {
                println!("{}", g.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Model(cmd) => {
            let settings = load_settings(cli.config.as_deref(), &overrides(None, None))?;
            model_cmd(&settings, cmd)
        }
        Command::Images(Images::Build { ref base, ref runners }) => runtime()?.block_on(images_build(base, runners)),
        Command::Bench(Bench::Exec { argv }) => {
            assay::bench::exec_and_report(&argv)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(Bench::History { repo, commits, runs }) => bench_history(repo, commits, runs),
        Command::Bench(Bench::Sandbox { runs }) => runtime()?.block_on(bench_sandbox(runs)),
        Command::Bench(Bench::Cohort { size, jobs }) => bench_cohort(size, jobs),
        Command::Bench(Bench::Corpus {
            manifest,
            repos,
            only,
            save,
            json,
        }) => {
            let settings = load_settings(cli.config.as_deref(), &overrides(None, None))?;
            runtime()?.block_on(bench_corpus(&settings, &manifest, &repos, &only, save.as_deref(), json))
        }
        Command::Bench(Bench::Items {
            labels,
            manifest,
            repos,
            rubric,
            only,
            model,
            work,
            jobs,
            timing,
            json,
        }) => {
            let settings = load_settings(cli.config.as_deref(), &overrides(None, None))?;
            let work = work.unwrap_or_else(|| settings.data_dir.join("bench-items"));
            let options = assay::bench_items::Options {
                labels: &labels,
                manifest: &manifest,
                repos: &repos,
                rubric: &rubric,
                model: &model,
                work: &work,
                data_dir: &settings.data_dir,
                jobs,
                timing,
                limits: &settings.limits,
                only: &only,
            };
            let report = runtime()?.block_on(assay::bench_items::run(&options))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", assay::bench_items::text(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(Bench::Serve { size, requests, json }) => {
            let report = runtime()?.block_on(assay::bench_serve::run(size, requests))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{} submissions written through the store in {:.1} s; one client, kept-alive connection",
                report.submissions, report.setup_s
            );
            println!(
                "{:<38} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}",
                "page", "requests", "p50 ms", "p99 ms", "max ms", "target p99", "bytes"
            );
            for p in &report.pages {
                println!(
                    "{:<38} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>10} {:>9}",
                    p.page,
                    p.requests,
                    p.p50_ms,
                    p.p99_ms,
                    p.max_ms,
                    p.target_p99_ms.map_or("—".into(), |t| format!("≤ {t:.0}")),
                    p.bytes
                );
            }
            let (queue, cold) = (&report.pages[0], &report.pages[3]);
            println!(
                "queue p50 with the triage cache / recomputed: {:.3} ({:.2} vs {:.2} ms)",
                queue.p50_ms / cold.p50_ms,
                queue.p50_ms,
                cold.p50_ms
            );
            let missed: Vec<&str> = report
                .pages
                .iter()
                .filter(|p| p.target_p99_ms.is_some_and(|t| p.p99_ms > t))
                .map(|p| p.page)
                .collect();
            if !missed.is_empty() {
                println!("MISSED the p99 target: {}", missed.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(Bench::Llm {
            model,
            python,
            gen,
            ctx,
            bundle,
            rubric,
        }) => {
            let settings = load_settings(cli.config.as_deref(), &overrides(None, None))?;
            let dir = assay::llm::manifest::model_dir(&settings.data_dir);
            let r = assay::llm::manifest::resolve(&dir, &model)?;
            assay::bench_llm::bench(&assay::bench_llm::BenchArgs {
                model: r.path,
                model_id: r.id,
                python,
                gen,
                n_ctx: ctx,
                bundle,
                rubric,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(Bench::LlmRun {
            model,
            ids,
            gen,
            ctx,
            stats,
        }) => {
            let ids: Vec<u32> = serde_json::from_str(&std::fs::read_to_string(&ids)?)?;
            let s = assay::bench_llm::run_raw(&model, &ids, gen, ctx)?;
            std::fs::write(stats, serde_json::to_string(&s)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(Bench::LlmDraft {
            model,
            bundle,
            rubric,
            ctx,
            stats,
        }) => {
            let s = assay::bench_llm::run_draft(&model, &bundle, &rubric, ctx)?;
            std::fs::write(stats, serde_json::to_string(&s)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(settings: Settings, addr: std::net::SocketAddr, reveal: bool) -> Result<ExitCode> {
    if settings.graders.is_empty() {
        return Err(InputError::file(
            std::path::Path::new("settings"),
            "no graders are set up, so nobody could sign in",
        )
        .with_hint("add one with `assay grader add NAME` (it prints their token), then start `assay serve` again")
        .into());
    }
    let db_url = settings.db_url();
    let store = store::open(&db_url)
        .await
        .with_context(|| format!("cannot open database {}", git::redact(&db_url)))?;
    let app = assay::web::App::new(store, settings.graders.clone(), assay::web::Options { blind: !reveal });
    assay::web::serve(app, addr).await?;
    Ok(ExitCode::SUCCESS)
}

/// Appends `[[grader]]` to the settings file and prints the token, which is stored nowhere.
fn grader_add(config: Option<&std::path::Path>, name: &str) -> Result<ExitCode> {
    let path = config.unwrap_or(std::path::Path::new("assay.toml"));
    if !assay::config::valid_grader_name(name) {
        return Err(InputError::file(std::path::Path::new(name), "a grader name is 1-64 of A-Z a-z 0-9 . _ -").into());
    }
    let existing = if path.exists() {
        let settings = Settings::load_from(Some(path), &[], &assay::config::Overrides::default())?;
        if settings.graders.iter().any(|g| g.name == name) {
            return Err(InputError::file(path, format!("grader {name:?} already exists"))
                .with_hint("pick another name, or delete their [[grader]] table to replace them")
                .into());
        }
        std::fs::read_to_string(path)?
    } else {
        String::new()
    };
    let token = assay::web::random_token();
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[[grader]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n",
        assay::web::token_hash(&token)
    ));
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "grader {name} added to {}; their token (shown once, not stored):",
        path.display()
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

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

async fn feedback(
    settings: &Settings,
    cohort: &str,
    out: &std::path::Path,
    candidate: Option<&str>,
) -> Result<ExitCode> {
    use assay::feedback::Outcome;
    let db_url = settings.db_url();
    let store = store::open(&db_url)
        .await
        .with_context(|| format!("cannot open database {}", git::redact(&db_url)))?;
    let c = find_cohort(store.as_ref(), cohort).await?;
    let done = assay::feedback::write_cohort(store.as_ref(), &c, candidate, out).await?;
    if let (Some(name), true) = (candidate, done.is_empty()) {
        return Err(InputError::file(
            std::path::Path::new(name),
            format!("no such candidate in cohort {cohort} (check the id as in the cohort file)"),
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
        out.display()
    );
    // Asked for one candidate whose review is not final: nothing was done.
    Ok(if candidate.is_some() && written == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn export(settings: &Settings, cohort: &str, format: &str, reveal: bool) -> Result<ExitCode> {
    let db_url = settings.db_url();
    let store = store::open(&db_url)
        .await
        .with_context(|| format!("cannot open database {}", git::redact(&db_url)))?;
    let c = &find_cohort(store.as_ref(), cohort).await?;
    let rubric = c.rubric().with_context(|| {
        format!("cohort {cohort} was graded before rubrics were stored with it: run `assay grade` on it again")
    })?;
    let subs = store.submissions(c.id).await?;
    let reviews = store.cohort_reviews(c.id).await?;
    let rows = assay::review::export_rows(&rubric, &subs, &reviews, reveal);
    if format == "json" {
        let doc = serde_json::json!({
            "cohort": cohort,
            "rubric": rubric.name,
            "blind": !reveal,
            "reviews": rows,
            "metrics": assay::review::metrics(&rubric, &reviews),
            "item_metrics": assay::review::item_metrics(&rubric, &reviews),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", assay::review::export_csv(&rubric, &rows, reveal));
    }
    if rows.is_empty() {
        eprintln!("assay: no final reviews in {cohort} yet (graders finalize them in `assay serve`)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_draft(settings: &Settings, candidate: &str, cohort: Option<&str>, json: bool) -> Result<ExitCode> {
    let db_url = settings.db_url();
    let store = store::open(&db_url)
        .await
        .with_context(|| format!("cannot open database {}", git::redact(&db_url)))?;
    let found = store.find_submissions(candidate, cohort).await?;
    let rec = match found.as_slice() {
        [] => {
            return Err(InputError::file(
                std::path::Path::new(candidate),
                "no such candidate in the database (check the name, --cohort and --db)",
            )
            .into())
        }
        [one] => one.clone(),
        many => {
            let names: Vec<String> = many.iter().map(|(c, _)| c.clone()).collect();
            return Err(InputError::file(
                std::path::Path::new(candidate),
                format!("candidate is in several cohorts ({}); pass --cohort", names.join(", ")),
            )
            .into());
        }
    };
    let (cohort_name, rec) = rec;
    let record: Option<assay::draft::DraftRecord> = pipeline::stage_output(store.as_ref(), rec.id, Stage::Draft)
        .await?
        .and_then(|v| serde_json::from_value(v).ok());
    let evidence = store.evidence(rec.id).await?;
    if json {
        let doc = serde_json::json!({
            "cohort": cohort_name,
            "candidate": rec.candidate,
            "evidence": evidence,
            "draft": record,
            "drafts": record.as_ref().map(|r| r.drafts.clone()).unwrap_or_default(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
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
        report::draft_text(&rec.candidate, &cohort_name, &record, &evidence)
    );
    Ok(ExitCode::SUCCESS)
}

fn model_cmd(settings: &Settings, cmd: ModelCmd) -> Result<ExitCode> {
    use assay::llm::{self, manifest};
    let dir = manifest::model_dir(&settings.data_dir);
    match cmd {
        ModelCmd::Fetch { name, all } => {
            let wanted: Vec<manifest::Manifest> = if all {
                manifest::manifests(&dir)?
            } else {
                vec![manifest::find(&dir, name.as_deref().unwrap_or(llm::DEFAULT_MODEL))?]
            };
            for m in wanted {
                let got = manifest::fetch(&m, &dir, &mut |line| eprintln!("{}: {line}", m.name))?;
                let what = if got.already_present {
                    "already present"
                } else {
                    "fetched"
                };
                println!(
                    "{} {what}: {} ({} bytes, sha256 ok)",
                    got.name,
                    got.path.display(),
                    got.bytes
                );
            }
        }
        ModelCmd::List => {
            for m in manifest::manifests(&dir)? {
                let present = if m.path_in(&dir).is_file() {
                    "fetched"
                } else {
                    "not fetched"
                };
                println!(
                    "{:<30} {:<12} {:<8} {:>7} ctx  {}",
                    m.name, present, m.architecture, m.context_length, m.description
                );
            }
            println!("model directory: {}", dir.display());
        }
        ModelCmd::Info { model, json } => {
            let r = manifest::resolve(&dir, model.as_deref().unwrap_or(llm::DEFAULT_MODEL))?;
            let info = llm::Gguf::open(&r.path)?.info()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", report::model_info_text(&r.id, &info));
            }
        }
        ModelCmd::Tokenize {
            model,
            json,
            plain,
            text,
        } => {
            let r = manifest::resolve(&dir, model.as_deref().unwrap_or(llm::DEFAULT_MODEL))?;
            let tok = llm::GgufTokenizer::from_gguf(&llm::Gguf::open(&r.path)?)?;
            let mut all = Vec::with_capacity(text.len());
            for t in &text {
                all.push(if plain {
                    tok.encode_plain(t)?
                } else {
                    tok.encode_special(t)?
                });
            }
            if json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for ids in &all {
                    println!("{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

struct GradeOpts {
    out: PathBuf,
    json: bool,
    test_timeout: Option<u64>,
    sandbox: bool,
    model: Option<assay::llm::ModelRef>,
    draft_budget: usize,
}

/// The model `grade` drafts with: the one asked for (which must exist), else the default when it
/// has been fetched; without it grading goes on and says how to get drafts.
fn pick_model(settings: &Settings, asked: Option<&str>) -> Result<Option<assay::llm::ModelRef>> {
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

async fn grade(settings: Settings, cohort: Cohort, opts: GradeOpts) -> Result<ExitCode> {
    let GradeOpts {
        out,
        json,
        test_timeout,
        sandbox,
        model,
        draft_budget,
    } = opts;
    let db_url = settings.db_url();
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
    let _lock = WorkLock::acquire(&settings.data_dir, &db_url)?;
    let store = store::open(&db_url)
        .await
        .with_context(|| format!("cannot open database {}", git::redact(&db_url)))?;

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        eprintln!("assay: stopping; stages in flight are recorded as interrupted (run again to resume)");
        on_signal.cancel();
    });

    let mut pipeline = Pipeline::new(Arc::clone(&store), settings, cancel.clone(), pipeline::progress::auto())
        .with_test_timeout(test_timeout);
    if sandbox {
        let docker = assay::sandbox::docker::DockerSandbox::connect().await.context(
            "cannot reach the Docker engine (start dockerd, or pass --no-sandbox to stop after the history)",
        )?;
        use assay::sandbox::Sandbox as _;
        docker.reap_orphans().await?;
        pipeline = pipeline.with_sandbox(Arc::new(docker));
    }
    if let Some(m) = &model {
        let (path, id) = (m.path.clone(), m.id.clone());
        eprintln!("assay: loading {id} for drafts");
        let engine =
            tokio::task::spawn_blocking(move || assay::llm::Engine::start(&path, &id, assay::llm::DEFAULT_CONTEXT))
                .await??;
        let options = assay::draft::DraftOptions {
            evidence_budget: draft_budget,
            ..Default::default()
        };
        pipeline = pipeline.with_drafter(Arc::new(pipeline::Drafter::new(engine, options)));
    }
    let pipeline = Arc::new(pipeline);
    // The summary and each submission's report detail, read from the store once.
    let (summary, details) = pipeline.run(&cohort).await?;
    report::write_all(&out, &summary, &details, &cohort.rubric)?;

    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{:<16} {:<12} {:<26} {:<9} {:>7} {:>5} {:>6} {:>5}  review",
            "candidate", "status", "outcome", "commit", "signals", "rank", "total", "conf"
        );
        for s in &summary.submissions {
            let commit = s.commit.as_deref().map(|c| &c[..7.min(c.len())]).unwrap_or("—");
            let t = summary.triage.submissions.iter().find(|t| t.candidate == s.candidate);
            println!(
                "{:<16} {:<12} {:<26} {:<9} {:>7} {:>5} {:>6} {:>5}  {}",
                s.candidate,
                s.status,
                s.outcome.as_str(),
                commit,
                s.evidence.len(),
                t.and_then(|t| t.rank).map_or("—".into(), |r| r.to_string()),
                t.and_then(|t| t.total).map_or("—".into(), |v| format!("{v:.1}")),
                t.map_or("—".into(), |t| format!("{:.2}", t.confidence)),
                t.map_or(String::new(), |t| t
                    .queued
                    .iter()
                    .map(|q| q.as_str())
                    .collect::<Vec<_>>()
                    .join(","))
            );
        }
        println!("reports: {}", out.join("summary.md").display());
    }
    Ok(if summary.cancelled {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
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

fn history(settings: &Settings, spec: &str, git_ref: Option<&str>, json: bool) -> Result<ExitCode> {
    let opened = open_repo(settings, spec, git_ref)?;
    let report = git::analyze(&git::HistoryInput {
        repo: &opened.git_dir,
        commit: &opened.commit,
        now: chrono::Utc::now(),
        max_commits: settings.limits.commits,
        after_deadline: &opened.after_deadline,
        salt: "assay-history",
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::history_text(&opened.shown, &report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Exports the graded tree of `spec` (HEAD of a local repository, or a fetched URL).
fn export_for_check(settings: &Settings, spec: &str, dest: &std::path::Path) -> Result<(String, git::Exported)> {
    let opened = open_repo(settings, spec, None)?;
    let repo = git2::Repository::open(&opened.git_dir)?;
    let exported = git::export_tree(&repo, &opened.commit, dest, &settings.limits)?;
    Ok((opened.commit, exported))
}

struct CheckOpts<'a> {
    runner: Option<&'a str>,
    out: Option<&'a std::path::Path>,
    test_timeout: Option<u64>,
    hidden: Option<&'a std::path::Path>,
    json: bool,
}

async fn check(settings: &Settings, spec: &str, opts: CheckOpts<'_>) -> Result<ExitCode> {
    let CheckOpts {
        runner,
        out,
        test_timeout,
        hidden,
        json,
    } = opts;
    let tmp = tempfile::tempdir()?;
    let tree = tmp.path().join("tree");
    let (settings_c, spec_c, tree_c) = (settings.clone(), spec.to_string(), tree.clone());
    let (commit, exported) =
        tokio::task::spawn_blocking(move || export_for_check(&settings_c, &spec_c, &tree_c)).await??;
    let sandbox = assay::sandbox::docker::DockerSandbox::connect()
        .await
        .context("cannot reach the Docker engine (is dockerd running? DOCKER_HOST is honoured)")?;
    use assay::sandbox::Sandbox as _;
    sandbox.reap_orphans().await?;
    let mut limits = assay::sandbox::SandboxLimits::from_settings(&settings.limits);
    if let Some(t) = test_timeout {
        // Limits can only be lowered per run.
        limits.test_seconds = limits.test_seconds.min(t.max(1));
    }
    let job = format!("check-{}-{}", &commit[..12], std::process::id());
    let report = assay::check::check_tree(&sandbox, &tree, runner, limits, &job, &exported, hidden).await?;
    let markdown = report::check_markdown(spec, &commit, &report);
    if let Some(out) = out {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("report.md"), &markdown)?;
        let html = report::render_candidate(
            Some(&assay::git::redact(spec)),
            Some(&commit),
            report.sandbox.as_ref(),
            Some(&report.badge),
            &report.findings,
            None,
        )?;
        std::fs::write(out.join("report.html"), html)?;
    }
    if json {
        let mut doc = serde_json::to_value(&report)?;
        if let Some(obj) = doc.as_object_mut() {
            obj.remove("sandbox");
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", report::check_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

async fn images_build(base: &str, runners: &[String]) -> Result<ExitCode> {
    let sandbox = assay::sandbox::docker::DockerSandbox::connect()
        .await
        .context("cannot reach the Docker engine (is dockerd running? DOCKER_HOST is honoured)")?;
    for spec in assay::runner::builtin() {
        if !runners.is_empty() && !runners.contains(&spec.name) {
            continue;
        }
        eprintln!("building {} from {base}", spec.image);
        assay::sandbox::images::build(&sandbox, &spec.name, &spec.image, base, |line| {
            tracing::info!("{line}");
        })
        .await?;
        eprintln!("built {}", spec.image);
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench_corpus(
    settings: &Settings,
    manifest: &std::path::Path,
    repos: &std::path::Path,
    only: &[String],
    save: Option<&std::path::Path>,
    json: bool,
) -> Result<ExitCode> {
    use assay::bench_corpus as corpus;
    let m = corpus::Manifest::load(manifest)?;
    let sandbox = assay::sandbox::docker::DockerSandbox::connect()
        .await
        .context("cannot reach the Docker engine (is dockerd running? DOCKER_HOST is honoured)")?;
    use assay::sandbox::Sandbox as _;
    sandbox.reap_orphans().await?;
    let judged = corpus::run(&sandbox, &m, repos, settings, only, save).await?;
    let summary = corpus::summarize(&judged);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "repos": judged, "summary": summary }))?
        );
    } else {
        print!("{}", corpus::render(&judged, &summary));
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_history(repo: Option<PathBuf>, commits: usize, runs: usize) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let repo = match repo {
        Some(r) => r,
        None => {
            let dir = tmp.path().join("bench-repo");
            eprintln!("generating a {commits}-commit repository in {}", dir.display());
            assay::bench::generate_repo(&dir, commits)?;
            dir
        }
    };
    let exe = std::env::current_exe()?.display().to_string();
    let repo_s = repo.display().to_string();
    let data_dir = tmp.path().join("data").display().to_string();
    let ours: Vec<String> = [exe.as_str(), "--data-dir", &data_dir, "history", "--json", &repo_s]
        .map(String::from)
        .to_vec();
    let base: Vec<String> = ["git", "-C", &repo_s, "log", "--numstat", "--no-renames"]
        .map(String::from)
        .to_vec();
    let (mut ow, mut om, mut bw, mut bm) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let o = assay::bench::measure(&ours)?;
        let b = assay::bench::measure(&base)?;
        ow.push(o.wall_s);
        om.push(o.max_rss_mib);
        bw.push(b.wall_s);
        bm.push(b.max_rss_mib);
    }
    let (ow, om, bw, bm) = (
        assay::bench::median(&mut ow),
        assay::bench::median(&mut om),
        assay::bench::median(&mut bw),
        assay::bench::median(&mut bm),
    );
    println!("repository: {repo_s} (median of {runs} runs)");
    println!("{:<44} {:>9} {:>12}", "command", "wall (s)", "peak (MiB)");
    println!("{:<44} {:>9.3} {:>12.1}", "assay history --json", ow, om);
    println!("{:<44} {:>9.3} {:>12.1}", "git log --numstat --no-renames", bw, bm);
    println!("ratio (assay / git): wall {:.2}, memory {:.2}", ow / bw, om / bm);
    Ok(ExitCode::SUCCESS)
}

fn timed(cmd: &mut std::process::Command) -> Result<f64> {
    let start = std::time::Instant::now();
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(start.elapsed().as_secs_f64())
}

async fn bench_sandbox(runs: usize) -> Result<ExitCode> {
    use assay::sandbox::{Phase, PhaseSpec, Sandbox as _, SandboxLimits};
    let runs = runs.max(1);
    let image = "assay-runner-python";
    let sandbox = assay::sandbox::docker::DockerSandbox::connect()
        .await
        .context("cannot reach the Docker engine")?;
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("tests"))?;
    std::fs::write(src.join("requirements.txt"), "pytest==7.2.1\n")?;
    std::fs::write(src.join("calc.py"), "def add(a, b):\n    return a + b\n")?;
    std::fs::write(
        src.join("tests/test_calc.py"),
        "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    )?;

    // 1. One sandboxed `true` (create, start, wait, copy-out, remove) against `docker run --rm`.
    let work = sandbox
        .prepare(
            &format!("bench-{}", std::process::id()),
            image,
            &src,
            &SandboxLimits::default(),
        )
        .await?;
    let spec = PhaseSpec {
        phase: Phase::Test,
        image: image.into(),
        script: "true".into(),
        env: Vec::new(),
        cache_dirs: Vec::new(),
        runner: "python".into(),
        collect: Some(".assay".into()),
        timeout: std::time::Duration::from_secs(60),
        memory: 256 << 20,
        pids: 64,
    };
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = std::time::Instant::now();
        sandbox.run(&work, &spec, &SandboxLimits::default()).await?;
        ours.push(t.elapsed().as_secs_f64());
        base.push(timed(
            std::process::Command::new("docker").args(["run", "--rm", image, "true"]),
        )?);
    }
    sandbox.cleanup(&work).await?;
    let (o1, b1) = (assay::bench::median(&mut ours), assay::bench::median(&mut base));

    // 2. `assay check` (install once, tests twice) against the runner's install
    //    and test commands run by hand in one `docker run` each, caches warm.
    let runner = assay::runner::by_name("python").map_err(anyhow::Error::msg)?;
    let repo = git2::Repository::init(&src)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("bench", "bench@example.org")?;
    repo.commit(Some("HEAD"), &sig, &sig, "bench", &tree, &[])?;
    let exe = std::env::current_exe()?;
    let data = tmp.path().join("data");
    let check = || -> Result<f64> {
        timed(
            std::process::Command::new(&exe)
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
        timed(std::process::Command::new("docker").args([
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
            image,
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
    let (o2, b2) = (assay::bench::median(&mut ours2), assay::bench::median(&mut base2));
    println!(
        "{:<58} {:>9} {:>9} {:>7}",
        "measurement (median of runs)", "assay s", "base s", "ratio"
    );
    println!(
        "{:<58} {:>9.3} {:>9.3} {:>7.2}",
        "sandboxed `true` vs docker run --rm IMAGE true",
        o1,
        b1,
        o1 / b1
    );
    println!(
        "{:<58} {:>9.3} {:>9.3} {:>7.2}",
        "assay check (2 test runs) vs install + test by hand",
        o2,
        b2,
        o2 / b2
    );
    Ok(ExitCode::SUCCESS)
}

/// (busy, total) jiffies of all CPUs, from /proc/stat.
fn cpu_jiffies() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    anyhow::ensure!(v.len() >= 5, "unexpected /proc/stat: {line}");
    let idle = v[3] + v[4]; // idle + iowait
    let total: u64 = v.iter().take(8).sum();
    Ok((total - idle, total))
}

fn bench_cohort(size: usize, jobs: usize) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let mut cohort = String::from("[assignment]\nname = \"bench\"\nrubric = \"rubric.toml\"\n");
    std::fs::write(
        tmp.path().join("rubric.toml"),
        include_str!("../rubrics/trial-project.toml"),
    )?;
    for i in 0..size {
        let dir = tmp.path().join(format!("r{i}"));
        std::fs::create_dir_all(dir.join("tests"))?;
        std::fs::write(dir.join("requirements.txt"), "pytest==7.2.1\n")?;
        std::fs::write(
            dir.join("calc.py"),
            format!("def add(a, b):\n    return a + b + {}\n", i % 2),
        )?;
        let tests: String = (0..20)
            .map(|k| format!("def test_{k}():\n    from calc import add\n    assert add({k}, 1) >= {k}\n\n"))
            .collect();
        std::fs::write(dir.join("tests/test_calc.py"), tests)?;
        let repo = git2::Repository::init(&dir)?;
        let mut index = repo.index()?;
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
        let tree = repo.find_tree(index.write_tree()?)?;
        let sig = git2::Signature::now("bench", "bench@example.org")?;
        repo.commit(Some("HEAD"), &sig, &sig, "bench", &tree, &[])?;
        cohort.push_str(&format!("[[submission]]\ncandidate = \"c{i}\"\nrepo = \"r{i}\"\n"));
    }
    let cohort_path = tmp.path().join("cohort.toml");
    std::fs::write(&cohort_path, cohort)?;
    let exe = std::env::current_exe()?;
    let (b0, t0) = cpu_jiffies()?;
    let start = std::time::Instant::now();
    let out = std::process::Command::new(exe)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args([
            "grade",
            "--no-drafts",
            cohort_path.to_str().context("path")?,
            "--jobs",
            &jobs.to_string(),
            "--json",
            "--out",
        ])
        .arg(tmp.path().join("out"))
        .output()?;
    let wall = start.elapsed().as_secs_f64();
    let (b1, t1) = cpu_jiffies()?;
    anyhow::ensure!(
        out.status.success(),
        "grade failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let done = v["submissions"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|x| x["status"] == "done").count());
    let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
    println!(
        "cohort of {size} with --jobs {jobs}: {done} done in {wall:.1} s, {:.1} s per submission",
        wall / size as f64
    );
    println!(
        "CPU utilisation over the run (all cores, from /proc/stat): {:.0}%",
        busy * 100.0
    );
    Ok(ExitCode::SUCCESS)
}
