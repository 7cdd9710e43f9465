#!/usr/bin/env bash
# Copies the repository's single sources of the alert rules and dashboards into the Helm chart:
#
#   prometheus/alerts.yml  ->  helm/iam-credentials-exporter/files/alerts.yml
#   dashboards/*.json      ->  helm/iam-credentials-exporter/files/dashboards/
#
# The copies are generated: do not edit them; edit the sources and run this script. The copies
# are byte-for-byte identical to their sources (nothing is marked inside them), and
# tests/it/helm.rs fails when they drift, naming this script.
#
# Usage: helm/sync.sh           copy
#        helm/sync.sh --check   copy nothing, exit 1 if a copy differs or is missing or stale
set -euo pipefail
cd "$(dirname "$0")/.."

files=helm/iam-credentials-exporter/files
check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

shopt -s nullglob
drift=0
missing=0

# Pairs of source and copy.
pairs=()
if [ -f prometheus/alerts.yml ]; then
  pairs+=("prometheus/alerts.yml" "$files/alerts.yml")
else
  echo "missing source: prometheus/alerts.yml" >&2
  missing=1
fi
dashboards=(dashboards/*.json)
if [ ${#dashboards[@]} -eq 0 ]; then
  echo "missing source: no dashboards/*.json" >&2
  missing=1
fi
for d in "${dashboards[@]}"; do
  pairs+=("$d" "$files/dashboards/$(basename "$d")")
done

for ((i = 0; i < ${#pairs[@]}; i += 2)); do
  src=${pairs[i]} dst=${pairs[i + 1]}
  if ! cmp -s "$src" "$dst"; then
    if $check; then
      echo "out of date: $dst (source: $src)" >&2
      drift=1
    else
      mkdir -p "$(dirname "$dst")"
      cp "$src" "$dst"
      echo "copied $src -> $dst"
    fi
  fi
done

# Copies whose source is gone.
for copy in "$files"/dashboards/*.json; do
  if [ ! -f "dashboards/$(basename "$copy")" ]; then
    if $check; then
      echo "stale: $copy (dashboards/$(basename "$copy") no longer exists)" >&2
      drift=1
    else
      rm "$copy"
      echo "removed $copy"
    fi
  fi
done

if $check && [ $drift -ne 0 ]; then
  echo "the chart's copies differ from their sources: run helm/sync.sh" >&2
  exit 1
fi
exit $missing
