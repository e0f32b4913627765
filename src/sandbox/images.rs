//! Runner images, built through bollard's build API from `docker/*.Dockerfile`
//! (compiled into the binary) with `ARG BASE`.

use std::collections::HashMap;

use futures_util::StreamExt;

use super::docker::DockerSandbox;
use super::SandboxError;

/// The Dockerfile of each image: the runners', and the install proxy's.
pub const DOCKERFILES: &[(&str, &str)] = &[
    ("python", include_str!("../../docker/python.Dockerfile")),
    ("rust", include_str!("../../docker/rust.Dockerfile")),
    ("node", include_str!("../../docker/node.Dockerfile")),
    ("go", include_str!("../../docker/go.Dockerfile")),
    // Not a runner: the install phase's proxy (see `super::egress`), image `assay-proxy`.
    ("proxy", include_str!("../../docker/proxy.Dockerfile")),
];

/// Builds the image of `runner` from `base`, tagged `tag`; `log` receives the build output.
pub async fn build(
    sandbox: &DockerSandbox,
    runner: &str,
    tag: &str,
    base: &str,
    mut log: impl FnMut(&str),
) -> Result<(), SandboxError> {
    let dockerfile = DOCKERFILES
        .iter()
        .find(|(n, _)| *n == runner)
        .map(|(_, d)| *d)
        .ok_or_else(|| SandboxError::Io(format!("no Dockerfile for runner {runner:?}")))?;
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .map_err(|e| SandboxError::Io(format!("cannot pack Dockerfile: {e}")))?;
    let context = builder
        .into_inner()
        .map_err(|e| SandboxError::Io(format!("cannot pack Dockerfile: {e}")))?;
    let args = HashMap::from([("BASE".to_string(), base.to_string())]);
    let opts = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&args)
        .build();
    let mut stream = sandbox
        .client()
        .build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(SandboxError::Io(format!("building {tag} failed: {e}")));
        }
        if let Some(s) = info.stream {
            log(s.trim_end());
        }
    }
    Ok(())
}
