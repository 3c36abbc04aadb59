#!/usr/bin/env bash
# End-to-end tests of the web app in a real browser: Debian's headless chromium driven
# by playwright-core (scripts/browser/, Node 20), against real servers on loopback:
# the tiny demo's ledger (--keep-serving) and the fixture's (scripts/browser/fixture.sh).
# Installs chromium (apt) and playwright-core (npm, pinned by package-lock.json; it
# downloads no browser) when missing. Prints each test and the issue's targets. First
# runs the state-proof vectors against src/web/state.js in Node.
#
# Usage: scripts/browser-tests.sh                 (LL_BIN=path to use a built lesson-ledger)
#        scripts/browser-tests.sh --audit-small   the in-browser audit of the small demo
#        (51,337 entries) next to the native `verify --url` on the same server (release build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if ! command -v chromium >/dev/null; then
  apt-get update && apt-get install -y chromium
fi
# A Chinese font, so that the screenshot of the zh-CN page is legible.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  apt-get install -y fonts-wqy-microhei || echo "no Chinese font: the screenshot will show boxes" >&2
fi
if [ ! -d scripts/browser/node_modules/playwright-core ]; then
  (cd scripts/browser && npm ci --no-audit --no-fund)
fi
if [ -z "${LL_BIN:-}" ]; then
  cargo build --quiet
  LL_BIN=$ROOT/target/debug/lesson-ledger
fi

# The browser's state verifier (src/web/state.js) on the Rust verifier's vectors, in Node
# first (no browser, no server): tests/web.rs keeps tests/data/state/vectors.json current.
node scripts/browser/state-vectors.mjs

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for FILE PATTERN: waits (at most 120 s) until FILE has a line matching PATTERN.
wait_for() {
  for _ in $(seq 1 240); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

# native_verify URL: the native remote audit (`verify --url`) of the server, timed, to
# print next to the in-browser audit of the same log.
native_verify() {
  local key start end
  key=$(curl -s "$1/v1/log" | sed 's/.*"operator_vkey":"\([^"]*\)".*/\1/')
  start=$(date +%s.%N)
  "$LL_BIN" verify --url "$1" --operator-key "$key" > "$TMP/verify.log" 2>&1
  end=$(date +%s.%N)
  echo "  TARGET native verify --url of the same log: $(printf "%.2f" "$(echo "$end - $start" | bc)") s in all ($(tail -1 "$TMP/verify.log"))"
}

if [ "${1:-}" = --audit-small ]; then
  "$LL_BIN" demo --scale small --data "$TMP/demo" --keep-serving > "$TMP/demo.log" 2>&1 &
  PIDS+=($!)
  DEMO_PID=$!
  for _ in $(seq 1 90); do
    grep -q "the server keeps serving" "$TMP/demo.log" && break
    kill -0 "$DEMO_PID" 2>/dev/null || { tail -3 "$TMP/demo.log" >&2; exit 1; }
    sleep 10
  done
  DEMO_URL=$(grep 'signed checkpoint' "$TMP/demo.log" | grep -o 'http://127\.0\.0\.1:[0-9]*')
  native_verify "$DEMO_URL"
  DEMO_URL=$DEMO_URL REPO_ROOT=$ROOT ONLY=audits_the_whole_log node scripts/browser/tests.mjs
  exit
fi

"$LL_BIN" demo --scale tiny --data "$TMP/demo" --keep-serving > "$TMP/demo.log" 2>&1 &
PIDS+=($!)

bash scripts/browser/fixture.sh "$LL_BIN" "$TMP/fixture"
serve() {
  "$LL_BIN" serve --data "$1" --addr 127.0.0.1:0 2> "$2" &
  PIDS+=($!)
  wait_for "$2" "listening on"
}
serve "$TMP/fixture/ledger" "$TMP/fixture.log"
serve "$TMP/fixture/fork-a" "$TMP/fork-a.log"
serve "$TMP/fixture/fork-b" "$TMP/fork-b.log"
url_of() { grep -o 'http://127\.0\.0\.1:[0-9]*' "$1" | head -1; }

wait_for "$TMP/demo.log" "the server keeps serving"
DEMO_URL=$(grep 'signed checkpoint' "$TMP/demo.log" | grep -o 'http://127\.0\.0\.1:[0-9]*')
native_verify "$DEMO_URL"

DEMO_URL=$DEMO_URL FIXTURE_URL=$(url_of "$TMP/fixture.log") \
  FORK_A_URL=$(url_of "$TMP/fork-a.log") FORK_B_URL=$(url_of "$TMP/fork-b.log") \
  FAMILY_KEY_FILE=$TMP/fixture/keys/stu-0eb01.key REPO_ROOT=$ROOT \
  node scripts/browser/tests.mjs
