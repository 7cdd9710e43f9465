# shellcheck shell=bash
# Shared helpers of the benches/*.sh comparison benchmarks. Source it from a script that has
# `set -euo pipefail` and has cd'ed to the repository root:
#
#   . benches/support/lib.sh
#   bench_init                 # CARGO_TARGET_DIR, $work (a temp dir), an EXIT trap
#   spawn pid_var CMD...       # runs CMD in the background; the trap ends it
#
# Every server listens on 127.0.0.1 only: on a port it picked itself and reported (the
# exporter's `address=` log, fake_iam's `listening on`) or on a free port checked here.

bench_init() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iam-credentials-exporter/target}"
  # shellcheck disable=SC2034 # for the scripts
  B="$CARGO_TARGET_DIR/release/iam-credentials-exporter"
  work=$(mktemp -d)
  _bench_pids=()
  trap _bench_cleanup EXIT
  trap 'exit 130' INT TERM
  trap 'echo "${BASH_SOURCE[0]}: line $LINENO: a command failed (exit $?)" >&2' ERR
}

_bench_cleanup() {
  local p
  for p in "${_bench_pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${_bench_pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}

# spawn VAR CMD... : runs CMD in the background, stores its pid in VAR and ends it on exit.
spawn() {
  local var=$1
  shift
  "$@" &
  _bench_pids+=($!)
  printf -v "$var" '%s' "$!"
}

# stop PID: ends a process spawn started, and waits for it.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# The wall clock in seconds with microseconds, without a fork.
now() { echo "$EPOCHREALTIME"; }

# elapsed T0 [T1]: seconds from T0 to T1 (default now), 3 decimals.
elapsed() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.3f", b - a }'; }

# A TCP port free on 127.0.0.1 right now (bound, read, released).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [TRIES]: until something accepts on 127.0.0.1:PORT (every 20 ms).
wait_port() {
  local i
  for ((i = 0; i < ${2:-500}; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.02
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# exporter_addr LOG [TRIES]: the HOST:PORT the exporter logged (`address=`), every 10 ms.
exporter_addr() {
  local i addr
  for ((i = 0; i < ${2:-3000}; i++)); do
    addr=$(grep -so 'address=127\.0\.0\.1:[0-9]*' "$1" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    sleep 0.01
  done
  echo "no address= in $1:" >&2
  cat "$1" >&2
  return 1
}

# wait_ready ADDR PID [SECONDS]: until ADDR's /-/ready answers 200 (polled every 10 ms), or
# fails when PID exits or SECONDS (default 120) pass.
wait_ready() {
  local deadline=$((SECONDS + ${3:-120}))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/-/ready")" = 200 ]; do
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited before it was ready" >&2; return 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "not ready after ${3:-120}s" >&2; return 1; }
    sleep 0.01
  done
}

# descendants PID: PID and every process under it.
descendants() {
  local p c
  echo "$1"
  # shellcheck disable=SC2013 # children: pids separated by spaces
  for p in $(cat "/proc/$1/task/"*/children 2>/dev/null); do
    for c in $(descendants "$p"); do echo "$c"; done
  done
}

# status_kib PID FIELD: a /proc/PID/status field in KiB (VmHWM, VmRSS), summed over PID and
# its descendants.
status_kib() {
  local total=0 p v
  for p in $(descendants "$1"); do
    v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# median: the median of the numbers on standard input (the mean of the middle two when even).
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (!NR) exit; if (NR % 2) print v[(NR + 1) / 2];
    else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# maximum: the largest number on standard input.
maximum() { sort -g | tail -1; }

# mib KIB: KiB as MiB, one decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ratio A B: A / B, two significant decimals ("n/a" when B is 0 or empty).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

# moto_start VAR: a fresh moto_server (IAM, STS, Organizations) on a free loopback port; VAR
# gets its endpoint URL. Needs the test tools' PATH (scripts/install-test-tools).
moto_start() {
  local var=$1 port pid
  port=$(free_port)
  spawn pid moto_server -H 127.0.0.1 -p "$port" >"$work/moto-$port.log" 2>&1
  _moto_pid=$pid
  wait_port "$port" 1000
  printf -v "$var" 'http://127.0.0.1:%s' "$port"
}

# moto_stop: ends the moto started last.
moto_stop() { stop "$_moto_pid"; }

# seeded_moto VAR USERS: a fresh moto (moto_start) seeded with USERS users by
# benches/support/seed_users.py, in the test tools' Python; VAR gets its endpoint URL.
seeded_moto() {
  moto_start "$1"
  "$(dirname "$(command -v moto_server)")/python" benches/support/seed_users.py "${!1}" "$2" >/dev/null
}

# exporter_to_ready RUN ENDPOINT TIMEOUT: starts the exporter with default flags against the
# AWS endpoint ENDPOINT (its log in $work/exporter-RUN.log) and waits until /-/ready answers
# 200; sets pid and addr, ready_seconds (from process start) and hwm_kib (VmHWM then).
exporter_to_ready() {
  local log="$work/exporter-$1.log" t0
  t0=$(now)
  aws_env "$2"
  spawn pid env "${AWS_ENV[@]}" "$B" --web.listen-address 127.0.0.1:0 2>"$log"
  addr=$(exporter_addr "$log")
  wait_ready "$addr" "$pid" "$3" || { cat "$log" >&2; exit 1; }
  ready_seconds=$(elapsed "$t0")
  hwm_kib=$(status_kib "$pid" VmHWM)
}

# aws_env ENDPOINT: sets AWS_ENV, the `env` arguments that point the AWS SDK's default chain
# (the exporter's and boto3's) at ENDPOINT, credentials x/x, region us-east-1, and keep it off
# this machine's profile and instance metadata: `env "${AWS_ENV[@]}" CMD...`.
aws_env() {
  # shellcheck disable=SC2034 # for the scripts
  AWS_ENV=(AWS_ENDPOINT_URL="$1" AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1
    AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent)
}
