#!/usr/bin/env bash
# Sets up this machine, builds assay, makes the demo repositories and grades
# the example cohort. Reports land in assay-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash examples/make-repos.sh
cargo build --release --locked
./target/release/assay grade examples/cohort.toml --out assay-out
echo "open assay-out/summary.md for the cohort summary"
