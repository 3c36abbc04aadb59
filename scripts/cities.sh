#!/usr/bin/env bash
# Many cities (issue 17): N city ledgers, each written by its own `lesson-ledger demo`
# (its own sequencer and operator key) while its own `lesson-ledger publish --data
# --follow` publishes it into one root that Debian's nginx serves; then `lesson-ledger
# national` reads every city from nginx, verifies its checkpoint, state note and pool
# proof, and prints each city's pool, claims and coverage with the national totals.
# Prints the wall time of each phase and the peak RSS of the whole run (the sum over
# every process of the run, sampled every 0.5 s).
#
# Usage: scripts/cities.sh [N] [tiny|small]   (N >= 1, default 20; scale default tiny)
#   LEDGER_BIN: the binary (default: scripts/lib.sh's choice); PARALLEL: demos writing
#   at once (default N); NGINX: the nginx binary; KEEP_WORK=1 keeps the work directory.
#   Loopback only; every wait is bounded.
set -euo pipefail
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$root_dir/scripts/lib.sh"
ledger_bin "$root_dir"
N="${1:-20}"
SCALE="${2:-tiny}"
PARALLEL="${PARALLEL:-$N}"
NGINX="${NGINX:-/usr/sbin/nginx}"
SECONDS_MAX=1800
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive number" >&2; exit 2; }
[[ "$SCALE" == tiny || "$SCALE" == small ]] || { echo "scale: tiny or small" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "needs nginx (apt-get install nginx)" >&2; exit 2; }
work=$(mktemp -d)
chmod 755 "$work"
mkdir -p "$work/www" "$work/keys"
chmod 755 "$work/www"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -z "${KEEP_WORK:-}" ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# The summed RSS (KiB) of every process below this script.
rss_now() {
  ps -e -o pid=,ppid=,rss= | awk -v top=$$ '
    { parent[$1] = $2; rss[$1] = $3 }
    END {
      for (p in parent) { q = p; while (q in parent && q != top && q > 1) q = parent[q];
                          if (q == top && p != top) sum += rss[p] }
      print sum + 0 }'
}
peak=0
sample() { local r; r=$(rss_now); ((r > peak)) && peak=$r; return 0; }
clock() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.${2:-1}f\", $(clock) - $1}"; }
city() { printf "city-%02d" "$1"; }

echo "== $N cities at scale $SCALE ($(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(clock)

# 1. Each city: its demo writes its ledger; once the ledger exists, its publisher follows.
demos=()
next=1
start_demo() {
  local n=$1 c
  c=$(city "$n")
  "${bin[@]}" demo --scale "$SCALE" --seed "$((1000 + n))" --data "$work/$c" \
    >"$work/$c.demo.out" 2>&1 &
  demos+=($!)
  pids+=($!)
}
publishers=()
started_publisher=()
start_publisher() {
  local n=$1 c
  c=$(city "$n")
  "${bin[@]}" publish --data "$work/$c/ledger" --work "$work/$c.publish-work" \
    --to "file://$work/www/$c" --follow --interval-ms 1000 >"$work/$c.publish.out" 2>&1 &
  publishers+=($!)
  pids+=($!)
  started_publisher[$n]=1
}
while :; do
  running=0
  for p in "${demos[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
  while ((next <= N && running < PARALLEL)); do
    start_demo "$next"; next=$((next + 1)); running=$((running + 1))
  done
  for n in $(seq 1 "$N"); do
    c=$(city "$n")
    if [[ -z "${started_publisher[$n]:-}" && -f "$work/$c/ledger/log.json" ]]; then
      start_publisher "$n"
    fi
  done
  sample
  ((running == 0 && next > N)) && break
  awk "BEGIN{exit !($(clock) - $t0 > $SECONDS_MAX)}" && { echo "timed out" >&2; exit 1; }
  sleep 0.5
done
for p in "${demos[@]}"; do
  wait "$p" || { echo "a demo failed:" >&2; tail -n 20 "$work"/city-*.demo.out >&2; exit 1; }
done
t_written=$(since "$t0")

# 2. Every publisher catches up with its ledger's last checkpoint, then stops.
t1=$(clock)
for n in $(seq 1 "$N"); do
  c=$(city "$n")
  [[ -n "${started_publisher[$n]:-}" ]] || start_publisher "$n"
  "${bin[@]}" key --data "$work/$c/ledger" >"$work/keys/$c.pub"
done
entries=0
for n in $(seq 1 "$N"); do
  c=$(city "$n")
  want=$("${bin[@]}" checkpoint --data "$work/$c/ledger" | sed -n 2p)
  entries=$((entries + want))
  until [[ "$(sed -n 2p "$work/www/$c/checkpoint" 2>/dev/null)" == "$want" ]]; do
    sample
    awk "BEGIN{exit !($(clock) - $t0 > $SECONDS_MAX)}" && { echo "$c: publisher behind" >&2; exit 1; }
    sleep 0.2
  done
done
for p in "${publishers[@]}"; do kill "$p" 2>/dev/null || true; done
t_published=$(since "$t1")

# 3. nginx serves the root; the national view reads every city from it.
nginx_start "$work/nginx" "$work/www" 1
pids+=("$nginx_pid")
port=$nginx_port
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/$(city 1)/checkpoint" >/dev/null && break; sleep 0.1; done
for n in $(seq 1 "$N"); do
  c=$(city "$n")
  echo "$c=http://127.0.0.1:$port/$c=keys/$c.pub"
done >"$work/cities.txt"
t2=$(clock)
sample
"${bin[@]}" national --cities-file "$work/cities.txt" --json >"$work/national.json"
t_national=$(since "$t2" 3)
"${bin[@]}" national --cities-file "$work/cities.txt"
sample

echo
echo "| phase | wall time |"
echo "|---|---|"
echo "| $N demos writing ($SCALE, $PARALLEL at once), publishers following | ${t_written} s |"
echo "| publishers catching up with the last checkpoints | ${t_published} s |"
echo "| national view: $N cities read from nginx and verified | ${t_national} s |"
echo "| whole run | $(since "$t0") s |"
echo "| entries, all cities | $entries |"
echo "| peak RSS, every process of the run summed | $((peak / 1024)) MiB |"
python3 - "$work/national.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = r["national"]
print(f"| cities verified / failed | {n['cities_verified']} / {n['cities_failed']} |")
f = n["figures"]
cov = f["coverage"]
print(f"| national claims value | {f['claims']['value']} fen |")
print(f"| national pledged | {f['pool']['pledged']} fen |")
print(f"| national coverage (secured, pledged) | {cov['secured']:.3f}, {cov['pledged']:.3f} |")
PY
if [[ -n "${KEEP_WORK:-}" ]]; then echo "(kept: $work)"; fi
