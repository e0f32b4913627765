#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, docs, unit and integration tests
# (the sandbox tests need the Docker engine and runner images, set up here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo build --locked
bash scripts/docker.sh target/debug/assay
cargo test --locked
