#!/usr/bin/env bash
# scripts/nightly-audit.sh: what a consumer association runs each night against the
# ledger it watches. As long as `verify --url` on the log (the small demo's: ~10 s).
#
#   scripts/nightly-audit.sh URL VKEY [STATE_DIR]      (STATE_DIR default ./nightly-audit)
#
# VKEY is the operator's verifier key, obtained independently (the genesis as published,
# or the association's own records): the audit never takes it from the server.
# 1. `lesson-ledger verify --url URL --operator-key VKEY --state STATE_DIR/state.json`:
#    the served checkpoint under VKEY, every entry's signatures, the root recomputed from
#    the tiles; and, from the second night on, consistency with the checkpoint audited
#    last (kept in state.json), computed: its root recomputed from today's entries at its
#    size (no proof taken from the server): a log that rolled back or forked is a finding.
#    state.json moves forward only after a clean audit, so a finding stays one every
#    night until someone looks.
# 2. A dated report, STATE_DIR/reports/<UTC time, ms>.txt: what was audited, or the finding
#    with the checkpoint served now next to the one audited before (two checkpoints the
#    same key signed that are not consistent are the evidence of a fork).
# Exits 0 when clean, 1 on any finding, 2 on a usage error. LEDGER_BIN: the binary
# (default target/release, else target/debug, else `cargo run --release`).
#    The rules are replayed on every entry served, and the operator's signed state note of
#    the checkpoint's size must hold the replayed state map root.
# ASSOCIATION_KEYS="VKEY1 VKEY2": the consumer associations' registered verifier keys; the
# checkpoint audited must then carry WITNESSES (default 1) of their verified cosignatures
# (`verify --association-key … --witnesses K`), so a view no association has checked is a
# finding. Without them, the operator's signature alone is checked (said in the report).
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 URL VKEY [STATE_DIR]" >&2
  exit 2
fi
url=${1%/}
vkey=$2
state_dir=${3:-./nightly-audit}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
ledger_bin "$root"

mkdir -p "$state_dir/reports"
stamp=$(date -u +%Y-%m-%dT%H%M%S.%3NZ)
report="$state_dir/reports/$stamp.txt"
n=1
while [[ -e "$report" ]]; do # two audits in one second: keep both
  n=$((n + 1))
  report="$state_dir/reports/$stamp-$n.txt"
done
state="$state_dir/state.json"
before=""
# The checkpoint in state.json (serde_json's layout; shown in the report only).
audited() { sed -n 's/^ *"checkpoint": "\(.*\)",\{0,1\}$/\1/p' "$state" | sed 's/\\n/\n/g'; }
[[ -f "$state" ]] && before=$(audited)

{
  echo "nightly audit of $url at $stamp"
  echo "operator key: $vkey"
  if [[ -n "$before" ]]; then
    echo "last audited checkpoint:"
    echo "$before" | sed 's/^/  /'
  else
    echo "first audit: no checkpoint audited before (state: $state)"
  fi
} >"$report"

witness_args=()
for key in ${ASSOCIATION_KEYS:-}; do
  witness_args+=(--association-key "$key")
done
if [[ ${#witness_args[@]} -gt 0 ]]; then
  witness_args+=(--witnesses "${WITNESSES:-1}")
  echo "association cosignatures required: ${WITNESSES:-1} of ${ASSOCIATION_KEYS}" >>"$report"
elif [[ -n "${WITNESSES:-}" && "${WITNESSES}" != 0 ]]; then
  echo "nightly-audit: WITNESSES=$WITNESSES needs ASSOCIATION_KEYS" >&2
  exit 2
else
  echo "association cosignatures: not required (no ASSOCIATION_KEYS)" >>"$report"
fi

status=0
out=$("${bin[@]}" verify --url "$url" --operator-key "$vkey" --state "$state" ${witness_args[@]+"${witness_args[@]}"} 2>&1) || status=$?
if [[ $status -eq 0 ]]; then
  {
    echo "result: PASS"
    echo "$out" | sed 's/^/  /'
    echo "checkpoint audited now:"
    audited | sed 's/^/  /'
  } >>"$report"
  echo "nightly-audit: PASS: $(echo "$out" | tail -n 1) (report $report)"
  exit 0
fi

served=$(curl -fsS --max-time 30 "$url/checkpoint" 2>&1 || echo "(not served: $?)")
{
  echo "result: FINDING (verify exited $status)"
  echo "$out" | sed 's/^/  /'
  echo "checkpoint served now:"
  echo "$served" | sed 's/^/  /'
} >>"$report"
echo "nightly-audit: FINDING: $(echo "$out" | tail -n 1) (report $report)" >&2
exit 1
