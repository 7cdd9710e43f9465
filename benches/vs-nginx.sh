#!/usr/bin/env bash
# Scrape throughput against a static-file server, side by side in one run: the exporter
# serving a 5,000-user snapshot (file mode) versus nginx serving the very same bytes, fetched
# from the exporter's /metrics: the gzip body (sent with `Content-Encoding: gzip`, through
# nginx's gzip_static) to requests that accept gzip, as Prometheus's are, and the plain body
# to the others. wrk, 2 threads and 16 connections, loads each in turn on this machine.
#
#   benches/vs-nginx.sh                         # 20 s per run, 5,000 users, gzip then plain
#   DURATION=5s benches/vs-nginx.sh             # a short run
#   USERS=1000 ENCODINGS=gzip ROUNDS=3 benches/vs-nginx.sh
#
# Environment: DURATION (wrk -d, 20s), USERS (5000), THREADS (2), CONNECTIONS (16), ENCODINGS
# ("gzip plain"), ROUNDS (1: each round runs exporter then nginx per encoding, interleaved;
# more give the median), NGINX_WORKERS (1: one process, `master_process off`; N > 1: a master
# and N workers). Needs wrk (scripts/install-test-tools) and nginx
# (benches/support/install-peers, run here).
#
# Prints the sizes, then one row per server and encoding: requests/s, p50 and p99 latency,
# errors (non-2xx and socket), and the ratio exporter/nginx of requests/s.
# shellcheck disable=SC2154 # spawn and moto_start assign the variables they are named
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/lib.sh
bench_init
users="${USERS:-5000}"
duration="${DURATION:-20s}"
threads="${THREADS:-2}"
connections="${CONNECTIONS:-16}"
encodings="${ENCODINGS:-gzip plain}"
rounds="${ROUNDS:-1}"
nginx_workers="${NGINX_WORKERS:-1}"

command -v wrk >/dev/null || { echo "wrk is not installed (scripts/install-test-tools)" >&2; exit 1; }
benches/support/install-peers
nginx=$(command -v nginx || echo /usr/sbin/nginx)

nice -n 10 cargo build --release --quiet --bin iam-credentials-exporter --example generate_report
"$CARGO_TARGET_DIR/release/examples/generate_report" "$users" >"$work/report.csv"

# The exporter.
spawn exporter "$B" --report.file "$work/report.csv" --web.listen-address 127.0.0.1:0 \
  --refresh.interval 1h --web.max-connections 1024 2>"$work/exporter.log"
addr=$(exporter_addr "$work/exporter.log")
wait_ready "$addr" "$exporter"

# Its bytes, as nginx will serve them: metrics (plain) and metrics.gz (gzip_static).
mkdir -p "$work/nginx/html" "$work/nginx/tmp"
curl -sf "http://$addr/metrics" -o "$work/nginx/html/metrics"
curl -sf -H 'Accept-Encoding: gzip' "http://$addr/metrics" -o "$work/nginx/html/metrics.gz"
plain_bytes=$(wc -c <"$work/nginx/html/metrics")
gzip_bytes=$(wc -c <"$work/nginx/html/metrics.gz")
# (The process_* series are read at each scrape, so two scrapes differ in those alone.)
cmp -s <(gzip -dc "$work/nginx/html/metrics.gz" | grep -v '^process_') \
  <(grep -v '^process_' "$work/nginx/html/metrics") ||
  { echo "the exporter's gzip body does not decompress to its plain body" >&2; exit 1; }
series=$(grep -vc '^#' "$work/nginx/html/metrics")

# nginx: in the foreground, its own prefix, loopback, a free port checked.
port=$(free_port)
if [ "$nginx_workers" -le 1 ]; then
  processes="master_process off;"
else
  processes="worker_processes $nginx_workers;"
fi
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
$processes
pid $work/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$port;
    root $work/nginx/html;
    location = /metrics {
      default_type "text/plain; version=0.0.4; charset=utf-8";
      gzip_static on;
      gzip_vary on;
      etag off;
    }
  }
}
EOF
spawn nginx_pid "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e stderr 2>"$work/nginx.log"
wait_port "$port" || { cat "$work/nginx.log" >&2; exit 1; }
nginx_addr="127.0.0.1:$port"
# nginx serves those bytes, gzip-encoded to requests that accept it.
if ! cmp -s <(curl -s -H 'Accept-Encoding: gzip' "http://$nginx_addr/metrics") "$work/nginx/html/metrics.gz" ||
  ! cmp -s <(curl -s "http://$nginx_addr/metrics") "$work/nginx/html/metrics" ||
  ! curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "http://$nginx_addr/metrics" |
  grep -ci '^content-encoding: gzip' >/dev/null; then
  echo "nginx does not serve the snapshot's bytes" >&2
  exit 1
fi

echo "users=$users series=$series plain_bytes=$plain_bytes gzip_bytes=$gzip_bytes wrk=-t$threads/-c$connections/-d$duration nginx_workers=$nginx_workers rounds=$rounds" >&2
echo "exporter at $addr (pid $exporter), nginx $("$nginx" -v 2>&1 | cut -d/ -f2) at $nginx_addr (pid $nginx_pid)" >&2

# run SERVER ENC ROUND: one wrk run; appends "server enc rps p50_ms p99_ms errors" to results.
to_ms() { # wrk's "812.00us", "1.20ms", "2.01s" -> milliseconds
  awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /ms$/) v += 0;
    else if (t ~ /m$/) v *= 60000; else if (t ~ /s$/) v *= 1000; printf "%.3f", v }'
}
run() {
  local server=$1 enc=$2 a header=()
  [ "$server" = exporter ] && a=$addr || a=$nginx_addr
  [ "$enc" = gzip ] && header=(-H 'Accept-Encoding: gzip')
  wrk -t"$threads" -c"$connections" -d"$duration" --timeout 10s --latency "${header[@]}" \
    "http://$a/metrics" >"$work/wrk.txt"
  local rps p50 p99 non2xx socket
  rps=$(awk '/^Requests\/sec/ { print $2 }' "$work/wrk.txt")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$work/wrk.txt")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt")")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$work/wrk.txt")
  socket=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$work/wrk.txt")
  echo "$server $enc $rps $p50 $p99 $((${non2xx:-0} + ${socket:-0}))" >>"$work/results"
  echo "  round $3 $enc $server: $rps req/s, p50 ${p50} ms, p99 ${p99} ms" >&2
}
: >"$work/results"
for ((r = 1; r <= rounds; r++)); do
  for enc in $encodings; do
    run exporter "$enc" "$r"
    run nginx "$enc" "$r"
  done
done
exporter_hwm=$(status_kib "$exporter" VmHWM)
nginx_hwm=$(status_kib "$nginx_pid" VmHWM)

# The table: medians over rounds.
col() { awk -v s="$1" -v e="$2" -v c="$3" '$1 == s && $2 == e { print $c }' "$work/results" | median; }
echo
printf '%-6s %-9s %11s %12s %9s %9s %7s %10s\n' enc server body_bytes req_per_s p50_ms p99_ms errors vs_nginx
for enc in $encodings; do
  [ "$enc" = gzip ] && bytes=$gzip_bytes || bytes=$plain_bytes
  nginx_rps=$(col nginx "$enc" 3)
  for server in exporter nginx; do
    rps=$(col "$server" "$enc" 3)
    errors=$(awk -v s="$server" -v e="$enc" '$1 == s && $2 == e { n += $6 } END { print n + 0 }' "$work/results")
    printf '%-6s %-9s %11s %12s %9s %9s %7s %10s\n' "$enc" "$server" "$bytes" "$rps" \
      "$(col "$server" "$enc" 4)" "$(col "$server" "$enc" 5)" "$errors" "$(ratio "$rps" "$nginx_rps")x"
  done
done
echo "peak RSS (VmHWM): exporter $(mib "$exporter_hwm") MiB, nginx $(mib "$nginx_hwm") MiB"
