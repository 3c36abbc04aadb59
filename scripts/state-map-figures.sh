#!/usr/bin/env bash
# Issue 12's figures in one run, each next to the limit its bench measured in the same
# run: the writer (log core vs rules + state map), replay with the map vs `verify` of
# the log alone (`ledger_rules`), and a student's balance with its proofs over HTTP,
# with the answer's and a proof's size (`http_load`). Bounded for a shared machine:
# about three minutes a run. With MAP_OBJECTS_LARGE=10000000, then once the map alone
# at that many random keys, its nodes on the heap and in files side by side (build,
# RSS anon/file, a batch, proofs cold and warm, proof sizes: about two minutes, 2 GiB).
#   scripts/state-map-figures.sh [runs] [out-dir]
set -euo pipefail
runs=${1:-3}
out=${2:-/tmp/state-map-figures}
mkdir -p "$out"
cd "$(dirname "$0")/.."
for i in $(seq 1 "$runs"); do
  LEDGER_BENCH_ENTRIES=${LEDGER_BENCH_ENTRIES:-120000} \
  LEDGER_BENCH_MAP_OBJECTS=${LEDGER_BENCH_MAP_OBJECTS:-1000000} \
    cargo bench --bench ledger_rules 2>/dev/null | tee "$out/rules-$i.txt"
  LEDGER_BENCH_HTTP_ENTRIES=${LEDGER_BENCH_HTTP_ENTRIES:-5000} \
  LEDGER_BENCH_HTTP_SECS=${LEDGER_BENCH_HTTP_SECS:-3} \
  LEDGER_BENCH_HTTP_PHASES=${LEDGER_BENCH_HTTP_PHASES:-library,claims,students} \
    cargo bench --bench http_load 2>/dev/null | tee "$out/http-$i.txt"
done
if [[ -n "${MAP_OBJECTS_LARGE:-}" ]]; then
  LEDGER_BENCH_MAP_ONLY=1 LEDGER_BENCH_MAP_OBJECTS=$MAP_OBJECTS_LARGE \
    cargo bench --bench ledger_rules 2>/dev/null | tee "$out/map-large.txt"
fi
