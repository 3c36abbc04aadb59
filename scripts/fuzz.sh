#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS_PER_TARGET]
# scripts/fuzz.sh build      (only the build: CI starts it early, in the background)
#
# Builds the cargo-fuzz targets of fuzz/ (nightly toolchain; installs cargo-fuzz from
# crates.io if it is missing) and runs each for SECONDS_PER_TARGET seconds (default 10,
# CI's smoke), then prints the executions per target. Each target starts from its
# committed seeds (fuzz/corpus/<target>/) and grows a working corpus in fuzz/work/
# (not committed). A crash, panic or failed assertion saves its input under
# fuzz/artifacts/<target>/ and makes the script exit 1 after the other targets ran:
# turn it into a regression test in tests/fuzz_regressions.rs.
#
# How long: the first release build of the instrumented crate (release, debug
# assertions, address sanitizer, 16 codegen units) takes about 9 min on two free cores;
# later builds take seconds. Then 9 targets x SECONDS_PER_TARGET: 60 s per target adds
# 9 min. CI's smoke (FUZZ_BUILD=dev, 10 s a target) builds in 4.5 min and runs in 2.
set -euo pipefail

secs="${1:-10}"
case "$secs" in
  build) ;;
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET | build]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

# Release build with debug assertions and overflow checks (arithmetic that wraps is a
# finding), 16 codegen units. FUZZ_BUILD=dev (CI's smoke) builds unoptimised instead,
# with the same checks: a cold build in 40% of the time, at a tenth of the executions/s.
case "${FUZZ_BUILD:-release}" in
  release) FLAGS=(-O -a --codegen-units 16) ;;
  dev) FLAGS=(--dev) ;;
  *) echo "FUZZ_BUILD is release or dev" >&2; exit 2 ;;
esac
started=$(date +%s)
cargo +nightly fuzz build "${FLAGS[@]}"
built=$(date +%s)
echo "fuzz.sh: built in $((built - started)) s"
[ "$secs" = build ] && exit 0

failed=()
printf '%-16s %12s %10s %8s\n' target executions exec/s corpus
for target in $(cargo +nightly fuzz list); do
  work="work/$target"
  mkdir -p "$work" "corpus/$target"
  log="work/$target.log"
  if cargo +nightly fuzz run "${FLAGS[@]}" "$target" "$work" "corpus/$target" -- \
    -max_total_time="$secs" -print_final_stats=1 -max_len=65536 >"$log" 2>&1; then
    status=""
  else
    status=" FAILED (see fuzz/$log, input in fuzz/artifacts/$target/)"
    failed+=("$target")
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
  units=$(find "$work" -type f | wc -l)
  printf '%-16s %12s %10s %8s%s\n' "$target" "${execs:-?}" "${rate:-?}" "$units" "$status"
done
echo "fuzz.sh: ${secs} s per target, $(( $(date +%s) - started )) s in all"

if ((${#failed[@]})); then
  echo "fuzz.sh: failures in: ${failed[*]}" >&2
  for target in "${failed[@]}"; do
    tail -40 "work/$target.log" >&2
  done
  exit 1
fi
