#!/usr/bin/env bash
# Scrape cost at scale: serves 1, 10 and 100 judged accounts of 5,000 users each
# (examples/scale_server.rs, the exporter's own server and store), per-user series on and off,
# and load-tests /metrics with wrk, as Prometheus scrapes (gzip) and plain.
#
#   benches/scale-load.sh
#   ACCOUNTS="1 10" DURATION=10s CONNECTIONS=2 benches/scale-load.sh
#
# One line per run: accounts, per_user, encoding, body bytes, requests/s, p50 and p99
# latency, failed requests, server RSS after the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iam-credentials-exporter/target}"
accounts_list="${ACCOUNTS:-1 10 100}"
duration="${DURATION:-20s}"
connections="${CONNECTIONS:-4}"
command -v wrk >/dev/null || { echo "wrk is not installed (scripts/install-test-tools)" >&2; exit 1; }

cargo build --release --quiet --example scale_server
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

printf '%-8s %-8s %-5s %12s %10s %10s %10s %7s %9s\n' accounts per_user enc body_bytes req_per_s p50 p99 failed rss_mib
for n in $accounts_list; do
  for per_user in true false; do
    "$CARGO_TARGET_DIR/release/examples/scale_server" "$n" "$per_user" 1200 >"$work/out" 2>&1 &
    pid=$!
    addr=""
    for _ in $(seq 1200); do
      addr=$(grep -o '127.0.0.1:[0-9]*' "$work/out" | head -1 || true)
      [ -n "$addr" ] && break
      sleep 0.1
    done
    [ -n "$addr" ] || { cat "$work/out"; exit 1; }
    for enc in gzip plain; do
      header=()
      [ "$enc" = gzip ] && header=(-H 'Accept-Encoding: gzip')
      bytes=$(curl -s "${header[@]}" "http://$addr/metrics" | wc -c)
      wrk -t1 -c"$connections" -d"$duration" --timeout 60s --latency "${header[@]}" \
        "http://$addr/metrics" >"$work/wrk"
      rps=$(awk '/Requests\/sec/{print $2}' "$work/wrk")
      p50=$(awk '$1 == "50%" {print $2}' "$work/wrk")
      p99=$(awk '$1 == "99%" {print $2}' "$work/wrk")
      non2xx=$(awk '/Non-2xx/{print $NF}' "$work/wrk")
      socket=$(awk '/Socket errors/{gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk")
      rss=$(awk '/VmRSS/{printf "%d", $2 / 1024}' "/proc/$pid/status")
      printf '%-8s %-8s %-5s %12s %10s %10s %10s %7s %9s\n' "$n" "$per_user" "$enc" "$bytes" \
        "$rps" "$p50" "$p99" "$(( ${non2xx:-0} + ${socket:-0} ))" "$rss"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  done
done
