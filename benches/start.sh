#!/usr/bin/env bash
# Start to first data: the time from the exporter's process start until /-/ready answers 200
# (a credential report judged), for one account against a fresh moto in which no credential
# report has been generated yet, with the default flags (only the listen address is set, to a
# port the exporter picks and logs). Each run gets its own moto, seeded with USERS users by
# benches/support/seed_users.py before the clock starts, so every run meets the same state:
# the exporter's first GenerateCredentialReport answers STARTED and it must poll.
#
#   benches/start.sh                 # 5 runs
#   RUNS=10 USERS=200 benches/start.sh
#
# Environment: RUNS (5), USERS (50), TIMEOUT (seconds a run may take, 120). Needs the test
# tools (scripts/install-test-tools, run here: moto_server and boto3).
#
# Prints one row per run (seconds to ready, the users served, peak RSS at ready), then the
# median and the maximum.
# shellcheck disable=SC2154 # spawn and moto_start assign the variables they are named
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/lib.sh
bench_init
runs="${RUNS:-5}"
users="${USERS:-50}"
timeout="${TIMEOUT:-120}"

PATH="$(scripts/install-test-tools):$PATH"
nice -n 10 cargo build --release --quiet --bin iam-credentials-exporter

printf '%-4s %14s %6s %12s\n' run ready_seconds users vmhwm_mib
: >"$work/times"
for ((i = 1; i <= runs; i++)); do
  seeded_moto endpoint "$users"
  exporter_to_ready "$i" "$endpoint" "$timeout"
  t=$ready_seconds
  hwm=$hwm_kib
  served=$(curl -s "http://$addr/metrics" | awk '/^aws_iam_users\{/ { v = $2 } END { print v }')
  [ "$served" = "$users" ] || { echo "run $i: served aws_iam_users=$served, not $users" >&2; exit 1; }
  printf '%-4s %14s %6s %12s\n' "$i" "$t" "$served" "$(mib "$hwm")"
  echo "$t" >>"$work/times"
  stop "$pid"
  moto_stop
done
printf '%-4s %14s\n' median "$(median <"$work/times")"
printf '%-4s %14s\n' max "$(maximum <"$work/times")"
