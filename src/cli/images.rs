//! `assay images build`: the runner images, built through the Docker engine.

use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Build the runner images and the install proxy's image through the Docker engine.
    Build {
        /// Base image (a debootstrap import by docker/make-base.sh, or debian:bookworm-slim).
        #[arg(long, default_value = "assay-base:bookworm")]
        base: String,
        /// Only these runners (default: all, and the proxy; `proxy` names the proxy's image).
        #[arg(long = "runner")]
        runners: Vec<String>,
    },
}

pub fn exec(settings: &assay::config::Settings, cmd: Cmd) -> Result<ExitCode> {
    let Cmd::Build { base, runners } = cmd;
    super::runtime()?.block_on(async {
        let sandbox = super::docker(settings, super::NO_DOCKER).await?;
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
        // The install phase's proxy, which every runner's install goes through.
        if runners.is_empty() || runners.iter().any(|r| r == "proxy") {
            let image = assay::sandbox::egress::PROXY_IMAGE;
            eprintln!("building {image} from {base}");
            assay::sandbox::images::build(&sandbox, "proxy", image, &base, |line| tracing::info!("{line}")).await?;
            eprintln!("built {image}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
