# Runner image: Go 1.19, standard library only (no module proxy is reachable).
ARG BASE=assay-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      golang-go ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && go version
RUN useradd --uid 10001 --create-home --shell /bin/bash runner \
 && mkdir -p /work /cache/go && chown runner:runner /work /cache/go
USER 10001
WORKDIR /work
