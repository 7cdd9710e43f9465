#!/usr/bin/env bash
# Memory and start-up in file mode: for a synthetic credential report of 5,000 and of 100,000
# users (examples/generate_report), per-user series on and off (--metrics.per-user), the
# exporter's peak RSS (VmHWM from /proc/PID/status) once it is ready, then after one gzip
# scrape and after one plain scrape of /metrics (the peak so far, each time), its RSS at the
# end, the time from process start to /-/ready, and the exposition's sizes (plain and gzip
# bytes, as served).
#
#   benches/memory.sh
#   USERS="5000" PER_USER="true false failing" RUNS=3 benches/memory.sh
#
# Environment: USERS ("5000 100000"), PER_USER (the values passed to --metrics.per-user:
# "true false", and "failing" too when the exporter has it), RUNS (1: with more, each figure
# is the median of the runs).
#
# Prints one row per report size and per-user setting.
# shellcheck disable=SC2154 # spawn and moto_start assign the variables they are named
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/lib.sh
bench_init
sizes="${USERS:-5000 100000}"
runs="${RUNS:-1}"

nice -n 10 cargo build --release --quiet --bin iam-credentials-exporter --example generate_report
if [ -n "${PER_USER:-}" ]; then
  per_user_values=$PER_USER
elif "$B" --help | grep -q -- '--metrics.per-user <[a-z|]*failing'; then
  per_user_values="true failing false"
else
  per_user_values="true false"
fi
for n in $sizes; do
  "$CARGO_TARGET_DIR/release/examples/generate_report" "$n" >"$work/report-$n.csv"
done

# One run: "ready_s hwm_ready hwm_gzip hwm_plain rss_end plain_bytes gzip_bytes series".
measure() {
  local n=$1 per_user=$2 log="$work/exporter.log" t0 pid addr t h0 h1 h2 gz plain series
  t0=$(now)
  spawn pid "$B" --report.file "$work/report-$n.csv" --web.listen-address 127.0.0.1:0 \
    --refresh.interval 1h --metrics.per-user "$per_user" 2>"$log"
  addr=$(exporter_addr "$log")
  wait_ready "$addr" "$pid" 300 || { cat "$log" >&2; return 1; }
  t=$(elapsed "$t0")
  h0=$(status_kib "$pid" VmHWM)
  gz=$(curl -s -H 'Accept-Encoding: gzip' "http://$addr/metrics" | wc -c)
  h1=$(status_kib "$pid" VmHWM)
  curl -s "http://$addr/metrics" >"$work/plain"
  h2=$(status_kib "$pid" VmHWM)
  rss=$(status_kib "$pid" VmRSS)
  plain=$(wc -c <"$work/plain")
  series=$(grep -vc '^#' "$work/plain" || true)
  grep -q '^aws_iam_users{.*} '"$n"'$' "$work/plain" ||
    { echo "users=$n per_user=$per_user: aws_iam_users is not $n" >&2; return 1; }
  stop "$pid"
  echo "$t $h0 $h1 $h2 $rss $plain $gz $series"
}

printf '%-7s %-8s %8s %10s %14s %15s %9s %12s %10s %9s\n' users per_user ready_s \
  hwm_ready hwm_after_gzip hwm_after_plain rss_end plain_bytes gzip_bytes series
echo "(memory in MiB; hwm = VmHWM, the peak so far)" >&2
for n in $sizes; do
  for per_user in $per_user_values; do
    : >"$work/runs"
    for ((r = 1; r <= runs; r++)); do
      measure "$n" "$per_user" >>"$work/runs"
    done
    m() { awk -v c="$1" '{ print $c }' "$work/runs" | median; }
    printf '%-7s %-8s %8s %10s %14s %15s %9s %12s %10s %9s\n' "$n" "$per_user" "$(m 1)" \
      "$(mib "$(m 2)")" "$(mib "$(m 3)")" "$(mib "$(m 4)")" "$(mib "$(m 5)")" \
      "$(m 6 | cut -d. -f1)" "$(m 7 | cut -d. -f1)" "$(m 8 | cut -d. -f1)"
  done
done
