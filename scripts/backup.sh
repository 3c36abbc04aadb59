#!/usr/bin/env bash
# scripts/backup.sh: a verified backup of a ledger directory, correct while `serve` runs.
# A few seconds for a small ledger; for a large one about as long as `verify --data` (the
# city ledger's 4.9 M entries: minutes), plus a remote audit when LEDGER_URL is given.
#
#   OPERATOR_KEY=VKEY scripts/backup.sh DATA_DIR DEST   copy, then check the copy
#   OPERATOR_KEY=VKEY scripts/backup.sh --check DEST    check a backup made earlier
#
# 1. `lesson-ledger backup` copies DATA_DIR into DEST/ledger: log.dat up to its last
#    sealed (acknowledged) batch, log.json, operator.pub, the cosignatures of the
#    checkpoints copied; NOT operator.key (set BACKUP_OPERATOR_KEY=1 to copy it too).
#    The copy's latest signed checkpoint goes to DEST/checkpoint.
# 2. `lesson-ledger verify --data DEST/ledger` audits the copy offline against OPERATOR_KEY,
#    the operator's verifier key given here (never taken from the copy or the live
#    directory: whoever could alter them could alter log.json too); DEST/verify.txt.
# 3. The copy's checkpoint must be consistent with the live ledger's: with LEDGER_URL (the
#    server serving DATA_DIR), a remote audit (`verify --url`) that starts from the copy's
#    checkpoint and demands a consistency proof to the checkpoint served now; without it
#    (server stopped), the live log's own checkpoints must include the copy's.
# Exits non-zero if any step fails. LEDGER_BIN: the binary (default target/release, else
# target/debug, else `cargo run --release`).
#
# Keys: the operator key changes only with `rotate-operator-key`; back it up then, once,
# offline (BACKUP_OPERATOR_KEY=1 into a place as protected as the key itself). Association
# keys are the associations' own and never in the ledger directory.
set -euo pipefail

usage() {
  echo "usage: OPERATOR_KEY=VKEY $0 DATA_DIR DEST | --check DEST" >&2
  exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
ledger_bin "$root"

[[ -n "${OPERATOR_KEY:-}" ]] || { echo "backup: OPERATOR_KEY (the operator's verifier key, obtained independently) is required" >&2; usage; }
case "${1:-}" in
  --check) [[ $# -eq 2 ]] || usage; data=""; dest=$2 ;;
  -*|"") usage ;;
  *) [[ $# -eq 2 ]] || usage; data=$1; dest=$2 ;;
esac

# A JSON string of $1 (a key or a signed note: no control characters but newlines).
json_string() {
  local v=${1//\\/\\\\}
  v=${v//\"/\\\"}
  printf '"%s"' "${v//$'\n'/\\n}"
}

fail() {
  echo "backup: FAILED: $*" >&2
  exit 1
}

if [[ -n "$data" ]]; then
  [[ ! -e "$dest" ]] || fail "$dest exists: give a new directory"
  mkdir -p "$dest"
  keys=()
  [[ "${BACKUP_OPERATOR_KEY:-0}" == 1 ]] && keys=(--with-operator-key)
  "${bin[@]}" backup --data "$data" --out "$dest/ledger" "${keys[@]}" >"$dest/checkpoint" \
    || fail "copying $data"
fi
[[ -f "$dest/checkpoint" && -d "$dest/ledger" ]] || fail "$dest is not a backup made by this script"

# 2. The copy, audited offline under the key given (and holding its own checkpoint).
if ! "${bin[@]}" verify --data "$dest/ledger" --operator-key "$OPERATOR_KEY" \
  --checkpoint "$dest/checkpoint" >"$dest/verify.txt" 2>&1; then
  cat "$dest/verify.txt" >&2
  fail "the copy in $dest/ledger does not verify"
fi
size=$(sed -n 2p "$dest/checkpoint")
echo "backup: the copy verifies: $(head -n 1 "$dest/verify.txt")"

# 3. Consistent with the live ledger.
if [[ -n "${LEDGER_URL:-}" ]]; then
  state=$(mktemp)
  trap 'rm -f "$state" "$state.tmp"' EXIT
  # The state file `verify --url --state` keeps, seeded with the copy's checkpoint.
  checkpoint=$(cat "$dest/checkpoint"; echo x) # keep the final newline: it is signed
  printf '{"operator_vkey": %s, "checkpoint": %s}\n' "$(json_string "$OPERATOR_KEY")" \
    "$(json_string "${checkpoint%x}")" >"$state"
  if ! out=$("${bin[@]}" verify --url "$LEDGER_URL" --operator-key "$OPERATOR_KEY" \
    --state "$state" 2>&1); then
    echo "$out" >&2
    fail "the copy (size $size) is not consistent with the ledger served at $LEDGER_URL"
  fi
  echo "backup: consistent with $LEDGER_URL: $(echo "$out" | head -n 1)"
elif [[ -n "$data" ]]; then
  if ! all=$("${bin[@]}" checkpoint --all --data "$data" 2>&1); then
    echo "$all" >&2
    fail "cannot read $data's checkpoints (a server running on it? give LEDGER_URL)"
  fi
  [[ "$all" == *"$(cat "$dest/checkpoint")"* ]] \
    || fail "the copy's checkpoint (size $size) is not one of $data's"
  echo "backup: the copy's checkpoint (size $size) is one of $data's"
else
  echo "backup: no LEDGER_URL: consistency with the live ledger not checked" >&2
fi
echo "backup: OK: $dest (size $size)"
