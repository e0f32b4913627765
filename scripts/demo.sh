#!/usr/bin/env bash
# Sets up this machine (build tools, Docker engine, runner images, the default
# model), builds
# assay, makes the demo repositories and grades the example cohort. Reports
# land in assay-out/. Needs root for apt and dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
bash scripts/docker.sh target/release/assay
./target/release/assay model fetch qwen2.5-coder-1.5b-instruct
bash examples/make-repos.sh
./target/release/assay grade examples/cohort.toml --out assay-out
echo "open assay-out/summary.md for the cohort summary"
