#!/usr/bin/env bash
# Schemathesis against a small demo ledger served on loopback: every operation of the
# served OpenAPI document (`schemas/openapi.json`), every check, the stateful phase
# included, with a bounded number of examples per operation. Exits non-zero on any
# failure (schemathesis's own exit code).
#
#   scripts/schemathesis.sh            # 50 examples per operation, seed 1
#   MAX_EXAMPLES=200 SEED=7 scripts/schemathesis.sh
#   LL_BIN=path/to/lesson-ledger scripts/schemathesis.sh   (a built binary, no cargo build)
#
# Installs schemathesis 4 with pip if `st` is missing. Reports go to
# target/schemathesis/ (JUnit XML, and the NDJSON of every case for replay).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${MAX_EXAMPLES:-50}"
SEED="${SEED:-1}"
REPORTS="$PWD/target/schemathesis"

if ! command -v st >/dev/null 2>&1; then
    echo "schemathesis not found: installing it with pip" >&2
    python3 -m pip install --quiet 'schemathesis>=4.32,<5'
fi
st --version

if [ -n "${LL_BIN:-}" ]; then
    BIN="$LL_BIN"
else
    cargo build --quiet --bin lesson-ledger
    BIN="$PWD/target/debug/lesson-ledger"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A populated ledger (parties, claims, pledges, a match run, lessons), written by the
# tiny demo, then served on its own so that the address is known.
echo "building a tiny demo ledger in $WORK (about 20 s)" >&2
"$BIN" demo --scale tiny --data "$WORK/demo" >"$WORK/demo.log" 2>&1 || {
    cat "$WORK/demo.log" >&2
    exit 1
}
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
"$BIN" serve --data "$WORK/demo/ledger" --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$URL/healthz" >/dev/null || {
    cat "$WORK/serve.log" >&2
    exit 1
}

# An allocation of the demo ledger (its id starts with the run's random id): the first
# `allocation_made` entry of the log.
LL_ALLOCATION_ID="$(python3 - "$URL" <<'PY'
import base64, json, sys, urllib.request
url = sys.argv[1]
size = json.load(urllib.request.urlopen(f"{url}/v1/log"))["size"]
for index in range(size):
    entry = json.load(urllib.request.urlopen(f"{url}/v1/entries/{index}"))
    payload = json.loads(base64.b64decode(entry["envelope"]["payload"]))
    if payload.get("kind") == "allocation_made":
        print(payload["allocation"])
        break
else:
    sys.exit("no allocation_made entry in the demo ledger")
PY
)"
export LL_ALLOCATION_ID

# A lesson of the demo ledger (GET /v1/lessons/{id}): the first one proposed or held.
LL_LESSON_ID="$(python3 - "$URL" <<'PY'
import base64, json, sys, urllib.request
url = sys.argv[1]
size = json.load(urllib.request.urlopen(f"{url}/v1/log"))["size"]
for index in range(size):
    entry = json.load(urllib.request.urlopen(f"{url}/v1/entries/{index}"))
    payload = json.loads(base64.b64decode(entry["envelope"]["payload"]))
    if payload.get("kind") in ("lesson_proposed", "lesson_consumed"):
        print(payload["lesson"])
        break
else:
    sys.exit("no lesson in the demo ledger")
PY
)"
export LL_LESSON_ID

mkdir -p "$REPORTS"
# The operator's token, so that `POST /v1/match` is exercised, not only refused.
TOKEN="$(cat "$WORK/demo/ledger/operator.token")"
st --config-file scripts/schemathesis.toml run "$URL/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 30 \
    --header "Authorization: Bearer $TOKEN" \
    --report junit,ndjson \
    --report-dir "$REPORTS"
