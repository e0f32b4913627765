# Runner image: Debian's Rust 1.96 (rustc-web, cargo-web from bookworm-security).
ARG BASE=assay-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      rustc-web cargo-web build-essential pkg-config libssl-dev ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && cargo --version && rustc --version
RUN useradd --uid 10001 --create-home --shell /bin/bash runner \
 && mkdir -p /work /cache/cargo && chown runner:runner /work /cache/cargo
USER 10001
WORKDIR /work
