//! `assay images build`: the runner images, built through the Docker engine.

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum Cmd {
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

pub fn exec(cmd: Cmd) -> Result<ExitCode> {
    let Cmd::Build { base, runners } = cmd;
    super::runtime()?.block_on(async {
        let sandbox = super::docker(super::NO_DOCKER).await?;
        for spec in assay::runner::builtin() {
            if !runners.is_empty() && !runners.contains(&spec.name) {
                continue;
            }
            eprintln!("building {} from {base}", spec.image);
            assay::sandbox::images::build(&sandbox, &spec.name, &spec.image, &base, |line| {
                tracing::info!("{line}");
            })
            .await?;
            eprintln!("built {}", spec.image);
        }
        Ok(ExitCode::SUCCESS)
    })
}
