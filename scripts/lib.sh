# scripts/lib.sh: what the operational scripts share; sourced, never run.
#
# ledger_bin ROOT: sets the array `bin` to the lesson-ledger command: $LEDGER_BIN when set,
# else ROOT's release build, else its debug build, else `cargo run --release`. An array,
# so that the `cargo run` form keeps its arguments apart.
ledger_bin() {
  local root=$1
  if [[ -n "${LEDGER_BIN:-}" ]]; then
    bin=("$LEDGER_BIN")
  elif [[ -x "$root/target/release/lesson-ledger" ]]; then
    bin=("$root/target/release/lesson-ledger")
  elif [[ -x "$root/target/debug/lesson-ledger" ]]; then
    bin=("$root/target/debug/lesson-ledger")
  else
    bin=(cargo run --quiet --release --manifest-path "$root/Cargo.toml" --)
  fi
}
