#!/usr/bin/env bash
# Push throughput with the wire capture on vs off (issue #13; goal: ratio >= 0.95), through
# `syncstorm run` on the lab: a closed loop of CONNECTIONS keep-alive connections pushing through
# the LB (POST /v1/push, one op), rounds alternating off and on so both see the same machine;
# medians compared. "on" is the same scenario with --set capture={"interfaces":"lab",...}: the
# bridge and lo captured, pcap files written.
# Usage: SYNCSTORM_BUILD_DIR=build bench/capture_bench.sh [SECONDS=10] [CONNECTIONS=16] [ROUNDS=3] [BATCH=20]
# REQUEST=healthz instead pushes GET /healthz (answered by syncd without PostgreSQL): a packet
# rate several times higher, where the capture's own CPU shows (informational; the goal is push).
# Needs root (the lab, CAP_NET_RAW). Everything it starts is removed on exit (each run's lab
# goes down with the run; the run directories are in a temporary directory).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SYNCSTORM_BUILD_DIR:-$root/build}
secs=${1:-10}
conns=${2:-16}
rounds=${3:-3}
batch=${4:-20}
bin=$build/cli/syncstorm
[[ -x $bin && -x $build/labstack/syncd ]] || { echo "build syncstorm and syncd in $build first" >&2; exit 2; }
tmp=$(mktemp -d /tmp/syncstorm-capture-bench.XXXXXX)
trap '[[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT

# (A closed loop ignores the phases' rate, but the model wants one.)
# A push of BATCH fresh-looking ops, the same ids each time: syncd acknowledges them again
# (idempotent), so every request is a full round trip through the relay, HAProxy, a pod and
# PostgreSQL without the table growing.
python3 - "$tmp/s.json" "$secs" "$conns" "$batch" "${REQUEST:-push}" <<'PY'
import json, sys
path, secs, conns, batch, request = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ops = [{"id": "bench-%d" % i, "stream": "s-%d" % (i % 10), "seq": i + 1, "t_us": 0, "kind": "append"} for i in range(batch)]
doc = {"name": "capture-bench", "duration": "%ds" % secs,
       "target": {"lab": {"pods": 2}},
       "load": [{"name": "push", "model": "http", "mode": "closed", "connections": conns, "timeout": "5s",
                 "request": {"method": "POST", "path": "/v1/push", "body": {"client": "bench", "ops": ops}},
                 "expect_status": [200],
                 "phases": [{"name": "warm", "for": "2s", "rate": 1}, {"name": "steady", "for": "%ds" % (secs - 2), "rate": 1}]}],
       "slas": [{"name": "steady-throughput", "metric": "http.requests", "stat": "rate", "window": "phase:push/steady", "min": 0}]}
if request == "healthz":
    doc["load"][0]["request"] = {"method": "GET", "path": "/healthz"}
json.dump(doc, open(path, "w"))
PY

capture='capture={"interfaces":"lab","pcap":true,"snaplen":128}'
run_one() {  # $1: off|on, $2: round
  local out=$tmp/runs-$1-$2
  if [[ $1 == on ]]; then
    "$bin" run "$tmp/s.json" --out "$out" --set "$capture" >"$tmp/log-$1-$2" 2>&1 || true
  else
    "$bin" run "$tmp/s.json" --out "$out" >"$tmp/log-$1-$2" 2>&1 || true
  fi
  python3 - "$out" "$1" "$2" <<'PY'
import json, sys, glob
out, mode, rnd = sys.argv[1:4]
reps = glob.glob(out + "/*/report.json")
if not reps:
    print("round %s %-3s: no report" % (rnd, mode)); sys.exit(0)
r = json.load(open(reps[0]))
v = [x for x in r["verdicts"] if x["name"] == "steady-throughput"][0]
req = r["metrics"].get("http.requests", {})
cap = r.get("capture")
extra = ""
if cap:
    secs = r["duration_s"]
    extra = "  capture %d packets (%.0f/s), dropped %d, %d files" % (cap["packets"], cap["packets"] / secs, cap["dropped"], len(cap["files"]))
print("round %s %-3s: %8.0f req/s steady  errors %d  cpu %.2f cores%s" % (rnd, mode, v["value"] or 0, req.get("errors", 0), r["generator"]["cpu"], extra))
open(out + "/rate", "w").write(str(v["value"] or 0))
PY
}

echo "$rounds rounds of ${secs} s each (2 s warm-up), $conns connections, ${REQUEST:-push} (batches of $batch), capture off then on"
for r in $(seq 1 "$rounds"); do
  run_one off "$r"
  run_one on "$r"
done
python3 - "$tmp" "$rounds" <<'PY'
import sys, statistics, os
tmp, rounds = sys.argv[1], int(sys.argv[2])
def rates(mode):
    out = []
    for r in range(1, rounds + 1):
        p = "%s/runs-%s-%d/rate" % (tmp, mode, r)
        if os.path.exists(p): out.append(float(open(p).read()))
    return out
off, on = rates("off"), rates("on")
if not off or not on:
    print("no result"); sys.exit(1)
m_off, m_on = statistics.median(off), statistics.median(on)
print("median off: %8.0f req/s" % m_off)
print("median on : %8.0f req/s" % m_on)
print("capture on/off: throughput ratio %.3f (goal >= 0.95)" % (m_on / m_off))
PY
