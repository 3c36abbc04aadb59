#!/usr/bin/env bash
# scripts/kill-campaign.sh [KILLS]
#
# The kill campaign: runs the real server (`lesson-ledger serve` on a loopback port)
# under 8 concurrent writers posting single envelopes and batches, SIGKILLs it at a
# random moment (up to 0.4 s into each run), restarts it, KILLS times (default 1000);
# then checks that every acknowledged entry is at its receipt's index, that every
# unacknowledged one answers `ok` or `exists` when resent, and that
# `lesson-ledger verify --data` passes. The driver is the integration test
# `tests/kill_campaign.rs` (which `cargo test` runs with 3 kills).
#
# Environment: LEDGER_KILL_SEED (replay a schedule), KILL_RELEASE=1 (serve with the
# release build; compiles it first).
#
# How long: about 0.5-1 s per kill on two cores (a restart recovers the log, and the
# log grows by a few hundred entries per kill), so ~10-20 minutes for 1000 kills,
# plus the test build and the final verify.
set -euo pipefail

kills="${1:-1000}"
case "$kills" in
  '' | *[!0-9]*) echo "usage: $0 [KILLS]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [[ "${KILL_RELEASE:-0}" == 1 ]]; then
  cargo build --release --bin lesson-ledger
  export LEDGER_KILL_BIN="$root/target/release/lesson-ledger"
fi
export LEDGER_KILL_ROUNDS="$kills"
exec cargo test --test tests kill_campaign:: -- --nocapture
