#!/usr/bin/env bash
# Builds the browser tests' own ledger (entry format v2, schemas/README.md §10) with the
# real CLI (keygen, init, sign, append): the genesis declaring an association (assoc-0a,
# which co-signs it), a closed institution, a donor, one student (stu-0eb01) with a claim
# (co-signed by the association), an approved pledge, an allocation made by hand (so
# co-signed by the association), one lesson held, three lessons proposed and waiting
# on the family within the national 15-day window, two disputed (one upheld by the
# operator, one open), and a second approved course (art, minhang). Then forks it: DIR/fork-a and
# DIR/fork-b are the same history plus one different entry each, signed by the same
# operator key (a rewritten history, for the test that catches one).
#
# Usage: fixture.sh BIN DIR   (DIR/ledger, DIR/keys/stu-0eb01.key, DIR/fork-{a,b})
# Entry payloads follow schemas/entries/; when the entry format changes, change them here.
set -euo pipefail
BIN=$1
DIR=$2
L=$DIR/ledger
K=$DIR/keys
PT=application/vnd.lesson-ledger.entry.v2+json
mkdir -p "$K" "$DIR/entries"
ORIGIN=lessons.example/browser-tests
# Party ids are opaque hex (§10.3); a key's name is its party's id.
for name in assoc-0a inst-0c105e inst-0d0a0e stu-0eb01 stu-0eb08 stu-0eb09; do
  "$BIN" keygen --name "$name" --out "$K/$name" >/dev/null
done
"$BIN" init --data "$L" --origin "$ORIGIN" --association "$K/assoc-0a" >/dev/null
n=0
# entry PAYLOAD SIGNER... : signs PAYLOAD (JSON text of an object) into the next envelope
# file, with `"ledger"` naming this ledger (§10.1) added here for every entry.
entry() {
  local payload="{\"ledger\":\"$ORIGIN\",${1#\{}"
  shift
  local signers=()
  for s in "$@"; do
    if [ "$s" = operator ]; then signers+=(--signer "$L/operator"); else signers+=(--signer "$K/$s"); fi
  done
  n=$((n + 1))
  printf '%s' "$payload" > "$DIR/entries/$n.json"
  "$BIN" sign "${signers[@]}" --payload-type "$PT" "$DIR/entries/$n.json" > "$DIR/entries/$n.envelope.json"
}
# register PARTY ROLE: signed by the operator, the association and the new key (§10.2).
register() {
  entry "{\"kind\":\"party_registered\",\"id\":\"party_registered.$1\",\"party\":\"$1\",\"role\":\"$2\",\"key\":\"$(cat "$K/$1.pub")\"}" operator assoc-0a "$1"
}
now=$(date +%s)
register inst-0c105e institution
register inst-0d0a0e institution
register stu-0eb01 student
entry '{"kind":"institution_closed","id":"institution_closed.inst-0c105e","institution":"inst-0c105e","reason":"abnormal_closure"}' operator
entry '{"kind":"claim_recorded","id":"claim_recorded.c-web-01","claim":"c-web-01","student":"stu-0eb01","institution":"inst-0c105e","lessons":20,"price_per_lesson_fen":15050,"subject":"math","grade":5,"district":"xuhui","evidence_digest":"4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f","accepts_online":true,"accepted_districts":["minhang"]}' operator assoc-0a stu-0eb01
entry '{"kind":"institution_whitelisted","id":"institution_whitelisted.inst-0d0a0e","institution":"inst-0d0a0e","reason":"approved_donor"}' operator
entry "{\"kind\":\"pledge_offered\",\"id\":\"pledge_offered.p-web-01\",\"pledge\":\"p-web-01\",\"institution\":\"inst-0d0a0e\",\"subject\":\"math\",\"grade_min\":4,\"grade_max\":6,\"district\":\"xuhui\",\"seats\":2,\"lessons_per_seat\":10,\"value_per_lesson_fen\":12000,\"valid_from_micros\":$(( (now - 86400) * 1000000 )),\"valid_until_micros\":$(( (now + 300 * 86400) * 1000000 ))}" inst-0d0a0e
entry '{"kind":"pledge_approved","id":"pledge_approved.p-web-01","pledge":"p-web-01"}' operator
entry '{"kind":"allocation_made","id":"allocation_made.a-web-01","allocation":"a-web-01","claim":"c-web-01","pledge":"p-web-01","lessons":10}' operator assoc-0a
entry '{"kind":"lesson_consumed","id":"lesson_consumed.l-web-00","lesson":"l-web-00","allocation":"a-web-01"}' stu-0eb01 inst-0d0a0e
for l in 01 02 03 05 06; do
  entry "{\"kind\":\"lesson_proposed\",\"id\":\"lesson_proposed.l-web-$l\",\"lesson\":\"l-web-$l\",\"allocation\":\"a-web-01\"}" inst-0d0a0e
done
# Two disputes: one the operator upheld (the lesson is void), one still open.
entry '{"kind":"lesson_disputed","id":"lesson_disputed.l-web-05","dispute":"d-web-05","lesson":"l-web-05","reason":"not_attended"}' stu-0eb01
entry '{"kind":"dispute_resolved","id":"dispute_resolved.d-web-05","dispute":"d-web-05","outcome":"upheld","reason":"delivery_not_proven"}' operator
entry '{"kind":"lesson_disputed","id":"lesson_disputed.l-web-06","dispute":"d-web-06","lesson":"l-web-06","reason":"wrong_course"}' stu-0eb01
# A second course of the donor, in another subject and district, for the family's choice.
entry "{\"kind\":\"pledge_offered\",\"id\":\"pledge_offered.p-web-02\",\"pledge\":\"p-web-02\",\"institution\":\"inst-0d0a0e\",\"subject\":\"art\",\"grade_min\":1,\"grade_max\":9,\"district\":\"minhang\",\"seats\":3,\"lessons_per_seat\":8,\"value_per_lesson_fen\":9000,\"valid_from_micros\":$(( (now - 86400) * 1000000 )),\"valid_until_micros\":$(( (now + 300 * 86400) * 1000000 ))}" inst-0d0a0e
entry '{"kind":"pledge_approved","id":"pledge_approved.p-web-02","pledge":"p-web-02"}' operator
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
  printf '{"kind":"party_registered","id":"party_registered.%s","ledger":"%s","party":"%s","role":"student","key":"%s"}' "$who" "$ORIGIN" "$who" "$(cat "$K/$who.pub")" > "$DIR/entries/$n.json"
  "$BIN" sign --signer "$1/operator" --signer "$K/assoc-0a" --signer "$K/$who" --payload-type "$PT" "$DIR/entries/$n.json" > "$DIR/entries/$n.envelope.json"
  out=$("$BIN" append --data "$1" "$DIR/entries/$n.envelope.json")
  case "$out" in *'"ok"'*) ;; *) echo "fork entry of $1 refused: $out" >&2; exit 1 ;; esac
}
fork "$DIR/fork-a" stu-0eb08
fork "$DIR/fork-b" stu-0eb09
echo "fixture: $n entries in $L; forks in $DIR/fork-a, $DIR/fork-b"
