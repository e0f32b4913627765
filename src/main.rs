//! The `assay` command line: parses arguments and hands them to the command in
//! `cli/` (one file per command). Exit codes: 0 done, 1 assay failed, 2 bad
//! input, 130 interrupted.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use assay::diag::InputError;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            if let Some(input) = e.downcast_ref::<InputError>() {
                eprintln!("error: {input}");
                return ExitCode::from(2);
            }
            eprintln!("error: {}", assay::git::redact(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}
