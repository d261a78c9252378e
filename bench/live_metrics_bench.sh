#!/usr/bin/env bash
# The live endpoint's cost (issue #26): `syncstorm run` of a closed-loop http load (64 connections,
# one worker thread, pinned to core 1) against nginx (1 worker, core 0), alternately without and
# with `--metrics-listen` while a scraper on core 0 GETs /metrics as OpenMetrics every second, in
# the same run. Prints per round and as medians the achieved request rate and the generator's CPU
# µs per request (its rusage as a child), and the with/without ratios.
#   bench/live_metrics_bench.sh [SECONDS=20] [ROUNDS=5]
# Env: SYNCSTORM_BUILD_DIR (default build) holds cli/syncstorm; PORT (18090), METRICS_PORT (19477).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
rounds=${2:-5}
port=${PORT:-18090}
mport=${METRICS_PORT:-19477}
build=${SYNCSTORM_BUILD_DIR:-$root/build}
cli=$build/cli/syncstorm
[[ -x $cli ]] || { echo "bench: no $cli (build the syncstorm target first)" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || { echo "bench: needs 2 cores (nginx and the scraper on 0, syncstorm on 1)" >&2; exit 1; }
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  echo "bench: installing nginx" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/syncstorm-bench.XXXXXX)
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
scraper_pid=""
cleanup() {
  [[ -n $scraper_pid ]] && kill "$scraper_pid" 2>/dev/null || true
  kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done

# Two loads so the endpoint has two sets of series and a rule to judge live, as a real run would.
cat > "$tmp/scenario.json" <<JSON
{"name": "live-metrics-bench", "duration": "${secs}s",
 "target": {"endpoints": {"http": "http://127.0.0.1:$port"}},
 "load": [{"name": "a", "model": "http", "mode": "closed", "connections": 32,
           "request": {"method": "GET", "path": "/a"}, "phases": [{"name": "run", "for": "${secs}s", "rate": 1}]},
          {"name": "b", "model": "http", "mode": "closed", "connections": 32,
           "request": {"method": "GET", "path": "/b"}, "phases": [{"name": "run", "for": "${secs}s", "rate": 1}]}],
 "slas": [{"name": "p99", "metric": "http.latency", "stat": "p99", "max": "1s"}]}
JSON

# One run; prints requests, seconds and the child's CPU. With "scraped", the endpoint is on and
# a scraper GETs it every second for the whole run.
run_one() {
  local mode=$1 extra=()
  if [[ $mode == scraped ]]; then
    extra=(--metrics-listen "127.0.0.1:$mport")
    # One process, a GET a second (like Prometheus, not a process spawned per scrape).
    taskset -c 0 python3 -c '
import sys, time, urllib.request
url = sys.argv[1]
while True:
    time.sleep(1)
    try:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}), timeout=2).read()
    except Exception:
        pass
' "http://127.0.0.1:$mport/metrics" &
    scraper_pid=$!
  fi
  taskset -c 1 python3 -c '
import glob, json, resource, subprocess, sys
out, secs = sys.argv[1], float(sys.argv[2])
import re
p = subprocess.run(sys.argv[3:] + ["--out", out], capture_output=True, text=True)
rc = p.returncode
if rc not in (0, 1, 5): sys.exit("syncstorm run exited %d" % rc)  # 5: a saturated generator (it is the bottleneck here)
cost = re.search(r"live view: \d+ refreshes, (\d+) scrapes, ([\d.]+) ms of CPU", p.stderr)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
rep = json.load(open(sorted(glob.glob(out + "/*/report.json"))[-1]))
m = rep["metrics"]["http.requests"]
print("requests=%d seconds=%.3f cpu_us=%d errors=%d live_ms=%s scrapes=%s" % (m["count"], secs, int((r.ru_utime + r.ru_stime) * 1e6), m["errors"],
      cost.group(2) if cost else "0", cost.group(1) if cost else "0"))
' "$tmp/runs-$mode-$RANDOM" "$secs" "$cli" run "$tmp/scenario.json" --threads 1 "${extra[@]}"
  if [[ -n $scraper_pid ]]; then
    kill "$scraper_pid" 2>/dev/null || true
    wait "$scraper_pid" 2>/dev/null || true
    scraper_pid=""
  fi
}

results=$tmp/results
: > "$results"
for _ in $(seq "$rounds"); do
  echo "plain $(run_one plain)" >> "$results"
  echo "scraped $(run_one scraped)" >> "$results"
done

python3 - "$results" "$secs" "$rounds" <<'PY'
import statistics, sys
path, secs, rounds = sys.argv[1:]
rows = {"plain": [], "scraped": []}
for line in open(path):
    tool, *kv = line.split()
    d = dict(x.split("=") for x in kv)
    req, s, cpu = int(d["requests"]), float(d["seconds"]), int(d["cpu_us"])
    rows[tool].append((req / s, cpu / req, int(d["errors"]), req, float(d["live_ms"]), int(d["scrapes"]), cpu))
print(f"{rounds} rounds of {secs} s each; closed http, 64 connections, 1 worker thread on core 1; nginx and the scraper on core 0")
for tool, rs in rows.items():
    for i, (rate, cpu, err, req, live_ms, scrapes, total) in enumerate(rs, 1):
        extra = f"; live view {live_ms:.1f} ms CPU for {scrapes} scrapes = {100 * live_ms * 1000 / total:.3f}% of the run's CPU" if tool == "scraped" else ""
        print(f"  round {i} {tool:8}: {req:>9} requests {rate:>9.0f} req/s {cpu:6.3f} µs CPU/request ({err} errors){extra}")
med = {t: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for t, rs in rows.items()}
for t, (rate, cpu) in med.items():
    print(f"median {t:8}: {rate:>9.0f} req/s {cpu:6.3f} µs CPU/request")
print(f"scraped/plain: rate ratio {med['scraped'][0] / med['plain'][0]:.3f}   CPU/request ratio {med['scraped'][1] / med['plain'][1]:.3f}")
# Rounds run plain then scraped back to back: the ratio within each pair cancels the drift of a
# shared machine between rounds; their median is the A/B figure.
pairs = list(zip(rows["plain"], rows["scraped"]))
rate_r = statistics.median(b[0] / a[0] for a, b in pairs)
cpu_r = statistics.median(b[1] / a[1] for a, b in pairs)
share = statistics.median(b[4] * 1000 / b[6] for _, b in pairs)
print(f"per-pair medians: rate ratio {rate_r:.3f}   CPU/request ratio {cpu_r:.3f}")
print(f"the live view's own CPU (refresh + render, measured in the process): {100 * share:.3f}% of the run's CPU (median)")
PY
