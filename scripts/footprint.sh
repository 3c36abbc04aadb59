#!/usr/bin/env bash
# Issue 15's footprint figures without the 65-minute city demo: a synthetic ledger of
# about ENTRIES entries (the `ledger_rules` workload: registrations, double-signed
# claims, allocations, lessons, every entry through the real rules and signatures),
# then `serve` opened on it: the open time (start to the first /checkpoint answer) and
# its resident memory after open (VmRSS, RssAnon, RssFile from /proc), per state object
# and per logged entry, next to the target: 3 GB resident for the city's ~11 M objects
# and 4.9 M entries (273 bytes an object, all of it counted against the objects).
#   scripts/footprint.sh [entries] [dir]
# The ledger is kept in DIR and reused when present (so that several binaries can be
# compared on one ledger: LEDGER_BIN=/path/to/lesson-ledger scripts/footprint.sh N DIR).
set -euo pipefail
entries=${1:-500000}
dir=${2:-/tmp/footprint-$entries}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
ledger_bin "$root"
if [[ ! -f "$dir/footprint.txt" ]]; then
  rm -rf "$dir"
  (cd "$root" && LEDGER_BENCH_ENTRIES=$entries LEDGER_BENCH_FOOTPRINT=$dir \
    cargo bench --bench ledger_rules 2>/dev/null) | grep '^footprint ledger' >"$dir.txt"
  mv "$dir.txt" "$dir/footprint.txt"
fi
cat "$dir/footprint.txt"
read -r n_entries n_objects < <(sed -E 's/^footprint ledger: ([0-9]+) entries, ([0-9]+) objects.*/\1 \2/' "$dir/footprint.txt")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s.%N)
RUST_LOG=${RUST_LOG:-info} "${bin[@]}" serve --data "$dir" --addr "127.0.0.1:$port" >"$dir.serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null && wait $pid || true' EXIT # and wait for its close (which seals the state map)
until curl -sf "http://127.0.0.1:$port/checkpoint" >/dev/null; do
  kill -0 $pid 2>/dev/null || { cat "$dir.serve.log"; exit 1; }
  sleep 0.05
done
open=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
# A clean close seals the state map for the next open (which then reads the objects
# only); the first open of a ledger, or one after a crash, rebuilds it. The open logs which.
case $(sed 's/\x1b\[[0-9;]*m//g' "$dir.serve.log" | grep -o 'map_reused=[a-z]*' | tail -1) in
  map_reused=true) map="reused (sealed by the last close)" ;;
  map_reused=false) map="rebuilt from the objects" ;;
  *) map="rebuilt, with the state, from the log (no state of this version was stored)" ;;
esac
sleep 2 # let the open's transient buffers go back to the allocator
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
rss=$(kib VmRSS) anon=$(kib RssAnon) file=$(kib RssFile) hwm=$(kib VmHWM)
python3 - "$n_entries" "$n_objects" "$rss" "$anon" "$file" "$hwm" "$open" "$map" <<'PY'
import sys
entries, objects, rss, anon, file, hwm = (int(x) for x in sys.argv[1:7])
open_s = float(sys.argv[7])
limit_obj = 3e9 / 11e6
print(f"state map: {sys.argv[8]}")
print(f"serve after open: VmRSS {rss/1024:.0f} MiB (anon {anon/1024:.0f}, file {file/1024:.0f}), peak {hwm/1024:.0f} MiB, open {open_s:.2f} s (target <= 10 s at 11 M objects)")
print(f"  per object: {rss*1024/objects:.0f} bytes resident, {anon*1024/objects:.0f} anon (target <= {limit_obj:.0f} = 3 GB / 11 M objects)")
print(f"  per entry:  {rss*1024/entries:.0f} bytes resident, {anon*1024/entries:.0f} anon (3 GB / 4.9 M entries = {3e9/4.9e6:.0f})")
print(f"  at 11 M objects, linearly: {rss*1024/objects*11e6/1e9:.2f} GB resident (target <= 3 GB)")
PY
