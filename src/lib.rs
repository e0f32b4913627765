//! assay grades trial-project submissions: take-home assignments and short paid
//! micro-internships that hiring teams use instead of interviews.
//!
//! For every candidate repository in a cohort it fetches the repository within
//! hard limits, reads how the candidate worked from the commits, runs its tests in
//! a sandbox, checks that it reproduces, asks a local model the rubric's checklist
//! questions (quotes verified), stores every finding as evidence with a stable id,
//! ranks the cohort and writes reports; graders review in a web UI.
//!
//! Module map, leaves first (no circle of imports: a test in `layout` checks it):
//!
//! - Leaves: [`ids`] (the shape of user-written ids), [`host`] (this machine's name, owner ids), [`redact`] (credentials out of
//!   messages), [`outcome`] (the stable outcome kinds every stage ends with), [`diag`]
//!   (file:line:col input errors).
//! - Inputs: [`config`] (settings), [`cohort`], [`rubric`] (checklists, checks, the
//!   assessment of items and levels).
//! - Domain: [`submission`] (a submission's record and status), [`review`] (grader reviews:
//!   their types, finality, final totals, exports, metrics), [`evidence`] (items with
//!   stable ids), [`facts`] (what scores rest on).
//! - Reading a repository: [`git`] (fetch, export, history signals), [`readme`], [`runner`]
//!   (runner specs and result parsers), [`sandbox`] (the Docker sandbox and the test job),
//!   [`repro`] (reproducibility findings), [`check`] (`assay check` on one tree).
//! - The model: [`llm`] (GGUF, tokenizer, forward pass, generation), [`untrusted`] (screening
//!   candidate text), [`ask`] (checklist questions with verified quotes), [`draft`] (drafts,
//!   rationales, feedback).
//! - Grading: [`store`] (the `Store` trait and SQLite), [`pipeline`] (the worker pool: stages,
//!   retries, cancellation, resume; it writes), [`results`] (the read model: summaries and
//!   report details read back from the store), [`triage`] (scores, totals, confidence,
//!   ranking, queue).
//! - Showing results: [`report`] (Markdown, HTML, [`report::text`] for the terminal),
//!   [`web`] (the review UI), [`feedback`] (the candidate's feedback after sign-off).
//! - [`mod@bench`]: benchmarks against baselines (one module per `assay bench` benchmark),
//!   synthetic repositories.
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
#[cfg(test)]
mod fakes;
pub mod feedback;
pub mod git;
pub mod host;
pub mod ids;
#[cfg(test)]
mod layout;
pub mod llm;
pub mod outcome;
pub mod pipeline;
pub mod readme;
pub mod redact;
pub mod report;
pub mod repro;
pub mod results;
pub mod review;
pub mod rubric;
pub mod runner;
pub mod sandbox;
pub mod store;
pub mod submission;
pub mod triage;
pub mod untrusted;
pub mod web;
