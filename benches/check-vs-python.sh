#!/usr/bin/env bash
# Times `iam-credentials-exporter check --output json` on a 100,000-user report (or USERS=N)
# against Python's csv module merely reading the same file, side by side in one run: RUNS=5
# runs of each, interleaved, after one untimed run of each. Prints every run and a table of
# the medians: wall time and peak RSS (Maximum resident set size from /usr/bin/time -v; wall
# time measured around it to the millisecond), and how many times faster the exporter is.
# Goals (issue 15): at least 3x faster than the Python read, peak RSS at most 64 MB.
#
#   benches/check-vs-python.sh
#   RUNS=9 USERS=200000 benches/check-vs-python.sh
#   BIN=/tmp/iam-credentials-exporter.old benches/check-vs-python.sh   # another build
set -euo pipefail
export LC_ALL=C # a decimal point in EPOCHREALTIME
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iam-credentials-exporter/target}"
users="${USERS:-100000}"
runs="${RUNS:-5}"
python=/usr/bin/python3
[ -x /usr/bin/time ] || { echo "/usr/bin/time is not installed (Debian package time)" >&2; exit 1; }
[ -x "$python" ] || { echo "$python is not installed" >&2; exit 1; }

cargo build --release --quiet --bin iam-credentials-exporter --example generate_report
bin="${BIN:-$CARGO_TARGET_DIR/release/iam-credentials-exporter}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
report="$work/report.csv"
"$CARGO_TARGET_DIR/release/examples/generate_report" "$users" > "$report"

# measure NAME COMMAND...: one run; appends "NAME WALL_SECONDS MAX_RSS_KIB" to $work/runs.
measure() {
  local name=$1 start end code=0
  shift
  start=$EPOCHREALTIME
  /usr/bin/time -v -o "$work/time" "$@" > /dev/null 2> "$work/stderr" || code=$?
  end=$EPOCHREALTIME
  # check exits 1 when a check fails (the generated report has findings); 2 is an error.
  if [ "$code" -gt 1 ]; then
    cat "$work/stderr" "$work/time" >&2
    exit 1
  fi
  awk -v name="$name" -v start="$start" -v end="$end" \
    '/Maximum resident set size/ { printf "%s %.3f %d\n", name, end - start, $NF }' \
    "$work/time" | tee -a "$work/runs"
}

check=("$bin" check "$report" --output json)
read_csv=("$python" -c 'import csv,sys; [r for r in csv.reader(open(sys.argv[1], newline=""))]' "$report")
echo "report: $users users, $(stat -c %s "$report") bytes; $runs runs of each, interleaved" >&2
# Warm up (page cache, binaries), untimed.
"${check[@]}" > /dev/null || [ $? -eq 1 ]
"${read_csv[@]}"
: > "$work/runs"
echo "run: name wall_seconds max_rss_kib"
for _ in $(seq "$runs"); do
  measure exporter "${check[@]}"
  measure python "${read_csv[@]}"
done

median() { # NAME COLUMN
  awk -v name="$1" -v col="$2" '$1 == name { print $col }' "$work/runs" | sort -g \
    | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
echo
awk -v runs="$runs" -v ew="$(median exporter 2)" -v er="$(median exporter 3)" \
  -v pw="$(median python 2)" -v pr="$(median python 3)" 'BEGIN {
  printf "%-46s %12s %12s\n", "median of " runs " runs", "wall_seconds", "max_rss_mib"
  printf "%-46s %12.3f %12.1f\n", "iam-credentials-exporter check --output json", ew, er / 1024
  printf "%-46s %12.3f %12.1f\n", "python3 csv.reader, reading only", pw, pr / 1024
  printf "the exporter is %.2fx as fast as the Python read (goal: at least 3x);\n", pw / ew
  printf "its peak RSS is %.1f MiB (goal: at most 64 MB)\n", er / 1024
}'
