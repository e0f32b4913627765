#!/usr/bin/env bash
# Clones every repository of the corpus manifest at its commit into DIR/OWNER+NAME/repo,
# the layout `assay bench corpus --repos DIR` reads. Needs network access to GitHub.
# Usage: corpus/fetch.sh DIR [MANIFEST]
set -euo pipefail
dir=${1:?usage: corpus/fetch.sh DIR [MANIFEST]}
manifest=${2:-$(dirname "$0")/manifest.toml}
mkdir -p "$dir"
paste -d' ' <(sed -n 's/^repo = "\(.*\)"/\1/p' "$manifest") <(sed -n 's/^commit = "\(.*\)"/\1/p' "$manifest") |
while read -r repo commit; do
  dest="$dir/${repo/\//+}/repo"
  if [ ! -d "$dest" ]; then
    git clone --quiet --no-checkout "https://github.com/$repo.git" "$dest"
  fi
  git -C "$dest" cat-file -e "$commit^{commit}" || git -C "$dest" fetch --quiet origin "$commit"
  echo "$repo at ${commit:0:12}"
done
