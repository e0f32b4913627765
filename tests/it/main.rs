//! Integration tests: one binary, real git repositories built with git2, real
//! SQLite, the real `assay` binary where a user would run it.

mod export;
mod grade;
mod helpers;
mod history;
mod install;
mod llm;
mod postgres;
mod queue;
mod readme;
mod remote;
mod sandbox;
mod web;
