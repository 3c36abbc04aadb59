#!/usr/bin/env bash
# Issue 15's `verify` figure: signatures/s of `lesson-ledger verify --data DIR` (the
# file audit with the replay under the rules and the stored state compared) against
# the machine's limit, raw `verify_strict` on all cores, measured just before and just
# after each verify in the same run; and its wall time.
#   scripts/verify-figures.sh [ENTRIES] [RUNS] [DIR]
# The ledger (about ENTRIES entries, default 1,000,000, of the benches' realistic
# workload, signed by real keys and appended through the library) is made once in DIR
# (default /tmp/verify-figures-ENTRIES) by `cargo bench --bench verify_figures`, and
# kept. The binary is $LEDGER_BIN, else this tree's release build (built if missing).
# Several binaries, alternated run by run (A/B): LEDGER_BINS="base:/path new:/path".
set -euo pipefail
entries=${1:-1000000}
runs=${2:-3}
dir=${3:-/tmp/verify-figures-$entries}
cd "$(dirname "$0")/.."
limit() {
  cargo bench --quiet --bench verify_figures 2>/dev/null | sed -n 's/^limit: .*: \([0-9]*\) sig\/s$/\1/p'
}
VERIFY_BENCH_DIR=$dir VERIFY_BENCH_ENTRIES=$entries cargo bench --quiet --bench verify_figures
if [[ -z "${LEDGER_BINS:-}" ]]; then
  if [[ -z "${LEDGER_BIN:-}" ]]; then
    cargo build --quiet --release --bin lesson-ledger
  fi
  LEDGER_BINS="verify:${LEDGER_BIN:-target/release/lesson-ledger}"
fi
printf '%-8s %4s %9s %11s %9s %9s %6s  %s\n' binary run wall_s signatures sig/s limit share load
for run in $(seq 1 "$runs"); do
  for named in $LEDGER_BINS; do
    name=${named%%:*} bin=${named#*:}
    before=$(limit)
    start=$(date +%s.%N)
    out=$("$bin" verify --data "$dir" 2>/dev/null)
    wall=$(echo "$(date +%s.%N) - $start" | bc -l)
    after=$(limit)
    sigs=$(echo "$out" | sed -n 's/^ok: [0-9]* entries, \([0-9]*\) signatures.*/\1/p')
    rate=$(echo "$sigs / $wall" | bc -l)
    lim=$(echo "($before + $after) / 2" | bc -l)
    printf '%-8s %4d %9.2f %11d %9.0f %9.0f %5.1f%%  %s\n' "$name" "$run" "$wall" "$sigs" \
      "$rate" "$lim" "$(echo "100 * $rate / $lim" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
echo "$out"
