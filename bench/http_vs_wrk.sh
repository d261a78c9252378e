#!/usr/bin/env bash
# HTTP load vs wrk: nginx (1 worker, pinned to core 0) serves a tiny static reply on loopback;
# syncstorm's closed http model and `wrk -t1 -c64` each run pinned to core 1 for the same
# duration, alternating for a few rounds, in the same run. Prints both rates, their ratio, the
# CPU µs per request of each (getrusage of the process / of the wrk child) and their ratio.
#   bench/http_vs_wrk.sh [SECONDS=10] [CONNECTIONS=64] [ROUNDS=3]
# Env: SYNCSTORM_BUILD_DIR (default build-bench) is configured and built if needed; PORT (18089).
# syncstorm is measured through bench/http_bench_driver.cpp (the closed model alone) and, when
# the build tree has a working CLI, through `syncstorm run` on the same closed-model scenario.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-64}
rounds=${3:-3}
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

# The driver: the http_bench_driver target (bench/CMakeLists.txt) of the build tree.
if [[ ! -f $build/build.ninja && ! -f $build/Makefile ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target http_bench_driver -j2 >/dev/null
tmp=$(mktemp -d /tmp/syncstorm-bench.XXXXXX)
driver=$build/bench/http_bench_driver

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

# Rounds alternate wrk and syncstorm so that both see the same machine; medians are compared.
# wrk's CPU is its rusage as a child (user + sys), taken by python's getrusage.
run_wrk() {
  taskset -c 1 python3 -c '
import re, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout
r = resource.getrusage(resource.RUSAGE_CHILDREN)
m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
sock = re.search(r"Socket errors: (.*)", out)
print("requests=%s seconds=%.3f cpu_us=%d errors=%s" % (m.group(1), secs,
      int((r.ru_utime + r.ru_stime) * 1e6), errs.group(1) if errs else 0))
if sock: print("wrk socket errors: " + sock.group(1), file=sys.stderr)
' wrk -t1 -c"$conns" -d"${secs}s" "$url"
}
run_syncstorm() { taskset -c 1 "$driver" "$url" "$conns" "$secs" 1; }
# The CLI too, when the build tree has it: `syncstorm run` on a closed-model scenario, one
# worker thread; requests from its report.json, CPU from its rusage as a child.
cli=$build/cli/syncstorm
cat > "$tmp/scenario.json" <<JSON
{"name": "http-vs-wrk", "duration": "${secs}s", "target": {"endpoints": {"http": "http://127.0.0.1:$port"}},
 "load": [{"name": "bench", "model": "http", "mode": "closed", "connections": $conns,
           "request": {"method": "GET", "path": "/"}, "phases": [{"name": "run", "for": "${secs}s", "rate": 1}]}]}
JSON
run_cli() {
  taskset -c 1 python3 -c '
import glob, json, resource, subprocess, sys
out, secs = sys.argv[1], float(sys.argv[2])
subprocess.run(sys.argv[3:] + ["--out", out], capture_output=True, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
rep = json.load(open(sorted(glob.glob(out + "/*/report.json"))[-1]))
m = rep["metrics"].get("metrics", rep["metrics"])["http.requests"]
print("requests=%d seconds=%.3f cpu_us=%d errors=%d" % (m["count"], secs, int((r.ru_utime + r.ru_stime) * 1e6), m["errors"]))
' "$tmp/runs" "$secs" "$cli" run "$tmp/scenario.json" --threads 1
}
have_cli=0
if [[ -x $cli ]] && run_cli >/dev/null 2>&1; then have_cli=1; else echo "bench: no working $cli; syncstorm run skipped" >&2; fi

results=$tmp/results
: > "$results"
for r in $(seq "$rounds"); do
  echo "wrk $(run_wrk)" >> "$results"
  echo "syncstorm $(run_syncstorm)" >> "$results"
  if [[ $have_cli == 1 ]]; then echo "syncstorm-run $(run_cli)" >> "$results"; fi
done

python3 - "$results" "$secs" "$conns" "$rounds" <<'PY'
import statistics, sys
path, secs, conns, rounds = sys.argv[1:]
rows = {"wrk": [], "syncstorm": [], "syncstorm-run": []}
for line in open(path):
    tool, *kv = line.split()
    d = dict(x.split("=") for x in kv)
    req, s, cpu = int(d["requests"]), float(d["seconds"]), int(d["cpu_us"])
    rows[tool].append((req / s, cpu / req, int(d.get("errors", 0)), req))
print(f"{rounds} rounds of {secs} s each, {conns} connections; nginx 1 worker on core 0, client on core 1")
for tool, rs in rows.items():
    for i, (rate, cpu, err, req) in enumerate(rs, 1):
        print(f"  round {i} {tool:13}: {req:>9} requests {rate:>9.0f} req/s {cpu:6.2f} µs CPU/request ({err} errors)")
med = {t: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for t, rs in rows.items() if rs}
for t, (rate, cpu) in med.items():
    print(f"median {t:13}: {rate:>9.0f} req/s {cpu:6.2f} µs CPU/request")
for t in med:
    if t != "wrk":
        print(f"{t}/wrk: rate ratio {med[t][0] / med['wrk'][0]:.3f}   CPU/request ratio {med[t][1] / med['wrk'][1]:.3f}")
PY
