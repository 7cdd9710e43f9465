#!/usr/bin/env bash
# Against Prowler, side by side in one run: the same moto account of 50 IAM users, judged by
# the exporter and by Prowler's four IAM checks that match the exporter's credential-report
# checks (console access without MFA, access key older than 90 days, unused access key, root
# without MFA), each from process start to its result, with default flags:
#
#   exporter  process start until /-/ready answers 200 (a report judged; /metrics is then
#             checked to serve all the users). Peak RSS: VmHWM from /proc at that moment,
#             summed over the process and its children if any (it keeps running).
#   Prowler   the whole `prowler aws --checks ...` run, to its exit. Wall time and peak RSS from
#             /usr/bin/time (Maximum resident set size).
#
# Both call AWS through AWS_ENDPOINT_URL (boto3 >= 1.28 honours it) pointed at moto on
# loopback, credentials x/x, region us-east-1. Every run gets a fresh moto seeded with the same
# users (benches/support/seed_users.py: some with keys, some with console passwords without
# MFA) before the clock starts, so each tool meets an account with no credential report yet
# and has to generate one. Runs alternate exporter, Prowler. (moto's credential report has no
# <root_account> row, so iam_root_mfa_enabled runs but yields no finding: 150 findings, 3 x 50.)
#
#   benches/vs-prowler.sh               # 3 runs each
#   RUNS=5 USERS=200 benches/vs-prowler.sh
#
# Environment: RUNS (3), USERS (50), CHECKS (the four Prowler check ids; those missing from
# the installed Prowler are left out, with a note). Needs the test tools
# (scripts/install-test-tools) and Prowler (benches/support/install-peers), both run here.
#
# Prints one row per run, then the medians and the ratios Prowler/exporter (time, memory).
# shellcheck disable=SC2154 # spawn and moto_start assign the variables they are named
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/lib.sh
bench_init
runs="${RUNS:-3}"
users="${USERS:-50}"
want_checks="${CHECKS:-iam_user_mfa_enabled_console_access iam_rotate_access_key_90_days iam_user_accesskey_unused iam_root_mfa_enabled}"
tools="${IAM_EXPORTER_TOOLS:-$HOME/.cache/iam-credentials-exporter/tools}"

PATH="$(scripts/install-test-tools):$PATH"
benches/support/install-peers
python="$(dirname "$(command -v moto_server)")/python"
prowler="$tools/prowler-venv/bin/prowler"
nice -n 10 cargo build --release --quiet --bin iam-credentials-exporter

# The checks this Prowler has.
"$prowler" aws --list-checks --service iam --no-banner >"$work/checks.txt" 2>&1 || true
checks=()
for c in $want_checks; do
  if grep -q "\[$c\]" "$work/checks.txt"; then checks+=("$c"); else echo "note: Prowler has no check $c" >&2; fi
done
[ ${#checks[@]} -gt 0 ] || { echo "none of the checks ($want_checks) is in this Prowler" >&2; exit 1; }
echo "Prowler $("$tools/prowler-venv/bin/pip" show prowler 2>/dev/null | awk '/^Version/ {print $2}'), checks: ${checks[*]}; $users users; $runs runs each" >&2

printf '%-4s %-9s %10s %10s %s\n' run tool seconds rss_mib result
: >"$work/results"
for ((i = 1; i <= runs; i++)); do
  # The exporter.
  seeded_moto endpoint "$users"
  exporter_to_ready "$i" "$endpoint" 300
  t=$ready_seconds
  hwm=$hwm_kib
  curl -s "http://$addr/metrics" >"$work/metrics"
  served=$(awk '/^aws_iam_users\{/ { v = $2 } END { print v }' "$work/metrics")
  [ "$served" = "$users" ] || { echo "run $i: the exporter served aws_iam_users=$served, not $users" >&2; exit 1; }
  failing=$(awk '/^aws_iam_check_failures\{/ { n += $2 } END { print n + 0 }' "$work/metrics")
  printf '%-4s %-9s %10s %10s %s\n' "$i" exporter "$t" "$(mib "$hwm")" "users=$served check_failures=$failing"
  echo "exporter $t $hwm" >>"$work/results"
  stop "$pid"
  moto_stop

  # Prowler, in a directory of its own (it writes its reports under ./output).
  seeded_moto endpoint "$users"
  mkdir -p "$work/prowler-$i"
  rc=0
  aws_env "$endpoint"
  (cd "$work/prowler-$i" && env "${AWS_ENV[@]}" /usr/bin/time -f '%e %M' -o time.txt \
    "$prowler" aws --checks "${checks[@]}" >stdout.txt 2>&1) || rc=$?
  # Prowler exits 3 when a check fails: a result all the same.
  if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
    tail -30 "$work/prowler-$i/stdout.txt" >&2
    echo "run $i: Prowler exited $rc" >&2
    exit 1
  fi
  read -r t rss < <(tail -1 "$work/prowler-$i/time.txt")
  csv=$(find "$work/prowler-$i/output" -maxdepth 1 -name '*.csv' | head -1)
  [ -n "$csv" ] || { echo "run $i: Prowler wrote no CSV" >&2; exit 1; }
  read -r rows fails < <("$python" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline=""), delimiter=";"))
print(len(rows), sum(r["STATUS"] == "FAIL" for r in rows))' "$csv")
  printf '%-4s %-9s %10s %10s %s\n' "$i" prowler "$t" "$(mib "$rss")" "findings=$rows failed=$fails exit=$rc"
  echo "prowler $t $rss" >>"$work/results"
  moto_stop
done

med() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$work/results" | median; }
e_t=$(med exporter 2); p_t=$(med prowler 2)
e_m=$(med exporter 3); p_m=$(med prowler 3)
echo
printf '%-22s %10s %10s %16s\n' "median of $runs runs" exporter prowler prowler/exporter
printf '%-22s %10s %10s %15sx\n' "seconds to result" "$e_t" "$p_t" "$(ratio "$p_t" "$e_t")"
printf '%-22s %10s %10s %15sx\n' "peak RSS (MiB)" "$(mib "$e_m")" "$(mib "$p_m")" "$(ratio "$p_m" "$e_m")"
