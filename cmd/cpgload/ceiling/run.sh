#!/usr/bin/env bash
# How many lookups a second an HTTP server can answer on this machine:
# cpgd (1,000 groups of 10 members, as cpgload's lookup workload) beside
# servers that answer the same 818-byte body with no work behind it, on
# net/http, fasthttp, gnet (one epoll loop) and nginx (one worker), all
# driven by the same generator, wrk, with 16 keep-alive connections; then
# cpgd's durable joins (64 connections, each join a new member, written
# and synced before the answer), on a fresh agent each round.
# Installs wrk and nginx from Debian's packages when they are missing.
#
#   cmd/cpgload/ceiling/run.sh [rounds] [seconds]
set -euo pipefail
rounds=${1:-3}
seconds=${2:-4}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in wrk nginx; do
  if ! command -v $tool >/dev/null; then
    pkg=$tool; [ $tool = nginx ] && pkg=nginx-light
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y --no-install-recommends $pkg >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends $pkg >/dev/null; }; } ||
      { echo "$tool is needed: this script installs Debian's $pkg when it runs as root" >&2; exit 1; }
  fi
done

(cd "$root" && go build -o "$work/cpgd" ./cmd/cpgd)
(cd "$here" && go build -o "$work/ceiling" .)

start() { # name, command...: starts a server in the background
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}
await() { # address: waits until it accepts connections
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; exit 1
}

start cpgd "$work/cpgd" --http 127.0.0.1:7491 --data-dir "$work/data" --log-level warn
await 127.0.0.1:7491
"$work/ceiling" preload 127.0.0.1:7491
curl -sf 'http://127.0.0.1:7491/v1/scopes/default/members?name=/svc/5/x' >"$work/body.json"
start nethttp "$work/ceiling" nethttp 127.0.0.1:7492 "$work/body.json"
start fasthttp "$work/ceiling" fasthttp 127.0.0.1:7493 "$work/body.json"
start gnet "$work/ceiling" gnet 127.0.0.1:7494 "$work/body.json"
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:7495;
    location / { default_type application/json; return 200 '$(cat "$work/body.json")'; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work/nginx"
for a in 7492 7493 7494 7495; do await 127.0.0.1:$a; done
pid_nginx=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1) # the worker

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
printf '%-9s %5s %12s %10s %12s\n' server round requests/s p99 "CPU/request"
for round in $(seq "$rounds"); do
  for s in cpgd:7491 nethttp:7492 fasthttp:7493 gnet:7494 nginx:7495; do
    name=${s%:*}; port=${s#*:}; pidvar=pid_$name; pid=${!pidvar}
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c16 -d"${seconds}s" --latency -s "$here/lookup.lua" "http://127.0.0.1:$port")
    after=$(cpu_ticks "$pid")
    rate=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    us=$(awk -v t=$((after - before)) -v hz="$tick" -v r="$rate" -v s="$seconds" 'BEGIN {printf "%.1f us", t / hz * 1e6 / (r * s)}')
    printf '%-9s %5d %12.0f %10s %12s\n' "$name" "$round" "$rate" "$p99" "$us"
  done
done

echo
printf '%-9s %5s %12s %10s %12s
' joins round requests/s p99 "CPU/request"
for round in $(seq "$rounds"); do
  rm -rf "$work/joins"
  "$work/cpgd" --http 127.0.0.1:7490 --data-dir "$work/joins" --log-level warn >"$work/joins.log" 2>&1 &
  pid=$!
  pids+=($pid)
  await 127.0.0.1:7490
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c64 -d"${seconds}s" --latency -s "$here/join.lua" "http://127.0.0.1:7490")
  after=$(cpu_ticks "$pid")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  if grep -q "Non-2xx" <<<"$out"; then echo "joins answered other than 200:" >&2; echo "$out" >&2; exit 1; fi
  rate=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  us=$(awk -v t=$((after - before)) -v hz="$tick" -v r="$rate" -v s="$seconds" 'BEGIN {printf "%.1f us", t / hz * 1e6 / (r * s)}')
  printf '%-9s %5d %12.0f %10s %12s
' cpgd "$round" "$rate" "$p99" "$us"
done
