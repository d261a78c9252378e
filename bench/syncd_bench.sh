#!/usr/bin/env bash
# The syncd bench points of bench/README.md (## syncd), on this machine:
#   bench/syncd_bench.sh [BUILD_DIR]        (default: build; syncd must be built there)
# 1. builds the syncd_bench target (bench/CMakeLists.txt; not part of the default build) in
#    BUILD_DIR;
# 2. starts PostgreSQL 15 as `postgres` under /var/tmp/syncstorm/bench-syncd-$$ on a free port
#    (fsync on, synchronous_commit on, as the lab runs it);
# 3. starts one syncd and runs: push (closed loop, batches of 20) and fanout (10,000 WebSocket
#    subscribers on 100 streams, 35 ops/s, so 3,500 frames/s);
# 4. stops everything and removes the state dir, also on failure or Ctrl-C.
# Knobs (environment): PUSH_CONNECTIONS=16 PUSH_DURATION=20 FANOUT_SUBSCRIBERS=10000
# FANOUT_STREAMS=100 FANOUT_RATE=35 FANOUT_DURATION=30 SYNCD_THREADS=2 SYNCD_DB_POOL=8
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
pgbin=/usr/lib/postgresql/15/bin
state=/var/tmp/syncstorm/bench-syncd-$$
syncd_pid=""

[[ -x $build/labstack/syncd ]] || { echo "syncd_bench: no $build/labstack/syncd; build the syncd target first" >&2; exit 1; }
[[ -f $build/build.ninja || -f $build/Makefile ]] || { echo "syncd_bench: $build is not a configured build directory" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "syncd_bench: run as root (PostgreSQL runs as postgres)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
  [[ -n $syncd_pid ]] && kill -TERM "$syncd_pid" 2>/dev/null && wait "$syncd_pid" 2>/dev/null || true
  if [[ -f $state/data/postmaster.pid ]]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$state/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT INT TERM

bench_bin=$build/bench/syncd_bench
cmake --build "$build" --target syncd_bench -j2 >/dev/null

pg_port=$(free_port)
mkdir -p "$state/run"
chown -R postgres: "$state"
runuser -u postgres -- "$pgbin/initdb" -D "$state/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$state/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$state/run'
fsync = on
synchronous_commit = on
wal_level = replica
shared_buffers = 256MB
max_connections = 100
EOF
runuser -u postgres -- "$pgbin/pg_ctl" -D "$state/data" -l "$state/postgres.log" -w start >/dev/null
"$pgbin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE syncd" >/dev/null

port=$(free_port)
"$build/labstack/syncd" --db "host=127.0.0.1 port=$pg_port dbname=syncd user=postgres" \
  --listen "127.0.0.1:$port" --pod-name bench --threads "${SYNCD_THREADS:-2}" --db-pool "${SYNCD_DB_POOL:-8}" \
  2> "$state/syncd.log" &
syncd_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "syncd not ready:" >&2; cat "$state/syncd.log" >&2; exit 1; }

echo "== machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== push: ${PUSH_CONNECTIONS:-16} connections, batches of 20, ${PUSH_DURATION:-20} s"
"$bench_bin" push --port "$port" --connections "${PUSH_CONNECTIONS:-16}" --batch 20 --duration "${PUSH_DURATION:-20}"
echo "== fanout: ${FANOUT_SUBSCRIBERS:-10000} subscribers on ${FANOUT_STREAMS:-100} streams, ${FANOUT_RATE:-35} ops/s, ${FANOUT_DURATION:-30} s"
"$bench_bin" fanout --port "$port" --subscribers "${FANOUT_SUBSCRIBERS:-10000}" --streams "${FANOUT_STREAMS:-100}" \
  --rate "${FANOUT_RATE:-35}" --duration "${FANOUT_DURATION:-30}"
echo "== syncd metrics after the run"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^syncd_(push_ops_total|fanout_sent_total|ws_subscribers|ws_closed_slow_total|db_errors_total)' || true
