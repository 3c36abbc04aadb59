#!/usr/bin/env bash
# Publishing figures (issue 17), printed as Markdown:
#  1. entries/s appended vs published in one run: `lesson-ledger demo` writes through
#     its server while `lesson-ledger publish --follow` copies each new checkpoint to a
#     directory; both sizes are sampled every 0.2 s.
#  2. static reads of the same tiles and bundles from Debian's nginx (serving the
#     published directory) and from `serve`, with the same client (wrk, round-robin over
#     every published tile and bundle path).
#  3. as 1, with `publish --to s3://…` into moto's S3-compatible server on loopback
#     (skipped, saying so, without `moto_server`; MOTO_SERVER names another).
# Usage: scripts/publish-figures.sh [tiny|small]   (LEDGER_BIN: the binary; default
# target/release/lesson-ledger). Loopback only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
SCALE="${1:-small}"
BIN="${LEDGER_BIN:-target/release/lesson-ledger}"
NGINX="${NGINX:-/usr/sbin/nginx}"
MOTO_SERVER="${MOTO_SERVER:-moto_server}"
SECONDS_MAX=900
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "needs nginx (apt-get install nginx)" >&2; exit 2; }
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

size_of() { sed -n 2p "$1" 2>/dev/null || echo 0; }

# follow_run NAME TO SIZE_CMD...: `demo` writes through its server while `publish
# --follow --to TO` copies each new checkpoint; the sizes served and published (SIZE_CMD
# prints the published one) are sampled every 0.2 s into $work/NAME.csv, and summed up
# as Markdown. The demo keeps serving (its URL in `url`, its pid in `demo_pid`).
follow_run() {
    local name=$1 to=$2
    shift 2
    "$BIN" demo --scale "$SCALE" --data "$work/$name-demo" --keep-serving >"$work/$name-demo.out" 2>&1 &
    demo_pid=$!
    pids+=("$demo_pid")
    url=""
    for _ in $(seq 1 600); do
        url=$(sed -n 's/^serving the ledger at //p' "$work/$name-demo.out" | head -1)
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { echo "the demo did not start" >&2; cat "$work/$name-demo.out" >&2; exit 1; }
    "$BIN" publish --from "$url" --to "$to" --follow --interval-ms 50 >"$work/$name-publish.out" 2>&1 &
    local publisher=$!
    pids+=("$publisher")
    local start last_move last_size=-1 now served published
    start=$(date +%s.%N)
    last_move=$start
    : >"$work/$name.csv"
    while :; do
        now=$(date +%s.%N)
        served=$(curl -sf "$url/checkpoint" | sed -n 2p || echo "$last_size")
        published=$("$@")
        echo "$(awk "BEGIN{print $now - $start}"),$served,${published:-0}" >>"$work/$name.csv"
        if [ "$served" != "$last_size" ]; then last_size=$served; last_move=$now; fi
        # Done when the writer has been idle 5 s and the publisher has caught up.
        if grep -q "keeps serving" "$work/$name-demo.out" && [ "$published" = "$served" ] \
            && awk "BEGIN{exit !($now - $last_move > 5)}"; then break; fi
        awk "BEGIN{exit !($now - $start > $SECONDS_MAX)}" && { echo "timed out" >&2; exit 1; }
        sleep 0.2
    done
    kill "$publisher"
    python3 - "$work/$name.csv" <<'PY'
import sys
rows = [tuple(float(x) for x in l.split(",")) for l in open(sys.argv[1]) if l.strip()]
final = rows[-1][1]
t_served = next(t for t, s, p in rows if s >= final)
t_published = next(t for t, s, p in rows if p >= final)
lag = max(s - p for t, s, p in rows)
# The busiest second of the writer, and the publisher's figure over the same second.
best = (0, 0, 0)
for i, (t, s, p) in enumerate(rows):
    j = next((k for k in range(i, len(rows)) if rows[k][0] >= t + 1.0), None)
    if j is None: break
    rate = (rows[j][1] - s) / (rows[j][0] - t)
    if rate > best[0]: best = (rate, (rows[j][2] - p) / (rows[j][0] - t), t)
print(f"| entries | {int(final)} |")
print(f"| appended: all by | {t_served:.1f} s ({final / t_served:.0f} entries/s on average) |")
print(f"| published: all by | {t_published:.1f} s ({final / t_published:.0f} entries/s on average) |")
print(f"| busiest second of the writer | {best[0]:.0f} entries/s appended, {best[1]:.0f} entries/s published |")
print(f"| most entries the published checkpoint was behind | {int(lag)} |")
PY
}

# 1. The demo writes; the publisher follows, into a directory.
mkdir -p "$work/site"
echo "| publishing to a directory (file://) alongside the writer | |"
echo "|---|---|"
follow_run file "file://$work/site" size_of "$work/site/checkpoint"

# 2. Static reads: nginx over the published directory vs serve, same paths, same client.
nginx_start "$work/nginx" "$work/site" 2
pids+=("$nginx_pid")
port=$nginx_port
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/checkpoint" >/dev/null && break; sleep 0.1; done
(cd "$work/site" && find tile -type f | sort) >"$work/paths.txt"
cat >"$work/paths.lua" <<LUA
paths = {}
for line in io.lines("$work/paths.txt") do paths[#paths + 1] = line end
i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", "/" .. paths[i])
end
LUA
rate() { wrk -t2 -c32 -d10s -s "$work/paths.lua" "$1" | sed -n 's/^Requests\/sec: *//p'; }
echo
echo "| static reads, $(wc -l <"$work/paths.txt") tile and bundle paths round-robin (wrk -t2 -c32 -d10s) | requests/s |"
echo "|---|---|"
echo "| nginx 1.22, the published directory | $(rate "http://127.0.0.1:$port") |"
echo "| lesson-ledger serve | $(rate "$url") |"
echo "(sizes sampled in $work/file.csv)"

# 3. The same, to S3-compatible object storage: moto's server on loopback (`pip install
# 'moto[server]'`), a bucket readable by anyone, the publisher pointed at it by the
# AWS_* environment as a user would (`s3` is a default feature).
kill "$demo_pid" "$nginx_pid" 2>/dev/null || true
if ! command -v "$MOTO_SERVER" >/dev/null; then
    echo "S3 run skipped: no $MOTO_SERVER (python3 -m pip install 'moto[server]')"
    exit 0
fi
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto="http://127.0.0.1:$moto_port"
mkdir -p "$work/moto"
(cd "$work/moto" && exec "$MOTO_SERVER" -H 127.0.0.1 -p "$moto_port" >moto.log 2>&1) &
pids+=($!)
for _ in $(seq 1 300); do curl -sf "$moto/" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT "$moto/ledger-site" >/dev/null
curl -sf -X PUT -H 'Content-Type: application/json' "$moto/ledger-site?policy" --data-binary \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::ledger-site/*"}]}' >/dev/null
export AWS_ENDPOINT="$moto" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=figures AWS_SECRET_ACCESS_KEY=figures-secret
s3_size() { curl -sf "$moto/ledger-site/city/checkpoint" | sed -n 2p || echo 0; }
echo
echo "| publishing to S3 (moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null), loopback) alongside the writer | |"
echo "|---|---|"
follow_run s3 "s3://ledger-site/city" s3_size
echo "(sizes sampled in $work/s3.csv)"
