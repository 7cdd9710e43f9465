#!/usr/bin/env bash
# Load-tests /metrics with wrk against a 5,000-user snapshot (or USERS=N) and reports scrape
# throughput, latency percentiles, response sizes and the exporter's peak RSS.
#
#   benches/scrape-load.sh            # 30 s, 4 connections, plain text
#   DURATION=60s CONNECTIONS=16 GZIP=1 benches/scrape-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iam-credentials-exporter/target}"
users="${USERS:-5000}"
duration="${DURATION:-30s}"
connections="${CONNECTIONS:-4}"
threads="${THREADS:-1}"
command -v wrk >/dev/null || { echo "wrk is not installed (Debian package wrk)" >&2; exit 1; }

cargo build --release --quiet --bin iam-credentials-exporter --example generate_report
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$CARGO_TARGET_DIR/release/examples/generate_report" "$users" > "$work/report.csv"

"$CARGO_TARGET_DIR/release/iam-credentials-exporter" --report.file "$work/report.csv" \
  --web.listen-address 127.0.0.1:0 --refresh.interval 1h --web.max-connections 1024 2> "$work/log" &
pid=$!
for _ in $(seq 200); do
  addr=$(grep -o 'address=127.0.0.1:[0-9]*' "$work/log" | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && curl -sf "http://$addr/-/ready" >/dev/null && break
  sleep 0.05
done
[ -n "$addr" ] || { cat "$work/log"; exit 1; }

rss_loaded=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
plain=$(curl -s "http://$addr/metrics" | wc -c)
gz=$(curl -s -H 'Accept-Encoding: gzip' "http://$addr/metrics" | wc -c)
series=$(curl -s "http://$addr/metrics" | grep -vc '^#')
header=()
[ -n "${GZIP:-}" ] && header=(-H 'Accept-Encoding: gzip')
echo "users=$users series=$series body_bytes=$plain gzip_bytes=$gz rss_loaded_kib=$rss_loaded"
wrk -t"$threads" -c"$connections" -d"$duration" --latency "${header[@]}" "http://$addr/metrics"
echo "peak_rss_kib=$(awk '/VmHWM/{print $2}' "/proc/$pid/status") rss_after_kib=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")"
