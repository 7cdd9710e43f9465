#!/usr/bin/env bash
# Times refreshing 200 accounts through assumed roles against moto (an organization seeded by
# tests/moto/organization.py), at concurrency 1, 8 and 32, with peak RSS.
#
# Usage: benches/many-accounts.sh [ACCOUNTS] [CONCURRENCY...]
# Needs the test tools (scripts/install-test-tools). Round 1 includes the first
# GenerateCredentialReport of each account (moto answers STARTED once: the exporter waits its
# 1 s poll backoff) and the AssumeRole calls; round 2 is the steady state (reports ready,
# credentials cached).
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-200}"
shift || true
levels=("${@:-1 8 32}")
# shellcheck disable=SC2206
levels=(${levels[*]})

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iam-credentials-exporter/target}"
export PATH="$(scripts/install-test-tools):$PATH"
python="$(dirname "$(command -v moto_server)")/python"

cargo build --release --example refresh_many_accounts
bin="$CARGO_TARGET_DIR/release/examples/refresh_many_accounts"

work=$(mktemp -d)
moto_pid=""
trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT

# Each level gets a fresh moto and organization, so every round 1 sees the same first reports.
for c in "${levels[@]}"; do
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  moto_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  echo "seeding an organization of $accounts member accounts in moto..." >&2
  "$python" tests/moto/organization.py "http://127.0.0.1:$port" seed "$accounts" \
    | awk '$2 != "management" {print $1}' >"$work/ids"
  AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing \
    AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    /usr/bin/time -f "concurrency=$c max_rss_kib=%M elapsed_seconds=%e" "$bin" "$work/ids" "$c" 2
  kill "$moto_pid"
  wait "$moto_pid" 2>/dev/null || true
  moto_pid=""
done
