//! `assay bench …`: the benchmarks (release builds), each reported as ratios against a baseline
//! measured in the same run. Their code is in `assay::bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use assay::config::Overrides;

use assay::bench;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// `assay history --json` against `git log --numstat --no-renames`.
    History {
        /// Repository to measure (default: a generated one).
        repo: Option<PathBuf>,
        /// Commits in the generated repository.
        #[arg(long, default_value_t = 5000)]
        commits: usize,
        /// Shapes of generated repository to measure, each in turn (default: every shape).
        #[arg(long, value_enum, value_delimiter = ',')]
        shape: Vec<bench::Shape>,
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
        /// Also grade the cohort with drafts by this model (a manifest name, fetched): the
        /// cores' utilisation with the sandbox and the model sharing them.
        #[arg(long)]
        model: Option<String>,
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
    /// The work queue: no-op jobs per second with 1, 2, 4 and 8 workers, claim latency with a
    /// backlog, recovery of a dead worker's job, scaling of one-second jobs from 1 to 4 workers.
    Queue {
        /// A scratch database (postgres://… or sqlite://…) holding no cohorts but the bench's
        /// (default: a throwaway PostgreSQL server of Debian's binaries).
        #[arg(long)]
        db: Option<String>,
        /// No-op jobs per throughput run.
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        /// Jobs queued while claim latency is measured.
        #[arg(long, default_value_t = 10_000)]
        backlog: usize,
        /// Lease of the recovery runs (seconds).
        #[arg(long, default_value_t = 6)]
        lease: u64,
        /// One-second jobs of the scaling runs.
        #[arg(long, default_value_t = 12)]
        slow_jobs: usize,
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

pub fn exec(g: &super::Global, cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Exec { argv } => bench::exec_and_report(&argv)?,
        Cmd::History {
            repo,
            commits,
            shape,
            runs,
        } => {
            let shapes = if shape.is_empty() {
                bench::Shape::ALL.to_vec()
            } else {
                shape
            };
            match repo {
                Some(repo) => print!(
                    "{}",
                    bench::history::text(&bench::history::run(Some(repo), commits, None, runs)?)
                ),
                None => {
                    for shape in shapes {
                        print!(
                            "{}",
                            bench::history::text(&bench::history::run(None, commits, Some(shape), runs)?)
                        );
                    }
                }
            }
        }
        Cmd::Sandbox { runs } => {
            let settings = g.settings(Overrides::default())?;
            let r = super::runtime()?.block_on(async {
                let sandbox = super::docker(&settings, super::NO_DOCKER).await?;
                bench::sandbox::run(&sandbox, runs).await
            })?;
            print!("{}", bench::sandbox::text(&r));
        }
        Cmd::Cohort { size, jobs, model } => {
            let settings = g.settings(Overrides::default())?;
            let models = assay::llm::manifest::model_dir(&settings.data_dir);
            // A model that is not there is refused before the first run, not after it.
            if model.is_some() {
                super::grade::pick_model(&settings, model.as_deref())?;
            }
            print!("{}", bench::cohort::text(&bench::cohort::run(size, jobs, None)?));
            if let Some(m) = &model {
                print!(
                    "{}",
                    bench::cohort::text(&bench::cohort::run(size, jobs, Some((&models, m)))?)
                );
            }
        }
        Cmd::Corpus {
            manifest,
            repos,
            only,
            save,
            json,
        } => {
            let settings = g.settings(Overrides::default())?;
            let m = bench::corpus::Manifest::load(&manifest)?;
            let judged = super::runtime()?.block_on(async {
                let sandbox = super::docker(&settings, super::NO_DOCKER).await?;
                bench::corpus::run(&sandbox, &m, &repos, &settings, &only, save.as_deref()).await
            })?;
            let summary = bench::corpus::summarize(&judged);
            if json {
                super::print_json(&serde_json::json!({ "repos": judged, "summary": summary }))?;
            } else {
                print!("{}", bench::corpus::render(&judged, &summary));
            }
        }
        Cmd::Items {
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
        } => {
            let settings = g.settings(Overrides::default())?;
            let work = work.unwrap_or_else(|| settings.data_dir.join("bench-items"));
            let options = bench::items::Options {
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
            let report = super::runtime()?.block_on(bench::items::run(&options))?;
            if json {
                super::print_json(&report)?;
            } else {
                print!("{}", bench::items::text(&report));
            }
        }
        Cmd::Queue {
            db,
            jobs,
            backlog,
            lease,
            slow_jobs,
            json,
        } => {
            let options = bench::queue::Options {
                db,
                jobs: jobs.max(1),
                backlog: backlog.max(1),
                lease: std::time::Duration::from_secs(lease.max(3)),
                slow_jobs: slow_jobs.max(1),
                ..Default::default()
            };
            let assay = std::env::current_exe()?;
            let report = super::runtime()?.block_on(bench::queue::run(&options, &assay))?;
            if json {
                super::print_json(&report)?;
            } else {
                print!("{}", bench::queue::text(&report));
            }
        }
        Cmd::Serve { size, requests, json } => {
            let report = super::runtime()?.block_on(bench::serve::run(size, requests))?;
            if json {
                super::print_json(&report)?;
            } else {
                print!("{}", bench::serve::text(&report));
            }
        }
        Cmd::Llm {
            model,
            python,
            gen,
            ctx,
            bundle,
            rubric,
        } => {
            let settings = g.settings(Overrides::default())?;
            let dir = assay::llm::manifest::model_dir(&settings.data_dir);
            let r = assay::llm::manifest::resolve(&dir, &model)?;
            bench::llm::bench(&bench::llm::BenchArgs {
                model: r.path,
                model_id: r.id,
                python,
                gen,
                n_ctx: ctx,
                bundle,
                rubric,
            })?;
        }
        Cmd::LlmRun {
            model,
            ids,
            gen,
            ctx,
            stats,
        } => {
            let ids: Vec<u32> = serde_json::from_str(&std::fs::read_to_string(&ids)?)?;
            let s = bench::llm::run_raw(&model, &ids, gen, ctx)?;
            std::fs::write(stats, serde_json::to_string(&s)?)?;
        }
        Cmd::LlmDraft {
            model,
            bundle,
            rubric,
            ctx,
            stats,
        } => {
            let s = bench::llm::run_draft(&model, &bundle, &rubric, ctx)?;
            std::fs::write(stats, serde_json::to_string(&s)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
