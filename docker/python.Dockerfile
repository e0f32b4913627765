# Runner image: Python 3.11 with pip, venv and pytest. Tests run as `runner`.
# What packages compile with when no wheel fits (psycopg2, cryptography, cffi,
# numpy from source): a compiler, Python's headers, pkg-config and the usual
# -dev libraries, so a candidate's install never fails for want of our tools.
ARG BASE=assay-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-pip python3-pytest python3-dev build-essential ca-certificates git \
      pkg-config libssl-dev libffi-dev libpq-dev libopenblas-dev gfortran \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m pytest --version
RUN useradd --uid 10001 --create-home --shell /bin/bash runner \
 && mkdir -p /work /cache/pip && chown runner:runner /work /cache/pip
USER 10001
WORKDIR /work
