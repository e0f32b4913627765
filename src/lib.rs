//! assay grades trial-project submissions: take-home assignments and short paid
//! micro-internships that hiring teams use instead of interviews.
//!
//! For every candidate repository in a cohort it fetches the repository within
//! hard limits, reads how the candidate worked from the commits, stores every
//! finding as evidence with a stable id, and writes reports. Later stages
//! (sandboxed tests, reproducibility, LLM drafts, review) plug into the same
//! pipeline and store.
//!
//! Module map, in data-flow order:
//!
//! - [`config`]: settings (`assay.toml` < `ASSAY_*` < flags).
//! - [`cohort`], [`rubric`]: input files, validated with file:line:col errors ([`diag`]).
//! - [`git`]: fetch (mirror, limits, SSRF policy, deadline), export, history signals.
//! - [`evidence`]: evidence items with stable ids, built from stage outputs.
//! - [`facts`]: the deterministic facts scores rest on, and what each source supports.
//! - [`triage`]: automated criterion scores, drafts, weighted totals, confidence, ranking, queue.
//! - [`review`]: grader reviews: finality, final totals, overrides, exports, the hiring lead's
//!   metrics (per criterion and per checklist item).
//! - [`feedback`]: the candidate's feedback after sign-off (`assay feedback`).
//! - [`store`]: the `Store` trait and its SQLite implementation (sqlx).
//! - [`pipeline`]: the worker pool: stages, semaphores, retries, cancellation, resume.
//! - [`report`]: Markdown and HTML reports (tera); [`report::text`] for the terminal.
//! - [`mod@bench`]: benchmarks against baselines (one module per `assay bench` benchmark),
//!   synthetic repositories.
//! - [`outcome`]: the stable outcome kinds every stage ends with.
//!
//! See ARCHITECTURE.md for the invariants.

pub mod ask;
pub mod bench;
pub mod check;
pub mod cohort;
pub mod config;
pub mod diag;
pub mod draft;
pub mod evidence;
pub mod facts;
pub mod feedback;
pub mod git;
pub mod llm;
pub mod outcome;
pub mod pipeline;
pub mod readme;
pub mod report;
pub mod repro;
pub mod review;
pub mod rubric;
pub mod runner;
pub mod sandbox;
pub mod store;
pub mod triage;
pub mod web;
