"""The rule of each entry kind (schemas/RULES.md §5.4): part of scripts/verify_state.py."""

from verify_state_objects import (
    ACCEPTED_DISTRICTS_MAX, CAP_FEN_MAX, CLAIM_ALLOCATIONS_OPEN_MAX, CLAIM_LESSONS_MAX, CLAIMS_PER_STUDENT_MAX, GRADES,
    LESSONS_PER_SEAT_MAX, MATCH_RUN_ALLOCATIONS_MAX, PLEDGE_SEATS_MAX,
    PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX, POOL_FIELDS, PRICE_PER_LESSON_FEN_MAX,
    QUOTA_DAY_MICROS, Refused, RulesBase, add, in_range, key_name, move)


class Rules(RulesBase):
    """RULES.md §5.4: one method per entry kind, checks in the order the spec lists."""

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
        claim["allocations"] = []
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
        self.compatible(claim, pledge)
        if k > pledge["lessons_per_seat"]:
            raise Refused("allocation_exceeds_seat")
        if k > pledge["available"]:
            raise Refused("insufficient_capacity")
        need = pledge["value_per_lesson"] * k
        if need > claim["unreserved"]:
            raise Refused("insufficient_claim_value")
        if len(claim["allocations"]) >= CLAIM_ALLOCATIONS_OPEN_MAX:
            raise Refused("claim_allocations_full")
        claim["allocations"].append(p["allocation"])
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
            "entries": [], "run": run, "open_lessons": []})
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
        self.put_allocation(alloc)

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
            alloc["open_lessons"].append({"lesson": p["lesson"], "window_end_micros": window_end})
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
        self.settle_open_lesson(alloc, lesson["lesson"])
        lesson["status"] = "final"
        self.tx.put("lesson", lesson)
        self.put_allocation(alloc)

    def settle_open_lesson(self, alloc, lesson_id):
        """The lesson leaves its allocation's `open_lessons` (§5.4.21)."""
        at = [o["lesson"] for o in alloc["open_lessons"]]
        if lesson_id not in at:
            raise Refused("state_corrupt", f"allocation does not list its open lesson {lesson_id}")
        del alloc["open_lessons"][at.index(lesson_id)]

    def put_allocation(self, alloc):
        """Put an allocation; a closed one leaves its claim's list (§5.3)."""
        if alloc["status"] != "active" and alloc["pending"] == 0:
            claim = self.claim_of(alloc)
            if alloc["allocation"] in claim["allocations"]:
                claim["allocations"].remove(alloc["allocation"])
                self.tx.put("claim", claim)
        self.tx.put("allocation", alloc)

    def compatible(self, claim, pledge):
        """§5.4.13: subject, grade, place — the claim's preferences when it has some."""
        prefs = claim["preferences"]
        subjects = prefs["subjects"] if prefs else [claim["subject"]]
        online = prefs["accepts_online"] if prefs else claim["accepts_online"]
        districts = prefs["accepted_districts"] if prefs else claim["accepted_districts"]
        if pledge["subject"] not in subjects:
            raise Refused("incompatible_subject")
        if not pledge["grade_min"] <= claim["grade"] <= pledge["grade_max"]:
            raise Refused("incompatible_grade")
        if pledge["district"] is None:
            place = pledge["online"] and online
        else:
            place = pledge["district"] == claim["district"] or pledge["district"] in districts
        if not place and not (prefs and pledge["pledge"] in prefs["requests"]):
            raise Refused("incompatible_location")

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
        self.settle_open_lesson(alloc, lesson["lesson"])
        lesson["status"] = "void"
        self.tx.put("lesson", lesson)
        self.put_allocation(alloc)

    def r_claim_preferences_set(self, p):
        """§5.4.25."""
        subjects, districts, requests = p["subjects"], p["accepted_districts"], p["requests"]
        if not subjects:
            raise Refused("value_out_of_range", "subjects")
        distinct(subjects, 8, "too_many_subjects", "subject_repeated",
                 lambda x: x in self.config["subjects"], "subject_unknown")
        distinct(districts, 16, "too_many_districts", "district_repeated",
                 lambda x: x in self.config["districts"], "district_unknown")
        distinct(requests, 5, "too_many_requests", "request_repeated", lambda x: True, "")
        claim = self.tx.need("claim", p["claim"], "claim_unknown")
        self.sig.party(claim["student"])
        if claim["unreserved"] == 0:
            raise Refused("claim_closed")
        for pledge_id in requests:
            pledge = self.tx.need("pledge", pledge_id, "pledge_unknown")
            inst = self.tx.need("party", pledge["institution"], "state_corrupt")
            if (pledge["approved_at"] is None or self.time >= pledge["valid_until_micros"]
                    or (pledge["available"] == 0 and pledge["withdrawn"] > 0)
                    or inst["banned_at"] is not None or inst["closed_at"] is not None):
                raise Refused("pledge_not_eligible", pledge_id)
            if not pledge["grade_min"] <= claim["grade"] <= pledge["grade_max"]:
                raise Refused("pledge_grade_mismatch", pledge_id)
            if pledge["subject"] not in subjects:
                raise Refused("pledge_subject_not_accepted", pledge_id)
        claim["preferences"] = {"subjects": subjects, "accepts_online": p["accepts_online"],
                                "accepted_districts": districts, "requests": requests,
                                "set_at": self.index}
        self.tx.put("claim", claim)


def distinct(items, most, too_many, repeated, known, unknown):
    """A ranked list of `claim_preferences_set`: bounded, each known, none twice."""
    if len(items) > most:
        raise Refused(too_many)
    for i, x in enumerate(items):
        if not known(x):
            raise Refused(unknown, x)
        if x in items[:i]:
            raise Refused(repeated, x)
