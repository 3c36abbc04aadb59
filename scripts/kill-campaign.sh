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
# How long: 1000 kills took 37 min (2,217 s; 106,451 entries acknowledged) with the
# debug build on two cores shared with seven other builds: 0.4 s a kill while the log
# is small, up to 6 s under load once it holds ~100k entries (each restart recovers
# it), plus the final verify. `cargo test` runs 3 kills in about 3 s.
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
