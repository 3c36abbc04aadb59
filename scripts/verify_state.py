#!/usr/bin/env python3
"""Independent verifier of a Lesson Ledger's state, written from the specification alone.

It reads nothing of the project's code: only `schemas/README.md` (the record file, the
leaf, signed notes) and `schemas/RULES.md` (the state tables, the canonical encoding, the
state map, and every entry kind's rules). It

1. reads the record file `DIR/log.dat` (schemas/README.md §7.1): every leaf, state note
   and checkpoint, in order;
2. replays every entry under the rules (RULES.md §5), keeping every state object as the
   JSON value RULES.md §2 defines, and refusing an entry the rules refuse (with the
   refusal code and the entry's index);
3. at every state note: checks its size, its signature by the operator's live key (taken
   from the replayed state, RULES.md §5.4.3), and recomputes its root — the state map root
   (RULES.md §4, header `lesson-ledger/state-map/v1`) or, with `--legacy-digest`, the
   LtHash16 state digest of header `lesson-ledger/state-digest/v1`;
4. with `--check-proof FILE`: checks the state proofs of a balance response (RULES.md
   §4.3) against its signed state note, and, when the ledger was replayed, against the
   replayed root of that size.

Exit status 0 when everything checks; 1 with a message naming the first failure (and its
entry index) otherwise; 2 on bad usage.

Needs Python 3.9+, `blake3` (pip) and `cryptography` (pip) for Ed25519. Takes about a
second for the tiny demo (342 entries).
"""

import argparse
import base64
import hashlib
import json
import os
import sys

try:
    import blake3
except ImportError:  # pragma: no cover - reported to the user
    sys.exit("verify_state.py needs the blake3 package: pip install blake3")
try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover
    sys.exit("verify_state.py needs the cryptography package: pip install cryptography")


# The rest of the verifier, beside this file: the encoding and the map, the state and
# its signers, the rule of each kind.
from verify_state_kinds import Rules  # noqa: E402
from verify_state_map import (  # noqa: E402
    Failure, LtHash16, StateMap, bit, canonical_json, framed, leaf_hash, map_key, node_hash,
    verify_proof)
from verify_state_objects import POOL_FIELDS, Refused, State, key_name  # noqa: E402

# ---------------------------------------------------------------------------------------
# schemas/README.md §4: keys and signed notes


def parse_vkey(vkey):
    """(name, key id, 32-byte public key) of a C2SP verifier key `name+hex(id)+b64`."""
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise Failure("key_invalid", f"not a verifier key: {vkey[:80]!r}")
    name, id_hex, b64 = parts
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise Failure("key_invalid", f"not an Ed25519 verifier key: {vkey[:80]!r}")
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_id.hex() != id_hex:
        raise Failure("key_invalid", f"key id does not match: {vkey[:80]!r}")
    return name, key_id, raw[1:]


def split_note(text):
    """(body, [(name, signature bytes)]) of a signed note."""
    sep = text.find("\n\n")
    if sep < 0:
        raise Failure("note_malformed", "a signed note without its blank line")
    body, sigs = text[: sep + 1], []
    for line in text[sep + 2 :].split("\n"):
        if not line:
            continue
        if not line.startswith("\u2014 "):
            raise Failure("note_malformed", f"not a signature line: {line[:60]!r}")
        name, _, b64 = line[2:].rpartition(" ")
        sigs.append((name, base64.b64decode(b64, validate=True)))
    return body, sigs


def note_signed_by(text, vkey):
    """Whether the note carries a valid signature line of `vkey` (and no bad one of it)."""
    name, key_id, pk = parse_vkey(vkey)
    body, sigs = split_note(text)
    public = Ed25519PublicKey.from_public_bytes(pk)
    matched = False
    for sig_name, raw in sigs:
        if sig_name != name or raw[:4] != key_id or len(raw) != 68:
            continue
        try:
            public.verify(raw[4:], body.encode())
        except InvalidSignature:
            return False
        matched = True
    return matched


def parse_state_note(text):
    """(header, origin, size, root bytes) of a state note's body."""
    body, _ = split_note(text)
    lines = body.split("\n")
    if len(lines) != 5 or lines[4] != "":
        raise Failure("state_note_malformed", f"a state note of {len(lines) - 1} lines")
    root = base64.b64decode(lines[3], validate=True)
    if len(root) != 32 or not lines[2].isdigit() or lines[2] != str(int(lines[2])):
        raise Failure("state_note_malformed", "a state note without a size and a 32-byte root")
    return lines[0], lines[1], int(lines[2]), root


# ---------------------------------------------------------------------------------------
# schemas/README.md §2 and §7.1: the leaf and the record file


def parse_leaf(body):
    r = Reader(body)
    if r.u(1) != 1:
        raise Failure("leaf_malformed", "leaf version is not 1")
    index, time_micros = r.u(8), r.u(8)
    ptype = r.take(r.u(2)).decode()
    payload = r.take(r.u(4))
    signers = []
    for _ in range(r.u(1)):
        signers.append(r.take(r.u(2)).decode())
        r.take(64)
    if r.pos != len(body):
        raise Failure("leaf_malformed", f"trailing bytes in leaf {index}")
    return index, time_micros, ptype, payload, signers


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Failure("truncated", "truncated record")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u(self, n):
        return int.from_bytes(self.take(n), "big")


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli, RFC 3720 B.4) of `data`."""
    try:
        import crc32c as fast  # the same function, in C, when installed
        return fast.crc32c(data)
    except ImportError:
        pass
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def records(path):
    """(kind, body) of every record of `log.dat` (schemas/README.md §7.1), CRC-checked."""
    data = open(path, "rb").read()
    if data[:8] not in (b"LLEDGER3", b"LLEDGER2"):  # formats 3 and 2: the same bytes
        raise Failure("records_old_format", f"{path}: not a LLEDGER3 (or LLEDGER2) record file")
    r = Reader(data)
    r.pos = 72
    while r.pos < len(data):
        start = r.pos
        kind, length = r.u(1), r.u(4)
        body = r.take(length)
        if crc32c(data[start : start + 5 + length]) != r.u(4):
            raise Failure("record_damaged", f"record at byte {start}: CRC-32C mismatch")
        yield kind, body


# ---------------------------------------------------------------------------------------
# The replay and the checks


def operator_live_key(state, config):
    party = state.get("party", config["operator"])
    for key in reversed(party["keys"]):
        if state.get("key", key)["revoked_at"] is None:
            return key
    raise Failure("operator_key_missing", "the operator party has no live key")


def replay(data_dir, legacy, trusted_key, quiet):
    hasher = LtHash16() if legacy else StateMap()
    state, rules = State(hasher), Rules()
    leaves, notes, roots = 0, 0, {}
    expected_header = "lesson-ledger/state-digest/v1" if legacy else "lesson-ledger/state-map/v1"
    for kind, body in records(os.path.join(data_dir, "log.dat")):
        if kind == 1:
            index, time_micros, ptype, payload, signers = parse_leaf(body)
            if index != leaves:
                raise Failure("leaf_out_of_order", f"leaf {index} where {leaves} was expected", index)
            try:
                rules.decide(state, index, time_micros, ptype, payload, signers)
            except Refused as e:
                raise Failure("entry_refused", f"entry {index} is refused by the rules: {e}", index) from None
            except (KeyError, TypeError) as e:
                raise Failure("entry_refused", f"entry {index}: malformed_payload ({e!r})", index) from None
            leaves += 1
        elif kind == 3:
            text = body.decode()
            header, origin, size, root = parse_state_note(text)
            if header != expected_header:
                code = "state_note_old_format" if header == "lesson-ledger/state-digest/v1" else "state_note_malformed"
                raise Failure(code, f"state note at size {size} has header {header!r}, not {expected_header!r}"
                              + (" (use --legacy-digest for ledgers of state digest v1)" if code.endswith("old_format") else ""))
            if size != leaves:
                raise Failure("state_note_size", f"state note of size {size} after {leaves} entries")
            if rules.config is None or origin != rules.config["origin"]:
                raise Failure("state_note_origin", f"state note of size {size} names origin {origin!r}")
            key = operator_live_key(state, rules.config)
            if trusted_key and notes == 0 and trusted_key != key:
                raise Failure("operator_key_untrusted", "the genesis operator key is not the key trusted")
            if not note_signed_by(text, key):
                raise Failure("state_note_signature", f"state note at size {size} is not signed by the operator key {key_name(key)}")
            mine = hasher.root()
            if mine != root:
                raise Failure("state_root_mismatch",
                              f"state note at size {size} (after entry {size - 1}): signed root "
                              f"{base64.b64encode(root).decode()}, recomputed {base64.b64encode(mine).decode()}", size - 1)
            roots[size] = mine
            notes += 1
            if not quiet:
                print(f"state note size {size}: root {base64.b64encode(mine).decode()} recomputed")
    return state, rules, leaves, notes, roots


# The balance answers of the HTTP API (`GET /v1/claims/{id}`, …): each object is served as
# `"<field>": {"object": {...}, "proof": {...}}` (or a list of them); its tag and table,
# and the field that holds its id (RULES.md §2).
ANSWER_FIELDS = {
    "claim": ("claim", "claim", "claim"), "claims": ("claim", "claim", "claim"),
    "pledge": ("pledge", "pledge", "pledge"),
    "allocation": ("allocation", "allocation", "allocation"),
    "allocations": ("allocation", "allocation", "allocation"),
    "student": ("student", "student", "student"), "pool": ("pool", "meta", None),
    "liability": ("liability", "liability", "institution"),
    "institution": ("party", "party", "party"),
}


def proofs_in(doc):
    """Every proven object of a balance answer as `{table, id, value, proof}` (`value`
    absent for an absence proof): the API's shapes (`{"object", "proof"}` under a field of
    ANSWER_FIELDS; an absence `{"table", "id", "proof"}`), or that normalized form."""
    if not isinstance(doc, dict):
        raise Failure("proof_malformed", "a balance answer is a JSON object")
    found = []
    if isinstance(doc.get("proof"), dict) and "table" in doc and "id" in doc:
        found.append(doc)
    for field, v in doc.items():
        for item in v if isinstance(v, list) else [v]:
            if not isinstance(item, dict) or not isinstance(item.get("proof"), dict):
                continue
            if "table" in item and "id" in item:
                found.append(item)
            elif "object" in item and field in ANSWER_FIELDS:
                tag, table, id_field = ANSWER_FIELDS[field]
                ident = "pool" if id_field is None else item["object"].get(id_field)
                found.append({"table": table, "id": ident, "value": {tag: item["object"]},
                              "proof": item["proof"]})
            else:
                raise Failure("proof_malformed", f"a proof under {field!r} that names no object")
    return found


def check_proofs(path, operator_key, roots):
    doc = json.load(open(path))
    text = doc.get("state_note") if isinstance(doc, dict) else None
    if not isinstance(text, str):
        raise Failure("proof_malformed", f"{path}: no state_note in the answer")
    header, origin, size, root = parse_state_note(text)
    if header != "lesson-ledger/state-map/v1":
        raise Failure("state_note_old_format", f"{path}: state note header {header!r}")
    if operator_key is None:
        raise Failure("operator_key_missing", "give --operator-key (or --data) to check an answer")
    if not note_signed_by(text, operator_key):
        raise Failure("state_note_signature", f"{path}: the state note is not signed by the operator key")
    if "checkpoint" in doc:
        body, _ = split_note(doc["checkpoint"])
        lines = body.split("\n")
        if lines[0] != origin or lines[1] != str(size):
            raise Failure("state_note_size", f"{path}: the checkpoint is not of the state note's size {size}")
        if not note_signed_by(doc["checkpoint"], operator_key):
            raise Failure("checkpoint_signature", f"{path}: the checkpoint is not signed by the operator key")
    if size in roots and roots[size] != root:
        raise Failure("state_root_mismatch", f"{path}: the state note of size {size} is not the replayed one")
    items = proofs_in(doc)
    for item in items:
        check_one_proof(item, root)
    if not items:
        raise Failure("proof_malformed", f"{path}: no state proof in the answer")
    return size, len(items)


def check_one_proof(item, root):
    """One object's proof (RULES.md §4.3); `value` null or absent asks for absence."""
    proof = item["proof"]
    if set(proof) != {"key", "siblings", "leaf"} or (
        isinstance(proof["leaf"], dict) and set(proof["leaf"]) != {"key", "value_hash"}
    ):
        raise Failure("proof_malformed", f"a proof with members {sorted(proof)}")
    hexes = [proof["key"]] + ([proof["leaf"]["key"], proof["leaf"]["value_hash"]] if proof["leaf"] else [])
    if any(not isinstance(h, str) or h != h.lower() for h in hexes):
        raise Failure("proof_malformed", "hex that is not lowercase")
    try:
        key = bytes.fromhex(proof["key"])
        sib = base64.b64decode(proof["siblings"], validate=True)
        leaf = proof["leaf"]
        leaf = None if leaf is None else (bytes.fromhex(leaf["key"]), bytes.fromhex(leaf["value_hash"]))
    except (KeyError, TypeError, ValueError) as e:
        raise Failure("proof_malformed", f"a proof that does not parse: {e!r}") from None
    name = f"{item.get('table')}/{item.get('id')}"
    if len(key) != 32 or len(sib) % 32 or (leaf and (len(leaf[0]) != 32 or len(leaf[1]) != 32)):
        raise Failure("proof_malformed", f"{name}: hashes of the wrong length")
    if len(sib) > 256 * 32:
        raise Failure("proof_too_deep", f"{name}: {len(sib) // 32} siblings (at most 256)")
    if "table" in item and "id" in item and map_key(item["table"], item["id"]) != key:
        raise Failure("proof_key_mismatch", f"{name}: the proof is for another key")
    siblings = [sib[i : i + 32] for i in range(0, len(sib), 32)]
    if siblings and siblings[-1] == bytes(32):
        raise Failure("proof_malformed", f"{name}: a path that ends beside an empty subtree")
    value = item.get("value")
    if value is None:
        if leaf is not None and leaf[0] == key:
            raise Failure("proof_absent_key_present", f"{name}: the proof shows the key present")
        if leaf is not None and any(bit(leaf[0], j) != bit(key, j) for j in range(len(siblings))):
            raise Failure("proof_leaf_off_path", f"{name}: the proof's leaf is off the key's path")
    elif leaf is None or leaf[0] != key:
        raise Failure("proof_key_absent", f"{name}: an absence proof for an object given with a value")
    elif blake3.blake3(canonical_json(value)).digest() != leaf[1]:
        raise Failure("proof_value_mismatch", f"{name}: the value does not match its proof")
    if not verify_proof(root, key, siblings, leaf):
        raise Failure("proof_root_mismatch", f"{name}: the proof does not lead to the signed root")


def self_test():
    """Recompute the worked example of RULES.md §3 and §4 and find every figure in it."""
    spec_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "schemas", "RULES.md")
    spec = open(spec_path, encoding="utf-8").read()
    pool = {"pool": {k: 0 for k in POOL_FIELDS}}
    pool["pool"].update(claims=1, claims_value=120000, claims_unreserved=120000)
    liability = {"liability": {"institution": "inst-0007", "students": 1, "claims": 1,
                               "lessons_owed": 40, "owed": 120000, "made_good": 0}}
    quota = {"quota": {"party": "stu-3f9a", "day": 0, "entries": 1, "key_changes": 0}}
    objects = [("meta", "pool", pool), ("liability", "inst-0007", liability), ("quota", "stu-3f9a", quota)]
    smap, figures, leaves, hashes = StateMap(), [], {}, {}
    for table, ident, value in objects:
        raw = canonical_json(value)
        key, hashes[ident] = map_key(table, ident), blake3.blake3(raw).digest()
        leaves[ident] = leaf_hash(key, hashes[ident])
        figures += [framed(table, ident).hex(), key.hex(), leaves[ident].hex(), hashes[ident].hex(),
                    f"{key[0]:08b}"]
        if table != "quota":
            figures += [raw.decode(), f"{len(raw)} bytes"]
        smap.write(table, ident, value)
        figures.append(smap.root().hex())
    z = bytes(32)
    n = {6: node_hash(leaves["inst-0007"], leaves["pool"])}
    n[5] = node_hash(n[6], z)
    n[4] = node_hash(z, n[5])
    n[3] = node_hash(n[4], z)
    n[2] = node_hash(z, n[3])
    n[1] = node_hash(n[2], z)
    root = node_hash(n[1], leaves["stu-3f9a"])
    if root != smap.root():
        raise Failure("spec_example", "the nodes of §4.2 do not give the map's root")
    figures += [x.hex() for x in n.values()] + [base64.b64encode(root).decode()]
    kl, k1, k2 = map_key("liability", "inst-0007"), map_key("claim", "c-0001"), map_key("claim", "c-0002")
    kq = map_key("quota", "stu-3f9a")
    checks = [
        ("the liability's proof", verify_proof(root, kl, [leaves["stu-3f9a"], z, z, z, z, z, leaves["pool"]],
                                               (kl, hashes["inst-0007"]))),
        ("the absence of claim/c-0002", verify_proof(root, k2, [n[1]], (kq, hashes["stu-3f9a"]))
         and bit(k2, 0) == bit(kq, 0) == 1),
        ("the absence of claim/c-0001", verify_proof(root, k1, [leaves["stu-3f9a"], n[2]], None)),
        ("no proof with its siblings swapped", not verify_proof(root, k1, [n[2], leaves["stu-3f9a"]], None)),
    ]
    figures += [k1.hex(), base64.b64encode(leaves["stu-3f9a"] + n[2]).decode(), k2.hex()[:8]]
    for what, ok in checks:
        if not ok:
            raise Failure("spec_example", f"{what} of RULES.md §4.3 does not verify")
    missing = [f for f in figures if f not in spec]
    if missing:
        raise Failure("spec_example", f"RULES.md lacks these figures of its example: {missing}")
    escaped = canonical_json({"b": 1, "a": ["x\"\n\u0001\u007f\u00e9", None, True]})
    if escaped != '{"a":["x\\"\\n\\u0001\u007f\u00e9",null,true],"b":1}'.encode():
        raise Failure("spec_example", f"canonical JSON escapes wrongly: {escaped!r}")
    print(f"OK: the worked example of RULES.md (root {root.hex()}) recomputed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="ledger directory (reads DIR/log.dat and DIR/log.json)")
    ap.add_argument("--operator-key", help="the operator verifier key you trust (default: DIR/log.json's)")
    ap.add_argument("--check-proof", metavar="FILE", action="append", default=[],
                    help="a balance response (JSON) whose state proofs to check; repeatable")
    ap.add_argument("--legacy-digest", action="store_true",
                    help="check state notes of format lesson-ledger/state-digest/v1 (LtHash16)")
    ap.add_argument("--dump-state", metavar="FILE", help="write every replayed object, canonical, one a line")
    ap.add_argument("--self-test", action="store_true",
                    help="recompute the worked example of schemas/RULES.md §3-§4")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.self_test:
        try:
            self_test()
        except Failure as e:
            print(f"FAIL {e.code}: {e}", file=sys.stderr)
            return 1
        return 0
    if not args.data and not args.check_proof:
        ap.error("give --data DIR, --check-proof FILE, or both")
    try:
        key = args.operator_key
        roots = {}
        if args.data:
            if key is None:
                key = json.load(open(os.path.join(args.data, "log.json")))["operator_vkey"]
                if not args.quiet:
                    print(f"operator key taken from {args.data}/log.json (give --operator-key to pin one)")
            state, _, leaves, notes, roots = replay(args.data, args.legacy_digest, key, args.quiet)
            if notes == 0:
                raise Failure("no_state_note", "the log holds no state note")
            if args.dump_state:
                with open(args.dump_state, "wb") as f:
                    for (t, i), v in sorted(state.objects.items()):
                        f.write(t.encode() + b" " + i.encode() + b" " + canonical_json(v) + b"\n")
            print(f"OK: {leaves} entries replayed, {notes} state notes, every root recomputed, "
                  f"{len(state.objects)} objects")
        for path in args.check_proof:
            size, n = check_proofs(path, key, roots)
            print(f"OK: {path}: {n} state proofs verified against the signed state note of size {size}")
    except Failure as e:
        where = f" [index {e.index}]" if e.index is not None else ""
        print(f"FAIL {e.code}{where}: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"FAIL io: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
