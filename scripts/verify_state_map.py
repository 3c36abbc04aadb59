"""The canonical encoding of state objects and the state map (schemas/RULES.md §3-§4), and
the legacy LtHash16 state digest (schemas/README.md §8): part of scripts/verify_state.py."""

import struct

import blake3


class Failure(Exception):
    """The ledger (or proof) does not verify: a stable code and a message."""

    def __init__(self, code, message, index=None):
        super().__init__(message)
        self.code = code
        self.index = index


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
