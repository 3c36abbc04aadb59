#!/usr/bin/env bash
# Publishing figures (issue 17), printed as Markdown:
#  1. entries/s appended vs published in one run: `lesson-ledger demo` writes through
#     its server while `lesson-ledger publish --follow` copies each new checkpoint to a
#     directory; both sizes are sampled every 0.2 s.
#  2. static reads of the same tiles and bundles from Debian's nginx (serving the
#     published directory) and from `serve`, with the same client (wrk, round-robin over
#     every published tile and bundle path).
# Usage: scripts/publish-figures.sh [tiny|small]   (LEDGER_BIN: the binary; default
# target/release/lesson-ledger). Loopback only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
SCALE="${1:-small}"
BIN="${LEDGER_BIN:-target/release/lesson-ledger}"
NGINX="${NGINX:-/usr/sbin/nginx}"
SECONDS_MAX=900
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "needs nginx (apt-get install nginx)" >&2; exit 2; }
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

size_of() { sed -n 2p "$1" 2>/dev/null || echo 0; }

# 1. The demo writes; the publisher follows.
"$BIN" demo --scale "$SCALE" --data "$work/demo" --keep-serving >"$work/demo.out" 2>&1 &
pids+=($!)
url=""
for _ in $(seq 1 600); do
    url=$(sed -n 's/^serving the ledger at //p' "$work/demo.out" | head -1)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "the demo did not start" >&2; cat "$work/demo.out" >&2; exit 1; }
mkdir -p "$work/site"
"$BIN" publish --from "$url" --to "file://$work/site" --follow --interval-ms 50 >"$work/publish.out" 2>&1 &
pids+=($!)
start=$(date +%s.%N)
: >"$work/samples.csv"
last_move=$start
last_size=-1
while :; do
    now=$(date +%s.%N)
    served=$(curl -sf "$url/checkpoint" | sed -n 2p || echo "$last_size")
    published=$(size_of "$work/site/checkpoint")
    echo "$(awk "BEGIN{print $now - $start}"),$served,${published:-0}" >>"$work/samples.csv"
    if [ "$served" != "$last_size" ]; then last_size=$served; last_move=$now; fi
    # Done when the writer has been idle 5 s and the publisher has caught up.
    if grep -q "keeps serving" "$work/demo.out" && [ "$published" = "$served" ] \
        && awk "BEGIN{exit !($now - $last_move > 5)}"; then break; fi
    awk "BEGIN{exit !($now - $start > $SECONDS_MAX)}" && { echo "timed out" >&2; exit 1; }
    sleep 0.2
done
kill "${pids[1]}"
python3 - "$work/samples.csv" <<'PY'
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
echo "(sizes sampled in $work/samples.csv)"
