#!/usr/bin/env bash
# Creates the demo cohort's repositories (no network needed):
#   good    an iterative candidate: baseline with tests on day one, small steps, README results
#   dump    everything in one commit at the end
#   broken  a project whose code and tests are broken (missing dependency, failing test)
# Dates and identities are fixed, so the commits (and so assay's results) are
# the same on every machine. Usage: make-repos.sh [TARGET_DIR]
set -euo pipefail
target=${1:-"$(cd "$(dirname "$0")" && pwd)/repos"}
rm -rf "$target"
mkdir -p "$target"

export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="Sam Candidate" GIT_AUTHOR_EMAIL="sam@example.org"
export GIT_COMMITTER_NAME="Sam Candidate" GIT_COMMITTER_EMAIL="sam@example.org"

# commit REPO DATE MESSAGE: commit everything in REPO at DATE.
commit() {
  GIT_AUTHOR_DATE="$2" GIT_COMMITTER_DATE="$2" git -C "$1" add -A
  GIT_AUTHOR_DATE="$2" GIT_COMMITTER_DATE="$2" git -C "$1" commit -q -m "$3"
}
new_repo() {
  git init -q -b main "$1"
}

# --- good: iterative ---------------------------------------------------------
g="$target/good"
new_repo "$g"
mkdir -p "$g/churn" "$g/tests"
cat > "$g/README.md" <<'MD'
# Churn prediction

Predict which customers leave next month. Success metric: recall at a 10%
false-positive rate, because retention offers are cheap but not free.
Assumption: the snapshot in data/ is representative of next month.

## Run

    pip install -r requirements.txt
    python -m pytest
MD
cat > "$g/requirements.txt" <<'TXT'
pytest==8.3.3
TXT
cat > "$g/churn/__init__.py" <<'PY'
PY
cat > "$g/churn/model.py" <<'PY'
def predict(customer):
    """Baseline: nobody churns."""
    return 0
PY
cat > "$g/tests/test_model.py" <<'PY'
from churn.model import predict


def test_baseline_predicts_no_churn():
    assert predict({"tenure": 3}) == 0
PY
commit "$g" "2026-11-16T09:10:00Z" "Add baseline that predicts no churn, with a test"

cat > "$g/churn/features.py" <<'PY'
def tenure_bucket(months):
    if months < 6:
        return "new"
    if months < 24:
        return "settled"
    return "loyal"
PY
cat > "$g/tests/test_features.py" <<'PY'
from churn.features import tenure_bucket


def test_tenure_buckets():
    assert tenure_bucket(1) == "new"
    assert tenure_bucket(12) == "settled"
    assert tenure_bucket(40) == "loyal"
PY
commit "$g" "2026-11-16T09:55:00Z" "Add tenure buckets as the first feature"

cat > "$g/churn/model.py" <<'PY'
from churn.features import tenure_bucket


def predict(customer):
    """Rule from the data exploration: new customers on monthly plans churn."""
    return int(tenure_bucket(customer["tenure"]) == "new" and customer.get("plan") == "monthly")
PY
cat >> "$g/tests/test_model.py" <<'PY'


def test_new_monthly_customers_churn():
    assert predict({"tenure": 2, "plan": "monthly"}) == 1
    assert predict({"tenure": 2, "plan": "yearly"}) == 0
PY
commit "$g" "2026-11-16T11:20:00Z" "Predict churn for new monthly customers (recall 0.41)"

cat >> "$g/churn/features.py" <<'PY'


def support_pressure(tickets, months):
    return tickets / max(months, 1)
PY
cat > "$g/tests/test_features.py" <<'PY'
from churn.features import support_pressure, tenure_bucket


def test_tenure_buckets():
    assert tenure_bucket(1) == "new"
    assert tenure_bucket(12) == "settled"
    assert tenure_bucket(40) == "loyal"


def test_support_pressure_handles_zero_tenure():
    assert support_pressure(3, 0) == 3
PY
commit "$g" "2026-11-17T14:05:00Z" "Add support pressure feature; guard zero tenure"

cat > "$g/churn/model.py" <<'PY'
from churn.features import support_pressure, tenure_bucket


def predict(customer):
    """New monthly customers, or anyone filing more than one ticket a month."""
    new_monthly = tenure_bucket(customer["tenure"]) == "new" and customer.get("plan") == "monthly"
    pressured = support_pressure(customer.get("tickets", 0), customer["tenure"]) > 1
    return int(new_monthly or pressured)
PY
cat >> "$g/tests/test_model.py" <<'PY'


def test_support_pressure_predicts_churn():
    assert predict({"tenure": 30, "plan": "yearly", "tickets": 40}) == 1
PY
commit "$g" "2026-11-17T15:30:00Z" "Use support pressure in the model (recall 0.58)"

cat >> "$g/README.md" <<'MD'

## Results

| model | recall @ 10% FPR |
|---|---|
| baseline (no churn) | 0.00 |
| new monthly customers | 0.41 |
| + support pressure | 0.58 |

## Decisions and trade-offs

- Rules instead of gradient boosting: the data set is small and the rules are
  explainable to the retention team; boosting gained 0.03 recall in a quick try.
- Limitations: one month of data; seasonality is not modelled.
- Next steps: add payment failures as a feature; validate on December data.
MD
commit "$g" "2026-11-18T10:00:00Z" "Document results, decisions and limitations"

# --- dump: one commit -----------------------------------------------------------
d="$target/dump"
new_repo "$d"
mkdir -p "$d/src" "$d/tests"
printf '# Churn\n' > "$d/README.md"
commit "$d" "2026-11-16T09:00:00Z" "Initial commit"
python3 - "$d/src/pipeline.py" <<'PY'
import sys
lines = ["import math", "", ""]
for i in range(120):
    lines += [f"def step_{i}(x):", f"    return math.sqrt(abs(x)) + {i}", ""]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
printf 'from src.pipeline import step_1\n\n\ndef test_step():\n    assert step_1(4) == 3\n' > "$d/tests/test_pipeline.py"
commit "$d" "2026-11-19T23:40:00Z" "final version"

# --- broken: missing dependency, failing test --------------------------------------
b="$target/broken"
new_repo "$b"
mkdir -p "$b/app"
printf 'numpy\n' > "$b/requirements.txt"
printf 'import pandas as pd\n\n\ndef load(path):\n    return pd.read_csv(path)\n' > "$b/app/load.py"
commit "$b" "2026-11-17T20:00:00Z" "wip"
printf 'from app.load import load\n\n\ndef test_load():\n    assert load("missing.csv") is not None\n' > "$b/test_load.py"
commit "$b" "2026-11-17T20:01:00Z" "update"
printf 'import pandas as pd\n\n\ndef load(path):\n    return pd.read_csv(path, sep=";")\n' > "$b/app/load.py"
commit "$b" "2026-11-17T20:01:30Z" "fix"
echo "demo repositories are in $target"
