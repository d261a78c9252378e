#!/usr/bin/env bash
# Writes what the §9 contract prints into DIR, so two builds can be compared byte for byte
# (`diff -r A B`): `schema`, `schema --report`, `validate` and `run --dry-run` of every shipped
# scenario, and `validate` of a set of invalid variants (each a shipped scenario with --set
# edits). Used to check that a refactor changed none of it. Usage:
#   scripts/contract_snapshot.sh BIN DIR
set -uo pipefail
bin=$1 out=$2
cd "$(dirname "$0")/.."
mkdir -p "$out"
"$bin" schema >"$out/schema.json" 2>&1; echo "rc=$?" >>"$out/schema.json"
"$bin" schema --report >"$out/schema-report.json" 2>&1; echo "rc=$?" >>"$out/schema-report.json"
for f in scenarios/*.json; do
  n=$(basename "$f" .json)
  "$bin" validate "$f" >"$out/validate-$n.txt" 2>&1; echo "rc=$?" >>"$out/validate-$n.txt"
  "$bin" run "$f" --dry-run --threads 2 >"$out/dryrun-$n.txt" 2>&1; echo "rc=$?" >>"$out/dryrun-$n.txt"
  "$bin" run "$f" --dry-run --threads 2 --time-scale 0.25 --seed 7 >"$out/dryrun-$n-scaled.txt" 2>&1; echo "rc=$?" >>"$out/dryrun-$n-scaled.txt"
done
# Invalid variants: scenario file, then --set edits (one case per line).
i=0
while IFS='|' read -r file sets; do
  [[ -z "$file" || "$file" == \#* ]] && continue
  i=$((i + 1))
  args=()
  for s in $sets; do args+=(--set "$s"); done
  { echo "# $file $sets"; "$bin" validate "scenarios/$file" "${args[@]}" 2>&1; echo "rc=$?"; } >"$out/invalid-$(printf %03d $i).txt"
  { echo "# run $file $sets"; "$bin" run "scenarios/$file" --dry-run "${args[@]}" 2>&1; echo "rc=$?"; } >>"$out/invalid-$(printf %03d $i).txt"
done <<'CASES'
http-smoke.json|load[0].model="htttp"
http-smoke.json|load[0].phases[0].rate=null
http-smoke.json|load[0].mode="closed" load[0].connections=0
http-smoke.json|load[0].request.url="ftp://x" load[0].request.path="/a"
http-smoke.json|load[0].timeout="3x"
http-smoke.json|load[0].phases[0].for="1h" duration="10s"
http-smoke.json|load[0].expect_status=[99]
http-smoke.json|load[0].bogus=1
http-smoke.json|target={"endpoints":{"http":"http://127.0.0.1:1"},"proxy":{"listen":"nope"}}
http-smoke.json|target={"lab":{"id":"x","pods":3}}
http-smoke.json|target={}
http-smoke.json|slas[0].metric="http.latnecy"
http-smoke.json|slas[0].max=100
http-smoke.json|slas[0].window="during:nothing"
http-smoke.json|slas[0].window="phase:nope/x"
http-smoke.json|slas[0].load="nope"
http-smoke.json|slas[0].stat="p99x"
http-smoke.json|name="has space" seed=-1
pos-pod-failover.json|load[0].stores=0 load[0].terminals_per_store="x"
pos-pod-failover.json|load[0].ops.append=150 load[0].conflict="maybe"
pos-pod-failover.json|load[0].rate=null load[0].phases[0].rate=null
pos-pod-failover.json|load[0].retry.base="1q" load[0].batch.max_ops=0
pos-pod-failover.json|faults[0].kind="kil"
pos-pod-failover.json|faults[0].at="3x"
pos-pod-failover.json|faults[0].at="10h"
pos-pod-failover.json|faults[0].target={"role":"clients"}
pos-pod-failover.json|faults[0].target={}
pos-pod-failover.json|faults[0].count=3
pos-pod-failover.json|faults[0].kind="db_failover"
pos-pod-failover.json|faults[0].kind="partition"
pos-pod-failover.json|faults[0].kind="latency" faults[0].latency="50ms" faults[0].path="clients-endpoints"
pos-pod-failover.json|faults[0].kind="disk_fill" faults[0].percent=90 faults[0].leave="1MiB"
pos-pod-failover.json|faults[0].kind="disk_fill" faults[0].volume="relative"
pos-pod-failover.json|faults[0].kind="rolling_restart" faults[0].target={"pid":1}
pos-pod-failover.json|faults[0].kind="client_crash" faults[0].target={"pods":"pod-*"}
pos-pod-failover.json|faults[0].kind="bandwidth" faults[0].rate="1Mbit" faults[0].via="tc"
pos-pod-failover.json|faults[0].target={"selector":{"labels":{"a":"b"}},"restart":false}
pos-pod-failover.json|faults[1]={"name":"kill-pod","kind":"pause","at":"1s","target":{"pods":"pod-0"}}
pos-pod-failover.json|faults[0].signal="SIGFOO"
pos-pod-failover.json|target.lab.bug="drop-every=0"
pos-pod-failover.json|target.lab.pods=100
pos-pod-failover.json|capture={"interfaces":"lab","snaplen":10}
pos-pod-failover.json|abort[0]={"name":"a","probe":{"url":"x"},"max":3}
pos-pod-failover.json|slas[0].metric="recovery.nope"
offline-24h.json|load[0].offline=null load[0].random=null
offline-24h.json|load[0].random={"duty_cycle":"10%","period":"500ms"}
offline-24h.json|load[0].clients=-3
ws-fanout-capacity.json|load[0].subscribers=0 load[0].streams="x"
ws-fanout-capacity.json|load[0].server_header=3
cloud-sync-burst.json|load[0].model="bootstrap" load[0].clients=0
http-smoke.json|load[0].request.headers.X-Key="${env:NOT SET}"
http-smoke.json|nope
pos-pod-failover.json|load[0].ops={"append":50,"add":20,"set":20}
pos-pod-failover.json|load[0].retry={"base":"2s","max":"1s"}
ws-fanout-capacity.json|load[0].reconnect={"base":"2s","max":"1s"}
http-smoke.json|a..b=1
http-smoke.json|load[9].name="x"
CASES
echo "snapshot: $(ls "$out" | wc -l) files in $out"
