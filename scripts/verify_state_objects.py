"""The state, its writes and the signers of an entry (schemas/RULES.md §2, §5.1-§5.3):
part of scripts/verify_state.py."""

import json

import blake3

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
CLAIM_ALLOCATIONS_OPEN_MAX = 64
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


class RulesBase:
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
        if not isinstance(p, dict):
            raise Refused("malformed_payload", "not a JSON object")
        if "kind" not in p:
            raise Refused("missing_field", "kind")
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
