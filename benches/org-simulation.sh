#!/usr/bin/env bash
# Organization scale by simulation: the exporter reads an organization of 1,000 accounts of
# 50 users each, served by the fake endpoint of examples/fake_iam.rs (`--accounts`):
# Organizations ListAccounts (20 a page) discovers them, STS AssumeRole gives each its own
# credentials, and each account's IAM calls answer with that account's static synthetic report.
# Default flags but --refresh.concurrency, at 8 and at 32; a fresh fake per level.
#
# What it measures, from the exporter's process start:
#   judged    every account's first refresh has ended well (the landing page: "N accounts: N ok")
#   served    every account has data on /metrics (N `aws_iam_users` samples): the first full
#             round's time
#   publish   served minus judged: how long the last account's data waited to be published (an
#             upper bound of the last publish's time, polling granularity and the exporter's
#             coalescing pause included). The exporter exposes no publish duration of its
#             own; when a metric named *publish* appears on /metrics it is printed too.
# then one gzip and one plain scrape of the whole snapshot (time and bytes), and after SETTLE
# seconds the steady-state RSS (VmRSS) and the peak (VmHWM), from /proc.
#
#   benches/org-simulation.sh                       # 1,000 accounts x 50 users, concurrency 8 and 32
#   ACCOUNTS=200 CONCURRENCY="8" benches/org-simulation.sh
#   MODE=config benches/org-simulation.sh           # accounts listed in a config file instead
#
# Environment: ACCOUNTS (1000), USERS (50), CONCURRENCY ("8 32"), MODE (organization: discovery
# through ListAccounts; config: a config file listing every account's role ARN), PER_USER
# (true), SETTLE (10 s), TIMEOUT (seconds the first round may take, 600).
#
# Prints one row per concurrency level.
# shellcheck disable=SC2154 # spawn and moto_start assign the variables they are named
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/lib.sh
bench_init
accounts="${ACCOUNTS:-1000}"
users="${USERS:-50}"
levels="${CONCURRENCY:-8 32}"
mode="${MODE:-organization}"
per_user="${PER_USER:-true}"
settle="${SETTLE:-10}"
timeout="${TIMEOUT:-600}"

nice -n 10 cargo build --release --quiet --bin iam-credentials-exporter --example fake_iam
fake_bin="$CARGO_TARGET_DIR/release/examples/fake_iam"

# The configuration: discovery, or every member's role listed (ids as fake_iam numbers them).
case "$mode" in
  organization)
    printf 'organization:\n  role_name: iam-credentials-exporter\n' >"$work/config.yml" ;;
  config)
    {
      echo "accounts:"
      for ((i = 0; i < accounts; i++)); do
        printf '  - role_arn: arn:aws:iam::%012d:role/iam-credentials-exporter\n' $((100000000000 + i))
      done
    } >"$work/config.yml" ;;
  *) echo "MODE is organization or config" >&2; exit 1 ;;
esac

# landing_ok ADDR: the accounts whose first refresh has ended well, from the landing page.
landing_ok() {
  curl -s --max-time 10 "http://$1/" | grep -o '[0-9]* accounts: [0-9]* ok' | head -1 | awk '{ print $3 }'
}
# served ADDR: accounts with data on /metrics (gzip on the wire, as Prometheus asks; gzip -d
# rather than curl --compressed, which stops after the first member of a multi-member body).
served() {
  curl -s --max-time 60 -H 'Accept-Encoding: gzip' "http://$1/metrics" | gzip -dc |
    awk '/^aws_iam_users\{/ { n++ } END { print n + 0 }'
}

printf '%-11s %8s %9s %9s %10s %8s %9s %11s %10s %9s %9s %9s %9s\n' concurrency accounts \
  judged_s served_s publish_s assumes series plain_bytes gzip_bytes gzip_s plain_s rss_mib hwm_mib
for c in $levels; do
  spawn fake "$fake_bin" --accounts "$accounts" --users "$users" >"$work/fake.log" 2>&1
  fake_addr=""
  for _ in $(seq 600); do
    fake_addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$work/fake.log" | head -1 || true)
    [ -n "$fake_addr" ] && break
    kill -0 "$fake" 2>/dev/null || { cat "$work/fake.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$fake_addr" ] || { echo "fake_iam did not start" >&2; cat "$work/fake.log" >&2; exit 1; }

  log="$work/exporter-$c.log"
  t0=$(now)
  aws_env "http://$fake_addr"
  spawn pid env "${AWS_ENV[@]}" "$B" --web.listen-address 127.0.0.1:0 \
    --config.file "$work/config.yml" --refresh.concurrency "$c" --metrics.per-user "$per_user" 2>"$log"
  addr=$(exporter_addr "$log")

  # Every account judged: the landing page, every 100 ms.
  judged=""
  while :; do
    ok=$(landing_ok "$addr" || true)
    if [ "${ok:-0}" -ge "$accounts" ]; then judged=$(elapsed "$t0"); break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    [ "$(elapsed "$t0" | cut -d. -f1)" -lt "$timeout" ] ||
      { echo "concurrency $c: $ok of $accounts accounts judged after ${timeout}s" >&2; tail "$log" >&2; exit 1; }
    sleep 0.1
  done
  # Every account served: /metrics, every 200 ms from then on.
  served_at=""
  while :; do
    n=$(served "$addr")
    if [ "$n" -ge "$accounts" ]; then served_at=$(elapsed "$t0"); break; fi
    [ "$(elapsed "$t0" | cut -d. -f1)" -lt "$timeout" ] ||
      { echo "concurrency $c: $n of $accounts accounts served after ${timeout}s" >&2; exit 1; }
    sleep 0.2
  done
  publish=$(awk -v a="$judged" -v b="$served_at" 'BEGIN { printf "%.3f", b - a }')

  # The whole snapshot, scraped once each way.
  gzip_s=$(curl -s -H 'Accept-Encoding: gzip' -o "$work/metrics.gz" -w '%{time_total}' "http://$addr/metrics")
  plain_s=$(curl -s -o "$work/metrics" -w '%{time_total}' "http://$addr/metrics")
  gzip_bytes=$(wc -c <"$work/metrics.gz")
  plain_bytes=$(wc -c <"$work/metrics")
  series=$(grep -vc '^#' "$work/metrics" || true)
  grep -E '^[a-z_]*publish[a-z_]*(\{[^}]*\})? ' "$work/metrics" | sed "s/^/  concurrency $c: /" >&2 || true
  sleep "$settle"
  rss=$(status_kib "$pid" VmRSS)
  hwm=$(status_kib "$pid" VmHWM)
  assumes=$(curl -s "http://$fake_addr/fake/stats" | awk '$1 == "AssumeRole" { n += $3 } END { print n + 0 }')
  curl -s "http://$fake_addr/fake/stats" >"$work/fake-stats-$c.txt"
  printf '%-11s %8s %9s %9s %10s %8s %9s %11s %10s %9s %9s %9s %9s\n' "$c" "$accounts" "$judged" \
    "$served_at" "$publish" "$assumes" "$series" "$plain_bytes" "$gzip_bytes" "$gzip_s" "$plain_s" \
    "$(mib "$rss")" "$(mib "$hwm")"
  stop "$pid"
  stop "$fake"
done
echo "($accounts accounts x $users users, mode=$mode, per_user=$per_user; judged: every first refresh ended well (landing page); served: all on /metrics; publish = served - judged, polled every 200 ms; rss after ${settle}s idle)" >&2
