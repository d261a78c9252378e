#!/usr/bin/env bash
# HTTP load vs wrk: nginx (1 worker, pinned to core 0) serves a tiny static reply on loopback;
# syncstorm's closed http model and `wrk -t1 -c64` each run pinned to core 1 for the same
# duration, one after the other, in the same run. Prints both rates, their ratio, the CPU µs per
# request of each (getrusage of the process / of the wrk child) and their ratio.
#   bench/http_vs_wrk.sh [SECONDS=10] [CONNECTIONS=64]
# Env: SYNCSTORM_BUILD_DIR (default build-bench) is configured and built if needed; PORT (18089).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-64}
port=${PORT:-18089}
build=${SYNCSTORM_BUILD_DIR:-$root/build-bench}

need=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "bench: installing ${need[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ $(nproc) -ge 2 ]] || { echo "bench: needs 2 cores (nginx on 0, the client on 1)" >&2; exit 1; }

# The driver, against the build tree's libraries (only the three it needs are built).
if [[ ! -f $build/build.ninja && ! -f $build/Makefile ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target syncstorm_loadgen syncstorm_harness syncstorm_asio -j2 >/dev/null
tmp=$(mktemp -d /tmp/syncstorm-bench.XXXXXX)
driver=$tmp/http_bench_driver
c++ -std=c++20 -O2 -DNDEBUG -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION \
  -DBOOST_ASIO_NO_DEPRECATED -DBOOST_BEAST_USE_STD_STRING_VIEW -I"$root" \
  "$root/bench/http_bench_driver.cpp" -o "$driver" \
  "$build/loadgen/libsyncstorm_loadgen.a" "$build/harness/libsyncstorm_harness.a" \
  "$build/libsyncstorm_asio.a" -lssl -lcrypto -pthread

# nginx with its own config and prefix, not the system service.
mkdir -p "$tmp/logs"
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy; fastcgi_temp_path $tmp/fcgi;
  uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
CONF
taskset -c 0 "$NGINX" -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
cleanup() { kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
url="http://127.0.0.1:$port/"

# wrk: its CPU is the child's rusage (user + sys), taken by python's getrusage.
wrk_out=$(taskset -c 1 python3 -c '
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(out)
print("cpu_us=%d" % int((r.ru_utime + r.ru_stime) * 1e6))
' wrk -t1 -c"$conns" -d"${secs}s" "$url")
wrk_req=$(awk '/requests in/ {print $1}' <<<"$wrk_out")
wrk_secs=$(awk '/requests in/ {gsub(/s,/, "", $4); print $4}' <<<"$wrk_out")
wrk_cpu=$(sed -n 's/^cpu_us=//p' <<<"$wrk_out")
wrk_errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$wrk_out")

ss_out=$(taskset -c 1 "$driver" "$url" "$conns" "$secs" 1)
eval "$(sed 's/ /;/g' <<<"$ss_out")"  # requests= errors= seconds= cpu_us=

python3 - "$wrk_req" "$wrk_secs" "$wrk_cpu" "$requests" "$seconds" "$cpu_us" "$errors" "$secs" "$conns" <<'PY'
import sys
wr, ws, wc, sr, ssec, sc, serr, secs, conns = sys.argv[1:]
wr, ws, wc, sr, ssec, sc = int(wr), float(ws), int(wc), int(sr), float(secs), int(sc)
wrate, srate = wr / ws, sr / ssec
wcpu, scpu = wc / wr, sc / sr
print(f"duration {secs} s, {conns} connections, nginx 1 worker on core 0, clients on core 1")
print(f"wrk       : {wr:>10} requests  {wrate:>10.0f} req/s  {wcpu:6.2f} µs CPU/request")
print(f"syncstorm : {sr:>10} requests  {srate:>10.0f} req/s  {scpu:6.2f} µs CPU/request  ({serr} errors)")
print(f"rate ratio syncstorm/wrk: {srate / wrate:.3f}   CPU/request ratio syncstorm/wrk: {scpu / wcpu:.3f}")
PY
[[ -n "$wrk_errs" ]] && echo "wrk: $wrk_errs" || true
