#!/usr/bin/env bash
# Fanout capacity: one syncstorm process holding N WebSocket subscribers against the lab, and its
# RSS per connection (VmRSS after the connected count stopped growing − VmRSS before the models
# existed, / connections). No pushes: this measures holding connections, not delivery.
#   bench/fanout_bench.sh [SUBSCRIBERS=50000] [MODE=pods|lb] [PODS=3] [THREADS=2] [CONNECT_RATE=2000]
# MODE lb: through the lab's lb_ws relay and HAProxy (bounded by HAProxy's maxconn, see
# `lab status --json` limits); haproxy: HAProxy's ws frontend without the relay; pods: straight
# to the pods' addresses (one model per pod).
# Env: SYNCSTORM_BUILD_DIR (default build-bench; configured and built if needed).
# Starts its own lab (id fbench) and takes it down on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
subs=${1:-50000}
mode=${2:-pods}
pods=${3:-3}
threads=${4:-2}
rate=${5:-2000}
build=${SYNCSTORM_BUILD_DIR:-$root/build-bench}

if [[ ! -f $build/build.ninja && ! -f $build/Makefile ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target syncstorm syncd fanout_bench_driver -j2 >/dev/null
tmp=$(mktemp -d /tmp/syncstorm-fbench.XXXXXX)
driver=$build/bench/fanout_bench_driver

cli=$(find "$build" -maxdepth 3 -name syncstorm -type f -perm -u+x | head -1)
cleanup() { "$cli" lab down --id fbench >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
export SYNCSTORM_SYNCD=${SYNCSTORM_SYNCD:-$(find "$build" -maxdepth 3 -name syncd -type f -perm -u+x | head -1)}
"$cli" lab up --pods "$pods" --id fbench >/dev/null
status=$("$cli" lab status --json --id fbench)
echo "lab limits: $(python3 -c 'import json,sys; print(json.load(sys.stdin).get("limits", {}))' <<<"$status")"
http=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["lb"]["http_url"])' <<<"$status")
case $mode in
  lb) urls=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["lb"]["ws_url"])' <<<"$status") ;;
  haproxy) urls=$(python3 -c 'import json,sys; print("ws://" + json.load(sys.stdin)["lb"]["haproxy_ws"])' <<<"$status") ;;
  pods) urls=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("ws://" + u["address"] for u in d["units"].values() if u.get("role") == "pod"))' <<<"$status") ;;
  *) echo "bench: MODE must be lb, haproxy or pods" >&2; exit 2 ;;
esac
echo "command: $driver $http $subs $threads $rate $urls"
"$driver" "$http" "$subs" "$threads" "$rate" $urls
