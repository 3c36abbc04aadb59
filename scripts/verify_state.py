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
   from the replayed state, RULES.md §3.4), and recomputes its root — the state map root
   (RULES.md §4, header `lesson-ledger/state-map/v1`) or, with `--legacy-digest`, the
   LtHash16 state digest of header `lesson-ledger/state-digest/v1`;
4. with `--check-proof FILE`: checks the state proofs of a balance response (RULES.md
   §4.3) against its signed state note, and, when the ledger was replayed, against the
   replayed root of that size.

Exit status 0 when everything checks; 1 with a message naming the first failure (and its
entry index) otherwise; 2 on bad usage.

Needs Python 3.9+, `blake3` (pip) and `cryptography` (pip) for Ed25519.
"""

import argparse
import base64
import hashlib
import json
import os
import struct
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


class Failure(Exception):
    """The ledger (or proof) does not verify: a stable code and a message."""

    def __init__(self, code, message, index=None):
        super().__init__(message)
        self.code = code
        self.index = index


class Refused(Exception):
    """An entry the rules refuse (RULES.md §5): its refusal code."""

    def __init__(self, code, detail=""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


# ---------------------------------------------------------------------------------------
# RULES.md §6: limits
PAYLOAD_TYPE = "application/vnd.lesson-ledger.entry.v2+json"
PAYLOAD_BYTES_MAX = 16384
CLAIM_LESSONS_MAX = 1000
PRICE_PER_LESSON_FEN_MAX = 1_000_000
PLEDGE_SEATS_MAX = 10_000
LESSONS_PER_SEAT_MAX = 1000
CLAIMS_PER_STUDENT_MAX = 64
ACCEPTED_DISTRICTS_MAX = 64
PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX = 1000
PARTY_KEYS_KEPT_MAX = 8
PARTY_ENTRIES_KEPT_MAX = 64
KEY_CHANGES_PER_PARTY_PER_DAY_MAX = 4
ENTRIES_PER_PARTY_PER_DAY_MAX = 200_000
QUOTA_DAY_MICROS = 86_400_000_000
MATCH_RUN_ALLOCATIONS_MAX = 16_000_000
CAP_FEN_MAX = CLAIM_LESSONS_MAX * PRICE_PER_LESSON_FEN_MAX
GRADES = range(1, 13)
U64_MAX = 2**64 - 1

# ---------------------------------------------------------------------------------------
# RULES.md §3: canonical JSON


def _string(s, out):
    out.append('"')
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')


def _canonical(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, str):
        _string(v, out)
    elif isinstance(v, list):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _canonical(x, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, k in enumerate(sorted(v, key=lambda k: k.encode("utf-8"))):
            if i:
                out.append(",")
            _string(k, out)
            out.append(":")
            _canonical(v[k], out)
        out.append("}")
    else:
        raise TypeError(f"no canonical JSON for {type(v).__name__}")


def canonical_json(value):
    """The canonical bytes of a JSON value (RULES.md §3)."""
    out = []
    _canonical(value, out)
    return "".join(out).encode("utf-8")


# ---------------------------------------------------------------------------------------
# RULES.md §4: the state map (and the legacy LtHash16 digest)

ZERO = bytes(32)
KEY_CONTEXT = "lesson-ledger v1 state-map key"
DIGEST_CONTEXT = "lesson-ledger v1 state-digest element"


def framed(table, ident):
    t, i = table.encode(), ident.encode()
    return struct.pack(">I", len(t)) + t + struct.pack(">I", len(i)) + i


def map_key(table, ident):
    return blake3.blake3(framed(table, ident), derive_key_context=KEY_CONTEXT).digest()


def leaf_hash(key, value_hash):
    return blake3.blake3(b"\x00" + key + value_hash).digest()


def node_hash(left, right):
    return blake3.blake3(b"\x01" + left + right).digest()


def bit(key, j):
    return (key[j >> 3] >> (7 - (j & 7))) & 1


def subtree(items, lo, hi, depth):
    """Hash of the subtree at `depth` holding items[lo:hi] (sorted (key, leaf hash))."""
    if lo == hi:
        return ZERO
    if hi - lo == 1:
        return items[lo][1]
    # Keys are sorted, so those whose bit `depth` is 0 come first.
    mid = lo
    while mid < hi and bit(items[mid][0], depth) == 0:
        mid += 1
    return node_hash(subtree(items, lo, mid, depth + 1), subtree(items, mid, hi, depth + 1))


def verify_proof(root, key, siblings, leaf):
    """Recompute the root from a proof (RULES.md §4.3); `leaf` is None or (key, vh)."""
    if len(siblings) > 256:
        raise Failure("proof_malformed", f"a proof of {len(siblings)} siblings (at most 256)")
    h = ZERO if leaf is None else leaf_hash(leaf[0], leaf[1])
    for j in range(len(siblings) - 1, -1, -1):
        h = node_hash(h, siblings[j]) if bit(key, j) == 0 else node_hash(siblings[j], h)
    return h == root


class StateMap:
    """Every state object's map key and leaf hash, kept up to date on each write."""

    def __init__(self):
        self.leaves = {}  # (table, id) -> (key, leaf hash)

    def write(self, table, ident, value):
        k = map_key(table, ident)
        self.leaves[(table, ident)] = (k, leaf_hash(k, blake3.blake3(canonical_json(value)).digest()))

    def root(self):
        items = sorted(self.leaves.values())
        return subtree(items, 0, len(items), 0)


class LtHash16:
    """The legacy state digest (state notes `lesson-ledger/state-digest/v1`)."""

    def __init__(self):
        self.lanes = [0] * 1024
        self.elements = {}  # (table, id) -> element lanes

    @staticmethod
    def element(table, ident, value):
        data = framed(table, ident) + canonical_json(value)
        raw = blake3.blake3(data, derive_key_context=DIGEST_CONTEXT).digest(length=2048)
        return struct.unpack("<1024H", raw)

    def write(self, table, ident, value):
        new = self.element(table, ident, value)
        old = self.elements.get((table, ident))
        lanes = self.lanes
        if old is not None:
            for n in range(1024):
                lanes[n] = (lanes[n] - old[n] + new[n]) & 0xFFFF
        else:
            for n in range(1024):
                lanes[n] = (lanes[n] + new[n]) & 0xFFFF
        self.elements[(table, ident)] = new

    def root(self):
        return blake3.blake3(struct.pack("<1024H", *self.lanes)).digest()


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
    if len(root) != 32 or not lines[2].isdigit():
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


def records(path):
    """(kind, body) of every record of `log.dat`, CRC-checked."""
    try:
        import crc32c  # optional: the CRC is checked when the package is there
    except ImportError:
        crc32c = None
    data = open(path, "rb").read()
    if data[:8] != b"LLEDGER2":
        raise Failure("records_old_format", f"{path}: not a LLEDGER2 record file")
    r = Reader(data)
    r.pos = 72
    while r.pos < len(data):
        start = r.pos
        kind, length = r.u(1), r.u(4)
        body = r.take(length)
        crc = r.u(4)
        if crc32c is not None and crc32c.crc32c(data[start : start + 5 + length]) != crc:
            raise Failure("record_damaged", f"record at byte {start}: CRC mismatch")
        yield kind, body


# ---------------------------------------------------------------------------------------
# RULES.md §2 and §5: the state and the rules


class State:
    """Every state object as its JSON value, with the map (or digest) kept beside."""

    def __init__(self, hasher):
        self.objects = {}  # (table, id) -> {variant: object}
        self.hasher = hasher

    def get(self, table, ident):
        v = self.objects.get((table, ident))
        return None if v is None else next(iter(v.values()))

    def put(self, table, ident, variant, obj):
        value = {variant: obj}
        self.objects[(table, ident)] = value
        self.hasher.write(table, ident, value)


# The table and the tag (variant) of every object kind (RULES.md §2).
TABLE = {
    "config": ("meta", "config"), "pool": ("meta", "pool"), "clock": ("meta", "clock"),
    "entry": ("entry", "entry"), "party": ("party", "party"), "key": ("key", "key"),
    "claim": ("claim", "claim"), "pledge": ("pledge", "pledge"),
    "allocation": ("allocation", "allocation"), "lesson": ("lesson", "lesson"),
    "dispute": ("dispute", "dispute"), "student": ("student", "student"),
    "liability": ("liability", "liability"), "run": ("run", "run"), "quota": ("quota", "quota"),
}
ID_FIELD = {
    "entry": "key", "party": "party", "key": "key", "claim": "claim", "pledge": "pledge",
    "allocation": "allocation", "lesson": "lesson", "dispute": "dispute",
    "student": "student", "liability": "institution", "run": "run", "quota": "party",
}
TOUCHED = {"claim", "pledge", "allocation", "lesson", "dispute"}


class Tx:
    """The writes of one entry over the state before it (RULES.md §5.1)."""

    def __init__(self, state, index):
        self.state, self.index, self.writes = state, index, {}

    def find(self, kind, ident):
        table, _ = TABLE[kind]
        if (table, ident) in self.writes:
            return json.loads(json.dumps(self.writes[(table, ident)][1]))
        found = self.state.get(table, ident)
        if found is not None and next(iter(self.state.objects[(table, ident)])) != kind:
            raise Refused("state_corrupt", f"{table}/{ident} holds another type")
        return None if found is None else json.loads(json.dumps(found))

    def need(self, kind, ident, code):
        obj = self.find(kind, ident)
        if obj is None:
            raise Refused(code, f"{kind} {ident}")
        return obj

    def put(self, kind, obj):
        """Write `obj`; objects that list their entries get this entry's index (§5.1)."""
        if kind in TOUCHED or kind == "party":
            entries = obj["entries"]
            if not entries or entries[-1] != self.index:
                entries.append(self.index)
            if kind == "party":
                del entries[: max(0, len(entries) - PARTY_ENTRIES_KEPT_MAX)]
        table, _ = TABLE[kind]
        ident = {"config": "config", "pool": "pool", "clock": "clock"}.get(kind) or obj[ID_FIELD[kind]]
        self.writes[(table, ident)] = (kind, obj)

    def commit(self):
        for (table, ident), (kind, obj) in sorted(self.writes.items()):
            self.state.put(table, ident, kind, obj)


class Signers:
    """The entry's signer keys resolved to registered parties (RULES.md §5.2)."""

    def __init__(self, tx, keys):
        self.list = []
        for key in keys:
            party = None
            rec = tx.find("key", key)
            if rec is not None:
                if rec["revoked_at"] is not None:
                    raise Refused("key_revoked", key[:40])
                p = tx.need("party", rec["party"], "state_corrupt")
                party = (p["party"], p["role"])
            self.list.append({"key": key, "party": party, "used": False})

    def _require(self, what, ok, cosigner=False):
        found = None
        for s in self.list:
            if s["party"] and ok(*s["party"]):
                s["used"] = True
                found = found or s["party"][0]
        if found:
            return found
        if not cosigner and any(s["party"] and not s["used"] for s in self.list):
            raise Refused("not_authorized", what)
        raise Refused("missing_signature", what)

    def role(self, role):
        return self._require(role, lambda p, r: r == role)

    def cosigner(self, role):
        return self._require(role, lambda p, r: r == role, cosigner=True)

    def party(self, party):
        return self._require(party, lambda p, r: p == party)

    def party_or_role(self, party, role):
        return self._require(f"{party} or {role}", lambda p, r: p == party or r == role)

    def key(self, key):
        for s in self.list:
            if s["key"] == key:
                s["used"] = True
                return
        raise Refused("missing_signature", key[:40])

    def author(self):
        for s in self.list:
            if s["party"]:
                return s["party"][0]
        raise Refused("signer_not_registered" if self.list else "missing_signature")

    def parties(self):
        seen = []
        for s in self.list:
            if s["party"] and s["party"][0] not in [p for p, _ in seen]:
                seen.append(s["party"])
        return seen

    def finish(self):
        for s in self.list:
            if not s["used"]:
                raise Refused("signer_not_registered" if s["party"] is None else "unexpected_signer", s["key"][:40])


def key_name(key):
    return key.split("+", 1)[0]


class Rules:
    """RULES.md §5: one method per entry kind, checks in the order the spec lists."""

    def __init__(self):
        self.config = None

    # -- §5.1 every entry -------------------------------------------------------------
    def decide(self, state, index, time_micros, ptype, payload, signers):
        if ptype != PAYLOAD_TYPE:
            raise Refused("payload_type_unsupported", ptype)
        if len(payload) > PAYLOAD_BYTES_MAX:
            raise Refused("payload_too_large")
        try:
            p = json.loads(payload, object_pairs_hook=_no_duplicates)
        except ValueError as e:
            raise Refused("malformed_payload", str(e)) from None
        if not isinstance(p, dict) or "kind" not in p:
            raise Refused("malformed_payload", "no kind")
        kind = p["kind"]
        rule = getattr(self, "r_" + str(kind), None)
        if rule is None:
            raise Refused("unknown_kind", str(kind)[:40])
        if len(set(signers)) != len(signers):
            raise Refused("duplicate_signer")
        config = state.get("meta", "config")
        if kind == "genesis":
            if config is not None:
                raise Refused("genesis_repeated")
            if index != 0:
                raise Refused("genesis_not_first")
        elif config is None:
            raise Refused("genesis_required")
        if config is not None and p.get("ledger") != config["origin"]:
            raise Refused("wrong_ledger", str(p.get("ledger"))[:64])
        tx = Tx(state, index)
        self.tx, self.index, self.time = tx, index, time_micros
        self.sig = Signers(tx, signers)
        author = p["operator"] if kind == "genesis" else self.sig.author()
        record_key = f"{author}/{p['id']}"
        digest = blake3.blake3(payload).hexdigest()
        first = state.get("entry", record_key)
        if first is not None:
            raise Refused("duplicate_entry" if first["payload_digest"] == digest else "id_reused", p["id"])
        if config is not None:
            self.charge_entry()
        rule(p)
        self.sig.finish()
        tx.put("entry", {"key": record_key, "author": author, "id": p["id"], "index": index,
                         "kind": kind, "payload_digest": digest})
        tx.commit()
        if kind == "genesis":
            self.config = state.get("meta", "config")

    # -- helpers ----------------------------------------------------------------------
    def pool(self):
        return self.tx.find("pool", "pool")

    def quota(self, party):
        day = max(0, self.time - self.config["genesis_time_micros"]) // QUOTA_DAY_MICROS
        q = self.tx.find("quota", party)
        if q is None or q["day"] != day:
            q = {"party": party, "day": day, "entries": 0, "key_changes": 0}
        return q

    def charge_entry(self):
        for party, role in self.sig.parties():
            if role in ("operator", "association"):
                continue
            q = self.quota(party)
            if q["entries"] >= ENTRIES_PER_PARTY_PER_DAY_MAX:
                raise Refused("party_quota_exceeded", party)
            q["entries"] += 1
            self.tx.put("quota", q)

    def count_key_change(self, party):
        q = self.quota(party)
        if q["key_changes"] >= KEY_CHANGES_PER_PARTY_PER_DAY_MAX:
            raise Refused("key_changes_exceeded", party)
        q["key_changes"] += 1
        self.tx.put("quota", q)

    def subject(self, s):
        if s not in self.config["subjects"]:
            raise Refused("unknown_subject", s)
        return s

    def district(self, d):
        if d not in self.config["districts"]:
            raise Refused("unknown_district", d)
        return d

    def party_with_role(self, ident, role):
        p = self.tx.need("party", ident, "institution_unknown" if role == "institution" else "party_unknown")
        if p["role"] != role:
            raise Refused("wrong_role", f"{ident} is {p['role']}, not {role}")
        return p

    def active_institution(self, ident):
        p = self.party_with_role(ident, "institution")
        if p["banned_at"] is not None:
            raise Refused("institution_banned", ident)
        if p["closed_at"] is not None:
            raise Refused("institution_closed", ident)
        return p

    def attested(self):
        c = self.tx.find("clock", "clock")
        return 0 if c is None else c["at_micros"]

    def new_party(self, party, role, key):
        self.tx.put("party", {"party": party, "role": role, "keys": [key], "registered_at": self.index,
                              "closed_at": None, "whitelisted_at": None, "banned_at": None,
                              "pledges_unapproved": 0, "entries": []})
        self.tx.put("key", {"key": key, "party": party, "registered_at": self.index, "revoked_at": None})

    def grant_key(self, party, key):
        party["keys"].append(key)
        del party["keys"][: max(0, len(party["keys"]) - PARTY_KEYS_KEPT_MAX)]
        self.tx.put("party", party)
        self.tx.put("key", {"key": key, "party": party["party"], "registered_at": self.index, "revoked_at": None})

    def live_key_of(self, party, key):
        rec = self.tx.need("key", key, "key_not_of_party")
        if rec["party"] != party:
            raise Refused("key_not_of_party", key[:40])
        if rec["revoked_at"] is not None:
            raise Refused("key_revoked", key[:40])
        return rec

    def claim_of(self, alloc):
        return self.tx.need("claim", alloc["claim"], "state_corrupt")

    def pledge_of(self, alloc):
        return self.tx.need("pledge", alloc["pledge"], "state_corrupt")

    def release(self, alloc, lessons):
        """Reserved → unreserved (claim) and reserved → available (pledge), RULES.md §5.3."""
        value = alloc["value_per_lesson"] * lessons
        claim, pledge, pool = self.claim_of(alloc), self.pledge_of(alloc), self.pool()
        move(claim, "reserved", "unreserved", value)
        move(pledge, "reserved", "available", lessons)
        move(pool, "claims_reserved", "claims_unreserved", value)
        move(pool, "reserved", "available", value)
        self.tx.put("claim", claim)
        self.tx.put("pledge", pledge)
        self.tx.put("pool", pool)

    def finalize_lesson(self, alloc):
        """One lesson becomes final (RULES.md §5.3)."""
        v = alloc["value_per_lesson"]
        claim, pledge = self.claim_of(alloc), self.pledge_of(alloc)
        move(claim, "reserved", "consumed", v)
        move(pledge, "reserved", "delivered", 1)
        liability = self.tx.need("liability", claim["institution"], "state_corrupt")
        liability["made_good"] = add(liability["made_good"], v)
        pool = self.pool()
        move(pool, "claims_reserved", "claims_consumed", v)
        move(pool, "reserved", "delivered", v)
        for kind, obj in (("claim", claim), ("pledge", pledge), ("liability", liability), ("pool", pool)):
            self.tx.put(kind, obj)

    # -- §5.4 the kinds -----------------------------------------------------------------
    def r_genesis(self, p):
        if p["ledger"] != p["origin"]:
            raise Refused("wrong_ledger")
        window = p.get("confirmation_window_days", 15)
        day = p.get("day_micros", QUOTA_DAY_MICROS)
        in_range("confirmation_window_days", window, 1, 365)
        in_range("allocation_validity_days", p["allocation_validity_days"], 1, 3650)
        in_range("day_micros", day, 1_000_000, QUOTA_DAY_MICROS)
        if p["unit"] != "CNY-fen":
            raise Refused("unit_unsupported")
        in_range("districts", len(p["districts"]), 1, 64)
        in_range("subjects", len(p["subjects"]), 1, 256)
        self.sig.key(p["operator_key"])
        for a in p["associations"]:
            self.sig.key(a["key"])
        self.tx.put("config", {
            "origin": p["origin"], "operator": p["operator"], "confirmation_window_days": window,
            "allocation_validity_days": p["allocation_validity_days"], "day_micros": day,
            "unit": "CNY-fen", "districts": p["districts"], "subjects": p["subjects"],
            "genesis_time_micros": self.time})
        self.new_party(p["operator"], "operator", p["operator_key"])
        for a in p["associations"]:
            self.new_party(a["party"], "association", a["key"])
        self.tx.put("pool", {k: 0 for k in POOL_FIELDS})

    def r_party_registered(self, p):
        if p["role"] == "association":
            raise Refused("role_not_registrable")
        if key_name(p["key"]) != p["party"]:
            raise Refused("key_name_mismatch")
        self.sig.role("operator")
        self.sig.cosigner("association")
        self.sig.key(p["key"])
        if self.tx.find("party", p["party"]) is not None:
            raise Refused("party_exists", p["party"])
        if self.tx.find("key", p["key"]) is not None:
            raise Refused("key_in_use")
        self.new_party(p["party"], p["role"], p["key"])

    def r_key_rotated(self, p):
        party_id = p["party"]
        if key_name(p["new_key"]) != party_id and not (
            party_id == self.config["operator"] and key_name(p["new_key"]) == self.config["origin"]
        ):
            raise Refused("key_name_mismatch")
        self.sig.key(p["old_key"])
        self.sig.key(p["new_key"])
        party = self.tx.need("party", party_id, "party_unknown")
        old = self.live_key_of(party_id, p["old_key"])
        if self.tx.find("key", p["new_key"]) is not None:
            raise Refused("key_in_use")
        self.count_key_change(party_id)
        old["revoked_at"] = self.index
        self.tx.put("key", old)
        self.grant_key(party, p["new_key"])

    def r_key_revoked(self, p):
        self.sig.party_or_role(p["party"], "operator")
        party = self.tx.need("party", p["party"], "party_unknown")
        rec = self.live_key_of(p["party"], p["key"])
        self.count_key_change(p["party"])
        rec["revoked_at"] = self.index
        self.tx.put("key", rec)
        self.tx.put("party", party)

    def r_key_recovered(self, p):
        if key_name(p["new_key"]) != p["party"]:
            raise Refused("key_name_mismatch")
        self.sig.role("operator")
        self.sig.role("association")
        self.sig.key(p["new_key"])
        party = self.tx.need("party", p["party"], "party_unknown")
        if party["role"] == "operator":
            raise Refused("operator_key_not_recoverable")
        if self.tx.find("key", p["new_key"]) is not None:
            raise Refused("key_in_use")
        self.count_key_change(p["party"])
        for key in party["keys"]:
            rec = self.tx.need("key", key, "state_corrupt")
            if rec["revoked_at"] is None:
                rec["revoked_at"] = self.index
                self.tx.put("key", rec)
        self.grant_key(party, p["new_key"])

    def institution_status(self, p, status):
        allowed = {"closed": ("ceased_trading", "abnormal_closure", "licence_revoked", "bankrupt"),
                   "whitelisted": ("approved_donor",),
                   "banned": ("fund_outflow", "false_pledge", "failed_delivery", "regulatory_order")}
        if p["reason"] not in allowed[status]:
            raise Refused("reason_not_allowed", p["reason"])
        self.sig.role("operator")
        inst = self.party_with_role(p["institution"], "institution")
        if status == "closed":
            if inst["closed_at"] is not None:
                raise Refused("institution_status_repeated", "closed")
            inst["closed_at"] = self.index
            if self.tx.find("liability", p["institution"]) is None:
                self.tx.put("liability", {"institution": p["institution"], "students": 0, "claims": 0,
                                          "lessons_owed": 0, "owed": 0, "made_good": 0})
        elif status == "whitelisted":
            if inst["banned_at"] is not None:
                raise Refused("institution_banned")
            if inst["closed_at"] is not None:
                raise Refused("institution_closed")
            if inst["whitelisted_at"] is not None:
                raise Refused("institution_status_repeated", "whitelisted")
            inst["whitelisted_at"] = self.index
        else:
            if inst["banned_at"] is not None:
                raise Refused("institution_status_repeated", "banned")
            inst["banned_at"] = self.index
        self.tx.put("party", inst)

    def r_institution_closed(self, p):
        self.institution_status(p, "closed")

    def r_institution_whitelisted(self, p):
        self.institution_status(p, "whitelisted")

    def r_institution_blacklisted(self, p):
        self.institution_status(p, "banned")

    def r_claim_recorded(self, p):
        if not 1 <= p["lessons"] <= CLAIM_LESSONS_MAX:
            raise Refused("lessons_out_of_range")
        if not 1 <= p["price_per_lesson_fen"] <= PRICE_PER_LESSON_FEN_MAX:
            raise Refused("price_out_of_range")
        if p["grade"] not in GRADES:
            raise Refused("grade_out_of_range")
        self.subject(p["subject"])
        self.district(p["district"])
        if len(p["accepted_districts"]) > ACCEPTED_DISTRICTS_MAX:
            raise Refused("too_many_items")
        for i, d in enumerate(p["accepted_districts"]):
            self.district(d)
            if d in p["accepted_districts"][:i]:
                raise Refused("duplicate_item", d)
        value = p["price_per_lesson_fen"] * p["lessons"]
        self.sig.role("operator")
        self.sig.cosigner("association")
        self.sig.party(p["student"])
        if self.tx.find("claim", p["claim"]) is not None:
            raise Refused("claim_exists", p["claim"])
        self.party_with_role(p["student"], "student")
        inst = self.party_with_role(p["institution"], "institution")
        if inst["closed_at"] is None:
            raise Refused("institution_not_closed")
        index = self.tx.find("student", p["student"]) or {"student": p["student"], "claims": []}
        if len(index["claims"]) >= CLAIMS_PER_STUDENT_MAX:
            raise Refused("student_claims_full")
        new_student = all(
            self.tx.need("claim", c, "state_corrupt")["institution"] != p["institution"] for c in index["claims"]
        )
        liability = self.tx.need("liability", p["institution"], "state_corrupt")
        liability["students"] += 1 if new_student else 0
        liability["claims"] += 1
        liability["lessons_owed"] += p["lessons"]
        liability["owed"] = add(liability["owed"], value)
        pool = self.pool()
        pool["claims"] += 1
        pool["claims_value"] = add(pool["claims_value"], value)
        pool["claims_unreserved"] = add(pool["claims_unreserved"], value)
        index["claims"].append(p["claim"])
        claim = {"claim": p["claim"], "student": p["student"], "institution": p["institution"],
                 "subject": p["subject"], "grade": p["grade"], "district": p["district"],
                 "accepts_online": p["accepts_online"], "accepted_districts": p["accepted_districts"],
                 "evidence_digest": p["evidence_digest"], "lessons": p["lessons"],
                 "price_per_lesson": p["price_per_lesson_fen"], "value": value, "unreserved": value,
                 "reserved": 0, "consumed": 0, "entries": []}
        if CLAIM_PREFERENCES:
            claim["preferences"] = None
        self.tx.put("claim", claim)
        self.tx.put("student", index)
        self.tx.put("liability", liability)
        self.tx.put("pool", pool)

    def r_pledge_offered(self, p):
        self.subject(p["subject"])
        if not (p["grade_min"] in GRADES and p["grade_max"] in GRADES and p["grade_min"] <= p["grade_max"]):
            raise Refused("grade_band_invalid")
        district, online = p.get("district"), p.get("online", False)
        if (district is None) == (not online):
            raise Refused("location_invalid")
        if district is not None:
            self.district(district)
        in_range("seats", p["seats"], 1, PLEDGE_SEATS_MAX)
        in_range("lessons_per_seat", p["lessons_per_seat"], 1, LESSONS_PER_SEAT_MAX)
        if not 1 <= p["value_per_lesson_fen"] <= PRICE_PER_LESSON_FEN_MAX:
            raise Refused("price_out_of_range")
        if p["valid_from_micros"] >= p["valid_until_micros"] or p["valid_until_micros"] <= self.time:
            raise Refused("validity_window_invalid")
        capacity = p["seats"] * p["lessons_per_seat"]
        self.sig.party(p["institution"])
        if self.tx.find("pledge", p["pledge"]) is not None:
            raise Refused("pledge_exists")
        inst = self.active_institution(p["institution"])
        if inst["pledges_unapproved"] >= PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX:
            raise Refused("too_many_unapproved_pledges")
        inst["pledges_unapproved"] += 1
        self.tx.put("party", inst)
        self.tx.put("pledge", {
            "pledge": p["pledge"], "institution": p["institution"], "subject": p["subject"],
            "grade_min": p["grade_min"], "grade_max": p["grade_max"], "district": district,
            "online": online, "seats": p["seats"], "lessons_per_seat": p["lessons_per_seat"],
            "value_per_lesson": p["value_per_lesson_fen"], "valid_from_micros": p["valid_from_micros"],
            "valid_until_micros": p["valid_until_micros"], "capacity": capacity, "available": capacity,
            "reserved": 0, "delivered": 0, "withdrawn": 0, "approved_at": None, "entries": []})

    def r_pledge_approved(self, p):
        self.sig.role("operator")
        pledge = self.tx.need("pledge", p["pledge"], "pledge_unknown")
        if pledge["approved_at"] is not None:
            raise Refused("pledge_already_approved")
        inst = self.active_institution(pledge["institution"])
        if inst["whitelisted_at"] is None:
            raise Refused("institution_not_whitelisted")
        inst["pledges_unapproved"] -= 1
        self.tx.put("party", inst)
        pledge["approved_at"] = self.index
        v, pool = pledge["value_per_lesson"], self.pool()
        pool["pledges_approved"] += 1
        pool["pledged"] = add(pool["pledged"], v * pledge["capacity"])
        pool["available"] = add(pool["available"], v * pledge["available"])
        pool["withdrawn"] = add(pool["withdrawn"], v * pledge["withdrawn"])
        self.tx.put("pledge", pledge)
        self.tx.put("pool", pool)

    def r_pledge_withdrawn(self, p):
        pledge = self.tx.need("pledge", p["pledge"], "pledge_unknown")
        self.sig.party(pledge["institution"])
        if not 1 <= p["lessons"] <= pledge["capacity"]:
            raise Refused("lessons_out_of_range")
        if p["lessons"] > pledge["available"]:
            raise Refused("withdraw_exceeds_available")
        move(pledge, "available", "withdrawn", p["lessons"])
        if pledge["approved_at"] is not None:
            pool = self.pool()
            move(pool, "available", "withdrawn", pledge["value_per_lesson"] * p["lessons"])
            self.tx.put("pool", pool)
        self.tx.put("pledge", pledge)

    def r_allocation_made(self, p):
        k, run = p["lessons"], p.get("run")
        if not 1 <= k <= CLAIM_LESSONS_MAX:
            raise Refused("lessons_out_of_range")
        self.sig.role("operator")
        if run is None:
            self.sig.cosigner("association")
        if self.tx.find("allocation", p["allocation"]) is not None:
            raise Refused("allocation_exists")
        if run is not None:
            record = self.tx.need("run", run, "match_run_unknown")
            if record["closed_at"] is not None:
                raise Refused("match_run_closed")
            if record["made"] >= record["allocations"]:
                raise Refused("match_run_full")
            if p["allocation"] != f"{run}.{record['made']}":
                raise Refused("match_run_out_of_order")
            record["made"] += 1
            self.tx.put("run", record)
        claim = self.tx.need("claim", p["claim"], "claim_unknown")
        pledge = self.tx.need("pledge", p["pledge"], "pledge_unknown")
        if pledge["approved_at"] is None:
            raise Refused("pledge_not_approved")
        self.active_institution(pledge["institution"])
        if not pledge["valid_from_micros"] <= self.time < pledge["valid_until_micros"]:
            raise Refused("pledge_not_valid_at_time")
        if claim["subject"] != pledge["subject"]:
            raise Refused("incompatible_subject")
        if not pledge["grade_min"] <= claim["grade"] <= pledge["grade_max"]:
            raise Refused("incompatible_grade")
        if pledge["district"] is None:
            location_ok = pledge["online"] and claim["accepts_online"]
        else:
            location_ok = pledge["district"] == claim["district"] or pledge["district"] in claim["accepted_districts"]
        if not location_ok:
            raise Refused("incompatible_location")
        if k > pledge["lessons_per_seat"]:
            raise Refused("allocation_exceeds_seat")
        if k > pledge["available"]:
            raise Refused("insufficient_capacity")
        need = pledge["value_per_lesson"] * k
        if need > claim["unreserved"]:
            raise Refused("insufficient_claim_value")
        validity = self.config["allocation_validity_days"] * self.config["day_micros"]
        expires = min(self.time + validity, pledge["valid_until_micros"])
        move(claim, "unreserved", "reserved", need)
        move(pledge, "available", "reserved", k)
        pool = self.pool()
        move(pool, "claims_unreserved", "claims_reserved", need)
        move(pool, "available", "reserved", need)
        self.tx.put("allocation", {
            "allocation": p["allocation"], "claim": p["claim"], "pledge": p["pledge"],
            "student": claim["student"], "institution": pledge["institution"], "lessons": k,
            "value_per_lesson": pledge["value_per_lesson"], "consumed": 0, "pending": 0,
            "remaining": k, "released": 0, "status": "active", "expires_at_micros": expires,
            "entries": [], "run": run})
        self.tx.put("claim", claim)
        self.tx.put("pledge", pledge)
        self.tx.put("pool", pool)

    def r_match_run(self, p):
        if p["allocations"] > MATCH_RUN_ALLOCATIONS_MAX:
            raise Refused("match_run_too_large")
        d = p["plans_digest"]
        if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
            raise Refused("plans_digest_invalid")
        params = p["params"]
        fairness = params["fairness"]
        if isinstance(fairness, dict):
            cap = fairness["capped_first_pass"]["cap_fen"]
            if not 1 <= cap <= CAP_FEN_MAX:
                raise Refused("match_params_invalid")
        if params["at_micros"] > self.time:
            raise Refused("match_run_in_future")
        self.sig.role("operator")
        if self.tx.find("run", p["run"]) is not None:
            raise Refused("match_run_exists")
        self.tx.put("run", {"run": p["run"], "index": self.index,
                            "params": {"at_micros": params["at_micros"], "fairness": fairness},
                            "allocations": p["allocations"], "made": 0, "plans_digest": d,
                            "closed_at": None})

    def r_match_run_closed(self, p):
        self.sig.role("operator")
        record = self.tx.need("run", p["run"], "match_run_unknown")
        if record["closed_at"] is not None:
            raise Refused("match_run_closed")
        if record["made"] >= record["allocations"]:
            raise Refused("match_run_complete")
        record["closed_at"] = self.index
        self.tx.put("run", record)

    def r_time_attested(self, p):
        if p["at_micros"] > self.time:
            raise Refused("time_attested_in_future")
        by = self.sig.role("association")
        if p["at_micros"] <= self.attested():
            raise Refused("time_attested_backwards")
        self.tx.put("clock", {"at_micros": p["at_micros"], "by": by, "index": self.index})

    def allocation_ended(self, p, declined):
        alloc = self.tx.need("allocation", p["allocation"], "allocation_unknown")
        if declined:
            self.sig.party(alloc["student"])
        else:
            self.sig.role("operator")
        if alloc["status"] != "active":
            raise Refused("allocation_not_active")
        if not declined:
            inst = self.tx.need("party", alloc["institution"], "state_corrupt")
            if inst["banned_at"] is None and inst["closed_at"] is None:
                if self.time < alloc["expires_at_micros"]:
                    raise Refused("allocation_not_expired")
                if self.attested() < alloc["expires_at_micros"]:
                    raise Refused("deadline_not_attested")
        rest = alloc["remaining"]
        move(alloc, "remaining", "released", rest)
        self.release(alloc, rest)
        alloc["status"] = "declined" if declined else "expired"
        self.tx.put("allocation", alloc)

    def r_allocation_expired(self, p):
        self.allocation_ended(p, False)

    def r_allocation_declined(self, p):
        self.allocation_ended(p, True)

    def lesson_delivered(self, p, cosigned):
        alloc = self.tx.need("allocation", p["allocation"], "allocation_unknown")
        if cosigned:
            self.sig.party(alloc["student"])
        self.sig.party(alloc["institution"])
        if self.tx.find("lesson", p["lesson"]) is not None:
            raise Refused("lesson_exists")
        if alloc["status"] != "active":
            raise Refused("allocation_not_active")
        if self.time >= alloc["expires_at_micros"]:
            raise Refused("allocation_past_expiry")
        self.active_institution(alloc["institution"])
        if alloc["remaining"] == 0:
            raise Refused("allocation_exhausted")
        if cosigned:
            move(alloc, "remaining", "consumed", 1)
            self.finalize_lesson(alloc)
            status, window_end = "final", None
        else:
            move(alloc, "remaining", "pending", 1)
            status = "pending"
            window_end = self.time + self.config["confirmation_window_days"] * self.config["day_micros"]
        self.tx.put("allocation", alloc)
        self.tx.put("lesson", {"lesson": p["lesson"], "allocation": p["allocation"], "status": status,
                               "window_end_micros": window_end, "dispute": None, "entries": []})

    def r_lesson_consumed(self, p):
        self.lesson_delivered(p, True)

    def r_lesson_proposed(self, p):
        self.lesson_delivered(p, False)

    def lesson_and_allocation(self, lesson_id):
        lesson = self.tx.need("lesson", lesson_id, "lesson_unknown")
        return lesson, self.tx.need("allocation", lesson["allocation"], "state_corrupt")

    def finalize_pending(self, lesson, alloc):
        move(alloc, "pending", "consumed", 1)
        self.finalize_lesson(alloc)
        lesson["status"] = "final"
        self.tx.put("allocation", alloc)
        self.tx.put("lesson", lesson)

    def r_lesson_confirmed(self, p):
        lesson, alloc = self.lesson_and_allocation(p["lesson"])
        self.sig.party(alloc["student"])
        if lesson["status"] != "pending":
            raise Refused("lesson_not_pending")
        self.finalize_pending(lesson, alloc)

    def r_lesson_deemed_confirmed(self, p):
        self.sig.role("operator")
        lesson, alloc = self.lesson_and_allocation(p["lesson"])
        if lesson["status"] != "pending":
            raise Refused("lesson_not_pending")
        if self.time < lesson["window_end_micros"]:
            raise Refused("window_not_elapsed")
        if self.attested() < lesson["window_end_micros"]:
            raise Refused("deadline_not_attested")
        self.finalize_pending(lesson, alloc)

    def r_lesson_disputed(self, p):
        lesson, alloc = self.lesson_and_allocation(p["lesson"])
        by = self.sig.party_or_role(alloc["student"], "association")
        if self.tx.find("dispute", p["dispute"]) is not None:
            raise Refused("dispute_exists")
        if lesson["status"] != "pending":
            raise Refused("lesson_not_pending")
        end = lesson["window_end_micros"]
        if self.time >= end and self.attested() >= end:
            raise Refused("window_elapsed")
        lesson["status"], lesson["dispute"] = "disputed", p["dispute"]
        self.tx.put("lesson", lesson)
        self.tx.put("dispute", {"dispute": p["dispute"], "lesson": p["lesson"], "raised_by": by,
                                "reason": p["reason"], "status": "open", "resolution": None, "entries": []})

    def r_dispute_resolved(self, p):
        self.sig.role("operator")
        dispute = self.tx.need("dispute", p["dispute"], "dispute_unknown")
        if dispute["status"] != "open":
            raise Refused("dispute_not_open")
        lesson, alloc = self.lesson_and_allocation(dispute["lesson"])
        if lesson["status"] != "disputed":
            raise Refused("state_corrupt", "open dispute on a lesson not disputed")
        dispute["status"] = {"resolved": p["outcome"]}
        dispute["resolution"] = p["reason"]
        self.tx.put("dispute", dispute)
        if p["outcome"] == "rejected":
            self.finalize_pending(lesson, alloc)
            return
        if alloc["status"] == "active":
            move(alloc, "pending", "remaining", 1)
        else:
            move(alloc, "pending", "released", 1)
            self.release(alloc, 1)
        lesson["status"] = "void"
        self.tx.put("allocation", alloc)
        self.tx.put("lesson", lesson)

    def r_claim_preferences_set(self, p):
        """formats.md §3 / RULES.md §5.4.25 (the effects only; prefs owns the checks)."""
        claim = self.tx.need("claim", p["claim"], "claim_unknown")
        self.sig.party(claim["student"])
        claim["preferences"] = {"subjects": p["subjects"], "accepts_online": p["accepts_online"],
                                "accepted_districts": p["accepted_districts"], "requests": p["requests"],
                                "set_at": self.index}
        self.tx.put("claim", claim)


# Whether claim objects carry the `preferences` field (RULES.md §2.5, issue 18).
CLAIM_PREFERENCES = os.environ.get("LL_CLAIM_PREFERENCES", "0") == "1"

POOL_FIELDS = ("claims", "claims_value", "claims_unreserved", "claims_reserved", "claims_consumed",
               "pledges_approved", "pledged", "available", "reserved", "delivered", "withdrawn")


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise Refused("duplicate_field", k)
        out[k] = v
    return out


def in_range(field, value, lo, hi):
    if not isinstance(value, int) or not lo <= value <= hi:
        raise Refused("value_out_of_range", f"{field} {value} outside {lo}..={hi}")


def add(a, b):
    if a + b > U64_MAX:
        raise Refused("overflow")
    return a + b


def move(obj, src, dst, amount):
    """Move `amount` from part `src` to part `dst` of one balance (RULES.md §5.3)."""
    if obj[src] < amount:
        raise Refused("underflow", f"{src} {obj[src]} < {amount}")
    obj[src] -= amount
    obj[dst] = add(obj[dst], amount)


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
                              + (" (use --legacy-digest for ledgers of state digest v1)" if code.endswith("old_format") else ""), size)
            if size != leaves:
                raise Failure("state_note_size", f"state note of size {size} after {leaves} entries", size)
            if rules.config is None or origin != rules.config["origin"]:
                raise Failure("state_note_origin", f"state note names origin {origin!r}", size)
            key = operator_live_key(state, rules.config)
            if trusted_key and notes == 0 and trusted_key != key:
                raise Failure("operator_key_untrusted", "the genesis operator key is not the key trusted", size)
            if not note_signed_by(text, key):
                raise Failure("state_note_signature", f"state note at size {size} is not signed by the operator key {key_name(key)}", size)
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


def proofs_in(doc):
    """Every (object, proof) pair of a balance response: a JSON object holding `proof`
    (RULES.md §4.4) beside `table`, `id` and `value`."""
    if isinstance(doc, dict):
        if isinstance(doc.get("proof"), dict) and "siblings" in doc["proof"]:
            yield doc
        for v in doc.values():
            yield from proofs_in(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from proofs_in(v)


def find_note(doc):
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "state_note" and isinstance(v, str):
                return v
            found = find_note(v)
            if found:
                return found
    elif isinstance(doc, list):
        for v in doc:
            found = find_note(v)
            if found:
                return found
    return None


def check_proofs(path, operator_key, roots):
    doc = json.load(open(path))
    text = find_note(doc)
    if text is None:
        raise Failure("proof_malformed", f"{path}: no state_note in the response")
    header, _, size, root = parse_state_note(text)
    if header != "lesson-ledger/state-map/v1":
        raise Failure("state_note_old_format", f"{path}: state note header {header!r}")
    if operator_key and not note_signed_by(text, operator_key):
        raise Failure("state_note_signature", f"{path}: the state note is not signed by the operator key")
    if size in roots and roots[size] != root:
        raise Failure("state_root_mismatch", f"{path}: the state note of size {size} is not the replayed one")
    checked = 0
    for item in proofs_in(doc):
        check_one_proof(item, root)
        checked += 1
    if checked == 0:
        raise Failure("proof_malformed", f"{path}: no state proof in the response")
    return size, checked


def check_one_proof(item, root):
    proof = item["proof"]
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
    if "table" in item and "id" in item and map_key(item["table"], item["id"]) != key:
        raise Failure("proof_wrong_key", f"{name}: the proof is for another key")
    siblings = [sib[i : i + 32] for i in range(0, len(sib), 32)]
    if not verify_proof(root, key, siblings, leaf):
        raise Failure("proof_invalid", f"{name}: the proof does not lead to the signed root")
    value = item.get("value")
    if value is None:
        # Absence: an empty terminal, or another key sharing the proof's prefix.
        if leaf is not None and (leaf[0] == key or any(bit(leaf[0], j) != bit(key, j) for j in range(len(siblings)))):
            raise Failure("proof_not_absent", f"{name}: the proof shows the key present (or is not an absence proof)")
        return
    if leaf is None or leaf[0] != key:
        raise Failure("proof_not_present", f"{name}: an absence proof for an object given with a value")
    if blake3.blake3(canonical_json(value)).digest() != leaf[1]:
        raise Failure("proof_value_mismatch", f"{name}: the value does not match its proof")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="ledger directory (reads DIR/log.dat and DIR/log.json)")
    ap.add_argument("--operator-key", help="the operator verifier key you trust (default: DIR/log.json's)")
    ap.add_argument("--check-proof", metavar="FILE", action="append", default=[],
                    help="a balance response (JSON) whose state proofs to check; repeatable")
    ap.add_argument("--legacy-digest", action="store_true",
                    help="check state notes of format lesson-ledger/state-digest/v1 (LtHash16)")
    ap.add_argument("--dump-state", metavar="FILE", help="write every replayed object, canonical, one a line")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
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
