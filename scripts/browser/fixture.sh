#!/usr/bin/env bash
# Builds the browser tests' own ledger with the real CLI (init, keygen, sign, append):
# an association, a closed institution, a donor, one student (stu-web-01) with a claim, an approved
# pledge, an allocation, one lesson held and three lessons proposed and waiting on the
# family within the national 15-day window. Then forks it: DIR/fork-a and DIR/fork-b
# are the same history plus one different entry each, signed by the same operator key
# (a rewritten history, for the test that catches one).
#
# Usage: fixture.sh BIN DIR   (DIR/ledger, DIR/keys/stu-web-01.key, DIR/fork-{a,b})
# Entry payloads follow schemas/entries/; when the entry format changes, change them here.
set -euo pipefail
BIN=$1
DIR=$2
L=$DIR/ledger
K=$DIR/keys
PT=application/vnd.lesson-ledger.entry+json
mkdir -p "$K" "$DIR/entries"
"$BIN" init --data "$L" --origin lessons.example/browser-tests >/dev/null
for name in assoc-web inst-web-closed inst-web-donor stu-web-01 stu-web-08 stu-web-09; do
  "$BIN" keygen --name "$name" --out "$K/$name" >/dev/null
done
n=0
# entry PAYLOAD SIGNER... : signs PAYLOAD (JSON text) into the next envelope file.
entry() {
  local payload=$1
  shift
  local signers=()
  for s in "$@"; do
    if [ "$s" = operator ]; then signers+=(--signer "$L/operator"); else signers+=(--signer "$K/$s"); fi
  done
  n=$((n + 1))
  printf '%s' "$payload" > "$DIR/entries/$n.json"
  "$BIN" sign "${signers[@]}" --payload-type "$PT" "$DIR/entries/$n.json" > "$DIR/entries/$n.envelope.json"
}
register() {
  entry "{\"kind\":\"party_registered\",\"id\":\"party_registered.$1\",\"party\":\"$1\",\"role\":\"$2\",\"key\":\"$(cat "$K/$1.pub")\"}" operator "$1"
}
now=$(date +%s)
register assoc-web association
register inst-web-closed institution
register inst-web-donor institution
register stu-web-01 student
entry '{"kind":"institution_closed","id":"institution_closed.inst-web-closed","institution":"inst-web-closed","reason":"closed abnormally, prepaid lessons untaught"}' operator
entry '{"kind":"claim_recorded","id":"claim_recorded.c-web-01","claim":"c-web-01","student":"stu-web-01","institution":"inst-web-closed","lessons":20,"price_per_lesson_fen":15050,"subject":"math","grade":5,"district":"xuhui","evidence_digest":"4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f","accepts_online":true,"accepted_districts":["minhang"]}' operator stu-web-01
entry '{"kind":"institution_whitelisted","id":"institution_whitelisted.inst-web-donor","institution":"inst-web-donor","reason":"approved public-benefit donor"}' operator
entry "{\"kind\":\"pledge_offered\",\"id\":\"pledge_offered.p-web-01\",\"pledge\":\"p-web-01\",\"institution\":\"inst-web-donor\",\"subject\":\"math\",\"grade_min\":4,\"grade_max\":6,\"district\":\"xuhui\",\"seats\":2,\"lessons_per_seat\":10,\"value_per_lesson_fen\":12000,\"valid_from_micros\":$(( (now - 86400) * 1000000 )),\"valid_until_micros\":$(( (now + 300 * 86400) * 1000000 ))}" inst-web-donor
entry '{"kind":"pledge_approved","id":"pledge_approved.p-web-01","pledge":"p-web-01"}' operator
entry '{"kind":"allocation_made","id":"allocation_made.a-web-01","allocation":"a-web-01","claim":"c-web-01","pledge":"p-web-01","lessons":10}' operator
entry '{"kind":"lesson_consumed","id":"lesson_consumed.l-web-00","lesson":"l-web-00","allocation":"a-web-01"}' stu-web-01 inst-web-donor
for l in 01 02 03; do
  entry "{\"kind\":\"lesson_proposed\",\"id\":\"lesson_proposed.l-web-$l\",\"lesson\":\"l-web-$l\",\"allocation\":\"a-web-01\"}" inst-web-donor
done
for i in $(seq 1 $n); do
  out=$("$BIN" append --data "$L" "$DIR/entries/$i.envelope.json")
  case "$out" in *'"ok"'*) ;; *) echo "fixture entry $i refused: $out" >&2; exit 1 ;; esac
done
# The fork: two copies of the same history, each extended by a different entry.
for side in a b; do
  cp -r "$L" "$DIR/fork-$side"
done
fork() {
  n=$((n + 1))
  local who=$2
  printf '{"kind":"party_registered","id":"party_registered.%s","party":"%s","role":"student","key":"%s"}' "$who" "$who" "$(cat "$K/$who.pub")" > "$DIR/entries/$n.json"
  "$BIN" sign --signer "$1/operator" --signer "$K/$who" --payload-type "$PT" "$DIR/entries/$n.json" > "$DIR/entries/$n.envelope.json"
  "$BIN" append --data "$1" "$DIR/entries/$n.envelope.json" >/dev/null
}
fork "$DIR/fork-a" stu-web-08
fork "$DIR/fork-b" stu-web-09
echo "fixture: $n entries in $L; forks in $DIR/fork-a, $DIR/fork-b"
