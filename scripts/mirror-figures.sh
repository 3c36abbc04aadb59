#!/usr/bin/env bash
# Issue 17's mirror figure: a mirror catching up on the small demo (51,337 entries)
# from a `serve` of it on a loopback port, in entries/s and signatures/s, next to the
# signature-verification limit measured in the same run (every mirrored leaf checked
# again on all cores: decoding, every signature, the leaf hash). Target: >= 70%.
# The demo is generated once into DEMO_DIR (about a minute in release) and reused.
#   scripts/mirror-figures.sh [runs] [demo-dir]
# MIRROR_BIN=path runs another binary (an earlier build, for a before/after) unbuilt.
set -euo pipefail
runs=${1:-3}
demo=${2:-/tmp/mirror-figures-demo}
cd "$(dirname "$0")/.."
bin=${MIRROR_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --bin lesson-ledger 2>/dev/null
  bin=target/release/lesson-ledger
fi
if [ ! -f "$demo/ledger/log.dat" ]; then
  rm -rf "$demo"
  "$bin" demo --data "$demo" >/dev/null
fi
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
"$bin" serve --data "$demo/ledger" --addr "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin" keygen --name mirror-01 --out "$work/mirror-01" >/dev/null
for i in $(seq 1 "$runs"); do
  rm -rf "$work/mirror"
  "$bin" mirror --data "$work/mirror" --origin "http://127.0.0.1:$port" \
    --key "$work/mirror-01" --once --measure 2>/dev/null | tee "$work/run-$i.json"
  python3 - "$work/run-$i.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["verify_limit"]
print(f"mirror caught up {r['to'] - r['from']} entries in {r['seconds']:.2f} s: "
      f"{r['entries_per_s']:.0f} entries/s, {r['signatures_per_s']:.0f} signatures/s "
      f"(waiting for verified leaves {r['fetch_verify_seconds']:.2f} s, replay+write {r['import_seconds']:.2f} s); "
      f"verification limit {l['entries_per_s']:.0f} entries/s, {l['signatures_per_s']:.0f} signatures/s; "
      f"{100 * r['share_of_limit']:.0f}% of the limit")
PY
done
